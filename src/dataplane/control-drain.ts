/**
 * The control ring's consumer on the main thread: hands queued control
 * packets (dataplane/inbound.ts #toControl) to the control plane in bounded
 * turns. At most CONTROL_DRAIN_BUDGET entries per event-loop turn; when more
 * are queued the rest waits for the next turn (setImmediate), so timers, the
 * status socket and registrations run between turns even while a flood fills
 * the ring. While a turn is queued the consumer stays "busy" (no idle(), so
 * the producer sends no wake-ups); when the ring is empty it goes idle and the
 * next publish wakes it (postMessage 'CTRL' → drain()).
 *
 * Threading: main thread only.
 */
import type { Logger } from '../log.js'
import type { ControlInput, ControlInputKind } from '../control/port.js'
import type { SpscRing } from './ring.js'
import {
  CTRL_KIND_PACKET, CTRL_KIND_RELAYED, CTRL_KIND_UNKNOWN_INDEX, CTRL_SLOT_SIZE,
  META_IP, META_KIND, META_LEN, META_PORT, META_SOCK, META_VIA, META_WORDS
} from '../workers/layout.js'

/**
 * Control packets handled per event-loop turn. A failed v1 init costs ~30 µs
 * on the main thread and a registration a few hundred, so a turn of 64 lasts
 * ~2-20 ms: what a status request or a timer waits at most behind a flood
 * (bench/flood.ts measures status answers under one).
 */
export const CONTROL_DRAIN_BUDGET = 64

const KIND_NAMES: Record<number, ControlInputKind> = {
  [CTRL_KIND_PACKET]: 'packet',
  [CTRL_KIND_RELAYED]: 'relayed',
  [CTRL_KIND_UNKNOWN_INDEX]: 'unknown-index'
}

export class ControlDrain {
  readonly #ring: SpscRing
  readonly #onControl: (input: ControlInput) => void
  readonly #log: Logger
  readonly #budget: number
  #queued: NodeJS.Immediate | null = null
  #stopped = false
  /** Turns that ended with entries left (each queued another turn). */
  deferredTurns = 0

  constructor (ring: SpscRing, onControl: (input: ControlInput) => void, log: Logger, budget = CONTROL_DRAIN_BUDGET) {
    this.#ring = ring
    this.#onControl = onControl
    this.#log = log
    this.#budget = budget
  }

  /** One bounded turn: at most `budget` entries, then idle (ring empty) or another turn queued. */
  drain (): void {
    if (this.#stopped) return
    const ring = this.#ring
    let budget = this.#budget
    for (;;) {
      let n = ring.available()
      if (n === 0) {
        if (ring.idle()) return
        continue
      }
      if (budget === 0) {
        this.deferredTurns++
        this.#queued ??= setImmediate(() => { this.#queued = null; this.drain() })
        return
      }
      if (n > budget) n = budget
      budget -= n
      for (let i = 0; i < n; i++) {
        const slot = ring.slotAt(i)
        const m = slot * META_WORDS
        const len = ring.meta[m + META_LEN]
        const kind = KIND_NAMES[ring.meta[m + META_KIND]] ?? 'unknown-relay-source'
        const start = slot * CTRL_SLOT_SIZE
        const bytes = ring.data.slice(start, start + len)
        try {
          this.#onControl({ kind, bytes, ip: ring.meta[m + META_IP] >>> 0, port: ring.meta[m + META_PORT], via: ring.meta[m + META_VIA] >>> 0, sock: ring.meta[m + META_SOCK] })
        } catch (err) {
          this.#log.error('control packet handler failed (packet dropped)', { err })
        }
      }
      ring.release(n)
    }
  }

  /** No more turns (shutdown). */
  stop (): void {
    this.#stopped = true
    if (this.#queued !== null) { clearImmediate(this.#queued); this.#queued = null }
  }
}
