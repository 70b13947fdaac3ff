// control/rate-limit.ts: PerKeyInterval (at most once per interval per key,
// a bounded table that evicts the key allowed longest ago) and TokenBucket
// (a rate with a burst of the same size, refilled by elapsed time). Time is a
// ManualClock; nothing sleeps.
import t from 'tap'
import { ManualClock } from '../../src/clock.js'
import { PerKeyInterval, TokenBucket } from '../../src/control/rate-limit.js'

t.test('PerKeyInterval: once per interval per key', async t => {
  const clock = new ManualClock()
  const lim = new PerKeyInterval(1000, 16)
  t.equal(lim.allow('a', clock.now()), true, 'first time: allowed')
  t.equal(lim.allow('a', clock.now()), false, 'again at once: denied')
  t.equal(lim.allow('b', clock.now()), true, 'another key is independent')
  clock.advance(999)
  t.equal(lim.allow('a', clock.now()), false, 'just under the interval: denied')
  clock.advance(1)
  t.equal(lim.allow('a', clock.now()), true, 'at the interval: allowed again')
  t.equal(lim.allow('a', clock.now()), false, 'and the interval restarts from there')
  clock.advance(500)
  t.equal(lim.allow('b', clock.now()), true, "b's interval ran from its own allow")
  t.equal(lim.size, 2)
})

t.test('PerKeyInterval: a denied call does not extend the interval', async t => {
  const lim = new PerKeyInterval(100, 4)
  t.equal(lim.allow(7, 0), true)
  t.equal(lim.allow(7, 60), false)
  t.equal(lim.allow(7, 100), true, 'counted from the allow at 0, not the denial at 60')
})

t.test('PerKeyInterval: numbers and strings are different keys', async t => {
  const lim = new PerKeyInterval(100, 4)
  t.equal(lim.allow(1, 0), true)
  t.equal(lim.allow('1', 0), true)
  t.equal(lim.size, 2)
})

t.test('PerKeyInterval: the table is bounded; the key allowed longest ago goes first', async t => {
  const lim = new PerKeyInterval(1000, 3)
  t.equal(lim.allow('a', 0), true)
  t.equal(lim.allow('b', 1), true)
  t.equal(lim.allow('c', 2), true)
  t.equal(lim.size, 3)
  t.equal(lim.allow('b', 3), false, 'a denial does not refresh b')
  t.equal(lim.allow('d', 4), true, 'a new key in a full table: allowed')
  t.equal(lim.size, 3, 'still at most 3 keys')
  t.equal(lim.allow('a', 5), true, 'a (the oldest) was evicted, so it is allowed again at once')
  t.equal(lim.size, 3)
  t.equal(lim.allow('c', 6), false, 'c is still remembered')
  t.equal(lim.allow('d', 6), false, 'd is still remembered')
  t.equal(lim.allow('b', 6), true, 'b was the oldest when a came back, so it was evicted')
})

t.test('PerKeyInterval: a re-allowed key moves to the young end', async t => {
  const lim = new PerKeyInterval(10, 2)
  lim.allow('a', 0)
  lim.allow('b', 5)
  t.equal(lim.allow('a', 10), true, 'a allowed again: now younger than b')
  t.equal(lim.allow('c', 11), true, 'c evicts b, not a')
  t.equal(lim.allow('a', 12), false, 'a kept')
  t.equal(lim.allow('b', 12), true, 'b was evicted')
})

t.test('PerKeyInterval: thousands of keys never grow the table past its bound', async t => {
  const lim = new PerKeyInterval(60_000, 100)
  let allowed = 0
  for (let i = 0; i < 5000; i++) if (lim.allow(i, i)) allowed++
  t.equal(allowed, 5000, 'every new key allowed')
  t.equal(lim.size, 100)
  t.equal(lim.allow(4999, 5000), false, 'the newest key is remembered')
  t.equal(lim.allow(0, 5000), true, 'the first key is long gone')
})

t.test('TokenBucket: bursts to its rate, then refills with time', async t => {
  const clock = new ManualClock()
  const b = new TokenBucket(5, clock.now())
  for (let i = 0; i < 5; i++) t.equal(b.take(clock.now()), true, `burst ${i + 1} of 5`)
  t.equal(b.take(clock.now()), false, 'empty after the burst')
  clock.advance(199)
  t.equal(b.take(clock.now()), false, 'under one token refilled (5/s = one per 200 ms)')
  clock.advance(1)
  t.equal(b.take(clock.now()), true, 'one token after 200 ms')
  t.equal(b.take(clock.now()), false)
  clock.advance(10_000)
  let n = 0
  while (b.take(clock.now())) n++
  t.equal(n, 5, 'a long idle time refills to the burst size only')
})

t.test('TokenBucket: a steady rate over time', async t => {
  const clock = new ManualClock()
  const b = new TokenBucket(10, clock.now())
  while (b.take(clock.now()));
  let allowed = 0
  // Ask every 10 ms for 10 s: 1000 asks, 10 a second allowed.
  for (let i = 0; i < 1000; i++) { clock.advance(10); if (b.take(clock.now())) allowed++ }
  t.ok(allowed >= 99 && allowed <= 101, `about 100 allowed in 10 s (${allowed})`)
})
