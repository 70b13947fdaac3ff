// The IPv6 address table (dataplane/v6-table.ts, native/addr6.c): intern/find/resolve, pins,
// recycling after the reuse guard, bounds and their counters, a reader on another thread never
// seeing a half-written entry, and the addon's side on a real dual-stack socket on loopback:
// IPv6 sources become handles, v4-mapped sources plain u32s, handles resolve on send.
import t from 'tap'
import { Worker } from 'node:worker_threads'
import { createSocket, type Socket } from 'node:dgram'
import { REUSE_GUARD_S, V6Table } from '../../src/dataplane/v6-table.js'
import { HANDLE_V6, isV6Handle } from '../../src/wire/endpoint-handle.js'
import { formatEndpoint, setHandleText } from '../../src/wire/addr.js'
import { loadNative } from '../../src/dataplane/native.js'
import { parseIp6 } from '../../src/wire/prefix.js'

const addr = (i: number): string => `2001:db8::${(i + 1).toString(16)}`

t.test('intern, find, resolve; one address, one handle', async t => {
  const tab = V6Table.create(16, { now: () => 100 })
  const h = tab.intern('2001:db8::1', false)!
  t.ok(isV6Handle(h), 'a 0xFE handle')
  t.equal(tab.intern(parseIp6('2001:db8::1'), true), h, 'the same address: the same handle')
  t.equal(tab.find('2001:db8::1'), h)
  t.equal(tab.find('2001:db8::2'), null, 'find never adds')
  t.equal(tab.text(h), '2001:db8::1')
  t.equal(tab.address(0x0a000001), null, 'an IPv4 endpoint is no handle')
  t.equal(tab.address((HANDLE_V6 | 9) >>> 0), null, 'an unused entry')
  t.equal(tab.address((HANDLE_V6 | 99999) >>> 0), null, 'past the capacity')
  t.same(tab.stats(), { entries: 1, pinned: 1, misses: 0, recycled: 0, added: 0 })
})

t.test('bounds: pinned entries stay, young unpinned ones too; old unpinned ones are recycled', async t => {
  let now = 1000
  // A fixed hash seed: with a random one, a few seeds in a thousand put five of nine addresses in one 4-way
  // bucket, so one intern found its bucket full (null, which the Set below counted as an entry) and the
  // table was not full (a whole-suite CI run failed on it).
  const tab = V6Table.create(8, { now: () => now, seed: 1 })
  const pinned = [0, 1, 2].map(i => tab.intern(addr(i), true))
  const loose = [3, 4, 5, 6, 7].map(i => tab.intern(addr(i), false))
  t.ok([...pinned, ...loose].every(h => h !== null), 'every intern found room')
  t.equal(new Set([...pinned, ...loose]).size, 8, 'eight entries')
  t.equal(tab.intern(addr(8), false), null, 'full of young entries: no room')
  t.equal(tab.stats().misses, 1, 'the miss is counted')
  now += REUSE_GUARD_S - 1
  t.equal(tab.intern(addr(8), false), null, 'still within the reuse guard')
  now += 1
  const h = tab.intern(addr(8), false)!
  t.ok(loose.includes(h), 'an unpinned entry was recycled')
  t.notOk(pinned.includes(h), 'never a pinned one')
  t.equal(tab.find(addr(loose.indexOf(h) + 3)), null, 'the old address is gone')
  t.equal(tab.text(h), addr(8))
  t.equal(tab.stats().recycled, 1)
  for (const p of pinned) t.ok(tab.text(p!) !== null, 'pinned entries keep their address')
  // An unpinned (released) handle waits out the guard before it names another address.
  tab.unpin(pinned[0]!)
  for (let i = 9; i < 30; i++) tab.intern(addr(i), false)
  t.equal(tab.text(pinned[0]!), addr(0), 'released at this instant: not reused yet')
  now += REUSE_GUARD_S
  for (let i = 30; i < 40; i++) tab.intern(addr(i), false)
  t.not(tab.text(pinned[0]!), addr(0), 'after the guard it may be')
})

