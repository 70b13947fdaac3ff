/**
 * The server's control plane: registration, the client registry, peer-list
 * distribution, keepalives, expiry, rejects. Sans-IO except through the
 * injected DataplanePort; time comes from the injected Clock via tick().
 *
 * Registration (client → server, see docs/PROTOCOL.md):
 *   1. init (type 1, role 1) → consumeInit: a wrong network key fails here,
 *      cheaply (no DH): answer Reject AUTH_FAILED (rate-limited) and log the
 *      address at most once a minute. It yields the client's static key.
 *   2. check the claimed address (inside our network, not reserved), the
 *      registry (control/registry.ts: is the address bound to another node
 *      key, is this key revoked or not authorized), a live client holding
 *      it, capacity, and the init timestamp against the newest one seen from
 *      this static key (replays; kept when the client record goes).
 *   3. response (type 2) with status. On OK for a new registration only a
 *      PendingRegistration is kept (pending-registrations.ts: no client slot,
 *      no address; at most PENDING_PER_SOURCE per source IP, PENDING_MAX in
 *      all, forgotten after PENDING_REGISTRATION_TTL); a rekey of a
 *      registered client (its own key) puts the session pending on its
 *      record and installs its receive key.
 *   4. Confirm (control) on the pending session → it proves the client holds
 *      its static private key: the registry is asked again (the address may
 *      have been bound meanwhile), the client takes a slot, the registry
 *      binds the address to the key, the client is active at the confirm's
 *      source address, and every other client learns of it (with its static
 *      key, in the peer list).
 *
 * The operator's `nodes` commands reach the registry through nodesAdmin
 * (control/nodes.ts); a revoked node is told Bye and removed at once, and the
 * next peer-list flush tells every other client.
 *
 * Sealed control messages are opened, and sessions rotated in and expired,
 * by session.ts (the same code as the client's).
 */
import type { Clock, WallClock } from '../clock.js'
import type { Random } from '../random.js'
import type { Logger } from '../log.js'
import type { ControlComponents, ControlHandler, ControlInput, DataplanePort } from './port.js'
import { IndexTable, sameBytes, confirmPending, emptySessionSet, expireSessions, newSession, openSealedControl, sessionsOf, wipeSession, type Session, type SessionSet } from './session.js'
import { PerKeyInterval, TokenBucket } from './rate-limit.js'
import * as C from './constants.js'
import { consumeInit, createResponse, type SessionKeys, type StaticKey } from '../crypto/noise.js'
import type { HandshakePool } from './handshake-pool.js'
import { stripMacs } from '../wire/cookie.js'
import { isVpnError } from '../errors.js'
import { MSG_CONTROL, MSG_HANDSHAKE_INIT, encodeReject, REJECT_AUTH_FAILED, REJECT_UNKNOWN_SESSION, REJECT_VERSION } from '../wire/messages.js'
import { PROTOCOL_VERSION } from '../wire/constants.js'
import { decodeInitPayload, encodeRespPayload, RESP_OK, RESP_ADDRESS_IN_USE, RESP_SERVER_FULL, RESP_ADDRESS_OUTSIDE_NETWORK, RESP_ADDRESS_RESERVED, RESP_ADDRESS_BOUND, RESP_KEY_REVOKED, RESP_NOT_AUTHORIZED, type RespStatus } from '../wire/payloads.js'
import { encodeControl, encodePeerUpdates, CTL_BYE, CTL_CONFIRM, CTL_PING, CTL_PONG, PEER_OP_REMOVE, PEER_OP_UPSERT, type PeerEntry } from '../wire/control.js'
import { PEER_UPDATE_MAX_BYTES } from '../wire/constants.js'
import { broadcastAddress, endpointKey, formatEndpoint, inSubnet, intToIp, networkAddress } from '../wire/addr.js'
import type { PeerStatus, StatusReport } from './status.js'
import { RTT_WARMUP, RTT_WARMUP_GAP, RttWindow, SERVER_RTT_PING_INTERVAL, lastSeen } from './rtt.js'
import { UserPings, type PingStarted } from './user-ping.js'
import type { ClaimResult, NodeRegistry, RegistryAdmin } from './registry.js'
import { fingerprint } from '../identity/key-text.js'
import { PendingRegistration, PendingRegistrations } from './pending-registrations.js'
import type { NodesAdmin } from './nodes.js'
import { FileRegistry } from '../state/registry-file.js'

/** The response status of each registry refusal. */
const REFUSAL_STATUS = { 'address-bound-to-other-key': RESP_ADDRESS_BOUND, 'key-revoked': RESP_KEY_REVOKED, 'not-authorized': RESP_NOT_AUTHORIZED } as const

/** The NAT-check port answers Pings only. */
const NAT_CHECK_KINDS = [CTL_PING] as const

export interface ServerOptions {
  psk: Uint8Array
  tunnelIp: number
  prefix: number
  mtu: number
  maxClients: number
  /** Seconds between client keepalives (sets the expiry). */
  keepaliveSec: number
  /** This server's static key (identity/node-key.ts). */
  nodeKey: StaticKey
  /** Address ↔ key bindings (daemon: state/registry-file.ts in the state dir); in memory only when absent. */
  registry?: NodeRegistry & RegistryAdmin
}

