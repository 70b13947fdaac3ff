// transport/choice.ts: a client's transport to its server, on a manual clock.
import t from 'tap'
import { FALLBACK_MS, PROBE_MS, RETRY_MIN_MS, TransportChoice } from '../../src/transport/choice.js'

const H = 0xfd000001

t.test('auto: UDP answers, nothing else happens', async t => {
  const c = new TransportChoice('auto', 0)
  t.same(c.tick(1000, false), [])
  t.same(c.tick(1500, true), [])
  t.same(c.tick(10_000, true), [], 'registered on UDP: no TCP')
  t.equal(c.transport, 'udp')
  t.equal(c.reason, null)
})

t.test('auto: no UDP answer in 2 s -> TCP; probes; UDP answers -> back, and counted', async t => {
  const c = new TransportChoice('auto', 0)
  t.same(c.tick(FALLBACK_MS - 1, false), [], 'not yet')
  t.same(c.tick(FALLBACK_MS, false), [{ type: 'connect' }])
  t.equal(c.reason, 'no UDP answer from the server in 2 s')
  t.same(c.tick(FALLBACK_MS + 100, false), [], 'one connect at a time')
  t.same(c.connected(2500, H), [{ type: 'use-tcp', handle: H }])
  t.equal(c.transport, 'tcp')
  t.equal(c.counters.transportFallbacks, 1)
  t.same(c.tick(2600, false), [], 'no probe before the session')
  t.same(c.tick(2500 + PROBE_MS, true), [{ type: 'probe-udp' }])
  t.same(c.tick(2500 + PROBE_MS + 10, true), [], 'one probe per interval')
  t.same(c.udpAnswered(5000), [{ type: 'use-udp' }, { type: 'close-tcp', handle: H }])
  t.equal(c.transport, 'udp')
  t.equal(c.reason, null)
  t.equal(c.counters.transportReturns, 1)
  t.same(c.udpAnswered(5001), [], 'a late answer changes nothing')
})

t.test('auto: TCP fails -> retries with doubling waits, and UDP answering meanwhile wins', async t => {
  const c = new TransportChoice('auto', 0)
  c.tick(FALLBACK_MS, false)
  t.same(c.connectFailed(2100, 'ECONNREFUSED'), [])
  t.match(c.reason, /TCP failed too \(ECONNREFUSED\)/)
  t.same(c.tick(2100 + RETRY_MIN_MS - 1, false), [])
  t.same(c.tick(2100 + RETRY_MIN_MS, false), [{ type: 'connect' }], 'retry after 2 s')
  c.connectFailed(4200, 'ETIMEDOUT')
  t.same(c.tick(4200 + RETRY_MIN_MS, false), [], 'the wait doubled')
  t.same(c.tick(4200 + 2 * RETRY_MIN_MS, false), [{ type: 'connect' }])
  t.same(c.tick(8300, true), [], 'UDP answered while connecting')
  t.equal(c.state.kind, 'udp')
  t.same(c.connected(8400, H), [{ type: 'close-tcp', handle: H }], 'the late connection is closed')
  t.equal(c.counters.tcpConnectFailures, 2)
})

t.test('auto: the TCP connection ends -> UDP meanwhile, and connect again', async t => {
  const c = new TransportChoice('auto', 0)
  c.tick(FALLBACK_MS, false)
  c.connected(2100, H)
  t.same(c.closed(3000, H + 1, 'x'), [], 'another handle: nothing')
  t.same(c.closed(3000, H, 'connection reset'), [{ type: 'use-udp' }, { type: 'connect' }])
  t.match(c.reason, /connection reset/)
})

t.test('pinned: tcp never uses or probes UDP; udp never connects', async t => {
  const c = new TransportChoice('tcp', 0)
  t.same(c.tick(0, false), [{ type: 'connect' }], 'connects at once')
  t.same(c.connected(10, H), [{ type: 'use-tcp', handle: H }])
  t.same(c.tick(60_000, true), [], 'no probes')
  t.same(c.udpAnswered(60_001), [])
  t.same(c.closed(70_000, H, 'reset'), [{ type: 'connect' }], 'reconnects, never UDP')
  t.equal(c.counters.transportFallbacks, 0, 'pinned is no fallback')
  const u = new TransportChoice('udp', 0)
  t.same(u.tick(60_000, false), [], 'udp: never TCP')
})
