/**
 * IPv4 against IPv6 through the real dataplane, end to end: two network
 * namespaces joined by a veth pair, each running one Dataplane
 * (src/dataplane/dataplane.ts: real TUN with offloads, real UDP socket,
 * placement inline) whose peer, keys and prefixes are set by hand, as the
 * control plane would set them after a handshake (no control plane, no
 * server: this measures the packet path alone). iperf3 TCP runs over the
 * tunnel alternately to the peer's IPv4 and IPv6 tunnel address; the
 * medians of throughput and of the CPU time both dataplane processes spent
 * per MB carried (/proc/PID/stat; steadier than throughput on a shared
 * machine) are printed side by side with the ratios. Goal (issue 11): IPv6
 * within 10 % of IPv4. The v6 helper's bench script measures whole daemons.
 *
 *   node dist/bench/dataplane-family.js [--seconds 4] [--rounds 3] [--family 4|6] [--raw]
 *
 * --raw also runs iperf3 over the veth pair itself (no tunnel), both
 * families: the kernel's own IPv6/IPv4 ratio on this machine.
 *
 * At the end each side prints its counters (superpackets read, drops), to
 * see that IPv6 TCP came as TSO superpackets and nothing was dropped.
 *
 * Needs root, iproute2 and iperf3. Every namespace it makes is removed at
 * exit (src/lab/netns.ts exit hooks).
 */
import { spawn, execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { addAddress, addVeth, createNs, deleteNs } from '../src/lab/netns.js'
import { newLabId } from '../src/lab/topology.js'

const exec = promisify(execFile)
const SELF = fileURLToPath(import.meta.url)
const PORT = 51820
const NODES = [
  { veth: '192.168.77.1', veth6: 'fd00:77::1', tun4: '10.91.0.1', tun6: 'fd00:91::1' },
  { veth: '192.168.77.2', veth6: 'fd00:77::2', tun4: '10.91.0.2', tun6: 'fd00:91::2' }
]

/** One side: a Dataplane with the other side as peer slot 1 (runs inside its namespace). */
async function node (me: number, keyA: string, keyB: string): Promise<void> {
  const { Dataplane } = await import('../src/dataplane/dataplane.js')
  const { Logger } = await import('../src/log.js')
  const { ipToInt } = await import('../src/wire/addr.js')
  const { parsePrefix } = await import('../src/wire/prefix.js')
  const n = NODES[me]!
  const peer = NODES[1 - me]!
  const dp = new Dataplane({
    mode: 'client', dev: `lwtfam${me}`, cidr: `${n.tun4}/24`, tunnelIp: ipToInt(n.tun4), mtu: 1400, listenHost: '0.0.0.0', listenPort: PORT,
    maxPeers: 4, socketBuffer: 4 << 20, placement: 'inline', fastPath: true, tun6: parsePrefix(`${n.tun6}/64`, { keepHostBits: true })
  }, new Logger({ level: 'error', sink: { write: (l) => { process.stderr.write(l) } } }))
  await dp.start({ onControl: () => {}, onNeedSession: () => {}, onSendLimit: () => {}, onEndpoint: () => {} }, (err) => { console.error(err); process.exit(1) })
  const send = Buffer.from(me === 0 ? keyA : keyB, 'hex')
  const recv = Buffer.from(me === 0 ? keyB : keyA, 'hex')
  dp.setLocalPrefixes([parsePrefix(`${n.tun6}/128`)])
  dp.setPeer({ slot: 1, peerId: 1, tunnelIp: ipToInt(peer.tun4), endpointIp: ipToInt(peer.veth), endpointPort: PORT, relayVia: false, prefixes: [parsePrefix(`${peer.tun6}/128`)] })
  dp.setSendKey(1, new Uint8Array(send), 100 + (1 - me))
  dp.setRecvKey(1, 100 + me, new Uint8Array(recv))
  console.log(`READY ${JSON.stringify(dp.offloads)}`)
  process.on('SIGTERM', () => {
    const c = dp.counters()
    const pick = ['fastPathPackets', 'tunRxSuperpackets', 'tunRxPackets', 'tunTxPackets', 'udpRxCoalesced', 'dropTooBig', 'dropNoRoute', 'dropNotIp', 'dropSpoofedSource', 'dropNotForUs']
    process.stderr.write(`node ${me} counters: ${JSON.stringify(Object.fromEntries(pick.map((k) => [k, c[k] ?? 0])))}\n`)
    void dp.close().then(() => process.exit(0))
  })
}

/** CPU seconds (user + system, all threads) a process has used so far. */
function cpuSeconds (pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ')
  return (Number(rest[11]) + Number(rest[12])) / 100 // utime, stime in clock ticks (USER_HZ 100)
}

/** One iperf3 run: Gbit/s received, and the two dataplane processes' CPU time per MB carried (µs). */
async function iperf (ns: string, target: string, seconds: number, pids: number[]): Promise<{ gbps: number, usPerMB: number }> {
  const before = pids.map(cpuSeconds)
  const { stdout } = await exec('ip', ['netns', 'exec', ns, 'iperf3', '-c', target, '-t', String(seconds), '-J'], { timeout: (seconds + 20) * 1000, maxBuffer: 16 << 20 })
  const cpu = pids.reduce((a, pid, i) => a + cpuSeconds(pid) - before[i]!, 0)
  const r = JSON.parse(stdout) as { end: { sum_received: { bits_per_second: number, bytes: number } } }
  return { gbps: r.end.sum_received.bits_per_second / 1e9, usPerMB: cpu * 1e6 / (r.end.sum_received.bytes / 1e6) }
}

/** ping over the tunnel: the median round trip in ms (an idle tunnel: lone packets, the fast path's case). */
async function pingMs (ns: string, target: string, count: number): Promise<number> {
  const { stdout } = await exec('ip', ['netns', 'exec', ns, 'ping', '-c', String(count), '-i', '0.02', '-n', target], { timeout: 60_000 })
  const rtts = [...stdout.matchAll(/time=([0-9.]+) ms/g)].map((m) => Number(m[1]))
  if (rtts.length === 0) throw new Error(`no answer from ${target}: ${stdout}`)
  return median(rtts)
}

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]! }

