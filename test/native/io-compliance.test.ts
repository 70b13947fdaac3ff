// One contract, two implementations: the same assertions run against the
// real addon (UDP over loopback, no root needed) and against its in-memory
// twin (helpers/fake-io.ts), so the twin the pipeline tests rely on keeps
// behaving like the addon (wireguard-go bindtest; js-libp2p compliance tests).
// Covered: bound address and port reporting, EADDRINUSE, bad hosts, batch
// send/receive (counts, lengths, source address and port, order, max,
// truncation), udpRecvGro entries, udpSendTo, and polls that fire while an fd
// is readable and stop when told.
import t, { type Test } from 'tap'
import { loadNative, isNativeErrnoError, type Native } from '../../src/dataplane/native.js'
import { FakeIo } from '../helpers/fake-io.js'

const LOOPBACK = 0x7f000001

const impls: Array<[string, () => Native]> = [
  ['addon', () => loadNative()],
  ['twin', () => new FakeIo()]
]

function opener (t: Test, n: Native): (host?: string, port?: number) => { fd: number, port: number } {
  return (host = '127.0.0.1', port = 0) => {
    const s = n.udpOpen(host, port, 0)
    t.teardown(() => { n.close(s.fd) })
    return s
  }
}

function batch (sizes: number[], fill: (i: number) => number): { mem: Uint8Array, offsets: Int32Array, lens: Int32Array } {
  const mem = new Uint8Array(sizes.length * 2048)
  const offsets = Int32Array.from(sizes, (_, i) => i * 2048)
  const lens = Int32Array.from(sizes)
  sizes.forEach((s, i) => { mem.fill(fill(i), i * 2048, i * 2048 + s) })
  return { mem, offsets, lens }
}

function rxBuffers (max: number, cap = 2048): { mem: Uint8Array, offsets: Int32Array, lens: Int32Array, addrs: Uint32Array } {
  return { mem: new Uint8Array(max * cap), offsets: Int32Array.from({ length: max }, (_, i) => i * cap), lens: new Int32Array(max), addrs: new Uint32Array(max * 2) }
}

/** Resolves when a poll on fd has fired once (and stops that poll). */
async function readableOnce (n: Native, fd: number): Promise<void> {
  await new Promise<void>((resolve) => {
    const h = n.pollStart(fd, () => { n.pollStop(h); resolve() })
  })
}

