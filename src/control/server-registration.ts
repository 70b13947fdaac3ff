/**
 * The server's registration intake: a client's init, decided and answered,
 * and its Confirm, admitted (see docs/PROTOCOL.md).
 *
 *   1. init (type 1, role 1) ─▶ onInit: another protocol version → Reject
 *      VERSION; consumeInit (macs stripped; the inbound worker checked them):
 *      a wrong network key fails here, cheaply (no DH): Reject AUTH_FAILED
 *      (rate-limited), the address logged at most once a minute. It yields
 *      the client's static key.
 *   2. decideInit (pure: request, registry, records → decision): the claimed
 *      address (inside our network, not reserved), the registry (bound to
 *      another key, revoked, not authorized), the init timestamp against the
 *      newest one seen from this key (replays; kept when the record goes), a
 *      live client holding the address, capacity.
 *   3. response (type 2) with status. On OK for a new registration only a
 *      PendingRegistration is kept (pending-registrations.ts: no slot, no
 *      address; at most PENDING_PER_SOURCE per source IP, PENDING_MAX in all,
 *      forgotten after PENDING_REGISTRATION_TTL); a rekey of a registered
 *      client (its own key) puts the session pending on its record and
 *      installs its receive key (the DH on the handshake pool when set).
 *   4. Confirm on the pending session (server.ts routes it) ─▶ admit:
 *      decideAdmit asks the registry again (the address may have been bound
 *      meanwhile) and checks capacity, the client takes a slot ─▶ activate:
 *      the registry binds the address to the key, the client is active at
 *      the Confirm's source, every other client learns of it (peer list).
 *
 * Main thread only; acts through the ServerContext (server-context.ts).
 */
import type { ControlInput } from './port.js'
import { sameBytes, confirmPending, emptySessionSet, newSession, type Session } from './session.js'
import { PerKeyInterval } from './rate-limit.js'
import * as C from './constants.js'
import { consumeInit, createResponse, type SessionKeys } from '../crypto/noise.js'
import type { HandshakePool } from './handshake-pool.js'
import { stripMacs } from '../wire/cookie.js'
import { isVpnError } from '../errors.js'
import { REJECT_AUTH_FAILED, REJECT_UNKNOWN_SESSION, REJECT_VERSION } from '../wire/messages.js'
import { PROTOCOL_VERSION } from '../wire/constants.js'
import { decodeInitPayload, encodeRespPayload, RESP_OK, RESP_ADDRESS_IN_USE, RESP_SERVER_FULL, RESP_ADDRESS_OUTSIDE_NETWORK, RESP_ADDRESS_RESERVED, RESP_ADDRESS_BOUND, RESP_KEY_REVOKED, RESP_NOT_AUTHORIZED, type RespStatus } from '../wire/payloads.js'
import { formatEndpoint, inSubnet, intToIp } from '../wire/addr.js'
import { RttWindow } from './rtt.js'
import { NO_ATTRS } from '../wire/attrs.js'
import { formatIp6, formatPrefix, networkOf, prefixContains, samePrefix, type IpPrefix } from '../wire/prefix.js'
import type { NodeRegistry } from './registry.js'
import { PendingRegistration, type Claim } from './pending-registrations.js'
import { claimRefusal, type ClaimRefusal } from './server-nodes.js'
import { keyHex, type ClientRecord, type ServerContext } from './server-context.js'
import { wireIp, wirePort } from '../wire/endpoint-handle.js'

/** The response status of each registry refusal. */
const REFUSAL_STATUS = { 'address-bound-to-other-key': RESP_ADDRESS_BOUND, 'key-revoked': RESP_KEY_REVOKED, 'not-authorized': RESP_NOT_AUTHORIZED } as const

/** Newest init timestamps kept per client static key (replay memory); the oldest entry goes beyond this. */
const REPLAY_MEMORY_MAX = 65_536

/** What an authenticated init asks for. */
export interface InitRequest {
  /** The claimed tunnel address (u32). */
  tunnelIp: number
  /** The claimed IPv6 tunnel address (InitPayload attrs), or null. */
  tunnel6: IpPrefix | null
  /** The client's static key (authenticated by consumeInit). */
  key: Uint8Array
  /** The init's timestamp (wall-clock ms, strictly increasing per key). */
  timestamp: number
}

