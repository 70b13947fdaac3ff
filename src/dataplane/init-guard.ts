/**
 * The server's gate for HandshakeInits, in the inbound pipeline before the
 * control ring (dataplane/inbound.ts #toControl). Sans-IO on the caller's
 * clock (`now`, ms); the caller sends the CookieReply and counts verdicts.
 * What an outsider sends costs the worker one keyed BLAKE2s and never
 * reaches the main thread; what a member sends is bounded per source and in
 * total (WireGuard's order, whitepaper §5.4.7 and device/receive.go):
 *
 *   1. mac1 (crypto/cookie.ts): wrong or missing → 'bad-mac1' (no network key),
 *      except at most one a second per source and BAD_MAC1_REPORTS_PER_SEC in
 *      all → 'report': it goes to the ring, where the main thread finds the
 *      wrong key and answers with an 8-byte Reject, so a client with a wrong
 *      key still gets its clear error (and the server its log line).
 *   2. under load? (see underLoad) and no valid mac2 → 'cookie' (the caller
 *      answers with a 64-byte CookieReply; replies are capped at
 *      REPLIES_PER_SEC, beyond that → 'cookie-limited', dropped).
 *   3. per-source token bucket (source IPv4; SOURCE_RATE/s, burst
 *      SOURCE_BURST; a table of at most SOURCE_TABLE sources, the oldest
 *      entry evicted first, which only ever hands a source a fresh bucket)
 *      → 'rate-source'.
 *   4. global token bucket (GLOBAL_RATE/s) → 'rate-global'.
 *   5. 'pass': the caller copies the init into the control ring.
 *
 * Under load = the control ring holds >= LOAD_RING_OCCUPANCY entries (the
 * main thread is behind: WireGuard's 1/8 of its handshake queue), or more
 * than LOAD_INITS_PER_SEC inits passed in the current second (a flood is
 * coming before the ring shows it); it lasts LOAD_HOLD_MS after the last
 * trigger (WireGuard: UnderLoadAfterTime = 1 s). Under load a source must
 * prove with mac2 that it receives at its address, so a spoofing flooder
 * gets nothing into the ring and the buckets count real sources only.
 *
 * Threading: inbound worker only.
 */
import { CookieChecker } from '../crypto/cookie.js'

/** Per source IP: inits a second, and burst. An honest node sends one per rekey (2 min) or retry (1 s). */
export const SOURCE_RATE = 20
export const SOURCE_BURST = 40
/** Sources tracked at once (~100 bytes each). */
export const SOURCE_TABLE = 4096
/** Inits a second into the ring, all sources: above the main thread's measured handshake rate, so it only bounds the queue. */
export const GLOBAL_RATE = 4000
/** Cookie replies a second (each costs an XChaCha20-Poly1305 seal in this worker and 64 bytes out). */
export const REPLIES_PER_SEC = 5000
/** Inits without a valid mac1 handed to the main thread a second (for the wrong-key Reject and log line; ~30 µs each there). */
export const BAD_MAC1_REPORTS_PER_SEC = 50
/** Ring occupancy that means "the main thread is behind": 1/8 of CTRL_RING_SLOTS. */
export const LOAD_RING_OCCUPANCY = 256
/** Inits passed in one second that mean "under load". */
export const LOAD_INITS_PER_SEC = 1000
/** Under load lasts this long after the last trigger. */
export const LOAD_HOLD_MS = 1000

export type InitVerdict = 'pass' | 'bad-mac1' | 'report' | 'cookie' | 'cookie-limited' | 'rate-source' | 'rate-global'

/** A token bucket as two numbers (tokens, last refill ms). */
class Bucket {
  tokens: number
  at: number
  constructor (burst: number, now: number) { this.tokens = burst; this.at = now }
  take (rate: number, burst: number, now: number): boolean {
    if (now > this.at) {
      this.tokens = Math.min(burst, this.tokens + (now - this.at) * rate / 1000)
      this.at = now
    }
    if (this.tokens < 1) return false
    this.tokens -= 1
    return true
  }
}

