/**
 * bench:pmtu — the "1280 uplink" scenario (issue 13 items 1 and 6):
 * single-stream TCP through the tunnel from a client on a 1500-byte path and
 * from a client whose uplink has MTU 1280, for our daemon and for the peer
 * tunnels of bench/tunnels, in one run; the ratio per tunnel, and the time
 * our daemons took to find their path MTU.
 *
 * In network namespaces (src/lab/topology.ts): a server S and clients A and
 * B on the lab's WAN (no NAT), segmentation offloads off on both clients'
 * links (so an oversized datagram is one oversized packet, and both paths
 * run under the same conditions). B's device and its bridge port have MTU
 * 1280. Our TUN MTU stays the default 1400: B's daemon finds 1280 by
 * probing and answers the inner TCP with "frag needed" (mtu 1220), so the
 * inner TCP sends 1220-byte packets instead of being fragmented or lost.
 *
 * Ours: one server, clients A and B up together; iperf3 A → S and B → S
 * alternate, --rounds times. Then ours stops and each peer tunnel runs alone
 * with its default MTU (bench/lib/peer-runs.ts), round by round over A's
 * path and over B's (alternating which goes first; the tunnel is brought up
 * afresh on each path, so it meets the uplink from its start as a user's
 * would). Medians and the ratio (goal ≥ 0.7 for ours) are printed as a
 * table, and JSON written to bench/results/pmtu-<time>.json.
 *
 *   npm run build && npm run bench:pmtu [-- --rounds 3 --seconds 4 --uplink 1280]
 *        [--tunnels wireguard-go,fastd,tinc | none] [--no-install]
 *
 * Needs root, iproute2, ethtool, iperf3 (and apt-get for missing peers).
 * Every namespace it makes is removed at the end, also on failure.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { createTopology } from '../src/lab/topology.js'
import { tempStateDir } from '../src/lab/state-dirs.js'
import { runIn, sleep, spawnIn, waitFor, type LabProcess } from '../src/lab/exec.js'
import { controlRequest } from '../src/cli/control-protocol.js'
import type { StatusReport } from '../src/control/status.js'
import type { PathMtuReport } from '../src/control/path-mtu-client.js'
import { median } from './lib/parse.js'
import { tcpStream, type TcpResult } from './lib/iperf.js'
import { selectPeers, withTunnel } from './lib/peer-runs.js'
import { BIN, ROOT } from './tunnels/index.js'

const KEY = 'bench-pmtu-network-key'
const PORT = 5321
const ADDR = { s: '10.82.0.1', a: '10.82.0.2', b: '10.82.0.3' } as const

function env (): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (k !== 'NODE_OPTIONS') e[k] = v
  return e
}

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' }, seconds: { type: 'string', default: '4' }, uplink: { type: 'string', default: '1280' },
    tunnels: { type: 'string' }, 'no-install': { type: 'boolean' }
  }
})
const rounds = Number(values.rounds)
const seconds = Number(values.seconds)
const uplink = Number(values.uplink)

/** One table row: a tunnel's TCP runs over each path. */
interface Row { label: string, innerMtu: string, full: TcpResult[], small: TcpResult[], found?: { a: PathMtuReport, b: PathMtuReport }, note?: string }

const peers = await selectPeers(values.tunnels, values['no-install'] !== true, (l) => { console.log(l) }).catch((err: Error) => {
  console.error(`bench:pmtu: ${err.message}`)
  process.exit(2)
})
const rows: Row[] = []
const mbit = (r: TcpResult): string => `${r.mbps.toFixed(0)} Mbit/s (${r.retr} retransmits)`
const pathName = (n: 'a' | 'b'): string => n === 'a' ? '1500 path ' : `${uplink} uplink`
/** Round i's order of the two paths: alternated, so neither always meets the same moment of the machine's load. */
const order = (i: number): Array<'a' | 'b'> => i % 2 === 0 ? ['a', 'b'] : ['b', 'a']

