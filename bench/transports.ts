/**
 * bench:transports — the three transports side by side (issue 12 item 6): single-stream TCP through
 * the tunnel over UDP, TCP and fake TCP in one run, with the ratios to UDP (goals: TCP ≥ 0.3×, fake
 * TCP ≥ 0.6×); the time to a registered tunnel with UDP blocked at the client's router (fallback to
 * TCP, median of --starts; goal ≤ 3 s) beside the same with UDP open, each measured from the process
 * spawn and from the daemon's first log line (so Node's own start-up shows apart); and the time back
 * on UDP once the block is lifted (median; goal ≤ 10 s).
 *
 * In network namespaces (src/lab/topology.ts), every client behind its own port-restricted NAT router:
 *   server ns: S1 --listen :9000 --faketcp --tcp-listen :9443 (lwt0, 10.88.0.1)
 *              S2 --listen :9100, TCP on 9100 too (lwt1, 10.89.0.1), the fallback's server
 *   u → S1:9000 --transport udp · t → S1:9443 --transport tcp · f → S1:9000 --transport faketcp
 *   a → S2:9100 --transport auto, started --starts times with UDP open and with UDP blocked
 * iperf3 (1 stream, --seconds each, the first second omitted) runs u, t, f → S1 in turn, the order
 * rotated each round so machine load hits all three alike. The figures go to stdout and as JSON to
 * bench/results/transports-<time>.json.
 *
 *   npm run build && npm run bench:transports [-- --rounds 3 --seconds 5 --starts 5 --placement inline|fused|split --perf PREFIX]
 *
 * Needs root, iproute2, nft, iperf3. Every namespace it makes is removed at the end, also on failure.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { loadavg } from 'node:os'
import { parseArgs } from 'node:util'
import { createTopology, type Topology } from '../src/lab/topology.js'
import { stateDirFor } from '../src/lab/state-dirs.js'
import { run, runIn, sleep, spawnIn, waitFor, type LabProcess } from '../src/lab/exec.js'
import { controlRequest } from '../src/cli/control-protocol.js'
import type { StatusReport } from '../src/control/status.js'
import { median, parseIperfTcp } from './lib/parse.js'
import { BIN, ROOT } from './tunnels/index.js'

const KEY = 'bench-transports-network-key'
const PORT = 5312
const S1 = '10.88.0.1'
const TUN = { u: '10.88.0.2', t: '10.88.0.3', f: '10.88.0.4', a: '10.89.0.2' } as const
type Transport = 'udp' | 'tcp' | 'faketcp'
const CLIENT_OF: Record<Transport, 'u' | 't' | 'f'> = { udp: 'u', tcp: 't', faketcp: 'f' }

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, seconds: { type: 'string', default: '5' }, starts: { type: 'string', default: '5' }, placement: { type: 'string' }, perf: { type: 'string' } } })
/** --placement for the three throughput clients (default: theirs, inline). */
const placement = values.placement === undefined ? [] : ['--placement', values.placement]
const rounds = Number(values.rounds)
const seconds = Number(values.seconds)
const starts = Number(values.starts)
/** --perf PREFIX: the daemons run with --perf-basic-prof and the last round records `perf record -a -g` per transport into PREFIX-<transport>.data (that round's figures carry perf's cost). */
const perfPrefix = values.perf

function env (): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (k !== 'NODE_OPTIONS') e[k] = v
  if (perfPrefix !== undefined) e.NODE_OPTIONS = '--perf-basic-prof'
  return e
}

interface Node { proc: LabProcess, sock: string, spawnedAt: number, firstLogAt: number | null }

const daemons: Array<[string, Node]> = []

/** Start a daemon in `ns` (its log kept for a failure's message), noting when its first log line arrives. */
function start (topo: Topology, ns: string, name: string, args: string[]): Node {
  const sock = `/run/lightweight-tunnel/bench-${topo.id}-${name}.sock`
  const node: Node = { proc: undefined as unknown as LabProcess, sock, spawnedAt: performance.now(), firstLogAt: null }
  node.proc = spawnIn(ns, BIN, [...args, '--key', KEY, '--control', sock, '--state-dir', stateDirFor(`${topo.id}-${name}`)],
    { env: env(), maxOutputBytes: 64 * 1024, onOutput: () => { node.firstLogAt ??= performance.now() } })
  daemons.push([name, node])
  return node
}

