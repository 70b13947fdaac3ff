/**
 * The control plane's timer, and how late it and the main event loop run.
 *
 * Ticker runs `tick` and arms itself again after the interval tick asks for
 * (ClientController.tickInterval: fine while punching or handshaking, coarse
 * when idle). kick() brings the next run forward when an input made
 * time-critical work due sooner. One timer, never two runs at once; an
 * exception from tick is reported and the timer keeps going.
 *
 * Every timed run records how late it fired against when it was due (on the
 * injected monotonic Clock): keepalives, direct-path heartbeats and failover
 * detection all hang off this tick, so its lateness is theirs.
 * LoopDelayMonitor records the main loop's delay (perf_hooks). Both feed
 * `status --json` → controlPlane (daemon.ts), as figures over the last
 * RECENT_WINDOW_MS, so a reading taken during a load describes that load.
 *
 *   setTimeout ─▶ #fire ─▶ lateness = clock.now() − due ─▶ RecentSamples ─▶ lateness()
 *   monitorEventLoopDelay ─(every LOOP_SLOT_MS: p50/p99/max, reset)─▶ slots ─▶ figures()
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks'
import type { Clock } from '../clock.js'
import type { LateFigures } from './status.js'

/**
 * A run this much later than due counts as late (TickerStats.late): 20 ms is
 * 40 % of the client's fine tick (CLIENT_TICK 50 ms) and 5 % of the direct
 * path's heartbeat (ACTIVE_HEARTBEAT 400 ms); below it no timer the control
 * plane keeps is visibly off.
 */
export const LATE_MS = 20
/** Recent figures cover this long: long enough for a p99 at the 50-ms tick (200 runs), short enough to show a load while it lasts. */
export const RECENT_WINDOW_MS = 10_000
/** Samples kept: 10 s of 50-ms ticks is 200 runs, kicks add a few. When full, the window covers less than 10 s. */
export const RECENT_CAPACITY = 256

/**
 * A fixed ring of recent samples (ms) with the time each was taken: figures
 * over the samples of the last `windowMs`. Fixed memory; control thread only.
 */
export class RecentSamples {
  readonly #at: Float64Array
  readonly #v: Float64Array
  /** Samples ever added; the next one goes to slot #n % capacity. */
  #n = 0

  constructor (capacity = RECENT_CAPACITY) {
    this.#at = new Float64Array(capacity)
    this.#v = new Float64Array(capacity)
  }

  add (at: number, value: number): void {
    const i = this.#n % this.#v.length
    this.#at[i] = at
    this.#v[i] = value
    this.#n++
  }

