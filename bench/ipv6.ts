/**
 * bench:ipv6 — single-stream TCP through the tunnel over IPv4 and over IPv6
 * inside, side by side in one run (issue 11: IPv6 within 10 % of IPv4).
 *
 * In network namespaces (src/lab/topology.ts): a server S and clients A and
 * B on the lab's WAN, no NAT (A and B go direct at once). Every node has an
 * IPv4 and an IPv6 tunnel address. For each pair (A → S: the server link;
 * A → B: the direct peer path) it runs iperf3 (1 stream, --seconds each, the
 * first second omitted) alternately over IPv4 and IPv6, --rounds times, so
 * both families meet the same machine load; it prints each round and the
 * medians with the ratio IPv6 / IPv4, and writes the figures as JSON to
 * bench/results/ipv6-<time>.json.
 *
 *   npm run build && npm run bench:ipv6 [-- --rounds 3 --seconds 4]
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { createTopology } from '../src/lab/topology.js'
import { sysctls } from '../src/lab/netns.js'
import { tempStateDir } from '../src/lab/state-dirs.js'
import { runIn, sleep, spawnIn, waitFor, type LabProcess } from '../src/lab/exec.js'
import { controlRequest } from '../src/cli/control-protocol.js'
import type { StatusReport } from '../src/control/status.js'
import { median } from './lib/parse.js'
import { tcpStream } from './lib/iperf.js'
import { BIN, ROOT } from './tunnels/index.js'

const KEY = 'bench-ipv6-network-key'
const PORT = 5311
const ADDR = {
  s: { v4: '10.81.0.1', v6: 'fd00:81::1' },
  a: { v4: '10.81.0.2', v6: 'fd00:81::2' },
  b: { v4: '10.81.0.3', v6: 'fd00:81::3' }
} as const

function env (): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (k !== 'NODE_OPTIONS') e[k] = v
  return e
}

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, seconds: { type: 'string', default: '4' } } })
const rounds = Number(values.rounds)
const seconds = Number(values.seconds)

/** One iperf3 run from `src` to `dst` (addresses of one family); the receiver's rate in bits/s. */
async function iperf (srcNs: string, dstNs: string, src: string, dst: string): Promise<number> {
  return (await tcpStream({ ns: srcNs, ip: src }, { ns: dstNs, ip: dst }, seconds, { port: PORT, omitSeconds: 1 })).mbps * 1e6
}

const topo = await createTopology({ clients: [{ name: 'a', nat: 'none' }, { name: 'b', nat: 'none' }] })
const procs: LabProcess[] = []
try {
  const nsOf = { s: topo.serverNs, a: topo.client('a').ns, b: topo.client('b').ns }
  // The lab turns IPv6 off in its namespaces; the tunnel devices need it.
  for (const ns of Object.values(nsOf)) await sysctls(ns, { 'net.ipv6.conf.all.disable_ipv6': 0, 'net.ipv6.conf.default.disable_ipv6': 0 })
  const sock = (n: string): string => `/run/lightweight-tunnel/bench-${topo.id}-${n}.sock`
  const start = (n: 's' | 'a' | 'b', args: string[]): void => {
    procs.push(spawnIn(nsOf[n], 'env', ['-u', 'NODE_OPTIONS', BIN, ...args, '--tun', `${ADDR[n].v4}/24,${ADDR[n].v6}/64`, '--key', KEY, '--dev', 'lwt0', '--control', sock(n), '--quiet', '--state-dir', tempStateDir(`${topo.id}-${n}`)], { env: env(), maxOutputBytes: 64 * 1024 }))
  }
  start('s', ['server', '--listen', '0.0.0.0:9000'])
  await sleep(1000)
  start('a', ['client', '--remote', `${topo.serverWanIp}:9000`])
  start('b', ['client', '--remote', `${topo.serverWanIp}:9000`])
  const status = async (n: 'a' | 'b'): Promise<StatusReport | null> => {
    try { return await controlRequest(sock(n), { cmd: 'status' }, 3000) as StatusReport } catch { return null }
  }
  await waitFor(async () => {
    const [a, b] = await Promise.all([status('a'), status('b')])
    return a?.peers.find(p => p.tunnelIp === ADDR.b.v4)?.path === 'direct' && b?.state === 'registered'
  }, { timeoutMs: 30_000, intervalMs: 200, what: 'A registered with a direct path to B' })
  for (const ip of [ADDR.s.v4, ADDR.b.v4, ADDR.s.v6, ADDR.b.v6]) {
    await waitFor(async () => (await runIn(nsOf.a, 'ping', ['-c', '1', '-W', '1', ip]).then(() => true, () => false)), { timeoutMs: 10_000, intervalMs: 100, what: `a ping to ${ip}` })
  }

  const pairs = [{ name: 'A → S (server link)', dst: 's' as const }, { name: 'A → B (direct path)', dst: 'b' as const }]
  const results: Array<{ pair: string, v4: number[], v6: number[] }> = []
  const mbit = (bps: number): string => (bps / 1e6).toFixed(0)
  for (const pair of pairs) {
    const r = { pair: pair.name, v4: [] as number[], v6: [] as number[] }
    for (let i = 0; i < rounds; i++) {
      // Alternate which family goes first, so neither always meets the same moment of the machine's load.
      for (const fam of i % 2 === 0 ? ['v4', 'v6'] as const : ['v6', 'v4'] as const) {
        const bps = await iperf(nsOf.a, nsOf[pair.dst], ADDR.a[fam], ADDR[pair.dst][fam])
        r[fam].push(bps)
        console.log(`${pair.name} round ${i + 1} IPv${fam === 'v4' ? 4 : 6}: ${mbit(bps)} Mbit/s`)
      }
    }
    results.push(r)
  }
  console.log('')
  console.log(`single-stream TCP through the tunnel, median of ${rounds} × ${seconds} s (Mbit/s)`)
  console.log('| path | IPv4 inside | IPv6 inside | IPv6 / IPv4 |')
  console.log('|---|---:|---:|---:|')
  for (const r of results) {
    const m4 = median(r.v4) ?? 0
    const m6 = median(r.v6) ?? 0
    console.log(`| ${r.pair} | ${mbit(m4)} | ${mbit(m6)} | ${(m6 / m4).toFixed(2)} |`)
  }
  const out = join(ROOT, 'bench', 'results')
  mkdirSync(out, { recursive: true })
  const file = join(out, `ipv6-${new Date().toISOString().replace(/[:.]/g, '-')}.json`)
  writeFileSync(file, JSON.stringify({ rounds, seconds, results }, null, 1) + '\n')
  console.log(`\nwritten: ${file}`)
} finally {
  await topo.destroy()
}
