/**
 * The server, as this client sees it: registration (the inits and the
 * server's answers, driving the state machine of registration.ts), the
 * session with it (rekey, expiry), keepalive Pings and their Pongs (RTT, our
 * public endpoint), NAT checks to its second port, its Bye. Owned by the
 * ClientController, which routes the server's datagrams here and is told,
 * through ServerLinkHooks, what concerns the rest of the client (our endpoint
 * as the server sees it, NAT-check answers, peer lists).
 *
 *   tick ──▶ init (registration, retry with backoff, rekey) ──▶ server
 *   server ──response──▶ onResponse: OK → session current, Confirm, Ping; refused → rejected
 *   server ──reject───▶ onReject: wrong key → rejected/reconnecting; lost session → init at once
 *   server ──sealed───▶ onMessage: Pong (keepalive or NAT check), PeerUpdate, Bye
 */
import { candidates6Attr } from './endpoint6.js'
import * as C from './constants.js'
import * as R from './registration.js'
import { consumeResponse, createInit } from '../crypto/noise.js'
import { CookieGenerator, macKeys } from '../crypto/cookie.js'
import { decodeReject, REJECT_AUTH_FAILED, REJECT_UNKNOWN_SESSION, REJECT_VERSION } from '../wire/messages.js'
import { PROTOCOL_VERSION } from '../wire/constants.js'
import { decodeRespPayload, encodeInitPayload, RESP_OK } from '../wire/payloads.js'
import { NO_ATTRS, type NodeAttrs } from '../wire/attrs.js'
import { formatIp6 } from '../wire/prefix.js'
import { peerPrefixes } from './peer-prefixes.js'
import { encodeControl, CTL_BYE, CTL_CONFIRM, CTL_PEER_UPDATE, CTL_PING, CTL_PONG, type ControlMessage, type PeerUpdate } from '../wire/control.js'
import { formatEndpoint, intToIp } from '../wire/addr.js'
import type { ControlInput, PeerRoute } from './port.js'
import type { PeerStatus } from './status.js'
import type { Endpoint } from './nat.js'
import { SERVER_SLOT, type ClientContext, type SessionOwner } from './client-context.js'
import { describeSessions, emptySessionSet, expireSessions, installCurrent, newSession, retryDelay, type Session, type SessionSet } from './session.js'
import { RTT_WARMUP, RTT_WARMUP_GAP, RttWindow, lastSeen } from './rtt.js'
import { fingerprint } from '../identity/key-text.js'
import { withMapped } from './client-nat.js'
import { wireIp, wirePort } from '../wire/endpoint-handle.js'

/**
 * The server counts as not answering after this much silence: two keepalive
 * intervals plus a second, so one lost Ping (or Pong) is not reported, and
 * a dead server is shown within three keepalives (status `state`
 * 'unresponsive', `problem` saying since when). Reconnecting starts later,
 * after max(15 s, 3 keepalives) (tick()).
 */
export function notAnsweringAfter (keepaliveSec: number): number {
  return 2 * keepaliveSec * 1000 + 1000
}

/** "2026-12-05T08:14:05Z": a wall-clock instant to the second. */
function isoSecond (ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z')
}

/** What the server tells that concerns the rest of the client. */
export interface ServerLinkHooks {
  /** The list version we hold (our Pings carry it). */
  peerListVersion(): number
  /** A registration (or reconnection) succeeded; called before the first Ping on the new session. */
  registered(now: number): void
  /** The server's main port sees us at ip:port (registration response, keepalive Pong). */
  observed(ip: number, port: number, now: number): void
  /** A Pong from the NAT-check port: how the server's second port sees us. */
  natCheckAnswer(txid: number, observed: Endpoint, now: number): void
  peerUpdate(msg: PeerUpdate): void
  /** The server answered our init with Reject VERSION (counted). */
  versionRejected(): void
  /** A registration response came with another key than the pinned one (counted). */
  serverKeyMismatch(): void
}