  /** The values taken after `now − windowMs` (oldest ones dropped when the ring is full). */
  recent (now: number, windowMs = RECENT_WINDOW_MS): number[] {
    const out: number[] = []
    const count = Math.min(this.#n, this.#v.length)
    for (let i = 0; i < count; i++) if (this.#at[i]! > now - windowMs) out.push(this.#v[i]!)
    return out
  }
}

/** p50/p99/max of `values` (nearest rank), rounded to 0.1 ms; zeros for none. */
export function lateFigures (values: readonly number[]): LateFigures {
  if (values.length === 0) return { p50: 0, p99: 0, max: 0 }
  const s = [...values].sort((a, b) => a - b)
  const rank = (p: number): number => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!
  const r = (x: number): number => Math.round(x * 10) / 10
  return { p50: r(rank(50)), p99: r(rank(99)), max: r(s.at(-1)!) }
}

export interface TickerStats {
  /** Lateness of the timed runs of the last RECENT_WINDOW_MS, ms. */
  lateMs: LateFigures
  /** Timed runs since start (the first, immediate run and stopped timers not counted). */
  runs: number
  /** Of those, runs more than LATE_MS late. */
  late: number
}

export class Ticker {
  readonly #tick: () => number
  readonly #onError: (err: unknown) => void
  readonly #fallbackMs: number
  readonly #clock: Clock
  #timer: NodeJS.Timeout | null = null
  /** When the armed run is due, clock ms. */
  #due = 0
  #stopped = false
  readonly #lateness = new RecentSamples()
  #runs = 0
  #late = 0

  /**
   * `tick` runs the timers and returns the delay before the next run, ms;
   * `fallbackMs` is used when it throws; `clock` is monotonic (lateness is
   * measured on it, and `due` is kept on it).
   */
  constructor (tick: () => number, onError: (err: unknown) => void, fallbackMs: number, clock: Clock) {
    this.#tick = tick
    this.#onError = onError
    this.#fallbackMs = fallbackMs
    this.#clock = clock
  }

  /** Run now, then as asked. */
  start (): void { this.#fire(false) }

  /** Run within `ms` at the latest (nothing changes when the next run is due sooner). */
  kick (ms: number): void {
    if (this.#stopped || (this.#timer !== null && this.#clock.now() + ms >= this.#due)) return
    this.#arm(ms)
  }

  stop (): void {
    this.#stopped = true
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
  }

  /** How late the timed runs fired: recent figures and totals since start. */
  stats (): TickerStats {
    return { lateMs: lateFigures(this.#lateness.recent(this.#clock.now())), runs: this.#runs, late: this.#late }
  }

  #arm (ms: number): void {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#due = this.#clock.now() + ms
    this.#timer = setTimeout(() => { this.#fire(true) }, ms)
  }

  #fire (timed: boolean): void {
    this.#timer = null
    if (timed) {
      const now = this.#clock.now()
      const late = Math.max(0, now - this.#due)
      this.#lateness.add(now, late)
      this.#runs++
      if (late > LATE_MS) this.#late++
    }
    let next = this.#fallbackMs
    try { next = this.#tick() } catch (err) { this.#onError(err) }
    if (!this.#stopped) this.#arm(next)
  }
}

/**
 * monitorEventLoopDelay's sampling interval, ms: fine enough to see a stall
 * of LATE_MS. Not free: a libuv timer wakes the loop 100 times a second, also
 * on an idle daemon (whose own tick wakes it 4 times): an idle node process
 * on the 2-core benchmark machine used ~2 ms of CPU a second without the
 * monitor and 7–9 ms with it (with a 20-ms resolution: ~6 ms), and the
 * wake-ups cost an idle ping through the fast path ~45 µs (bench:ci A/B). So
 * the daemon samples only when asked: a status request with `sampleLoop`
 * keeps the monitor on for LOOP_WATCH_MS (watch()); otherwise it is off.
 */
export const LOOP_RESOLUTION_MS = 10
/** How long the loop-delay monitor stays on after the last watch() (a status request): 10 minutes. */
export const LOOP_WATCH_MS = 600_000
/** The monitor is read and reset this often; RECENT_WINDOW_MS / this slots are kept. */
export const LOOP_SLOT_MS = 1_000

interface LoopSlot { at: number, p50: number, p99: number, max: number }

/**
 * The main event loop's delay: perf_hooks.monitorEventLoopDelay samples the
 * loop every LOOP_RESOLUTION_MS; its values are the whole interval between
 * samples, so the delay is that minus the resolution. Read and reset once per
 * LOOP_SLOT_MS; figures() covers the slots of the last RECENT_WINDOW_MS:
 * p50 = the median of the slots' medians, p99 = the worst slot's p99, max =
 * the worst delay (a histogram cannot be merged, so the window is made of
 * per-second summaries). Main thread only; start()/stop() own the monitor
 * and its unref'd slot timer; watch() starts it for a while (it stops itself
 * LOOP_WATCH_MS after the last watch()).
 */
export class LoopDelayMonitor {
  readonly #clock: Clock
  readonly #slots: LoopSlot[] = []
  #h: IntervalHistogram | null = null
  #timer: NodeJS.Timeout | null = null
  /** Monotonic ms after which the slot timer stops the monitor; 0 = runs until stop(). */
  #watchUntil = 0

  constructor (clock: Clock) { this.#clock = clock }

  /** Whether the loop is being sampled now. */
  get running (): boolean { return this.#h !== null }

  /** Sample the loop for `ms` from now (started if off, extended if on; never shortens a start()). */
  watch (ms = LOOP_WATCH_MS): void {
    const wasRunning = this.running
    const until = this.#clock.now() + ms
    if (!wasRunning) {
      this.start()
      this.#watchUntil = until
    } else if (this.#watchUntil !== 0) {
      this.#watchUntil = Math.max(this.#watchUntil, until)
    }
  }

  start (): void {
    this.#watchUntil = 0
    if (this.#h !== null) return
    this.#h = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS })
    this.#h.enable()
    this.#timer = setInterval(() => { this.#slot() }, LOOP_SLOT_MS)
    this.#timer.unref()
  }

  stop (): void {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
    this.#h?.disable()
    this.#h = null
    this.#slots.length = 0
  }

  /** Delay figures over the last RECENT_WINDOW_MS, ms (the current, partial slot included); null while not sampling or before the first sample. */
  figures (): LateFigures | null {
    const now = this.#clock.now()
    const slots = this.#slots.filter(s => s.at > now - RECENT_WINDOW_MS)
    const cur = this.#read()
    if (cur !== null) slots.push(cur)
    if (slots.length === 0) return null
    const r = (x: number): number => Math.round(x * 10) / 10
    return {
      p50: r(lateFigures(slots.map(s => s.p50)).p50),
      p99: r(Math.max(...slots.map(s => s.p99))),
      max: r(Math.max(...slots.map(s => s.max)))
    }
  }

  #read (): LoopSlot | null {
    const h = this.#h
    if (h === null || h.count === 0) return null
    const d = (ns: number): number => Math.max(0, ns / 1e6 - LOOP_RESOLUTION_MS)
    return { at: this.#clock.now(), p50: d(h.percentile(50)), p99: d(h.percentile(99)), max: d(h.max) }
  }

  #slot (): void {
    if (this.#watchUntil !== 0 && this.#clock.now() >= this.#watchUntil) { this.stop(); return }
    const s = this.#read()
    this.#h?.reset()
    if (s === null) return
    this.#slots.push(s)
    while (this.#slots.length > RECENT_WINDOW_MS / LOOP_SLOT_MS) this.#slots.shift()
  }
}
