/**
 * Path MTU end to end (issue 13 items 1-2): a server and two clients on the
 * lab's WAN (no NAT), segmentation offloads off on the clients' links so an
 * oversized datagram really is one oversized packet (veth lets GSO packets
 * past the MTU check). The WAN is a bridge: a frame above a port's MTU is
 * dropped silently, so no ICMP "too big" ever reaches a daemon (the case of
 * a path that filters it).
 *   alice: her uplink has MTU 1280 from the start (her own device and the
 *     bridge port): the daemon finds 1280 within 5 s, a full-size DF ping
 *     through the tunnel is answered with "frag needed" (mtu 1220) and pings
 *     of that size pass, a TCP transfer arrives byte-exact.
 *   bob: 1500 until, in the middle of a (rate-limited) TCP transfer, his
 *     bridge port drops to 1280: the daemon notices the black hole and
 *     lowers the MTU within 10 s, and the transfer completes intact.
 *   --mss-clamp (alice): a TCP connect to the server over her 1280 uplink
 *     carries MSS 1180 (1220 − 40), not her TUN's 1360: the server's socket
 *     shows it (ss -ti), and her daemon counted the SYN and the SYN-ACK.
 */
import t from 'tap'
import { createTopology, type Topology } from '../../src/lab/topology.js'
import { runIn, sleep, spawnIn, waitFor } from '../../src/lab/exec.js'
import { cleanEnv, ping, startClient, startServer, status, tcpTransfer, waitReady, type Daemon } from '../helpers/daemon.js'
import type { PeerStatus } from '../../src/control/status.js'

let topo: Topology
const d: Record<string, Daemon> = {}
const TUN: Record<string, string> = { alice: '10.77.0.2', bob: '10.77.0.3' }
const SERVER_TUN = '10.77.0.1'

t.before(async () => {
  topo = await createTopology({ clients: [{ name: 'alice', nat: 'none' }, { name: 'bob', nat: 'none' }] })
  for (const name of ['alice', 'bob']) {
    const c = topo.client(name)
    for (const [ns, dev] of [[c.ns, c.dev], [topo.internetNs, c.internetPort]] as const) {
      await runIn(ns, 'ethtool', ['-K', dev, 'gso', 'off', 'tso', 'off', 'gro', 'off', 'tx-udp-segmentation', 'off'])
    }
  }
  const alice = topo.client('alice')
  await runIn(alice.ns, 'ip', ['link', 'set', 'dev', alice.dev, 'mtu', '1280'])
  await runIn(topo.internetNs, 'ip', ['link', 'set', 'dev', alice.internetPort, 'mtu', '1280'])
  d.server = startServer(topo.serverNs, topo.id)
  for (const name of ['alice', 'bob']) d[name] = startClient(topo.client(name).ns, topo.id, name, `${TUN[name]}/24`, topo.serverWanIp, { extra: name === 'alice' ? ['--no-p2p', '--mss-clamp'] : ['--no-p2p'] })
})
t.teardown(async () => { await topo?.destroy() })

async function serverPath (name: string): Promise<PeerStatus> {
  return (await status(d[name]!)).peers.find((p) => p.role === 'server')!
}

t.test('a 1280-byte uplink: found within 5 s, full-size DF pings answered with frag-needed, then pass at the found size; TCP intact', async t => {
  await waitReady(d.alice!, 0, 30_000)
  await waitFor(async () => (await serverPath('alice')).pmtu?.state === 'confirmed', { timeoutMs: 10_000, intervalMs: 100, what: 'alice\'s server path MTU' })
  const m = (await serverPath('alice')).pmtu!
  t.equal(m.mtu, 1280, 'the uplink\'s MTU, found by probing')
  t.equal(m.innerMax, 1220, 'inner packets up to 1280 − 60')
  t.ok(m.foundInMs !== null && m.foundInMs <= 5000, `found ${m.foundInMs} ms after the path came up`)
  const ns = topo.client('alice').ns
  // 1372 + 28 = 1400, the TUN MTU: too big for the path, answered by our daemon.
  const big = await runIn(ns, 'ping', ['-n', '-c', '1', '-W', '2', '-M', 'do', '-s', '1372', SERVER_TUN]).catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? '' }))
  t.match(big.stdout, /mtu = 1220/, `frag needed with the usable size: ${big.stdout.split('\n')[1] ?? ''}`)
  const fits = await ping(ns, SERVER_TUN, 3)
  t.ok(fits.received >= 1, 'small pings pass')
  const r = await runIn(ns, 'ping', ['-n', '-q', '-c', '3', '-i', '0.2', '-W', '2', '-M', 'do', '-s', String(1220 - 28), SERVER_TUN]).catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? '' }))
  t.match(r.stdout, /3 packets transmitted, [123] received/, 'DF pings of the found size pass')
  const c = (await status(d.alice!)).counters
  t.ok(c.icmpTooBigSent >= 1 && c.dropPathMtu >= 1, `answered (${c.icmpTooBigSent}) and counted (${c.dropPathMtu})`)
  const size = 8 * 1024 * 1024
  const x = await tcpTransfer(ns, topo.serverNs, SERVER_TUN, size, 5211)
  t.equal(x.received.bytes, size)
  t.equal(x.received.sha256, x.sent.sha256, 'byte-exact')
})

