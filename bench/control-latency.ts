/**
 * `npm run bench:control`: what running the pipelines on a client's main
 * thread costs its control plane. Under a saturating TCP transfer through
 * client A, how late do A's timers fire (keepalives, direct-path heartbeats,
 * failover detection), per `--placement`, side by side in one lab?
 *
 * 1. Lab (src/lab/topology.ts): the server S and clients A and B, each behind
 *    its own port-restricted NAT, so A ↔ B is a punched direct path. One
 *    server daemon (its default placement, fused) for the whole run.
 * 2. Rounds: per round, every placement once, the order reversed each round
 *    (round 1 inline, fused, split; round 2 split, fused, inline; ...). Per
 *    placement: wait for a quiet machine (the busy share is recorded), start A
 *    and B with that placement, wait until A ↔ B is direct, then
 *      idle     10 s idle: A's status → controlPlane (the 10-s window)
 *      server   iperf3 TCP, 1 stream, A → S's tunnel address (relay to the server)
 *      direct   iperf3 TCP, 1 stream, A → B over the direct path
 *      after    12 s idle again (the 10-s window then holds no transfer)
 *      failover iperf3 A → B; cut the direct path (nftables drop between the
 *               two NATs' WAN addresses); the time until A's status shows B on
 *               the relay (pathAgeSec dates the switch); heal; wait for direct
 *    During each transfer A's status is read every second (path to B: did it
 *    ever leave direct = a false failover) and at the transfer's last second
 *    (the window then covers the load only). The heartbeat interval actually
 *    sent is the transfer's length ÷ the heartbeats (pingsSent on B's direct
 *    candidate) sent during it.
 * 3. Prints a table (medians over the rounds, ranges in brackets) and writes
 *    bench/results/control-latency-<time>.json.
 *
 * The status is read through the control socket from this process (no CLI
 * process per reading). Everything is removed at the end, on failure and on
 * Ctrl-C: the lab's destroy() kills every process in its namespaces.
 *
 *   node dist/bench/control-latency.js [--rounds 3] [--seconds 10] [--placements inline,fused,split]
 *        [--no-failover] [--max-busy 0.5] [--out bench/results]
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { createTopology, type Topology } from '../src/lab/topology.js'
import { blockBetween, unblock } from '../src/lab/nat.js'
import { runIn, sleep, spawnIn, waitFor, type LabProcess } from '../src/lab/exec.js'
import { controlRequest } from '../src/cli/control-protocol.js'
import type { ControlPlaneInfo, PeerStatus, StatusReport } from '../src/control/status.js'
import { cpuSeconds, readProcStat, rssKb, waitQuiet } from './lib/machine.js'
import { busyBetween, median, parseIperfTcp } from './lib/parse.js'
import { BIN, ROOT } from './tunnels/index.js'
import { stateDirFor } from '../src/lab/state-dirs.js'

const KEY = 'bench-control-latency-key'
const S_TUN = '10.79.0.1'
const A_TUN = '10.79.0.2'
const B_TUN = '10.79.0.3'
const IPERF_PORT = 5302
const PLACEMENTS = ['inline', 'fused', 'split'] as const
type Placement = typeof PLACEMENTS[number]

interface Node { proc: LabProcess, ns: string, control: string }

/** What one transfer showed. */
interface LoadSample {
  mbps: number | null
  /** A's controlPlane at the transfer's last second (the 10-s window covers the load). */
  cp: ControlPlaneInfo | null
  /** Timer runs and late runs during the transfer (status totals, end − start). */
  ticks: number
  ticksLate: number
  /** Mean interval between heartbeats to B during the transfer, ms (direct only). */
  heartbeatMs: number | null
  /** The path to B left 'direct' during the transfer (seen in a 1-s reading or in pathChanges). */
  falseFailover: boolean
  /** A's CPU seconds per GB carried. */
  cpuSecPerGB: number | null
  /** Machine busy share during the transfer (0..1). */
  busy: number
}

interface RunSample {
  round: number
  placement: Placement
  busyBefore: number
  rssKb: number | null
  idle: ControlPlaneInfo | null
  server: LoadSample | null
  direct: LoadSample | null
  after: ControlPlaneInfo | null
  /** Cut → A shows B on the relay, ms; null when not measured or never seen. */
  failoverMs: number | null
  errors: string[]
}

function env (): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (k !== 'NODE_OPTIONS') e[k] = v
  return e
}

