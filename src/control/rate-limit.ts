/**
 * Bounded rate limits for the control plane (rejects, log lines). Memory is
 * capped: when the table is full the oldest entries go first.
 */
export class PerKeyInterval {
  readonly #last = new Map<number | string, number>()
  readonly #interval: number
  readonly #max: number
  constructor (intervalMs: number, maxKeys: number) {
    this.#interval = intervalMs
    this.#max = maxKeys
  }

  /** True at most once per interval for a key. */
  allow (key: number | string, now: number): boolean {
    const last = this.#last.get(key)
    if (last !== undefined && now - last < this.#interval) return false
    this.#last.delete(key)
    if (this.#last.size >= this.#max) {
      const oldest = this.#last.keys().next().value
      if (oldest !== undefined) this.#last.delete(oldest)
    }
    this.#last.set(key, now)
    return true
  }

  get size (): number { return this.#last.size }
}

/** A token bucket: `perSecond` tokens a second, bursting to the same amount. */
export class TokenBucket {
  #tokens: number
  #at: number
  readonly #rate: number
  constructor (perSecond: number, now: number) {
    this.#rate = perSecond
    this.#tokens = perSecond
    this.#at = now
  }

  take (now: number): boolean {
    this.#tokens = Math.min(this.#rate, this.#tokens + (now - this.#at) * this.#rate / 1000)
    this.#at = now
    if (this.#tokens < 1) return false
    this.#tokens -= 1
    return true
  }
}