async function status (n: Node): Promise<StatusReport | null> {
  try { return await controlRequest(n.sock, { cmd: 'status' }, 3000) as StatusReport } catch { return null }
}

/** Registered with the server over `want` (a status without a transport on the server path: udp). */
async function on (n: Node, want: Transport): Promise<boolean> {
  const s = await status(n)
  const p = s?.peers.find((x) => x.role === 'server')
  return s?.state === 'registered' && p !== undefined && (p.transport ?? 'udp') === want
}

async function blockUdp (topo: Topology, name: string, block: boolean): Promise<void> {
  const ns = topo.client(name).routerNs!
  if (block) await runIn(ns, 'nft', ['-f', '-'], { input: 'table inet lwtblock {\n chain block {\n  type filter hook forward priority -10; policy accept;\n  udp dport 9100 drop\n }\n}\n' })
  else await runIn(ns, 'nft', ['delete', 'table', 'inet', 'lwtblock'])
}

/** One iperf3 run from `srcNs` to S1's tunnel address; the receiver's rate in bits/s. */
async function iperf (srcNs: string, dstNs: string, src: string): Promise<number> {
  const srv = spawnIn(dstNs, 'iperf3', ['-s', '-1', '-B', S1, '-p', String(PORT)])
  try {
    await waitFor(async () => {
      if (srv.exitInfo !== null) throw new Error(`iperf3 server exited: ${srv.tail(3)}`)
      return (await runIn(dstNs, 'ss', ['-Hltn', `sport = :${PORT}`])).stdout.trim() !== ''
    }, { timeoutMs: 5000, intervalMs: 50, what: 'the iperf3 server' })
    const r = await runIn(srcNs, 'iperf3', ['-c', S1, '-B', src, '-p', String(PORT), '-t', String(seconds + 1), '-O', '1', '-J'], { timeoutMs: (seconds + 25) * 1000 })
    const p = parseIperfTcp(r.stdout)
    if (!p.ok) throw new Error(p.error)
    return p.value.bps
  } finally {
    await srv.stop('SIGKILL', 1000).catch(() => {})
  }
}

async function rxPackets (topo: Topology): Promise<number> {
  return Number((await runIn(topo.serverNs, 'cat', [`/sys/class/net/${topo.serverLink}/statistics/rx_packets`])).stdout)
}

interface Start { fromSpawn: number, fromFirstLog: number }

/** Spawn the fallback client `a` and time it until registered over `want`. */
async function timeStart (topo: Topology, want: Transport): Promise<{ node: Node, t: Start }> {
  const node = start(topo, topo.client('a').ns, 'a', ['client', '--remote', `${topo.serverWanIp}:9100`, '--tun', `${TUN.a}/24`, '--dev', 'lwt0', '--no-p2p'])
  await waitFor(async () => await on(node, want), { timeoutMs: 30_000, intervalMs: 20, what: `the fallback client registered over ${want}` })
  const now = performance.now()
  return { node, t: { fromSpawn: Math.round(now - node.spawnedAt), fromFirstLog: Math.round(now - (node.firstLogAt ?? node.spawnedAt)) } }
}

const med = (xs: number[]): number => Math.round(median(xs) ?? NaN)
const mbit = (bps: number): string => (bps / 1e6).toFixed(0)

