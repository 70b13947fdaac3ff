/**
 * Time, injected everywhere so tests can drive it.
 *
 *   Clock.now()         – monotonic ms (performance.now()): every timer and
 *                         interval of the control plane.
 *   WallClock.wallNow() – ms since the epoch (Date.now()): only for values
 *                         compared with another process's wall time (the
 *                         handshake init timestamp on the wire, the
 *                         dataplane's last-receive stamps in status).
 */
export interface Clock {
  now(): number
}

export interface WallClock {
  wallNow(): number
}

export const systemClock: Clock & WallClock = {
  now: () => performance.now(),
  wallNow: () => Date.now()
}

/** Wall time of a ManualClock at its start (2026-01-01T00:00:00Z): a plausible timestamp, the same in every run. */
export const MANUAL_WALL_START = 1_767_225_600_000

/** A clock tests advance by hand; its wall time advances with it. */
export class ManualClock implements Clock, WallClock {
  #t: number
  readonly #wallOffset: number
  constructor (start = 1_000_000, wallStart = MANUAL_WALL_START) {
    this.#t = start
    this.#wallOffset = wallStart - start
  }

  now (): number { return this.#t }
  wallNow (): number { return this.#t + this.#wallOffset }
  advance (ms: number): void { this.#t += ms }
}
