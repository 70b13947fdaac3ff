/**
 * The birthday search (symmetric side ↔ cone side that filters by port;
 * research/nat-anchors.md §1, §7.6; the numbers are in constants.ts):
 *
 *   1. the symmetric ("hard") side opens BIRTHDAY_SOCKETS probe sockets and
 *      sends one low-TTL probe from each to the peer's public endpoint: each
 *      opens a mapping on its NAT towards the peer; then it sends a Punch
 *      with the birthday flag through the relay;
 *   2. the cone ("easy") side, on that Punch, sprays probes at random ports
 *      of the hard side's public address, BIRTHDAY_SPRAY_PER_TICK per tick;
 *   3. a probe that lands on one of the mappings is answered like any Ping
 *      (DirectPath.onPing/onPong), and the winning socket becomes the path;
 *   4. the search ends on a direct path, after BIRTHDAY_TIMEOUT, or when the
 *      spray budget is spent; the next starts no sooner than BIRTHDAY_RETRY.
 *
 * The spray is a peer asking us to send hundreds of packets per second, so
 * it is bounded against a member abusing it: it goes only to the address
 * the server vouches for as the peer's (its public endpoint from the peer
 * list, which the server moves only after a return-routability check), and
 * the easy side sprays at most BIRTHDAY_SPRAY_MAX probes per peer per
 * BIRTHDAY_RETRY window however many birthday Punches arrive: a Punch during
 * a spray does not restart it, one after the budget is spent is ignored
 * (counted in punchesIgnored).
 *
 * BirthdaySearch is one peer's search (owned by its DirectPath, which sends
 * the probes); BirthdayPool is the client's one pool of probe sockets, shared
 * by every running search (a socket's mapping on a symmetric NAT is per
 * destination, so one socket can probe, and later carry, several peers).
 */
import type { DataplanePort } from './port.js'
import type { Random } from '../random.js'
import type { Endpoint, NatMapping } from './nat.js'
import { BIRTHDAY_AFTER, BIRTHDAY_RETRY, BIRTHDAY_SOCKETS, BIRTHDAY_SPRAY_MAX, BIRTHDAY_SPRAY_PER_TICK, BIRTHDAY_TIMEOUT, LOW_TTL } from './constants.js'
import { formatEndpoint } from '../wire/addr.js'

/** What a search does through its DirectPath. */
export interface BirthdayHost {
  /** Send one probe Ping to ip:port from socket `sock`; with `track`, its Pong is matched to ip:port (a candidate is learned). */
  probe(ip: number, port: number, ttl: number | null, sock: number, track: boolean, now: number): void
  /** Send our Punch with the birthday flag through the relay. */
  punch(now: number): void
  openSockets(n: number): number[]
  closeSockets(socks: readonly number[]): void
  log(msg: string, fields?: Record<string, unknown>): void
}

/** What the search needs to know of the path at each tick. */
export interface BirthdayView {
  direct: boolean
  /** The peer's public endpoint from the server, or null. */
  publicEp: Endpoint | null
  localNat: NatMapping
  peerNat: NatMapping
  /** Start of the running punch burst, or null. */
  burstAt: number | null
}

type Search =
  | { role: 'hard', socks: number[], until: number }
  | { role: 'easy', ip: number, sent: number, until: number }

export class BirthdaySearch {
  readonly #host: BirthdayHost
  readonly #random: Random
  #run: Search | null = null
  /** No new search (hard side) before this. */
  #nextAt = 0
  /** Easy side: the spray budget's window (BIRTHDAY_RETRY long) and the probes sprayed in it. */
  #windowAt = -Infinity
  #windowSent = 0
  /** Birthday Punches that asked for a spray while one ran or the window's budget was spent. */
  punchesIgnored = 0

  constructor (host: BirthdayHost, random: Random) {
    this.#host = host
    this.#random = random
  }

