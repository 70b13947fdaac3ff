/**
 * End-to-end sessions between this client and another (a peer), set up
 * through the server's relay so the server never holds their keys
 * (docs/PROTOCOL.md §7): the initiator's init, the responder's response and
 * pending session, the initiator's Confirm; retries, rekey and expiry. Owned
 * by the ClientController, which finds the peer (by relay envelope, slot or
 * address) and routes its handshake messages and Confirms here.
 *
 *   initiator                          responder
 *     start ──init (relayed)──────────▶ onInit: pending session, recv key installed
 *     onResponse ◀──response (relayed)──┘
 *       current session, keys installed
 *       └──Confirm (sealed, relayed)──▶ onConfirm: pending → current, send key installed
 *
 * Either side tells the peer's DirectPath when its session is up.
 *
 * Identity: the server lists each peer's static key (PeerUpdate); an init
 * is answered only when its static key (Noise message 1, learned before
 * any DH) is the key listed for the peer the relay envelope names, and a
 * response is accepted only from that key. Anything else is dropped,
 * counted (peerKeyMismatch) and logged at most once a minute per peer.
 */
import * as C from './constants.js'
import { consumeInit, consumeResponse, createInit, createResponse } from '../crypto/noise.js'
import { decodeInitPayload, encodeInitPayload, encodeRespPayload, RESP_OK } from '../wire/payloads.js'
import { encodeControl, CTL_CONFIRM } from '../wire/control.js'
import { intToIp } from '../wire/addr.js'
import type { ControlInput } from './port.js'
import type { ClientContext } from './client-context.js'
import type { PeerRemote } from './peer-table.js'
import { CookieGenerator, checkMac1, macKeys, type MacKeys } from '../crypto/cookie.js'
import { stripMacs } from '../wire/cookie.js'
import { confirmPending, expireSessions, installCurrent, newSession, sameBytes, sessionsOf, type Session } from './session.js'
import { PerKeyInterval } from './rate-limit.js'
import { fingerprint } from '../identity/key-text.js'

export class PeerSessions {
  readonly #ctx: ClientContext
  /** mac1 on our inits and checked on the peers' (docs/PROTOCOL.md §4.6); peers send no cookie replies, so mac2 stays zero. */
  readonly #macKeys: MacKeys
  readonly #macs: CookieGenerator
  readonly #counters: { peerKeyMismatch: number }
  readonly #mismatchLog = new PerKeyInterval(C.WRONG_KEY_LOG_INTERVAL, C.RATE_TABLE_MAX)

  constructor (ctx: ClientContext, counters: { peerKeyMismatch: number }) {
    this.#ctx = ctx
    this.#counters = counters
    this.#macKeys = macKeys(ctx.opt.psk)
    this.#macs = new CookieGenerator(this.#macKeys)
  }