/** What decideInit reads: our network, the registry, the records; `now` and `expiry` in monotonic ms. */
export interface InitView {
  serverIp: number
  network: number
  prefix: number
  broadcast: number
  /** Our IPv6 tunnel address and network, or null (then a client with one is refused). */
  tunnel6: IpPrefix | null
  maxClients: number
  registry: Pick<NodeRegistry, 'check'>
  /** Newest init timestamp per hex static key. */
  lastInitTs: ReadonlyMap<string, number>
  byIp: ReadonlyMap<number, ClientRecord>
  clientCount: () => number
  freeSlots: number
  now: number
  expiry: number
}

export type InitDecision =
  /** Answer the status (a response, no session) and log why; `family` 6: about the IPv6 address. */
  | { kind: 'refuse', status: RespStatus, why: string, family?: 6 }
  /** The registry refused the claim (answered like refuse, with REFUSAL_STATUS and claimRefusal's line). */
  | { kind: 'refuse-claim', claim: ClaimRefusal }
  /** Not newer than this key's last init: dropped silently. */
  | { kind: 'replayed' }
  /** A new registration: a PendingRegistration until its Confirm. */
  | { kind: 'new' }
  /** The record's own key again (a rekey, or the node restarted). */
  | { kind: 'rekey', rec: ClientRecord }

/** Step 2: an authenticated init's fate. Pure (registry.check is a query). */
export function decideInit (req: InitRequest, v: InitView): InitDecision {
  const ip = req.tunnelIp
  if (!inSubnet(ip, v.network, v.prefix)) {
    return { kind: 'refuse', status: RESP_ADDRESS_OUTSIDE_NETWORK, why: `its address is outside the network ${intToIp(v.network)}/${v.prefix}` }
  }
  if (ip === v.serverIp || ip === v.network || ip === v.broadcast) {
    return { kind: 'refuse', status: RESP_ADDRESS_RESERVED, why: 'its address is the server\'s own, the network or the broadcast address' }
  }
  const t6 = req.tunnel6
  if (t6 !== null) {
    const six = refuse6(t6, v.tunnel6)
    if (six !== null) return six
  }
  const claim = v.registry.check(req.key, ip, t6?.addr ?? null)
  if (!claim.ok) return { kind: 'refuse-claim', claim }
  const lastTs = v.lastInitTs.get(keyHex(req.key))
  if (lastTs !== undefined && req.timestamp <= lastTs) return { kind: 'replayed' }
  const rec = v.byIp.get(ip)
  if (rec !== undefined && !sameBytes(rec.key, req.key) && rec.active && v.now - rec.lastSeen < v.expiry) {
    // Only when the registry holds no binding for it (a registry that forgot, e.g. a bounded one evicting).
    return { kind: 'refuse', status: RESP_ADDRESS_IN_USE, why: `the address is held by a live client at ${formatEndpoint(rec.endpointIp, rec.endpointPort)}` }
  }
  const rec6 = t6 === null ? undefined : liveHolder6(v.byIp, t6, req.key, v.now, v.expiry)
  if (rec6 !== undefined) {
    return { kind: 'refuse', status: RESP_ADDRESS_IN_USE, family: 6, why: `its IPv6 address ${formatIp6(t6!.addr)} is held by a live client (${intToIp(rec6.tunnelIp)}) at ${formatEndpoint(rec6.endpointIp, rec6.endpointPort)}` }
  }
  const own = rec !== undefined && sameBytes(rec.key, req.key)
  if (!own || !sameTunnel6(rec.tunnel6, t6)) {
    // A new registration (or its own record asking for another IPv6 address: registered afresh,
    // its old record replaced at admit, so it needs no room of its own).
    // It holds nothing (no slot, no address) until its Confirm (admit).
    if (!own && (v.clientCount() >= v.maxClients || v.freeSlots === 0)) return { kind: 'refuse', status: RESP_SERVER_FULL, why: `the server is full (--max-clients ${v.maxClients})` }
    return { kind: 'new' }
  }
  return { kind: 'rekey', rec }
}

