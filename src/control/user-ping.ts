/**
 * `lightweight-tunnel ping PEER`: the controllers send an authenticated Ping
 * (wire/control.ts kind 1, the same message as keepalives and path probes) on
 * the peer's current path and report the Pong here by txid. Each outstanding
 * ping holds a callback; the daemon (daemon.ts) times it out and cancels it.
 * Control thread only.
 *
 * Txids have the top bit set, so they never meet the server link's
 * sequential keepalive txids; the direct path's random txids could collide
 * only by a 2^-31 chance, and a Pong is matched to a user ping only while
 * that ping is outstanding.
 */
import type { Random } from '../random.js'

/** The answer to the control socket's `ping` request (one probe). */
export interface PingResult {
  /** The peer's tunnel address. */
  peer: string
  /** 'direct': straight to the peer (or to the server, for the server itself); 'relay': through the server. */
  path: 'direct' | 'relay'
  /** Where the Ping was sent ("198.51.100.7:41000"). */
  endpoint: string
  /** Round trip (send → Pong read on the monotonic clock), ms; null when no Pong came in time. */
  rttMs: number | null
}

/** What a controller returns when it sent the Ping; `cancel` forgets it (timeout). */
export interface PingStarted {
  path: 'direct' | 'relay'
  endpoint: string
  cancel(): void
}

/** Outstanding pings at once (a `ping -c` loop has one; more means many CLIs at once). */
export const MAX_USER_PINGS = 64

export class UserPings {
  readonly #pending = new Map<number, { sentAt: number, onReply: (rttMs: number) => void }>()
  readonly #random: Random

  constructor (random: Random) { this.#random = random }

  /** A fresh txid (top bit set, not outstanding), or null when MAX_USER_PINGS are outstanding. */
  txid (): number | null {
    if (this.#pending.size >= MAX_USER_PINGS) return null
    for (;;) {
      const t = (0x80000000 | this.#random.int(0x80000000)) >>> 0
      if (!this.#pending.has(t)) return t
    }
  }

  expect (txid: number, sentAt: number, onReply: (rttMs: number) => void): () => void {
    this.#pending.set(txid, { sentAt, onReply })
    return () => { this.#pending.delete(txid) }
  }

  /** A Pong with `txid` was read at `now`: true when it answered a user ping (the callback has run). */
  answered (txid: number, now: number): boolean {
    const p = this.#pending.get(txid)
    if (p === undefined) return false
    this.#pending.delete(txid)
    p.onReply(now - p.sentAt)
    return true
  }
}
