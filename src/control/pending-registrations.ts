/**
 * Registrations the server answered OK but that are not confirmed yet. An
 * unconfirmed registration holds no client slot and no tunnel address: only
 * this entry (its pending session, so the Confirm can be opened) until the
 * Confirm arrives (server.ts then checks the address again and admits the
 * client) or it ages out. Bounded per source IP and overall; the oldest is
 * evicted first (each eviction counted by the server).
 *
 *   init OK ──add()──▶ [entries by receiver index, oldest first]
 *                         ├── Confirm: take(index) ──▶ server admits (slot, address, peers told)
 *                         ├── a 5th from the same source IP / the 1025th overall ──▶ evicted (oldest)
 *                         └── older than PENDING_REGISTRATION_TTL ──▶ expire()
 */
import type { Endpoint6 } from '../wire/attrs.js'
import type { LanAddr } from '../wire/payloads.js'
import type { IpPrefix } from '../wire/prefix.js'
import { emptySessionSet, type Session, type SessionSet } from './session.js'

/** What the init asked for, kept until its Confirm. */
export interface Claim {
  tunnelIp: number
  /** The IPv6 tunnel address it asked for (InitPayload attrs), or null. */
  tunnel6: IpPrefix | null
  lan: LanAddr[]
  /** The networks it advertises (InitPayload attrs.routes). */
  routes: readonly IpPrefix[]
  /** Its own global IPv6 addresses with its port (InitPayload attrs.candidates6), passed on to peers. */
  candidates6?: readonly Endpoint6[]
  /** The initiator's static key (authenticated by message 1; proven by the Confirm). */
  key: Uint8Array
}

export class PendingRegistration {
  /** Only `pending` is ever set: the session waiting for its Confirm (openSealedControl finds it here). */
  readonly sessions: SessionSet = emptySessionSet()
  constructor (
    /** Where the init came from (its UDP source). */
    readonly sourceIp: number,
    readonly sourcePort: number,
    /** Monotonic ms. */
    readonly createdAt: number,
    readonly claim: Claim
  ) {}

  /** The session the response created (once, right after the receiver index is allocated). */
  attach (s: Session): void { this.sessions.pending = s }
  get session (): Session { return this.sessions.pending! }
  get localIndex (): number { return this.session.localIndex }
}

export class PendingRegistrations {
  /** By receiver index; Map order is insertion order = age. */
  readonly #byIndex = new Map<number, PendingRegistration>()
  readonly #perSource = new Map<number, number>()
  readonly #maxPerSource: number
  readonly #max: number

  constructor (maxPerSource: number, max: number) {
    this.#maxPerSource = maxPerSource
    this.#max = max
  }

  get size (): number { return this.#byIndex.size }
  countFrom (sourceIp: number): number { return this.#perSource.get(sourceIp) ?? 0 }
  get (localIndex: number): PendingRegistration | undefined { return this.#byIndex.get(localIndex) }

  /** Adds one; returns the entries it evicted (the caller forgets their indexes). */
  add (p: PendingRegistration): PendingRegistration[] {
    const evicted: PendingRegistration[] = []
    if (this.countFrom(p.sourceIp) >= this.#maxPerSource) {
      for (const q of this.#byIndex.values()) if (q.sourceIp === p.sourceIp) { evicted.push(q); break }
    }
    if (evicted.length === 0 && this.#byIndex.size >= this.#max) evicted.push(this.#byIndex.values().next().value!)
    for (const q of evicted) this.delete(q)
    this.#byIndex.set(p.localIndex, p)
    this.#perSource.set(p.sourceIp, this.countFrom(p.sourceIp) + 1)
    return evicted
  }

  delete (p: PendingRegistration): void {
    if (this.#byIndex.get(p.localIndex) !== p) return
    this.#byIndex.delete(p.localIndex)
    const n = this.countFrom(p.sourceIp) - 1
    if (n <= 0) this.#perSource.delete(p.sourceIp)
    else this.#perSource.set(p.sourceIp, n)
  }

  /** Removes and returns those created more than `ttl` ms before `now`. */
  expire (now: number, ttl: number): PendingRegistration[] {
    const out: PendingRegistration[] = []
    for (const p of this.#byIndex.values()) {
      if (now - p.createdAt <= ttl) break // oldest first: the rest are younger
      out.push(p)
    }
    for (const p of out) this.delete(p)
    return out
  }

  /** Every entry for a tunnel address (a newer init for it, a revocation). */
  forAddress (tunnelIp: number): PendingRegistration[] {
    return [...this.#byIndex.values()].filter(p => p.claim.tunnelIp === tunnelIp)
  }
}
