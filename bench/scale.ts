/**
 * `npm run bench:scale`: the server with many registered clients.
 *
 * A lab with the server host and one "sim" host; the real server daemon runs
 * with --max-clients (default 1000) and a /16 network; bench/scale-sim.ts
 * simulates the clients from one process in the sim host, each with its own
 * UDP socket, speaking the real protocol. For each step (default 10, 100,
 * 1000 clients, added to the same server):
 *   registration   all new clients send their init at once: handshakes/s
 *                  (clients ÷ time to the last response), init retransmits,
 *                  the server's CPU ms per handshake
 *   memory         server RSS after the step, per client (growth ÷ clients added,
 *                  and (RSS − RSS with no client) ÷ clients)
 *   keepalive      every client pings at once: time to the last Pong, RTT p50/p99
 *   relay          every client sends relay envelopes (1400-byte inner packets) to
 *                  another for 3 s: packets/s the server forwarded (its link's tx
 *                  counter) and its CPU share
 * plus one end-to-end check at the end: a relayed Noise handshake between two
 * simulated clients and 100 data packets opened by the receiver.
 *
 *   node dist/bench/scale.js [--steps 10,100,1000] [--relay-seconds 3] [--json FILE]
 */
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { createInterface } from 'node:readline'
import { runIn, spawnIn, sleep, type LabProcess } from '../src/lab/exec.js'
import { linkStats } from '../src/lab/netns.js'
import { createTopology } from '../src/lab/topology.js'
import { cpuSeconds, rssKb, peakRssKb } from './lib/machine.js'
import { BIN, ROOT } from './tunnels/index.js'

export interface ScaleStep {
  clients: number
  added: number
  registerMs: number
  handshakesPerSec: number
  initsPerClient: number
  serverCpuMsPerHandshake: number | null
  rssKb: number | null
  rssPerClientKb: number | null
  rssGrowthPerAddedKb: number | null
  pingAllMs: number
  pongs: number
  pingP50Ms: number | null
  pingP99Ms: number | null
  relaySentPps: number
  relayForwardedPps: number
  relayServerCpuPct: number | null
  /** Server dataplane counters that moved during the step (status --json), e.g. dropControlRingFull. */
  serverDrops: Record<string, number>
  /** UDP receive-buffer overflows in the server's namespace during the relay blast (/proc/net/snmp RcvbufErrors). */
  relayRcvbufErrors: number | null
}

async function serverCounters (ns: string, control: string): Promise<Record<string, number>> {
  try {
    const r = await runIn(ns, 'env', ['-u', 'NODE_OPTIONS', BIN, 'status', '--json', '--control', control], { env: env(), timeoutMs: 10_000 })
    return (JSON.parse(r.stdout) as { counters?: Record<string, number> }).counters ?? {}
  } catch {
    return {}
  }
}

async function rcvbufErrors (ns: string): Promise<number | null> {
  try {
    const r = await runIn(ns, 'cat', ['/proc/net/snmp'])
    const lines = r.stdout.split('\n').filter((l) => l.startsWith('Udp:'))
    const head = lines[0]!.split(/\s+/)
    const vals = lines[1]!.split(/\s+/)
    const i = head.indexOf('RcvbufErrors')
    return i < 0 ? null : Number(vals[i])
  } catch {
    return null
  }
}

function env (): NodeJS.ProcessEnv {
  const e = { ...process.env }
  delete e.NODE_OPTIONS
  return e
}