function startDaemon (ns: string, control: string, args: string[]): Node {
  const proc = spawnIn(ns, 'env', ['-u', 'NODE_OPTIONS', BIN, ...args, '--key', KEY, '--dev', 'lwt0', '--control', control, '--quiet', '--state-dir', stateDirFor(ns)], { env: env(), maxOutputBytes: 64 * 1024 })
  return { proc, ns, control }
}

async function status (n: Node): Promise<StatusReport | null> {
  try { return await controlRequest(n.control, { cmd: 'status', sampleLoop: true }, 2000) as StatusReport } catch { return null }
}

function peerB (s: StatusReport | null): PeerStatus | undefined {
  return s?.peers.find((p) => p.tunnelIp === B_TUN)
}

/** Heartbeats sent so far to B's candidates (only the direct one gets them while direct). */
function pingsToB (s: StatusReport | null): number {
  return peerB(s)?.p2p?.candidates.reduce((a, c) => a + c.pingsSent, 0) ?? 0
}

async function iperfServer (ns: string, ip: string): Promise<LabProcess> {
  const srv = spawnIn(ns, 'iperf3', ['-s', '-1', '-B', ip, '-p', String(IPERF_PORT)])
  await waitFor(async () => {
    if (srv.exitInfo !== null) throw new Error(`iperf3 server exited: ${srv.tail(3)}`)
    const { stdout } = await runIn(ns, 'ss', ['-Hltn', `sport = :${IPERF_PORT}`])
    return stdout.trim() !== ''
  }, { timeoutMs: 5000, intervalMs: 50, what: 'the iperf3 server' })
  return srv
}

function iperfClient (ns: string, src: string, dst: string, seconds: number): Promise<string> {
  return runIn(ns, 'iperf3', ['-c', dst, '-B', src, '-p', String(IPERF_PORT), '-t', String(seconds), '-O', '1', '-J'], { timeoutMs: (seconds + 25) * 1000 })
    .then((r) => r.stdout, (err: unknown) => (err as { stdout?: string }).stdout ?? String(err))
}

/** One transfer from A to `dst` with A's status read every second and at the last second. */
async function load (a: Node, dstNs: string, dst: string, seconds: number, watchDirect: boolean): Promise<LoadSample> {
  const srv = await iperfServer(dstNs, dst)
  try {
    const s0 = await status(a)
    const pid = a.proc.pid
    const cpu0 = pid === undefined ? null : cpuSeconds(pid)
    const stat0 = readProcStat()
    const t0 = performance.now()
    // -O 1: the first second (slow start) is left out of the rate; the transfer lasts seconds + 1.
    const transfer = iperfClient(a.ns, A_TUN, dst, seconds)
    let falseFailover = false
    let last: StatusReport | null = null
    let lastAt = t0
    let pings1 = pingsToB(s0)
    for (let i = 1; i <= seconds + 1; i++) {
      await sleep(Math.max(0, t0 + i * 1000 - 150 - performance.now()))
      const s = await status(a)
      if (s === null) continue
      if (watchDirect && peerB(s)?.path !== 'direct') falseFailover = true
      last = s
      lastAt = performance.now()
      pings1 = pingsToB(s)
    }
    const out = await transfer
    const cpu1 = pid === undefined ? null : cpuSeconds(pid)
    const busy = busyBetween(stat0, readProcStat())
    const p = parseIperfTcp(out)
    const bytes = p.ok ? p.value.bytes : 0
    if (watchDirect && (peerB(last)?.p2p?.pathChanges ?? 0) !== (peerB(s0)?.p2p?.pathChanges ?? 0)) falseFailover = true
    const sent = pings1 - pingsToB(s0)
    return {
      mbps: p.ok ? p.value.bps / 1e6 : null,
      cp: last?.controlPlane ?? null,
      ticks: (last?.controlPlane?.ticks ?? 0) - (s0?.controlPlane?.ticks ?? 0),
      ticksLate: (last?.controlPlane?.ticksLate ?? 0) - (s0?.controlPlane?.ticksLate ?? 0),
      heartbeatMs: watchDirect && sent > 0 ? (lastAt - t0) / sent : null,
      falseFailover,
      cpuSecPerGB: cpu0 !== null && cpu1 !== null && bytes > 0 ? (cpu1 - cpu0) / (bytes / 1e9) : null,
      busy
    }
  } finally {
    await srv.stop('SIGKILL', 1000).catch(() => 0)
  }
}

