/**
 * Shared-memory layout of the dataplane, imported by the main thread and by
 * every dataplane worker. Nothing else defines offsets into these buffers.
 *
 * Three kinds of SharedArrayBuffer exist per daemon:
 *
 *  1. Packet memory, one per pipeline: outbound BATCH × SLOT_SIZE bytes,
 *     inbound RX_BUFS × RX_BUF_SIZE. The kernel reads a packet straight into
 *     it (TUN read, or recvmmsg: a coalesced datagram's packets stay where
 *     they landed), it is sealed or opened in place, and written to the
 *     kernel from the same bytes. Pipeline-owned: no other thread touches it.
 *
 *  2. The control ring (inbound worker → main thread): handshake, control,
 *     reject and "unknown session" packets, which the control plane handles.
 *     See dataplane/ring.ts for the discipline.
 *
 *  3. Stats: Float64 counters, one region per worker, single writer (the
 *     worker), read by the main thread without messaging (`status`). Float64
 *     stores are not torn on x86-64/arm64; counts stay exact below 2^53.
 */

import type { IpPrefix } from '../wire/prefix.js'

/** Bytes per packet slot. Holds MAX_MTU + headroom + tag. */
export const SLOT_SIZE = 2048
/** Slots per worker batch. wireguard-go uses 128; 64 measured as enough here (perf-design.md §8). */
export const BATCH = 64
/**
 * Inbound receive geometry: datagrams per recvmmsg, each into a buffer big
 * enough for a datagram the kernel coalesced (UDP_GRO: up to 64 KiB of
 * same-size packets from one sender), split in place into packets. 16 × 64 KiB
 * = 1 MiB of address space per inbound pipeline; pages become resident only
 * as datagrams reach them (a 100-byte datagram touches one page).
 */
export const RX_BUFS = 16
export const RX_BUF_SIZE = 65536
/** Packets one receive can yield: the kernel coalesces at most 64 (GRO) or 128 (a local sender's GSO) per datagram. */
export const RX_MAX_PACKETS = RX_BUFS * 128
/** Room in front of an inner packet for the relay envelope (8) and the transport header (16). */
export const HEADROOM = 32
/** Poly1305 tag. */
export const TAG = 16
/** Largest inner packet a slot can carry. */
export const MAX_PACKET = SLOT_SIZE - HEADROOM - TAG
/** Largest TUN MTU accepted (leaves room for the outer IPv4+UDP headers on a 1500/9000 link is the user's call). */
export const MAX_MTU = 1900

/**
 * Control ring geometry. 2048 slots absorb the burst of a thousand clients
 * re-registering at once (bench/scale.ts: with 256 slots a burst of 900 inits
 * lost ~2,500 packets to dropControlRingFull while the main thread answered
 * handshakes). 4 MiB of address space; pages become resident only when a
 * burst first reaches them. Overflow still drops (counted).
 */
export const CTRL_RING_SLOTS = 2048
export const CTRL_SLOT_SIZE = 2048

/**
 * Control ring entry kinds (meta[KIND]).
 *  PACKET: a whole UDP payload (types 1, 2, 3, 6) from ip:port.
 *  RELAYED: the inner message of a type-5 relay envelope; meta[VIA] = source peerId.
 *  UNKNOWN_INDEX: a transport message whose receiver index no session has
 *    (server restarted, session expired); the payload is its 16-byte header.
 *  UNKNOWN_RELAY_SOURCE: (server) a relay envelope from an endpoint that is no registered client.
 */
export const CTRL_KIND_PACKET = 1
export const CTRL_KIND_RELAYED = 2
export const CTRL_KIND_UNKNOWN_INDEX = 3
export const CTRL_KIND_UNKNOWN_RELAY_SOURCE = 4

/** Per-slot metadata words of the control ring (Int32 each). */
export const META_LEN = 0
export const META_KIND = 1
export const META_IP = 2
export const META_PORT = 3
export const META_VIA = 4
/** Which socket it arrived on: 0 the main socket, else a probe socket id (Dataplane.openProbeSockets). */
export const META_SOCK = 5
export const META_WORDS = 6