export class ServerLink implements SessionOwner {
  readonly #ctx: ClientContext
  readonly #hooks: ServerLinkHooks
  readonly sessions: SessionSet = emptySessionSet()
  /** The server's static public key from its newest authenticated response, or null before one. */
  serverKey: Uint8Array | null = null
  /** What the server said about itself in its last response (RespPayload attrs: its IPv6 tunnel address, its routes). */
  serverAttrs: NodeAttrs = NO_ATTRS
  /** The server's tunnel address (0 before the first registration). */
  #tunnelIp = 0
  /** When the server last answered (a Pong or a PeerUpdate), monotonic ms; 0 before the first. */
  #lastPong = 0
  /** Keepalive round trips (send → Pong read), control thread only. */
  readonly #rtt = new RttWindow()
  /** Outstanding keepalive Pings: txid → sent at (at most 16). */
  readonly #pings = new Map<number, number>()
  #reg: R.Registration
  #problem: string | null = null
  #lastPingAt = 0
  /** Txids of our Pings and NAT checks. */
  #txid = 1
  #lastReregister = -Infinity
  /** The "not answering" warning was logged and the server has not answered since. */
  #silenceLogged = false
  #lastLostPing = -Infinity

  constructor (ctx: ClientContext, hooks: ServerLinkHooks) {
    this.#ctx = ctx
    this.#hooks = hooks
    this.#reg = R.initialRegistration(ctx.clock.now())
  }

