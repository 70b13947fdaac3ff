/**
 * Path MTU discovery for one path (to the server, or to one peer's direct
 * endpoint), after RFC 8899 (DPLPMTUD), sans-IO: probe sends go out through
 * an injected callback, acks and time come in (onAck, tick(now)); the owner
 * (path-mtu-client.ts) turns the confirmed size into the dataplane's limit.
 *
 * Sizes are outer IP packet bytes (IPv4 or IPv6 header + UDP + our transport
 * header, plaintext, tag). `base` (576 IPv4 / 1280 IPv6, RFC 8899 §5.1.2
 * BASE_PLPMTU) is taken to pass; `max` is the largest size the tunnel ever
 * needs (its TUN MTU plus our overhead): probing above it would gain nothing.
 *
 *          start()                 all of a round's probes above lo lost, hi−lo = 0
 *   idle ──────────▶ searching ──────────────────────────────────────────▶ confirmed
 *                     │  ▲  rounds of SEARCH_PROBES padded probes, spread    │  │
 *                     │  │  over (lo, hi]: lo = largest acked, hi = below    │  │ every RAISE_INTERVAL below max:
 *     3 silent rounds │  │  the smallest lost; ≤ 4 rounds (~1.6 s)           │  │ search (mtu, max] again
 *                     ▼  └───────────────────────────────────────────────────┘  │
 *                 unanswered      black hole: CHECK_MISSES re-checks at the     │
 *                 (retry after    confirmed size lost while the tiny probe sent │
 *                  RETRY_SILENT)  beside each is answered → search (base, mtu)  │
 *                                 ◀─────────────────────────────────────────────┘
 *
 * While the path carries traffic, a confirmed size is re-checked every
 * CHECK_INTERVAL by one probe of that size plus one tiny probe (is the path
 * alive at all?). So a drop in the path MTU with ICMP filtered (a black
 * hole) is noticed within CHECK_INTERVAL + CHECK_MISSES × CHECK_TIMEOUT and
 * the new size found one search later: ≤ 7 s, under issue 13's 10 s.
 * During a search the previous size stays in force (the dataplane keeps its
 * limit): announcing the base size to the inner TCP first would make its
 * kernel cache a tiny path MTU for ten minutes.
 * ICMP "too big" from the outer network is not used (the socket has
 * IP_PMTUDISC_PROBE: the kernel neither fragments nor refuses for us): only
 * authenticated acks move the size.
 */
import { isV6Handle } from '../wire/endpoint-handle.js'
import { isFakeTcpHandle } from '../wire/faketcp-handle.js'

/**
 * Outer bytes around a probe's (any sealed message's) plaintext on a path to `ip`, an endpoint or
 * handle: the IP header (IPv6 40, IPv4 20), the datagram's own header (UDP 8; a fake-TCP segment's
 * TCP header with its timestamp option, 32), our transport header 16 and the tag 16.
 */
export function pathOverhead (ip: number): number {
  return (isV6Handle(ip) ? 40 : 20) + (isFakeTcpHandle(ip) ? 32 : 8) + 16 + 16
}

/** Probes per search round (plus one at lo), spread evenly over (lo, hi]: 884 bytes of range resolve to 1 in 4 rounds. */
export const SEARCH_PROBES = 8
/** A round ends after this long at least (or 2 RTTs + 50 ms when that is longer), ms. */
export const PROBE_TIMEOUT = 400
/** Rounds without any ack (the other end does not answer probes: an older version, or the path is down) before giving up for a while. */
export const SILENT_ROUNDS = 3
/** Retry after giving up, ms. */
export const RETRY_SILENT = 30_000
/** A confirmed size is checked again this often while the path carries traffic, ms. */
export const CHECK_INTERVAL = 3000
/** A check's probes are answered within this, or count as lost, ms. */
export const CHECK_TIMEOUT = 1000
/** Consecutive lost checks (with the tiny probe answered) that mean a black hole. */
export const CHECK_MISSES = 2
/** Below max, search upwards again this often, ms (RFC 8899 PMTU_RAISE_TIMER is 600 s; paths here change faster). */
export const RAISE_INTERVAL = 60_000

