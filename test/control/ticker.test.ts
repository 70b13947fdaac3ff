// control/ticker.ts: the control plane's self-rearming timer.
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { LATE_MS, LoopDelayMonitor, RecentSamples, Ticker, lateFigures } from '../../src/control/ticker.js'
import { ManualClock, systemClock } from '../../src/clock.js'

t.test('runs at once, then after the interval tick asks for; stop ends it', async t => {
  const at: number[] = []
  const t0 = Date.now()
  const k = new Ticker(() => { at.push(Date.now() - t0); return at.length < 3 ? 40 : 10_000 }, () => {}, 100, systemClock)
  k.start()
  t.equal(at.length, 1, 'the first run is synchronous')
  await sleep(150)
  t.equal(at.length, 3, 'two more runs 40 ms apart, then a long wait')
  t.ok(at[1]! >= 35 && at[2]! - at[1]! >= 35, `gaps follow the asked interval (${at.join(', ')} ms)`)
  k.stop()
  k.kick(0)
  await sleep(30)
  t.equal(at.length, 3, 'stopped: a kick does nothing')
})

t.test('kick brings a later run forward, never pushes a sooner one back', async t => {
  let runs = 0
  const k = new Ticker(() => { runs++; return 10_000 }, () => {}, 100, systemClock)
  k.start()
  k.kick(20)
  await sleep(60)
  t.equal(runs, 2, 'the kick ran the timers within 20 ms instead of 10 s')
  k.kick(5)
  k.kick(10_000)
  await sleep(40)
  t.equal(runs, 3, 'a later kick did not cancel the sooner one')
  k.stop()
})

t.test('a throwing tick is reported and the timer goes on at the fallback interval', async t => {
  const errors: unknown[] = []
  let runs = 0
  const k = new Ticker(() => { runs++; if (runs === 1) throw new Error('boom'); return 10_000 }, (e) => { errors.push(e) }, 20, systemClock)
  k.start()
  await sleep(60)
  t.equal(errors.length, 1)
  t.match(errors[0], /boom/)
  t.equal(runs, 2, 'ran again after the fallback interval')
  k.stop()
})

t.test('records how late each timed run fired, on the injected clock', async t => {
  const clock = new ManualClock()
  let runs = 0
  // Real timers of 20 ms, then of 10 s: the test kicks every later run, so each fires exactly once.
  const k = new Ticker(() => ++runs === 1 ? 20 : 10_000, () => {}, 100, clock)
  const ran = async (n: number): Promise<void> => { while (runs < n) await sleep(5) }
  k.start()
  t.same(k.stats(), { lateMs: { p50: 0, p99: 0, max: 0 }, runs: 0, late: 0 }, 'the immediate first run is not a timed one')
  clock.advance(20 + LATE_MS + 5) // the loop was busy: the run due in 20 ms fires 25 ms late
  await ran(2)
  t.same(k.stats(), { lateMs: { p50: 25, p99: 25, max: 25 }, runs: 1, late: 1 })
  k.kick(5)
  clock.advance(6)
  await ran(3)
  t.same(k.stats(), { lateMs: { p50: 1, p99: 25, max: 25 }, runs: 2, late: 1 }, 'a kicked run is timed against its own due time; 1 ms is not late')
  k.kick(5)
  clock.advance(2)
  await ran(4)
  t.same(k.stats().lateMs, { p50: 1, p99: 25, max: 25 }, 'a run that fired early on the clock counts as on time (0)')
  t.equal(k.stats().runs, 3)
  clock.advance(60_000)
  t.same(k.stats().lateMs, { p50: 0, p99: 0, max: 0 }, 'figures cover the recent window only')
  t.equal(k.stats().late, 1, 'totals are kept')
  k.stop()
})

t.test('RecentSamples: window and fixed capacity; lateFigures: nearest rank', async t => {
  const r = new RecentSamples(4)
  for (let i = 1; i <= 6; i++) r.add(i * 1000, i)
  t.same(r.recent(6000, 10_000).sort(), [3, 4, 5, 6], 'the ring keeps the newest 4')
  t.same(r.recent(6000, 2500).sort(), [4, 5, 6], 'only those inside the window')
  t.same(lateFigures([]), { p50: 0, p99: 0, max: 0 })
  t.same(lateFigures([5, 1, 3]), { p50: 3, p99: 5, max: 5 })
  const hundred = Array.from({ length: 100 }, (_, i) => i + 1)
  t.same(lateFigures(hundred), { p50: 50, p99: 99, max: 100 })
  t.same(lateFigures([0.04, 0.06]), { p50: 0, p99: 0.1, max: 0.1 }, 'rounded to 0.1 ms')
})

t.test('LoopDelayMonitor sees a blocked loop; stop ends it', async t => {
  const m = new LoopDelayMonitor(systemClock)
  t.equal(m.figures(), null, 'nothing before start')
  m.start()
  await sleep(50)
  const t0 = Date.now()
  while (Date.now() - t0 < 80) { /* block the loop */ }
  await sleep(30)
  const f = m.figures()
  if (f === null) throw new Error('no figures while running')
  t.ok(f.max >= 50 && f.max < 1000, `max ${f.max} ms after an 80-ms block`)
  t.ok(f.p50 < f.max, `p50 ${f.p50} ms below max`)
  m.stop()
  m.stop()
  t.equal(m.running, false)
  t.equal(m.figures(), null, 'nothing after stop')
})

t.test('LoopDelayMonitor.watch samples only for a while after the last watch', async t => {
  const m = new LoopDelayMonitor(systemClock)
  t.teardown(() => { m.stop() })
  t.equal(m.running, false, 'an unobserved daemon does not sample')
  m.watch(1_200)
  t.equal(m.running, true, 'watch() starts it')
  await sleep(600)
  m.watch(1_200)
  await sleep(900)
  t.equal(m.running, true, 'a second watch() extended it (1.5 s after the first)')
  t.not(m.figures(), null, 'figures while sampling')
  await sleep(1_700)
  t.equal(m.running, false, 'stopped by itself after the last watch() ran out')
  m.start()
  m.watch(10)
  await sleep(1_200)
  t.equal(m.running, true, 'watch() never shortens a start()')
})
