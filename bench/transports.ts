/**
 * The transports side by side (issue 12): single-stream TCP (iperf3) to the
 * server's tunnel address through the UDP transport and through the TCP
 * transport in one run (alternating, so background load hits both alike),
 * with the ratio (goal: TCP ≥ 0.3× UDP); the time from start to a registered
 * tunnel with UDP blocked at the client's router (median of N; goal ≤ 3 s),
 * beside the same with UDP open; and the time back on UDP after the block is
 * lifted (median of N; goal ≤ 10 s).
 *
 *   node dist/bench/transports.js [--seconds 10] [--reps 2] [--starts 5]
 *
 * Needs root, iproute2, nft, iperf3. Every namespace it makes is removed at
 * the end, also on failure.
 */
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import { createTopology, type Topology } from '../src/lab/topology.js'
import { runIn, sleep, spawnIn, waitFor, type LabProcess } from '../src/lab/exec.js'
import { stateDirFor } from '../src/lab/state-dirs.js'
import type { StatusReport } from '../src/control/status.js'

const BIN = fileURLToPath(new URL('../../bin/lightweight-tunnel', import.meta.url))
const KEY = 'bench-transports-key'
const S_IP = '10.88.0.1'

interface Node { proc: LabProcess, ns: string, control: string }

function env (): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (k !== 'NODE_OPTIONS') e[k] = v
  return e
}

function start (ns: string, id: string, name: string, args: string[]): Node {
  const control = `/run/lightweight-tunnel/bench-${id}-${name}.sock`
  const proc = spawnIn(ns, BIN, [...args, '--key', KEY, '--dev', 'lwt0', '--control', control, '--quiet', '--state-dir', stateDirFor(ns)], { env: env() })
  return { proc, ns, control }
}

async function status (n: Node): Promise<StatusReport | null> {
  try { return JSON.parse((await runIn(n.ns, BIN, ['status', '--json', '--control', n.control], { env: env() })).stdout) as StatusReport } catch { return null }
}

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

async function blockUdp (topo: Topology, name: string, on: boolean): Promise<void> {
  const ns = topo.client(name).routerNs!
  if (on) await runIn(ns, 'nft', ['-f', '-'], { input: 'table inet lwtblock {\n chain block {\n  type filter hook forward priority -10; policy accept;\n  udp dport 9000 drop\n }\n}\n' })
  else await runIn(ns, 'nft', ['delete', 'table', 'inet', 'lwtblock'])
}

const serverPath = (s: StatusReport | null): { transport: string, registered: boolean } =>
  ({ transport: s?.peers.find(p => p.role === 'server')?.transport ?? '?', registered: s?.state === 'registered' })

/** Spawn a client and time it until registered over `want` (ms from spawn). */
async function timeStart (topo: Topology, name: string, tun: string, want: string): Promise<{ node: Node, ms: number }> {
  const t0 = performance.now()
  const node = start(topo.client(name).ns, topo.id, name, ['client', '--remote', `${topo.serverWanIp}:9000`, '--tun', tun, '--no-p2p'])
  await waitFor(async () => { const p = serverPath(await status(node)); return p.registered && p.transport === want }, { timeoutMs: 30_000, intervalMs: 25, what: `${name} registered over ${want}` })
  return { node, ms: Math.round(performance.now() - t0) }
}

async function iperf (topo: Topology, from: string, seconds: number): Promise<number> {
  const srv = spawnIn(topo.serverNs, 'iperf3', ['-s', '-1', '-B', S_IP])
  await sleep(500)
  try {
    const r = await runIn(topo.client(from).ns, 'iperf3', ['-c', S_IP, '-t', String(seconds), '-J'], { timeoutMs: (seconds + 30) * 1000 })
    const j = JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } }
    return Math.round(j.end.sum_received.bits_per_second / 1e4) / 100
  } finally {
    await srv.stop('SIGKILL', 1000).catch(() => {})
  }
}