export type SearchReason = 'start' | 'raise' | 'black-hole'

export type PathMtuState =
  | { state: 'idle' }
  | { state: 'searching', why: SearchReason, lo: number, hi: number, round: Map<number, number>, acked: Set<number>, roundEndsAt: number, silentRounds: number, startedAt: number }
  | { state: 'confirmed', checkAt: number, raiseAt: number, misses: number, check: { big: number, small: number, endsAt: number, bigAcked: boolean, smallAcked: boolean } | null }
  | { state: 'unanswered', retryAt: number }

export interface PathMtuOptions {
  /** Smallest size assumed to pass (576 IPv4, 1280 IPv6). */
  base: number
  /** Largest size ever needed (TUN MTU + overhead). */
  max: number
  /** Outer bytes around a probe's plaintext (IP + UDP + transport header + tag): plaintext = size − overhead. */
  overhead: number
  /** Send a probe of `plaintextLen` bytes with this txid. */
  send: (txid: number, plaintextLen: number) => void
  /** A fresh txid (random u32). */
  txid: () => number
}

export interface PathMtuStatus {
  /** The confirmed path MTU (outer bytes), null before the first search ends. */
  mtu: number | null
  state: 'idle' | 'searching' | 'confirmed' | 'black-hole' | 'unanswered'
  /** ms from start() to the first confirmed size, null before. */
  foundInMs: number | null
}

export class PathMtu {
  readonly opt: PathMtuOptions
  #s: PathMtuState = { state: 'idle' }
  /** The size in force: the last confirmed one (kept through searches), null before one. */
  #mtu: number | null = null
  #startedAt = 0
  #foundInMs: number | null = null
  /** Acks that named no probe in flight, or a length that is not the probe's (dropped). */
  acksDropped = 0
  /** Black holes detected (a confirmed size stopped passing). */
  blackHoles = 0

  constructor (opt: PathMtuOptions) {
    if (!(opt.base > opt.overhead + 12 && opt.max >= opt.base)) throw new RangeError(`path MTU: base ${opt.base} / max ${opt.max} / overhead ${opt.overhead} do not fit`)
    this.opt = opt
  }

