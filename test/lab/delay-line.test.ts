// lab/delay-line.ts on loopback: a datagram reaches the upstream no sooner
// than the delay, its reply reaches the client no sooner than the delay again,
// in order; each client gets its own upstream source port; a full queue drops
// and counts instead of growing; bursts larger than one recvmmsg/sendmmsg
// batch pass whole and in order while the queue's ring wraps; a client over
// maxClients, a datagram too long for a slot and a busy listen port are
// refused and counted or reported.
import t, { type Test } from 'tap'
import { createSocket, type Socket } from 'node:dgram'
import { once } from 'node:events'
import { createDelayLine } from '../../src/lab/delay-line.js'

async function bound (t: Test): Promise<Socket> {
  const s = createSocket('udp4')
  await new Promise<void>((resolve) => { s.bind(0, '127.0.0.1', resolve) })
  s.setRecvBufferSize(1 << 20) // bursts of 150 small datagrams while this process is busy: no drop in the test's own sockets
  t.teardown(() => { s.close() })
  return s
}

async function freePort (): Promise<number> {
  const s = createSocket('udp4')
  await new Promise<void>((resolve) => { s.bind(0, '127.0.0.1', resolve) })
  const p = s.address().port
  s.close()
  return p
}

t.test('delays both directions, keeps order, one upstream port per client', async t => {
  const upstream = await bound(t)
  // The upstream echoes every datagram and records its source port.
  const seenPorts = new Set<number>()
  const atUpstream: Array<{ text: string, at: number }> = []
  upstream.on('message', (msg, r) => { seenPorts.add(r.port); atUpstream.push({ text: msg.toString(), at: performance.now() }); upstream.send(msg, r.port, r.address) })
  const port = await freePort()
  const line = await createDelayLine({ listenHost: '127.0.0.1', listenPort: port, upstreamHost: '127.0.0.1', upstreamPort: upstream.address().port, delayMs: 40 })
  t.teardown(() => { line.close() })
  const a = await bound(t)
  const b = await bound(t)
  const got: string[] = []
  a.on('message', (m) => got.push(m.toString()))
  const t0 = performance.now()
  for (let i = 0; i < 5; i++) a.send(`a${i}`, port, '127.0.0.1')
  while (got.length < 5) await once(a, 'message')
  const rtt = performance.now() - t0
  b.send('b0', port, '127.0.0.1')
  const [reply] = await once(b, 'message') as [Buffer]
  t.equal(reply.toString(), 'b0')
  t.ok(rtt >= 79, 'a round trip takes at least twice the delay')
  t.ok(rtt < 80 + 1000, `and not much more (${rtt.toFixed(1)} ms)`)
  t.ok(atUpstream[0]!.at - t0 >= 39, 'the upstream sees the first datagram no sooner than the delay')
  t.same(got, ['a0', 'a1', 'a2', 'a3', 'a4'], 'replies in order')
  t.equal(seenPorts.size, 2, 'each client has its own upstream port')
  t.equal(line.stats.forwarded, 6)
  t.equal(line.stats.returned, 6)
  t.equal(line.stats.droppedQueueFull, 0)
})

