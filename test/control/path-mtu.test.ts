/**
 * path-mtu.ts: the probe state machine on a fake clock over a fake path
 * that carries datagrams up to its MTU (acks come back after a round trip),
 * and drops everything else.
 */
import t from 'tap'
import { CHECK_INTERVAL, PathMtu, RAISE_INTERVAL, RETRY_SILENT } from '../../src/control/path-mtu.js'

const OVERHEAD = 60 // IPv4 20 + UDP 8 + transport header 16 + tag 16

/** A path of `mtu` bytes with a 20 ms round trip; the machine probes it. */
function rig (pathMtu: number, opts: { answers?: boolean, max?: number } = {}) {
  let now = 0
  let txid = 100
  const inFlight: Array<{ at: number, txid: number, len: number }> = []
  const sent: number[] = []
  const path = { mtu: pathMtu, answers: opts.answers ?? true }
  const m = new PathMtu({
    base: 576,
    max: opts.max ?? 1460,
    overhead: OVERHEAD,
    txid: () => txid++,
    send: (id, len) => {
      sent.push(len + OVERHEAD)
      if (path.answers && len + OVERHEAD <= path.mtu) inFlight.push({ at: now + 20, txid: id, len })
    }
  })
  /** Run the clock to `until` in 10 ms steps, delivering acks and ticking (the path active). */
  const run = (until: number, active = true): void => {
    while (now < until) {
      now += 10
      for (let i = 0; i < inFlight.length;) {
        const a = inFlight[i]
        if (a.at <= now) { inFlight.splice(i, 1); m.onAck(a.txid, a.len, now) } else i++
      }
      m.tick(now, active)
    }
  }
  return { m, path, sent, run, now: () => now }
}

t.test('finds 1280 on a 1280-byte path within 5 s, exactly', async t => {
  const r = rig(1280)
  r.m.start(0)
  r.run(5000)
  t.equal(r.m.mtu, 1280)
  t.equal(r.m.status().state, 'confirmed')
  t.ok(r.m.status().foundInMs! <= 2000, `found in ${r.m.status().foundInMs} ms`)
})

t.test('a path that carries max is confirmed after one round trip', async t => {
  const r = rig(1500)
  r.m.start(0)
  r.run(100)
  t.equal(r.m.mtu, 1460)
  t.ok(r.m.status().foundInMs! <= 30)
})

t.test('finds an odd size (1337) exactly', async t => {
  const r = rig(1337)
  r.m.start(0)
  r.run(5000)
  t.equal(r.m.mtu, 1337)
})

t.test('black hole: the MTU drops with ICMP filtered; lowered within 10 s while the path is busy', async t => {
  const r = rig(1500)
  r.m.start(0)
  r.run(1000)
  t.equal(r.m.mtu, 1460)
  r.path.mtu = 1280
  const dropAt = r.now()
  let lowered = -1
  while (r.now() < dropAt + 15_000) {
    r.run(r.now() + 10)
    if (lowered < 0 && r.m.mtu === 1280) lowered = r.now() - dropAt
  }
  t.ok(lowered > 0 && lowered <= 10_000, `lowered after ${lowered} ms`)
  t.equal(r.m.blackHoles, 1)
  t.equal(r.m.status().state, 'confirmed')
})

t.test('during the black-hole search the old size stays in force, and the state says so', async t => {
  const r = rig(1500)
  r.m.start(0)
  r.run(1000)
  r.path.mtu = 1000
  let sawBlackHole = false
  while (r.m.mtu === 1460 && r.now() < 20_000) {
    r.run(r.now() + 10)
    if (r.m.status().state === 'black-hole') { sawBlackHole = true; t.equal(r.m.mtu, 1460) }
  }
  t.ok(sawBlackHole)
  t.equal(r.m.mtu, 1000)
})

t.test('an idle path is not re-checked', async t => {
  const r = rig(1500)
  r.m.start(0)
  r.run(1000)
  const n = r.sent.length
  r.run(1000 + 5 * CHECK_INTERVAL, false)
  t.equal(r.sent.length, n)
})

t.test('a path that goes dead (nothing answered) is no black hole: the size stays', async t => {
  const r = rig(1500)
  r.m.start(0)
  r.run(1000)
  r.path.answers = false
  r.run(20_000)
  t.equal(r.m.mtu, 1460)
  t.equal(r.m.blackHoles, 0)
})

t.test('an end that never answers (an older version): unanswered, no size, retried later', async t => {
  const r = rig(1500, { answers: false })
  r.m.start(0)
  r.run(3000)
  t.equal(r.m.status().state, 'unanswered')
  t.equal(r.m.mtu, null)
  r.path.answers = true
  r.run(3000 + RETRY_SILENT + 1000)
  t.equal(r.m.mtu, 1460)
})

t.test('raise: a path that grows is found again after RAISE_INTERVAL', async t => {
  const r = rig(1280)
  r.m.start(0)
  r.run(3000)
  t.equal(r.m.mtu, 1280)
  r.path.mtu = 1500
  r.run(RAISE_INTERVAL + 5000, false)
  t.equal(r.m.mtu, 1460)
})

t.test('forged or mismatched acks are counted and change nothing', async t => {
  const r = rig(1280)
  r.m.start(0)
  r.m.onAck(999_999, 1400, 0) // no such probe
  t.equal(r.m.acksDropped, 1)
  // The round's largest probe (txid 108 = size max), acked with a length it did not have.
  r.m.onAck(108, 10, 0)
  t.equal(r.m.acksDropped, 2)
  t.equal(r.m.mtu, null)
  r.run(5000)
  t.equal(r.m.mtu, 1280)
})

t.test('probes never exceed max nor go below base', async t => {
  const r = rig(900)
  r.m.start(0)
  r.run(5000)
  t.equal(r.m.mtu, 900)
  for (const s of r.sent) t.ok(s === 72 || (s >= 576 && s <= 1460), `probe of ${s}`)
})

t.test('options that cannot work are refused', async t => {
  t.throws(() => new PathMtu({ base: 60, max: 1460, overhead: 60, send: () => {}, txid: () => 1 }), RangeError)
  t.throws(() => new PathMtu({ base: 576, max: 500, overhead: 60, send: () => {}, txid: () => 1 }), RangeError)
})