/**
 * The IPv6 half of decideInit's address checks: we have an IPv6 network, the
 * address lies in it, and it is neither ours nor the network's all-zero
 * (subnet-router anycast, RFC 4291 §2.6.1) address. Null when fine.
 */
function refuse6 (t6: IpPrefix, ours: IpPrefix | null): InitDecision | null {
  const a = formatIp6(t6.addr)
  if (ours === null) {
    return { kind: 'refuse', status: RESP_ADDRESS_OUTSIDE_NETWORK, family: 6, why: `it has the IPv6 address ${a} but this server has no IPv6 network (give the server one, e.g. --tun ADDR/LEN,fd00:77::1/64, or remove the client's IPv6 address)` }
  }
  const net = networkOf(ours)
  if (!prefixContains(net, 6, t6.addr)) {
    return { kind: 'refuse', status: RESP_ADDRESS_OUTSIDE_NETWORK, family: 6, why: `its IPv6 address ${a} is outside the network ${formatPrefix(net)}` }
  }
  if (sameBytes(t6.addr, ours.addr) || sameBytes(t6.addr, net.addr)) {
    return { kind: 'refuse', status: RESP_ADDRESS_RESERVED, family: 6, why: `its IPv6 address ${a} is the server's own or the network's all-zero (subnet-router anycast) address` }
  }
  return null
}

/** A live client of another key holding the IPv6 address `t6`, if any (a scan: only at registrations). */
function liveHolder6 (byIp: ReadonlyMap<number, ClientRecord>, t6: IpPrefix, key: Uint8Array, now: number, expiry: number): ClientRecord | undefined {
  for (const r of byIp.values()) {
    if (r.tunnel6 !== null && sameBytes(r.tunnel6.addr, t6.addr) && !sameBytes(r.key, key) && r.active && now - r.lastSeen < expiry) return r
  }
  return undefined
}

const sameTunnel6 = (a: IpPrefix | null, b: IpPrefix | null): boolean => (a === null || b === null) ? a === b : samePrefix(a, b)

/** What decideAdmit reads (monotonic ms). */
export interface AdmitView {
  registry: Pick<NodeRegistry, 'check'>
  byIp: ReadonlyMap<number, ClientRecord>
  byKey: ReadonlyMap<string, ClientRecord>
  clientCount: number
  maxClients: number
  freeSlots: number
  now: number
  expiry: number
}

/**
 * Step 4: may a confirmed claim take a slot? Refused when the registry no
 * longer admits it, a live client of another key holds the address, or the
 * server is full. Otherwise the records it replaces: `old` at the address,
 * `other` this key's record at another address (each gives back its slot
 * and its place under --max-clients). Pure.
 */
export function decideAdmit (c: Claim, v: AdmitView): { ok: false } | { ok: true, old: ClientRecord | undefined, other: ClientRecord | undefined } {
  const old = v.byIp.get(c.tunnelIp)
  const taken = !v.registry.check(c.key, c.tunnelIp, c.tunnel6?.addr ?? null).ok ||
    (old !== undefined && !sameBytes(old.key, c.key) && old.active && v.now - old.lastSeen < v.expiry) ||
    (c.tunnel6 !== null && liveHolder6(v.byIp, c.tunnel6, c.key, v.now, v.expiry) !== undefined)
  const other = v.byKey.get(keyHex(c.key))
  const freed = (old !== undefined ? 1 : 0) + (other !== undefined && other !== old ? 1 : 0)
  const full = v.clientCount - freed >= v.maxClients || v.freeSlots + freed === 0
  if (taken || full) return { ok: false }
  return { ok: true, old, other: other !== old ? other : undefined }
}