/** Cut A ↔ B mid-transfer; ms until A's status shows B on the relay (dated by pathAgeSec). Heals and waits for direct again. */
async function failover (topo: Topology, a: Node, b: Node): Promise<number | null> {
  const wa = topo.client('a').routerWanIp!
  const wb = topo.client('b').routerWanIp!
  const srv = await iperfServer(b.ns, B_TUN)
  const transfer = iperfClient(a.ns, A_TUN, B_TUN, 8)
  let ms: number | null = null
  try {
    await sleep(2000)
    const cutAt = performance.now()
    await blockBetween(topo.internetNs, wa, wb)
    try {
      await waitFor(async () => {
        const s = await status(a)
        const p = peerB(s)
        if (p?.path !== 'relay') return false
        ms = Math.max(0, performance.now() - 1000 * (p.p2p?.pathAgeSec ?? 0) - cutAt)
        return true
      }, { timeoutMs: 10_000, intervalMs: 25, what: 'A to show B on the relay' })
    } catch { /* stays null */ }
  } finally {
    await unblock(topo.internetNs, wa, wb)
    await transfer
    await srv.stop('SIGKILL', 1000).catch(() => 0)
  }
  await waitFor(async () => peerB(await status(a))?.path === 'direct', { timeoutMs: 20_000, intervalMs: 200, what: 'A ↔ B direct again' }).catch(() => {})
  return ms
}

async function runOne (topo: Topology, dir: string, round: number, placement: Placement, seconds: number, doFailover: boolean, maxBusy: number, log: (l: string) => void): Promise<RunSample> {
  const r: RunSample = { round, placement, busyBefore: 0, rssKb: null, idle: null, server: null, direct: null, after: null, failoverMs: null, errors: [] }
  const q = await waitQuiet({ maxBusy, windowMs: 2000, timeoutMs: 20_000 })
  r.busyBefore = q.busy
  const remote = `${topo.serverWanIp}:9000`
  const a = startDaemon(topo.client('a').ns, join(dir, `a-${round}-${placement}.sock`), ['client', '--remote', remote, '--tun', `${A_TUN}/24`, '--placement', placement])
  const b = startDaemon(topo.client('b').ns, join(dir, `b-${round}-${placement}.sock`), ['client', '--remote', remote, '--tun', `${B_TUN}/24`, '--placement', placement])
  const step = async (name: string, fn: () => Promise<void>): Promise<void> => {
    try { await fn() } catch (err) { r.errors.push(`${name}: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`) }
  }
  try {
    await waitFor(async () => {
      for (const n of [a, b]) if (n.proc.exitInfo !== null) throw new Error(`a client exited: ${n.proc.tail(5)}`)
      return peerB(await status(a))?.path === 'direct'
    }, { timeoutMs: 30_000, intervalMs: 200, what: 'A ↔ B direct' })
    log(`round ${round} ${placement}: A ↔ B direct; 10 s idle`)
    await sleep(10_000)
    r.idle = (await status(a))?.controlPlane ?? null
    r.rssKb = a.proc.pid === undefined ? null : rssKb(a.proc.pid)
    await step('server', async () => { r.server = await load(a, topo.serverNs, S_TUN, seconds, false) })
    log(`round ${round} ${placement}: A → server ${r.server?.mbps?.toFixed(0) ?? '-'} Mbit/s, tick late p99 ${r.server?.cp?.tickLateMs.p99 ?? '-'} ms`)
    await step('direct', async () => { r.direct = await load(a, b.ns, B_TUN, seconds, true) })
    log(`round ${round} ${placement}: A → B direct ${r.direct?.mbps?.toFixed(0) ?? '-'} Mbit/s, tick late p99 ${r.direct?.cp?.tickLateMs.p99 ?? '-'} ms, heartbeat every ${r.direct?.heartbeatMs?.toFixed(0) ?? '-'} ms${r.direct?.falseFailover === true ? ', FELL BACK TO RELAY' : ''}`)
    await sleep(12_000)
    r.after = (await status(a))?.controlPlane ?? null
    if (doFailover) {
      await step('failover', async () => { r.failoverMs = await failover(topo, a, b) })
      log(`round ${round} ${placement}: cut → relay in ${r.failoverMs?.toFixed(0) ?? '-'} ms`)
    }
  } catch (err) {
    r.errors.push(err instanceof Error ? err.message.split('\n')[0]! : String(err))
    log(`round ${round} ${placement}: failed: ${r.errors.at(-1)}`)
  } finally {
    await Promise.all([a.proc.stop('SIGTERM', 3000).catch(() => 0), b.proc.stop('SIGTERM', 3000).catch(() => 0)])
  }
  return r
}

