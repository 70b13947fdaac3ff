/**
 * The "lossy link" scenario (issue 13 items 3 and 6): ping loss and
 * single-stream TCP throughput (iperf3) through our daemon without and with
 * `--fec`, and through the peer tunnels, side by side in one run, on the
 * same lab links with the same loss.
 *
 * Lab: the server S and clients a1, b1, a2, b2, a on the lab's WAN (no NAT:
 * direct paths), GSO/TSO/GRO off on every lab veth so each datagram is one
 * packet. Rows:
 *   no FEC       our clients a1 → b1 (direct)
 *   --fec D,P    our clients a2 → b2 (direct), both with --fec
 *   <peer>       each peer tunnel of bench/tunnels (wireguard-go, fastd,
 *                tinc, …: those installed or installable), a → S, started
 *                one at a time
 * For every row: TCP with 0 % loss (the row's ceiling on this machine), then
 * LOSS % random loss on the ingress of every client's and the server's link
 * (nft numgen: each direction of each path loses LOSS %): ping loss (PINGS
 * pings 10 ms apart) and TCP, REPS times (medians). Our two rows are
 * measured alternately (background load hits both alike); each peer after
 * them, alone. Goals: ping loss ≤ 0.5 %
 * with --fec 10,3 vs ~5 % per direction without; TCP with FEC ≥ 1.5× without.
 *
 * With `--delay MS` (this kernel has no netem): our two rows only (no peers),
 * over the server's relay (`--no-p2p`) through a user-space delay line
 * (src/lab/delay-line.ts; two processes, one for the a clients, one for the
 * b clients) in the server's namespace that holds every
 * datagram MS/2 ms in each direction between each client and the server, so
 * each direction of a1 → b1 (two legs) is MS ms longer; loss only on the
 * clients' ingress (each direction of the a → b path crosses one client's
 * link: LOSS % each way, as without --delay). The clients run with --mtu
 * 1380 there (both rows): a relayed parity message of a full 1400-byte
 * packet does not fit the lab's 1500-byte links.
 *
 *   node dist/bench/fec-loss.js [--loss 5] [--fec 10,3] [--seconds 10] [--reps 2] [--pings 500]
 *        [--tunnels wireguard-go,fastd,tinc | none] [--no-install] [--delay MS] [--cc cubic]
 *        [--delay-line FILE]
 *
 * --cc ALGO: iperf3's sender uses that TCP congestion control (iperf3 -C;
 * default: the system's, net.ipv4.tcp_congestion_control — bbr on the lab
 * machine, which hardly reacts to random loss; cubic is Linux's default).
 *
 * --delay-line FILE: run that script as the delay line instead of
 * dist/src/lab/delay-line.js (same command line and output), e.g. an older
 * build of it, to compare delay lines on the same lab; --reps 0 measures the
 * lossless rows only.
 *
 * Needs root, iproute2, nft, ethtool, iperf3 (and apt-get for missing peers).
 * Every namespace it makes is removed at the end, also on failure.
 */
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import { createTopology, type Topology } from '../src/lab/topology.js'
import { setLoss } from '../src/lab/nat.js'
import { runIn, spawnIn, waitFor, type LabProcess } from '../src/lab/exec.js'
import { stateDirFor } from '../src/lab/state-dirs.js'
import type { StatusReport } from '../src/control/status.js'
import type { Endpoint } from './tunnels/index.js'
import { tcpStream } from './lib/iperf.js'
import { selectPeers, withTunnel } from './lib/peer-runs.js'

const BIN = fileURLToPath(new URL('../../bin/lightweight-tunnel', import.meta.url))
const KEY = 'bench-fec-key'
/** The TUN MTU of our clients with --delay (relayed: parity must fit the lab's 1500 in its relay envelope). */
const DELAY_MTU = 1380
const DELAY_LINE = fileURLToPath(new URL('../src/lab/delay-line.js', import.meta.url))