export class ServerRegistration {
  readonly #ctx: ServerContext
  /** Newest init timestamp per client static key (hex), kept when the record goes; bounded (REPLAY_MEMORY_MAX). */
  readonly #lastInitTs = new Map<string, number>()
  readonly #wrongKeyLog = new PerKeyInterval(C.WRONG_KEY_LOG_INTERVAL, C.RATE_TABLE_MAX)
  readonly #refusedLog = new PerKeyInterval(C.WRONG_KEY_LOG_INTERVAL, C.RATE_TABLE_MAX)
  readonly #versionLog = new PerKeyInterval(C.WRONG_KEY_LOG_INTERVAL, C.RATE_TABLE_MAX)
  /** Our tunnel network and its broadcast address (clients' addresses must lie inside, and be neither). */
  readonly #network: number
  readonly #broadcast: number
  /** Inits that failed authentication (wrong network key). */
  rejectedInits = 0
  /** Runs createResponse off the main thread when set (--handshake-workers; daemon.ts). */
  handshakePool: HandshakePool | null = null
  /** Unconfirmed registrations evicted by newer ones (PENDING_PER_SOURCE, PENDING_MAX); Confirms refused because the address was taken, the key revoked or the server filled meanwhile. status counters; metrics lwt_drops_total. */
  readonly registrationCounters = { dropRegistrationEvicted: 0, dropRegistrationConfirmRefused: 0 }
  /** Registration handshakes (and rekeys): answered OK, refused (address, capacity), failed authentication (wrong key). status counters; metrics lwt_handshakes_total. */
  readonly handshakeCounters = { handshakesAccepted: 0, handshakesRefused: 0, handshakesAuthFailed: 0, handshakesKeyRefused: 0, handshakesReplayed: 0, handshakesWrongVersion: 0, handshakesShed: 0 }

  constructor (ctx: ServerContext, network: number, broadcast: number) {
    this.#ctx = ctx
    this.#network = network
    this.#broadcast = broadcast
  }

