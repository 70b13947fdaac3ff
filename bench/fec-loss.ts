/**
 * FEC on a lossy link (issue 13 item 3): ping loss and single-stream TCP
 * throughput (iperf3) with and without `--fec`, side by side in one run.
 *
 * Four clients on the lab's WAN (no NAT: direct paths), LOSS % random loss
 * on every client's link (nft numgen on ingress; GSO/TSO/GRO off on the lab
 * veths so each datagram is one packet). a1↔b1 without FEC, a2↔b2 with
 * `--fec DATA,PARITY`; the measurements alternate between the pairs, so
 * background load hits both alike. Goals: ping loss ≤ 0.5 % with 10,3 vs
 * ~5 % per direction without; TCP with FEC ≥ 1.5× without.
 *
 *   node dist/bench/fec-loss.js [--loss 5] [--fec 10,3] [--seconds 10] [--reps 2] [--pings 500]
 *
 * Needs root, iproute2, nft, ethtool, iperf3. Every namespace it makes is
 * removed at the end, also on failure.
 */
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import { createTopology } from '../src/lab/topology.js'
import { setLoss } from '../src/lab/nat.js'
import { runIn, sleep, spawnIn, waitFor, type LabProcess } from '../src/lab/exec.js'
import { stateDirFor } from '../src/lab/state-dirs.js'
import type { StatusReport } from '../src/control/status.js'

const BIN = fileURLToPath(new URL('../../bin/lightweight-tunnel', import.meta.url))
const KEY = 'bench-fec-key'

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

async function main (): Promise<void> {
  const { values } = parseArgs({ options: { loss: { type: 'string', default: '5' }, fec: { type: 'string', default: '10,3' }, seconds: { type: 'string', default: '10' }, reps: { type: 'string', default: '2' }, pings: { type: 'string', default: '500' } } })
  const loss = Number(values.loss)
  const seconds = Number(values.seconds)
  const reps = Number(values.reps)
  const pings = Number(values.pings)
  const names = ['a1', 'b1', 'a2', 'b2']
  const ip: Record<string, string> = { a1: '10.89.0.2', b1: '10.89.0.3', a2: '10.89.0.4', b2: '10.89.0.5' }
  const topo = await createTopology({ clients: names.map((name) => ({ name, nat: 'none' as const })) })
  try {
    start(topo.serverNs, topo.id, 'server', ['server', '--listen', '0.0.0.0:9000', '--tun', '10.89.0.1/24'])
    const nodes: Record<string, Node> = {}
    for (const name of names) {
      const extra = name.endsWith('2') ? ['--fec', values.fec] : []
      nodes[name] = start(topo.client(name).ns, topo.id, name, ['client', '--remote', `${topo.serverWanIp}:9000`, '--tun', `${ip[name]}/24`, ...extra])
    }
    for (const [a, b] of [['a1', 'b1'], ['a2', 'b2']] as const) {
      await waitFor(async () => (await runIn(topo.client(a).ns, 'ping', ['-c', '1', '-W', '1', ip[b]!]).then(() => true, () => false)), { timeoutMs: 30_000, intervalMs: 300, what: `${a} → ${b}` })
      await waitFor(async () => (await status(nodes[a]!))?.peers.find(p => p.tunnelIp === ip[b])?.path === 'direct', { timeoutMs: 30_000, intervalMs: 300, what: `${a} ↔ ${b} direct` })
    }
    for (const name of names) {
      const c = topo.client(name)
      for (const [ns, dev] of [[c.ns, c.dev], [topo.internetNs, c.internetPort]] as const) await runIn(ns, 'ethtool', ['-K', dev, 'gso', 'off', 'tso', 'off', 'gro', 'off', 'tx-udp-segmentation', 'off'])
      await setLoss(c.ns, c.dev, loss, 'ingress')
    }
    const samples: Array<{ fec: boolean, pingLossPct: number, mbps: number, retransmits: number }> = []
    for (let rep = 0; rep < reps; rep++) {
      for (const [fec, a, b] of [[false, 'a1', 'b1'], [true, 'a2', 'b2']] as const) {
        const p = await runIn(topo.client(a).ns, 'ping', ['-n', '-q', '-c', String(pings), '-i', '0.01', '-W', '2', ip[b]!]).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }))
        const m = /(\d+) packets transmitted, (\d+) received/.exec(p.stdout)
        const pingLossPct = m === null ? NaN : Math.round((1 - Number(m[2]) / Number(m[1])) * 1000) / 10
        const srv = spawnIn(topo.client(b).ns, 'iperf3', ['-s', '-1', '-B', ip[b]!])
        await sleep(500)
        const r = await runIn(topo.client(a).ns, 'iperf3', ['-c', ip[b]!, '-t', String(seconds), '-J'], { timeoutMs: (seconds + 30) * 1000 })
        await srv.stop('SIGKILL', 1000).catch(() => {})
        const j = JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number }, sum_sent: { retransmits?: number } } }
        samples.push({ fec, pingLossPct, mbps: Math.round(j.end.sum_received.bits_per_second / 1e4) / 100, retransmits: j.end.sum_sent.retransmits ?? 0 })
        console.log(`rep ${rep + 1} ${fec ? `--fec ${values.fec}` : 'no FEC    '}: ping loss ${pingLossPct} %, TCP ${samples.at(-1)!.mbps} Mbit/s, ${samples.at(-1)!.retransmits} retransmits`)
      }
    }
    const row = (fec: boolean): { ping: number, mbps: number, retr: number } => {
      const xs = samples.filter(x => x.fec === fec)
      return { ping: Math.round(median(xs.map(x => x.pingLossPct)) * 100) / 100, mbps: Math.round(median(xs.map(x => x.mbps)) * 10) / 10, retr: median(xs.map(x => x.retransmits)) }
    }
    const off = row(false)
    const on = row(true)
    const st = await status(nodes.b2!)
    console.log(`\n${loss} % loss per direction on every client link, medians of ${reps}, ${pings} pings at 10 ms, iperf3 ${seconds} s one TCP stream`)
    console.log('                 ping loss %   TCP Mbit/s   retransmits')
    console.log(`no FEC           ${String(off.ping).padStart(11)}   ${String(off.mbps).padStart(10)}   ${String(off.retr).padStart(11)}`)
    console.log(`--fec ${values.fec.padEnd(10)} ${String(on.ping).padStart(11)}   ${String(on.mbps).padStart(10)}   ${String(on.retr).padStart(11)}`)
    console.log(`TCP with/without: ${(on.mbps / off.mbps).toFixed(2)}×; b2 recovered groups ${st?.counters.fecGroupsRecovered}, packets ${st?.counters.fecPacketsRecovered}, unrecoverable groups ${st?.counters.fecGroupsUnrecoverable}`)
  } finally {
    await topo.destroy()
  }
}

main().catch((err) => { console.error(err); process.exitCode = 1 })