  get running (): boolean { return this.#run !== null }

  /** The symmetric peer opened its sockets (a Punch with the birthday flag): spray its public address. No-op while our own hard-side search runs. */
  spray (publicEp: Endpoint, now: number): void {
    if (this.#run !== null && this.#run.role !== 'easy') return
    if (now - this.#windowAt >= BIRTHDAY_RETRY) { this.#windowAt = now; this.#windowSent = 0 }
    if (this.#run !== null || this.#windowSent >= BIRTHDAY_SPRAY_MAX) { this.punchesIgnored++; return }
    this.#run = { role: 'easy', ip: publicEp.ip, sent: this.#windowSent, until: now + BIRTHDAY_TIMEOUT }
    this.#host.log('birthday search: spraying the peer\'s public address', { ip: formatEndpoint(publicEp.ip, 0) })
  }

  /** Start, run and end searches (bounded: one per BIRTHDAY_RETRY, BIRTHDAY_SPRAY_MAX probes, BIRTHDAY_TIMEOUT). */
  tick (now: number, v: BirthdayView): void {
    const b = this.#run
    if (b !== null) {
      if (v.direct || now >= b.until || (b.role === 'easy' && b.sent >= BIRTHDAY_SPRAY_MAX)) {
        this.end(now)
        return
      }
      if (b.role === 'easy') {
        for (let i = 0; i < BIRTHDAY_SPRAY_PER_TICK && b.sent < BIRTHDAY_SPRAY_MAX; i++, b.sent++) {
          const port = 1024 + this.#random.int(65536 - 1024)
          this.#host.probe(b.ip, port, null, 0, true, now)
        }
        this.#windowSent = b.sent
      }
      return
    }
    // Start one on the symmetric side when the pair needs it and plain punching has had its chance.
    if (v.direct || v.publicEp === null || now < this.#nextAt) return
    if (v.localNat !== 'edm' || v.peerNat !== 'eim') return
    if (v.burstAt !== null && now - v.burstAt < BIRTHDAY_AFTER) return
    const socks = this.#host.openSockets(BIRTHDAY_SOCKETS)
    if (socks.length === 0) { this.#nextAt = now + BIRTHDAY_RETRY; return }
    this.#run = { role: 'hard', socks, until: now + BIRTHDAY_TIMEOUT }
    for (const sock of socks) this.#host.probe(v.publicEp.ip, v.publicEp.port, LOW_TTL, sock, false, now)
    this.#host.punch(now)
    this.#host.log('birthday search: probe sockets open', { sockets: socks.length })
  }

  /** End the running search (if any); the hard side releases its sockets (the adopted one stays open). */
  end (now: number): void {
    const b = this.#run
    if (b === null) return
    this.#run = null
    this.#nextAt = now + BIRTHDAY_RETRY
    if (b.role !== 'hard') return
    this.#host.closeSockets(b.socks)
  }
}

/**
 * The client's probe sockets for birthday searches: opened by the first
 * search, shared by the others, the unadopted ones closed when the last
 * running search ends.
 */
export class BirthdayPool {
  readonly #port: Pick<DataplanePort, 'openProbeSockets' | 'closeProbeSockets'>
  #socks: number[] | null = null
  #users = 0

  constructor (port: Pick<DataplanePort, 'openProbeSockets' | 'closeProbeSockets'>) { this.#port = port }

  /** The pool's sockets (opening up to n the first time); empty when none could be opened. */
  open (n: number): number[] {
    if (this.#socks === null) {
      const socks = this.#port.openProbeSockets(n)
      if (socks.length === 0) return socks
      this.#socks = socks
    }
    this.#users++
    return this.#socks
  }

  /** One search ended; the last one out closes the unadopted sockets. */
  release (): void {
    if (this.#users === 0) return
    if (--this.#users > 0 || this.#socks === null) return
    this.#port.closeProbeSockets(this.#socks) // adopted ones stay open
    this.#socks = null
  }
}