interface Node { proc: LabProcess, ns: string, control: string }
interface Row { label: string, lossless: number, ping: number[], mbps: number[], retr: number[], rtt: number[], cwnd: number[], failedReps?: number, note?: string }

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
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

/** Ping loss in % from src to dst (pings 10 ms apart) and the smallest round trip in ms. */
async function pingLoss (src: Endpoint, dst: Endpoint, pings: number): Promise<{ loss: number, min: number }> {
  const p = await runIn(src.ns, 'ping', ['-n', '-q', '-c', String(pings), '-i', '0.01', '-W', '2', dst.ip]).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }))
  const m = /(\d+) packets transmitted, (\d+) received/.exec(p.stdout)
  const rtt = /= ([\d.]+)\//.exec(p.stdout)
  return { loss: m === null ? NaN : Math.round((1 - Number(m[2]) / Number(m[1])) * 1000) / 10, min: rtt === null ? NaN : Number(rtt[1]) }
}

/** Loss on the ingress of every client's and the server's link (0: none). */
async function lossEverywhere (topo: Topology, loss: number, clientsOnly = false): Promise<void> {
  for (const c of topo.clients) await setLoss(c.ns, c.dev, loss, 'ingress')
  await setLoss(topo.serverNs, topo.serverLink, clientsOnly ? 0 : loss, 'ingress')
}

interface Opts { loss: number, seconds: number, reps: number, pings: number, delayed: boolean, cc?: string }
interface Case { row: Row, src: Endpoint, dst: Endpoint }

/**
 * Lossless TCP for each case, then with loss, rep by rep, ping loss and TCP of each case in turn (cases
 * measured alternately, so background load hits them alike).
 */
async function measure (topo: Topology, cases: Case[], o: Opts): Promise<void> {
  await lossEverywhere(topo, 0)
  for (const c of cases) c.row.lossless = (await tcpStream(c.src, c.dst, o.seconds, { cc: o.cc })).mbps
  await lossEverywhere(topo, o.loss, o.delayed)
  for (let rep = 0; rep < o.reps; rep++) {
    for (const { row, src, dst } of cases) {
      const ping = await pingLoss(src, dst, o.pings)
      row.ping.push(ping.loss)
      const r = await tcpStream(src, dst, o.seconds, { cc: o.cc }).catch((err: Error) => {
        // A rep whose iperf3 fails or hangs (its end-of-test exchange crosses the same lossy path) is
        // reported and left out of the medians; the run goes on.
        console.log(`${row.label}: rep ${rep + 1}: TCP failed (${err.message.split('\n')[0]}); left out`)
        return null
      })
      if (r === null) { row.failedReps = (row.failedReps ?? 0) + 1; continue }
      row.mbps.push(r.mbps)
      row.retr.push(r.retr)
      row.rtt.push(r.rtt)
      row.cwnd.push(r.cwnd)
      console.log(`${row.label}: rep ${rep + 1}: ping loss ${ping.loss} % (min RTT ${ping.min} ms), TCP ${r.mbps} Mbit/s (${r.retr} retransmits, mean RTT ${r.rtt} ms, cwnd ≤ ${r.cwnd} KiB); lossless ${row.lossless} Mbit/s`)
    }
  }
}