/** A TCP listener that holds its connections open (prints "listening"). */
const HOLDER = `require('node:net').createServer(() => {}).listen(+process.argv[2], process.argv[1], () => console.log('listening'))`
/** Connects and holds the connection (prints "connected"). */
const CONNECT = `const s = require('node:net').connect(+process.argv[2], process.argv[1], () => console.log('connected')); s.on('error', (e) => { console.log(String(e)); process.exit(1) })`

t.test('--mss-clamp: a TCP connect over the 1280 uplink carries an MSS that fits it, both ways', async t => {
  const ns = topo.client('alice').ns
  // Forget the frag-needed answers above: from them alice's kernel would lower its own SYN's MSS already.
  await runIn(ns, 'ip', ['route', 'flush', 'cache'])
  const before = (await status(d.alice!)).counters.mssClamped ?? 0
  const node = ['-u', 'NODE_OPTIONS', process.execPath, '-e']
  const rx = spawnIn(topo.serverNs, 'env', [...node, HOLDER, SERVER_TUN, '5213'], { env: cleanEnv() })
  let tx: ReturnType<typeof spawnIn> | null = null
  try {
    // Connect only once the listener is up (started together, the connect sometimes came first: ECONNREFUSED).
    await rx.waitForOutput(/listening/, 5000)
    tx = spawnIn(ns, 'env', [...node, CONNECT, SERVER_TUN, '5213'], { env: cleanEnv() })
    await tx.waitForOutput(/connected/, 5000)
    const ss = await runIn(topo.serverNs, 'ss', ['-tinH', 'state', 'established', '( sport = :5213 )'])
    const mss = Number(/\bmss:(\d+)/.exec(ss.stdout)?.[1])
    // The server's send MSS is the smaller of alice's SYN's (1180 when clamped) and its own 1360, less 12 for timestamps.
    t.ok(mss > 1000 && mss <= 1180, `the server's socket sends segments of ${mss} bytes (unclamped: 1348)`)
    const c = (await status(d.alice!)).counters
    t.ok(c.mssClamped - before >= 2, `alice clamped the SYN and the SYN-ACK (${c.mssClamped - before})`)
  } finally {
    await tx?.stop('SIGKILL', 1000).catch(() => {})
    await rx.stop('SIGKILL', 1000).catch(() => {})
  }
})

t.test('black hole: the path MTU drops mid-transfer with no ICMP; lowered within 10 s and the transfer completes', async t => {
  await waitReady(d.bob!, 0, 30_000)
  await waitFor(async () => (await serverPath('bob')).pmtu?.state === 'confirmed', { timeoutMs: 10_000, intervalMs: 100, what: 'bob\'s server path MTU' })
  t.equal((await serverPath('bob')).pmtu?.mtu, 1468, 'the full size: TUN 1400 + 60 + 8 of relay room')
  const bob = topo.client('bob')
  // ~2.5 MB/s, so 24 MB takes ~10 s: the drop lands mid-transfer.
  await runIn(bob.ns, 'tc', ['qdisc', 'add', 'dev', bob.dev, 'root', 'tbf', 'rate', '20mbit', 'burst', '32kb', 'latency', '400ms'])
  const size = 24 * 1024 * 1024
  const transfer = tcpTransfer(bob.ns, topo.serverNs, SERVER_TUN, size, 5212)
  await sleep(2000)
  await runIn(topo.internetNs, 'ip', ['link', 'set', 'dev', bob.internetPort, 'mtu', '1280'])
  const droppedAt = Date.now()
  let last: PeerStatus | null = null
  // A veth takes frames up to its MTU + 4 (VLAN_HLEN slack in is_skb_forwardable): the path carries 1284.
  const lowered = (mtu: number | null | undefined): boolean => mtu != null && mtu >= 1280 && mtu <= 1284
  await waitFor(async () => lowered((last = await serverPath('bob')).pmtu?.mtu), { timeoutMs: 20_000, intervalMs: 100, what: 'bob\'s path MTU lowered' })
    .catch(async (err: Error) => { throw new Error(`${err.message}; last: ${JSON.stringify(last?.pmtu)}, counters ${JSON.stringify((await status(d.bob!)).counters)}`) })
  const took = Date.now() - droppedAt
  t.ok(took <= 10_000, `lowered to ${last!.pmtu?.mtu} after ${took} ms`)
  const x = await transfer
  t.equal(x.received.bytes, size)
  t.equal(x.received.sha256, x.sent.sha256, 'the transfer completed byte-exact')
  t.ok((await status(d.bob!)).counters.mtuBlackHoles >= 1, 'counted as a black hole')
})
