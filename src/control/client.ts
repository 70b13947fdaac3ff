/**
 * The client's control plane, as a coordinator: it routes each input to the
 * piece that owns it and wires the pieces together. Sans-IO: everything goes
 * out through the injected DataplanePort; time comes from the injected clock
 * via tick(), randomness from the injected Random.
 *
 *   onControl(input)
 *     ├─ handshake response / reject from the server ─────▶ ServerLink (server-link.ts; states: registration.ts)
 *     ├─ sealed control (session.ts openSealedControl)
 *     │    ├─ on a server session ──▶ ServerLink: Pong, PeerUpdate (peer-list.ts → peers), Bye
 *     │    └─ on a peer session ────▶ Confirm → PeerSessions; Ping/Pong/Punch → the peer's DirectPath
 *     ├─ relayed from a peer ─────────▶ init/response → PeerSessions (peer-sessions.ts); sealed control as above
 *     ├─ init/response straight from a peer (a rekey over the direct path) ──▶ PeerSessions
 *     └─ unknown index ───────────────▶ PeerSessions (resync)
 *   tick() ──▶ ServerLink.tick, the NAT check (nat.ts), then per peer: proactive
 *              session, traffic detection, DirectPath.tick (direct-path.ts), PeerSessions.tick
 *   status() ──▶ the server's entry, then one per peer
 *
 * Peers live in a PeerTable (peer-table.ts), joined and routed by
 * PeerMembership (peer-membership.ts: the peer list, the address cache); our NAT in a ClientNat
 * (client-nat.ts, over nat.ts's NatObserver); the birthday search's sockets
 * in a BirthdayPool (birthday.ts).
 */
import { wireIp } from '../wire/endpoint-handle.js'
import type { Clock, WallClock } from '../clock.js'
import type { Logger } from '../log.js'
import type { ControlComponents, ControlHandler, ControlInput, DataplanePort } from './port.js'
import { IndexTable, describeSessions, openSealedControl, type Session } from './session.js'
import * as C from './constants.js'
import type { RegistrationState } from './registration.js'
import { MSG_CONTROL, MSG_HANDSHAKE_INIT, MSG_HANDSHAKE_RESP, MSG_REJECT } from '../wire/messages.js'
import { MSG_COOKIE_REPLY } from '../wire/cookie.js'
import { encodeControl, CTL_CONFIRM, CTL_MTU_ACK, CTL_MTU_PROBE, CTL_PING, CTL_PONG, CTL_PUNCH, type ControlMessage } from '../wire/control.js'
import { ClientPathMtu } from './path-mtu-client.js'
import { endpointKey, formatEndpoint, intToIp } from '../wire/addr.js'
import type { PeerStatus, StatusReport } from './status.js'
import type { PathIo } from './direct-path.js'
import { describeRelayReason } from './path.js'
import type { Endpoint } from './nat.js'
import { ClientNat, type NetcheckFacts } from './client-nat.js'
import { PeerTable, type PeerRemote } from './peer-table.js'
import { PeerListSync } from './peer-list.js'
import { BirthdayPool } from './birthday.js'
import { SERVER_SLOT, clientContext, type ClientContext, type ClientOptions, type SessionOwner } from './client-context.js'
import { ServerLink } from './server-link.js'
import { lastSeen } from './rtt.js'
import { PeerSessions } from './peer-sessions.js'
import { PeerMembership } from './peer-membership.js'
import { UserPings, type PingStarted } from './user-ping.js'
import { fingerprint } from '../identity/key-text.js'
import { peerPrefixes } from './peer-prefixes.js'
import { formatIp6 } from '../wire/prefix.js'
import type { RouteOffer } from './kernel-route-plan.js'

export type { ClientOptions } from './client-context.js'
export type { RegistrationState } from './registration.js'
export type { NetcheckFacts } from './client-nat.js'

const NO_P2P_NOTE = 'through the server (direct paths are off: --no-p2p)'

