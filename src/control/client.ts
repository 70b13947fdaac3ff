/**
 * The client's control plane: registration with the server, keepalives,
 * reconnection, the peer list, and end-to-end sessions with other clients
 * (set up through the server's relay). Sans-IO except through the injected
 * DataplanePort; time from the injected Clock via tick().
 *
 *   Registration state:
 *
 *     registering ──OK──▶ registered ──server silent / says it lost us──▶ reconnecting
 *        │   ▲                                                                 │
 *        │   └───────────────────────── retry with backoff ◀────────────────────┘
 *        └──AUTH_FAILED / refused──▶ rejected ──retry quietly with backoff──▶ registering
 *
 * While reconnecting, the old keys stay installed: nothing is torn down until
 * a new session replaces them, so a server that merely missed some
 * keepalives costs nothing.
 */
import type { Clock } from '../clock.js'
import type { Logger } from '../log.js'
import type { ControlHandler, ControlInput, DataplanePort } from './port.js'
import { IndexTable, sameBytes, emptySessionSet, newSession, randomInstanceId, retryDelay, sessionsOf, type Session, type SessionSet } from './session.js'
import * as C from './constants.js'
import { consumeInit, consumeResponse, createInit, createResponse } from '../crypto/noise.js'
import { MSG_CONTROL, MSG_HANDSHAKE_INIT, MSG_HANDSHAKE_RESP, MSG_REJECT, decodeReject, REJECT_AUTH_FAILED, REJECT_UNKNOWN_SESSION } from '../wire/messages.js'
import { decodeInitPayload, decodeRespPayload, encodeInitPayload, encodeRespPayload, RESP_OK, RESP_ADDRESS_IN_USE, RESP_SERVER_FULL, RESP_ADDRESS_OUTSIDE_NETWORK, RESP_ADDRESS_RESERVED, type RespStatus } from '../wire/payloads.js'
import { decodeControl, encodeControl, CTL_BYE, CTL_CONFIRM, CTL_PEER_UPDATE, CTL_PING, CTL_PONG, CTL_PUNCH, PEER_OP_REMOVE, type ControlMessage, type PeerUpdate } from '../wire/control.js'
import { formatEndpoint, intToIp } from '../wire/addr.js'
import type { LanAddr } from '../wire/payloads.js'
import type { PeerStatus, StatusReport } from './status.js'
import { DirectPath, NAT_LABEL, classifyLocal, describeRelayReason, type Endpoint, type NatMapping, type PathIo } from './p2p.js'

export interface ClientOptions {
  psk: Uint8Array
  tunnelIp: number
  prefix: number
  mtu: number
  serverIp: number
  serverPort: number
  keepaliveSec: number
  /** Display form of the server address, for messages. */
  serverName: string
  /** Try direct paths to other clients (--p2p, the default). */
  p2p?: boolean
  /** Our own addresses with the UDP port we listen on (LAN candidates for peers); read at registration. */
  localEndpoints?: () => LanAddr[]
}

/** The server answers NAT checks on its port + this (a second destination shows whether our NAT maps per destination). */
export const NAT_CHECK_PORT_OFFSET = 1
/** NAT checks to the server's second port: at registration, then this often while the result is unknown. */
const NAT_CHECK_INTERVAL = 2_000
/** A controlling client (the lower tunnel address) starts the end-to-end session with a new peer this often at most. */
const PROACTIVE_SESSION_RETRY = 5_000
/**
 * … and only this long after learning of it: the server pushes peer-list
 * changes every PEER_UPDATE_INTERVAL (100 ms), so the peer may not know us
 * yet, and an init from an unknown peer is dropped (a 1-s retry: measured as
 * the slow half of the time-to-direct matrix before this delay).
 */
const PROACTIVE_SESSION_DELAY = 200
/** At most one handshake per this interval because a peer sends on a session we do not have. */
const PEER_RESYNC_INTERVAL = 2_000
/** With direct paths on, the first retry of a peer handshake comes this soon (the init may have raced the peer list). */
const PEER_FIRST_RETRY = 400

export type RegistrationState = 'registering' | 'registered' | 'rejected' | 'reconnecting'

/** The server, as this client sees it. */
interface ServerRemote {
  sessions: SessionSet
  tunnelIp: number
  peerId: number
  lastPong: number
  rttMs: number | null
  pings: Map<number, number>
}

/** Another client. */
interface PeerRemote {
  readonly slot: number
  peerId: number
  tunnelIp: number
  publicIp: number
  publicPort: number
  sessions: SessionSet
  /** Latest init timestamp accepted from this peer (replay guard). */
  lastInitTs: number
  lastInstance: Uint8Array | null
  lan: LanAddr[]
  /** Direct-path state (null with --no-p2p). */
  path: DirectPath | null
  /** Data counters at the last tick (traffic detection for heartbeats). */
  lastTx: number
  lastRx: number
  nextSessionTry: number
  /** Last handshake started because the peer sent on a session we do not have. */
  lastResync: number
}

const SERVER_SLOT = 0
const NO_P2P_NOTE = 'through the server (direct paths are off: --no-p2p)'

