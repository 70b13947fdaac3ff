/**
 * The client's side of peer-list distribution (docs/PROTOCOL.md §6.2): which
 * version of the server's list we hold, and how one PeerUpdate message
 * applies. A full list (RESET … FINAL, SEQ 0, 1, 2 …) replaces the peers; a
 * delta applies on top. A lost message (SEQ gap) or a delta that does not
 * follow our version leaves us at version 0, so our next Ping (which carries
 * `version`) makes the server send the full list again.
 */
import { PEER_OP_REMOVE, PEER_SEQ_MOD, type PeerEntry, type PeerUpdate } from '../wire/control.js'

/** What applying an update does to the peer table. */
export interface PeerListTarget {
  upsert(e: PeerEntry): void
  /** `explicit`: an explicit REMOVE entry (true), or absent from a full list (false). */
  remove(tunnelIp: number, explicit: boolean): void
  /** Tunnel IPs of every peer we hold now. */
  tunnelIps(): number[]
}

export class PeerListSync {
  /** The list version we hold completely (0: none; the server then sends the full list). */
  version = 0
  #expectSeq = 0
  #broken = false
  /** During a full list: the peers it named so far (the rest go at FINAL). */
  #resetMarks: Set<number> | null = null

  /** Apply one PeerUpdate; entries for `self` (our own tunnel IP) are skipped. */
  apply (msg: PeerUpdate, self: number, t: PeerListTarget): void {
    if (msg.reset) { this.#resetMarks = new Set(); this.#expectSeq = 0 }
    if (msg.seq !== this.#expectSeq) this.#broken = true
    this.#expectSeq = msg.final ? 0 : (msg.seq + 1) % PEER_SEQ_MOD
    for (const e of msg.entries) {
      if (e.op === PEER_OP_REMOVE) { t.remove(e.tunnelIp, true); continue }
      if (e.tunnelIp === self) continue
      this.#resetMarks?.add(e.tunnelIp)
      t.upsert(e)
    }
    if (!msg.final) return
    if (this.#resetMarks !== null) {
      for (const ip of t.tunnelIps()) if (!this.#resetMarks.has(ip)) t.remove(ip, false)
      this.#resetMarks = null
      this.version = this.#broken ? 0 : msg.version
    } else {
      this.version = !this.#broken && msg.version === this.version + 1 ? msg.version : 0
    }
    this.#broken = false
  }
}
