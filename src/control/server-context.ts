/**
 * What the pieces of the server's control plane share (server.ts builds one
 * ServerContext and hands it to ServerRegistration, ServerRoaming, the node
 * administration of server-nodes.ts and ServerPeerList): the options, the
 * injected components, the client records (by tunnel address, static key
 * and peer id, with the free dataplane slots), the pending registrations,
 * the one table of receiver indexes, and the shared actions on them (drop a
 * session, send a rate-limited Reject, remove a client, its dataplane route).
 *
 *   server.ts ─▶ ServerContext ─▶ registration (adds records), roaming (moves
 *   them), nodes (removes them), peer list (announces them); tick() expires them
 *
 * Main thread only.
 */
import type { Endpoint6 } from '../wire/attrs.js'
import { pinEndpoint, unpinEndpoint, type V6Names } from './endpoint6.js'
import type { Clock, WallClock } from '../clock.js'
import type { Random } from '../random.js'
import type { Logger } from '../log.js'
import type { DataplanePort } from './port.js'
import { sessionsOf, wipeSession, type IndexTable, type Session, type SessionSet } from './session.js'
import { PerKeyInterval, TokenBucket } from './rate-limit.js'
import * as C from './constants.js'
import type { StaticKey } from '../crypto/noise.js'
import { encodeReject } from '../wire/messages.js'
import { endpointKey, intToIp } from '../wire/addr.js'
import type { RttWindow } from './rtt.js'
import type { NodeRegistry, RegistryAdmin } from './registry.js'
import type { PendingRegistration, PendingRegistrations } from './pending-registrations.js'
import type { ServerPeerList } from './server-peer-list.js'
import { peerPrefixes } from './peer-prefixes.js'
import type { NodeAttrs } from '../wire/attrs.js'
import type { ApproveRoutes } from '../config/schema.js'
import { ipv4Prefix, type IpPrefix } from '../wire/prefix.js'
import { networkAddress } from '../wire/addr.js'
import type { RouteDecision } from './route-approval.js'
import { ServerRoutes } from './server-routes.js'

export interface ServerOptions {
  psk: Uint8Array
  tunnelIp: number
  prefix: number
  /** Our IPv6 tunnel address with the network's prefix length (--tun's IPv6 half), or null: clients may not have one. */
  tunnel6?: IpPrefix | null
  mtu: number
  maxClients: number
  /** Seconds between client keepalives (sets the expiry). */
  keepaliveSec: number
  /** This server's static key (identity/node-key.ts). */
  nodeKey: StaticKey
  /** Address ↔ key bindings (daemon: state/registry-file.ts in the state dir); in memory only when absent. */
  registry?: NodeRegistry & RegistryAdmin
  /** Networks behind the server itself (--advertise-routes): always approved. */
  advertiseRoutes?: readonly IpPrefix[]
  /** Which advertised client routes are used (--approve-routes); none when absent. */
  approveRoutes?: ApproveRoutes
  /** --client-isolation: no peer-list entries for other clients (the dataplane drops relays between them). */
  clientIsolation?: boolean
}

/** What a client's peer-list entry and dataplane route say about it beyond its IPv4 address: its IPv6 address and approved routes. */
export function clientAttrs (rec: ClientRecord): NodeAttrs {
  const c6 = rec.candidates6 ?? []
  return { tunnel6: rec.tunnel6, routes: rec.approved, ...(c6.length > 0 ? { candidates6: c6 } : {}) }
}

export const keyHex = (k: Uint8Array): string => Buffer.from(k).toString('hex')

/** A registered (or registering) client. */
export interface ClientRecord {
  readonly peerId: number
  readonly slot: number
  readonly tunnelIp: number
  /** Its IPv6 tunnel address (host bits kept, its prefix length as it gave it), or null. */
  readonly tunnel6: IpPrefix | null
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
  /** Its own IPv6 candidates (CANDIDATE6, passed on to peers in its attrs); absent: none. */
  candidates6?: readonly Endpoint6[]
  /** Our RTT Pings to it (one per keepalive interval, from activation): txid → sent at, at most 4. */
  pings: Map<number, number>
  lastPingAt: number
  rtt: RttWindow
  /** A new source endpoint being checked (return routability): our Ping with `txid` went there; its Pong from there moves the client. */
  roam: { ip: number, port: number, txid: number, at: number } | null
  /** The networks it advertised in its last init (server-routes.ts decides them). */
  advertised: readonly IpPrefix[]
  /** The decision on each advertised route (route-approval.ts). */
  routes: readonly RouteDecision[]
  /** Its approved routes: in its PeerEntry, and its dataplane route's prefixes. */
  approved: readonly IpPrefix[]
}

/** A client's dataplane route: always direct (the server is every client's relay). */
export interface ClientRoute { slot: number, peerId: number, tunnelIp: number, endpointIp: number, endpointPort: number, relayVia: false, prefixes: readonly IpPrefix[] }