// ── summary ──────────────────────────────────────────────────────────────────

interface Row { metric: string, get: (s: RunSample) => number | null | undefined, digits: number }

const ROWS: Row[] = [
  { metric: 'TCP A → server, Mbit/s', get: (s) => s.server?.mbps, digits: 0 },
  { metric: 'TCP A → B direct, Mbit/s', get: (s) => s.direct?.mbps, digits: 0 },
  { metric: 'A CPU s/GB, A → B direct', get: (s) => s.direct?.cpuSecPerGB, digits: 2 },
  { metric: 'A RSS idle, MiB', get: (s) => s.rssKb == null ? null : s.rssKb / 1024, digits: 1 },
  { metric: 'idle: tick late p99, ms', get: (s) => s.idle?.tickLateMs.p99, digits: 1 },
  { metric: 'idle: loop delay p99, ms', get: (s) => s.idle?.loopDelayMs?.p99, digits: 1 },
  { metric: 'load → server: tick late p50, ms', get: (s) => s.server?.cp?.tickLateMs.p50, digits: 1 },
  { metric: 'load → server: tick late p99, ms', get: (s) => s.server?.cp?.tickLateMs.p99, digits: 1 },
  { metric: 'load → server: tick late max, ms', get: (s) => s.server?.cp?.tickLateMs.max, digits: 1 },
  { metric: 'load → server: loop delay p50, ms', get: (s) => s.server?.cp?.loopDelayMs?.p50, digits: 1 },
  { metric: 'load → server: loop delay p99, ms', get: (s) => s.server?.cp?.loopDelayMs?.p99, digits: 1 },
  { metric: 'load → server: loop delay max, ms', get: (s) => s.server?.cp?.loopDelayMs?.max, digits: 1 },
  { metric: 'load → server: runs > 20 ms late', get: (s) => s.server?.ticksLate, digits: 0 },
  { metric: 'load → B: tick late p50, ms', get: (s) => s.direct?.cp?.tickLateMs.p50, digits: 1 },
  { metric: 'load → B: tick late p99, ms', get: (s) => s.direct?.cp?.tickLateMs.p99, digits: 1 },
  { metric: 'load → B: tick late max, ms', get: (s) => s.direct?.cp?.tickLateMs.max, digits: 1 },
  { metric: 'load → B: loop delay p50, ms', get: (s) => s.direct?.cp?.loopDelayMs?.p50, digits: 1 },
  { metric: 'load → B: loop delay p99, ms', get: (s) => s.direct?.cp?.loopDelayMs?.p99, digits: 1 },
  { metric: 'load → B: loop delay max, ms', get: (s) => s.direct?.cp?.loopDelayMs?.max, digits: 1 },
  { metric: 'load → B: runs > 20 ms late', get: (s) => s.direct?.ticksLate, digits: 0 },
  { metric: 'load → B: timer runs', get: (s) => s.direct?.ticks, digits: 0 },
  { metric: 'load → B: heartbeat interval, ms (400 asked)', get: (s) => s.direct?.heartbeatMs, digits: 0 },
  { metric: 'load → B: false failovers', get: (s) => s.direct == null ? null : s.direct.falseFailover ? 1 : 0, digits: 0 },
  { metric: 'after: tick late p99, ms', get: (s) => s.after?.tickLateMs.p99, digits: 1 },
  { metric: 'failover: cut → relay, ms', get: (s) => s.failoverMs, digits: 0 },
  { metric: 'machine busy before, %', get: (s) => 100 * s.busyBefore, digits: 0 },
  { metric: 'machine busy during load → B, %', get: (s) => s.direct == null ? null : 100 * s.direct.busy, digits: 0 }
]

/** "12.3 [10.1–15.0]": median and range over the rounds. */
function cell (xs: number[], digits: number, sum: boolean): string {
  if (xs.length === 0) return '–'
  const f = (x: number): string => x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
  if (sum) return `${f(xs.reduce((a, b) => a + b, 0))} of ${xs.length}`
  const m = median(xs)!
  return xs.length === 1 ? f(m) : `${f(m)} [${f(Math.min(...xs))}–${f(Math.max(...xs))}]`
}

function summaryTable (samples: readonly RunSample[], placements: readonly Placement[]): string {
  const lines = [`| metric | ${placements.join(' | ')} |`, `|---|${placements.map(() => '---|').join('')}`]
  for (const row of ROWS) {
    const sum = row.metric.includes('false failovers')
    const cells = placements.map((p) => cell(samples.filter((s) => s.placement === p).map(row.get).filter((x): x is number => typeof x === 'number' && Number.isFinite(x)), row.digits, sum))
    lines.push(`| ${row.metric} | ${cells.join(' | ')} |`)
  }
  return lines.join('\n')
}

