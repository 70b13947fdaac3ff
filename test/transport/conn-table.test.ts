// transport/conn-table.ts: the connection table's bounds and its loopback bridge (real UDP sockets on 127.0.0.1).
import t from 'tap'
import { createSocket, type Socket as UdpSocket } from 'node:dgram'
import { connect, createServer, type Socket } from 'node:net'
import { once } from 'node:events'
import { ConnTable, LOOPBACK, type LinkIo } from '../../src/transport/conn-table.js'
import { isConnHandle } from '../../src/wire/endpoint-handle.js'
import { formatEndpoint, setConnHandleText } from '../../src/wire/addr.js'
import { loadNative } from '../../src/dataplane/native.js'
import { SEND_BACKLOG, SEND_BATCH, TcpLink, newTcpLinkCounters } from '../../src/transport/tcp-link.js'

class FakeLink implements LinkIo {
  readonly kind = 'tcp' as const
  readonly remote: { ip: number, port: number }
  sent: number[][] = []
  closed = false
  full = false
  constructor (port: number) { this.remote = { ip: 0xc6336401, port } }
  send (msg: Uint8Array): boolean { if (this.full) return false; this.sent.push([...msg]); return true }
  close (): void { this.closed = true }
}

async function daemonSocket (teardown: (fn: () => void) => void): Promise<UdpSocket> {
  const s = createSocket('udp4')
  await new Promise<void>((resolve) => { s.bind(0, '127.0.0.1', resolve) })
  teardown(() => { s.close() })
  return s
}

t.test('bounds: unauthenticated entries beyond maxUnauth push out the oldest; a full table refuses', async t => {
  let now = 0
  const table = new ConnTable({ daemon: () => ({ host: '127.0.0.1', port: 9 }), maxConns: 4, maxUnauth: 2, now: () => now })
  t.teardown(() => { table.closeAll() })
  const open = new FakeLink(1)
  const eo = (await table.add(open, { open: true }))!
  const l1 = new FakeLink(2); now = 1
  const e1 = (await table.add(l1, { open: false }))!
  const l2 = new FakeLink(3); now = 2
  await table.add(l2, { open: false })
  const l3 = new FakeLink(4); now = 3
  await table.add(l3, { open: false })
  t.ok(l1.closed, 'the oldest unauthenticated went')
  t.notOk(open.closed || l2.closed || l3.closed, 'the open one and the newer ones stay')
  t.equal(table.get(e1.handle), undefined)
  t.equal(table.counters.transportUnauthEvicted, 1)
  t.equal(table.size, 3)
  await table.add(new FakeLink(5), { open: true })
  const refused = new FakeLink(6)
  t.equal(await table.add(refused, { open: true }), null, 'past maxConns: refused')
  t.ok(refused.closed, 'and its link closed')
  t.equal(table.counters.transportConnsRefused, 1)
  t.ok(isConnHandle(eo.handle), 'entries are named by connection handles')
})

t.test('the bridge: deliver reaches the daemon socket from the bridge; the daemon reaches the link', async t => {
  const d = await daemonSocket((fn) => { t.teardown(fn) })
  const table = new ConnTable({ daemon: () => ({ host: '127.0.0.1', port: d.address().port }), maxConns: 4, maxUnauth: 4, now: () => 0 })
  const link = new FakeLink(41000)
  const e = (await table.add(link, { open: false }))!
  const bridge = table.bridgeOf(e.handle)!
  t.equal(bridge.ip >>> 24, 127, 'a loopback address')
  t.not(bridge.ip, LOOPBACK, 'of its own, not 127.0.0.1')
  t.equal(bridge.ip & 0xffffff, e.handle & 0xffffff, '127.a.b.c = the handle\'s index')
  t.same(table.handleOf(bridge.ip, bridge.port), { ip: e.handle, port: 41000 }, 'the bridge source maps back to the handle endpoint')
  t.equal(table.handleOf(bridge.ip, 1), null, 'any other source is not a handle')
  t.equal(table.handleOf(LOOPBACK, bridge.port), null)
  t.same(table.remoteOf(e.handle), { ip: 0xc6336401, port: 41000, kind: 'tcp' })
  t.equal(table.transportOf(e.handle), 'tcp')
  t.equal(table.transportOf(0x0a000001), 'udp')
  t.equal(table.transportOf(0xfd800005), 'faketcp', 'a fake-TCP flow handle (the addon\'s range), never in this table')
  t.equal(table.text(e.handle), 'tcp:198.51.100.1:41000', 'status shows the far end')
  setConnHandleText((ip) => table.text(ip)) // as the daemon does (transport/daemon-transport.ts)
  t.teardown(() => { setConnHandleText(null) })
  t.equal(formatEndpoint(e.handle, 41000), 'tcp:198.51.100.1:41000', 'formatEndpoint through the hook')
  const got = once(d, 'message')
  e.deliver(Uint8Array.of(1, 2, 3))
  const [msg, rinfo] = await got as [Buffer, { port: number }]
  t.same([...msg], [1, 2, 3])
  t.equal(rinfo.port, bridge.port, 'from the bridge port')
  const bridgeHost = `127.${(bridge.ip >>> 16) & 255}.${(bridge.ip >>> 8) & 255}.${bridge.ip & 255}`
  d.send(Uint8Array.of(2, 9), bridge.port, bridgeHost)
  await new Promise(resolve => setTimeout(resolve, 50))
  t.same(link.sent, [[2, 9]], 'the daemon\'s datagram went out on the link')
  t.ok(table.get(e.handle)!.open, 'a HandshakeResp through it makes it authenticated')
  link.full = true
  d.send(Uint8Array.of(4, 1), bridge.port, bridgeHost)
  await new Promise(resolve => setTimeout(resolve, 50))
  t.equal(table.counters.transportDropBackedUp, 1, 'a backed-up link drops the message, counted')
  let why = ''
  table.onClose(e.handle, (r) => { why = r })
  e.close('test')
  t.equal(why, 'test')
  t.ok(link.closed)
  t.equal(table.bridgeOf(e.handle), null)
  t.equal(table.remoteOf(e.handle), null)
  t.match(formatEndpoint(e.handle, 41000), /closed connection/)
})

