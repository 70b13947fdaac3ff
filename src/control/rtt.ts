/**
 * Round-trip times for status and metrics, and when a peer was last heard.
 *
 * Each RTT sample is the time from handing a control Ping to the socket to
 * reading its Pong, on the monotonic clock (control thread only). Beyond the
 * path, a sample holds only added delays: both ends' event loops waking up
 * and handling the message, which on a busy host is often more than the
 * path itself (measured in the lab with 2 loaded cores: a 0.3 ms tunnel ping
 * gave control round trips of 1 to 13 ms, the first after start-up 40 ms).
 * Delays only add, so status shows the lowest of the last RTT_WINDOW samples:
 * the path's round trip as ping(8) sees it, give or take the far end's
 * wake-up. The smoothed average this replaces (0.8 old + 0.2 new) kept the
 * first, cold sample for minutes at one sample per keepalive: the "2.4 to
 * 3.2 ms against a 0.3 ms ping" of issue 14. A real rise shows once the
 * window has turned over (five keepalives).
 */

/** Samples kept: five keepalives (50 s at the default 10 s) of history. */
export const RTT_WINDOW = 5

/**
 * Until RTT_WARMUP samples exist, Pings go RTT_WARMUP_GAP apart instead of
 * one per keepalive: the first Ping after start-up runs code V8 has never
 * compiled on both ends (25 to 45 ms in the lab), so the window needs warm
 * samples beside it within seconds, not minutes. Two extra Pings per session.
 */
export const RTT_WARMUP = 3
export const RTT_WARMUP_GAP = 1_000

/**
 * The server's RTT Ping to each client (server.ts), ms: clients ping the
 * server every keepalive anyway, so this is extra traffic; one per 30 s (after the
 * RTT_WARMUP first) keeps it to a sixth of the keepalives' while a server
 * RTT is shown from the first second and follows a change within minutes.
 */
export const SERVER_RTT_PING_INTERVAL = 30_000

export class RttWindow {
  readonly #samples: number[] = []
  #last: number | null = null

  /** Add one round trip, ms (negative or non-finite values are ignored). */
  add (ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) return
    this.#samples.push(ms)
    if (this.#samples.length > RTT_WINDOW) this.#samples.shift()
    this.#last = ms
  }

  clear (): void {
    this.#samples.length = 0
    this.#last = null
  }

  /** Samples kept (at most RTT_WINDOW). */
  get count (): number { return this.#samples.length }

  /** The newest sample, ms, or null. */
  get last (): number | null { return this.#last }

  /** The lowest of the kept samples, ms, rounded to 0.01, or null when none. */
  get min (): number | null {
    if (this.#samples.length === 0) return null
    return Math.round(Math.min(...this.#samples) * 100) / 100
  }
}

/**
 * Seconds since we last heard from a peer, to 0.1 s: the newer of a control
 * answer (`controlAgoMs`) and an authenticated data packet (`dataAgoMs`, from
 * the dataplane's per-peer receive stamp P_LAST_RX); null when neither.
 */
export function lastSeen (controlAgoMs: number | null, dataAgoMs: number | null): number | null {
  const ago = controlAgoMs === null ? dataAgoMs : dataAgoMs === null ? controlAgoMs : Math.min(controlAgoMs, dataAgoMs)
  return ago === null ? null : Math.round(Math.max(0, ago) / 100) / 10
}