export interface InitGuardLimits {
  sourceRate: number
  sourceBurst: number
  sourceTable: number
  globalRate: number
  repliesPerSec: number
  loadRingOccupancy: number
  loadInitsPerSec: number
}

export const DEFAULT_LIMITS: InitGuardLimits = {
  sourceRate: SOURCE_RATE,
  sourceBurst: SOURCE_BURST,
  sourceTable: SOURCE_TABLE,
  globalRate: GLOBAL_RATE,
  repliesPerSec: REPLIES_PER_SEC,
  loadRingOccupancy: LOAD_RING_OCCUPANCY,
  loadInitsPerSec: LOAD_INITS_PER_SEC
}

export class InitGuard {
  readonly checker: CookieChecker
  readonly #lim: InitGuardLimits
  readonly #sources = new Map<number, Bucket>()
  readonly #global: Bucket
  readonly #replies: Bucket
  readonly #reports: Bucket
  /** Source → last 'report' (ms); bounded like the buckets. */
  readonly #reported = new Map<number, number>()
  #windowStart = -Infinity
  #windowCount = 0
  #loadUntil = -Infinity

  constructor (checker: CookieChecker, now: number, limits: Partial<InitGuardLimits> = {}) {
    this.checker = checker
    this.#lim = { ...DEFAULT_LIMITS, ...limits }
    this.#global = new Bucket(this.#lim.globalRate, now)
    this.#replies = new Bucket(this.#lim.repliesPerSec, now)
    this.#reports = new Bucket(BAD_MAC1_REPORTS_PER_SEC, now)
  }

  /** One 'report' a second per source, BAD_MAC1_REPORTS_PER_SEC in all. */
  #report (ip: number, now: number): boolean {
    const last = this.#reported.get(ip)
    if (last !== undefined && now - last < 1000) return false
    if (!this.#reports.take(BAD_MAC1_REPORTS_PER_SEC, BAD_MAC1_REPORTS_PER_SEC, now)) return false
    this.#reported.delete(ip)
    if (this.#reported.size >= this.#lim.sourceTable) {
      const oldest = this.#reported.keys().next().value
      if (oldest !== undefined) this.#reported.delete(oldest)
    }
    this.#reported.set(ip, now)
    return true
  }

  /** Sources with a bucket right now (bounded by sourceTable). */
  get sources (): number { return this.#sources.size }

  /** Under load at `now` given the ring's occupancy (updates the hold). */
  underLoad (now: number, ringOccupancy: number): boolean {
    if (ringOccupancy >= this.#lim.loadRingOccupancy || this.#windowCount > this.#lim.loadInitsPerSec) this.#loadUntil = now + LOAD_HOLD_MS
    return now < this.#loadUntil
  }

  /** The verdict for the init at `buf[off, off+len)` (trailer included) from ip:port. */
  check (buf: Uint8Array, off: number, len: number, ip: number, port: number, now: number, ringOccupancy: number): InitVerdict {
    if (!this.checker.checkMac1(buf, off, len)) return this.#report(ip >>> 0, now) ? 'report' : 'bad-mac1'
    if (now - this.#windowStart >= 1000) { this.#windowStart = now; this.#windowCount = 0 }
    if (this.underLoad(now, ringOccupancy) && !this.checker.checkMac2(buf, off, len, ip, port, now)) {
      return this.#replies.take(this.#lim.repliesPerSec, this.#lim.repliesPerSec, now) ? 'cookie' : 'cookie-limited'
    }
    const key = ip >>> 0
    let b = this.#sources.get(key)
    if (b === undefined) {
      if (this.#sources.size >= this.#lim.sourceTable) {
        const oldest = this.#sources.keys().next().value
        if (oldest !== undefined) this.#sources.delete(oldest)
      }
      b = new Bucket(this.#lim.sourceBurst, now)
      this.#sources.set(key, b)
    }
    if (!b.take(this.#lim.sourceRate, this.#lim.sourceBurst, now)) return 'rate-source'
    if (!this.#global.take(this.#lim.globalRate, this.#lim.globalRate, now)) return 'rate-global'
    this.#windowCount++
    return 'pass'
  }
}
