/**
 * Which peers the client has: the server's peer list and the address cache
 * in, PeerTable entries (each with its DirectPath) and dataplane routes out.
 *
 *   peer list (peer-list.ts) ─▶ upsert: a new peer, or its new id/endpoint (another key at
 *                               its address: a new peer) ─▶ route, DirectPath.setAdvertised
 *                            ─▶ unlisted: removed at once, or after UNLISTED_GRACE (client.ts's tick)
 *   address cache (peer-cache.ts) ─▶ loadCache at the first tick: cached peers join with their
 *                               last confirmed endpoints; cacheTick notes confirmed direct paths
 *   a direct path found or lost ─▶ route: direct to the confirmed candidate, else through the relay
 *   remove ─▶ sessions forgotten (peer-sessions.ts), DirectPath destroyed, dataplane slot freed
 *
 * Main thread only; the ClientController (client.ts) is the only caller.
 */
import * as C from './constants.js'
import { emptySessionSet, sameBytes } from './session.js'
import type { PeerEntry } from '../wire/control.js'
import { intToIp } from '../wire/addr.js'
import { DirectPath, type PathIo } from './direct-path.js'
import { NO_ATTRS } from '../wire/attrs.js'
import { peerPrefixes } from './peer-prefixes.js'
import { peerCandidates6, peerEndpoint } from './endpoint6.js'
import type { PeerRemote, PeerTable } from './peer-table.js'
import type { ClientContext } from './client-context.js'

export class PeerMembership {
  readonly #ctx: ClientContext
  readonly #peers: PeerTable
  /** A new peer's DirectPath's window on the world (client.ts). */
  readonly #pathIo: (p: PeerRemote) => PathIo
  /** Forget a removed peer's sessions (peer-sessions.ts). */
  readonly #forgetSessions: (p: PeerRemote) => void
  /** Monotonic ms of the last pass noting confirmed peers in the cache. */
  #lastCacheNote = -Infinity

  constructor (ctx: ClientContext, peers: PeerTable, pathIo: (p: PeerRemote) => PathIo, forgetSessions: (p: PeerRemote) => void) {
    this.#ctx = ctx
    this.#peers = peers
    this.#pathIo = pathIo
    this.#forgetSessions = forgetSessions
  }

  // ── the server's list ─────────────────────────────────────────────────

