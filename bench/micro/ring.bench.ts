/**
 * SAB ring hand-off (dataplane/ring.ts SpscRing, 2 KiB slots): the cost of
 * reserve → copy a packet in → publish → consume → release, in batches of 1
 * and 32, on one thread (the ring's own cost plus the copy), and across two
 * threads (a consumer worker spinning, then Atomics.wait), as packets/s.
 */
import { Worker } from 'node:worker_threads'
import { SpscRing } from '../../src/dataplane/ring.js'
import { time, type BenchResult, type TimerOptions, DEFAULT_TIMER } from './timer.js'

const SLOTS = 256
const SLOT_SIZE = 2048

export function sameThreadCase (batch: number, size: number): () => void {
  const sab = SpscRing.create(SLOTS, SLOT_SIZE)
  const prod = new SpscRing(sab, SLOTS, SLOT_SIZE)
  const cons = new SpscRing(sab, SLOTS, SLOT_SIZE)
  const pkt = new Uint8Array(size).fill(7)
  let sum = 0
  return () => {
    for (let k = 0; k < batch; k++) {
      const s = prod.reserve(k)
      prod.data.set(pkt, s * SLOT_SIZE)
      prod.meta[s * 5] = size
    }
    prod.publish(batch)
    const n = cons.available()
    for (let i = 0; i < n; i++) sum += cons.meta[cons.slotAt(i) * 5]!
    cons.release(n)
    if (sum < 0) throw new Error('unreachable')
  }
}

const CONSUMER = `
const { workerData, parentPort } = require('node:worker_threads')
const ctl = new Int32Array(workerData.sab, 0, 32)
const meta = new Int32Array(workerData.sab, 128, workerData.slots * 5)
let got = 0
const deadline = Date.now() + workerData.ms + 2000
for (;;) {
  const head = Atomics.load(ctl, 0), tail = Atomics.load(ctl, 16)
  const n = (head - tail) | 0
  if (n > 0) {
    for (let i = 0; i < n; i++) got += meta[((tail + i) & (workerData.slots - 1)) * 5] > 0 ? 1 : 0
    Atomics.store(ctl, 16, (tail + n) | 0)
    continue
  }
  if (Atomics.load(ctl, 30) === 1) break
  if (Date.now() > deadline) break
  Atomics.wait(ctl, 0, head, 1)
}
parentPort.postMessage(got)
`

/** Producer on this thread, consumer in a worker, for `ms`: packets/s handed over. */
export async function crossThread (batch: number, size: number, ms: number): Promise<number> {
  const sab = SpscRing.create(SLOTS, SLOT_SIZE)
  const prod = new SpscRing(sab, SLOTS, SLOT_SIZE)
  const w = new Worker(CONSUMER, { eval: true, workerData: { sab, slots: SLOTS, ms } })
  const got = new Promise<number>((resolve) => w.once('message', resolve))
  const pkt = new Uint8Array(size).fill(7)
  await new Promise((resolve) => setTimeout(resolve, 50))
  let sent = 0
  const t0 = process.hrtime.bigint()
  const end = t0 + BigInt(ms) * 1_000_000n
  while (process.hrtime.bigint() < end) {
    let k = 0
    for (; k < batch; k++) {
      const s = prod.reserve(k)
      if (s < 0) break
      prod.data.set(pkt, s * SLOT_SIZE)
      prod.meta[s * 5] = size
    }
    if (k > 0) { prod.publish(k); sent += k }
  }
  const el = Number(process.hrtime.bigint() - t0) / 1e9
  Atomics.store(prod.ctl, 30, 1)
  Atomics.notify(prod.ctl, 0)
  const n = await got
  await w.terminate()
  return Math.min(n, sent) / el
}

export async function run (opts: TimerOptions = DEFAULT_TIMER): Promise<BenchResult[]> {
  const out: BenchResult[] = []
  for (const batch of [1, 32]) {
    out.push(time('ring', `same thread, batch ${batch}, 1400 B copy`, batch, sameThreadCase(batch, 1400), opts, 1400))
  }
  for (const batch of [1, 32]) {
    const rates: number[] = []
    for (let r = 0; r < Math.max(1, Math.min(3, opts.rounds)); r++) rates.push(await crossThread(batch, 1400, opts.minMs * 2))
    rates.sort((a, b) => a - b)
    const best = rates[rates.length - 1]!
    out.push({ id: `ring/two threads, batch ${batch}, 1400 B copy`, group: 'ring', name: `two threads, batch ${batch}, 1400 B copy`, nsPerOp: 1e9 / best, opsPerSec: best, medianOpsPerSec: rates[Math.floor(rates.length / 2)]!, bytesPerOp: 1400 })
  }
  return out
}
