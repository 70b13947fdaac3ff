// control/ticker.ts: the control plane's self-rearming timer.
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { Ticker } from '../../src/control/ticker.js'

t.test('runs at once, then after the interval tick asks for; stop ends it', async t => {
  const at: number[] = []
  const t0 = Date.now()
  const k = new Ticker(() => { at.push(Date.now() - t0); return at.length < 3 ? 40 : 10_000 }, () => {}, 100)
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
  const k = new Ticker(() => { runs++; return 10_000 }, () => {}, 100)
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
  const k = new Ticker(() => { runs++; if (runs === 1) throw new Error('boom'); return 10_000 }, (e) => { errors.push(e) }, 20)
  k.start()
  await sleep(60)
  t.equal(errors.length, 1)
  t.match(errors[0], /boom/)
  t.equal(runs, 2, 'ran again after the fallback interval')
  k.stop()
})