const topo = await createTopology({ clients: ['u', 't', 'f', 'a'].map((name) => ({ name, nat: 'port-restricted' as const })) })
try {
  const wan = topo.serverWanIp
  const s1 = start(topo, topo.serverNs, 's1', ['server', '--listen', '0.0.0.0:9000', '--faketcp', '--tcp-listen', '0.0.0.0:9443', '--tun', `${S1}/24`, '--dev', 'lwt0'])
  start(topo, topo.serverNs, 's2', ['server', '--listen', '0.0.0.0:9100', '--tun', '10.89.0.1/24', '--dev', 'lwt1'])
  await sleep(1000)
  const remote: Record<Transport, string> = { udp: `${wan}:9000`, tcp: `${wan}:9443`, faketcp: `${wan}:9000` }
  const nodes = {} as Record<Transport, Node>
  for (const tr of ['udp', 'tcp', 'faketcp'] as const) {
    const c = CLIENT_OF[tr]
    nodes[tr] = start(topo, topo.client(c).ns, c, ['client', '--remote', remote[tr], '--transport', tr, '--tun', `${TUN[c]}/24`, '--dev', 'lwt0', '--no-p2p', ...placement])
  }
  for (const tr of ['udp', 'tcp', 'faketcp'] as const) {
    await waitFor(async () => await on(nodes[tr], tr), { timeoutMs: 30_000, intervalMs: 200, what: `the ${tr} client registered over ${tr}` })
    const c = CLIENT_OF[tr]
    await waitFor(async () => await runIn(topo.client(c).ns, 'ping', ['-c', '1', '-W', '1', S1]).then(() => true, () => false), { timeoutMs: 10_000, intervalMs: 100, what: `a ping over ${tr}` })
  }

  const order: Transport[] = ['udp', 'tcp', 'faketcp']
  if (perfPrefix !== undefined) console.log(`perf: daemon pids ${daemons.map(([name, n]) => `${name} ${n.proc.pid ?? '?'}`).join(', ')}`)
  const bps: Record<Transport, number[]> = { udp: [], tcp: [], faketcp: [] }
  /** Packets (skbs: a GSO/GRO batch is one) the server's WAN link received per iperf run. */
  const linkPkts: Record<Transport, number[]> = { udp: [], tcp: [], faketcp: [] }
  for (let i = 0; i < rounds; i++) {
    for (let k = 0; k < 3; k++) {
      const tr = order[(i + k) % 3]!
      const c = CLIENT_OF[tr]
      const rec = perfPrefix !== undefined && i === rounds - 1
        ? run('perf', ['record', '-a', '-g', '-F', '999', '-o', `${perfPrefix}-${tr}.data`, '--', 'sleep', String(seconds + 1)], { timeoutMs: (seconds + 30) * 1000 })
        : null
      const rx0 = await rxPackets(topo)
      bps[tr].push(await iperf(topo.client(c).ns, topo.serverNs, TUN[c]))
      linkPkts[tr].push((await rxPackets(topo)) - rx0)
      await rec
      console.log(`round ${i + 1} ${tr.padEnd(7)}: ${mbit(bps[tr].at(-1)!)} Mbit/s`)
    }
  }
  const extra = { tcpDropBackedUp: (await status(nodes.tcp))?.counters.transportDropBackedUp ?? 0, faketcp: (await status(nodes.faketcp))?.faketcp ?? null, rawDropped: {} as Record<string, string> }
  // Segments the raw sockets had no room for (the last column of /proc/net/raw): loss the inner TCP saw.
  for (const [who, ns] of [['server', topo.serverNs], ['fake-TCP client', topo.client('f').ns]] as const) {
    extra.rawDropped[who] = (await runIn(ns, 'cat', ['/proc/net/raw'])).stdout.trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/).pop()).join(', ')
  }
  // The kernel answers every fake-TCP segment it receives (no socket owns the port) with an RST, dropped by our nft rule: its counter.
  const rsts = async (ns: string, table: string): Promise<string> => /packets (\d+)/.exec((await runIn(ns, 'nft', ['list', 'table', 'inet', table]).catch(() => ({ stdout: '' }))).stdout)?.[1] ?? '?'
  const rstDropped = { server: await rsts(topo.serverNs, 'lwt_faketcp_9000'), client: await rsts(topo.client('f').ns, 'lwt_faketcp_c9000') }
  // The superpacket path (native/faketcp-packet.c): what the client sent and the server received as superpackets.
  const fc = (await status(nodes.faketcp))?.counters ?? {}
  const fs = (await status(s1))?.counters ?? {}
  const superpackets = { clientSent: fc.faketcpTxSuperpackets ?? 0, clientSegments: fc.faketcpTxPacketSegments ?? 0, serverReceived: fs.faketcpRxSuperpackets ?? 0, serverSegments: fs.faketcpRxSuperSegments ?? 0 }
  for (const tr of order) await nodes[tr].proc.stop('SIGTERM', 5000)

  // Start-up of an auto client: UDP open (reference), then UDP blocked at its router; then unblocked.
  const upOpen: Start[] = []
  const upBlocked: Start[] = []
  const back: number[] = []
  for (let i = 0; i < starts; i++) {
    const a = await timeStart(topo, 'udp')
    upOpen.push(a.t)
    await a.node.proc.stop('SIGTERM', 5000)
    await blockUdp(topo, 'a', true)
    const b = await timeStart(topo, 'tcp')
    upBlocked.push(b.t)
    await sleep(1000)
    const t0 = performance.now()
    await blockUdp(topo, 'a', false)
    await waitFor(async () => await on(b.node, 'udp'), { timeoutMs: 30_000, intervalMs: 20, what: 'the fallback client back on UDP' })
    back.push(Math.round(performance.now() - t0))
    await b.node.proc.stop('SIGTERM', 5000)
    console.log(`start ${i + 1}: UDP open ${a.t.fromSpawn} ms from spawn (${a.t.fromFirstLog} from the first log line); UDP blocked ${b.t.fromSpawn} ms (${b.t.fromFirstLog}); back on UDP ${back.at(-1)} ms after the unblock`)
  }

  const m = { udp: median(bps.udp) ?? 0, tcp: median(bps.tcp) ?? 0, faketcp: median(bps.faketcp) ?? 0 }
  const goal: Record<Transport, string> = { udp: '', tcp: 'goal ≥ 0.30', faketcp: 'goal ≥ 0.60' }
  console.log(`\nload average at the end (1, 5, 15 min): ${loadavg().map((x) => x.toFixed(1)).join(', ')} (2 cores: other work on the machine shows here)`)
  console.log(`\nsingle-stream TCP client → server through the tunnel, median of ${rounds} × ${seconds} s, one run`)
  console.log('| transport | Mbit/s | rounds | ratio to UDP | server link: packets received per MB (≈) | |')
  console.log('|---|---:|---|---:|---:|---|')
  const perMB = (tr: Transport): number => Math.round(linkPkts[tr].reduce((a, b) => a + b, 0) / (bps[tr].reduce((a, b) => a + b, 0) * (seconds + 1) / 8e6))
  for (const tr of order) console.log(`| ${tr} | ${mbit(m[tr])} | ${bps[tr].map(mbit).join(', ')} | ${(m[tr] / m.udp).toFixed(2)} | ${perMB(tr)} | ${goal[tr]} |`)
  console.log(`TCP transport: whole messages dropped when backed up ${extra.tcpDropBackedUp}; raw sockets dropped: server ${extra.rawDropped.server}, fake-TCP client ${extra.rawDropped['fake-TCP client']}`)
  console.log(`fake-TCP client: ${JSON.stringify(extra.faketcp)}; the kernel's RSTs dropped by the nft rules: server ${rstDropped.server}, client ${rstDropped.client}`)
  console.log(`fake-TCP superpackets: the client sent ${superpackets.clientSent} (${superpackets.clientSegments} segments through its packet socket), the server received ${superpackets.serverReceived} holding ${superpackets.serverSegments} segments`)
  const col = (xs: Start[], k: keyof Start): number => med(xs.map((x) => x[k]))
  console.log(`\nauto client, start → registered, median of ${starts} (ms)`)
  console.log('| | from spawn | from the first log line |')
  console.log('|---|---:|---:|')
  console.log(`| UDP open (on UDP) | ${col(upOpen, 'fromSpawn')} | ${col(upOpen, 'fromFirstLog')} |`)
  console.log(`| UDP blocked (fallback to TCP; goal ≤ 3000) | ${col(upBlocked, 'fromSpawn')} | ${col(upBlocked, 'fromFirstLog')} |`)
  console.log(`the fallback's own cost (blocked minus open, paired per start): median ${med(upBlocked.map((b, i) => b.fromSpawn - upOpen[i]!.fromSpawn))} ms`)
  console.log(`UDP unblocked → back on UDP, median of ${starts}: ${med(back)} ms (goal ≤ 10000; each: ${back.join(', ')})`)

  const out = join(ROOT, 'bench', 'results')
  mkdirSync(out, { recursive: true })
  const file = join(out, `transports-${new Date().toISOString().replace(/[:.]/g, '-')}.json`)
  writeFileSync(file, JSON.stringify({ rounds, seconds, starts, bps, ratio: { tcp: m.tcp / m.udp, faketcp: m.faketcp / m.udp }, upOpen, upBlocked, back, extra, rstDropped, superpackets, linkPkts }, null, 1) + '\n')
  console.log(`\nwritten: ${file}`)
} catch (err) {
  for (const [name, n] of daemons.slice(-6)) console.error(`--- ${name}, last log lines:\n${n.proc.tail(8)}`)
  throw err
} finally {
  await topo.destroy()
}
