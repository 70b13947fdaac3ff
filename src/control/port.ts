/**
 * The narrow interface between the control plane and the dataplane. The
 * controllers (control/server.ts, control/client.ts) call a DataplanePort and
 * receive ControlInput events; dataplane/dataplane.ts implements it with
 * worker threads, test/helpers implement it in memory. ControlComponents is
 * everything else a controller gets from the composition root (daemon.ts).
 */
import type { PeerCounters } from '../dataplane/stats.js'
import type { Clock, WallClock } from '../clock.js'
import type { Random } from '../random.js'
import type { Logger } from '../log.js'
import type { IpPrefix } from '../wire/prefix.js'
import type { V6Names } from './endpoint6.js'

export interface PeerRoute {
  /** Small integer naming the peer in the dataplane (0..maxPeers-1). */
  slot: number
  peerId: number
  /** Host-order tunnel address. */
  tunnelIp: number
  /** Where packets for this peer are sent (the server's endpoint when relayed). */
  endpointIp: number
  endpointPort: number
  /** Wrap packets in a relay envelope addressed to peerId. */
  relayVia: boolean
  /** Send from this probe socket (0 or absent: the main socket). */
  sock?: number
  /**
   * Inner addresses the peer owns beyond tunnelIp: its IPv6 tunnel address
   * (a /128) and its approved routes. Packets to them go to this peer; a
   * packet from this peer must come from tunnelIp or one of them
   * (cryptokey routing, PROTOCOL §9.4). Absent: none.
   */
  prefixes?: readonly IpPrefix[]
}

export interface DataplanePort {
  setPeer(route: PeerRoute): void
  removePeer(slot: number): void
  /**
   * This node's own inner addresses beyond its IPv4 tunnel address: its IPv6
   * tunnel address (a /128) and the approved routes it serves. An inbound
   * packet must be addressed to tunnelIp or one of them. Replaces the last set.
   */
  setLocalPrefixes(prefixes: readonly IpPrefix[]): void
  /**
   * Start sending to the peer on a new session (counter restarts at 0).
   * fec: the session negotiated FEC; send parity with these parameters.
   */
  setSendKey(slot: number, key: Uint8Array, remoteIndex: number, fec?: { data: number, parity: number } | null): void
  /**
   * Stop sending to the peer: its session expired (REJECT_AFTER) with no
   * successor. The send key is wiped; its packets queue and NEED_SESSION is asked.
   */
  clearSendKey(slot: number): void
  /**
   * The largest inner packet the peer's path carries (control/path-mtu-client.ts): larger ones are dropped
   * and answered with ICMP too-big. slot RELAY_PATH (-1): every relayed peer; inner NO_PATH_LIMIT: no limit.
   */
  setPathMtu(slot: number, inner: number): void
  /** Accept data messages addressed to localIndex; fec: the session negotiated FEC (decode its parity). */
  setRecvKey(slot: number, localIndex: number, key: Uint8Array, fec?: boolean): void
  dropRecvIndex(localIndex: number): void
  /** Send one control-plane datagram from the daemon's UDP port. */
  sendControl(bytes: Uint8Array, ip: number, port: number, sock?: number): void
  /** As sendControl, with this datagram's IP TTL (a low-TTL first probe opens our NAT without reaching the peer's). */
  sendControlTtl(bytes: Uint8Array, ip: number, port: number, ttl: number, sock?: number): void
  /**
   * Birthday search: open up to `n` extra UDP sockets on random ports (ids
   * > 0; fewer when the budget is spent). Control datagrams arriving on them
   * are delivered as ControlInput with their `sock`.
   */
  openProbeSockets(n: number): number[]
  /** Hand a probe socket to the dataplane for good (a peer's direct path uses it); it is closed at shutdown. */
  adoptProbeSocket(sock: number): void
  /** Close probe sockets that were not adopted. */
  closeProbeSockets(socks: readonly number[]): void
  peerCounters(slot: number): PeerCounters
  counters(): Record<string, number>
}

export type ControlInputKind = 'packet' | 'relayed' | 'unknown-index' | 'unknown-relay-source'

/** A control-plane datagram (or dataplane event) delivered to the main thread. */
export interface ControlInput {
  kind: ControlInputKind
  /** The message (a private copy). For 'relayed', the inner message of the envelope. */
  bytes: Uint8Array
  ip: number
  port: number
  /** For 'relayed': the source peerId the server wrote into the envelope. */
  via: number
  /** The socket it arrived on: 0 (or absent) the main socket, else a probe socket id. */
  sock?: number
}

export interface ControlHandler {
  onControl(input: ControlInput): void
  /** The dataplane has packets for a peer that has no session. */
  onNeedSession(slot: number): void
  /** The peer's send key reached REKEY_AFTER_MESSAGES: start a new session (once per key). */
  onSendLimit(slot: number): void
  /** The dataplane saw an authenticated packet from a peer at a new address. */
  onEndpoint(slot: number, ip: number, port: number): void
}

/** What daemon.ts hands each controller (tests pass a FakeDataplane, a ManualClock and a seeded Random). */
export interface ControlComponents {
  port: DataplanePort
  /** Monotonic time for every timer; wall time only for the init timestamp and the dataplane's receive stamps. */
  clock: Clock & WallClock
  /** Retry jitter, probe txids and ports, receiver indexes, return-routability txids. */
  random: Random
  log: Logger
  /** The daemon's IPv6 address table (control/endpoint6.ts); absent where no IPv6 endpoint can occur (tests). */
  v6?: V6Names
  /** The transport an endpoint is reached over (transport/conn-table.ts transportOf); absent: every endpoint is UDP (tests). */
  transportOf?: (ip: number) => 'udp' | 'tcp' | 'faketcp'
}