/** Global counters, in the order of their Float64 index within a worker's stats region. */
export const COUNTERS = [
  'tunRxPackets', 'tunRxBytes', 'tunTxPackets', 'tunTxBytes',
  'udpRxPackets', 'udpRxBytes', 'udpTxPackets', 'udpTxBytes',
  'relayedPackets', 'relayedBytes', 'controlPackets',
  'dropNotIp', 'dropNoRoute', 'dropNoSession', 'dropQueueFull',
  'dropMalformed', 'dropUnknownType', 'dropUnknownIndex', 'dropAuthFailed',
  'dropReplay', 'dropSpoofedSource', 'dropNotForUs', 'dropTunWrite', 'dropUdpSend',
  'dropControlRingFull', 'dropRelayUnknownPeer', 'dropRelayUnknownSource', 'dropTooBig',
  'tunRxSuperpackets', 'udpRxCoalesced', 'dropRxOverflow',
  // Packets (either direction) carried end to end by the native lone-packet path.
  'fastPathPackets',
  // A relay envelope whose inner message is not of type 1-4 (PROTOCOL §4.4: a Relay or a Reject is never relayed).
  'dropRelayInnerType',
  // Send keys: rekeys asked at REKEY_AFTER_MESSAGES; keys retired at REJECT_AFTER_MESSAGES (their packets queue for a new session).
  'rekeyOnMessages', 'sendKeyExhausted',
  // Server, HandshakeInits before the control ring (dataplane/init-guard.ts): bad mac1, over the
  // per-source or the global rate, no valid mac2 under load with the reply cap spent; replies sent.
  'dropInitMac1', 'dropInitRateSource', 'dropInitRateGlobal', 'dropCookieReplyLimited', 'cookieReplies',
  // Server with --client-isolation: a relay envelope between two clients (dropped, never forwarded).
  'dropIsolated',
  // FEC (dataplane/fec-hooks.ts): parity messages sent; groups rebuilt, data messages rebuilt, groups lost beyond
  // their parity; parity messages malformed, or for no FEC session of ours (not negotiated, or the session is gone).
  'fecParitySent', 'fecGroupsRecovered', 'fecPacketsRecovered', 'fecGroupsUnrecoverable', 'dropFecMalformed', 'dropFecNoSession',
  // Fake TCP (native/faketcp.c): a data segment of no flow the handshake set up (dataplane/faketcp-flow.ts).
  'dropFaketcpUnknownFlow',
  // Path MTU (dataplane/outbound.ts): inner packets larger than their path carries (dropped), and the ICMP
  // fragmentation-needed / Packet Too Big answers written back to the TUN for them.
  'dropPathMtu', 'icmpTooBigSent',
  // --mss-clamp (dataplane/mss-clamp.ts): TCP SYNs whose MSS option was lowered to the path; SYNs whose option
  // list is malformed (passed on untouched).
  'mssClamped', 'mssMalformed'
] as const
export type CounterName = typeof COUNTERS[number]
export const C: Record<CounterName, number> = Object.fromEntries(COUNTERS.map((n, i) => [n, i])) as Record<CounterName, number>

/** Per-peer counters, after the global ones, PEER_FIELDS per peer slot. */
export const P_TX_PACKETS = 0
export const P_TX_BYTES = 1
export const P_RX_PACKETS = 2
export const P_RX_BYTES = 3
/** Wall time (Date.now()) of the last authenticated packet from the peer. */
export const P_LAST_RX = 4
export const PEER_FIELDS = 5

/** Float64 words of one worker's stats region. */
export function statsRegionWords (maxPeers: number): number {
  return COUNTERS.length + maxPeers * PEER_FIELDS
}

/** Worker roles. The pipeline is split by direction; see dataplane/outbound.ts and inbound.ts. */
export type WorkerRole = 'outbound' | 'inbound'
export const WORKER_ROLES: readonly WorkerRole[] = ['outbound', 'inbound']
/** What one worker thread runs: one role, or both (placement 'fused'). */
export type WorkerKind = WorkerRole | 'both'