/** Newest init timestamps kept per client static key (replay memory); the oldest entry goes beyond this. */
const REPLAY_MEMORY_MAX = 65_536
const keyHex = (k: Uint8Array): string => Buffer.from(k).toString('hex')

/** A registered (or registering) client. */
interface ClientRecord {
  readonly peerId: number
  readonly slot: number
  readonly tunnelIp: number
  /** The client's static public key (authenticated by the handshake). */
  readonly key: Uint8Array
  /** Active once a Confirm arrived; only active clients get traffic and appear in peer lists. */
  active: boolean
  endpointIp: number
  endpointPort: number
  /** Monotonic ms of the last authenticated control message. */
  lastSeen: number
  sessions: SessionSet
  /** The LAN endpoints it announced (passed on to peers in the peer list). */
  lan: { ip: number, port: number }[]
  /** Our RTT Pings to it (one per keepalive interval, from activation): txid → sent at, at most 4. */
  pings: Map<number, number>
  lastPingAt: number
  rtt: RttWindow
  /** A new source endpoint being checked (return routability): our Ping with `txid` went there; its Pong from there moves the client. */
  roam: { ip: number, port: number, txid: number, at: number } | null
}

export class ServerController implements ControlHandler {
  readonly #opt: ServerOptions
  readonly #port: DataplanePort
  readonly #clock: Clock & WallClock
  readonly #log: Logger
  readonly #byIp = new Map<number, ClientRecord>()
  /** Records by hex static key: a key holds one address. */
  readonly #byKey = new Map<string, ClientRecord>()
  /** Newest init timestamp per client static key (hex), kept when the record goes; bounded (REPLAY_MEMORY_MAX). */
  readonly #lastInitTs = new Map<string, number>()
  readonly registry: NodeRegistry & RegistryAdmin
  /** Registrations answered OK and not confirmed yet: no slot, no address. */
  readonly #pending = new PendingRegistrations(C.PENDING_PER_SOURCE, C.PENDING_MAX)
  readonly #byPeerId = new Map<number, ClientRecord>()
  readonly #indexes: IndexTable<ClientRecord | PendingRegistration>
  readonly #freeSlots: number[] = []
  #nextPeerId = 1
  #version = 1
  #pendingChanges: PeerEntry[] = []
  #lastUpdateFlush = 0
  readonly #rejectPerSource = new PerKeyInterval(C.REJECT_INTERVAL, C.RATE_TABLE_MAX)
  readonly #rejectBudget: TokenBucket
  readonly #wrongKeyLog = new PerKeyInterval(C.WRONG_KEY_LOG_INTERVAL, C.RATE_TABLE_MAX)
  readonly #refusedLog = new PerKeyInterval(C.WRONG_KEY_LOG_INTERVAL, C.RATE_TABLE_MAX)
  readonly #versionLog = new PerKeyInterval(C.WRONG_KEY_LOG_INTERVAL, C.RATE_TABLE_MAX)
  readonly #startedAt: number
  /** Our tunnel network and its broadcast address (clients' addresses must lie inside, and be neither). */
  readonly #network: number
  readonly #broadcast: number
  #rejectedInits = 0
  /** Txids of our RTT Pings to clients (sequential, below 2^31: user pings have the top bit). */
  #txid = 1
  /** `lightweight-tunnel ping` probes in flight. */
  readonly #userPings: UserPings
  readonly #random: Random
  /** Return-routability checks of a client's new source endpoint: started, and passed (the client moved). */
  readonly roamCounters = { endpointChecks: 0, endpointMoves: 0 }

  constructor (opt: ServerOptions, c: ControlComponents, maxPeers: number) {
    this.#opt = opt
    this.registry = opt.registry ?? new FileRegistry(null)
    this.#port = c.port
    this.#clock = c.clock
    this.#log = c.log
    this.#indexes = new IndexTable(c.random)
    for (let s = maxPeers - 1; s >= 0; s--) this.#freeSlots.push(s)
    this.#rejectBudget = new TokenBucket(C.REJECT_BUDGET_PER_SEC, c.clock.now())
    this.#startedAt = c.clock.now()
    this.#network = networkAddress(opt.tunnelIp, opt.prefix)
    this.#broadcast = broadcastAddress(opt.tunnelIp, opt.prefix)
    this.#userPings = new UserPings(c.random)
    this.#random = c.random
  }

  // ── reload (config/reload.ts decides what is live) ─────────────────────

