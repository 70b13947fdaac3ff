/**
 * bench:pmtu — the "1280 uplink" scenario (issue 13 item 1): single-stream
 * TCP through the tunnel from a client on a 1500-byte path and from a client
 * whose uplink has MTU 1280, side by side in one run, and the time each
 * daemon took to find its path MTU.
 *
 * In network namespaces (src/lab/topology.ts): a server S and clients A and
 * B on the lab's WAN (no NAT), segmentation offloads off on both clients'
 * links (so an oversized datagram is one oversized packet, and both paths
 * run under the same conditions). B's device and its bridge port have MTU
 * 1280. Our TUN MTU stays the default 1400: B's daemon finds 1280 by
 * probing and answers the inner TCP with "frag needed" (mtu 1220), so the
 * inner TCP sends 1220-byte packets instead of being fragmented or lost.
 * iperf3 A → S and B → S alternate, --rounds times; medians and the ratio
 * (goal ≥ 0.7) are printed, and JSON written to bench/results/pmtu-<time>.json.
 *
 *   npm run build && npm run bench:pmtu [-- --rounds 3 --seconds 4]
 *
 * Needs root, iproute2, ethtool, iperf3. Every namespace it makes is
 * removed at the end, also on failure.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { createTopology } from '../src/lab/topology.js'
import { tempStateDir } from '../src/lab/state-dirs.js'
import { runIn, sleep, spawnIn, waitFor, type LabProcess } from '../src/lab/exec.js'
import { controlRequest } from '../src/cli/control-protocol.js'
import type { StatusReport } from '../src/control/status.js'
import { median, parseIperfTcp } from './lib/parse.js'
import { BIN, ROOT } from './tunnels/index.js'

const KEY = 'bench-pmtu-network-key'
const PORT = 5321
const ADDR = { s: '10.82.0.1', a: '10.82.0.2', b: '10.82.0.3' } as const

function env (): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (k !== 'NODE_OPTIONS') e[k] = v
  return e
}

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, seconds: { type: 'string', default: '4' }, uplink: { type: 'string', default: '1280' } } })
const rounds = Number(values.rounds)
const seconds = Number(values.seconds)
const uplink = Number(values.uplink)

/** One iperf3 run from `srcNs` (bound to `src`) to `dst`; the receiver's rate in bits/s. */
async function iperf (srcNs: string, dstNs: string, src: string, dst: string): Promise<number> {
  const srv = spawnIn(dstNs, 'iperf3', ['-s', '-1', '-B', dst, '-p', String(PORT)])
  try {
    await waitFor(async () => {
      if (srv.exitInfo !== null) throw new Error(`iperf3 server exited: ${srv.tail(3)}`)
      const ss = await runIn(dstNs, 'ss', ['-Hltn', `sport = :${PORT}`])
      return ss.stdout.trim() !== ''
    }, { timeoutMs: 5000, intervalMs: 50, what: 'the iperf3 server' })
    const r = await runIn(srcNs, 'iperf3', ['-c', dst, '-B', src, '-p', String(PORT), '-t', String(seconds + 1), '-O', '1', '-J'], { timeoutMs: (seconds + 25) * 1000 })
    const p = parseIperfTcp(r.stdout)
    if (!p.ok) throw new Error(p.error)
    return p.value.bps
  } finally {
    await srv.stop('SIGKILL', 1000).catch(() => {})
  }
}

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
  const mbit = (bps: number): string => (bps / 1e6).toFixed(0)
  const full: number[] = []
  const small: number[] = []
  for (let i = 0; i < rounds; i++) {
    // Alternate which goes first, so neither always meets the same moment of the machine's load.
    for (const n of i % 2 === 0 ? ['a', 'b'] as const : ['b', 'a'] as const) {
      const bps = await iperf(nsOf[n], nsOf.s, ADDR[n], ADDR.s)
      ;(n === 'a' ? full : small).push(bps)
      console.log(`round ${i + 1} ${n === 'a' ? '1500 path ' : `${uplink} uplink`}: ${mbit(bps)} Mbit/s`)
    }
  }
  const mFull = median(full) ?? 0
  const mSmall = median(small) ?? 0
  console.log('')
  console.log(`single-stream TCP client → server through the tunnel (TUN MTU 1400), median of ${rounds} × ${seconds} s`)
  console.log(`| path | path MTU found | found in | inner packets | Mbit/s | ratio to 1500 |`)
  console.log('|---|---:|---:|---:|---:|---:|')
  const row = (name: string, m: typeof found.a, bps: number): void => {
    console.log(`| ${name} | ${m.mtu} | ${m.foundInMs === null ? '-' : `${(m.foundInMs / 1000).toFixed(2)} s`} | ${m.innerMax ?? 'up to 1400'} | ${mbit(bps)} | ${(bps / mFull).toFixed(2)} |`)
  }
  row('1500 path', found.a, mFull)
  row(`${uplink} uplink`, found.b, mSmall)
  const out = join(ROOT, 'bench', 'results')
  mkdirSync(out, { recursive: true })
  const file = join(out, `pmtu-${new Date().toISOString().replace(/[:.]/g, '-')}.json`)
  writeFileSync(file, JSON.stringify({ rounds, seconds, uplink, found, full, small, ratio: mSmall / mFull }, null, 1) + '\n')
  console.log(`\nwritten: ${file}`)
} finally {
  await topo.destroy()
}
