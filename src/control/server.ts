/**
 * The server's control plane: the coordinator over the pieces below, plus
 * the control messages of registered clients, RTT pings, keepalives,
 * expiry, the NAT-check port and status. Sans-IO except through the
 * injected DataplanePort; time comes from the injected Clock via tick().
 *
 *   init (type 1) ──────────▶ server-registration.ts: decided (pure), answered; a new
 *                             registration waits as a PendingRegistration
 *   control (type 3) ───────▶ openSealedControl (session.ts) ─▶ here:
 *     Confirm / Ping on a pending registration ─▶ admit, activate (server-registration.ts)
 *     Ping from a new source, Pong to our check ─▶ server-roaming.ts (return routability)
 *     Pong to our RTT / user ping, Bye ─▶ here
 *   tick() ─────────────────▶ pending registrations and silent clients expire, sessions
 *                             rotate out, RTT pings, server-peer-list.ts flushes changes
 *   operator (nodes, reload) ▶ server-nodes.ts: nodesAdmin, disconnect, dropUnadmitted
 *
 * Every piece shares one ServerContext (server-context.ts): the client
 * records, pending registrations, receiver indexes and the actions on them.
 * The registration steps are in server-registration.ts and docs/PROTOCOL.md;
 * sealed control messages are opened, and sessions rotated in and expired,
 * by session.ts (the same code as the client's).
 */
import type { Clock, WallClock } from '../clock.js'
import type { Logger } from '../log.js'
import type { ControlComponents, ControlHandler, ControlInput, DataplanePort } from './port.js'
import { IndexTable, expireSessions, openSealedControl } from './session.js'
import * as C from './constants.js'
import type { HandshakePool } from './handshake-pool.js'
import { MSG_CONTROL, MSG_HANDSHAKE_INIT, REJECT_UNKNOWN_SESSION } from '../wire/messages.js'
import { encodeControl, CTL_BYE, CTL_CONFIRM, CTL_MTU_PROBE, CTL_PING, CTL_PONG } from '../wire/control.js'
import { ServerPathMtu } from './path-mtu-server.js'
import { broadcastAddress, formatEndpoint, intToIp, networkAddress } from '../wire/addr.js'
import type { PeerStatus, StatusReport } from './status.js'
import { RTT_WARMUP, RTT_WARMUP_GAP, SERVER_RTT_PING_INTERVAL, lastSeen } from './rtt.js'
import { UserPings, type PingStarted } from './user-ping.js'
import type { NodeRegistry, RegistryAdmin } from './registry.js'
import { fingerprint } from '../identity/key-text.js'
import { PendingRegistration, PendingRegistrations } from './pending-registrations.js'
import type { NodesAdmin } from './nodes.js'
import { FileRegistry } from '../state/registry-file.js'
import { peerPrefixes } from './peer-prefixes.js'
import { formatIp6 } from '../wire/prefix.js'
import { serverContext, type ClientRecord, type ServerContext, type ServerOptions } from './server-context.js'
import { ServerRegistration } from './server-registration.js'
import { ServerRoaming } from './server-roaming.js'
import { ServerPeerList } from './server-peer-list.js'
import { disconnect, dropUnadmitted, nodesAdmin } from './server-nodes.js'
import type { ApproveRoutes } from '../config/schema.js'
import type { RouteOffer } from './kernel-route-plan.js'
import { formatPrefix } from '../wire/prefix.js'
import { wireIp, wirePort } from '../wire/endpoint-handle.js'

export type { ServerOptions } from './server-context.js'

/** The NAT-check port answers Pings only. */
const NAT_CHECK_KINDS = [CTL_PING] as const

