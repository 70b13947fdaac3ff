/**
 * Sliding-window replay filter for transport counters, as WireGuard's
 * (wireguard-go replay.Filter, Linux counter.c), after RFC 6479: a ring of
 * 64 x 32-bit words (REPLAY_BITMAP_BITS = 2048 bits) indexed by
 * counter / 32; moving the window forward clears whole words instead of
 * shifting the bitmap, so every accept() is O(1) except for big jumps, which
 * clear at most the 64 words once.
 *
 * Contract:
 *   - Call accept(counter) only AFTER the message authenticated (AEAD tag
 *     verified). Unauthenticated input must never move the window, or a
 *     forged high counter would make every genuine packet look "too old".
 *   - accept() returns true exactly once per counter value that lies within
 *     REPLAY_WINDOW (2016) of the highest counter accepted so far (or is
 *     above it), and records it; it returns false for duplicates, counters
 *     more than REPLAY_WINDOW below the highest, and counters outside
 *     [0, REJECT_AFTER_MESSAGES) or not integers.
 *   - One instance per receiving key (per session and direction and key
 *     kind). Not shared between threads: the owner of the key owns the window
 *     (the dataplane's native fast path runs on the owner's thread, over the
 *     same storage, with the same arithmetic: native/fastpath.c).
 *
 * Window arithmetic is done with Math.floor / % rather than bit operators
 * because counters go up to 2^52 (beyond 32-bit integer ops).
 */
import { REJECT_AFTER_MESSAGES, REPLAY_BITMAP_BITS, REPLAY_WINDOW } from '../wire/constants.js'

const WORD_BITS = 32
const RING_WORDS = REPLAY_BITMAP_BITS / WORD_BITS // 64

export class ReplayWindow {
  /** Bit (c % 32) of word (floor(c / 32) % 64) is set when counter c was accepted. */
  readonly #ring: Uint32Array
  /** #lastArr[#at]: highest counter accepted so far; 0 before the first accept (counter 0 then still passes, its bit being clear). */
  readonly #lastArr: Float64Array
  readonly #at: number

  /**
   * A window of its own, or one over shared storage: `ring` (RING_WORDS
   * words) and `last[at]`, so the native fast path (native/fastpath.c) and
   * this class keep one window between them.
   */
  constructor (ring: Uint32Array = new Uint32Array(RING_WORDS), last: Float64Array = new Float64Array(1), at = 0) {
    if (ring.length !== RING_WORDS) throw new RangeError(`ReplayWindow: ring must hold ${RING_WORDS} words`)
    this.#ring = ring
    this.#lastArr = last
    this.#at = at
  }

  /** Highest counter accepted so far (0 when none). */
  get highest (): number { return this.#lastArr[this.#at] }

  /** See the module contract. `counter` is the authenticated message counter. */
  accept (counter: number): boolean {
    if (!(counter >= 0 && counter < REJECT_AFTER_MESSAGES) || !Number.isInteger(counter)) return false
    const word = Math.floor(counter / WORD_BITS)
    const last = this.#lastArr[this.#at]
    if (counter > last) {
      // Advance: clear the words between the old top word and the new one
      // (at most the whole ring), so stale bits from a previous lap vanish.
      const current = Math.floor(last / WORD_BITS)
      const diff = Math.min(word - current, RING_WORDS)
      for (let i = 1; i <= diff; i++) this.#ring[(current + i) % RING_WORDS] = 0
      this.#lastArr[this.#at] = counter
    } else if (last - counter > REPLAY_WINDOW) {
      return false // too old: its word may already hold a newer lap
    }
    const idx = word % RING_WORDS
    const bit = 1 << (counter % WORD_BITS)
    const old = this.#ring[idx]
    if ((old & bit) !== 0) return false // replay
    this.#ring[idx] = old | bit
    return true
  }

  /** Forgets everything, as a new window (used when a key is replaced). */
  reset (): void {
    this.#ring.fill(0)
    this.#lastArr[this.#at] = 0
  }
}
