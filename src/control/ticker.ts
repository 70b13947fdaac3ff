/**
 * The control plane's timer: runs `tick` and arms itself again after the
 * interval tick asks for (ClientController.tickInterval: fine while punching
 * or handshaking, coarse when idle). kick() brings the next run forward when
 * an input made time-critical work due sooner. One timer, never two runs at
 * once; an exception from tick is reported and the timer keeps going.
 */
export class Ticker {
  readonly #tick: () => number
  readonly #onError: (err: unknown) => void
  readonly #fallbackMs: number
  #timer: NodeJS.Timeout | null = null
  #due = 0
  #stopped = false

  /** `tick` runs the timers and returns the delay before the next run, ms; `fallbackMs` is used when it throws. */
  constructor (tick: () => number, onError: (err: unknown) => void, fallbackMs: number) {
    this.#tick = tick
    this.#onError = onError
    this.#fallbackMs = fallbackMs
  }

  /** Run now, then as asked. */
  start (): void { this.#fire() }

  /** Run within `ms` at the latest (nothing changes when the next run is due sooner). */
  kick (ms: number): void {
    if (this.#stopped || (this.#timer !== null && Date.now() + ms >= this.#due)) return
    this.#arm(ms)
  }

  stop (): void {
    this.#stopped = true
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
  }

  #arm (ms: number): void {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#due = Date.now() + ms
    this.#timer = setTimeout(() => { this.#fire() }, ms)
  }

  #fire (): void {
    this.#timer = null
    let next = this.#fallbackMs
    try { next = this.#tick() } catch (err) { this.#onError(err) }
    if (!this.#stopped) this.#arm(next)
  }
}