  /** A peer-list entry: the peer joins (or its key changed: it joins anew), its id and endpoint are updated, its route set. */
  upsert (e: PeerEntry): void {
    const now = this.#ctx.clock.now()
    // A peer the server sees over IPv6: 0:0 and its address in ENDPOINT6, which becomes a handle here (endpoint6.ts).
    const { ip: publicIp, port: publicPort } = peerEndpoint(this.#ctx.v6, e.publicIp, e.publicPort, e.attrs?.endpoint6)
    let p = this.#peers.get(e.tunnelIp)
    if (p !== undefined && !sameBytes(p.key, e.key)) {
      // Another node key at this address (the server's operator freed it): a new peer, not the old one's sessions.
      this.remove(e.tunnelIp)
      p = undefined
    }
    if (p === undefined) {
      const added = this.#peers.add(e.tunnelIp, (slot) => this.#newPeer(slot, e.peerId, e.tunnelIp, new Uint8Array(e.key), publicIp, publicPort, now, false))
      if (added === null) {
        this.#ctx.log.warn('too many peers; ignoring one', { peer: intToIp(e.tunnelIp) })
        return
      }
      p = added
      this.#ctx.log.debug('peer joined', { peer: intToIp(e.tunnelIp) })
    }
    this.#peers.setPeerId(p, e.peerId)
    p.fromCache = false
    p.unlistedAt = null
    p.publicIp = publicIp
    p.publicPort = publicPort
    p.attrs = e.attrs ?? NO_ATTRS
    this.route(p)
    // Its IPv6 candidates (CANDIDATE6) are probed like its LAN ones.
    const c6 = peerCandidates6(this.#ctx.v6, e.attrs?.candidates6)
    p.path?.setAdvertised(publicIp === 0 ? null : { ip: publicIp, port: publicPort }, c6.length === 0 ? e.lan : [...e.lan, ...c6], now)
  }

  #newPeer (slot: number, peerId: number, tunnelIp: number, key: Uint8Array, publicIp: number, publicPort: number, now: number, fromCache: boolean): PeerRemote {
    const peer: PeerRemote = {
      slot, peerId, tunnelIp, key, publicIp, publicPort, sessions: emptySessionSet(), fromCache, unlistedAt: null,
      lastInitTs: 0, path: null, lastTx: 0, lastRx: 0, nextSessionTry: now + C.PROACTIVE_SESSION_DELAY, lastResync: -Infinity, attrs: NO_ATTRS
    }
    if (this.#ctx.opt.p2p === true) peer.path = new DirectPath(this.#pathIo(peer), this.#ctx.opt.tunnelIp < tunnelIp, now, this.#ctx.random)
    return peer
  }

  /**
   * The server's list no longer has the peer. An explicit removal (it left,
   * or was revoked) applies at once. A peer merely absent from a full list
   * while we talk to it directly is kept for UNLISTED_GRACE: after a server
   * restart the first clients to register get a list without the others
   * (not registered yet), and dropping a working direct path for that
   * would lose traffic the outage did not. Not relisted by then: removed.
   */
  unlisted (tunnelIp: number, explicit: boolean): void {
    const p = this.#peers.get(tunnelIp)
    if (p === undefined) return
    if (explicit || p.fromCache || p.sessions.current === null || (p.path?.directCandidate ?? null) === null) { this.remove(tunnelIp); return }
    p.unlistedAt ??= this.#ctx.clock.now()
  }

  /** The peer goes: out of the cache and the table, sessions forgotten, its DirectPath destroyed, its slot freed. */
  remove (tunnelIp: number): void {
    this.#ctx.opt.peerCache?.forget(tunnelIp)
    const p = this.#peers.remove(tunnelIp)
    if (p === undefined) return
    this.#forgetSessions(p)
    p.path?.destroy(this.#ctx.clock.now())
    this.#ctx.port.removePeer(p.slot)
    this.#ctx.log.debug('peer left', { peer: intToIp(tunnelIp) })
  }

  /** Install the peer's route (with its prefixes: peer-prefixes.ts): direct to its confirmed candidate, else through the relay. */
  route (p: PeerRemote): void {
    const c = p.path?.directCandidate ?? null
    const prefixes = peerPrefixes(p.attrs)
    if (c !== null) {
      this.#ctx.port.setPeer({ slot: p.slot, peerId: p.peerId, tunnelIp: p.tunnelIp, endpointIp: c.ip, endpointPort: c.port, relayVia: false, sock: c.sock, prefixes })
    } else {
      this.#ctx.port.setPeer({ slot: p.slot, peerId: p.peerId, tunnelIp: p.tunnelIp, endpointIp: this.#ctx.opt.serverIp, endpointPort: this.#ctx.opt.serverPort, relayVia: true, prefixes })
    }
  }

  // ── the address cache (peer-cache.ts) ───────────────────────────────────

  /**
   * Peers from the address cache join the table at once, with their last
   * confirmed endpoints as candidates: we start the session with them
   * ourselves (straight there while the server is silent). The server's
   * first full peer list replaces them (a peer it no longer lists goes).
   * Run at the first tick, not in the constructor: the daemon starts the
   * dataplane after building the controller, and routes set before that
   * are lost (seen: the first session after a restart carried no data).
   */
  loadCache (): void {
    const cache = this.#ctx.opt.peerCache
    if (cache == null || this.#ctx.opt.p2p !== true) return
    const now = this.#ctx.clock.now()
    const cached = cache.load(this.#ctx.clock.wallNow())
    for (const e of cached) {
      const key = e.key
      if (key === null || e.tunnelIp === this.#ctx.opt.tunnelIp || this.#peers.get(e.tunnelIp) !== undefined) continue
      // The handshake checks the peer's static key against the cached one (peer-sessions.ts), as against a listed one.
      const p = this.#peers.add(e.tunnelIp, (slot) => this.#newPeer(slot, 0, e.tunnelIp, key, 0, 0, now, true))
      if (p === null) break
      p.attrs = { tunnel6: e.tunnel6 ?? null, routes: [] }
      p.path?.remember(e.endpoints)
      this.route(p)
    }
    if (cached.length > 0) this.#ctx.log.info('address cache loaded', { peers: this.#peers.size })
  }

  /** Note the peers with a confirmed direct path in the cache (once a second), and write it when due. */
  cacheTick (now: number): void {
    const cache = this.#ctx.opt.peerCache
    if (cache == null) return
    const wall = this.#ctx.clock.wallNow()
    if (now - this.#lastCacheNote >= 1000) {
      this.#lastCacheNote = now
      for (const p of this.#peers.values()) {
        if (p.path === null || p.sessions.current === null || p.path.directCandidate === null) continue
        cache.note(p.tunnelIp, p.key, p.path.confirmedEndpoints(now), wall, p.attrs.tunnel6)
      }
    }
    cache.saveIfDue(now, wall)
  }
}