  /** Is `key` the key the server listed for `p`? Counts and logs (rate-limited) when not. */
  #keyMatches (p: PeerRemote, key: Uint8Array, what: string, now: number): boolean {
    if (sameBytes(key, p.key)) return true
    this.#counters.peerKeyMismatch++
    if (this.#mismatchLog.allow(p.tunnelIp, now)) {
      this.#ctx.log.warn(`dropped a peer ${what} from ${intToIp(p.tunnelIp)}: it was made with node key ${fingerprint(key)}, but the server lists ${fingerprint(p.key)} for that address (an impostor, or a stale peer list; logged once a minute)`, { peer: intToIp(p.tunnelIp) })
    }
    return false
  }

  /** The dataplane has packets for the peer: start a session unless one exists or is being set up. */
  onNeedSession (p: PeerRemote, now: number): void {
    if (p.sessions.hs.state === 'initSent' || p.sessions.current !== null) return
    this.start(p, now)
  }

  /**
   * Data from the peer for a session we do not have. Mostly stale packets of
   * a session we dropped (harmless). But when we have no session at all with
   * the sender, the two sides disagree: we forgot the peer (e.g. a peer list
   * sent while it was re-registering after a server restart lacked it) while
   * it still sends on the old session, and would do so until its rekey
   * (120 s) — seen as a tunnel that never came back after a server restart.
   * Then we start a new handshake ourselves (at most one per
   * PEER_RESYNC_INTERVAL).
   */
  onUnknownIndex (p: PeerRemote, now: number): void {
    if (p.sessions.current !== null || p.sessions.pending !== null || p.sessions.hs.state === 'initSent') return
    if (now - p.lastResync < C.PEER_RESYNC_INTERVAL) return
    p.lastResync = now
    this.#ctx.log.debug('data from a peer on a session we do not have; starting a new one', { peer: intToIp(p.tunnelIp) })
    this.start(p, now)
  }

  /** Send an init to the peer (a new handshake, or the next try of the running one). */
  start (p: PeerRemote, now: number): void {
    const { opt, indexes } = this.#ctx
    const localIndex = indexes.allocate(p)
    const payload = encodeInitPayload({
      role: 2, prefixLen: opt.prefix, mtu: opt.mtu, tunnelIp: opt.tunnelIp, timestamp: this.#ctx.timestamp(), lan: []
    })
    const { message, state } = createInit(opt.psk, opt.nodeKey, localIndex, payload)
    if (p.sessions.hs.state === 'initSent') indexes.delete(p.sessions.hs.localIndex)
    const tries = p.sessions.hs.state === 'initSent' ? p.sessions.hs.tries + 1 : 1
    p.sessions.hs = { state: 'initSent', localIndex, initiator: state, sentAt: now, tries }
    this.#ctx.sendRelayed(p.peerId, this.#macs.addMacs(message, now))
  }

  /** The peer's init, relayed by the server (which vouches for the sender's id). */
  onInit (p: PeerRemote, input: ControlInput): void {
    const { opt, indexes, port } = this.#ctx
    const now = this.#ctx.clock.now()
    let hs
    if (!checkMac1(this.#macKeys, input.bytes)) return
    try { hs = consumeInit(opt.psk, opt.nodeKey, stripMacs(input.bytes)) } catch { return }
    // The relay names the sender (peerId); its static key must be the one the server listed for it.
    if (!this.#keyMatches(p, hs.remoteStatic, 'handshake', now)) return
    let req
    try { req = decodeInitPayload(hs.payload) } catch { return }
    if (req.role !== 2 || req.tunnelIp !== p.tunnelIp) return
    if (req.timestamp <= p.lastInitTs) return // replayed init (per static key: p.key is fixed for p)
    p.lastInitTs = req.timestamp
    const localIndex = indexes.allocate(p)
    const { message, keys } = createResponse(hs.state, localIndex, encodeRespPayload({
      status: RESP_OK, prefixLen: opt.prefix, mtu: opt.mtu, tunnelIp: opt.tunnelIp, peerId: 0, observedIp: 0, observedPort: 0
    }))
    const session = newSession(localIndex, hs.senderIndex, keys, now, false)
    if (p.sessions.pending) this.#ctx.drop(p.sessions.pending)
    p.sessions.pending = session
    port.setRecvKey(p.slot, localIndex, keys.dataRecv)
    this.#ctx.sendRelayed(p.peerId, message)
  }

  /** The peer's response to our init, relayed. */
  onResponse (p: PeerRemote, input: ControlInput): void {
    const { port } = this.#ctx
    const ss = p.sessions
    if (ss.hs.state !== 'initSent') return
    let res
    try { res = consumeResponse(ss.hs.initiator, input.bytes) } catch { return }
    const now = this.#ctx.clock.now()
    if (!this.#keyMatches(p, res.remoteStatic, 'handshake response', now)) {
      // The state is spent: start over (the genuine peer answers the next try).
      this.#ctx.indexes.delete(ss.hs.localIndex)
      ss.hs = { state: 'idle' }
      return
    }
    const localIndex = ss.hs.localIndex
    ss.hs = { state: 'idle' }
    const session = newSession(localIndex, res.senderIndex, res.keys, now, true)
    installCurrent(ss, session, now, this.#ctx.drop)
    port.setRecvKey(p.slot, localIndex, session.keys.dataRecv)
    port.setSendKey(p.slot, session.keys.dataSend, session.remoteIndex)
    this.#ctx.sendRelayed(p.peerId, session.ctl.seal(encodeControl({ kind: CTL_CONFIRM })))
    this.#ctx.log.debug('session with peer established', { peer: intToIp(p.tunnelIp) })
    p.path?.setSession(true, now)
  }

  /** A Confirm on one of the peer's sessions: if it is the pending one, it becomes current. */
  onConfirm (p: PeerRemote, s: Session, now: number): void {
    if (p.sessions.pending !== s) return
    confirmPending(p.sessions, s, now, this.#ctx.drop)
    this.#ctx.port.setSendKey(p.slot, s.keys.dataSend, s.remoteIndex)
    this.#ctx.log.debug('session with peer established', { peer: intToIp(p.tunnelIp) })
    p.path?.setSession(true, now)
  }

  /** Handshake retries (give up after PEER_HANDSHAKE_TRIES), rekey (initiator only), expiry. */
  tick (p: PeerRemote, now: number): void {
    const ss = p.sessions
    if (ss.hs.state === 'initSent' && now - ss.hs.sentAt >= (ss.hs.tries === 1 && p.path !== null ? C.PEER_FIRST_RETRY : C.HANDSHAKE_RETRY)) {
      if (ss.hs.tries >= C.PEER_HANDSHAKE_TRIES) {
        this.#ctx.indexes.delete(ss.hs.localIndex)
        ss.hs = { state: 'idle' }
      } else {
        this.start(p, now)
      }
    }
    const cur = ss.current
    if (cur !== null && cur.initiator && now - cur.createdAt > C.REKEY_AFTER && ss.hs.state === 'idle') this.start(p, now)
    expireSessions(ss, now, this.#ctx.drop, true)
    if (ss.current === null) p.path?.setSession(false, now)
  }

  /** The peer is gone: drop its sessions and a handshake in flight. */
  forget (p: PeerRemote): void {
    for (const s of sessionsOf(p.sessions)) this.#ctx.drop(s)
    if (p.sessions.hs.state === 'initSent') this.#ctx.indexes.delete(p.sessions.hs.localIndex)
  }
}