/** Sends a command to the simulator and waits for its answer line. */
class Sim {
  readonly proc: LabProcess
  readonly #lines: string[] = []
  #wake: (() => void) | null = null
  constructor (proc: LabProcess) {
    this.proc = proc
    const rl = createInterface({ input: proc.child.stdout! })
    rl.on('line', (l) => { if (l.startsWith('{')) { this.#lines.push(l); this.#wake?.() } })
  }

  async next (timeoutMs = 120_000): Promise<Record<string, unknown>> {
    const end = Date.now() + timeoutMs
    while (this.#lines.length === 0) {
      if (this.proc.exitInfo !== null) throw new Error(`the simulator exited (code ${this.proc.exitInfo.code}):\n${this.proc.tail(20)}`)
      if (Date.now() > end) throw new Error('the simulator did not answer in time')
      await new Promise<void>((resolve) => { this.#wake = resolve; setTimeout(resolve, 200) })
    }
    const j = JSON.parse(this.#lines.shift()!) as Record<string, unknown>
    if (j.ev === 'error') throw new Error(`simulator: ${String(j.message)}`)
    return j
  }

  async cmd (c: Record<string, unknown>, timeoutMs?: number): Promise<Record<string, unknown>> {
    this.proc.write(JSON.stringify(c) + '\n')
    return await this.next(timeoutMs)
  }
}

export async function runScale (steps: number[], relaySeconds: number, log: (l: string) => void, serverArgs: string[] = []): Promise<{ steps: ScaleStep[], e2e: Record<string, unknown>, baseRssKb: number | null, peakRssKb: number | null }> {
  const max = Math.max(...steps)
  const topo = await createTopology({ clients: [{ name: 'sim', nat: 'none' }] })
  const dir = mkdtempSync(join(tmpdir(), 'lwt-scale-'))
  const procs: LabProcess[] = []
  try {
    const srv = spawnIn(topo.serverNs, 'env', ['-u', 'NODE_OPTIONS', BIN, 'server', '--listen', `${topo.serverWanIp}:9000`, '--tun', '10.77.0.1/16', '--key', 'bench-network-key',
      '--dev', `lw${topo.id}x0`, '--control', join(dir, 's.sock'), '--max-clients', String(max), '--log-level', 'warn', '--state-dir', join(dir, 'state'), ...serverArgs], { env: env(), maxOutputBytes: 256 * 1024 })
    procs.push(srv)
    await srv.waitForOutput(/./, 100).catch(() => {})
    await sleep(1500)
    if (srv.exitInfo !== null) throw new Error(`the server exited: ${srv.tail(10)}`)
    const pid = srv.pid!
    const baseRss = rssKb(pid)
    log(`server up (pid ${pid}), RSS ${((baseRss ?? 0) / 1024).toFixed(1)} MiB with no client`)
    const simProc = spawnIn(topo.client('sim').ns, 'env', ['-u', 'NODE_OPTIONS', process.execPath, join(ROOT, 'dist', 'bench', 'scale-sim.js'), topo.serverWanIp, '9000', 'bench-network-key', topo.client('sim').lanIp, '16'], { env: env() })
    procs.push(simProc)
    const sim = new Sim(simProc)
    await sim.next(30_000)
    const out: ScaleStep[] = []
    let prevRss = baseRss
    let prevN = 0
    for (const n of steps) {
      log(`registering up to ${n} clients...`)
      const k0 = await serverCounters(topo.serverNs, join(dir, 's.sock'))
      const c0 = cpuSeconds(pid)
      const reg = await sim.cmd({ cmd: 'register', total: n })
      const c1 = cpuSeconds(pid)
      const added = Number(reg.added)
      log(`  ${String(reg.ok)}/${added} registered in ${String(reg.ms)} ms (${String(reg.inits)} inits, ${String(reg.refused)} refused)`)
      await sleep(2000) // peer-list fan-out settles
      const rss = rssKb(pid)
      log('  every client pings...')
      const p = await sim.cmd({ cmd: 'pingall' })
      log(`  relay blast ${relaySeconds} s...`)
      const e0 = await rcvbufErrors(topo.serverNs)
      const l0 = await linkStats(topo.serverNs, topo.serverLink)
      const rc0 = cpuSeconds(pid)
      const t0 = Date.now()
      const r = await sim.cmd({ cmd: 'relay', seconds: relaySeconds, size: 1400 }, (relaySeconds + 30) * 1000)
      const wall = (Date.now() - t0) / 1000
      const rc1 = cpuSeconds(pid)
      const l1 = await linkStats(topo.serverNs, topo.serverLink)
      const e1 = await rcvbufErrors(topo.serverNs)
      await sleep(1500) // the simulator drains what it did not read
      const k1 = await serverCounters(topo.serverNs, join(dir, 's.sock'))
      const serverDrops: Record<string, number> = {}
      for (const [k, v] of Object.entries(k1)) if (k.startsWith('drop') && v - (k0[k] ?? 0) > 0) serverDrops[k] = v - (k0[k] ?? 0)
      const ms = Number(reg.ms)
      const step: ScaleStep = {
        clients: Number(reg.n),
        added,
        registerMs: ms,
        handshakesPerSec: ms > 0 ? (Number(reg.ok) / ms) * 1000 : 0,
        initsPerClient: added > 0 ? Number(reg.inits) / added : 0,
        serverCpuMsPerHandshake: c0 !== null && c1 !== null && Number(reg.ok) > 0 ? ((c1 - c0) * 1000) / Number(reg.ok) : null,
        rssKb: rss,
        rssPerClientKb: rss !== null && baseRss !== null && Number(reg.n) > 0 ? (rss - baseRss) / Number(reg.n) : null,
        rssGrowthPerAddedKb: rss !== null && prevRss !== null && Number(reg.n) > prevN ? (rss - prevRss) / (Number(reg.n) - prevN) : null,
        pingAllMs: Number(p.ms),
        pongs: Number(p.pongs),
        pingP50Ms: p.p50 as number | null,
        pingP99Ms: p.p99 as number | null,
        relaySentPps: Number(r.sent) / Number(r.seconds),
        relayForwardedPps: (l1.txPackets - l0.txPackets) / Number(r.seconds),
        relayServerCpuPct: rc0 !== null && rc1 !== null ? (100 * (rc1 - rc0)) / wall : null,
        serverDrops,
        relayRcvbufErrors: e0 !== null && e1 !== null ? e1 - e0 : null
      }
      out.push(step)
      log(`  ${step.clients} clients: ${step.handshakesPerSec.toFixed(0)} handshakes/s, RSS ${((rss ?? 0) / 1024).toFixed(1)} MiB, relay ${(step.relayForwardedPps / 1000).toFixed(0)} kpps forwarded of ${(step.relaySentPps / 1000).toFixed(0)} kpps sent; server drops ${JSON.stringify(serverDrops)}, UDP rcvbuf errors ${step.relayRcvbufErrors ?? '?'}`)
      prevRss = rss
      prevN = Number(reg.n)
    }
    const e2e = await sim.cmd({ cmd: 'e2e' })
    log(`end-to-end relayed session: ${JSON.stringify(e2e)}`)
    const peak = peakRssKb(pid)
    simProc.write('{"cmd":"quit"}\n')
    return { steps: out, e2e, baseRssKb: baseRss, peakRssKb: peak }
  } finally {
    await Promise.all(procs.map((p) => p.stop('SIGTERM', 3000).catch(() => 0)))
    await topo.destroy().catch(() => {})
    rmSync(dir, { recursive: true, force: true })
  }
}

export function scaleTable (steps: readonly ScaleStep[]): string {
  const f = (v: number | null, d = 0): string => v === null || !Number.isFinite(v) ? '–' : v.toFixed(d)
  const head = ['clients', 'handshakes/s', 'inits per client', 'server CPU ms/handshake', 'server RSS MiB', 'RSS per client KiB', 'RSS growth per added client KiB', 'all ping → last pong ms (pongs)', 'pong RTT p50 / p99 ms', 'relay kpps forwarded (sent)', 'server CPU % during relay']
  const rows = steps.map((s) => [String(s.clients), f(s.handshakesPerSec), f(s.initsPerClient, 2), f(s.serverCpuMsPerHandshake, 2), f(s.rssKb === null ? null : s.rssKb / 1024, 1), f(s.rssPerClientKb, 1), f(s.rssGrowthPerAddedKb, 1), `${f(s.pingAllMs)} (${s.pongs})`, `${f(s.pingP50Ms)} / ${f(s.pingP99Ms)}`, `${f(s.relayForwardedPps / 1000, 1)} (${f(s.relaySentPps / 1000, 1)})`, f(s.relayServerCpuPct)])
  const line = (c: string[]): string => `| ${c.join(' | ')} |`
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n')
}

async function main (): Promise<number> {
  const { values } = parseArgs({ options: { steps: { type: 'string' }, 'relay-seconds': { type: 'string' }, json: { type: 'string' }, placement: { type: 'string' }, help: { type: 'boolean', short: 'h' } } })
  if (values.help === true) { console.log('npm run bench:scale -- [--steps 10,100,1000] [--relay-seconds 3] [--placement split|fused] [--json FILE]'); return 0 }
  const steps = (values.steps ?? '10,100,1000').split(',').map(Number)
  const t0 = Date.now()
  const res = await runScale(steps, Number(values['relay-seconds'] ?? 3), (l) => { process.stderr.write(`scale: ${l}\n`) }, values.placement === undefined ? [] : ['--placement', values.placement])
  console.log(scaleTable(res.steps))
  console.log(`server RSS with no client ${((res.baseRssKb ?? 0) / 1024).toFixed(1)} MiB, peak ${((res.peakRssKb ?? 0) / 1024).toFixed(1)} MiB; end-to-end relayed session: ${JSON.stringify(res.e2e)}; ${((Date.now() - t0) / 1000).toFixed(0)} s`)
  const file = values.json ?? join(ROOT, 'bench', 'results', `scale-${new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)}.json`)
  mkdirSync(join(file, '..'), { recursive: true })
  writeFileSync(file, JSON.stringify({ version: 1, at: new Date().toISOString(), ...res }, null, 2) + '\n')
  return 0
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then((c) => { process.exitCode = c }, (err: unknown) => { console.error(`scale: ${err instanceof Error ? err.stack ?? err.message : String(err)}`); process.exitCode = 1 })
}