export interface ServerContext {
  readonly opt: ServerOptions
  readonly port: DataplanePort
  readonly clock: Clock & WallClock
  readonly random: Random
  readonly log: Logger
  readonly registry: NodeRegistry & RegistryAdmin
  /** Client records by tunnel address (insertion order is peer-list and tick order). */
  readonly byIp: Map<number, ClientRecord>
  /** Records by hex static key: a key holds one address. */
  readonly byKey: Map<string, ClientRecord>
  readonly byPeerId: Map<number, ClientRecord>
  /** Dataplane slots not held by a record (popped from the end). */
  readonly freeSlots: number[]
  /** Registrations answered OK and not confirmed yet: no slot, no address. */
  readonly pending: PendingRegistrations
  readonly indexes: IndexTable<ClientRecord | PendingRegistration>
  readonly peerList: ServerPeerList
  /** Subnet routes: the decisions on what clients advertise (server-routes.ts). */
  readonly routes: ServerRoutes
  /** The next peer id (sequential from 1). */
  nextPeerId(): number
  /** Active clients. */
  clientCount(): number
  /** Silence after which a client is forgotten, ms. */
  expiry(): number
  /** Forget a session's receiver index, here and in the dataplane. */
  dropSession(s: Session): void
  /** A Reject, at most one per source per REJECT_INTERVAL and REJECT_BUDGET_PER_SEC in all. */
  sendReject(reason: number, index: number, ip: number, port: number): void
  /** Forget a client: its sessions, slot and records; active ones leave the peer list at the next flush. */
  remove(rec: ClientRecord, why: string | null): void
  route(rec: ClientRecord): ClientRoute
}

/** The ServerContext of one ServerController. */
export function serverContext (
  opt: ServerOptions,
  c: { port: DataplanePort, clock: Clock & WallClock, random: Random, log: Logger, v6?: V6Names },
  parts: { registry: NodeRegistry & RegistryAdmin, indexes: IndexTable<ClientRecord | PendingRegistration>, pending: PendingRegistrations, peerList: ServerPeerList, byIp: Map<number, ClientRecord>, maxPeers: number }
): ServerContext {
  const { port, clock, log } = c
  const { byIp } = parts
  const byKey = new Map<string, ClientRecord>()
  const byPeerId = new Map<number, ClientRecord>()
  const freeSlots: number[] = []
  for (let s = parts.maxPeers - 1; s >= 0; s--) freeSlots.push(s)
  let nextPeerId = 1
  const rejectPerSource = new PerKeyInterval(C.REJECT_INTERVAL, C.RATE_TABLE_MAX)
  const rejectBudget = new TokenBucket(C.REJECT_BUDGET_PER_SEC, clock.now())
  const dropSession = (s: Session): void => {
    parts.indexes.delete(s.localIndex)
    port.dropRecvIndex(s.localIndex)
    wipeSession(s)
  }
  const routes = new ServerRoutes(opt.approveRoutes ?? {}, [ipv4Prefix(networkAddress(opt.tunnelIp, opt.prefix), opt.prefix)], opt.advertiseRoutes ?? [], {
    byIp,
    log,
    changed: (rec) => { port.setPeer(ctx.route(rec)); parts.peerList.announce(rec) }
  })
  const ctx: ServerContext = {
    opt, port, clock, random: c.random, log,
    registry: parts.registry, byIp, byKey, byPeerId, freeSlots,
    pending: parts.pending, indexes: parts.indexes, peerList: parts.peerList, routes,
    nextPeerId: () => nextPeerId++,
    clientCount: () => {
      let n = 0
      for (const r of byIp.values()) if (r.active) n++
      return n
    },
    expiry: () => Math.max(30_000, 3 * opt.keepaliveSec * 1000) + 10_000,
    dropSession,
    sendReject: (reason, index, ip, p) => {
      const now = clock.now()
      if (!rejectPerSource.allow(endpointKey(ip, p), now)) return
      if (!rejectBudget.take(now)) return
      port.sendControl(encodeReject({ reason: reason as 1 | 2 | 3, index }), ip, p)
    },
    remove: (rec, why) => {
      for (const s of sessionsOf(rec.sessions)) dropSession(s)
      byIp.delete(rec.tunnelIp)
      if (byKey.get(keyHex(rec.key)) === rec) byKey.delete(keyHex(rec.key))
      byPeerId.delete(rec.peerId)
      port.removePeer(rec.slot)
      unpinEndpoint(c.v6, rec.endpointIp)
      freeSlots.push(rec.slot)
      if (rec.active) parts.peerList.removed(rec)
      if (rec.approved.length > 0 || rec.routes.length > 0) routes.markDirty() // its networks may go to another node
      if (why !== null) log.info(`client removed: ${why}`, { peer: intToIp(rec.tunnelIp) })
    },
    route: (rec) => {
      pinEndpoint(c.v6, rec.endpointIp) // an IPv6 client's table entry lives as long as its route
      return { slot: rec.slot, peerId: rec.peerId, tunnelIp: rec.tunnelIp, endpointIp: rec.endpointIp, endpointPort: rec.endpointPort, relayVia: false, prefixes: peerPrefixes(clientAttrs(rec)) }
    }
  }
  return ctx
}