  /** The registration state, or 'unresponsive' when registered but the server stopped answering (notAnsweringAfter). */
  get state (): R.RegistrationState | 'unresponsive' {
    if (this.#reg.state === 'registered' && this.#silentFor(this.#ctx.clock.now()) !== null) return 'unresponsive'
    return R.describe(this.#reg)
  }

  /** A set problem (refused, wrong key, no answer to registration), else the server's silence, else null. */
  get problem (): string | null {
    if (this.#problem !== null) return this.#problem
    const now = this.#ctx.clock.now()
    const silent = this.#silentFor(now)
    if (silent === null) return null
    const since = isoSecond(this.#ctx.clock.wallNow() - silent)
    const reconnectIn = Math.max(0, Math.round((this.#reconnectAfter() - silent) / 1000))
    return `the server ${this.#ctx.opt.serverName} has not answered since ${since} (${Math.round(silent / 1000)} s; keepalive Pings every ${this.#ctx.opt.keepaliveSec} s go unanswered)` +
      (this.#reg.state === 'registered' ? `; reconnecting in ${reconnectIn} s unless it answers` : '; trying to reconnect')
  }

  /** How long the server has been silent, ms, when that counts as not answering (and we had heard from it once), else null. */
  #silentFor (now: number): number | null {
    if (this.#lastPong === 0) return null
    const silent = now - this.#lastPong
    return silent > notAnsweringAfter(this.#ctx.opt.keepaliveSec) ? silent : null
  }

  /** Silence after which the client registers again, ms. */
  #reconnectAfter (): number {
    return Math.max(15_000, 3 * this.#ctx.opt.keepaliveSec * 1000)
  }

  /** The server's tunnel address (0 before the first registration). */
  get tunnelIp (): number { return this.#tunnelIp }

  /** Lowest recent keepalive round trip, ms, or null before the first Pong. */
  get rttMs (): number | null { return this.#rtt.min }
  /** The server session is usable (registered, or reconnecting with the old keys). */
  get registered (): boolean { return R.isRegistered(this.#reg) }
  /** Registration or a rekey is under way: the client ticks finely. */
  get busy (): boolean { return this.#reg.state !== 'registered' || this.sessions.hs.state !== 'idle' }

  #retryDelay (attempts: number): number {
    return retryDelay(attempts, C.HANDSHAKE_RETRY, C.REGISTER_BACKOFF_MAX, C.RETRY_JITTER, this.#ctx.random)
  }

  #sendRegistration (now: number): void {
    const { opt, indexes } = this.#ctx
    const ss = this.sessions
    if (ss.hs.state === 'initSent') indexes.delete(ss.hs.localIndex)
    const localIndex = indexes.allocate(this)
    const payload = encodeInitPayload({
      role: 1,
      prefixLen: opt.prefix,
      mtu: opt.mtu,
      tunnelIp: opt.tunnelIp,
      timestamp: this.#ctx.timestamp(),
      lan: opt.p2p === true ? withMapped(opt.localEndpoints?.() ?? [], opt.mappedEndpoint?.() ?? null, 0) : [],
      attrs: { tunnel6: opt.tunnel6 ?? null, routes: opt.advertiseRoutes ?? [], ...candidates6Attr(opt.p2p === true ? opt.localEndpoints6?.() : undefined) }
    })
    const { message, state } = createInit(opt.psk, opt.nodeKey, localIndex, payload)
    ss.hs = { state: 'initSent', localIndex, initiator: state, sentAt: now, tries: 1 }
    this.#lastInit = message
    this.#ctx.sendToServer(this.#cookiesOf.addMacs(message, now))
    this.#reg = R.attemptSent(this.#reg, now, (n) => this.#retryDelay(n))
    if (this.#reg.attempts === 4 && this.#reg.state !== 'rejected') {
      this.#setProblem(`no answer from the server at ${opt.serverName} yet (${this.#reg.attempts} tries); still trying — check the address, the port and any firewall`)
    }
  }

  #setProblem (p: string | null, level: 'warn' | 'error' = 'warn'): void {
    if (p === this.#problem) return
    this.#problem = p
    if (p !== null) this.#ctx.log[level](p)
  }

  /** mac1/mac2 on our inits; the server's cookie while it is under load (crypto/cookie.ts). */
  #cookies: CookieGenerator | null = null
  get #cookiesOf (): CookieGenerator { return (this.#cookies ??= new CookieGenerator(macKeys(this.#ctx.opt.psk))) }
  /** The Noise message of the init in flight (resent with mac2 after a CookieReply). */
  #lastInit: Uint8Array | null = null
  /** CookieReplies that answered our init (status counter cookieRepliesReceived). */
  cookieRepliesReceived = 0

  /**
   * A CookieReply from the server (it is under load and wants proof that we
   * receive at our address): keep the cookie and resend the same init at
   * once with mac2. Anything that does not answer the init in flight is ignored.
   */
  onCookieReply (input: ControlInput): void {
    const ss = this.sessions
    if (ss.hs.state !== 'initSent' || this.#lastInit === null) return
    const now = this.#ctx.clock.now()
    if (!this.#cookiesOf.consumeReply(input.bytes, now)) return
    this.cookieRepliesReceived++
    this.#ctx.sendToServer(this.#cookiesOf.addMacs(this.#lastInit, now))
  }

  /** A handshake response from the server's main port. */
  onResponse (input: ControlInput): void {
    const { opt, port, log } = this.#ctx
    const ss = this.sessions
    if (ss.hs.state !== 'initSent') return
    const now = this.#ctx.clock.now()
    let res
    try {
      res = consumeResponse(ss.hs.initiator, input.bytes)
    } catch {
      return // not for this handshake, or forged
    }
    let resp
    try { resp = decodeRespPayload(res.payload) } catch { return }
    const localIndex = ss.hs.localIndex
    ss.hs = { state: 'idle' }
    const pin = opt.serverPin?.check(res.remoteStatic, opt.serverName) ?? { ok: true, pinnedNow: false }
    if (!pin.ok) {
      // Not our server (or its key changed): use nothing from this session, keep retrying quietly.
      this.#hooks.serverKeyMismatch()
      this.#ctx.indexes.delete(localIndex)
      this.#reg = R.refused(this.#reg, now + Math.max(C.REFUSED_RETRY_MIN, this.#retryDelay(this.#reg.attempts)))
      this.#setProblem(pin.message, 'error')
      return
    }
    this.serverKey = res.remoteStatic
    if (pin.pinnedNow) log.info(`pinned the server's key ${fingerprint(res.remoteStatic)} (first contact); a different key later is refused`, { server: opt.serverName })
    if (resp.status !== RESP_OK) {
      this.#reg = R.refused(this.#reg, now + Math.max(C.REFUSED_RETRY_MIN, this.#retryDelay(this.#reg.attempts)))
      const a = resp.attrs ?? NO_ATTRS
      const six = a.refused === 6 && opt.tunnel6 != null ? { address: formatIp6(opt.tunnel6.addr), serverHasV6: a.tunnel6 !== null } : undefined
      const why = R.describeRefusal(resp.status, opt.tunnelIp, fingerprint(opt.nodeKey.pub), six)
      this.#setProblem(why.startsWith('the server ') ? why : `the server refused us: ${why}`, 'error')
      this.#ctx.indexes.delete(localIndex)
      return
    }
    const session = newSession(localIndex, res.senderIndex, res.keys, now, true)
    installCurrent(ss, session, now, this.#ctx.drop)
    const wasRegistered = R.everRegistered(this.#reg)
    this.#tunnelIp = resp.tunnelIp
    this.#lastPong = now
    this.#silenceLogged = false
    this.serverAttrs = resp.attrs ?? NO_ATTRS
    port.setPeer(this.#route())
    port.setRecvKey(SERVER_SLOT, localIndex, session.keys.dataRecv)
    port.setSendKey(SERVER_SLOT, session.keys.dataSend, session.remoteIndex)
    this.#send(session, { kind: CTL_CONFIRM })
    this.#reg = R.accepted(this.#reg)
    this.#problem = null
    if (resp.mtu !== opt.mtu) {
      log.warn(`the server uses MTU ${resp.mtu} and we use ${opt.mtu}; packets larger than the smaller one may be dropped`)
    }
    log.info(wasRegistered ? 'reconnected to the server' : 'registered with the server', {
      server: opt.serverName, tunnelIp: intToIp(opt.tunnelIp), serverTunnelIp: intToIp(resp.tunnelIp), publicEndpoint: formatEndpoint(resp.observedIp, resp.observedPort)
    })
    this.#hooks.registered(now)
    this.#ping(now)
    this.#hooks.observed(resp.observedIp, resp.observedPort, now)
  }

  /** A Reject (type 6) from anywhere; only the server's main port is believed. */
  onReject (input: ControlInput): void {
    if (!this.#ctx.fromServer(input.ip, input.port)) return
    let rej
    try { rej = decodeReject(input.bytes) } catch { return }
    const now = this.#ctx.clock.now()
    const ss = this.sessions
    if (rej.reason === REJECT_AUTH_FAILED) {
      if (ss.hs.state !== 'initSent' || rej.index !== ss.hs.localIndex) return
      this.#reg = R.authFailed(this.#reg)
      this.#setProblem('the server rejected our key: authentication failed — the network key (--key-file, LWT_KEY or -k) is probably wrong, or the network differs (the --tun prefix and --network-name must be the server\'s); still retrying quietly', 'error')
    } else if (rej.reason === REJECT_VERSION) {
      if (ss.hs.state !== 'initSent' || rej.index !== ss.hs.localIndex) return
      this.#hooks.versionRejected()
      this.#reg = R.authFailed(this.#reg)
      this.#setProblem(`the server at ${this.#ctx.opt.serverName} speaks another protocol version; this node speaks ${PROTOCOL_VERSION}: upgrade the older one (still retrying quietly)`, 'error')
    } else if (rej.reason === REJECT_UNKNOWN_SESSION) {
      // Index 0: our relayed packets come from an address the server does not
      // know (our NAT rebound or we moved): a ping on our session moves us.
      if (rej.index === 0 && ss.current !== null && now - this.#lastLostPing >= C.LOST_PING_INTERVAL) {
        this.#lastLostPing = now
        this.#ping(now)
        return
      }
      const cur = ss.current
      if (cur === null || rej.index !== cur.remoteIndex) return
      if (now - this.#lastReregister < C.UNKNOWN_SESSION_REREGISTER_INTERVAL) return
      this.#lastReregister = now
      this.#ctx.log.info('the server lost our session (it restarted?); registering again')
      this.#reg = R.lost(this.#reg)
      this.#sendRegistration(now)
    }
  }

  /** An authenticated control message on one of our sessions with the server. */
  onMessage (s: Session, msg: ControlMessage, input: ControlInput): void {
    const { opt } = this.#ctx
    const now = this.#ctx.clock.now()
    switch (msg.kind) {
      case CTL_PONG: {
        if (this.#udpProbes.delete(msg.txid)) {
          // The TCP transport's probe (transport/choice.ts): the server answered on UDP.
          this.onUdpProbeAnswer?.(input.ip, input.port)
          break
        }
        if (input.ip === opt.serverIp && input.port === opt.serverPort + C.NAT_CHECK_PORT_OFFSET) {
          // The NAT check: how the server's second port sees us.
          this.#hooks.natCheckAnswer(msg.txid, { ip: msg.observedIp, port: msg.observedPort }, now)
          break
        }
        if (!this.#ctx.fromServer(input.ip, input.port)) break
        this.#heard(now)
        if (msg.txid !== 0 && this.#pings.has(msg.txid)) this.#hooks.observed(msg.observedIp, msg.observedPort, now)
        const sent = this.#pings.get(msg.txid)
        if (sent !== undefined) {
          this.#pings.delete(msg.txid)
          this.#rtt.add(now - sent)
        }
        if (s === this.sessions.current) this.#reg = R.pongOnCurrent(this.#reg)
        break
      }
      case CTL_PING: {
        // The server measures its RTT to us (server.ts pings each client every 30 s): answer at once.
        if (!this.#ctx.fromServer(input.ip, input.port)) break
        this.#heard(now)
        this.#send(s, { kind: CTL_PONG, txid: msg.txid, peerListVersion: 0, observedIp: wireIp(input.ip), observedPort: wirePort(input.ip, input.port) })
        break
      }
      case CTL_PEER_UPDATE: {
        this.#heard(now)
        this.#hooks.peerUpdate(msg)
        break
      }
      case CTL_BYE: {
        this.#ctx.log.warn('the server is shutting down; will reconnect when it is back')
        this.#reg = R.serverBye(this.#reg, now + C.HANDSHAKE_RETRY)
        break
      }
      default: break
    }
  }

  /** The server answered (a Pong, a PeerUpdate, its own Ping). */
  #heard (now: number): void {
    this.#lastPong = now
    if (this.#silenceLogged) {
      this.#silenceLogged = false
      this.#ctx.log.info('the server answers again')
    }
  }

  #send (s: Session, m: ControlMessage): void {
    this.#ctx.sendToServer(s.ctl.seal(encodeControl(m)))
  }

  #ping (now: number): void {
    const s = this.sessions.current
    if (s === null) return
    const txid = this.#txid++ >>> 0
    this.#pings.set(txid, now)
    if (this.#pings.size > 16) this.#pings.delete(this.#pings.keys().next().value!)
    this.#lastPingAt = now
    this.#send(s, { kind: CTL_PING, txid, peerListVersion: this.#hooks.peerListVersion() })
  }

  /** A direct path failed: refresh our endpoint with the server now (a Ping; at most one per LOST_PING_INTERVAL). */
  refreshEndpoint (now: number): void {
    if (now - this.#lastLostPing >= C.LOST_PING_INTERVAL) { this.#lastLostPing = now; this.#ping(now) }
  }

  /**
   * `lightweight-tunnel ping` to the server: one keepalive-style Ping with
   * the caller's txid on the current session (its Pong also counts as a
   * keepalive answer). Returns false without a session.
   */
  sendUserPing (txid: number): boolean {
    const s = this.sessions.current
    if (s === null) return false
    this.#send(s, { kind: CTL_PING, txid, peerListVersion: this.#hooks.peerListVersion() })
    return true
  }

  /** Ask the server's second port how it sees us (a NAT check), on the registration session. Returns the txid, or null without a session. */
  sendNatCheck (): number | null {
    if (this.sessions.current === null) return null
    const txid = this.#txid++ >>> 0
    this.sendNatCheckTxid(txid)
    return txid
  }

  /** Txids of our UDP probes in flight (the last few only). */
  readonly #udpProbes = new Set<number>()
  /** Set by the TCP transport's driver: the server answered a UDP probe from ip:port. */
  onUdpProbeAnswer: ((ip: number, port: number) => void) | null = null

  /** While on TCP: a Ping on our session to the server's UDP endpoint ip:port; false without a session. */
  sendUdpProbe (ip: number, port: number): boolean {
    const s = this.sessions.current
    if (s === null) return false
    const txid = this.#txid++ >>> 0
    if (this.#udpProbes.size >= 8) this.#udpProbes.clear()
    this.#udpProbes.add(txid)
    this.#ctx.port.sendControl(s.ctl.seal(encodeControl({ kind: CTL_PING, txid, peerListVersion: this.#hooks.peerListVersion() })), ip, port)
    return true
  }

  /** A NAT check with the caller's txid (netcheck); false without a session. */
  sendNatCheckTxid (txid: number): boolean {
    const s = this.sessions.current
    if (s === null) return false
    const { opt } = this.#ctx
    this.#ctx.port.sendControl(s.ctl.seal(encodeControl({ kind: CTL_PING, txid, peerListVersion: this.#hooks.peerListVersion() })), opt.serverIp, opt.serverPort + C.NAT_CHECK_PORT_OFFSET)
    return true
  }

  /** Registration / reconnection, keepalive, rekey, expiry of the server's sessions. */
  tick (now: number): void {
    const srv = this.sessions
    const keepalive = this.#ctx.opt.keepaliveSec * 1000
    if (this.#reg.state !== 'registered') {
      if (now >= this.#reg.nextAttemptAt) this.#sendRegistration(now)
    } else {
      const cur = srv.current
      if (!this.#silenceLogged && this.#silentFor(now) !== null) {
        this.#silenceLogged = true
        this.#ctx.log.warn(this.problem ?? 'the server is not answering')
      }
      if (now - this.#lastPong > this.#reconnectAfter()) {
        this.#ctx.log.warn(`no answer from the server for ${Math.round((now - this.#lastPong) / 1000)} s; reconnecting`)
        this.#reg = R.lost(this.#reg)
        this.#sendRegistration(now)
      } else if (cur !== null && now - cur.createdAt > C.REKEY_AFTER && srv.hs.state === 'idle') {
        this.#sendRegistration(now) // rekey = register again with the same node key
      } else if (srv.hs.state === 'initSent' && now >= this.#reg.nextAttemptAt) {
        this.#sendRegistration(now)
      } else if (now - this.#lastPingAt >= (this.#rtt.count < RTT_WARMUP ? RTT_WARMUP_GAP : keepalive)) {
        this.#ping(now)
      }
    }
    expireSessions(srv, now, this.#ctx.drop, true, () => { this.#ctx.port.clearSendKey(SERVER_SLOT) })
  }

  /** The send key to the server reached REKEY_AFTER_MESSAGES: register again now (a rekey), unless a registration is out. */
  rekey (now: number): void {
    if (this.#reg.state === 'registered' && this.sessions.hs.state === 'idle') this.#sendRegistration(now)
  }

  /**
   * The server's address changed (ctx.opt holds the new one): point the
   * server's route there (once we know its tunnel address) and register
   * again now, keeping the old keys until the new session replaces them.
   */
  serverMoved (now: number): void {
    if (this.#tunnelIp !== 0) {
      this.#ctx.port.setPeer(this.#route())
    }
    this.#pings.clear()
    if (R.everRegistered(this.#reg)) this.#reg = R.lost(this.#reg)
    this.#sendRegistration(now)
  }

  /** The server's dataplane route: its tunnel address and its IPv6 one (as a peer's, peer-prefixes.ts), at its main port. */
  #route (): PeerRoute {
    const { opt } = this.#ctx
    return { slot: SERVER_SLOT, peerId: 0, tunnelIp: this.#tunnelIp, endpointIp: opt.serverIp, endpointPort: opt.serverPort, relayVia: false, prefixes: peerPrefixes(this.serverAttrs) }
  }

  /** Say goodbye so the server frees our address at once. */
  shutdown (): void {
    const s = this.sessions.current
    if (s !== null) this.#send(s, { kind: CTL_BYE, reason: 1 })
  }

  /** The server's entry in status. */
  status (now: number): PeerStatus {
    const { opt } = this.#ctx
    const sc = this.#ctx.port.peerCounters(SERVER_SLOT)
    return {
      tunnelIp: this.#tunnelIp === 0 ? '?' : intToIp(this.#tunnelIp),
      tunnel6: this.serverAttrs.tunnel6 === null ? null : formatIp6(this.serverAttrs.tunnel6.addr),
      peerId: 0,
      role: 'server',
      key: this.serverKey === null ? null : fingerprint(this.serverKey),
      path: this.#reg.state === 'registered' ? 'direct' : 'connecting',
      endpoint: formatEndpoint(opt.serverIp, opt.serverPort),
      publicEndpoint: formatEndpoint(opt.serverIp, opt.serverPort),
      rttMs: this.#rtt.min,
      txBytes: sc.txBytes,
      rxBytes: sc.rxBytes,
      txPackets: sc.txPackets,
      rxPackets: sc.rxPackets,
      session: describeSessions(this.sessions),
      lastSeenSec: lastSeen(this.#lastPong === 0 ? null : now - this.#lastPong, sc.lastRxMs === 0 ? null : this.#ctx.clock.wallNow() - sc.lastRxMs),
      note: this.problem
    }
  }
}