const topo = await createTopology({ clients: [{ name: 'a', nat: 'none' }, { name: 'b', nat: 'none' }] })
const procs: LabProcess[] = []
try {
  const nsOf = { s: topo.serverNs, a: topo.client('a').ns, b: topo.client('b').ns }
  for (const name of ['a', 'b']) {
    const c = topo.client(name)
    for (const [ns, dev] of [[c.ns, c.dev], [topo.internetNs, c.internetPort]] as const) {
      await runIn(ns, 'ethtool', ['-K', dev, 'gso', 'off', 'tso', 'off', 'gro', 'off', 'tx-udp-segmentation', 'off'])
    }
  }
  const b = topo.client('b')
  await runIn(b.ns, 'ip', ['link', 'set', 'dev', b.dev, 'mtu', String(uplink)])
  await runIn(topo.internetNs, 'ip', ['link', 'set', 'dev', b.internetPort, 'mtu', String(uplink)])

  // --- ours: one server, both clients up together -------------------------
  const sock = (n: string): string => `/run/lightweight-tunnel/bench-${topo.id}-${n}.sock`
  const start = (n: 's' | 'a' | 'b', args: string[]): void => {
    procs.push(spawnIn(nsOf[n], 'env', ['-u', 'NODE_OPTIONS', BIN, ...args, '--tun', `${ADDR[n]}/24`, '--key', KEY, '--dev', 'lwt0', '--control', sock(n), '--quiet', '--state-dir', tempStateDir(`${topo.id}-${n}`)], { env: env(), maxOutputBytes: 64 * 1024 }))
  }
  start('s', ['server', '--listen', '0.0.0.0:9000'])
  await sleep(1000)
  start('a', ['client', '--remote', `${topo.serverWanIp}:9000`, '--no-p2p'])
  start('b', ['client', '--remote', `${topo.serverWanIp}:9000`, '--no-p2p'])
  const serverPath = async (n: 'a' | 'b'): Promise<StatusReport['peers'][number] | null> => {
    try { return (await controlRequest(sock(n), { cmd: 'status' }, 3000) as StatusReport).peers.find(p => p.role === 'server') ?? null } catch { return null }
  }
  await waitFor(async () => (await serverPath('a'))?.pmtu?.state === 'confirmed' && (await serverPath('b'))?.pmtu?.state === 'confirmed',
    { timeoutMs: 30_000, intervalMs: 200, what: 'both clients registered with a confirmed path MTU' })
  const found = { a: (await serverPath('a'))!.pmtu!, b: (await serverPath('b'))!.pmtu! }
  for (const n of ['a', 'b'] as const) {
    await waitFor(async () => (await runIn(nsOf[n], 'ping', ['-c', '1', '-W', '1', ADDR.s]).then(() => true, () => false)), { timeoutMs: 10_000, intervalMs: 100, what: `a ping from ${n}` })
  }
  const ours: Row = { label: 'lightweight-tunnel', innerMtu: `1400 (${found.b.innerMax ?? 1400} on the uplink)`, full: [], small: [], found }
  rows.push(ours)
  for (let i = 0; i < rounds; i++) {
    for (const n of order(i)) {
      const r = await tcpStream({ ns: nsOf[n], ip: ADDR[n] }, { ns: nsOf.s, ip: ADDR.s }, seconds, { port: PORT, omitSeconds: 1 })
      ;(n === 'a' ? ours.full : ours.small).push(r)
      console.log(`${ours.label} round ${i + 1} ${pathName(n)}: ${mbit(r)}`)
    }
  }
  // Ours idles no more while the peers run.
  await Promise.all(procs.map(p => p.stop('SIGTERM', 3000).catch(() => 0)))

  // --- the peer tunnels, one at a time, afresh on each path -----------------
  for (const spec of peers) {
    const row: Row = { label: spec.label, innerMtu: '', full: [], small: [] }
    rows.push(row)
    for (let i = 0; i < rounds && row.note === undefined; i++) {
      for (const n of order(i)) {
        const note = await withTunnel(spec, topo, async (t) => {
          row.innerMtu = t.mtu === null ? '?' : String(t.mtu)
          const r = await tcpStream(t.src, t.dst, seconds, { port: PORT, omitSeconds: 1 })
          ;(n === 'a' ? row.full : row.small).push(r)
          console.log(`${row.label} round ${i + 1} ${pathName(n)}: ${mbit(r)}`)
        }, n)
        if (note !== null) { row.note = `${pathName(n).trim()}: ${note}`; console.log(`${row.label}: ${row.note}`); break }
      }
    }
  }

  // --- the table ------------------------------------------------------------
  const med = (rs: TcpResult[], k: 'mbps' | 'retr'): number | null => median(rs.map(r => r[k]))
  const fmt = (x: number | null, digits = 0): string => x === null ? '-' : x.toFixed(digits)
  console.log('')
  console.log(`single-stream TCP A → S through each tunnel, 1500-byte path and ${uplink}-byte uplink, offloads off; median of ${rounds} × ${seconds} s`)
  console.log(`| tunnel | inner MTU | 1500 path Mbit/s | ${uplink} uplink Mbit/s | ratio | retransmits 1500 / ${uplink} | path MTU found | found in |`)
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|')
  for (const r of rows) {
    const f = med(r.full, 'mbps')
    const s = med(r.small, 'mbps')
    const ratio = f === null || s === null || f === 0 ? '-' : `${(s / f).toFixed(2)}×`
    const mtu = r.found === undefined ? '-' : `${r.found.a.mtu} / ${r.found.b.mtu}`
    const foundIn = r.found === undefined ? '-' : [r.found.a, r.found.b].map(m => m.foundInMs === null ? '-' : `${(m.foundInMs / 1000).toFixed(2)} s`).join(' / ')
    console.log(`| ${r.label} | ${r.innerMtu || '-'} | ${fmt(f)} | ${fmt(s)} | ${ratio} | ${fmt(med(r.full, 'retr'))} / ${fmt(med(r.small, 'retr'))} | ${mtu} | ${foundIn} |${r.note === undefined ? '' : ` ${r.note}`}`)
  }
  const out = join(ROOT, 'bench', 'results')
  mkdirSync(out, { recursive: true })
  const file = join(out, `pmtu-${new Date().toISOString().replace(/[:.]/g, '-')}.json`)
  const oursRatio = (median(ours.small.map(r => r.mbps)) ?? 0) / (median(ours.full.map(r => r.mbps)) ?? 1)
  writeFileSync(file, JSON.stringify({ rounds, seconds, uplink, found, ratio: oursRatio, rows }, null, 1) + '\n')
  console.log(`\nwritten: ${file}`)
} finally {
  await topo.destroy()
}