  get state (): PathMtuState { return this.#s }
  /** The size in force (outer bytes), or null while none is confirmed. */
  get mtu (): number | null { return this.#mtu }

  /** The path came up (or moved to a new endpoint): forget everything and search from base. */
  start (now: number): void {
    this.#mtu = null
    this.#foundInMs = null
    this.#startedAt = now
    this.#search(now, 'start', this.opt.base, this.opt.max)
  }

  /** The path went away. */
  stop (): void {
    this.#s = { state: 'idle' }
    this.#mtu = null
  }

  /** An authenticated ack of one of our probes: `length` is the probe's plaintext length as the other end received it. */
  onAck (txid: number, length: number, now: number): void {
    const s = this.#s
    if (s.state === 'searching') {
      const size = s.round.get(txid)
      if (size === undefined || size - this.opt.overhead !== length) { this.acksDropped++; return }
      s.acked.add(txid)
      if (size > s.lo) s.lo = size
      if (s.acked.size === s.round.size || s.lo >= s.hi) this.#endRound(now)
    } else if (s.state === 'confirmed' && s.check !== null) {
      const c = s.check
      if (txid === c.big && length === this.#mtu! - this.opt.overhead) c.bigAcked = true
      else if (txid === c.small && length === 12) c.smallAcked = true
      else { this.acksDropped++; return }
      if (c.bigAcked) { s.check = null; s.misses = 0; s.checkAt = now + CHECK_INTERVAL }
    } else this.acksDropped++
  }

  /**
   * Timers. `active`: the path carried traffic since the last tick (checks run
   * only then); `rttMs`: the path's round trip if known (longer round timeouts).
   */
  tick (now: number, active: boolean, rttMs: number | null = null): void {
    const s = this.#s
    switch (s.state) {
      case 'idle': return
      case 'searching':
        if (now >= s.roundEndsAt) this.#endRound(now, rttMs)
        return
      case 'unanswered':
        if (now >= s.retryAt) this.#search(now, 'start', this.opt.base, this.opt.max)
        return
      case 'confirmed': {
        if (s.check !== null) {
          if (now < s.check.endsAt) return
          const c = s.check
          s.check = null
          if (c.smallAcked) s.misses++
          if (s.misses >= CHECK_MISSES) {
            this.blackHoles++
            this.#search(now, 'black-hole', this.opt.base, this.#mtu! - 1)
            return
          }
          s.checkAt = now // check again at once (a lost probe is not yet a black hole)
        }
        if (this.#mtu! < this.opt.max && now >= s.raiseAt) { this.#search(now, 'raise', this.#mtu!, this.opt.max); return }
        // A failed check is followed up at once, busy or not: the path may look idle because it stalled.
        if ((active || s.misses > 0) && now >= s.checkAt) {
          const big = this.opt.txid()
          const small = this.opt.txid()
          s.check = { big, small, endsAt: now + CHECK_TIMEOUT, bigAcked: false, smallAcked: false }
          this.opt.send(big, this.#mtu! - this.opt.overhead)
          this.opt.send(small, 12)
        }
        return
      }
    }
  }

  /** The tick is wanted soon (a round or a check is in flight). */
  busy (): boolean {
    return this.#s.state === 'searching' || (this.#s.state === 'confirmed' && this.#s.check !== null)
  }

  status (): PathMtuStatus {
    const s = this.#s
    const state = s.state === 'searching' && s.why === 'black-hole' ? 'black-hole' : s.state
    return { mtu: this.#mtu, state, foundInMs: this.#foundInMs }
  }

  #search (now: number, why: SearchReason, lo: number, hi: number): void {
    this.#s = { state: 'searching', why, lo, hi: Math.max(lo, hi), round: new Map(), acked: new Set(), roundEndsAt: 0, silentRounds: 0, startedAt: now }
    this.#sendRound(now, null)
  }

  /**
   * Probes at lo (does the path answer at all?) and spread over (lo, hi]:
   * lo + ceil((hi − lo) × i / n), i = 0..n, without repeats.
   */
  #sendRound (now: number, rttMs: number | null): void {
    const s = this.#s
    if (s.state !== 'searching') return
    s.round.clear()
    s.acked.clear()
    const span = s.hi - s.lo
    let prev = -1
    for (let i = 0; i <= SEARCH_PROBES; i++) {
      const size = s.lo + Math.ceil(span * i / SEARCH_PROBES)
      if (size <= prev) continue
      prev = size
      const txid = this.opt.txid()
      s.round.set(txid, size)
      this.opt.send(txid, size - this.opt.overhead)
    }
    s.roundEndsAt = now + Math.max(PROBE_TIMEOUT, rttMs === null ? 0 : 2 * rttMs + 50)
  }

  #endRound (now: number, rttMs: number | null = null): void {
    const s = this.#s
    if (s.state !== 'searching') return
    if (s.acked.size === 0 && s.round.size > 0) {
      if (++s.silentRounds >= SILENT_ROUNDS) {
        if (this.#mtu !== null) this.#confirm(now) // keep the old size; the path itself may be down
        else this.#s = { state: 'unanswered', retryAt: now + RETRY_SILENT }
        return
      }
      this.#sendRound(now, rttMs)
      return
    }
    s.silentRounds = 0
    // The smallest lost size above lo bounds the search from above.
    let lost = s.hi + 1
    for (const [txid, size] of s.round) if (!s.acked.has(txid) && size > s.lo && size < lost) lost = size
    s.hi = Math.min(s.hi, lost - 1)
    if (s.hi <= s.lo) {
      this.#mtu = s.lo
      this.#confirm(now)
      return
    }
    this.#sendRound(now, rttMs)
  }

  #confirm (now: number): void {
    if (this.#foundInMs === null && this.#mtu !== null) this.#foundInMs = now - this.#startedAt
    this.#s = { state: 'confirmed', checkAt: now + CHECK_INTERVAL, raiseAt: now + RAISE_INTERVAL, misses: 0, check: null }
  }
}