  /**
   * A new client limit. Lowering it never evicts a registered client (their
   * rekeys go on); it only refuses new registrations while clientCount is at
   * or above it. Never more than the peer slots sized at start.
   */
  setMaxClients (n: number): void { this.#opt.maxClients = n }

  /** A new keepalive interval (seconds): a silent client is forgotten after max(30 s, 3 keepalives) + 10 s. */
  setKeepalive (sec: number): void { this.#opt.keepaliveSec = sec }

  get clientCount (): number {
    let n = 0
    for (const r of this.#byIp.values()) if (r.active) n++
    return n
  }

  /** Silence after which a client is forgotten. */
  get #expiry (): number {
    return Math.max(30_000, 3 * this.#opt.keepaliveSec * 1000) + 10_000
  }

  onControl (input: ControlInput): void {
    switch (input.kind) {
      case 'packet': this.#onPacket(input); break
      case 'unknown-index':
      case 'unknown-relay-source': {
        const index = input.bytes.length >= 8 ? new DataView(input.bytes.buffer, input.bytes.byteOffset).getUint32(4, true) : 0
        this.#sendReject(REJECT_UNKNOWN_SESSION, input.kind === 'unknown-index' ? index : 0, input.ip, input.port)
        break
      }
      case 'relayed': break // the server's worker relays envelopes itself; none reach here
    }
  }

  onNeedSession (_slot: number): void {
    // Sessions with clients are always initiated by the clients; packets for
    // a client that is re-registering wait in the dataplane's queue.
  }

  onSendLimit (_slot: number): void {
    // The client rekeys (re-registers) every REKEY_AFTER, long before 2^48
    // messages; should its key reach REJECT_AFTER_MESSAGES the dataplane
    // retires it and the packets wait for the client's next registration.
  }

  /** The dataplane saw authenticated data from a client at a new source: check that it receives there before moving it. */
  onEndpoint (slot: number, ip: number, port: number): void {
    for (const r of this.#byIp.values()) {
      if (r.slot === slot && r.active) this.#checkEndpoint(r, ip, port, this.#clock.now())
    }
  }

  /**
   * Return routability: an authenticated packet from a new source endpoint
   * does not move the client (a member could spoof its source and point the
   * relay, and its peers' punching, anywhere). We send a Ping with a fresh
   * random txid there, sealed on its current session; only its Pong from
   * that endpoint moves the client (one RTT; traffic stays on the old
   * endpoint meanwhile). At most one check per endpoint per ROAM_CHECK_GAP.
   */
  #checkEndpoint (rec: ClientRecord, ip: number, port: number, now: number): void {
    if (rec.endpointIp === ip && rec.endpointPort === port) { rec.roam = null; return }
    const s = rec.sessions.current
    if (s === null) return
    const r = rec.roam
    if (r !== null && r.ip === ip && r.port === port && now - r.at < C.ROAM_CHECK_GAP) return
    const txid = 0x40000000 + this.#random.int(0x40000000) // above our sequential RTT txids, below user pings (top bit)
    rec.roam = { ip, port, txid, at: now }
    this.roamCounters.endpointChecks++
    this.#port.sendControl(s.ctl.seal(encodeControl({ kind: CTL_PING, txid, peerListVersion: this.#version })), ip, port)
  }

  /** The check's Pong came back from the new endpoint: move the client there. */
  #moveClient (rec: ClientRecord, ip: number, port: number): void {
    rec.roam = null
    this.roamCounters.endpointMoves++
    this.#log.info('client moved', { peer: intToIp(rec.tunnelIp), endpoint: formatEndpoint(ip, port) })
    rec.endpointIp = ip
    rec.endpointPort = port
    this.#port.setPeer(this.#route(rec))
    this.#announce(rec)
  }

  #onPacket (input: ControlInput): void {
    const type = input.bytes[0]
    if (type === MSG_HANDSHAKE_INIT) this.#onInit(input)
    else if (type === MSG_CONTROL) this.#onControlMessage(input)
    // Responses and rejects are never addressed to a server: ignore.
  }