async function main (): Promise<void> {
  const { values } = parseArgs({
    options: {
      loss: { type: 'string', default: '5' }, fec: { type: 'string', default: '10,3' }, seconds: { type: 'string', default: '10' },
      reps: { type: 'string', default: '2' }, pings: { type: 'string', default: '500' }, tunnels: { type: 'string' }, 'no-install': { type: 'boolean' },
      delay: { type: 'string' }, cc: { type: 'string' }, 'delay-line': { type: 'string' }
    }
  })
  const delay = values.delay === undefined ? 0 : Number(values.delay)
  if (!(Number.isInteger(delay) && delay >= 0 && delay <= 1000 && delay % 2 === 0)) throw new Error(`--delay: an even number of ms 0-1000 (half on each leg through the server; got "${values.delay ?? ''}")`)
  if (delay > 0 && values.tunnels !== undefined && values.tunnels !== 'none') throw new Error('--delay measures our daemon only (the peers would need their own delay line): leave out --tunnels or say --tunnels none')
  const o = { loss: Number(values.loss), seconds: Number(values.seconds), reps: Number(values.reps), pings: Number(values.pings), delayed: delay > 0, ...(values.cc !== undefined ? { cc: values.cc } : {}) }
  if (o.cc !== undefined && !/^[a-z0-9_]+$/.test(o.cc)) throw new Error(`--cc: a congestion control name as in sysctl net.ipv4.tcp_available_congestion_control (got "${o.cc}")`)
  const peers = delay > 0 ? [] : await selectPeers(values.tunnels, values['no-install'] !== true, (l) => { console.log(l) })
  const names = ['a1', 'b1', 'a2', 'b2']
  const ip: Record<string, string> = { a1: '10.99.0.2', b1: '10.99.0.3', a2: '10.99.0.4', b2: '10.99.0.5' }
  const topo = await createTopology({ clients: [...names, 'a'].map((name) => ({ name, nat: 'none' as const })) })
  const rows: Row[] = []
  const lines: LabProcess[] = []
  try {
    start(topo.serverNs, topo.id, 'server', ['server', '--listen', '0.0.0.0:9000', '--tun', '10.99.0.1/24'])
    // Two delay lines (one process each, so both cores can carry them): the a clients' and the b clients'.
    const remote = (name: string): string => delay === 0 ? `${topo.serverWanIp}:9000` : `${topo.serverWanIp}:${name.startsWith('a') ? 9100 : 9101}`
    for (const port of delay > 0 ? [9100, 9101] : []) {
      const dl = spawnIn(topo.serverNs, process.execPath, [values['delay-line'] ?? DELAY_LINE, '--listen', `${topo.serverWanIp}:${port}`, '--upstream', `${topo.serverWanIp}:9000`, '--delay', String(delay / 2)])
      lines.push(dl)
      await waitFor(async () => dl.output().includes('ready'), { timeoutMs: 10_000, intervalMs: 100, what: `the delay line on port ${port}` })
    }
    const nodes: Record<string, Node> = {}
    for (const name of names) {
      // --mtu DELAY_MTU: a relayed parity message of a full 1400-byte packet is 1476 bytes + 28 of IP/UDP,
      // 4 over the lab's 1500 (the send fails, EMSGSIZE); both rows get the same MTU.
      const extra = [...(name.endsWith('2') ? ['--fec', values.fec] : []), ...(delay > 0 ? ['--no-p2p', '--mtu', String(DELAY_MTU)] : [])]
      nodes[name] = start(topo.client(name).ns, topo.id, name, ['client', '--remote', remote(name), '--tun', `${ip[name]}/24`, ...extra])
    }
    for (const [a, b] of [['a1', 'b1'], ['a2', 'b2']] as const) {
      await waitFor(async () => (await runIn(topo.client(a).ns, 'ping', ['-c', '1', '-W', '1', ip[b]!]).then(() => true, () => false)), { timeoutMs: 30_000, intervalMs: 300, what: `${a} → ${b}` })
      await waitFor(async () => (await status(nodes[a]!))?.peers.find(p => p.tunnelIp === ip[b])?.path === (delay > 0 ? 'relay' : 'direct'), { timeoutMs: 30_000, intervalMs: 300, what: `${a} ↔ ${b} ${delay > 0 ? 'relay' : 'direct'}` })
    }
    const veths: Array<[string, string]> = [[topo.serverNs, topo.serverLink], [topo.internetNs, topo.serverPort]]
    for (const c of topo.clients) veths.push([c.ns, c.dev], [topo.internetNs, c.internetPort])
    for (const [ns, dev] of veths) await runIn(ns, 'ethtool', ['-K', dev, 'gso', 'off', 'tso', 'off', 'gro', 'off', 'tx-udp-segmentation', 'off'])
    const ep = (n: string): Endpoint => ({ ns: topo.client(n).ns, ip: ip[n]! })
    const pairs: Array<[string, string, string]> = [['no FEC', 'a1', 'b1'], [`--fec ${values.fec}`, 'a2', 'b2']]
    const ours = pairs.map(([label, a, b]) => ({ row: { label, lossless: NaN, ping: [], mbps: [], retr: [], rtt: [], cwnd: [] }, src: ep(a), dst: ep(b) }))
    rows.push(...ours.map(c => c.row))
    await measure(topo, ours, o)
    const st = await status(nodes.b2!)
    const sa = await status(nodes.a2!)
    rows[1]!.note = `b2: ${st?.counters.fecGroupsRecovered} groups recovered (${st?.counters.fecPacketsRecovered} packets), ${st?.counters.fecGroupsUnrecoverable} unrecoverable; a2: ${sa?.counters.fecParitySent} parity sent, ${sa?.counters.dropUdpSend} send drops`
    // Our daemons idle from here on (the peers run one at a time).
    for (const spec of peers) {
      const row: Row = { label: spec.label, lossless: NaN, ping: [], mbps: [], retr: [], rtt: [], cwnd: [] }
      rows.push(row)
      await lossEverywhere(topo, 0)
      const note = await withTunnel(spec, topo, async (t) => { await measure(topo, [{ row, src: t.src, dst: t.dst }], o) })
      if (note !== null) row.note = note
    }
  } finally {
    for (const [i, dl] of lines.entries()) {
      await dl.stop('SIGTERM', 2000).catch(() => {})
      const stats = dl.output().split('\n').find(l => l.startsWith('{'))
      if (stats !== undefined) console.log(`delay line ${i === 0 ? 'a' : 'b'}: ${stats}`)
    }
    await topo.destroy()
  }
  const base = median(rows[0]!.mbps)
  if (delay > 0) console.log(`\n${delay} ms more each way (a user-space delay line, ${delay / 2} ms per leg, relay path through the server; --mtu ${DELAY_MTU}); ${o.loss} % random loss on the ingress of every client's link (each direction of the path); offloads off; medians of ${o.reps}; ${o.pings} pings at 10 ms; iperf3 ${o.seconds} s, one TCP stream${o.cc === undefined ? '' : ` (${o.cc})`}`)
  else console.log(`\n${o.loss} % random loss on the ingress of every lab link (each direction of each path), offloads off; medians of ${o.reps}; ${o.pings} pings at 10 ms; iperf3 ${o.seconds} s, one TCP stream${o.cc === undefined ? '' : ` (${o.cc})`}`)
  console.log('                               ping loss %   TCP Mbit/s   vs no FEC   retransmits   RTT ms   cwnd KiB   TCP at 0 % loss')
  for (const r of rows) {
    const m = median(r.mbps)
    const cols = r.mbps.length === 0
      ? `${'-'.padStart(11)}   ${'-'.padStart(10)}   ${'-'.padStart(9)}   ${'-'.padStart(11)}   ${'-'.padStart(6)}   ${'-'.padStart(8)}   ${(Number.isNaN(r.lossless) ? '-' : r.lossless.toFixed(1)).padStart(15)}`
      : `${median(r.ping).toFixed(1).padStart(11)}   ${m.toFixed(1).padStart(10)}   ${(m / base).toFixed(2).padStart(8)}×   ${String(median(r.retr)).padStart(11)}   ${median(r.rtt).toFixed(2).padStart(6)}   ${String(median(r.cwnd)).padStart(8)}   ${r.lossless.toFixed(1).padStart(15)}`
    const failed = r.failedReps === undefined ? '' : `   (TCP failed in ${r.failedReps} of ${o.reps} reps: left out)`
    console.log(`${r.label.padEnd(30)} ${cols}${failed}${r.note === undefined ? '' : `   (${r.note})`}`)
  }
}

main().catch((err) => { console.error(err); process.exitCode = 1 })