export class ClientController implements ControlHandler {
  readonly #opt: ClientOptions
  readonly #port: DataplanePort
  readonly #clock: Clock
  readonly #log: Logger
  readonly #instanceId = randomInstanceId()
  readonly #indexes = new IndexTable<ServerRemote | PeerRemote>()
  readonly #server: ServerRemote = { sessions: emptySessionSet(), tunnelIp: 0, peerId: 0, lastPong: 0, rttMs: null, pings: new Map() }
  readonly #peers = new Map<number, PeerRemote>() // by tunnel IP
  /** The same peers by server-assigned id and by dataplane slot (kept in step by #upsertPeer/#removePeer). */
  readonly #byPeerId = new Map<number, PeerRemote>()
  readonly #bySlot = new Map<number, PeerRemote>()
  readonly #freeSlots: number[] = []
  #state: RegistrationState = 'registering'
  #problem: string | null = null
  #attempts = 0
  #nextAttemptAt = 0
  #lastTimestamp = 0
  #peerListVersion = 0
  #lastPingAt = 0
  #txid = 1
  #lastReregister = -Infinity
  #startedAt: number
  #registeredOnce = false
  /** Our public endpoint as the server's main port sees it. */
  #observed: Endpoint | null = null
  /** Our public endpoint as other destinations see it (the server's NAT-check port, peers). */
  readonly #observations: Endpoint[] = []
  #nat: NatMapping = 'unknown'
  readonly #natChecks = new Map<number, number>()
  #lastNatCheck = -Infinity
  #lastLostPing = -Infinity

  constructor (opt: ClientOptions, port: DataplanePort, clock: Clock, log: Logger, maxPeers: number) {
    this.#opt = opt
    this.#port = port
    this.#clock = clock
    this.#log = log
    for (let s = maxPeers - 1; s >= 1; s--) this.#freeSlots.push(s)
    this.#startedAt = clock.now()
    this.#nextAttemptAt = clock.now()
  }