export class ServerController implements ControlHandler {
  readonly #opt: ServerOptions
  readonly #port: DataplanePort
  readonly #transportOf: (ip: number) => 'udp' | 'tcp' | 'faketcp'
  readonly #clock: Clock & WallClock
  readonly #log: Logger
  /** The records, the pending registrations and the actions shared with the pieces below (server-context.ts). */
  readonly #ctx: ServerContext
  readonly #byIp = new Map<number, ClientRecord>()
  readonly registry: NodeRegistry & RegistryAdmin
  readonly #pending = new PendingRegistrations(C.PENDING_PER_SOURCE, C.PENDING_MAX)
  readonly #indexes: IndexTable<ClientRecord | PendingRegistration>
  readonly #registration: ServerRegistration
  readonly #roaming: ServerRoaming
  readonly #peerList: ServerPeerList
  readonly #startedAt: number
  /** Txids of our RTT Pings to clients (sequential, below 2^31: user pings have the top bit). */
  #txid = 1
  /** `lightweight-tunnel ping` probes in flight. */
  readonly #userPings: UserPings
  /** Return-routability checks of a client's new source endpoint: started, and passed (the client moved). */
  readonly roamCounters: { endpointChecks: number, endpointMoves: number }
  /** Unconfirmed registrations evicted by newer ones; Confirms refused (server-registration.ts). status counters; metrics lwt_drops_total. */
  readonly registrationCounters: ServerRegistration['registrationCounters']
  /** Registration handshakes (and rekeys) by outcome (server-registration.ts). status counters; metrics lwt_handshakes_total. */
  readonly handshakeCounters: ServerRegistration['handshakeCounters']