for (const [name, make] of impls) {
  t.test(name, async t => {
    t.test('udpOpen reports the bound port; a taken port is EADDRINUSE; a bad host is a RangeError', async t => {
      const n = make()
      const open = opener(t, n)
      const a = open()
      const b = open()
      t.ok(a.port > 0 && b.port > 0 && a.port !== b.port, 'two ephemeral ports')
      t.ok(Number.isInteger(a.fd) && a.fd >= 0)
      const err = (() => { try { n.udpOpen('127.0.0.1', a.port, 0); return null } catch (e) { return e } })()
      t.ok(isNativeErrnoError(err), 'an errno error')
      t.match(err, { code: 'EADDRINUSE', syscall: 'bind' })
      t.throws(() => n.udpOpen('localhost', 0, 0), RangeError)
    })

    t.test('a batch arrives whole, in order, with its source address and port', async t => {
      const n = make()
      const open = opener(t, n)
      const a = open()
      const b = open()
      const rx = rxBuffers(16)
      t.equal(n.udpRecvBatch(b.fd, rx.mem, rx.offsets, rx.lens, rx.addrs, 16, 2048), 0, 'nothing waiting: 0')
      const sizes = [1, 100, 1400]
      const tx = batch(sizes, (i) => 0x10 + i)
      const addrs = Uint32Array.from([LOOPBACK, b.port, LOOPBACK, b.port, LOOPBACK, b.port])
      t.equal(n.udpSendBatch(a.fd, tx.mem, tx.offsets, tx.lens, addrs, 3), 3, 'all sent')
      await readableOnce(n, b.fd)
      t.equal(n.udpRecvBatch(b.fd, rx.mem, rx.offsets, rx.lens, rx.addrs, 2, 2048), 2, 'max 2: two')
      t.same([...rx.lens.subarray(0, 2)], [1, 100])
      t.same([...rx.addrs.subarray(0, 4)], [LOOPBACK, a.port, LOOPBACK, a.port])
      t.equal(rx.mem[0], 0x10)
      t.ok(rx.mem.subarray(2048, 2048 + 100).every((x) => x === 0x11))
      t.equal(n.udpRecvBatch(b.fd, rx.mem, rx.offsets, rx.lens, rx.addrs, 16, 2048), 1, 'then the third')
      t.equal(rx.lens[0], 1400)
      t.ok(rx.mem.subarray(0, 1400).every((x) => x === 0x12))
      t.equal(n.udpRecvBatch(b.fd, rx.mem, rx.offsets, rx.lens, rx.addrs, 16, 2048), 0, 'drained')
    })

    t.test('a datagram longer than cap: lens -1 (truncated)', async t => {
      const n = make()
      const open = opener(t, n)
      const a = open()
      const b = open()
      t.equal(n.udpSendTo(a.fd, new Uint8Array(600).fill(9), LOOPBACK, b.port), 600, 'udpSendTo returns the bytes sent')
      await readableOnce(n, b.fd)
      const rx = rxBuffers(4, 512)
      t.equal(n.udpRecvBatch(b.fd, rx.mem, rx.offsets, rx.lens, rx.addrs, 4, 512), 1)
      t.equal(rx.lens[0], -1)
      t.ok(rx.mem.subarray(0, 512).every((x) => x === 9), 'the first cap bytes')
    })

    t.test('udpSendBatchGso + udpRecvGro: whatever the kernel coalesced, one entry per datagram, same bytes, in order', async t => {
      const n = make()
      const open = opener(t, n)
      const a = open()
      const b = open()
      t.type(n.udpSetGro(b.fd, true), 'boolean')
      const sizes = [1000, 1000, 1000, 1000, 300]
      const tx = batch(sizes, (i) => 0x20 + i)
      const addrs = new Uint32Array(sizes.length * 2)
      for (let i = 0; i < sizes.length; i++) { addrs[2 * i] = LOOPBACK; addrs[2 * i + 1] = b.port }
      t.equal(n.udpSendBatchGso(a.fd, tx.mem, tx.offsets, tx.lens, addrs, sizes.length), sizes.length)
      await readableOnce(n, b.fd)
      const mem = new Uint8Array(4 * 65536)
      const bufOffsets = Int32Array.from({ length: 4 }, (_, i) => i * 65536)
      const offsets = new Int32Array(256)
      const lens = new Int32Array(256)
      const raddrs = new Uint32Array(512)
      const info = new Int32Array(4)
      const got: number[][] = []
      for (let round = 0; round < 10 && got.length < sizes.length; round++) {
        const k = n.udpRecvGro(b.fd, mem, bufOffsets, 4, 65536, offsets, lens, raddrs, 256, info)
        t.ok(info[0]! >= 0 && info[0]! <= 4, 'info[0]: datagrams this call, at most nBufs')
        for (let i = 0; i < k; i++) {
          got.push([lens[i]!, mem[offsets[i]!]!, mem[offsets[i]! + lens[i]! - 1]!, raddrs[2 * i]!, raddrs[2 * i + 1]!])
        }
        if (k === 0) await readableOnce(n, b.fd)
      }
      t.same(got, sizes.map((s, i) => [s, 0x20 + i, 0x20 + i, LOOPBACK, a.port]))
    })

    t.test('a poll fires while the fd is readable, again while it stays readable, and not after pollStop', async t => {
      const n = make()
      const open = opener(t, n)
      const a = open()
      const b = open()
      let calls = 0
      const h = n.pollStart(b.fd, () => { calls++ })
      await new Promise((resolve) => setTimeout(resolve, 20))
      t.equal(calls, 0, 'not readable: not called')
      n.udpSendTo(a.fd, new Uint8Array(10), LOOPBACK, b.port)
      await new Promise((resolve) => setTimeout(resolve, 30))
      t.ok(calls >= 2, `level-triggered: called on every turn while unread (${calls})`)
      const rx = rxBuffers(1)
      n.udpRecvBatch(b.fd, rx.mem, rx.offsets, rx.lens, rx.addrs, 1, 2048)
      await new Promise((resolve) => setTimeout(resolve, 10))
      const after = calls
      await new Promise((resolve) => setTimeout(resolve, 20))
      t.equal(calls, after, 'drained: no more calls')
      n.pollStop(h)
      n.udpSendTo(a.fd, new Uint8Array(10), LOOPBACK, b.port)
      await new Promise((resolve) => setTimeout(resolve, 20))
      t.equal(calls, after, 'stopped: never called again')
      n.pollStop(h) // idempotent
    })

    t.test('a closed fd: EBADF', async t => {
      const n = make()
      const s = n.udpOpen('127.0.0.1', 0, 0)
      n.close(s.fd)
      const rx = rxBuffers(1)
      t.throws(() => n.udpRecvBatch(s.fd, rx.mem, rx.offsets, rx.lens, rx.addrs, 1, 2048), { code: 'EBADF' })
    })
  })
}