export class ClientController implements ControlHandler {
  readonly #opt: ClientOptions
  readonly #port: DataplanePort
  readonly #clock: Clock & WallClock
  readonly #log: Logger
  readonly #ctx: ClientContext
  readonly #server: ServerLink
  readonly #peers: PeerTable
  /** Which peers we have, and their routes (peer-membership.ts). */
  readonly #members: PeerMembership
  readonly #peerSessions: PeerSessions
  readonly #peerList = new PeerListSync()
  readonly #nat: ClientNat
  readonly #birthdays: BirthdayPool
  readonly #startedAt: number
  /** Control messages dropped: malformed, unknown session, failed authentication (probes from anyone land here). */
  readonly counters = {
    p2pDropped: 0, handshakesCompleted: 0, peerKeyMismatch: 0, serverVersionRejects: 0, serverKeyMismatch: 0,
    // Path MTU discovery (path-mtu-client.ts).
    mtuProbesAnswered: 0, mtuProbesDropped: 0, mtuAcksDropped: 0, mtuBlackHoles: 0
  }
  /** Path MTU discovery per path (path-mtu-client.ts). */
  readonly #pmtu: ClientPathMtu
  /** `lightweight-tunnel ping` / `netcheck` probes in flight. */
  readonly #userPings: UserPings
  #cacheLoaded = false