  /** Steps 1–3: a HandshakeInit from a client. */
  onInit (input: ControlInput): void {
    const ctx = this.#ctx
    const opt = ctx.opt
    const now = ctx.clock.now()
    if (input.bytes.length >= 8 && input.bytes[1] !== PROTOCOL_VERSION) {
      // Another protocol version (a v1 node): tell it (rate-limited Reject VERSION) and say so once a minute per address.
      this.handshakeCounters.handshakesWrongVersion++
      ctx.sendReject(REJECT_VERSION, new DataView(input.bytes.buffer, input.bytes.byteOffset).getUint32(4, true), input.ip, input.port)
      if (this.#versionLog.allow(input.ip, now)) {
        ctx.log.warn(`a node at ${formatEndpoint(input.ip, input.port)} speaks protocol version ${input.bytes[1]}; this node speaks ${PROTOCOL_VERSION}: upgrade it (logged once a minute per address)`)
      }
      return
    }
    let hs
    try {
      hs = consumeInit(opt.psk, opt.nodeKey, stripMacs(input.bytes)) // mac1 (and mac2 under load) checked by the inbound worker (dataplane/init-guard.ts)
    } catch (err) {
      if (isVpnError(err, 'ERR_AUTH_FAILED')) {
        this.rejectedInits++
        this.handshakeCounters.handshakesAuthFailed++
        const idx = new DataView(input.bytes.buffer, input.bytes.byteOffset).getUint32(4, true)
        ctx.sendReject(REJECT_AUTH_FAILED, idx, input.ip, input.port)
        if (this.#wrongKeyLog.allow(input.ip, now)) {
          ctx.log.warn('rejected a client with the wrong network key (logged once a minute per address)', { endpoint: formatEndpoint(input.ip, input.port) })
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
    const reply = (status: RespStatus, peerId: number, refused?: 6): Uint8Array => encodeRespPayload({
      status,
      prefixLen: opt.prefix,
      mtu: opt.mtu,
      tunnelIp: opt.tunnelIp,
      peerId,
      observedIp: wireIp(input.ip), // a handle (a client on TCP or IPv6): 0:0, no IPv4 endpoint to tell it
      observedPort: wirePort(input.ip, input.port),
      // Our IPv6 address and our own routes; on a refusal about the client's IPv6 address, REFUSED says so (wire/attrs.ts).
      attrs: { tunnel6: opt.tunnel6 ?? null, routes: ctx.routes.own, ...(refused !== undefined ? { refused } : {}) }
    })
    const refuse = (status: RespStatus, why: string, family?: 6): void => {
      this.handshakeCounters.handshakesRefused++
      const { message } = createResponse(hs.state, 0, reply(status, 0, family))
      ctx.port.sendControl(message, input.ip, input.port)
      if (this.#refusedLog.allow(`${input.ip}:${status}`, now)) {
        const t6 = req.attrs?.tunnel6
        ctx.log.warn(`refused a client: ${why}`, { peer: intToIp(req.tunnelIp), ...(t6 != null ? { peer6: formatIp6(t6.addr) } : {}), endpoint: formatEndpoint(input.ip, input.port) })
      }
    }
    if (req.role !== 1) return
    const ip = req.tunnelIp >>> 0
    const key = hs.remoteStatic
    const kh = keyHex(key)
    const tunnel6 = (req.attrs ?? NO_ATTRS).tunnel6
    const d = decideInit({ tunnelIp: ip, tunnel6, key, timestamp: req.timestamp }, {
      serverIp: opt.tunnelIp,
      network: this.#network,
      prefix: opt.prefix,
      broadcast: this.#broadcast,
      tunnel6: opt.tunnel6 ?? null,
      maxClients: opt.maxClients,
      registry: ctx.registry,
      lastInitTs: this.#lastInitTs,
      byIp: ctx.byIp,
      clientCount: ctx.clientCount,
      freeSlots: ctx.freeSlots.length,
      now,
      expiry: ctx.expiry()
    })
    switch (d.kind) {
      case 'refuse': refuse(d.status, d.why, d.family); return
      case 'refuse-claim':
        this.handshakeCounters.handshakesKeyRefused++
        refuse(REFUSAL_STATUS[d.claim.reason], claimRefusal(d.claim, key, ip, ctx.byIp, ctx.registry.authorized?.file, tunnel6), d.claim.family === 6 ? 6 : undefined)
        return
      case 'replayed': this.handshakeCounters.handshakesReplayed++; return // replayed init
      case 'new': {
        this.#noteInitTs(kh, req.timestamp)
        const p = new PendingRegistration(input.ip, input.port, now, { tunnelIp: ip, tunnel6, key, lan: req.lan, routes: (req.attrs ?? NO_ATTRS).routes, candidates6: req.attrs?.candidates6 ?? [] })
        const localIndex = ctx.indexes.allocate(p)
        const { message, keys } = createResponse(hs.state, localIndex, reply(RESP_OK, 0))
        this.handshakeCounters.handshakesAccepted++
        p.attach(newSession(localIndex, hs.senderIndex, keys, now, false))
        for (const q of ctx.pending.add(p)) { ctx.dropSession(q.session); this.registrationCounters.dropRegistrationEvicted++ }
        ctx.port.sendControl(message, input.ip, input.port)
        return
      }
      case 'rekey': break
    }
    // Its own key again (a rekey, or the node restarted): the new session waits for its Confirm on the record.
    const rec = d.rec
    this.#noteInitTs(kh, req.timestamp)
    rec.lan = req.lan
    rec.candidates6 = req.attrs?.candidates6 ?? []
    rec.advertised = (req.attrs ?? NO_ATTRS).routes // decided at its Confirm (activate)
    const localIndex = ctx.indexes.allocate(rec)
    const client = rec
    const finish = (message: Uint8Array, keys: SessionKeys): void => {
      this.handshakeCounters.handshakesAccepted++
      const session = newSession(localIndex, hs.senderIndex, keys, ctx.clock.now(), false)
      if (client.sessions.pending) ctx.dropSession(client.sessions.pending)
      client.sessions.pending = session
      ctx.port.setRecvKey(client.slot, localIndex, keys.dataRecv)
      ctx.port.sendControl(message, input.ip, input.port)
    }
    const pool = this.handshakePool
    if (pool === null) {
      const { message, keys } = createResponse(hs.state, localIndex, reply(RESP_OK, rec.peerId))
      finish(message, keys)
      return
    }
    // The DH on a pool thread (control/handshake-pool.ts); the record may be gone or replaced by the answer.
    pool.run(hs.state, localIndex, reply(RESP_OK, rec.peerId)).then((r) => {
      if (r === null || ctx.byIp.get(ip) !== client) { ctx.indexes.delete(localIndex); if (r === null) this.handshakeCounters.handshakesShed++; return }
      finish(r.message, r.keys)
    }, (err: unknown) => {
      ctx.indexes.delete(localIndex)
      ctx.log.warn('a handshake failed on the pool (dropped; the client retries)', { err })
    })
  }

  /** Replay memory: the newest init timestamp of `kh`, the oldest key forgotten beyond REPLAY_MEMORY_MAX. */
  #noteInitTs (kh: string, ts: number): void {
    this.#lastInitTs.delete(kh)
    this.#lastInitTs.set(kh, ts)
    if (this.#lastInitTs.size > REPLAY_MEMORY_MAX) this.#lastInitTs.delete(this.#lastInitTs.keys().next().value!)
  }

  /**
   * Step 4, the Confirm of a new registration: ask the registry again and check the
   * address (it may have been bound, or the key revoked, since the init),
   * then the client takes a slot and the address and becomes active. A
   * Confirm that comes too late is answered with a Reject (unknown session):
   * the client registers again and meets the refusal's reason.
   */
  admit (p: PendingRegistration, ip: number, port: number): ClientRecord | null {
    const ctx = this.#ctx
    const now = ctx.clock.now()
    ctx.pending.delete(p)
    const c = p.claim
    const kh = keyHex(c.key)
    const d = decideAdmit(c, { registry: ctx.registry, byIp: ctx.byIp, byKey: ctx.byKey, clientCount: ctx.clientCount(), maxClients: ctx.opt.maxClients, freeSlots: ctx.freeSlots.length, now, expiry: ctx.expiry() })
    if (!d.ok) {
      this.registrationCounters.dropRegistrationConfirmRefused++
      ctx.dropSession(p.session)
      ctx.sendReject(REJECT_UNKNOWN_SESSION, p.session.localIndex, ip, port)
      return null
    }
    if (d.old !== undefined) ctx.remove(d.old, 'replaced by a new registration')
    if (d.other !== undefined) ctx.remove(d.other, `its node key now registers ${intToIp(c.tunnelIp)}`)
    const rec: ClientRecord = {
      peerId: ctx.nextPeerId(),
      slot: ctx.freeSlots.pop()!,
      tunnelIp: c.tunnelIp,
      tunnel6: c.tunnel6,
      key: c.key,
      active: false,
      endpointIp: ip,
      endpointPort: port,
      lastSeen: now,
      sessions: emptySessionSet(),
      lan: c.lan,
      candidates6: c.candidates6 ?? [],
      pings: new Map(),
      lastPingAt: -Infinity,
      rtt: new RttWindow(),
      roam: null,
      advertised: c.routes,
      routes: [],
      approved: []
    }
    ctx.byIp.set(rec.tunnelIp, rec)
    ctx.byKey.set(kh, rec)
    ctx.byPeerId.set(rec.peerId, rec)
    const s = p.session
    rec.sessions.pending = s
    ctx.indexes.reassign(s.localIndex, rec)
    ctx.port.setRecvKey(rec.slot, s.localIndex, s.keys.dataRecv)
    this.activate(rec, s, ip, port)
    return rec
  }

  /** The pending session `s` is confirmed from ip:port: it becomes current, the registry binds the address, the client is active there. */
  activate (rec: ClientRecord, s: Session, ip: number, port: number): void {
    const ctx = this.#ctx
    const wasActive = rec.active
    confirmPending(rec.sessions, s, ctx.clock.now(), ctx.dropSession)
    rec.active = true
    ctx.registry.bind(rec.key, rec.tunnelIp, ctx.clock.wallNow(), rec.tunnel6?.addr ?? null)
    rec.endpointIp = ip
    rec.endpointPort = port
    ctx.routes.recompute(rec) // its routes decided (others' may change: they are announced)
    ctx.port.setPeer(ctx.route(rec))
    ctx.port.setSendKey(rec.slot, s.keys.dataSend, s.remoteIndex)
    if (!wasActive) {
      ctx.log.info('client registered', { peer: intToIp(rec.tunnelIp), ...(rec.tunnel6 !== null ? { peer6: formatIp6(rec.tunnel6.addr) } : {}), endpoint: formatEndpoint(ip, port), clients: ctx.clientCount() })
    }
    ctx.peerList.announce(rec)
    ctx.peerList.sendFull(rec, s)
  }
}