  constructor (opt: ServerOptions, c: ControlComponents, maxPeers: number) {
    this.#opt = opt
    this.pathMtu = new ServerPathMtu(c.port, opt.mtu)
    this.registry = opt.registry ?? new FileRegistry(null)
    this.#port = c.port
    this.#clock = c.clock
    this.#log = c.log
    this.#indexes = new IndexTable(c.random)
    this.#peerList = new ServerPeerList(c.port, this.#byIp, opt.clientIsolation === true, c.v6)
    this.#transportOf = c.transportOf ?? (() => 'udp')
    this.#ctx = serverContext(opt, c, { registry: this.registry, indexes: this.#indexes, pending: this.#pending, peerList: this.#peerList, byIp: this.#byIp, maxPeers })
    this.#startedAt = c.clock.now()
    this.#registration = new ServerRegistration(this.#ctx, networkAddress(opt.tunnelIp, opt.prefix), broadcastAddress(opt.tunnelIp, opt.prefix))
    this.#roaming = new ServerRoaming(this.#ctx)
    this.roamCounters = this.#roaming.counters
    this.registrationCounters = this.#registration.registrationCounters
    this.handshakeCounters = this.#registration.handshakeCounters
    this.#userPings = new UserPings(c.random)
    // Our own inner addresses (IPv6 /128, our routes); the dataplane keeps them for threads that start later.
    this.#port.setLocalPrefixes(peerPrefixes({ tunnel6: opt.tunnel6 ?? null, routes: opt.advertiseRoutes ?? [] }))
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

  get clientCount (): number { return this.#ctx.clientCount() }

  /** Runs createResponse off the main thread when set (--handshake-workers; daemon.ts). */
  get handshakePool (): HandshakePool | null { return this.#registration.handshakePool }
  set handshakePool (pool: HandshakePool | null) { this.#registration.handshakePool = pool }

  onControl (input: ControlInput): void {
    switch (input.kind) {
      case 'packet': this.#onPacket(input); break
      case 'unknown-index':
      case 'unknown-relay-source': {
        const index = input.bytes.length >= 8 ? new DataView(input.bytes.buffer, input.bytes.byteOffset).getUint32(4, true) : 0
        this.#ctx.sendReject(REJECT_UNKNOWN_SESSION, input.kind === 'unknown-index' ? index : 0, input.ip, input.port)
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

  /** The dataplane saw authenticated data from a client at a new source: check that it receives there before moving it (server-roaming.ts). */
  onEndpoint (slot: number, ip: number, port: number): void {
    for (const r of this.#byIp.values()) {
      if (r.slot === slot && r.active) this.#roaming.check(r, ip, port, this.#clock.now())
    }
  }

  #onPacket (input: ControlInput): void {
    const type = input.bytes[0]
    if (type === MSG_HANDSHAKE_INIT) this.#registration.onInit(input)
    else if (type === MSG_CONTROL) this.#onControlMessage(input)
    // Responses and rejects are never addressed to a server: ignore.
  }

  /** NAT-check port datagrams answered, and dropped (malformed, unauthenticated, not a Ping). */
  readonly natCheckCounters = { natCheckAnswered: 0, natCheckDropped: 0 }
  /** Clients' path MTU probes: answered, and each client's confirmed size applied to what we send it (path-mtu-server.ts). */
  readonly pathMtu: ServerPathMtu

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
    return r.session.ctl.seal(encodeControl({ kind: CTL_PONG, txid: r.msg.txid, peerListVersion: this.#peerList.version, observedIp: wireIp(ip), observedPort: wirePort(ip, port) }))
  }

  #onControlMessage (input: ControlInput): void {
    const now = this.#clock.now()
    const r = openSealedControl(input.bytes, this.#indexes, undefined, undefined, now)
    if (!r.ok) {
      if (r.why === 'unknown-index') this.#ctx.sendReject(REJECT_UNKNOWN_SESSION, r.index, input.ip, input.port)
      else if (r.why === 'unauthenticated' || r.why === 'undecodable') this.pathMtu.counters.controlDropped++
      return
    }
    const { session: s, msg } = r
    let rec: ClientRecord
    if (r.owner instanceof PendingRegistration) {
      // Only a Confirm (or a Ping, when the Confirm was lost) admits; a Ping is then answered below.
      if (msg.kind !== CTL_CONFIRM && msg.kind !== CTL_PING) return
      const admitted = this.#registration.admit(r.owner, input.ip, input.port)
      if (admitted === null || msg.kind === CTL_CONFIRM) return
      rec = admitted
    } else rec = r.owner
    rec.lastSeen = now
    if (rec.active) this.registry.touch(rec.key, this.#clock.wallNow())
    switch (msg.kind) {
      case CTL_CONFIRM: {
        if (rec.sessions.pending !== s) return
        this.#registration.activate(rec, s, input.ip, input.port)
        break
      }
      case CTL_PING: {
        if (rec.sessions.pending === s) this.#registration.activate(rec, s, input.ip, input.port)
        if (rec.active && s === rec.sessions.current) this.#roaming.check(rec, input.ip, input.port, now)
        const pong = encodeControl({ kind: CTL_PONG, txid: msg.txid, peerListVersion: this.#peerList.version, observedIp: wireIp(input.ip), observedPort: wirePort(input.ip, input.port) })
        this.#port.sendControl(s.ctl.seal(pong), input.ip, input.port)
        if (msg.peerListVersion !== this.#peerList.version) this.#peerList.sendFull(rec, s)
        break
      }
      case CTL_PONG: {
        if (this.#roaming.onPong(rec, msg.txid, input.ip, input.port)) break
        // The answer to one of our RTT Pings (clients of this version answer them), or to a user ping.
        if (this.#userPings.answered(msg.txid, now)) break
        const sent = rec.pings.get(msg.txid)
        if (sent !== undefined) { rec.pings.delete(msg.txid); rec.rtt.add(now - sent) }
        break
      }
      case CTL_MTU_PROBE: {
        if (rec.active && s === rec.sessions.current) this.pathMtu.onProbe(rec, s, msg, input.ip, input.port)
        else this.pathMtu.counters.mtuProbesDropped++
        break
      }
      case CTL_BYE: {
        this.#log.info('client left', { peer: intToIp(rec.tunnelIp) })
        this.#ctx.remove(rec, null)
        break
      }
      default: break
    }
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
    this.#port.sendControl(s.ctl.seal(encodeControl({ kind: CTL_PING, txid, peerListVersion: this.#peerList.version })), rec.endpointIp, rec.endpointPort)
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
    this.#port.sendControl(s.ctl.seal(encodeControl({ kind: CTL_PING, txid, peerListVersion: this.#peerList.version })), rec.endpointIp, rec.endpointPort)
    return { path: 'direct', endpoint: formatEndpoint(rec.endpointIp, rec.endpointPort), cancel: this.#userPings.expect(txid, this.#clock.now(), onReply) }
  }

  /** How soon tick() wants to run again, ms (the server's timers are all coarse). */
  tickInterval (): number { return C.TICK }

  /** Timers: expiry, session grace periods, coalesced peer-list pushes. */
  tick (): void {
    const now = this.#clock.now()
    const ctx = this.#ctx
    for (const p of this.#pending.expire(now, C.PENDING_REGISTRATION_TTL)) ctx.dropSession(p.session)
    this.registry.flush(this.#clock.wallNow())
    const expiry = ctx.expiry()
    for (const rec of [...this.#byIp.values()]) {
      if (now - rec.lastSeen > expiry) {
        ctx.remove(rec, `silent for ${Math.round((now - rec.lastSeen) / 1000)} s`)
        continue
      }
      const ss = rec.sessions
      if (expireSessions(ss, now, ctx.dropSession, true, () => { this.#port.clearSendKey(rec.slot) }) && !rec.active && ss.current === null) { ctx.remove(rec, null); continue }
      if (rec.active && now - rec.lastPingAt >= (rec.rtt.count < RTT_WARMUP ? RTT_WARMUP_GAP : SERVER_RTT_PING_INTERVAL)) this.#rttPing(rec, now)
    }
    ctx.routes.tick()
    this.#peerList.flush(now)
  }

  /** The registry as the operator's nodes commands see it (control/nodes.ts; server-nodes.ts). */
  get nodesAdmin (): NodesAdmin { return nodesAdmin(this.#ctx) }

  /**
   * Cuts a node off at once (revocation, strict mode): Bye, its sessions and
   * slot dropped, every other client told at the next peer-list flush; its
   * pending registrations go too (server-nodes.ts). True when a client was
   * registered there.
   */
  disconnect (address: number, why: string): boolean { return disconnect(this.#ctx, address, why) }

  /**
   * Drops every registered client the registry no longer admits (after a
   * reload of --authorized-nodes, or a revocation by key); returns how many.
   */
  dropUnadmitted (why: string): number { return dropUnadmitted(this.#ctx, why) }

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
        tunnel6: rec.tunnel6 !== null ? formatIp6(rec.tunnel6.addr) : null,
        peerId: rec.peerId,
        role: 'client',
        key: fingerprint(rec.key),
        path: 'direct',
        endpoint: formatEndpoint(rec.endpointIp, rec.endpointPort),
        transport: this.#transportOf(rec.endpointIp),
        publicEndpoint: formatEndpoint(rec.endpointIp, rec.endpointPort),
        rttMs: rec.rtt.min,
        txBytes: c.txBytes,
        rxBytes: c.rxBytes,
        txPackets: c.txPackets,
        rxPackets: c.rxPackets,
        session: rec.sessions.current ? 'established' : 'handshaking',
        lastSeenSec: lastSeen(now - rec.lastSeen, c.lastRxMs === 0 ? null : this.#clock.wallNow() - c.lastRxMs),
        note: null,
        ...(rec.routes.length > 0 ? { routes: rec.routes.map(d => ({ prefix: formatPrefix(d.prefix), state: d.state, reason: d.reason })) } : {})
      })
    }
    peers.sort((a, b) => a.tunnelIp.localeCompare(b.tunnelIp, undefined, { numeric: true }))
    return { state: 'running', problem: null, peers, uptimeSec: Math.round((now - this.#startedAt) / 1000) }
  }

  /** A reloaded --approve-routes: every client's routes are decided again, changes announced at the next flush. */
  setApproveRoutes (policy: ApproveRoutes): void { this.#ctx.routes.setPolicy(policy) }

  /** Routes approved, pending and refused now (status counters). */
  routeCounters (): Record<string, number> { return this.#ctx.routes.counters() }

  /** The approved networks of the active clients, for the server's own kernel table (daemon.ts, kernel-route-plan.ts). */
  routeOffers (): RouteOffer[] {
    const out: RouteOffer[] = []
    for (const rec of this.#byIp.values()) if (rec.active) for (const prefix of rec.approved) out.push({ via: rec.tunnelIp, prefix })
    return out
  }

  get rejectedInits (): number { return this.#registration.rejectedInits }
}
