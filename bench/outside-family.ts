/**
 * bench:outside-family — what the family of the UDP socket costs (IPv6 outside, issue 11 item 2):
 * single-stream TCP through the tunnel, client → server, side by side in one run for
 *   v4 socket      the client's socket AF_INET (--listen 0.0.0.0:0), to the server's IPv4 address
 *   dual, v4       the default AF_INET6 dual-stack socket ([::]:0), same IPv4 server address
 *                  (datagrams v4-mapped: the new default for IPv4 traffic)
 *   IPv6 underlay  the same dual-stack socket, to the server's IPv6 address
 * In network namespaces without NAT (src/lab/topology6.ts): one server listening on [::]:9000 with
 * both families, three clients with both on their links, one per variant. Each round runs iperf3
 * (1 stream, --seconds, first second omitted) for every variant, in a rotating order so no variant
 * always meets the same moment of the machine's load; prints each round, the medians and the ratio
 * to "v4 socket", and writes JSON to bench/results/outside-family-<time>.json.
 *
 *   npm run build && node dist/bench/outside-family.js [--rounds 3 --seconds 4]
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { createV6Lab, SERVER4, SERVER6 } from '../src/lab/topology6.js'
import { tempStateDir } from '../src/lab/state-dirs.js'
import { runIn, sleep, spawnIn, waitFor, type LabProcess } from '../src/lab/exec.js'
import { controlRequest } from '../src/cli/control-protocol.js'
import type { StatusReport } from '../src/control/status.js'
import { median } from './lib/parse.js'
import { tcpStream } from './lib/iperf.js'
import { BIN, ROOT } from './tunnels/index.js'

const KEY = 'bench-outside-family-key'
const PORT = 5312
const S_TUN = '10.82.0.1'

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, seconds: { type: 'string', default: '4' } } })
const rounds = Number(values.rounds)
const seconds = Number(values.seconds)

const VARIANTS = [
  { name: 'v4 socket', client: 'c4', listen: '0.0.0.0:0', remote: `${SERVER4}:9000`, tun: '10.82.0.2' },
  { name: 'dual, v4', client: 'cd', listen: '[::]:0', remote: `${SERVER4}:9000`, tun: '10.82.0.3' },
  { name: 'IPv6 underlay', client: 'c6', listen: '[::]:0', remote: `[${SERVER6}]:9000`, tun: '10.82.0.4' }
] as const

function env (): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (k !== 'NODE_OPTIONS') e[k] = v
  return e
}

async function iperf (srcNs: string, dstNs: string, src: string, dst: string): Promise<number> {
  return (await tcpStream({ ns: srcNs, ip: src }, { ns: dstNs, ip: dst }, seconds, { port: PORT, omitSeconds: 1 })).mbps * 1e6
}

const lab = await createV6Lab({ clients: VARIANTS.map(v => ({ name: v.client, family: 46 as const })), serverV4: true })
const procs: LabProcess[] = []
try {
  const sock = (n: string): string => `/run/lightweight-tunnel/bench-${lab.id}-${n}.sock`
  const start = (ns: string, n: string, args: string[], tun: string): void => {
    procs.push(spawnIn(ns, 'env', ['-u', 'NODE_OPTIONS', BIN, ...args, '--tun', `${tun}/24`, '--key', KEY, '--dev', 'lwt0', '--control', sock(n), '--quiet', '--state-dir', tempStateDir(`${lab.id}-${n}`)], { env: env(), maxOutputBytes: 64 * 1024 }))
  }
  start(lab.serverNs, 's', ['server', '--listen', '[::]:9000'], S_TUN)
  await sleep(1000)
  for (const v of VARIANTS) start(lab.client(v.client).ns, v.client, ['client', '--remote', v.remote, '--listen', v.listen, '--no-p2p'], v.tun)
  for (const v of VARIANTS) {
    await waitFor(async () => {
      try { return (await controlRequest(sock(v.client), { cmd: 'status' }, 3000) as StatusReport).state === 'registered' } catch { return false }
    }, { timeoutMs: 30_000, intervalMs: 200, what: `${v.name} client registered` })
    await waitFor(async () => runIn(lab.client(v.client).ns, 'ping', ['-c', '1', '-W', '1', S_TUN]).then(() => true, () => false), { timeoutMs: 10_000, intervalMs: 100, what: `${v.name}: a ping to the server` })
  }
  const results = VARIANTS.map(v => ({ variant: v.name, bps: [] as number[] }))
  const mbit = (bps: number): string => (bps / 1e6).toFixed(0)
  for (let i = 0; i < rounds; i++) {
    for (let k = 0; k < VARIANTS.length; k++) {
      const j = (i + k) % VARIANTS.length
      const v = VARIANTS[j]!
      const bps = await iperf(lab.client(v.client).ns, lab.serverNs, v.tun, S_TUN)
      results[j]!.bps.push(bps)
      console.log(`round ${i + 1} ${v.name}: ${mbit(bps)} Mbit/s`)
    }
  }
  const base = median(results[0]!.bps) ?? 1
  console.log('')
  console.log(`single-stream TCP client → server through the tunnel, median of ${rounds} × ${seconds} s (Mbit/s)`)
  console.log('| client socket, path | Mbit/s | ratio to v4 socket |')
  console.log('|---|---:|---:|')
  for (const r of results) console.log(`| ${r.variant} | ${mbit(median(r.bps) ?? 0)} | ${((median(r.bps) ?? 0) / base).toFixed(2)} |`)
  const out = join(ROOT, 'bench', 'results')
  mkdirSync(out, { recursive: true })
  const file = join(out, `outside-family-${new Date().toISOString().replace(/[:.]/g, '-')}.json`)
  writeFileSync(file, JSON.stringify({ rounds, seconds, results }, null, 1) + '\n')
  console.log(`\nwritten: ${file}`)
} finally {
  await lab.destroy()
}