/** Everything a dataplane worker receives at start (workerData). */
export interface WorkerInit {
  role: WorkerKind
  /** Index of this worker's stats region ('both': the outbound region; inbound uses the next one). */
  statsIndex: number
  mode: 'server' | 'client'
  tunFd: number
  /** The TUN fd was opened with IFF_VNET_HDR (tunOpenVnet): reads split superpackets, writes carry a vnet header. */
  tunVnet: boolean
  udpFd: number
  /** The fake-TCP link's data socket (native/faketcp.c; polled by the inbound pipeline), or -1 without fake TCP. */
  ftcpFd?: number
  /** Own tunnel address, host order. */
  tunnelIp: number
  mtu: number
  maxPeers: number
  packetMem: SharedArrayBuffer
  /** role 'both' only: the inbound pipeline's packet memory (packetMem is the outbound one's). */
  packetMemIn: SharedArrayBuffer | null
  stats: SharedArrayBuffer
  /** Inbound (and 'both') only: the control ring. */
  ctrlRing: SharedArrayBuffer | null
  /** Attach the native lone-packet fast path (native/fastpath.c) to the TUN and main UDP polls (needs tunVnet). */
  fastPath: boolean
  /**
   * Message-count limits of a send key (default REKEY_AFTER_MESSAGES and
   * REJECT_AFTER_MESSAGES, wire/constants.ts); lower only in tests, to reach them.
   */
  rekeyAfterMessages?: number
  rejectAfterMessages?: number
  /** Server: the mac1/cookie keys (crypto/cookie.ts macKeys); the inbound pipeline gates HandshakeInits with them (dataplane/init-guard.ts). */
  macKeys?: { mac1: Uint8Array, cookie: Uint8Array } | null
  /** Server: --client-isolation: relay envelopes between clients are dropped (dropIsolated); the fast path gets no relay lookups. */
  clientIsolation?: boolean
  /** --mss-clamp: TCP SYNs' MSS option lowered to the peer's path (dataplane/mss-clamp.ts); the fast path hands SYNs to JS. */
  mssClamp?: boolean
}

/**
 * Messages main → worker (postMessage; rare control events, never packets).
 * Peer slots are small integers chosen by the main thread; per-peer state in
 * the workers is indexed by slot.
 */
/** PATH_MTU slot meaning "every relayed peer" (their packets take the server's path). */
export const RELAY_PATH = -1
/** PATH_MTU inner value meaning "no limit" (the path is not known to be smaller than the TUN MTU). */
export const NO_PATH_LIMIT = 0x7fffffff

export type ToWorker =
  | { code: 'PEER', slot: number, peerId: number, tunnelIp: number, endpointIp: number, endpointPort: number, relayVia: boolean, fd: number, prefixes?: readonly IpPrefix[] }
  /** The node's own inner addresses beyond tunnelIp (DataplanePort.setLocalPrefixes). */
  | { code: 'LOCAL', prefixes: readonly IpPrefix[] }
  /** Inbound: also receive on this socket (a probe socket that won a birthday search); `sock` is its id for the control ring. */
  | { code: 'ADD_SOCKET', fd: number, sock: number }
  | { code: 'PEER_REMOVE', slot: number }
  | { code: 'SEND_KEY', slot: number, key: Uint8Array, remoteIndex: number, fec?: { data: number, parity: number } | null }
  /** Outbound: stop sending on the peer's session (it expired): key wiped, packets queue and NEED_SESSION is asked. */
  | { code: 'SEND_KEY_CLEAR', slot: number }
  /**
   * Outbound: the largest inner packet the peer's path carries (path-mtu-client.ts; larger ones are answered
   * with ICMP too-big and dropped). slot RELAY_PATH: the limit of every relayed peer. NO_PATH_LIMIT: none.
   * Inbound too with --mss-clamp (the SYNs from that peer are clamped to it).
   */
  | { code: 'PATH_MTU', slot: number, inner: number }
  | { code: 'RECV_KEY', slot: number, localIndex: number, key: Uint8Array, fec?: boolean }
  | { code: 'DROP_INDEX', localIndex: number }
  | { code: 'STOP' }

/** Messages worker → main. */
export type FromWorker =
  | { code: 'READY' }
  | { code: 'CTRL' }
  | { code: 'NEED_SESSION', slot: number }
  /** Outbound: the peer's send counter reached REKEY_AFTER_MESSAGES (once per send key). */
  | { code: 'SEND_LIMIT', slot: number }
  | { code: 'ENDPOINT', slot: number, ip: number, port: number }
  | { code: 'STOPPED' }
  | { code: 'ERROR', message: string, stack?: string, tunGone?: boolean }