async function main (): Promise<void> {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '10' }, reps: { type: 'string', default: '2' }, starts: { type: 'string', default: '5' } } })
  const seconds = Number(values.seconds)
  const reps = Number(values.reps)
  const starts = Number(values.starts)
  const topo = await createTopology({ clients: [{ name: 'u', nat: 'port-restricted' }, { name: 't', nat: 'port-restricted' }, { name: 'f', nat: 'port-restricted' }] })
  try {
    start(topo.serverNs, topo.id, 'server', ['server', '--listen', '0.0.0.0:9000', '--tun', `${S_IP}/24`])
    const u = start(topo.client('u').ns, topo.id, 'u', ['client', '--remote', `${topo.serverWanIp}:9000`, '--tun', '10.88.0.2/24', '--no-p2p', '--transport', 'udp'])
    const t = start(topo.client('t').ns, topo.id, 't', ['client', '--remote', `${topo.serverWanIp}:9000`, '--tun', '10.88.0.3/24', '--no-p2p', '--transport', 'tcp'])
    for (const [n, want] of [[u, 'udp'], [t, 'tcp']] as const) {
      await waitFor(async () => { const p = serverPath(await status(n)); return p.registered && p.transport === want }, { timeoutMs: 30_000, intervalMs: 200, what: `${n.ns} on ${want}` })
    }
    const mbps: Record<'udp' | 'tcp', number[]> = { udp: [], tcp: [] }
    for (let rep = 0; rep < reps; rep++) {
      for (const [tr, from] of [['udp', 'u'], ['tcp', 't']] as const) {
        mbps[tr].push(await iperf(topo, from, seconds))
        console.log(`rep ${rep + 1} ${tr}: ${mbps[tr].at(-1)} Mbit/s`)
      }
    }
    const ts = await status(t)
    const drops = ts?.counters.transportDropBackedUp ?? 0

    // Start-up: with UDP open (reference), then with UDP blocked at f's router.
    const upOpen: number[] = []
    const upBlocked: number[] = []
    const back: number[] = []
    for (let i = 0; i < starts; i++) {
      const a = await timeStart(topo, 'f', '10.88.0.4/24', 'udp')
      upOpen.push(a.ms)
      await a.node.proc.stop('SIGTERM', 5000)
      await blockUdp(topo, 'f', true)
      const b = await timeStart(topo, 'f', '10.88.0.4/24', 'tcp')
      upBlocked.push(b.ms)
      await sleep(1000)
      const t0 = performance.now()
      await blockUdp(topo, 'f', false)
      await waitFor(async () => { const p = serverPath(await status(b.node)); return p.registered && p.transport === 'udp' }, { timeoutMs: 30_000, intervalMs: 25, what: 'f back on UDP' })
      back.push(Math.round(performance.now() - t0))
      await b.node.proc.stop('SIGTERM', 5000)
      console.log(`start ${i + 1}: registered ${a.ms} ms (UDP open), ${b.ms} ms (UDP blocked: TCP); back on UDP ${back.at(-1)} ms after the unblock`)
    }
    const mu = median(mbps.udp)
    const mt = median(mbps.tcp)
    console.log(`\nsingle-stream TCP (iperf3 ${seconds} s) client → server tunnel address, medians of ${reps}, same run`)
    console.log('transport   Mbit/s   ratio to UDP')
    console.log(`udp       ${String(Math.round(mu * 10) / 10).padStart(8)}   1.00`)
    console.log(`tcp       ${String(Math.round(mt * 10) / 10).padStart(8)}   ${(mt / mu).toFixed(2)}   (goal ≥ 0.30; whole messages dropped when backed up: ${drops})`)
    console.log(`\nstart → registered, median of ${starts}: UDP open ${median(upOpen)} ms, UDP blocked (fallback to TCP) ${median(upBlocked)} ms (goal ≤ 3000)`)
    console.log(`the fallback's own cost (blocked minus open, paired per start): median ${median(upBlocked.map((b, i) => b - upOpen[i]!))} ms`)
    console.log(`UDP unblocked → back on UDP, median of ${starts}: ${median(back)} ms (goal ≤ 10000)`)
  } finally {
    await topo.destroy()
  }
}

main().catch((err) => { console.error(err); process.exitCode = 1 })