  get state (): RegistrationState { return this.#state }
  get problem (): string | null { return this.#problem }

  // ── registration ────────────────────────────────────────────────────────

  #sendRegistration (now: number): void {
    const ss = this.#server.sessions
    if (ss.hs.state === 'initSent') this.#indexes.delete(ss.hs.localIndex)
    const localIndex = this.#indexes.allocate(this.#server)
    this.#lastTimestamp = Math.max(this.#lastTimestamp + 1, Date.now())
    const payload = encodeInitPayload({
      role: 1,
      prefixLen: this.#opt.prefix,
      mtu: this.#opt.mtu,
      tunnelIp: this.#opt.tunnelIp,
      instanceId: this.#instanceId,
      timestamp: this.#lastTimestamp,
      lan: this.#opt.p2p === true ? (this.#opt.localEndpoints?.() ?? []).slice(0, 8) : []
    })
    const { message, state } = createInit(this.#opt.psk, localIndex, payload)
    ss.hs = { state: 'initSent', localIndex, initiator: state, message, startedAt: now, sentAt: now, tries: 1 }
    this.#port.sendControl(message, this.#opt.serverIp, this.#opt.serverPort)
    this.#attempts++
    this.#nextAttemptAt = now + retryDelay(this.#attempts, C.HANDSHAKE_RETRY, C.REGISTER_BACKOFF_MAX, C.RETRY_JITTER)
    if (this.#attempts === 4 && this.#state !== 'rejected') {
      this.#setProblem(`no answer from the server at ${this.#opt.serverName} yet (${this.#attempts} tries); still trying — check the address, the port and any firewall`)
    }
  }

  #setProblem (p: string | null, level: 'warn' | 'error' = 'warn'): void {
    if (p === this.#problem) return
    this.#problem = p
    if (p !== null) this.#log[level](p)
  }

  #onServerResponse (input: ControlInput): void {
    const ss = this.#server.sessions
    if (ss.hs.state !== 'initSent') return
    const now = this.#clock.now()
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
    if (resp.status !== RESP_OK) {
      this.#state = 'rejected'
      this.#setProblem(`the server refused us: ${describeStatus(resp.status, this.#opt)}`, 'error')
      this.#indexes.delete(localIndex)
      this.#nextAttemptAt = now + Math.max(5_000, retryDelay(this.#attempts, C.HANDSHAKE_RETRY, C.REGISTER_BACKOFF_MAX, C.RETRY_JITTER))
      return
    }
    const session = newSession(localIndex, res.senderIndex, res.keys, now, true)
    this.#installCurrent(ss, session, SERVER_SLOT)
    const wasRegistered = this.#registeredOnce
    this.#server.tunnelIp = resp.tunnelIp
    this.#server.peerId = 0
    this.#server.lastPong = now
    this.#port.setPeer({ slot: SERVER_SLOT, peerId: 0, tunnelIp: resp.tunnelIp, endpointIp: this.#opt.serverIp, endpointPort: this.#opt.serverPort, relayVia: false })
    this.#port.setRecvKey(SERVER_SLOT, localIndex, session.keys.dataRecv)
    this.#port.setSendKey(SERVER_SLOT, session.keys.dataSend, session.remoteIndex)
    this.#sendToServer(session, { kind: CTL_CONFIRM })
    this.#state = 'registered'
    this.#attempts = 0
    this.#registeredOnce = true
    this.#problem = null
    if (resp.mtu !== this.#opt.mtu) {
      this.#log.warn(`the server uses MTU ${resp.mtu} and we use ${this.#opt.mtu}; packets larger than the smaller one may be dropped`)
    }
    this.#log.info(wasRegistered ? 'reconnected to the server' : 'registered with the server', {
      server: this.#opt.serverName, tunnelIp: intToIp(this.#opt.tunnelIp), serverTunnelIp: intToIp(resp.tunnelIp), publicEndpoint: formatEndpoint(resp.observedIp, resp.observedPort)
    })
    this.#peerListVersion = 0
    this.#ping(now)
    this.#noteObserved(resp.observedIp, resp.observedPort, now)
  }

  #onReject (input: ControlInput): void {
    if (input.ip !== this.#opt.serverIp || input.port !== this.#opt.serverPort) return
    let rej
    try { rej = decodeReject(input.bytes) } catch { return }
    const now = this.#clock.now()
    const ss = this.#server.sessions
    if (rej.reason === REJECT_AUTH_FAILED) {
      if (ss.hs.state !== 'initSent' || rej.index !== ss.hs.localIndex) return
      this.#state = this.#registeredOnce ? 'reconnecting' : 'rejected'
      this.#setProblem('the server rejected our key: authentication failed — the network key (-k/--key) is probably wrong; still retrying quietly', 'error')
    } else if (rej.reason === REJECT_UNKNOWN_SESSION) {
      // Index 0: our relayed packets come from an address the server does not
      // know (our NAT rebound or we moved): a ping on our session moves us.
      if (rej.index === 0 && ss.current !== null && now - this.#lastLostPing >= 500) {
        this.#lastLostPing = now
        this.#ping(now)
        return
      }
      const cur = ss.current
      if (cur === null || rej.index !== cur.remoteIndex) return
      if (now - this.#lastReregister < C.UNKNOWN_SESSION_REREGISTER_INTERVAL) return
      this.#lastReregister = now
      this.#log.info('the server lost our session (it restarted?); registering again')
      this.#state = 'reconnecting'
      this.#attempts = 0
      this.#sendRegistration(now)
    }
  }

  // ── control messages ────────────────────────────────────────────────────

  onControl (input: ControlInput): void {
    const type = input.bytes[0]
    if (input.kind === 'unknown-index') { this.#onUnknownIndex(input); return }
    if (input.kind === 'relayed') { this.#onRelayed(input); return }
    if (input.kind !== 'packet') return
    if (type === MSG_HANDSHAKE_RESP) {
      if (input.ip === this.#opt.serverIp && input.port === this.#opt.serverPort) this.#onServerResponse(input)
    } else if (type === MSG_REJECT) {
      this.#onReject(input)
    } else if (type === MSG_CONTROL) {
      this.#onSealedControl(input, null)
    }
  }

  /** Control messages dropped: malformed, unknown session, failed authentication (probes from anyone land here). */
  readonly counters = { p2pDropped: 0 }

  #onSealedControl (input: ControlInput, relayedFrom: PeerRemote | null): void {
    const drop = (): void => { this.counters.p2pDropped++ }
    if (input.bytes.length < 32) { drop(); return }
    const idx = new DataView(input.bytes.buffer, input.bytes.byteOffset).getUint32(4, true)
    const owner = this.#indexes.get(idx)
    if (owner === undefined) { drop(); return }
    if (relayedFrom !== null && owner !== relayedFrom) { drop(); return }
    const s = sessionsOf(owner.sessions).find(x => x.localIndex === idx)
    if (s === undefined) { drop(); return }
    const plain = s.ctl.open(input.bytes)
    if (plain === null) { drop(); return }
    let msg: ControlMessage
    try { msg = decodeControl(plain) } catch { drop(); return }
    if (owner === this.#server) this.#onServerMessage(s, msg, input)
    else this.#onPeerMessage(owner as PeerRemote, s, msg, relayedFrom === null ? { ip: input.ip, port: input.port, sock: input.sock ?? 0 } : null)
  }

  #onServerMessage (s: Session, msg: ControlMessage, input: ControlInput): void {
    const now = this.#clock.now()
    const srv = this.#server
    switch (msg.kind) {
      case CTL_PONG: {
        if (input.ip === this.#opt.serverIp && input.port === this.#opt.serverPort + NAT_CHECK_PORT_OFFSET) {
          // The NAT check: how the server's second port sees us.
          if (this.#natChecks.delete(msg.txid)) this.#addObservation({ ip: msg.observedIp, port: msg.observedPort }, now)
          break
        }
        if (input.ip !== this.#opt.serverIp || input.port !== this.#opt.serverPort) break
        srv.lastPong = now
        if (msg.txid !== 0 && srv.pings.has(msg.txid)) this.#noteObserved(msg.observedIp, msg.observedPort, now)
        const sent = srv.pings.get(msg.txid)
        if (sent !== undefined) {
          srv.pings.delete(msg.txid)
          const rtt = now - sent
          srv.rttMs = srv.rttMs === null ? rtt : srv.rttMs * 0.8 + rtt * 0.2
        }
        if (this.#state === 'reconnecting' && s === srv.sessions.current) this.#state = 'registered'
        break
      }
      case CTL_PEER_UPDATE: {
        srv.lastPong = now
        this.#applyPeerUpdate(msg)
        break
      }
      case CTL_BYE: {
        this.#log.warn('the server is shutting down; will reconnect when it is back')
        this.#state = 'reconnecting'
        this.#attempts = 0
        this.#nextAttemptAt = now + C.HANDSHAKE_RETRY
        break
      }
      default: break
    }
  }

  /**
   * Apply one PeerUpdate. A full list (RESET … FINAL, SEQ 0, 1, 2 …) replaces
   * the peers; a delta applies on top. A lost message (SEQ gap) or a delta
   * that does not follow our version leaves us at version 0, so our next
   * ping makes the server send the full list again.
   */
  #applyPeerUpdate (msg: PeerUpdate): void {
    if (msg.reset) { this.#resetMarks = new Set(); this.#expectSeq = 0 }
    if (msg.seq !== this.#expectSeq) this.#listBroken = true
    this.#expectSeq = msg.final ? 0 : (msg.seq + 1) % 64
    for (const e of msg.entries) {
      if (e.op === PEER_OP_REMOVE) { this.#removePeer(e.tunnelIp); continue }
      if (e.tunnelIp === this.#opt.tunnelIp) continue
      this.#resetMarks?.add(e.tunnelIp)
      this.#upsertPeer(e.peerId, e.tunnelIp, e.publicIp, e.publicPort, e.lan)
    }
    if (!msg.final) return
    if (this.#resetMarks !== null) {
      for (const ip of [...this.#peers.keys()]) if (!this.#resetMarks.has(ip)) this.#removePeer(ip)
      this.#resetMarks = null
      this.#peerListVersion = this.#listBroken ? 0 : msg.version
    } else {
      this.#peerListVersion = !this.#listBroken && msg.version === this.#peerListVersion + 1 ? msg.version : 0
    }
    this.#listBroken = false
  }

  #expectSeq = 0
  #listBroken = false
  #resetMarks: Set<number> | null = null

  #upsertPeer (peerId: number, tunnelIp: number, publicIp: number, publicPort: number, lan: LanAddr[]): void {
    const now = this.#clock.now()
    let p = this.#peers.get(tunnelIp)
    if (p === undefined) {
      const slot = this.#freeSlots.pop()
      if (slot === undefined) {
        this.#log.warn('too many peers; ignoring one', { peer: intToIp(tunnelIp) })
        return
      }
      p = {
        slot, peerId, tunnelIp, publicIp, publicPort, sessions: emptySessionSet(), lastInitTs: 0, lastInstance: null, lan,
        path: null, lastTx: 0, lastRx: 0, nextSessionTry: now + PROACTIVE_SESSION_DELAY, lastResync: -Infinity
      }
      if (this.#opt.p2p === true) p.path = new DirectPath(this.#pathIo(p), this.#opt.tunnelIp < tunnelIp, now)
      this.#peers.set(tunnelIp, p)
      this.#bySlot.set(slot, p)
      this.#log.debug('peer joined', { peer: intToIp(tunnelIp) })
    }
    if (this.#byPeerId.get(p.peerId) === p) this.#byPeerId.delete(p.peerId)
    p.peerId = peerId
    this.#byPeerId.set(peerId, p)
    p.publicIp = publicIp
    p.publicPort = publicPort
    p.lan = lan
    this.#routePeer(p)
    p.path?.setAdvertised(publicIp === 0 ? null : { ip: publicIp, port: publicPort }, lan, now)
  }

  /** Install the peer's route: direct to its confirmed candidate, else through the relay. */
  #routePeer (p: PeerRemote): void {
    const st = p.path?.state
    const c = st !== undefined && st.state === 'direct' ? p.path!.candidates.get(st.key) : undefined
    if (c !== undefined) {
      this.#port.setPeer({ slot: p.slot, peerId: p.peerId, tunnelIp: p.tunnelIp, endpointIp: c.ip, endpointPort: c.port, relayVia: false, sock: c.sock })
    } else {
      this.#port.setPeer({ slot: p.slot, peerId: p.peerId, tunnelIp: p.tunnelIp, endpointIp: this.#opt.serverIp, endpointPort: this.#opt.serverPort, relayVia: true })
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
          : { kind: CTL_PONG, txid, peerListVersion: 0, observedIp: observed?.ip ?? 0, observedPort: observed?.port ?? 0 }
        const bytes = s.ctl.seal(encodeControl(m))
        if (ttl === null) this.#port.sendControl(bytes, ip, port, sock)
        else this.#port.sendControlTtl(bytes, ip, port, ttl, sock)
      },
      openSockets: (n) => this.#openBirthdaySockets(n),
      adoptSocket: (sock) => { this.#port.adoptProbeSocket(sock) },
      closeSockets: () => { this.#releaseBirthdaySockets() },
      sendPunch: (m) => {
        const s = p.sessions.current
        if (s !== null) this.#sendRelayed(p, s.ctl.seal(encodeControl(m)))
      },
      setRoute: () => { this.#routePeer(p) },
      localNat: () => this.#nat,
      localCandidates: () => this.#localCandidates(),
      observed: (ep) => { this.#addObservation(ep, this.#clock.now()) },
      pathLost: () => {
        const now = this.#clock.now()
        if (now - this.#lastLostPing >= 500) { this.#lastLostPing = now; this.#ping(now) }
      },
      log: (msg, fields) => { this.#log.info(msg, { peer: intToIp(p.tunnelIp), ...fields }) }
    }
  }

  /**
   * Birthday searches share one pool of probe sockets: a socket's mapping on
   * a symmetric NAT is per destination, so one socket can probe (and later
   * carry) several peers. The pool is opened by the first search and its
   * unadopted sockets closed when the last running search ends.
   */
  #birthdayPool: number[] | null = null
  #birthdayUsers = 0

  #openBirthdaySockets (n: number): number[] {
    if (this.#birthdayPool === null) {
      const socks = this.#port.openProbeSockets(n)
      if (socks.length === 0) return socks
      this.#birthdayPool = socks
    }
    this.#birthdayUsers++
    return this.#birthdayPool
  }

  #releaseBirthdaySockets (): void {
    if (this.#birthdayUsers === 0) return
    if (--this.#birthdayUsers > 0 || this.#birthdayPool === null) return
    this.#port.closeProbeSockets(this.#birthdayPool) // adopted ones stay open
    this.#birthdayPool = null
  }

  /** What we tell peers to probe: our public endpoint as the server sees it, then our own addresses. */
  #localCandidates (): LanAddr[] {
    const out: LanAddr[] = []
    if (this.#observed !== null) out.push({ ip: this.#observed.ip, port: this.#observed.port })
    for (const a of this.#opt.localEndpoints?.() ?? []) {
      if (!out.some(o => o.ip === a.ip && o.port === a.port)) out.push(a)
    }
    return out.slice(0, 8)
  }

  #noteObserved (ip: number, port: number, now: number): void {
    if (ip === 0) return
    if (this.#observed !== null && this.#observed.ip === ip && this.#observed.port === port) return
    const first = this.#observed === null
    this.#observed = { ip, port }
    this.#observations.length = 0
    this.#reclassify(now)
    if (this.#opt.p2p === true) {
      this.#natCheck(now)
      if (!first) {
        this.#log.info('our public endpoint changed', { publicEndpoint: formatEndpoint(ip, port) })
        for (const p of this.#peers.values()) p.path?.localChanged(now)
      }
    }
  }

  #addObservation (ep: Endpoint, now: number): void {
    if (ep.ip === 0) return
    if (this.#observations.some(o => o.ip === ep.ip && o.port === ep.port)) return
    this.#observations.push(ep)
    if (this.#observations.length > 8) this.#observations.shift()
    this.#reclassify(now)
  }

  #reclassify (now: number): void {
    const local = this.#opt.localEndpoints?.() ?? []
    const nat = classifyLocal(this.#observed, local.map(a => a.ip), local[0]?.port ?? -1, this.#observations)
    if (nat === this.#nat) return
    this.#nat = nat
    this.#log.info('NAT classified', { nat: NAT_LABEL[nat] })
    // Tell every peer (a Punch carries our NAT kind): a peer that heard
    // 'unknown' from us would pick the wrong strategy.
    for (const p of this.#peers.values()) p.path?.localChanged(now)
  }

  /** Ask the server's second port how it sees us (a NAT check), on the registration session. */
  #natCheck (now: number): void {
    const s = this.#server.sessions.current
    if (s === null) return
    this.#lastNatCheck = now
    const txid = this.#txid++ >>> 0
    this.#natChecks.set(txid, now)
    if (this.#natChecks.size > 8) this.#natChecks.delete(this.#natChecks.keys().next().value!)
    this.#port.sendControl(s.ctl.seal(encodeControl({ kind: CTL_PING, txid, peerListVersion: this.#peerListVersion })), this.#opt.serverIp, this.#opt.serverPort + NAT_CHECK_PORT_OFFSET)
  }

  #removePeer (tunnelIp: number): void {
    const p = this.#peers.get(tunnelIp)
    if (p === undefined) return
    for (const s of sessionsOf(p.sessions)) this.#dropIndex(s.localIndex)
    if (p.sessions.hs.state === 'initSent') this.#indexes.delete(p.sessions.hs.localIndex)
    this.#peers.delete(tunnelIp)
    this.#bySlot.delete(p.slot)
    if (this.#byPeerId.get(p.peerId) === p) this.#byPeerId.delete(p.peerId)
    p.path?.destroy(this.#clock.now())
    this.#port.removePeer(p.slot)
    this.#freeSlots.push(p.slot)
    this.#log.debug('peer left', { peer: intToIp(tunnelIp) })
  }

  // ── end-to-end sessions with other clients (through the relay) ──────────

  onNeedSession (slot: number): void {
    if (slot === SERVER_SLOT) return // the registration loop takes care of the server
    const p = this.#bySlot.get(slot)
    if (p === undefined || p.sessions.hs.state === 'initSent' || p.sessions.current !== null) return
    this.#startPeerHandshake(p, this.#clock.now())
  }

  /**
   * Data for a session we do not have. Mostly stale packets of a session we
   * dropped (harmless). But when we have no session at all with the sender,
   * the two sides disagree: we forgot the peer (e.g. a peer list sent while
   * it was re-registering after a server restart lacked it) while it still
   * sends on the old session, and would do so until its rekey (120 s) —
   * seen as a tunnel that never came back after a server restart. Then we
   * start a new handshake ourselves (at most one per PEER_RESYNC_INTERVAL).
   * The sender is known from the relay envelope (via), or for a direct path
   * from its address.
   */
  #onUnknownIndex (input: ControlInput): void {
    let p: PeerRemote | undefined
    if (input.via !== 0) {
      if (input.ip !== this.#opt.serverIp || input.port !== this.#opt.serverPort) return
      p = this.#byPeerId.get(input.via)
    } else {
      p = [...this.#peers.values()].find(x => x.path?.candidates.get(input.ip * 65536 + input.port) !== undefined)
    }
    if (p === undefined || p.sessions.current !== null || p.sessions.pending !== null || p.sessions.hs.state === 'initSent') return
    const now = this.#clock.now()
    if (now - p.lastResync < PEER_RESYNC_INTERVAL) return
    p.lastResync = now
    this.#log.debug('data from a peer on a session we do not have; starting a new one', { peer: intToIp(p.tunnelIp) })
    this.#startPeerHandshake(p, now)
  }

  onEndpoint (_slot: number, _ip: number, _port: number): void {
    // Clients learn endpoints from the server's peer list.
  }

  #startPeerHandshake (p: PeerRemote, now: number): void {
    const localIndex = this.#indexes.allocate(p)
    this.#lastTimestamp = Math.max(this.#lastTimestamp + 1, Date.now())
    const payload = encodeInitPayload({
      role: 2, prefixLen: this.#opt.prefix, mtu: this.#opt.mtu, tunnelIp: this.#opt.tunnelIp,
      instanceId: this.#instanceId, timestamp: this.#lastTimestamp, lan: []
    })
    const { message, state } = createInit(this.#opt.psk, localIndex, payload)
    if (p.sessions.hs.state === 'initSent') this.#indexes.delete(p.sessions.hs.localIndex)
    const tries = p.sessions.hs.state === 'initSent' ? p.sessions.hs.tries + 1 : 1
    p.sessions.hs = { state: 'initSent', localIndex, initiator: state, message, startedAt: now, sentAt: now, tries }
    this.#sendRelayed(p, message)
  }

  #onRelayed (input: ControlInput): void {
    if (input.ip !== this.#opt.serverIp || input.port !== this.#opt.serverPort) return
    const p = this.#byPeerId.get(input.via)
    if (p === undefined) return
    const type = input.bytes[0]
    if (type === MSG_HANDSHAKE_INIT) this.#onPeerInit(p, input)
    else if (type === MSG_HANDSHAKE_RESP) this.#onPeerResponse(p, input)
    else if (type === MSG_CONTROL) this.#onSealedControl(input, p)
  }

  #onPeerInit (p: PeerRemote, input: ControlInput): void {
    const now = this.#clock.now()
    let hs
    try { hs = consumeInit(this.#opt.psk, input.bytes) } catch { return }
    let req
    try { req = decodeInitPayload(hs.payload) } catch { return }
    // The server vouches for who sent it (peerId); the claim must match what the server told us.
    if (req.role !== 2 || req.tunnelIp !== p.tunnelIp) return
    if (p.lastInstance !== null && sameBytes(p.lastInstance, req.instanceId) && req.timestamp <= p.lastInitTs) return
    p.lastInstance = req.instanceId
    p.lastInitTs = req.timestamp
    const localIndex = this.#indexes.allocate(p)
    const { message, keys } = createResponse(hs.state, localIndex, encodeRespPayload({
      status: RESP_OK, prefixLen: this.#opt.prefix, mtu: this.#opt.mtu, tunnelIp: this.#opt.tunnelIp, peerId: 0, observedIp: 0, observedPort: 0
    }))
    const session = newSession(localIndex, hs.senderIndex, keys, now, false)
    if (p.sessions.pending) this.#dropIndex(p.sessions.pending.localIndex)
    p.sessions.pending = session
    this.#port.setRecvKey(p.slot, localIndex, keys.dataRecv)
    this.#sendRelayed(p, message)
  }

  #onPeerResponse (p: PeerRemote, input: ControlInput): void {
    const ss = p.sessions
    if (ss.hs.state !== 'initSent') return
    let res
    try { res = consumeResponse(ss.hs.initiator, input.bytes) } catch { return }
    const now = this.#clock.now()
    const localIndex = ss.hs.localIndex
    ss.hs = { state: 'idle' }
    const session = newSession(localIndex, res.senderIndex, res.keys, now, true)
    this.#installCurrent(ss, session, p.slot)
    this.#port.setRecvKey(p.slot, localIndex, session.keys.dataRecv)
    this.#port.setSendKey(p.slot, session.keys.dataSend, session.remoteIndex)
    this.#sendRelayed(p, session.ctl.seal(encodeControl({ kind: CTL_CONFIRM })))
    this.#log.debug('session with peer established', { peer: intToIp(p.tunnelIp) })
    p.path?.setSession(true, now)
  }

  /** A message on a peer session; `from` is the sender's address when it came straight (not through the relay). */
  #onPeerMessage (p: PeerRemote, s: Session, msg: ControlMessage, from: (Endpoint & { sock: number }) | null): void {
    const now = this.#clock.now()
    if (msg.kind === CTL_CONFIRM && p.sessions.pending === s) {
      this.#installCurrent(p.sessions, s, p.slot)
      p.sessions.pending = null
      this.#port.setSendKey(p.slot, s.keys.dataSend, s.remoteIndex)
      this.#log.debug('session with peer established', { peer: intToIp(p.tunnelIp) })
      p.path?.setSession(true, now)
    } else if (msg.kind === CTL_PING) {
      if (from === null) this.#sendRelayed(p, s.ctl.seal(encodeControl({ kind: CTL_PONG, txid: msg.txid, peerListVersion: 0, observedIp: 0, observedPort: 0 })))
      else if (p.path !== null && p.sessions.current !== null) p.path.onPing(msg.txid, from.ip, from.port, now, from.sock)
    } else if (msg.kind === CTL_PONG) {
      if (from !== null) p.path?.onPong(msg.txid, from.ip, from.port, { ip: msg.observedIp, port: msg.observedPort }, now, from.sock)
    } else if (msg.kind === CTL_PUNCH) {
      if (from === null && p.sessions.current !== null) p.path?.onPunch(msg, now)
    }
  }

  /** Make `s` the current session of a set; the old current becomes previous (receive-only for a grace period). */
  #installCurrent (ss: SessionSet, s: Session, _slot: number): void {
    if (ss.current !== null && ss.current !== s) {
      if (ss.previous !== null) this.#dropIndex(ss.previous.localIndex)
      ss.previous = ss.current
      ss.previousUntil = this.#clock.now() + C.PREVIOUS_SESSION_GRACE
    }
    ss.current = s
  }

  #dropIndex (localIndex: number): void {
    this.#indexes.delete(localIndex)
    this.#port.dropRecvIndex(localIndex)
  }

  #sendRelayed (p: PeerRemote, inner: Uint8Array): void {
    const out = new Uint8Array(8 + inner.length)
    const v = new DataView(out.buffer)
    v.setUint32(0, 5, true)
    v.setUint32(4, p.peerId, true)
    out.set(inner, 8)
    this.#port.sendControl(out, this.#opt.serverIp, this.#opt.serverPort)
  }

  #sendToServer (s: Session, m: ControlMessage): void {
    this.#port.sendControl(s.ctl.seal(encodeControl(m)), this.#opt.serverIp, this.#opt.serverPort)
  }

  #ping (now: number): void {
    const s = this.#server.sessions.current
    if (s === null) return
    const txid = this.#txid++ >>> 0
    this.#server.pings.set(txid, now)
    if (this.#server.pings.size > 16) this.#server.pings.delete(this.#server.pings.keys().next().value!)
    this.#lastPingAt = now
    this.#sendToServer(s, { kind: CTL_PING, txid, peerListVersion: this.#peerListVersion })
  }

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
    if (this.#state !== 'registered' || this.#server.sessions.hs.state !== 'idle') return C.CLIENT_TICK
    const now = this.#clock.now()
    if (this.#natCheckDue(now)) return C.CLIENT_TICK
    let next = C.CLIENT_IDLE_TICK
    for (const p of this.#peers.values()) {
      const ss = p.sessions
      if (ss.hs.state !== 'idle') return C.CLIENT_TICK
      if (p.path === null) continue
      if (p.path.wantsFastTick(now)) return C.CLIENT_TICK
      // tick() starts the session at nextSessionTry; be there on time.
      if (this.#startsSession(p)) next = Math.min(next, Math.max(C.CLIENT_TICK, p.nextSessionTry - now))
    }
    return next
  }

  /** The NAT check is due: sent once the server has told us our public endpoint, again every NAT_CHECK_INTERVAL until classified. */
  #natCheckDue (now: number): boolean {
    return this.#opt.p2p === true && this.#nat === 'unknown' && this.#observed !== null && now - this.#lastNatCheck >= NAT_CHECK_INTERVAL
  }

  /** A peer with a direct-path candidate and no session, for which we (the lower tunnel address) start the end-to-end session. */
  #startsSession (p: PeerRemote): boolean {
    const ss = p.sessions
    return p.path !== null && ss.current === null && ss.hs.state === 'idle' && ss.pending === null && this.#opt.tunnelIp < p.tunnelIp
  }

  tick (): void {
    const now = this.#clock.now()
    const srv = this.#server
    const keepalive = this.#opt.keepaliveSec * 1000
    // Registration / reconnection.
    if (this.#state !== 'registered') {
      if (now >= this.#nextAttemptAt) this.#sendRegistration(now)
    } else {
      const cur = srv.sessions.current
      if (now - srv.lastPong > Math.max(15_000, 3 * keepalive)) {
        this.#log.warn(`no answer from the server for ${Math.round((now - srv.lastPong) / 1000)} s; reconnecting`)
        this.#state = 'reconnecting'
        this.#attempts = 0
        this.#sendRegistration(now)
      } else if (cur !== null && now - cur.createdAt > C.REKEY_AFTER && srv.sessions.hs.state === 'idle') {
        this.#sendRegistration(now) // rekey = register again with the same instance id
      } else if (srv.sessions.hs.state === 'initSent' && now >= this.#nextAttemptAt) {
        this.#sendRegistration(now)
      } else if (now - this.#lastPingAt >= keepalive) {
        this.#ping(now)
      }
    }
    this.#expireSessions(srv.sessions, now)
    // Peers: handshake retries, rekeys, expiry.
    if (registered(this.#state) && this.#natCheckDue(now)) this.#natCheck(now)
    for (const p of this.#peers.values()) {
      const ss = p.sessions
      // Direct paths: start the end-to-end session ourselves (the lower tunnel address does), watch traffic, run the path timers.
      if (p.path !== null) {
        if (this.#startsSession(p) && registered(this.#state) && now >= p.nextSessionTry) {
          p.nextSessionTry = now + PROACTIVE_SESSION_RETRY
          this.#startPeerHandshake(p, now)
        }
        const c = this.#port.peerCounters(p.slot)
        if (c.txPackets !== p.lastTx || c.rxPackets !== p.lastRx) {
          p.lastTx = c.txPackets
          p.lastRx = c.rxPackets
          p.path.noteTraffic(now)
        }
        p.path.tick(now)
      }
      if (ss.hs.state === 'initSent' && now - ss.hs.sentAt >= (ss.hs.tries === 1 && p.path !== null ? PEER_FIRST_RETRY : C.HANDSHAKE_RETRY)) {
        if (ss.hs.tries >= C.PEER_HANDSHAKE_TRIES) {
          this.#indexes.delete(ss.hs.localIndex)
          ss.hs = { state: 'idle' }
        } else {
          this.#startPeerHandshake(p, now)
        }
      }
      const cur = ss.current
      if (cur !== null && cur.initiator && now - cur.createdAt > C.REKEY_AFTER && ss.hs.state === 'idle') this.#startPeerHandshake(p, now)
      this.#expireSessions(ss, now)
      if (ss.current === null) p.path?.setSession(false, now)
    }
  }

  #expireSessions (ss: SessionSet, now: number): void {
    if (ss.previous !== null && now > ss.previousUntil) { this.#dropIndex(ss.previous.localIndex); ss.previous = null }
    if (ss.pending !== null && now - ss.pending.createdAt > C.PENDING_SESSION_TIMEOUT) { this.#dropIndex(ss.pending.localIndex); ss.pending = null }
    if (ss.current !== null && now - ss.current.createdAt > C.REJECT_AFTER) { this.#dropIndex(ss.current.localIndex); ss.current = null }
  }

  /** Say goodbye so the server frees our address at once. */
  shutdown (): void {
    const s = this.#server.sessions.current
    if (s !== null) this.#sendToServer(s, { kind: CTL_BYE, reason: 1 })
  }

  status (): Pick<StatusReport, 'state' | 'problem' | 'peers' | 'uptimeSec'> {
    const now = this.#clock.now()
    const peers: PeerStatus[] = []
    const srv = this.#server
    const registered = this.#state === 'registered'
    const sc = this.#port.peerCounters(SERVER_SLOT)
    peers.push({
      tunnelIp: srv.tunnelIp === 0 ? '?' : intToIp(srv.tunnelIp),
      peerId: 0,
      role: 'server',
      path: registered ? 'direct' : 'connecting',
      endpoint: formatEndpoint(this.#opt.serverIp, this.#opt.serverPort),
      publicEndpoint: formatEndpoint(this.#opt.serverIp, this.#opt.serverPort),
      rttMs: srv.rttMs === null ? null : Math.round(srv.rttMs * 100) / 100,
      txBytes: sc.txBytes,
      rxBytes: sc.rxBytes,
      txPackets: sc.txPackets,
      rxPackets: sc.rxPackets,
      session: srv.sessions.current ? 'established' : (srv.sessions.hs.state === 'initSent' ? 'handshaking' : 'none'),
      lastSeenSec: srv.lastPong === 0 ? null : Math.round((now - srv.lastPong) / 100) / 10,
      note: this.#problem
    })
    for (const p of this.#peers.values()) {
      const c = this.#port.peerCounters(p.slot)
      const ps = p.path?.status(true, now) ?? null
      const st = p.path?.state
      const direct = st !== undefined && st.state === 'direct' ? p.path!.candidates.get(st.key) ?? null : null
      peers.push({
        tunnelIp: intToIp(p.tunnelIp),
        peerId: p.peerId,
        role: 'client',
        path: direct !== null ? 'direct' : registered ? 'relay' : 'connecting',
        endpoint: direct !== null ? formatEndpoint(direct.ip, direct.port) : registered ? formatEndpoint(this.#opt.serverIp, this.#opt.serverPort) : null,
        publicEndpoint: p.publicIp === 0 ? null : formatEndpoint(p.publicIp, p.publicPort),
        rttMs: direct !== null && direct.rttMs !== null ? Math.round(direct.rttMs * 100) / 100 : null,
        txBytes: c.txBytes,
        rxBytes: c.rxBytes,
        txPackets: c.txPackets,
        rxPackets: c.rxPackets,
        session: p.sessions.current ? 'established' : (p.sessions.hs.state === 'initSent' ? 'handshaking' : 'none'),
        lastSeenSec: c.lastRxMs === 0 ? null : Math.round((Date.now() - c.lastRxMs) / 100) / 10,
        note: ps === null ? NO_P2P_NOTE : ps.relayReason === null ? `direct (${direct?.kind ?? '?'} address)` : `relay: ${describeRelayReason(ps.relayReason)}`,
        p2p: ps
      })
    }
    return { state: this.#state, problem: this.#problem, peers, uptimeSec: Math.round((now - this.#startedAt) / 1000) }
  }
}

function registered (s: RegistrationState): boolean { return s === 'registered' || s === 'reconnecting' }

function describeStatus (status: RespStatus, opt: ClientOptions): string {
  switch (status) {
    case RESP_ADDRESS_IN_USE: return `the tunnel address ${intToIp(opt.tunnelIp)} is in use by another live client — pick another --tun address`
    case RESP_SERVER_FULL: return 'the server is full (its --max-clients is reached)'
    case RESP_ADDRESS_OUTSIDE_NETWORK: return `the tunnel address ${intToIp(opt.tunnelIp)} is outside the server's network — use an address in the server's --tun network`
    case RESP_ADDRESS_RESERVED: return `the tunnel address ${intToIp(opt.tunnelIp)} is reserved (the server's own, the network or the broadcast address)`
    default: return `status ${status}`
  }
}