// ── main ─────────────────────────────────────────────────────────────────────

async function main (): Promise<number> {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string' }, seconds: { type: 'string' }, placements: { type: 'string' }, 'no-failover': { type: 'boolean' },
      'max-busy': { type: 'string' }, out: { type: 'string' }, help: { type: 'boolean', short: 'h' }
    }
  })
  if (values.help === true) {
    console.log('npm run bench:control -- [--rounds 3] [--seconds 10] [--placements inline,fused,split] [--no-failover] [--max-busy 0.5] [--out DIR]')
    return 0
  }
  if (typeof process.getuid === 'function' && process.getuid() !== 0) { console.error('bench:control: needs root (network namespaces, TUN devices)'); return 1 }
  const rounds = Number(values.rounds ?? 3)
  const seconds = Number(values.seconds ?? 10)
  const maxBusy = Number(values['max-busy'] ?? 0.5)
  const placements = (values.placements?.split(',') ?? [...PLACEMENTS]) as Placement[]
  for (const p of placements) if (!PLACEMENTS.includes(p)) { console.error(`bench:control: unknown placement "${p}"`); return 1 }
  const t0 = Date.now()
  const log = (l: string): void => { process.stderr.write(`${String(Math.round((Date.now() - t0) / 1000)).padStart(4)} s  ${l}\n`) }
  const dir = mkdtempSync(join(tmpdir(), 'lwt-ctl-'))
  let topo: Topology | null = null
  // Ctrl-C: exit; the lab's exit hook (src/lab/netns.ts) kills every process in the namespaces and deletes them.
  const onSignal = (sig: NodeJS.Signals): void => {
    process.stderr.write(`\nbench:control: ${sig}: removing the lab\n`)
    rmSync(dir, { recursive: true, force: true })
    process.exit(130)
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  const samples: RunSample[] = []
  try {
    log('building the lab: server, clients a and b behind port-restricted NATs')
    topo = await createTopology({ clients: [{ name: 'a', nat: 'port-restricted' }, { name: 'b', nat: 'port-restricted' }] })
    const server = startDaemon(topo.serverNs, join(dir, 'server.sock'), ['server', '--listen', '0.0.0.0:9000', '--tun', `${S_TUN}/24`])
    await waitFor(async () => {
      if (server.proc.exitInfo !== null) throw new Error(`the server exited: ${server.proc.tail(5)}`)
      return (await status(server)) !== null
    }, { timeoutMs: 15_000, intervalMs: 200, what: 'the server' })
    for (let round = 1; round <= rounds; round++) {
      const order = round % 2 === 1 ? placements : [...placements].reverse()
      for (const p of order) samples.push(await runOne(topo, dir, round, p, seconds, values['no-failover'] !== true, maxBusy, log))
    }
  } finally {
    log('removing the lab')
    await topo?.destroy().catch((err: unknown) => { log(`cleanup: ${String(err)}`) })
    rmSync(dir, { recursive: true, force: true })
  }
  const table = summaryTable(samples, placements)
  const outDir = values.out ?? join(ROOT, 'bench', 'results')
  mkdirSync(outDir, { recursive: true })
  const file = join(outDir, `control-latency-${new Date(t0).toISOString().replace(/[:.]/g, '-').slice(0, 19)}.json`)
  writeFileSync(file, JSON.stringify({ at: new Date(t0).toISOString(), rounds, seconds, placements, samples, table }, null, 2) + '\n')
  console.log(`\nA's control plane under a single-stream TCP load, ${rounds} rounds (median [min–max]); both clients on the placement, the server fused:\n`)
  console.log(table)
  const errors = samples.flatMap((s) => s.errors.map((e) => `round ${s.round} ${s.placement}: ${e}`))
  if (errors.length > 0) console.log(`\nproblems:\n${errors.map((e) => `- ${e}`).join('\n')}`)
  console.log(`\nbench:control: ${Math.round((Date.now() - t0) / 1000)} s; results in ${file}`)
  return samples.some((s) => s.server === null && s.direct === null) ? 1 : 0
}

main().then((c) => { process.exitCode = c }, (err: unknown) => {
  console.error(`bench:control: ${err instanceof Error ? err.stack ?? err.message : String(err)}`)
  process.exitCode = 1
})
