// lab/delay-line.ts on loopback: a datagram reaches the upstream no sooner
// than the delay, its reply reaches the client no sooner than the delay again,
// in order; each client gets its own upstream source port; a full queue drops
// and counts instead of growing.
import t, { type Test } from 'tap'
import { createSocket, type Socket } from 'node:dgram'
import { once } from 'node:events'
import { createDelayLine } from '../../src/lab/delay-line.js'

async function bound (t: Test): Promise<Socket> {
  const s = createSocket('udp4')
  await new Promise<void>((resolve) => { s.bind(0, '127.0.0.1', resolve) })
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
  const line = await createDelayLine({ listenHost: '127.0.0.1', listenPort: port, upstreamHost: '127.0.0.1', upstreamPort: upstream.address().port, delayMs: 30, maxQueued: 3 })
  t.teardown(() => { line.close() })
  const a = await bound(t)
  a.send('first', port, '127.0.0.1')
  await new Promise((resolve) => setTimeout(resolve, 5)) // the client's upstream socket exists
  for (let i = 0; i < 9; i++) a.send(`x${i}`, port, '127.0.0.1')
  await new Promise((resolve) => setTimeout(resolve, 150))
  t.equal(line.stats.forwarded, 3, 'at most maxQueued wait')
  t.equal(line.stats.droppedQueueFull, 7)
  t.equal(line.stats.maxQueued, 3)
  t.equal(n, 3, 'the upstream got exactly the queued ones')
})