  constructor (opt: ClientOptions, c: ControlComponents, maxPeers: number) {
    this.#opt = opt
    this.#port = c.port
    this.#clock = c.clock
    this.#log = c.log
    this.#ctx = clientContext(opt, c, new IndexTable<SessionOwner>(c.random))
    this.#server = new ServerLink(this.#ctx, {
      peerListVersion: () => this.#peerList.version,
      registered: () => { this.#peerList.version = 0; this.counters.handshakesCompleted++ },
      observed: (ip, port, now) => { if (ip !== 0) this.#nat.serverView(ip, port, now) }, // 0: we came over TCP
      natCheckAnswer: (txid, ep, now) => {
        // Ours: a periodic NAT check, or netcheck's (a user ping txid).
        if (this.#userPings.answered(txid, now) || this.#nat.observer.checkAnswered(txid)) this.#nat.natCheckAnswered(ep, now)
      },
      versionRejected: () => { this.counters.serverVersionRejects++ },
      serverKeyMismatch: () => { this.counters.serverKeyMismatch++ },
      peerUpdate: (msg) => {
        this.#peerList.apply(msg, opt.tunnelIp, {
          upsert: (e) => { this.#members.upsert(e) },
          remove: (ip, explicit) => { this.#members.unlisted(ip, explicit) },
          tunnelIps: () => this.#peers.tunnelIps()
        })
      }
    })
    this.#peers = new PeerTable(maxPeers)
    this.#peerSessions = new PeerSessions(this.#ctx, this.counters, () => this.#server.state === 'registered')
    this.#members = new PeerMembership(this.#ctx, this.#peers, (p) => this.#pathIo(p), (p) => { this.#peerSessions.forget(p) })
    this.#nat = new ClientNat(opt, c.log, { peers: () => this.#peers.values(), sendNatCheck: () => this.#server.sendNatCheck() })
    this.#birthdays = new BirthdayPool(c.port)
    this.#startedAt = c.clock.now()
    this.#userPings = new UserPings(c.random)
    this.#pmtu = new ClientPathMtu(this.#ctx, this.counters)
    // Our own inner addresses (IPv6 /128, our routes); the dataplane keeps them for threads that start later.
    this.#port.setLocalPrefixes(peerPrefixes({ tunnel6: opt.tunnel6 ?? null, routes: opt.advertiseRoutes ?? [] }))
  }

  // ── reload and name resolution (daemon.ts) ──────────────────────────────

  /** A new keepalive interval (seconds): the next keepalive Ping uses it. */
  setKeepalive (sec: number): void { this.#opt.keepaliveSec = sec }

  /** Our port mapping changed (opt.mappedEndpoint): peers are offered the new candidates. */
  portMappingChanged (): void { this.#nat.mappingChanged(this.#clock.now()) }

  /**
   * The server's name now resolves to another address (or it resolved for
   * the first time): move the server's route (slot 0) and the relay routes
   * of peers without a direct path to it, and register there at once.
   * Sessions with peers stay (they are end to end); direct paths stay.
   * Returns false when nothing changed.
   */
  setServerEndpoint (ip: number, port: number): boolean {
    if (ip === this.#opt.serverIp && port === this.#opt.serverPort) return false
    this.#opt.serverIp = ip
    this.#opt.serverPort = port
    this.#server.serverMoved(this.#clock.now())
    for (const p of this.#peers.values()) if ((p.path?.directCandidate ?? null) === null) this.#members.route(p)
    return true
  }

  /** The TCP transport (transport/client-transport.ts): probe the server's UDP endpoint; its answer goes to onAnswer. */
  sendUdpProbe (ip: number, port: number): boolean { return this.#server.sendUdpProbe(ip, port) }
  set onUdpProbeAnswer (fn: ((ip: number, port: number) => void) | null) { this.#server.onUdpProbeAnswer = fn }

  get state (): RegistrationState | 'unresponsive' { return this.#server.state }
  /** The server's tunnel address (0 before the first registration). */
  get serverTunnelIp (): number { return this.#server.tunnelIp }
  /** The server's underlay IPv4 address (host order; 0 until its name resolves). */
  get serverUnderlayIp (): number { return this.#opt.serverIp }
  /** The server's UDP endpoint ("198.51.100.1:9000"). */
  get serverEndpoint (): string { return formatEndpoint(this.#opt.serverIp, this.#opt.serverPort) }
  get problem (): string | null { return this.#server.problem }

  // ── inputs ──────────────────────────────────────────────────────────────

  onControl (input: ControlInput): void {
    const type = input.bytes[0]
    if (input.kind === 'unknown-index') { this.#onUnknownIndex(input); return }
    if (input.kind === 'relayed') { this.#onRelayed(input); return }
    if (input.kind !== 'packet') return
    if (type === MSG_HANDSHAKE_RESP) {
      if (this.#ctx.fromServer(input.ip, input.port)) this.#server.onResponse(input)
      else if (!this.#peerSessions.onDirectResponse(this.#peers, input)) this.counters.p2pDropped++
    } else if (type === MSG_HANDSHAKE_INIT) {
      if (!this.#ctx.fromServer(input.ip, input.port) && !this.#peerSessions.onDirectInit(this.#peers, input)) this.counters.p2pDropped++
    } else if (type === MSG_REJECT) {
      this.#server.onReject(input)
    } else if (type === MSG_COOKIE_REPLY) {
      if (this.#ctx.fromServer(input.ip, input.port)) this.#server.onCookieReply(input)
    } else if (type === MSG_CONTROL) {
      this.#onSealedControl(input, null)
    }
  }

  onNeedSession (slot: number): void {
    if (slot === SERVER_SLOT) return // the registration loop takes care of the server
    const p = this.#peers.bySlot(slot)
    if (p !== undefined) this.#peerSessions.onNeedSession(p, this.#clock.now())
  }

  /** A send key reached REKEY_AFTER_MESSAGES: a new session now (the server: register again; a peer: a handshake). */
  onSendLimit (slot: number): void {
    const now = this.#clock.now()
    if (slot === SERVER_SLOT) { this.#server.rekey(now); return }
    const p = this.#peers.bySlot(slot)
    if (p !== undefined) this.#peerSessions.rekey(p, now)
  }

  onEndpoint (_slot: number, _ip: number, _port: number): void {
    // Clients learn endpoints from the server's peer list.
  }

  /** Data on a session we do not have: the sender is known from the relay envelope (via), or for a direct path from its address. */
  #onUnknownIndex (input: ControlInput): void {
    let p: PeerRemote | undefined
    if (input.via !== 0) {
      if (!this.#ctx.fromServer(input.ip, input.port)) return
      p = this.#peers.byPeerId(input.via)
    } else {
      p = this.#peers.byCandidate(endpointKey(input.ip, input.port))
    }
    if (p !== undefined) this.#peerSessions.onUnknownIndex(p, this.#clock.now())
  }

  #onRelayed (input: ControlInput): void {
    if (!this.#ctx.fromServer(input.ip, input.port)) return
    const p = this.#peers.byPeerId(input.via)
    if (p === undefined) return
    const type = input.bytes[0]
    if (type === MSG_HANDSHAKE_INIT) this.#peerSessions.onInit(p, input)
    else if (type === MSG_HANDSHAKE_RESP) this.#peerSessions.onResponse(p, input)
    else if (type === MSG_CONTROL) this.#onSealedControl(input, p)
  }

  #onSealedControl (input: ControlInput, relayedFrom: PeerRemote | null): void {
    const r = openSealedControl(input.bytes, this.#ctx.indexes, relayedFrom === null ? undefined : (owner) => owner === relayedFrom, undefined, this.#clock.now())
    if (!r.ok) { this.counters.p2pDropped++; return }
    if (r.owner === this.#server) {
      if (r.msg.kind === CTL_MTU_ACK) {
        if (this.#ctx.fromServer(input.ip, input.port)) this.#pmtu.onAck(r.msg, null, this.#peers.values())
        else this.counters.mtuAcksDropped++
        return
      }
      if (r.msg.kind === CTL_PONG && this.#ctx.fromServer(input.ip, input.port)) this.#userPings.answered(r.msg.txid, this.#clock.now())
      this.#server.onMessage(r.session, r.msg, input)
    }
    else this.#onPeerMessage(r.owner as PeerRemote, r.session, r.msg, relayedFrom === null ? { ip: input.ip, port: input.port, sock: input.sock ?? 0 } : null)
  }

  /** A message on a peer session; `from` is the sender's address when it came straight (not through the relay). */
  #onPeerMessage (p: PeerRemote, s: Session, msg: ControlMessage, from: (Endpoint & { sock: number }) | null): void {
    const now = this.#clock.now()
    if (msg.kind === CTL_CONFIRM) {
      this.#peerSessions.onConfirm(p, s, now)
    } else if (msg.kind === CTL_PING) {
      if (from === null) this.#ctx.sendRelayed(p.peerId, s.ctl.seal(encodeControl({ kind: CTL_PONG, txid: msg.txid, peerListVersion: 0, observedIp: 0, observedPort: 0 })))
      else if (p.path !== null && p.sessions.current !== null) p.path.onPing(msg.txid, from.ip, from.port, now, from.sock)
    } else if (msg.kind === CTL_PONG) {
      if (this.#userPings.answered(msg.txid, now)) return
      if (from !== null) p.path?.onPong(msg.txid, from.ip, from.port, { ip: msg.observedIp, port: msg.observedPort }, now, from.sock)
    } else if (msg.kind === CTL_PUNCH) {
      if (from === null && p.sessions.current !== null) p.path?.onPunch(msg, now)
    } else if (msg.kind === CTL_MTU_PROBE) {
      this.#pmtu.onPeerProbe(p, msg, from)
    } else if (msg.kind === CTL_MTU_ACK) {
      if (from !== null) this.#pmtu.onAck(msg, p, this.#peers.values())
      else this.counters.mtuAcksDropped++
    }
  }

  /** The DirectPath's window on the world, for one peer. */
  #pathIo (p: PeerRemote): PathIo {
    return {
      sendProbe: (kind, txid, ip, port, ttl, observed, sock) => {
        const s = p.sessions.current
        if (s === null) return
        const m: ControlMessage = kind === 'ping'
          ? { kind: CTL_PING, txid, peerListVersion: 0 }
          : { kind: CTL_PONG, txid, peerListVersion: 0, observedIp: wireIp(observed?.ip ?? 0), observedPort: wireIp(observed?.ip ?? 0) === 0 ? 0 : observed?.port ?? 0 }
        const bytes = s.ctl.seal(encodeControl(m))
        if (ttl === null) this.#port.sendControl(bytes, ip, port, sock)
        else this.#port.sendControlTtl(bytes, ip, port, ttl, sock)
      },
      openSockets: (n) => this.#birthdays.open(n),
      adoptSocket: (sock) => { this.#port.adoptProbeSocket(sock) },
      closeSockets: () => { this.#birthdays.release() },
      sendPunch: (m) => {
        const s = p.sessions.current
        if (s !== null) this.#ctx.sendRelayed(p.peerId, s.ctl.seal(encodeControl(m)))
      },
      setRoute: () => { this.#members.route(p) },
      localNat: () => this.#nat.observer.nat,
      localCandidates: () => this.#nat.candidates(),
      observed: (ep) => { this.#nat.addObservation(ep, this.#clock.now()) },
      pathLost: () => { this.#server.refreshEndpoint(this.#clock.now()) },
      log: (msg, fields) => { this.#log.info(msg, { peer: intToIp(p.tunnelIp), ...fields }) }
    }
  }

  // ── ping and netcheck (control socket) ────────────────────────────────────

  /**
   * `lightweight-tunnel ping`: one authenticated Ping to `tunnelIp` on its
   * current path (direct, or relayed through the server; the server itself
   * gets a keepalive Ping); `onReply(rttMs)` runs when its Pong is read.
   * Returns what was sent, or a sentence saying why nothing could be.
   */
  ping (tunnelIp: number, onReply: (rttMs: number) => void): PingStarted | string {
    const now = this.#clock.now()
    const txid = this.#userPings.txid()
    if (txid === null) return 'too many pings in flight; try again in a moment'
    const server = formatEndpoint(this.#opt.serverIp, this.#opt.serverPort)
    if (tunnelIp === this.#server.tunnelIp && tunnelIp !== 0) {
      if (!this.#server.sendUserPing(txid)) return `not registered with the server yet (state ${this.#server.state})`
      return { path: 'direct', endpoint: server, cancel: this.#userPings.expect(txid, now, onReply) }
    }
    if (tunnelIp === this.#opt.tunnelIp) return `${intToIp(tunnelIp)} is this node's own tunnel address`
    const p = this.#peers.get(tunnelIp)
    if (p === undefined) return `${intToIp(tunnelIp)} is not a peer of this node (not in the server's peer list); see lightweight-tunnel status`
    const s = p.sessions.current
    if (s === null) {
      if (this.#server.registered) this.onNeedSession(p.slot)
      return `no session with ${intToIp(tunnelIp)} yet; one is being set up now, try again in a second`
    }
    const bytes = s.ctl.seal(encodeControl({ kind: CTL_PING, txid, peerListVersion: 0 }))
    const direct = p.path?.directCandidate ?? null
    if (direct !== null) {
      this.#port.sendControl(bytes, direct.ip, direct.port, direct.sock)
      return { path: 'direct', endpoint: formatEndpoint(direct.ip, direct.port), cancel: this.#userPings.expect(txid, now, onReply) }
    }
    if (!this.#server.registered) return 'the relay (the server) is not reachable: not registered'
    this.#ctx.sendRelayed(p.peerId, bytes)
    return { path: 'relay', endpoint: server, cancel: this.#userPings.expect(txid, now, onReply) }
  }

  /**
   * `lightweight-tunnel netcheck`'s probe of the NAT-check port (server
   * port + 1): a NAT check with a fresh txid; `onReply(rttMs)` when it
   * answers (its view of us is then in netcheck().natCheckView).
   */
  probeNatCheckPort (onReply: (rttMs: number) => void): (() => void) | string {
    const txid = this.#userPings.txid()
    if (txid === null) return 'too many probes in flight; try again in a moment'
    if (!this.#server.sendNatCheckTxid(txid)) return `not registered with the server yet (state ${this.#server.state})`
    return this.#userPings.expect(txid, this.#clock.now(), onReply)
  }

  /** The server path's MTU in words, for netcheck. */
  serverPathMtu (): string {
    const m = this.#pmtu.report(null)
    if (m === null) return 'not measured yet (not registered)'
    if (m.mtu === null) return m.state === 'unanswered' ? 'unknown: the server does not answer path MTU probes (an older version)' : 'searching…'
    const sends = m.innerMax === null ? 'carries full-size tunnel packets' : `inner packets up to ${m.innerMax}, larger ones get ICMP too-big`
    return `${m.mtu} bytes to the server (${m.state === 'black-hole' ? 'black hole suspected, searching' : m.state}; ${sends})`
  }

  /** What the client knows about its NAT and its server, for netcheck (client-nat.ts). */
  netcheck (): NetcheckFacts { return this.#nat.netcheck(this.#server) }

  // ── timers ──────────────────────────────────────────────────────────────

  /**
   * How soon tick() wants to run again, ms: CLIENT_TICK while registration,
   * a handshake, punching, a birthday search or a busy direct path is under
   * way, the time until a proactive peer session is due, else
   * CLIENT_IDLE_TICK. The daemon asks after every tick and after
   * every input, so work that starts between ticks (a peer list, a Punch)
   * brings the next tick forward.
   */
  tickInterval (): number {
    if (this.#server.busy || this.#pmtu.busy()) return C.CLIENT_TICK
    const now = this.#clock.now()
    if (this.#nat.checkDue(now)) return C.CLIENT_TICK
    let next = C.CLIENT_IDLE_TICK
    for (const p of this.#peers.values()) {
      if (p.sessions.hs.state !== 'idle') return C.CLIENT_TICK
      if (p.path === null) continue
      if (p.path.wantsFastTick(now)) return C.CLIENT_TICK
      // tick() starts the session at nextSessionTry; be there on time.
      if (this.#startsSession(p)) next = Math.min(next, Math.max(C.CLIENT_TICK, p.nextSessionTry - now))
    }
    return next
  }

  /** A peer with a direct-path candidate and no session, for which we (the lower tunnel address) start the end-to-end session. */
  #startsSession (p: PeerRemote): boolean {
    const ss = p.sessions
    return p.path !== null && ss.current === null && ss.hs.state === 'idle' && ss.pending === null && (this.#opt.tunnelIp < p.tunnelIp || p.fromCache)
  }

  tick (): void {
    if (!this.#cacheLoaded) {
      // At the first tick: the dataplane starts after the controller is built (peer routes set before are lost).
      this.#cacheLoaded = true
      this.#members.loadCache()
    }
    const now = this.#clock.now()
    this.#server.tick(now)
    const registered = this.#server.registered
    if (registered && this.#nat.checkDue(now)) this.#nat.check(now)
    for (const p of [...this.#peers.values()]) {
      if (p.unlistedAt !== null && now - p.unlistedAt >= C.UNLISTED_GRACE) {
        this.#log.info('the server no longer lists this peer; dropping it', { peer: intToIp(p.tunnelIp) })
        this.#members.remove(p.tunnelIp)
        continue
      }
      // Direct paths: start the end-to-end session ourselves (the lower tunnel address does), watch traffic, run the path timers.
      if (p.path !== null) {
        if (this.#startsSession(p) && (registered || p.path.handshakeEndpoints().length > 0) && now >= p.nextSessionTry) {
          p.nextSessionTry = now + C.PROACTIVE_SESSION_RETRY
          this.#peerSessions.start(p, now)
        }
        const c = this.#port.peerCounters(p.slot)
        if (c.txPackets !== p.lastTx || c.rxPackets !== p.lastRx) {
          p.lastTx = c.txPackets
          p.lastRx = c.rxPackets
          p.path.noteTraffic(now)
        }
        p.path.tick(now)
      }
      this.#peerSessions.tick(p, now)
    }
    this.#members.cacheTick(now)
    this.#pmtu.tick(now, this.#server.state === 'registered' ? this.#server.sessions.current : null, this.#peers.values())
  }

  /** Say goodbye so the server frees our address at once. */
  shutdown (): void {
    this.#server.shutdown()
    this.#opt.peerCache?.saveIfDue(this.#clock.now(), this.#clock.wallNow(), true)
  }

  // ── status ──────────────────────────────────────────────────────────────

  /**
   * The networks other nodes serve, for the kernel's routing table
   * (kernel-route-plan.ts planRoutes; daemon.ts): the server's own routes, then
   * each peer's approved routes.
   */
  routeOffers (): RouteOffer[] {
    const out: RouteOffer[] = []
    const srv = this.#server.tunnelIp
    if (srv !== 0) for (const prefix of this.#server.serverAttrs.routes) out.push({ via: srv, prefix })
    for (const p of this.#peers.values()) for (const prefix of p.attrs.routes) out.push({ via: p.tunnelIp, prefix })
    return out
  }

  status (): Pick<StatusReport, 'state' | 'problem' | 'peers' | 'uptimeSec'> {
    const now = this.#clock.now()
    const registered = this.#server.state === 'registered' || this.#server.state === 'unresponsive'
    const peers: PeerStatus[] = [{ ...this.#server.status(now), pmtu: this.#pmtu.report(null) }]
    for (const p of this.#peers.values()) peers.push(this.#peerStatus(p, now, registered))
    return { state: this.#server.state, problem: this.#server.problem, peers, uptimeSec: Math.round((now - this.#startedAt) / 1000) }
  }

  #peerStatus (p: PeerRemote, now: number, registered: boolean): PeerStatus {
    const c = this.#port.peerCounters(p.slot)
    const ps = p.path?.status(true, now) ?? null
    const direct = p.path?.directCandidate ?? null
    return {
      tunnelIp: intToIp(p.tunnelIp),
      tunnel6: p.attrs.tunnel6 === null ? null : formatIp6(p.attrs.tunnel6.addr),
      peerId: p.peerId,
      role: 'client',
      key: fingerprint(p.key),
      path: direct !== null ? 'direct' : registered ? 'relay' : 'connecting',
      endpoint: direct !== null ? formatEndpoint(direct.ip, direct.port) : registered ? formatEndpoint(this.#opt.serverIp, this.#opt.serverPort) : null,
      publicEndpoint: p.publicIp === 0 ? null : formatEndpoint(p.publicIp, p.publicPort),
      rttMs: direct !== null ? p.path?.directRttMs ?? null : null,
      txBytes: c.txBytes,
      rxBytes: c.rxBytes,
      txPackets: c.txPackets,
      rxPackets: c.rxPackets,
      session: describeSessions(p.sessions),
      // lastRxMs is the dataplane's wall-clock stamp of the last authenticated packet (data or keepalive).
      lastSeenSec: lastSeen(null, c.lastRxMs === 0 ? null : this.#clock.wallNow() - c.lastRxMs),
      note: ps === null ? NO_P2P_NOTE : ps.relayReason === null ? `direct (${direct?.kind ?? '?'} address)` : `relay: ${describeRelayReason(ps.relayReason)}`,
      p2p: ps,
      pmtu: this.#pmtu.report(p),
      ...(this.#opt.fec == null ? {} : { fec: p.sessions.current?.fec ?? null })
    }
  }
}
