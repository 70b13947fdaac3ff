/**
 * The dataplane's view of peers, one copy per worker, changed only by
 * control messages from the main thread (workers/layout.ts ToWorker). Owned by
 * the worker thread that holds it; nothing here is shared memory.
 */
import { ReplayWindow } from '../crypto/replay.js'
import { RouteTable } from './route-table.js'
import { ipv4Prefix, type IpPrefix } from '../wire/prefix.js'
import { NO_PATH_LIMIT } from '../workers/layout.js'

export interface WorkerPeer {
  readonly slot: number
  peerId: number
  /** Tunnel address, host order. Inner packets from this peer must carry it as source. */
  tunnelIp: number
  /** Its IPv6 tunnel address: the first IPv6 /128 of its PEER prefixes (the fast path's exact match), or null. */
  ip6: Uint8Array | null
  /** Where packets to this peer go now (the server's endpoint when relayed). */
  epIp: number
  epPort: number
  /** endpointKey(epIp, epPort), for lookups by source address. */
  epKey: number
  /** Wrap sealed packets in a relay envelope addressed to peerId. */
  relayVia: boolean
  /** Socket to send from: -1 the main socket, else a probe socket's fd (birthday search). */
  fd: number
  // Outbound worker only:
  /** Offset of the send key in the key table, or -1 before a session exists. */
  sendKeyOff: number
  remoteIndex: number
  /** Packets waiting for a session (copies; at most QUEUE_MAX). */
  queue: Uint8Array[]
  /** When NEED_SESSION was last asked (ms), to ask at most once a second. */
  askedAt: number
  // Inbound worker, server only:
  /** The new source last reported in an ENDPOINT event, and when (ms): reported at most once a second per source. */
  roamKey: number
  roamAt: number
  /** SEND_LIMIT was posted for the current send key (reset by a new key). */
  rekeyAsked: boolean
  /** Outbound: the largest inner packet its direct path carries (PATH_MTU; NO_PATH_LIMIT when not known smaller). */
  pathInner: number
  /** Outbound: the batch in which it was last sent an ICMP too-big (one answer per peer per batch). */
  tooBigBatch: number
}

export interface RecvSession {
  readonly localIndex: number
  readonly slot: number
  readonly keyOff: number
  readonly window: ReplayWindow
}

import { endpointKey } from '../wire/addr.js'
export { endpointKey }

/** Packets cached per peer while its session is set up (nebula caps at 100; a handshake here takes ~1 RTT). */
export const QUEUE_MAX = 32

export class PeerTable {
  readonly bySlot: (WorkerPeer | undefined)[]
  readonly byTunnelIp = new Map<number, WorkerPeer>()
  readonly byPeerId = new Map<number, WorkerPeer>()
  readonly byEndpoint = new Map<number, WorkerPeer>()
  /**
   * Inner addresses → slot by longest prefix (cryptokey routing): each peer's
   * tunnelIp as a /32 and its PEER `prefixes`. byTunnelIp stays the first,
   * exact lookup for IPv4 host addresses; this table answers the rest.
   */
  readonly routes = new RouteTable()

  constructor (maxPeers: number) {
    this.bySlot = new Array(maxPeers)
  }

  upsert (m: { slot: number, peerId: number, tunnelIp: number, endpointIp: number, endpointPort: number, relayVia: boolean, fd?: number, prefixes?: readonly IpPrefix[] }): WorkerPeer {
    let p = this.bySlot[m.slot]
    if (p === undefined) {
      p = {
        slot: m.slot, peerId: 0, tunnelIp: 0, ip6: null, epIp: 0, epPort: 0, epKey: -1, relayVia: false, fd: -1,
        sendKeyOff: -1, remoteIndex: 0, queue: [], askedAt: -Infinity, roamKey: -1, roamAt: -Infinity, rekeyAsked: false,
        pathInner: NO_PATH_LIMIT, tooBigBatch: -1
      }
      this.bySlot[m.slot] = p
    } else {
      this.#unindex(p)
    }
    p.peerId = m.peerId
    p.tunnelIp = m.tunnelIp
    p.relayVia = m.relayVia
    p.fd = m.fd ?? -1
    p.ip6 = m.prefixes?.find((x) => x.family === 6 && x.len === 128)?.addr ?? null
    this.#index(p)
    this.routes.set(p.slot, p.tunnelIp !== 0 ? [ipv4Prefix(p.tunnelIp, 32), ...(m.prefixes ?? [])] : (m.prefixes ?? []))
    this.setEndpoint(p, m.endpointIp, m.endpointPort)
    return p
  }

  setEndpoint (p: WorkerPeer, ip: number, port: number): void {
    if (p.epKey !== -1 && this.byEndpoint.get(p.epKey) === p) this.byEndpoint.delete(p.epKey)
    p.epIp = ip
    p.epPort = port
    p.epKey = endpointKey(ip, port)
    // Relayed peers share the server's endpoint: only direct ones are found by source address.
    if (!p.relayVia) this.byEndpoint.set(p.epKey, p)
  }

  remove (slot: number): WorkerPeer | undefined {
    const p = this.bySlot[slot]
    if (p === undefined) return undefined
    this.#unindex(p)
    this.routes.removeSlot(slot)
    if (this.byEndpoint.get(p.epKey) === p) this.byEndpoint.delete(p.epKey)
    this.bySlot[slot] = undefined
    return p
  }

  /**
   * The peer's IPv6 /128 if the route table gives it to this peer (two
   * peers claiming one address: the latest claim), else null. What the
   * fast path may match exactly.
   */
  ownIp6 (p: WorkerPeer): Uint8Array | null {
    return p.ip6 !== null && this.routes.lookup6(p.ip6, 0) === p.slot ? p.ip6 : null
  }

  /** The peer an outbound IPv4 packet to `dst` (host order) goes to: exact tunnel address first, then the longest prefix. */
  route4 (dst: number): WorkerPeer | undefined {
    const p = this.byTunnelIp.get(dst)
    if (p !== undefined) return p
    const slot = this.routes.lookup4(dst)
    return slot < 0 ? undefined : this.bySlot[slot]
  }

  #index (p: WorkerPeer): void {
    if (p.tunnelIp !== 0) this.byTunnelIp.set(p.tunnelIp, p)
    if (p.peerId !== 0) this.byPeerId.set(p.peerId, p)
  }

  #unindex (p: WorkerPeer): void {
    if (this.byTunnelIp.get(p.tunnelIp) === p) this.byTunnelIp.delete(p.tunnelIp)
    if (this.byPeerId.get(p.peerId) === p) this.byPeerId.delete(p.peerId)
  }
}
