/**
 * The client's other clients (peers), indexed three ways and kept consistent:
 * by tunnel IP (the peer list's key), by server-assigned peerId (relay
 * envelopes name the sender by it) and by dataplane slot (the dataplane
 * names peers by slot). Slots come from a free list; slot 0 is the server's
 * and never handed out. Main thread only; the ClientController is the only
 * writer, through add / setPeerId / remove.
 */
import type { DirectPath } from './direct-path.js'
import type { SessionSet } from './session.js'
import type { NodeAttrs } from '../wire/attrs.js'

/** Another client, as this client sees it. */
export interface PeerRemote {
  readonly slot: number
  /** Server-assigned id (changes when the peer re-registers); set through PeerTable.setPeerId. */
  readonly peerId: number
  readonly tunnelIp: number
  /** Its static public key, as the server listed it (a handshake from any other key is refused). */
  readonly key: Uint8Array
  /** Its public endpoint as the server sees it (0 when unknown). */
  publicIp: number
  publicPort: number
  sessions: SessionSet
  /** Latest init timestamp accepted from this peer's key (replay guard). */
  lastInitTs: number
  /** Direct-path state (null with --no-p2p). */
  path: DirectPath | null
  /** Data counters at the last tick (traffic detection for heartbeats). */
  lastTx: number
  lastRx: number
  /** When we (the lower tunnel address) next start the end-to-end session ourselves. */
  nextSessionTry: number
  /** Last handshake started because the peer sent on a session we do not have. */
  lastResync: number
  /** Known only from the address cache (peer-cache.ts) so far: the server has not listed it since we started. */
  fromCache: boolean
  /** When a full peer list from the server left it out while we talked to it directly (client.ts UNLISTED_GRACE), else null. */
  unlistedAt: number | null
  /**
   * What the server's peer list says about it beyond its address: its IPv6 tunnel address (a peer handshake
   * claiming another is refused) and its approved routes. NO_ATTRS until listed; the address cache fills tunnel6.
   */
  attrs: NodeAttrs
}

export class PeerTable {
  readonly #byTunnelIp = new Map<number, PeerRemote>()
  readonly #byPeerId = new Map<number, PeerRemote>()
  readonly #bySlot = new Map<number, PeerRemote>()
  readonly #freeSlots: number[] = []

  /** Slots 1 … maxSlots − 1 (0 is the server's), handed out lowest first. */
  constructor (maxSlots: number) {
    for (let s = maxSlots - 1; s >= 1; s--) this.#freeSlots.push(s)
  }

  get size (): number { return this.#byTunnelIp.size }
  get freeSlots (): number { return this.#freeSlots.length }
  get (tunnelIp: number): PeerRemote | undefined { return this.#byTunnelIp.get(tunnelIp) }
  byPeerId (peerId: number): PeerRemote | undefined { return this.#byPeerId.get(peerId) }
  bySlot (slot: number): PeerRemote | undefined { return this.#bySlot.get(slot) }
  values (): IterableIterator<PeerRemote> { return this.#byTunnelIp.values() }
  tunnelIps (): number[] { return [...this.#byTunnelIp.keys()] }

  /** The peer with a direct-path candidate at this endpoint key (wire/addr.ts endpointKey), if any. */
  byCandidate (key: number): PeerRemote | undefined {
    for (const p of this.#byTunnelIp.values()) if (p.path?.candidates.get(key) !== undefined) return p
    return undefined
  }

  /**
   * A new peer on the lowest free slot: `make` builds it (its peerId is
   * indexed by setPeerId, not here). Null when every slot is taken. The
   * tunnel IP must not be in the table.
   */
  add (tunnelIp: number, make: (slot: number) => PeerRemote): PeerRemote | null {
    const slot = this.#freeSlots.pop()
    if (slot === undefined) return null
    const p = make(slot)
    this.#byTunnelIp.set(tunnelIp, p)
    this.#bySlot.set(slot, p)
    return p
  }

  /** The server (re)assigned the peer's id. */
  setPeerId (p: PeerRemote, peerId: number): void {
    if (this.#byPeerId.get(p.peerId) === p) this.#byPeerId.delete(p.peerId)
    ;(p as { peerId: number }).peerId = peerId
    this.#byPeerId.set(peerId, p)
  }

  /** Forget a peer everywhere and free its slot; returns it (the caller tears down its sessions and route). */
  remove (tunnelIp: number): PeerRemote | undefined {
    const p = this.#byTunnelIp.get(tunnelIp)
    if (p === undefined) return undefined
    this.#byTunnelIp.delete(tunnelIp)
    this.#bySlot.delete(p.slot)
    if (this.#byPeerId.get(p.peerId) === p) this.#byPeerId.delete(p.peerId)
    this.#freeSlots.push(p.slot)
    return p
  }
}