async function main (): Promise<void> {
  const { values } = parseArgs({ options: { seconds: { type: 'string' }, rounds: { type: 'string' }, family: { type: 'string' }, raw: { type: 'boolean' } } })
  const families = values.family === '4' ? [4] as const : values.family === '6' ? [6] as const : [4, 6] as const
  const seconds = Number(values.seconds ?? 4)
  const rounds = Number(values.rounds ?? 3)
  const id = newLabId()
  const ns = [await createNs(`lwt-${id}-fa`), await createNs(`lwt-${id}-fb`)]
  const procs: ReturnType<typeof spawn>[] = []
  try {
    await addVeth(ns[0]!, 'veth0', ns[1]!, 'veth0')
    for (const i of [0, 1]) {
      await addAddress(ns[i]!, 'veth0', `${NODES[i]!.veth}/24`)
      await exec('ip', ['-n', ns[i]!, '-6', 'addr', 'add', `${NODES[i]!.veth6}/64`, 'dev', 'veth0', 'nodad'])
    }
    const keyA = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('hex')
    const keyB = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('hex')
    for (const i of [0, 1]) {
      const p = spawn('ip', ['netns', 'exec', ns[i]!, process.execPath, ...process.execArgv, SELF, '--node', String(i), keyA, keyB], { stdio: ['ignore', 'pipe', 'inherit'] })
      procs.push(p)
      const line = await new Promise<string>((resolve, reject) => {
        p.stdout!.on('data', (d: Buffer) => { const s = d.toString(); if (s.startsWith('READY')) resolve(s.trim()) })
        p.once('exit', (code) => { reject(new Error(`node ${i} exited (${code})`)) })
      })
      if (i === 0) console.log(`dataplane: ${line.slice(6)}`)
    }
    const server = spawn('ip', ['netns', 'exec', ns[1]!, 'iperf3', '-s'], { stdio: 'ignore' })
    procs.push(server)
    await new Promise((resolve) => setTimeout(resolve, 500))
    // Idle first: lone pings, which the native fast path carries (IPv4 and IPv6 alike).
    const pings: Record<4 | 6, number[]> = { 4: [], 6: [] }
    for (let r = 0; r < 3; r++) for (const f of families) pings[f].push(await pingMs(ns[0]!, f === 4 ? NODES[1]!.tun4 : NODES[1]!.tun6, 50))
    console.log(`ping over the idle tunnel, median of 3 × 50 (ms): ${families.map((f) => `IPv${f} ${median(pings[f]).toFixed(3)}`).join('  ')}`)
    const runs: Record<4 | 6, Array<{ gbps: number, usPerMB: number }>> = { 4: [], 6: [] }
    const pids = procs.slice(0, 2).map((p) => p.pid!)
    for (let r = 0; r < rounds; r++) {
      for (const f of families) runs[f].push(await iperf(ns[0]!, f === 4 ? NODES[1]!.tun4 : NODES[1]!.tun6, seconds, pids))
    }
    // The kernel's own IPv4/IPv6 ratio on the same path, without the tunnel: what the tunnel cannot do better than.
    const raw: Record<4 | 6, number[]> = { 4: [], 6: [] }
    if (values.raw === true) {
      for (let r = 0; r < rounds; r++) for (const f of families) raw[f].push((await iperf(ns[0]!, f === 4 ? NODES[1]!.veth : NODES[1]!.veth6, seconds, [])).gbps)
    }
    const got = { 4: runs[4].map((x) => x.gbps), 6: runs[6].map((x) => x.gbps) }
    const cost = { 4: runs[4].map((x) => x.usPerMB), 6: runs[6].map((x) => x.usPerMB) }
    // What the receiving side's kernel took from its TUN device: far fewer packets than segments = coalesced (GRO) writes.
    const { stdout } = await exec('ip', ['-n', ns[1]!, '-s', '-j', 'link', 'show', 'lwtfam1'])
    const st = (JSON.parse(stdout) as Array<{ stats64: { rx: { packets: number } } }>)[0]!.stats64
    console.log(`receiver's TUN device: ${st.rx.packets} packets taken by the kernel (superpackets count once)`)
    if (families.length === 1) {
      const f = families[0]
      console.log(`iperf3 TCP over the tunnel, IPv${f}, ${rounds} × ${seconds} s (Gbit/s): ${got[f].map((x) => x.toFixed(2)).join(' ')}; dataplane CPU per MB (µs): ${cost[f].map((x) => x.toFixed(0)).join(' ')}`)
      return
    }
    const m4 = median(got[4])
    const m6 = median(got[6])
    console.log(`iperf3 TCP over the tunnel, ${rounds} × ${seconds} s each, alternating (Gbit/s): IPv4 ${got[4].map((x) => x.toFixed(2)).join(' ')}; IPv6 ${got[6].map((x) => x.toFixed(2)).join(' ')}`)
    console.log(`median IPv4 ${m4.toFixed(2)}  IPv6 ${m6.toFixed(2)}  IPv6/IPv4 ${(m6 / m4).toFixed(3)} (goal ≥ 0.90)`)
    // Throughput on a shared machine swings with the neighbours; the CPU the two dataplanes spend per MB much less.
    const c4 = median(cost[4])
    const c6 = median(cost[6])
    console.log(`dataplane CPU per MB carried (both sides, µs): IPv4 ${c4.toFixed(0)}  IPv6 ${c6.toFixed(0)}  IPv6/IPv4 ${(c6 / c4).toFixed(3)} (goal ≤ 1.10)`)
    if (values.raw === true) {
      console.log(`raw veth, no tunnel (Gbit/s): IPv4 ${raw[4].map((x) => x.toFixed(2)).join(' ')}; IPv6 ${raw[6].map((x) => x.toFixed(2)).join(' ')}; median IPv6/IPv4 ${(median(raw[6]) / median(raw[4])).toFixed(3)}`)
    }
  } finally {
    for (const p of procs) p.kill('SIGTERM')
    await new Promise((resolve) => setTimeout(resolve, 1000))
    for (const n of ns) await deleteNs(n)
  }
}

const args = process.argv.slice(2)
if (args[0] === '--node') await node(Number(args[1]), args[2]!, args[3]!)
else await main()
