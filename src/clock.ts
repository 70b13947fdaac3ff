/** Monotonic time in milliseconds. Injected everywhere so tests can drive time. */
export interface Clock {
  now(): number
}

export const systemClock: Clock = {
  now: () => performance.now()
}

/** A clock tests advance by hand. */
export class ManualClock implements Clock {
  #t: number
  constructor (start = 1_000_000) { this.#t = start }
  now (): number { return this.#t }
  advance (ms: number): void { this.#t += ms }
}
