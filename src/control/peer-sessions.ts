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
 *
 * The handshake is end to end, so it needs the server only as a carrier:
 * while a direct path is confirmed, inits, responses and Confirms go over it
 * (a rekey never touches the server, so direct peers outlive a server
 * outage); an answer goes back where its request came from; otherwise they
 * go through the relay, and while the server is not answering also straight
 * to the peer's last confirmed endpoints (DirectPath.handshakeEndpoints:
 * after an expired session, or from the address cache after a restart).
 * A direct init is matched to a peer by its source (a candidate endpoint) or
 * by its static key; either way the key check below applies.
 */
import * as C from './constants.js'
import { consumeInit, consumeResponse, createInit, createResponse } from '../crypto/noise.js'
import { decodeInitPayload, decodeRespPayload, encodeInitPayload, encodeRespPayload, RESP_OK } from '../wire/payloads.js'
import { NO_ATTRS, type NodeAttrs } from '../wire/attrs.js'
import { formatIp6, type IpPrefix } from '../wire/prefix.js'
import { agreedFec, fecAttrs } from './fec-negotiation.js'
import { encodeControl, CTL_CONFIRM } from '../wire/control.js'
import { intToIp } from '../wire/addr.js'
import type { ControlInput } from './port.js'
import type { ClientContext } from './client-context.js'
import type { Endpoint } from './nat.js'
import type { PeerRemote, PeerTable } from './peer-table.js'
import { endpointKey } from '../wire/addr.js'
import { CookieGenerator, checkMac1, macKeys, type MacKeys } from '../crypto/cookie.js'
import { stripMacs } from '../wire/cookie.js'
import { confirmPending, expireSessions, installCurrent, newSession, sameBytes, sessionsOf, type Session } from './session.js'
import { PerKeyInterval } from './rate-limit.js'
import { fingerprint } from '../identity/key-text.js'

/** Where a handshake message came from straight (not relayed), with the socket it arrived on; null for the relay. */
export type DirectFrom = (Endpoint & { sock: number }) | null

export class PeerSessions {
  readonly #ctx: ClientContext
  /** mac1 on our inits and checked on the peers' (docs/PROTOCOL.md §4.6); peers send no cookie replies, so mac2 stays zero. */
  readonly #macKeys: MacKeys
  readonly #macs: CookieGenerator
  readonly #counters: { peerKeyMismatch: number }
  readonly #mismatchLog = new PerKeyInterval(C.WRONG_KEY_LOG_INTERVAL, C.RATE_TABLE_MAX)
  /** Is the server answering (relayed messages can arrive)? */
  readonly #serverUp: () => boolean

  constructor (ctx: ClientContext, counters: { peerKeyMismatch: number }, serverUp: () => boolean = () => true) {
    this.#ctx = ctx
    this.#counters = counters
    this.#macKeys = macKeys(ctx.opt.psk)
    this.#macs = new CookieGenerator(this.#macKeys)
    this.#serverUp = serverUp
  }

  /** Send a handshake message or Confirm to the peer: back to `to`, else over the direct path, else relayed (and to its last confirmed endpoints while the server is down). */
  #send (p: PeerRemote, bytes: Uint8Array, to: DirectFrom): void {
    const port = this.#ctx.port
    const direct = to ?? p.path?.directCandidate ?? null
    if (direct !== null) {
      port.sendControl(bytes, direct.ip, direct.port, direct.sock)
      return
    }
    this.#ctx.sendRelayed(p.peerId, bytes)
    if (this.#serverUp()) return
    for (const ep of p.path?.handshakeEndpoints() ?? []) port.sendControl(bytes, ep.ip, ep.port, ep.sock)
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

  /**
   * Does the IPv6 tunnel address a peer's handshake claims (`attrs`) match
   * the one the server listed for it? A mismatch is refused like a key
   * mismatch (same counter), with its own log line.
   */
  #tunnel6Matches (p: PeerRemote, attrs: NodeAttrs | undefined, what: string, now: number): boolean {
    const claimed = (attrs ?? NO_ATTRS).tunnel6
    const listed = p.attrs.tunnel6
    if (claimed === null ? listed === null : listed !== null && sameBytes(claimed.addr, listed.addr)) return true
    this.#counters.peerKeyMismatch++
    if (this.#mismatchLog.allow(p.tunnelIp, now)) {
      const show = (x: IpPrefix | null): string => x === null ? 'none' : formatIp6(x.addr)
      this.#ctx.log.warn(`dropped a peer ${what} from ${intToIp(p.tunnelIp)}: it claims the IPv6 address ${show(claimed)}, but the server lists ${show(listed)} for that node (an impostor, or a stale peer list; logged once a minute)`, { peer: intToIp(p.tunnelIp) })
    }
    return false
  }