t.test('the bridge in batches: a GSO batch from the daemon reaches the link message by message; jumbo messages both ways', async t => {
  const native = loadNative()
  const d = native.udpOpen('127.0.0.1', 0, 1 << 22)
  t.teardown(() => { native.close(d.fd) })
  const table = new ConnTable({ daemon: () => ({ host: '127.0.0.1', port: d.port }), maxConns: 4, maxUnauth: 4, now: () => 0, native })
  t.teardown(() => { table.closeAll() })
  const link = new FakeLink(41001)
  const e = (await table.add(link, { open: true }))!
  const b = table.bridgeOf(e.handle)!
  // 40 messages of 1400 bytes and a shorter last one, sent as GSO runs (one skb each) to the bridge; then a jumbo one.
  const sizes = [...Array(40).fill(1400) as number[], 600, 9000]
  const mem = new Uint8Array(sizes.reduce((a, x) => a + x, 0))
  const offsets = new Int32Array(sizes.length)
  const lens = Int32Array.from(sizes)
  const addrs = new Uint32Array(2 * sizes.length)
  let at = 0
  sizes.forEach((len, i) => { offsets[i] = at; mem.fill(i + 1, at, at + len); at += len; addrs[2 * i] = b.ip; addrs[2 * i + 1] = b.port })
  t.equal(native.udpSendBatchGso(d.fd, mem, offsets, lens, addrs, sizes.length), sizes.length)
  await new Promise(resolve => setTimeout(resolve, 100))
  t.same(link.sent.map((m) => m.length), sizes, 'every message, whole, in order')
  t.ok(link.sent.every((m, i) => m.every((x) => x === i + 1)), 'each with its own bytes')
  // The other way: what the link delivers in one turn leaves in one batch; the daemon reads the same messages.
  for (let i = 0; i < 70; i++) e.deliver(new Uint8Array(i === 69 ? 9000 : 1400).fill(i))
  await new Promise(resolve => setTimeout(resolve, 100))
  const rx = { mem: new Uint8Array(128 * 9216), offsets: Int32Array.from({ length: 128 }, (_, i) => i * 9216), lens: new Int32Array(128), addrs: new Uint32Array(256) }
  const n = native.udpRecvBatch(d.fd, rx.mem, rx.offsets, rx.lens, rx.addrs, 128, 9216)
  t.equal(n, 70, 'all delivered (70 messages: more than one staging batch)')
  const ok = [...rx.lens.subarray(0, n)].every((len, i) => len === (i === 69 ? 9000 : 1400) && rx.mem.subarray(rx.offsets[i]!, rx.offsets[i]! + len).every((x) => x === i))
  t.ok(ok, 'in order, each whole')
  t.ok([...rx.addrs.subarray(0, 2 * n)].every((x, i) => x === (i % 2 === 0 ? b.ip : b.port)), 'from the bridge')
  t.equal(table.counters.transportDropBridge, 0)
})

t.test('a connection whose reader stops: the table counts drops and the link\'s memory stays bounded', async t => {
  const native = loadNative()
  const d = native.udpOpen('127.0.0.1', 0, 1 << 22)
  t.teardown(() => { native.close(d.fd) })
  const table = new ConnTable({ daemon: () => ({ host: '127.0.0.1', port: d.port }), maxConns: 4, maxUnauth: 4, now: () => 0, native })
  t.teardown(() => { table.closeAll() })
  let peer: Socket | null = null
  const srv = createServer((s) => { peer = s; s.pause() }) // the far end never reads
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { peer?.destroy(); srv.close() })
  const sock = connect((srv.address() as { port: number }).port, '127.0.0.1')
  await once(sock, 'connect')
  const e = (await table.add(new TcpLink(sock, () => {}, newTcpLinkCounters()), { open: true }))!
  const b = table.bridgeOf(e.handle)!
  const N = 32
  const mem = new Uint8Array(N * 1400).fill(7)
  const offsets = Int32Array.from({ length: N }, (_, i) => i * 1400)
  const lens = new Int32Array(N).fill(1400)
  const addrs = Uint32Array.from({ length: 2 * N }, (_, i) => i % 2 === 0 ? b.ip : b.port)
  let sent = 0
  for (let round = 0; round < 2000 && table.counters.transportDropBackedUp < 100; round++) {
    sent += native.udpSendBatchGso(d.fd, mem, offsets, lens, addrs, N)
    await new Promise(resolve => setTimeout(resolve, 1))
  }
  t.ok(table.counters.transportDropBackedUp >= 100, `drops counted (${table.counters.transportDropBackedUp} of ${sent})`)
  t.ok(sock.writableLength <= SEND_BACKLOG + SEND_BATCH, `user space holds at most SEND_BACKLOG + one turn (${sock.writableLength} bytes)`)
  t.equal(table.counters.transportMsgsOut + table.counters.transportDropBackedUp, sent, 'every message either went out or was counted')
})