t.test('a reader on another thread never sees a half-written entry', async t => {
  const tab = V6Table.create(4, { now: () => 0 })
  const h = tab.intern('1:1:1:1:1:1:1:1', false)!
  // The writer rewrites the table (recycling: the guard is 0 s away at now()=0 vs the stamp) with
  // addresses whose 8 words are all equal; a torn read would show two different words.
  const w = new Worker(`
    const { workerData, parentPort } = require('node:worker_threads')
    const mem = workerData.mem, i32 = new Int32Array(mem.buffer)
    const idx = workerData.h & 0xffffff, base = 64 + idx * 32
    let reads = 0, torn = 0
    const end = Date.now() + 400
    while (Date.now() < end) {
      const s1 = Atomics.load(i32, (base + 16) >> 2)
      if (s1 & 1) continue
      const a = mem.slice(base, base + 16)
      if (Atomics.load(i32, (base + 16) >> 2) !== s1) continue
      reads++
      for (let k = 2; k < 16; k += 2) if (a[k] !== a[0] || a[k + 1] !== a[1]) torn++
    }
    parentPort.postMessage({ reads, torn })
  `, { eval: true, workerData: { mem: tab.mem, h } })
  let now = 0
  const tab2 = new V6Table(tab.mem, () => (now += REUSE_GUARD_S))
  const result = new Promise<{ reads: number, torn: number }>((resolve) => w.once('message', resolve))
  const end = Date.now() + 300
  let k = 0
  while (Date.now() < end) {
    const g = (k++ % 0xfffe) + 1
    const hex = g.toString(16)
    tab2.intern(Array(8).fill(hex).join(':'), false)
    await new Promise(setImmediate)
  }
  const r = await result
  await w.terminate()
  t.ok(r.reads > 0, `the reader read (${r.reads} consistent reads)`)
  t.equal(r.torn, 0, 'never a mix of two addresses')
})

t.test('the addon: a dual-stack socket maps sources and resolves handles (loopback)', async t => {
  const n = loadNative()
  const tab = V6Table.create(64)
  const s = n.udpOpen('::', 0, 0)
  t.equal(s.family, 6)
  n.udpAttachV6Table(s.fd, tab.mem)
  setHandleText((ip) => tab.text(ip))
  const peers: Socket[] = []
  t.teardown(() => { n.close(s.fd); setHandleText(null); for (const p of peers) p.close() })
  const open = async (type: 'udp4' | 'udp6', host: string): Promise<Socket> => {
    const p = createSocket(type)
    peers.push(p)
    await new Promise<void>((resolve) => p.bind(0, host, resolve))
    return p
  }
  const p6 = await open('udp6', '::1')
  const p4 = await open('udp4', '127.0.0.1')
  const mem = new Uint8Array(4096)
  const offsets = Int32Array.from([0, 1024, 2048])
  const lens = new Int32Array(3)
  const addrs = new Uint32Array(6)
  const recv = async (want: number): Promise<number> => {
    for (let i = 0; i < 200; i++) {
      const got = n.udpRecvBatch(s.fd, mem, offsets, lens, addrs, 3, 1024)
      if (got >= want) return got
      await new Promise(resolve => setTimeout(resolve, 5))
    }
    return 0
  }
  p6.send(Buffer.from('six'), s.port, '::1')
  t.equal(await recv(1), 1)
  const h = addrs[0]!
  t.ok(isV6Handle(h), 'an IPv6 source becomes a handle')
  t.equal(tab.text(h), '::1')
  t.equal(addrs[1], p6.address().port)
  t.equal(formatEndpoint(h, addrs[1]!), `[::1]:${p6.address().port}`, 'and prints as [v6]:port')
  t.equal(tab.stats().added, 1, 'added by the receive path')
  t.equal(tab.find('::1'), h, 'the JS side finds what the addon added (same layout, same hash)')
  t.equal(tab.intern('::1', true), h, 'and pins it under the same handle')
  p6.send(Buffer.from('again'), s.port, '::1')
  t.equal(await recv(1), 1)
  t.equal(addrs[0], h, 'the next datagram finds the entry: no second one')
  t.equal(tab.stats().added, 1)
  p4.send(Buffer.from('four'), s.port, '127.0.0.1')
  t.equal(await recv(1), 1)
  t.equal(addrs[0], 0x7f000001, 'a v4-mapped source is the plain u32')
  t.equal(addrs[1], p4.address().port)

  const got6 = new Promise<string>((resolve) => p6.once('message', (m) => resolve(m.toString())))
  const got4 = new Promise<string>((resolve) => p4.once('message', (m) => resolve(m.toString())))
  t.equal(n.udpSendTo(s.fd, Buffer.from('to six'), h, p6.address().port), 6, 'a handle resolves on send')
  t.equal(n.udpSendTo(s.fd, Buffer.from('to four'), 0x7f000001, p4.address().port), 7, 'IPv4 goes v4-mapped')
  t.equal(await got6, 'to six')
  t.equal(await got4, 'to four')
  t.ok(n.udpSendTo(s.fd, Buffer.from('x'), (HANDLE_V6 | 60) >>> 0, 9) < 0, 'an unused handle is refused, not sent')
  t.ok(n.udpSendTo(s.fd, Buffer.from('x'), 0xfd000001, 9) < 0, 'a connection handle is not for the UDP socket')
  t.ok(n.udpSendToTtl(s.fd, Buffer.from('ttl'), h, p6.address().port, 3) === 3, 'a hop limit goes with an IPv6 destination')
})