  /** The dataplane has packets for the peer: start a session unless one exists or is being set up. */
  onNeedSession (p: PeerRemote, now: number): void {
    if (p.sessions.hs.state === 'initSent' || p.sessions.current !== null) return
    this.start(p, now)
  }

  /** The send key reached REKEY_AFTER_MESSAGES: a new handshake now, whoever initiated the current session. */
  rekey (p: PeerRemote, now: number): void {
    if (p.sessions.hs.state !== 'initSent') this.start(p, now)
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
      role: 2, prefixLen: opt.prefix, mtu: opt.mtu, tunnelIp: opt.tunnelIp, timestamp: this.#ctx.timestamp(), lan: [],
      attrs: { tunnel6: opt.tunnel6 ?? null, routes: [], fec: fecAttrs(opt.fec)?.fec ?? null }
    })
    const { message, state } = createInit(opt.psk, opt.nodeKey, localIndex, payload)
    if (p.sessions.hs.state === 'initSent') indexes.delete(p.sessions.hs.localIndex)
    const tries = p.sessions.hs.state === 'initSent' ? p.sessions.hs.tries + 1 : 1
    p.sessions.hs = { state: 'initSent', localIndex, initiator: state, sentAt: now, tries }
    this.#send(p, this.#macs.addMacs(message, now), null)
  }

  /**
   * A peer's init sent straight to us (its rekey over the direct path, or a
   * handshake while the server is down): from one of the peer's candidate
   * endpoints, or from a new one (the peer restarted behind a new NAT
   * port): then the peer whose static key made it (message 1 needs no DH
   * to learn it). False when no peer matches (the caller counts it).
   */
  onDirectInit (peers: PeerTable, input: ControlInput): boolean {
    const p = peers.byCandidate(endpointKey(input.ip, input.port)) ?? this.#peerOfInit(peers, input.bytes)
    if (p === undefined) return false
    this.onInit(p, input, { ip: input.ip, port: input.port, sock: input.sock ?? 0 })
    return true
  }

  #peerOfInit (peers: PeerTable, bytes: Uint8Array): PeerRemote | undefined {
    let key: Uint8Array
    if (!checkMac1(this.#macKeys, bytes)) return undefined
    try { key = consumeInit(this.#ctx.opt.psk, this.#ctx.opt.nodeKey, stripMacs(bytes)).remoteStatic } catch { return undefined }
    for (const p of peers.values()) if (sameBytes(p.key, key)) return p
    return undefined
  }

  /** A response to one of our peer inits sent straight back: its receiver index names the handshake (and so the peer). False when it names none. */
  onDirectResponse (peers: PeerTable, input: ControlInput): boolean {
    const b = input.bytes
    const idx = b.length >= 12 ? new DataView(b.buffer, b.byteOffset, b.length).getUint32(8, true) : 0
    const owner = this.#ctx.indexes.get(idx) as Partial<PeerRemote> | undefined
    const p = owner?.slot === undefined ? undefined : peers.bySlot(owner.slot)
    if (p === undefined || p !== owner) return false
    this.onResponse(p, input, { ip: input.ip, port: input.port, sock: input.sock ?? 0 })
    return true
  }

  /** The peer's init: relayed by the server (which vouches for the sender's id), or straight `from` the peer (onDirectInit). */
  onInit (p: PeerRemote, input: ControlInput, from: DirectFrom = null): void {
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
    if (!this.#tunnel6Matches(p, req.attrs, 'handshake', now)) return
    if (req.timestamp <= p.lastInitTs) return // replayed init (per static key: p.key is fixed for p)
    p.lastInitTs = req.timestamp
    const localIndex = indexes.allocate(p)
    const fec = agreedFec(opt.fec, req.attrs)
    const { message, keys } = createResponse(hs.state, localIndex, encodeRespPayload({
      status: RESP_OK, prefixLen: opt.prefix, mtu: opt.mtu, tunnelIp: opt.tunnelIp, peerId: 0, observedIp: 0, observedPort: 0,
      attrs: { tunnel6: opt.tunnel6 ?? null, routes: [], fec: fecAttrs(fec)?.fec ?? null }
    }))
    const session = newSession(localIndex, hs.senderIndex, keys, now, false)
    session.fec = fec
    if (p.sessions.pending) this.#ctx.drop(p.sessions.pending)
    p.sessions.pending = session
    port.setRecvKey(p.slot, localIndex, keys.dataRecv, fec !== null)
    this.#send(p, message, from)
  }

  /** The peer's response to our init, relayed or straight `from` the peer. */
  onResponse (p: PeerRemote, input: ControlInput, from: DirectFrom = null): void {
    const { port } = this.#ctx
    const ss = p.sessions
    if (ss.hs.state !== 'initSent') return
    let res
    try { res = consumeResponse(ss.hs.initiator, input.bytes) } catch { return }
    const now = this.#ctx.clock.now()
    let resp
    try { resp = decodeRespPayload(res.payload) } catch { resp = null }
    if (resp === null || !this.#keyMatches(p, res.remoteStatic, 'handshake response', now) || !this.#tunnel6Matches(p, resp.attrs, 'handshake response', now)) {
      // The state is spent: start over (the genuine peer answers the next try).
      this.#ctx.indexes.delete(ss.hs.localIndex)
      ss.hs = { state: 'idle' }
      return
    }
    const localIndex = ss.hs.localIndex
    ss.hs = { state: 'idle' }
    const session = newSession(localIndex, res.senderIndex, res.keys, now, true)
    session.fec = agreedFec(this.#ctx.opt.fec, resp.attrs)
    installCurrent(ss, session, now, this.#ctx.drop)
    port.setRecvKey(p.slot, localIndex, session.keys.dataRecv, session.fec !== null)
    port.setSendKey(p.slot, session.keys.dataSend, session.remoteIndex, session.fec)
    this.#send(p, session.ctl.seal(encodeControl({ kind: CTL_CONFIRM })), from)
    this.#ctx.log.debug('session with peer established', { peer: intToIp(p.tunnelIp) })
    p.path?.setSession(true, now)
  }

  /** A Confirm on one of the peer's sessions: if it is the pending one, it becomes current. */
  onConfirm (p: PeerRemote, s: Session, now: number): void {
    if (p.sessions.pending !== s) return
    confirmPending(p.sessions, s, now, this.#ctx.drop)
    this.#ctx.port.setSendKey(p.slot, s.keys.dataSend, s.remoteIndex, s.fec ?? null)
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
    expireSessions(ss, now, this.#ctx.drop, true, () => { this.#ctx.port.clearSendKey(p.slot) })
    if (ss.current === null) p.path?.setSession(false, now)
  }

  /** The peer is gone: drop its sessions and a handshake in flight. */
  forget (p: PeerRemote): void {
    for (const s of sessionsOf(p.sessions)) this.#ctx.drop(s)
    if (p.sessions.hs.state === 'initSent') this.#ctx.indexes.delete(p.sessions.hs.localIndex)
  }
}
