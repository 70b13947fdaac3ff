/**
 * Single-producer single-consumer ring of fixed-size slots in a
 * SharedArrayBuffer.
 *
 *   ┌──────────── control words (Int32, Atomics only) ────────────┐
 *   │ [0] head: next slot the producer writes (monotonic counter) │
 *   │ [16] tail: next slot the consumer reads (own cache line)    │
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
 */
import { META_WORDS } from '../workers/layout.js'

const HEAD = 0
const TAIL = 16
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

  static create (slots: number, slotSize: number): SharedArrayBuffer {
    return new SharedArrayBuffer(SpscRing.byteLength(slots, slotSize))
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

  /** Producer: make `n` reserved entries visible. Returns true when the ring was empty before (the consumer may need a wake-up). */
  publish (n: number): boolean {
    if (n === 0) return false
    const before = Atomics.load(this.ctl, HEAD)
    const wasEmpty = before === Atomics.load(this.ctl, TAIL)
    Atomics.store(this.ctl, HEAD, (before + n) | 0)
    Atomics.notify(this.ctl, HEAD)
    return wasEmpty
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
