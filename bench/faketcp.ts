/**
 * bench:faketcp — single-stream TCP through the tunnel to the server over UDP and over fake TCP,
 * side by side in one run (issue 12 item 2: fake TCP ≥ 0.6× our UDP transport).
 *
 * In network namespaces (src/lab/topology.ts): a server S (--faketcp; its TCP transport moved to
 * port 9443) and two clients on the lab's WAN, no NAT: U with --transport udp, F with
 * --transport faketcp. iperf3 (1 stream, --seconds each, the first second omitted) runs U → S and
 * F → S alternately, --rounds times, so both transports meet the same machine load; it prints each
 * round and the medians with the ratio fake TCP / UDP, and writes the figures as JSON to
 * bench/results/faketcp-<time>.json.
 *
 *   npm run build && npm run bench:faketcp [-- --rounds 3 --seconds 4 --placement inline|fused|split]
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

const KEY = 'bench-faketcp-network-key'
const PORT = 5312
const ADDR = { s: '10.82.0.1', u: '10.82.0.2', f: '10.82.0.3' } as const

function env (): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (k !== 'NODE_OPTIONS') e[k] = v
  return e
}

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, seconds: { type: 'string', default: '4' }, placement: { type: 'string' } } })
/** --placement for both clients (default: theirs, inline). */
const placement = values.placement === undefined ? [] : ['--placement', values.placement]
const rounds = Number(values.rounds)
const seconds = Number(values.seconds)

/** One iperf3 run from `srcNs` to the server's tunnel address; the receiver's rate in bits/s. */
async function iperf (srcNs: string, dstNs: string, src: string): Promise<number> {
  const srv = spawnIn(dstNs, 'iperf3', ['-s', '-1', '-B', ADDR.s, '-p', String(PORT)])
  try {
    await waitFor(async () => {
      if (srv.exitInfo !== null) throw new Error(`iperf3 server exited: ${srv.tail(3)}`)
      return (await runIn(dstNs, 'ss', ['-Hltn', `sport = :${PORT}`])).stdout.trim() !== ''
    }, { timeoutMs: 5000, intervalMs: 50, what: 'the iperf3 server' })
    const r = await runIn(srcNs, 'iperf3', ['-c', ADDR.s, '-B', src, '-p', String(PORT), '-t', String(seconds + 1), '-O', '1', '-J'], { timeoutMs: (seconds + 25) * 1000 })
    const p = parseIperfTcp(r.stdout)
    if (!p.ok) throw new Error(p.error)
    return p.value.bps
  } finally {
    await srv.stop('SIGKILL', 1000).catch(() => {})
  }
}

const topo = await createTopology({ clients: [{ name: 'u', nat: 'none' }, { name: 'f', nat: 'none' }] })
const procs: LabProcess[] = []
try {
  const nsOf = { s: topo.serverNs, u: topo.client('u').ns, f: topo.client('f').ns }
  const sock = (n: string): string => `/run/lightweight-tunnel/bench-${topo.id}-${n}.sock`
  const start = (n: 's' | 'u' | 'f', args: string[]): void => {
    procs.push(spawnIn(nsOf[n], 'env', ['-u', 'NODE_OPTIONS', BIN, ...args, '--tun', `${ADDR[n]}/24`, '--key', KEY, '--dev', 'lwt0', '--control', sock(n), '--quiet', '--state-dir', tempStateDir(`${topo.id}-${n}`)], { env: env(), maxOutputBytes: 64 * 1024 }))
  }
  start('s', ['server', '--listen', '0.0.0.0:9000', '--faketcp', '--tcp-listen', '0.0.0.0:9443'])
  await sleep(1000)
  start('u', ['client', '--remote', `${topo.serverWanIp}:9000`, '--transport', 'udp', '--no-p2p', ...placement])
  start('f', ['client', '--remote', `${topo.serverWanIp}:9000`, '--transport', 'faketcp', '--no-p2p', ...placement])
  const status = async (n: 'u' | 'f'): Promise<StatusReport | null> => {
    try { return await controlRequest(sock(n), { cmd: 'status' }, 3000) as StatusReport } catch { return null }
  }
  await waitFor(async () => (await status('u'))?.state === 'registered' && (await status('f'))?.state === 'registered',
    { timeoutMs: 30_000, intervalMs: 200, what: 'both clients registered' })
  for (const n of ['u', 'f'] as const) {
    await waitFor(async () => (await runIn(nsOf[n], 'ping', ['-c', '1', '-W', '1', ADDR.s]).then(() => true, () => false)), { timeoutMs: 10_000, intervalMs: 100, what: `a ping from ${n}` })
  }
  const r = { udp: [] as number[], faketcp: [] as number[] }
  const mbit = (bps: number): string => (bps / 1e6).toFixed(0)
  for (let i = 0; i < rounds; i++) {
    for (const n of i % 2 === 0 ? ['u', 'f'] as const : ['f', 'u'] as const) {
      const bps = await iperf(nsOf[n], nsOf.s, ADDR[n])
      r[n === 'u' ? 'udp' : 'faketcp'].push(bps)
      console.log(`round ${i + 1} ${n === 'u' ? 'UDP     ' : 'fake TCP'}: ${mbit(bps)} Mbit/s`)
    }
  }
  const mu = median(r.udp) ?? 0
  const mf = median(r.faketcp) ?? 0
  console.log('')
  console.log(`single-stream TCP client → server through the tunnel, median of ${rounds} × ${seconds} s (Mbit/s)`)
  console.log('| UDP transport | fake TCP | fake TCP / UDP |')
  console.log('|---:|---:|---:|')
  console.log(`| ${mbit(mu)} | ${mbit(mf)} | ${(mf / mu).toFixed(2)} |`)
  // Segments the raw sockets had no room for (the last column of /proc/net/raw): loss the inner TCP saw.
  for (const n of ['s', 'f'] as const) {
    const raw = (await runIn(nsOf[n], 'cat', ['/proc/net/raw'])).stdout.trim().split('\n').slice(1)
    console.log(`${n === 's' ? 'server' : 'fake-TCP client'} raw sockets dropped: ${raw.map((l) => l.trim().split(/\s+/).pop()).join(', ')}`)
  }
  const f = await status('f')
  console.log(`fake-TCP client: ${JSON.stringify(f?.faketcp)}; dropFaketcpUnknownFlow ${f?.counters.dropFaketcpUnknownFlow ?? 0}`)
  const out = join(ROOT, 'bench', 'results')
  mkdirSync(out, { recursive: true })
  const file = join(out, `faketcp-${new Date().toISOString().replace(/[:.]/g, '-')}.json`)
  writeFileSync(file, JSON.stringify({ rounds, seconds, udp: r.udp, faketcp: r.faketcp, ratio: mf / mu }, null, 1) + '\n')
  console.log(`\nwritten: ${file}`)
} finally {
  await topo.destroy()
}
