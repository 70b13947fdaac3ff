import t from 'tap'
import { Worker } from 'node:worker_threads'
import { fileURLToPath } from 'node:url'
import { SpscRing } from '../../src/dataplane/ring.js'
import { META_LEN, META_WORDS } from '../../src/workers/layout.js'

t.test('Int32 atomics on the control words are lock-free here', async t => {
  t.ok(Atomics.isLockFree(4))
})

t.test('reserve/publish/consume in order, overflow returns -1', async t => {
  const sab = SpscRing.create(8, 64)
  const r = new SpscRing(sab, 8, 64)
  for (let i = 0; i < 8; i++) {
    const slot = r.reserve(i)
    t.not(slot, -1)
    r.data[slot * 64] = i
    r.meta[slot * META_WORDS + META_LEN] = 1
  }
  t.equal(r.reserve(8), -1, 'full ring refuses a ninth entry')
  t.equal(r.publish(8), true, 'a new ring\'s consumer is idle: the first publish asks for a wake-up')
  t.equal(r.available(), 8)
  const seen: number[] = []
  for (let i = 0; i < 8; i++) seen.push(r.data[r.slotAt(i) * 64])
  r.release(8)
  t.same(seen, [0, 1, 2, 3, 4, 5, 6, 7])
  t.equal(r.available(), 0)
  t.not(r.reserve(0), -1, 'space again after release')
})

t.test('a worker producer and this thread as consumer: every entry once, in order, across wrap-around', async t => {
  const slots = 16
  const sab = SpscRing.create(slots, 16)
  const total = 5_000 // 312 laps of the 16 slots
  const src = `
    const { workerData } = require('node:worker_threads')
    const ctl = new Int32Array(workerData.sab, 0, 32)
    const slots = ${slots}
    const data = new Int32Array(workerData.sab, 128 + slots * ${META_WORDS} * 4, slots * 4)
    let head = 0
    for (let i = 0; i < ${total};) {
      const tail = Atomics.load(ctl, 16)
      if (head - tail >= slots) { Atomics.wait(ctl, 16, tail, 1); continue }
      data[(head & (slots - 1)) * 4] = i
      head++; i++
      Atomics.store(ctl, 0, head)
    }
  `
  const w = new Worker(src, { eval: true, workerData: { sab } })
  const r = new SpscRing(sab, slots, 16)
  const view = new Int32Array(r.data.buffer, r.data.byteOffset, slots * 4)
  let expect = 0
  let bad = 0
  const deadline = Date.now() + 20_000
  while (expect < total && Date.now() < deadline) {
    const n = r.available()
    if (n === 0) { r.waitForData(5); continue }
    for (let i = 0; i < n; i++) if (view[r.slotAt(i) * 4] !== expect++) bad++
    r.release(n)
  }
  await w.terminate()
  t.equal(expect, total, 'all entries consumed')
  t.equal(bad, 0, 'in order, none lost or duplicated')
})

t.test('wake-ups: a consumer that went idle is always woken; one that is still draining never loses an entry', async t => {
  const r = new SpscRing(SpscRing.create(8, 16), 8, 16)
  const put = (): boolean => { r.reserve(0); return r.publish(1) }
  t.equal(put(), true, 'idle consumer: wake-up')
  t.equal(put(), false, 'consumer not idle yet (it has not drained): no second wake-up')
  r.release(r.available())
  // The interleaving that lost wake-ups before: the consumer found the ring empty, then an entry arrived
  // before it could say so. idle() looks again and keeps draining instead of sleeping.
  t.equal(r.available(), 0)
  t.equal(put(), false, 'published while the consumer is between its empty check and idle()')
  t.equal(r.idle(), false, 'idle() sees the entry: keep draining')
  r.release(r.available())
  t.equal(r.idle(), true, 'now empty: the consumer may sleep')
  t.equal(put(), true, 'and the next publish wakes it')
})

t.test('an event-loop consumer woken only by publish()\'s answer receives every entry (two threads, no polling)', async t => {
  const slots = 16
  const sab = SpscRing.create(slots, 16)
  const total = 50_000 // thousands of wake-ups (a lost one strands the rest)
  const ringUrl = new URL('../../dist/src/dataplane/ring.js', import.meta.url).href
  const src = `
    const { workerData, parentPort } = require('node:worker_threads')
    import(${JSON.stringify(ringUrl)}).then(({ SpscRing }) => {
      const r = new SpscRing(workerData.sab, ${slots}, 16)
      const data = new Int32Array(workerData.sab, 128 + ${slots} * ${META_WORDS} * 4, ${slots} * 4)
      const ctl = new Int32Array(workerData.sab, 0, 32)
      for (let i = 0; i < ${total};) {
        const slot = r.reserve(0)
        if (slot < 0) { Atomics.wait(ctl, 16, Atomics.load(ctl, 16), 1); continue }
        data[slot * 4] = i++
        if (r.publish(1)) parentPort.postMessage('wake')
      }
      parentPort.postMessage('done')
    })
  `
  void fileURLToPath
  const w = new Worker(src, { eval: true, workerData: { sab } })
  const r = new SpscRing(sab, slots, 16)
  const view = new Int32Array(r.data.buffer, r.data.byteOffset, slots * 4)
  let expect = 0
  let bad = 0
  let wakes = 0
  const drain = (): void => {
    for (;;) {
      const n = r.available()
      if (n === 0) { if (r.idle()) return; continue }
      for (let i = 0; i < n; i++) if (view[r.slotAt(i) * 4] !== expect++) bad++
      r.release(n)
    }
  }
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 30_000)
    w.on('message', (m: string) => {
      if (m === 'wake') { wakes++; drain() }
      if (expect >= total) { clearTimeout(timer); resolve() }
    })
  })
  await w.terminate()
  t.equal(expect, total, `all ${total} entries consumed through ${wakes} wake-ups (a lost wake-up would strand the rest; the deterministic test above pins the interleaving)`)
  t.equal(bad, 0, 'in order, none lost or duplicated')
})