t.test('a full queue drops and counts', async t => {
  const upstream = await bound(t)
  let n = 0
  upstream.on('message', () => { n++ })
  const port = await freePort()
  // A long delay: all ten arrive while the first still waits, however late this process runs.
  const line = await createDelayLine({ listenHost: '127.0.0.1', listenPort: port, upstreamHost: '127.0.0.1', upstreamPort: upstream.address().port, delayMs: 1000, maxQueued: 3 })
  t.teardown(() => { line.close() })
  const a = await bound(t)
  a.send('first', port, '127.0.0.1')
  await new Promise((resolve) => setTimeout(resolve, 5))
  for (let i = 0; i < 9; i++) a.send(`x${i}`, port, '127.0.0.1')
  for (let i = 0; i < 50 && line.stats.forwarded + line.stats.droppedQueueFull < 10; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  t.equal(line.stats.forwarded, 3, 'at most maxQueued wait')
  t.equal(line.stats.droppedQueueFull, 7)
  t.equal(line.stats.maxQueued, 3)
  t.equal(n, 0, 'none left before the delay')
  for (let i = 0; i < 100 && n < 3; i++) await new Promise((resolve) => setTimeout(resolve, 20))
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(n, 3, 'the upstream got exactly the queued ones')
})

t.test('bursts over one batch pass whole, in order, each held the delay, while the ring wraps', async t => {
  const upstream = await bound(t)
  const lateness: number[] = []
  const sentAt = new Map<string, number>()
  upstream.on('message', (msg, r) => {
    lateness.push(performance.now() - sentAt.get(msg.toString())!)
    upstream.send(msg, r.port, r.address)
  })
  const port = await freePort()
  // 8 waves of 150 (over two 64-datagram batches each) through a ring of 400 slots: it wraps three times.
  const line = await createDelayLine({ listenHost: '127.0.0.1', listenPort: port, upstreamHost: '127.0.0.1', upstreamPort: upstream.address().port, delayMs: 15, maxQueued: 400 })
  t.teardown(() => { line.close() })
  const a = await bound(t)
  const got: string[] = []
  a.on('message', (m) => got.push(m.toString()))
  const want: string[] = []
  for (let wave = 0; wave < 8; wave++) {
    for (let i = 0; i < 150; i++) {
      const text = `w${wave}-${i}`
      want.push(text)
      sentAt.set(text, performance.now())
      a.send(text, port, '127.0.0.1')
    }
    await new Promise((resolve) => setTimeout(resolve, 40))
  }
  for (let i = 0; i < 100 && got.length < want.length; i++) await new Promise((resolve) => setTimeout(resolve, 20))
  t.same(got, want, 'every datagram came back, in order')
  t.ok(Math.min(...lateness) >= 15 - 0.5, 'none reached the upstream sooner than the delay')
  t.same({ f: line.stats.forwarded, r: line.stats.returned, q: line.stats.droppedQueueFull, s: line.stats.sendErrors }, { f: 1200, r: 1200, q: 0, s: 0 })
  t.ok(line.stats.recvCalls < 2400, `recvmmsg took several datagrams a call (${line.stats.recvCalls} calls for 2400)`)
})

t.test('a client over maxClients and a datagram too long for a slot are dropped and counted', async t => {
  const upstream = await bound(t)
  const seen: string[] = []
  upstream.on('message', (msg, r) => { seen.push(msg.length > 100 ? `long ${msg.length}` : msg.toString()); upstream.send(msg, r.port, r.address) })
  const port = await freePort()
  const line = await createDelayLine({ listenHost: '127.0.0.1', listenPort: port, upstreamHost: '127.0.0.1', upstreamPort: upstream.address().port, delayMs: 5, maxClients: 1 })
  t.teardown(() => { line.close() })
  const a = await bound(t)
  const b = await bound(t)
  a.send('a0', port, '127.0.0.1')
  await once(a, 'message')
  b.send('b0', port, '127.0.0.1')
  a.send(Buffer.alloc(1537, 1), port, '127.0.0.1')
  a.send(Buffer.alloc(1472, 2), port, '127.0.0.1')
  const [reply] = await once(a, 'message') as [Buffer]
  t.equal(reply.length, 1472, 'a datagram of the lab links\' largest size passes')
  await new Promise((resolve) => setTimeout(resolve, 30))
  t.same(seen, ['a0', 'long 1472'], 'the second client and the too-long datagram never reached the upstream')
  t.equal(line.stats.droppedTooManyClients, 1)
  t.equal(line.stats.droppedTooLong, 1)
  t.equal(line.stats.forwarded, 2)
})

t.test('a busy listen port is an error naming the port', async t => {
  const holder = await bound(t)
  const port = holder.address().port
  await t.rejects(createDelayLine({ listenHost: '127.0.0.1', listenPort: port, upstreamHost: '127.0.0.1', upstreamPort: 9, delayMs: 5 }),
    { code: 'ERR_ADDRESS_IN_USE', message: new RegExp(`127\\.0\\.0\\.1:${port} is already in use`) })
})
