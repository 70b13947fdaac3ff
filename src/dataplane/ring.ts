/**
 * Single-producer single-consumer ring of fixed-size slots in a
 * SharedArrayBuffer.
 *
 *   ┌──────────── control words (Int32, Atomics only) ────────────┐
 *   │ [0] head: next slot the producer writes (monotonic counter) │
 *   │ [16] tail: next slot the consumer reads (own cache line)    │
 *   │ [24] idle: 1 while the consumer waits for a wake-up         │
 *   ├──────────── meta: slots × META_WORDS Int32 ─────────────────┤
 *   ├──────────── data: slots × slotSize bytes ───────────────────┤
 *
 * The producer fills slot (head & mask) in place, then publishes with
 * Atomics.store(head + n): a hand-off is an index publish, never a copy made
 * by the ring. The consumer reads slots between tail and head, then releases
 * them with Atomics.store(tail + n). A slot's bytes are valid for the consumer
 * only until it releases that slot. Overflow: `reserve()` returns -1 and the
 * producer drops the packet (and counts it): the ring never blocks the
 * dataplane.
 *
 * Wake-ups (the consumer is an event loop woken by a message, not a thread
 * blocked on the ring): a consumer that finds the ring empty calls idle(),
 * which raises the idle word and then looks at head once more; publish()
 * stores head and then takes the idle word down. Atomics are sequentially
 * consistent, so at least one side sees the other: either the consumer's
 * second look finds the new entries, or publish() returns true and the
 * producer sends a wake-up. (Deciding from "was the ring empty before" loses
 * wake-ups: the producer can read the old tail, the consumer release and
 * find nothing, then the producer store head; the ring then never looks
 * empty again and no wake-up is ever sent.)
 */
import { META_WORDS } from '../workers/layout.js'

const HEAD = 0
const TAIL = 16
const IDLE = 24
const CONTROL_BYTES = 128

export class SpscRing {
  readonly slots: number
  readonly slotSize: number
  readonly mask: number
  readonly ctl: Int32Array
  /** Per-slot metadata words (see workers/layout.ts META_*). */
  readonly meta: Int32Array
  /** Slot bytes. Slot i starts at i * slotSize. */
  readonly data: Uint8Array

  static byteLength (slots: number, slotSize: number): number {
    return CONTROL_BYTES + slots * META_WORDS * 4 + slots * slotSize
  }

  /** A new ring's memory; the consumer starts idle (the first publish wakes it). */
  static create (slots: number, slotSize: number): SharedArrayBuffer {
    const sab = new SharedArrayBuffer(SpscRing.byteLength(slots, slotSize))
    Atomics.store(new Int32Array(sab, 0, CONTROL_BYTES / 4), IDLE, 1)
    return sab
  }

  constructor (sab: SharedArrayBuffer, slots: number, slotSize: number) {
    if ((slots & (slots - 1)) !== 0) throw new RangeError('ring slots must be a power of two')
    if (sab.byteLength < SpscRing.byteLength(slots, slotSize)) throw new RangeError('ring buffer too small')
    this.slots = slots
    this.slotSize = slotSize
    this.mask = slots - 1
    this.ctl = new Int32Array(sab, 0, CONTROL_BYTES / 4)
    this.meta = new Int32Array(sab, CONTROL_BYTES, slots * META_WORDS)
    this.data = new Uint8Array(sab, CONTROL_BYTES + slots * META_WORDS * 4, slots * slotSize)
  }

  /** Producer: slots in use right now. */
  size (): number {
    return (Atomics.load(this.ctl, HEAD) - Atomics.load(this.ctl, TAIL)) | 0
  }

  /**
   * Producer: the slot index for the `pending`-th unpublished entry, or -1
   * when the ring is full. Fill data/meta, then publish(pending + 1).
   */
  reserve (pending: number): number {
    const head = Atomics.load(this.ctl, HEAD)
    const tail = Atomics.load(this.ctl, TAIL)
    if (((head + pending - tail) | 0) >= this.slots) return -1
    return (head + pending) & this.mask
  }

  /** Producer: make `n` reserved entries visible. Returns true when the consumer is idle and must be sent a wake-up. */
  publish (n: number): boolean {
    if (n === 0) return false
    Atomics.store(this.ctl, HEAD, (Atomics.load(this.ctl, HEAD) + n) | 0)
    Atomics.notify(this.ctl, HEAD)
    return Atomics.exchange(this.ctl, IDLE, 0) === 1
  }

  /**
   * Consumer: call when available() was 0, before going back to the event
   * loop. Returns true when the consumer may sleep (the next publish sends a
   * wake-up); false when entries arrived meanwhile (drain them, then call
   * again).
   */
  idle (): boolean {
    Atomics.store(this.ctl, IDLE, 1)
    if (this.available() === 0) return true
    Atomics.store(this.ctl, IDLE, 0)
    return false
  }

  /** Consumer: number of entries ready, and the slot index of the first. */
  available (): number {
    return (Atomics.load(this.ctl, HEAD) - Atomics.load(this.ctl, TAIL)) | 0
  }

  /** Consumer: slot index of the i-th ready entry. */
  slotAt (i: number): number {
    return (Atomics.load(this.ctl, TAIL) + i) & this.mask
  }

  /** Consumer: release n entries. Their slots may be overwritten afterwards. */
  release (n: number): void {
    Atomics.store(this.ctl, TAIL, (Atomics.load(this.ctl, TAIL) + n) | 0)
  }

  /** Consumer: wait (blocking) up to timeoutMs for entries. Only for worker threads / tests, never the main loop. */
  waitForData (timeoutMs: number): void {
    const head = Atomics.load(this.ctl, HEAD)
    if (head !== Atomics.load(this.ctl, TAIL)) return
    Atomics.wait(this.ctl, HEAD, head, timeoutMs)
  }
}
