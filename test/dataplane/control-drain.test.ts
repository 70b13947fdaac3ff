/**
 * Bounded drainControl (src/dataplane/control-drain.ts), in process: a ring
 * flooded with control packets is handed over CONTROL_DRAIN_BUDGET per
 * event-loop turn, so a timer and a status request over a unix socket are
 * answered while the flood is still being drained; afterwards the consumer
 * goes idle and the next publish asks for a wake-up.
 */
import t from 'tap'
import * as net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SpscRing } from '../../src/dataplane/ring.js'
import { CONTROL_DRAIN_BUDGET, ControlDrain } from '../../src/dataplane/control-drain.js'
import { CTRL_KIND_PACKET, CTRL_RING_SLOTS, CTRL_SLOT_SIZE, META_KIND, META_LEN, META_WORDS } from '../../src/workers/layout.js'
import { Logger } from '../../src/log.js'
import type { ControlInput } from '../../src/control/port.js'

const log = new Logger({ level: 'error', sink: { write: () => {} } })

function fill (ring: SpscRing, n: number): number {
  let k = 0
  for (; k < n; k++) {
    const slot = ring.reserve(k)
    if (slot < 0) break
    ring.data[slot * CTRL_SLOT_SIZE] = 1
    ring.meta[slot * META_WORDS + META_LEN] = 100
    ring.meta[slot * META_WORDS + META_KIND] = CTRL_KIND_PACKET
  }
  ring.publish(k)
  return k
}

/** ~30 µs of work per packet, like a failed init on the main thread. */
function busy (us: number): void { const end = performance.now() + us / 1000; while (performance.now() < end) { /* spin */ } }

t.test('one turn hands over at most the budget; the rest follows turn by turn', async t => {
  const sab = SpscRing.create(CTRL_RING_SLOTS, CTRL_SLOT_SIZE)
  const producer = new SpscRing(sab, CTRL_RING_SLOTS, CTRL_SLOT_SIZE)
  const consumer = new SpscRing(sab, CTRL_RING_SLOTS, CTRL_SLOT_SIZE)
  const got: ControlInput[] = []
  const drain = new ControlDrain(consumer, (i) => { got.push(i) }, log)
  t.teardown(() => { drain.stop() })
  t.equal(fill(producer, 1000), 1000)
  drain.drain()
  t.equal(got.length, CONTROL_DRAIN_BUDGET, 'one turn: the budget')
  t.equal(got[0].kind, 'packet')
  t.equal(got[0].bytes.length, 100)
  await new Promise<void>((resolve) => { const i = setInterval(() => { if (got.length === 1000) { clearInterval(i); resolve() } }, 1) })
  t.ok(drain.deferredTurns >= Math.floor(1000 / CONTROL_DRAIN_BUDGET), `${drain.deferredTurns} turns`)
  t.equal(consumer.available(), 0)
  t.ok(producer.reserve(0) >= 0)
  t.equal(producer.publish(1), true, 'the consumer went idle: the next publish asks for a wake-up')
})

t.test('a status request over a unix socket is answered while a flood is being drained', async t => {
  const sab = SpscRing.create(CTRL_RING_SLOTS, CTRL_SLOT_SIZE)
  const producer = new SpscRing(sab, CTRL_RING_SLOTS, CTRL_SLOT_SIZE)
  const consumer = new SpscRing(sab, CTRL_RING_SLOTS, CTRL_SLOT_SIZE)
  let handled = 0
  const drain = new ControlDrain(consumer, () => { busy(30); handled++ }, log)
  const path = join(tmpdir(), `lwt-drain-${process.pid}.sock`)
  const server = net.createServer((c) => { c.on('data', () => { c.end(JSON.stringify({ handled })) }) })
  await new Promise<void>((resolve) => server.listen(path, resolve))
  t.teardown(() => { drain.stop(); server.close() })
  // The flood: the producer keeps the ring full for ~1 s (each refill wakes a drain when the consumer is idle).
  let flooding = true
  const refill = setInterval(() => { if (flooding) { if (fill(producer, CTRL_RING_SLOTS)) drain.drain() } }, 0)
  fill(producer, CTRL_RING_SLOTS)
  drain.drain()
  const t0 = performance.now()
  const answer = await new Promise<{ handled: number }>((resolve, reject) => {
    const c = net.connect(path, () => { c.write('status\n') })
    let buf = ''
    c.on('data', (d) => { buf += String(d) })
    c.on('end', () => { resolve(JSON.parse(buf) as { handled: number }) })
    c.on('error', reject)
  })
  const waited = performance.now() - t0
  flooding = false
  clearInterval(refill)
  t.ok(answer.handled > 0, `answered after ${waited.toFixed(1)} ms with ${answer.handled} control packets handled meanwhile`)
  t.ok(producer.size() > 0 || handled < answer.handled + CTRL_RING_SLOTS, 'the ring was not empty when the answer left')
})