  #onInit (input: ControlInput): void {
    const now = this.#clock.now()
    if (input.bytes.length >= 8 && input.bytes[1] !== PROTOCOL_VERSION) {
      // Another protocol version (a v1 node): tell it (rate-limited Reject VERSION) and say so once a minute per address.
      this.handshakeCounters.handshakesWrongVersion++
      this.#sendReject(REJECT_VERSION, new DataView(input.bytes.buffer, input.bytes.byteOffset).getUint32(4, true), input.ip, input.port)
      if (this.#versionLog.allow(input.ip, now)) {
        this.#log.warn(`a node at ${formatEndpoint(input.ip, input.port)} speaks protocol version ${input.bytes[1]}; this node speaks ${PROTOCOL_VERSION}: upgrade it (logged once a minute per address)`)
      }
      return
    }
    let hs
    try {
      hs = consumeInit(this.#opt.psk, this.#opt.nodeKey, stripMacs(input.bytes)) // mac1 (and mac2 under load) checked by the inbound worker (dataplane/init-guard.ts)
    } catch (err) {
      if (isVpnError(err, 'ERR_AUTH_FAILED')) {
        this.#rejectedInits++
        this.handshakeCounters.handshakesAuthFailed++
        const idx = new DataView(input.bytes.buffer, input.bytes.byteOffset).getUint32(4, true)
        this.#sendReject(REJECT_AUTH_FAILED, idx, input.ip, input.port)
        if (this.#wrongKeyLog.allow(input.ip, now)) {
          this.#log.warn('rejected a client with the wrong network key (logged once a minute per address)', { endpoint: formatEndpoint(input.ip, input.port) })
        }
      }
      return
    }
    let req
    try {
      req = decodeInitPayload(hs.payload)
    } catch {
      return
    }
    const reply = (status: RespStatus, peerId: number): Uint8Array => encodeRespPayload({
      status,
      prefixLen: this.#opt.prefix,
      mtu: this.#opt.mtu,
      tunnelIp: this.#opt.tunnelIp,
      peerId,
      observedIp: input.ip,
      observedPort: input.port
    })
    const refuse = (status: RespStatus, why: string): void => {
      this.handshakeCounters.handshakesRefused++
      const { message } = createResponse(hs.state, 0, reply(status, 0))
      this.#port.sendControl(message, input.ip, input.port)
      if (this.#refusedLog.allow(`${input.ip}:${status}`, now)) {
        this.#log.warn(`refused a client: ${why}`, { peer: intToIp(req.tunnelIp), endpoint: formatEndpoint(input.ip, input.port) })
      }
    }
    if (req.role !== 1) return
    const ip = req.tunnelIp >>> 0
    if (!inSubnet(ip, this.#network, this.#opt.prefix)) {
      refuse(RESP_ADDRESS_OUTSIDE_NETWORK, `its address is outside the network ${intToIp(this.#network)}/${this.#opt.prefix}`)
      return
    }
    if (ip === this.#opt.tunnelIp || ip === this.#network || ip === this.#broadcast) {
      refuse(RESP_ADDRESS_RESERVED, 'its address is the server\'s own, the network or the broadcast address')
      return
    }
    const key = hs.remoteStatic
    const kh = keyHex(key)
    const claim = this.registry.check(key, ip)
    if (!claim.ok) {
      this.handshakeCounters.handshakesKeyRefused++
      refuse(REFUSAL_STATUS[claim.reason], this.#claimRefusal(claim, key, ip))
      return
    }
    const lastTs = this.#lastInitTs.get(kh)
    if (lastTs !== undefined && req.timestamp <= lastTs) { this.handshakeCounters.handshakesReplayed++; return } // replayed init
    const rec = this.#byIp.get(ip)
    if (rec !== undefined && !sameBytes(rec.key, key) && rec.active && now - rec.lastSeen < this.#expiry) {
      // Only when the registry holds no binding for it (a registry that forgot, e.g. a bounded one evicting).
      refuse(RESP_ADDRESS_IN_USE, `the address is held by a live client at ${formatEndpoint(rec.endpointIp, rec.endpointPort)}`)
      return
    }
    if (rec === undefined || !sameBytes(rec.key, key)) {
      // A new registration: it holds nothing (no slot, no address) until its Confirm (#admit).
      if (this.clientCount >= this.#opt.maxClients || this.#freeSlots.length === 0) {
        refuse(RESP_SERVER_FULL, `the server is full (--max-clients ${this.#opt.maxClients})`)
        return
      }
      this.#noteInitTs(kh, req.timestamp)
      const p = new PendingRegistration(input.ip, input.port, now, { tunnelIp: ip, key, lan: req.lan })
      const localIndex = this.#indexes.allocate(p)
      const { message, keys } = createResponse(hs.state, localIndex, reply(RESP_OK, 0))
      this.handshakeCounters.handshakesAccepted++
      p.attach(newSession(localIndex, hs.senderIndex, keys, now, false))
      for (const q of this.#pending.add(p)) { this.#dropSession(q.session); this.registrationCounters.dropRegistrationEvicted++ }
      this.#port.sendControl(message, input.ip, input.port)
      return
    }
    // Its own key again (a rekey, or the node restarted): the new session waits for its Confirm on the record.
    this.#noteInitTs(kh, req.timestamp)
    rec.lan = req.lan
    const localIndex = this.#indexes.allocate(rec)
    const client = rec
    const finish = (message: Uint8Array, keys: SessionKeys): void => {
      this.handshakeCounters.handshakesAccepted++
      const session = newSession(localIndex, hs.senderIndex, keys, this.#clock.now(), false)
      if (client.sessions.pending) this.#dropSession(client.sessions.pending)
      client.sessions.pending = session
      this.#port.setRecvKey(client.slot, localIndex, keys.dataRecv)
      this.#port.sendControl(message, input.ip, input.port)
    }
    const pool = this.handshakePool
    if (pool === null) {
      const { message, keys } = createResponse(hs.state, localIndex, reply(RESP_OK, rec.peerId))
      finish(message, keys)
      return
    }
    // The DH on a pool thread (control/handshake-pool.ts); the record may be gone or replaced by the answer.
    pool.run(hs.state, localIndex, reply(RESP_OK, rec.peerId)).then((r) => {
      if (r === null || this.#byIp.get(ip) !== client) { this.#indexes.delete(localIndex); if (r === null) this.handshakeCounters.handshakesShed++; return }
      finish(r.message, r.keys)
    }, (err: unknown) => {
      this.#indexes.delete(localIndex)
      this.#log.warn('a handshake failed on the pool (dropped; the client retries)', { err })
    })
  }

  /** Runs createResponse off the main thread when set (--handshake-workers; daemon.ts). */
  handshakePool: HandshakePool | null = null

  /** Replay memory: the newest init timestamp of `kh`, the oldest key forgotten beyond REPLAY_MEMORY_MAX. */
  #noteInitTs (kh: string, ts: number): void {
    this.#lastInitTs.delete(kh)
    this.#lastInitTs.set(kh, ts)
    if (this.#lastInitTs.size > REPLAY_MEMORY_MAX) this.#lastInitTs.delete(this.#lastInitTs.keys().next().value!)
  }

  /** NAT-check port datagrams answered, and dropped (malformed, unauthenticated, not a Ping). */
  readonly natCheckCounters = { natCheckAnswered: 0, natCheckDropped: 0 }
  /** Unconfirmed registrations evicted by newer ones (PENDING_PER_SOURCE, PENDING_MAX); Confirms refused because the address was taken, the key revoked or the server filled meanwhile. status counters; metrics lwt_drops_total. */
  readonly registrationCounters = { dropRegistrationEvicted: 0, dropRegistrationConfirmRefused: 0 }
  /** Registration handshakes (and rekeys): answered OK, refused (address, capacity), failed authentication (wrong key). status counters; metrics lwt_handshakes_total. */
  readonly handshakeCounters = { handshakesAccepted: 0, handshakesRefused: 0, handshakesAuthFailed: 0, handshakesKeyRefused: 0, handshakesReplayed: 0, handshakesWrongVersion: 0, handshakesShed: 0 }

  /**
   * A datagram on the NAT-check port (listen port + 1): a client's Ping on its
   * registration session is answered with a Pong carrying the Ping's source as
   * seen here. A client whose NAT maps per destination sees another port here
   * than on the main port: that is how it learns its NAT is symmetric. Nothing
   * else is accepted, and nothing changes state; returns the reply or null.
   */
  onNatCheck (bytes: Uint8Array, ip: number, port: number): Uint8Array | null {
    const r = openSealedControl(bytes, this.#indexes, (rec) => !(rec instanceof PendingRegistration) && rec.active, NAT_CHECK_KINDS, this.#clock.now())
    if (!r.ok || r.msg.kind !== CTL_PING) { this.natCheckCounters.natCheckDropped++; return null }
    this.natCheckCounters.natCheckAnswered++
    return r.session.ctl.seal(encodeControl({ kind: CTL_PONG, txid: r.msg.txid, peerListVersion: this.#version, observedIp: ip, observedPort: port }))
  }

  #onControlMessage (input: ControlInput): void {
    const now = this.#clock.now()
    const r = openSealedControl(input.bytes, this.#indexes, undefined, undefined, now)
    if (!r.ok) {
      if (r.why === 'unknown-index') this.#sendReject(REJECT_UNKNOWN_SESSION, r.index, input.ip, input.port)
      return
    }
    const { session: s, msg } = r
    let rec: ClientRecord
    if (r.owner instanceof PendingRegistration) {
      // Only a Confirm (or a Ping, when the Confirm was lost) admits; a Ping is then answered below.
      if (msg.kind !== CTL_CONFIRM && msg.kind !== CTL_PING) return
      const admitted = this.#admit(r.owner, input.ip, input.port)
      if (admitted === null || msg.kind === CTL_CONFIRM) return
      rec = admitted
    } else rec = r.owner
    rec.lastSeen = now
    if (rec.active) this.registry.touch(rec.key, this.#clock.wallNow())
    switch (msg.kind) {
      case CTL_CONFIRM: {
        if (rec.sessions.pending !== s) return
        this.#activate(rec, s, input.ip, input.port)
        break
      }
      case CTL_PING: {
        if (rec.sessions.pending === s) this.#activate(rec, s, input.ip, input.port)
        if (rec.active && s === rec.sessions.current) this.#checkEndpoint(rec, input.ip, input.port, now)
        const pong = encodeControl({ kind: CTL_PONG, txid: msg.txid, peerListVersion: this.#version, observedIp: input.ip, observedPort: input.port })
        this.#port.sendControl(s.ctl.seal(pong), input.ip, input.port)
        if (msg.peerListVersion !== this.#version) this.#sendFullList(rec, s)
        break
      }
      case CTL_PONG: {
        const roam = rec.roam
        if (roam !== null && msg.txid === roam.txid) {
          if (roam.ip === input.ip && roam.port === input.port && rec.active) this.#moveClient(rec, input.ip, input.port)
          break
        }
        // The answer to one of our RTT Pings (clients of this version answer them), or to a user ping.
        if (this.#userPings.answered(msg.txid, now)) break
        const sent = rec.pings.get(msg.txid)
        if (sent !== undefined) { rec.pings.delete(msg.txid); rec.rtt.add(now - sent) }
        break
      }
      case CTL_BYE: {
        this.#log.info('client left', { peer: intToIp(rec.tunnelIp) })
        this.#remove(rec, null)
        break
      }
      default: break
    }
  }

  /**
   * The Confirm of a new registration: ask the registry again and check the
   * address (it may have been bound, or the key revoked, since the init),
   * then the client takes a slot and the address and becomes active. A
   * Confirm that comes too late is answered with a Reject (unknown session):
   * the client registers again and meets the refusal's reason.
   */
  #admit (p: PendingRegistration, ip: number, port: number): ClientRecord | null {
    const now = this.#clock.now()
    this.#pending.delete(p)
    const c = p.claim
    const kh = keyHex(c.key)
    const old = this.#byIp.get(c.tunnelIp)
    const taken = !this.registry.check(c.key, c.tunnelIp).ok ||
      (old !== undefined && !sameBytes(old.key, c.key) && old.active && now - old.lastSeen < this.#expiry)
    const other = this.#byKey.get(kh)
    // A replaced record (or this key's record at another address) gives back its slot and its place under --max-clients.
    const freed = (old !== undefined ? 1 : 0) + (other !== undefined && other !== old ? 1 : 0)
    const full = this.clientCount - freed >= this.#opt.maxClients || this.#freeSlots.length + freed === 0
    if (taken || full) {
      this.registrationCounters.dropRegistrationConfirmRefused++
      this.#dropSession(p.session)
      this.#sendReject(REJECT_UNKNOWN_SESSION, p.session.localIndex, ip, port)
      return null
    }
    if (old !== undefined) this.#remove(old, 'replaced by a new registration')
    if (other !== undefined && other !== old) this.#remove(other, `its node key now registers ${intToIp(c.tunnelIp)}`)
    const rec: ClientRecord = {
      peerId: this.#nextPeerId++,
      slot: this.#freeSlots.pop()!,
      tunnelIp: c.tunnelIp,
      key: c.key,
      active: false,
      endpointIp: ip,
      endpointPort: port,
      lastSeen: now,
      sessions: emptySessionSet(),
      lan: c.lan,
      pings: new Map(),
      lastPingAt: -Infinity,
      rtt: new RttWindow(),
      roam: null
    }
    this.#byIp.set(rec.tunnelIp, rec)
    this.#byKey.set(kh, rec)
    this.#byPeerId.set(rec.peerId, rec)
    const s = p.session
    rec.sessions.pending = s
    this.#indexes.reassign(s.localIndex, rec)
    this.#port.setRecvKey(rec.slot, s.localIndex, s.keys.dataRecv)
    this.#activate(rec, s, ip, port)
    return rec
  }

  #activate (rec: ClientRecord, s: Session, ip: number, port: number): void {
    const wasActive = rec.active
    confirmPending(rec.sessions, s, this.#clock.now(), this.#dropSession)
    rec.active = true
    this.registry.bind(rec.key, rec.tunnelIp, this.#clock.wallNow())
    rec.endpointIp = ip
    rec.endpointPort = port
    this.#port.setPeer(this.#route(rec))
    this.#port.setSendKey(rec.slot, s.keys.dataSend, s.remoteIndex)
    if (!wasActive) {
      this.#log.info('client registered', { peer: intToIp(rec.tunnelIp), endpoint: formatEndpoint(ip, port), clients: this.clientCount })
    }
    this.#announce(rec)
    this.#sendFullList(rec, s)
  }

  /**
   * An RTT Ping to a client on its current session (the client answers with
   * a Pong; server-link.ts). RTT_WARMUP of them RTT_WARMUP_GAP apart
   * from activation, then one per SERVER_RTT_PING_INTERVAL: status and metrics show the lowest of the last
   * few (rtt.ts).
   */
  #rttPing (rec: ClientRecord, now: number): void {
    const s = rec.sessions.current
    if (s === null || !rec.active) return
    const txid = this.#txid
    this.#txid = this.#txid >= 0x7fffffff ? 1 : this.#txid + 1
    rec.pings.set(txid, now)
    if (rec.pings.size > 4) rec.pings.delete(rec.pings.keys().next().value!)
    rec.lastPingAt = now
    this.#port.sendControl(s.ctl.seal(encodeControl({ kind: CTL_PING, txid, peerListVersion: this.#version })), rec.endpointIp, rec.endpointPort)
  }

  /** `lightweight-tunnel ping` to a client: one Ping on its current session; `onReply(rttMs)` when the Pong is read. */
  ping (tunnelIp: number, onReply: (rttMs: number) => void): PingStarted | string {
    const rec = this.#byIp.get(tunnelIp)
    if (tunnelIp === this.#opt.tunnelIp) return `${intToIp(tunnelIp)} is this server's own tunnel address`
    if (rec === undefined || !rec.active) return `${intToIp(tunnelIp)} is not a registered client; see lightweight-tunnel status`
    const s = rec.sessions.current
    if (s === null) return `${intToIp(tunnelIp)} has no session yet`
    const txid = this.#userPings.txid()
    if (txid === null) return 'too many pings in flight; try again in a moment'
    this.#port.sendControl(s.ctl.seal(encodeControl({ kind: CTL_PING, txid, peerListVersion: this.#version })), rec.endpointIp, rec.endpointPort)
    return { path: 'direct', endpoint: formatEndpoint(rec.endpointIp, rec.endpointPort), cancel: this.#userPings.expect(txid, this.#clock.now(), onReply) }
  }

  #route (rec: ClientRecord) {
    return { slot: rec.slot, peerId: rec.peerId, tunnelIp: rec.tunnelIp, endpointIp: rec.endpointIp, endpointPort: rec.endpointPort, relayVia: false }
  }

  #entry (rec: ClientRecord, op: typeof PEER_OP_UPSERT | typeof PEER_OP_REMOVE): PeerEntry {
    return { op, peerId: rec.peerId, tunnelIp: rec.tunnelIp, publicIp: rec.endpointIp, publicPort: rec.endpointPort, key: rec.key, lan: rec.lan }
  }

  #announce (rec: ClientRecord): void {
    this.#pendingChanges.push(this.#entry(rec, PEER_OP_UPSERT))
  }

  #sendFullList (rec: ClientRecord, s: Session): void {
    const entries: PeerEntry[] = []
    for (const r of this.#byIp.values()) if (r.active && r !== rec) entries.push(this.#entry(r, PEER_OP_UPSERT))
    for (const m of encodePeerUpdates(entries, this.#version, PEER_UPDATE_MAX_BYTES, { reset: true })) {
      this.#port.sendControl(s.ctl.seal(m), rec.endpointIp, rec.endpointPort)
    }
  }

  #remove (rec: ClientRecord, why: string | null): void {
    for (const s of sessionsOf(rec.sessions)) this.#dropSession(s)
    this.#byIp.delete(rec.tunnelIp)
    if (this.#byKey.get(keyHex(rec.key)) === rec) this.#byKey.delete(keyHex(rec.key))
    this.#byPeerId.delete(rec.peerId)
    this.#port.removePeer(rec.slot)
    this.#freeSlots.push(rec.slot)
    if (rec.active) this.#pendingChanges.push(this.#entry(rec, PEER_OP_REMOVE))
    if (why !== null) this.#log.info(`client removed: ${why}`, { peer: intToIp(rec.tunnelIp) })
  }

  /** Forget a session's receiver index, here and in the dataplane. */
  readonly #dropSession = (s: Session): void => {
    this.#indexes.delete(s.localIndex)
    this.#port.dropRecvIndex(s.localIndex)
    wipeSession(s)
  }

  #sendReject (reason: number, index: number, ip: number, port: number): void {
    const now = this.#clock.now()
    if (!this.#rejectPerSource.allow(endpointKey(ip, port), now)) return
    if (!this.#rejectBudget.take(now)) return
    this.#port.sendControl(encodeReject({ reason: reason as 1 | 2 | 3, index }), ip, port)
  }

  /** How soon tick() wants to run again, ms (the server's timers are all coarse). */
  tickInterval (): number { return C.TICK }

  /** Timers: expiry, session grace periods, coalesced peer-list pushes. */
  tick (): void {
    const now = this.#clock.now()
    for (const p of this.#pending.expire(now, C.PENDING_REGISTRATION_TTL)) this.#dropSession(p.session)
    this.registry.flush(this.#clock.wallNow())
    for (const rec of [...this.#byIp.values()]) {
      if (now - rec.lastSeen > this.#expiry) {
        this.#remove(rec, `silent for ${Math.round((now - rec.lastSeen) / 1000)} s`)
        continue
      }
      const ss = rec.sessions
      if (expireSessions(ss, now, this.#dropSession, true, () => { this.#port.clearSendKey(rec.slot) }) && !rec.active && ss.current === null) { this.#remove(rec, null); continue }
      if (rec.active && now - rec.lastPingAt >= (rec.rtt.count < RTT_WARMUP ? RTT_WARMUP_GAP : SERVER_RTT_PING_INTERVAL)) this.#rttPing(rec, now)
    }
    if (this.#pendingChanges.length > 0 && now - this.#lastUpdateFlush >= C.PEER_UPDATE_INTERVAL) {
      this.#lastUpdateFlush = now
      this.#version++
      const changes = this.#pendingChanges
      this.#pendingChanges = []
      for (const rec of this.#byIp.values()) {
        const s = rec.sessions.current
        if (!rec.active || s === null) continue
        const mine = changes.filter(e => e.peerId !== rec.peerId)
        for (const m of encodePeerUpdates(mine, this.#version, PEER_UPDATE_MAX_BYTES, { reset: false })) {
          this.#port.sendControl(s.ctl.seal(m), rec.endpointIp, rec.endpointPort)
        }
      }
    }
  }

  /** The server's log line for a claim the registry refused (rate-limited by the caller): the address, both fingerprints, the remedy. */
  #claimRefusal (claim: Exclude<ClaimResult, { ok: true }>, key: Uint8Array, ip: number): string {
    const fp = fingerprint(key)
    switch (claim.reason) {
      case 'address-bound-to-other-key': {
        const h = claim.holder
        const live = h === undefined ? undefined : this.#byIp.get(h.address)
        const where = live?.active === true ? `, registered now from ${formatEndpoint(live.endpointIp, live.endpointPort)}` : ', not connected now'
        return `${intToIp(ip)} belongs to another node key (${h === undefined ? 'unknown' : fingerprint(h.key)}${where}); this one presented ${fp}. ` +
          `If it replaced that node, free the address: lightweight-tunnel nodes remove ${intToIp(ip)}`
      }
      case 'key-revoked': return `its key ${fp} was revoked (lightweight-tunnel nodes allow KEY lifts a revocation)`
      case 'not-authorized': return `${fp} asking for ${intToIp(ip)} is not listed in ${this.registry.authorized?.file ?? 'the list of admitted nodes'}`
      default: return `refused (${String((claim as { reason: string }).reason)})`
    }
  }

  /** The registry as the operator's nodes commands see it (control/nodes.ts). */
  get nodesAdmin (): NodesAdmin {
    return {
      registry: this.registry,
      liveEndpoint: (address, key) => {
        const rec = this.#byIp.get(address)
        if (rec === undefined || !rec.active || !sameBytes(rec.key, key)) return null
        return formatEndpoint(rec.endpointIp, rec.endpointPort)
      },
      disconnect: (address, why) => this.disconnect(address, why),
      authorized: () => this.registry.authorized,
      wallNow: () => this.#clock.wallNow()
    }
  }

  /**
   * Cuts a node off at once (revocation, strict mode): Bye on its session (it
   * reconnects and meets the refusal), its sessions and slot dropped, and
   * every other client told at the next peer-list flush (PEER_UPDATE_INTERVAL),
   * which drops their sessions with it. Pending registrations for the address
   * go too. True when a client was registered there.
   */
  disconnect (address: number, why: string): boolean {
    for (const p of this.#pending.forAddress(address)) { this.#pending.delete(p); this.#dropSession(p.session) }
    const rec = this.#byIp.get(address)
    if (rec === undefined) return false
    const s = rec.sessions.current
    if (rec.active && s !== null) this.#port.sendControl(s.ctl.seal(encodeControl({ kind: CTL_BYE, reason: 1 })), rec.endpointIp, rec.endpointPort)
    this.#log.warn(`disconnected ${intToIp(address)}: ${why}`, { peer: intToIp(address) })
    this.#remove(rec, null)
    return true
  }

  /**
   * Drops every registered client the registry no longer admits (after a
   * reload of --authorized-nodes, or a revocation by key); returns how many.
   */
  dropUnadmitted (why: string): number {
    let n = 0
    for (const rec of [...this.#byIp.values()]) {
      const r = this.registry.check(rec.key, rec.tunnelIp)
      if (!r.ok && this.disconnect(rec.tunnelIp, `${why} (${r.reason})`)) n++
    }
    return n
  }

  /** Writes the registry's pending last-seen times (shutdown). */
  flushRegistry (): void { this.registry.flush(this.#clock.wallNow(), true) }

  /** Tell every client we are going away (best effort; they will reconnect to our successor). */
  shutdown (): void {
    for (const rec of this.#byIp.values()) {
      const s = rec.sessions.current
      if (rec.active && s) this.#port.sendControl(s.ctl.seal(encodeControl({ kind: CTL_BYE, reason: 1 })), rec.endpointIp, rec.endpointPort)
    }
  }

  status (): Pick<StatusReport, 'state' | 'problem' | 'peers' | 'uptimeSec'> {
    const now = this.#clock.now()
    const peers: PeerStatus[] = []
    for (const rec of this.#byIp.values()) {
      if (!rec.active) continue
      const c = this.#port.peerCounters(rec.slot)
      peers.push({
        tunnelIp: intToIp(rec.tunnelIp),
        peerId: rec.peerId,
        role: 'client',
        key: fingerprint(rec.key),
        path: 'direct',
        endpoint: formatEndpoint(rec.endpointIp, rec.endpointPort),
        publicEndpoint: formatEndpoint(rec.endpointIp, rec.endpointPort),
        rttMs: rec.rtt.min,
        txBytes: c.txBytes,
        rxBytes: c.rxBytes,
        txPackets: c.txPackets,
        rxPackets: c.rxPackets,
        session: rec.sessions.current ? 'established' : 'handshaking',
        lastSeenSec: lastSeen(now - rec.lastSeen, c.lastRxMs === 0 ? null : this.#clock.wallNow() - c.lastRxMs),
        note: null
      })
    }
    peers.sort((a, b) => a.tunnelIp.localeCompare(b.tunnelIp, undefined, { numeric: true }))
    return { state: 'running', problem: null, peers, uptimeSec: Math.round((now - this.#startedAt) / 1000) }
  }

  get rejectedInits (): number { return this.#rejectedInits }
}
