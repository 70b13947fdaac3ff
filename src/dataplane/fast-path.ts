/**
 * The JS half of the native lone-packet fast path (native/fastpath.c): the
 * tables it reads, kept by the pipeline that owns them.
 *
 * An idle tunnel carries one packet per wake-up. The addon handles such a
 * packet inside the poll callback, without entering JavaScript, from these
 * tables; a burst, or anything unusual, goes to the batch pipelines as
 * before (outbound.ts, inbound.ts). Both paths read and write the same
 * send counters, replay windows, keys and stats, on one thread, so whichever
 * path takes a packet, the next one continues where it left off.
 *
 *   peers     Int32Array, FP_WORDS per peer slot: flags, tunnel address,
 *             endpoint, remote index, peer id, send socket, IPv6 address;
 *             one more record at index maxPeers: our own IPv6 address
 *             (inbound, from LOCAL).
 *   routes    IntHash tunnel address → slot, and ip6HashKey(IPv6 /128) →
 *             slot (outbound); the addon checks every hit against the record.
 *   counters  Float64Array per slot: the next send counter (outbound).
 *   sessions  IntHash receiver index → session number (inbound); a session's
 *             number is its key offset / KEY_LEN, and indexes `sess` (slot,
 *             index) and the replay windows (`rings`, `lasts`).
 *   endpoints IntHash endpointHashKey(ip, port) → slot of a direct peer, and
 *   peerIds   IntHash peer id → slot: the server's relay lookups (inbound).
 *
 * All of it lives in SharedArrayBuffers: the addon keeps raw pointers, and
 * a SharedArrayBuffer never moves.
 */
import { COUNTERS, C, MAX_PACKET, PEER_FIELDS, P_LAST_RX, P_RX_BYTES, P_RX_PACKETS, P_TX_BYTES, P_TX_PACKETS, type WorkerInit } from '../workers/layout.js'
import { MSG_DATA, MSG_RELAY } from '../wire/messages.js'
import { REJECT_AFTER_MESSAGES, REKEY_AFTER_MESSAGES, REPLAY_BITMAP_BITS, REPLAY_WINDOW } from '../wire/constants.js'

/** The cfg words, in the addon's order (fastLayout().cfg; a unit test compares). */
export const FAST_CFG = [
  'tunFd', 'udpFd', 'cap', 'ownIp', 'isServer', 'maxPeers', 'routeBits', 'sessBits', 'maxSessions',
  'replayWindow', 'rejectAfter', 'maxCounterHigh', 'msgData', 'msgRelay',
  'peerBase', 'peerFields', 'pTxPackets', 'pTxBytes', 'pRxPackets', 'pRxBytes', 'pLastRx',
  'tunRxPackets', 'tunRxBytes', 'tunTxPackets', 'tunTxBytes', 'udpRxPackets', 'udpRxBytes',
  'udpTxPackets', 'udpTxBytes', 'dropTunWrite', 'dropUdpSend', 'fastPackets', 'relayedPackets', 'relayedBytes',
  'rekeyAfter', 'synToJs'
] as const
export type FastCfgName = typeof FAST_CFG[number]

/** Peer record words. */
export const FP_FLAGS = 0
export const FP_TUNNEL_IP = 1
export const FP_EP_IP = 2
export const FP_EP_PORT = 3
export const FP_REMOTE_INDEX = 4
export const FP_PEER_ID = 5
export const FP_FD = 6
/** 4 words: the peer's IPv6 tunnel address (big-endian words), valid with FPF_V6. */
export const FP_IP6 = 8
export const FP_WORDS = 12
/** Peer flags. */
export const FPF_USED = 1
export const FPF_READY = 2
export const FPF_RELAY = 4
/** FP_IP6 holds an address (a peer's IPv6 /128; in the record at index maxPeers, our own). */
export const FPF_V6 = 8
/** Session record words. */
export const FS_SLOT = 0
export const FS_LOCAL_INDEX = 1
export const FS_WORDS = 2
/** Replay ring words per session (crypto/replay.ts). */
export const FR_WORDS = REPLAY_BITMAP_BITS / 32
/** Counters at or above 2^53 are not exact doubles; the batch path drops them too (inbound.ts). */
export const MAX_COUNTER_HIGH = 0x1f_ffff

export function sharedInt32 (n: number): Int32Array { return new Int32Array(new SharedArrayBuffer(n * 4)) }
export function sharedUint32 (n: number): Uint32Array { return new Uint32Array(new SharedArrayBuffer(n * 4)) }
export function sharedFloat64 (n: number): Float64Array { return new Float64Array(new SharedArrayBuffer(n * 8)) }
export function sharedUint8 (n: number): Uint8Array { return new Uint8Array(new SharedArrayBuffer(n)) }

/**
 * Open-addressing hash of uint32 keys to small non-negative integers, in an
 * Int32Array the addon reads: pairs [key, value + 1], 0 = empty; Fibonacci
 * hashing, linear probing, deletion by backward shift (no tombstones, so a
 * lookup never scans more than the cluster it lands in).
 */
export class IntHash {
  readonly table: Int32Array
  readonly bits: number
  readonly #mask: number
  #size = 0

  /** Room for `capacity` keys at a load of at most one half. */
  constructor (capacity: number) {
    let bits = 1
    while ((1 << bits) < capacity * 2) bits++
    this.bits = bits
    this.#mask = (1 << bits) - 1
    this.table = sharedInt32(2 << bits)
  }

  get size (): number { return this.#size }

  #home (key: number): number { return Math.imul(key, 0x9E3779B1) >>> (32 - this.bits) }

  #find (key: number): number {
    const t = this.table
    const k = key | 0
    for (let i = this.#home(key), n = 0; n <= this.#mask; n++, i = (i + 1) & this.#mask) {
      if (t[2 * i + 1] === 0) return -1
      if (t[2 * i] === k) return i
    }
    return -1
  }

  get (key: number): number {
    const i = this.#find(key)
    return i < 0 ? -1 : this.table[2 * i + 1] - 1
  }

  set (key: number, value: number): void {
    const t = this.table
    const found = this.#find(key)
    if (found >= 0) { t[2 * found + 1] = value + 1; return }
    if (this.#size * 2 >= (this.#mask + 1)) throw new RangeError(`IntHash: more than ${(this.#mask + 1) / 2} keys`)
    let i = this.#home(key)
    while (t[2 * i + 1] !== 0) i = (i + 1) & this.#mask
    t[2 * i] = key | 0
    t[2 * i + 1] = value + 1
    this.#size++
  }

  delete (key: number): void {
    const t = this.table
    let i = this.#find(key)
    if (i < 0) return
    this.#size--
    // Backward shift: pull later members of the cluster into the hole when their home allows.
    for (let j = (i + 1) & this.#mask; t[2 * j + 1] !== 0; j = (j + 1) & this.#mask) {
      const h = this.#home(t[2 * j] >>> 0)
      const stays = i <= j ? (i < h && h <= j) : (i < h || h <= j)
      if (stays) continue
      t[2 * i] = t[2 * j]
      t[2 * i + 1] = t[2 * j + 1]
      i = j
    }
    t[2 * i] = 0
    t[2 * i + 1] = 0
  }
}

/** The 32-bit key of an IPv6 address (16 bytes at a[off]) in the routes hash (native fast_ip6_key); hits are checked against the record. */
export function ip6HashKey (a: Uint8Array, off = 0): number {
  const w = (i: number): number => (a[off + i] << 24) | (a[off + i + 1] << 16) | (a[off + i + 2] << 8) | a[off + i + 3]
  return (Math.imul(w(0), 0x85EBCA77) ^ Math.imul(w(4), 0xC2B2AE3D) ^ Math.imul(w(8), 0x27D4EB2F) ^ Math.imul(w(12), 0x165667B1)) >>> 0
}

/** The 32-bit key of an endpoint in the endpoints hash (native fast_ep_key); collisions are caught by the addon checking the record. */
export function endpointHashKey (ip: number, port: number): number {
  return (ip ^ Math.imul(port, 0x9E3779B1)) >>> 0
}

/** The cfg array of one pipeline (values per FAST_CFG). */
export function fastConfig (init: WorkerInit, tables: { routeBits?: number, sessBits?: number, maxSessions?: number }): Float64Array {
  const v: Record<FastCfgName, number> = {
    tunFd: init.tunFd,
    udpFd: init.udpFd,
    cap: Math.min(MAX_PACKET, init.mtu),
    ownIp: init.tunnelIp >>> 0,
    isServer: init.mode === 'server' ? 1 : 0,
    maxPeers: init.maxPeers,
    routeBits: tables.routeBits ?? 1,
    sessBits: tables.sessBits ?? 1,
    maxSessions: tables.maxSessions ?? 0,
    replayWindow: REPLAY_WINDOW,
    rejectAfter: REJECT_AFTER_MESSAGES,
    maxCounterHigh: MAX_COUNTER_HIGH,
    msgData: MSG_DATA,
    msgRelay: MSG_RELAY,
    peerBase: COUNTERS.length,
    peerFields: PEER_FIELDS,
    pTxPackets: P_TX_PACKETS,
    pTxBytes: P_TX_BYTES,
    pRxPackets: P_RX_PACKETS,
    pRxBytes: P_RX_BYTES,
    pLastRx: P_LAST_RX,
    tunRxPackets: C.tunRxPackets,
    tunRxBytes: C.tunRxBytes,
    tunTxPackets: C.tunTxPackets,
    tunTxBytes: C.tunTxBytes,
    udpRxPackets: C.udpRxPackets,
    udpRxBytes: C.udpRxBytes,
    udpTxPackets: C.udpTxPackets,
    udpTxBytes: C.udpTxBytes,
    dropTunWrite: C.dropTunWrite,
    dropUdpSend: C.dropUdpSend,
    fastPackets: C.fastPathPackets,
    relayedPackets: C.relayedPackets,
    relayedBytes: C.relayedBytes,
    rekeyAfter: init.rekeyAfterMessages ?? REKEY_AFTER_MESSAGES,
    // --mss-clamp: TCP SYNs (either way) are left to the JS pipelines, which clamp them (mss-clamp.ts).
    synToJs: init.mssClamp === true ? 1 : 0
  }
  return Float64Array.from(FAST_CFG, (name) => v[name])
}

/** The peer fields the fast path reads (a subset of WorkerPeer). */
export interface FastPeerFields {
  slot: number
  tunnelIp: number
  epIp: number
  epPort: number
  relayVia: boolean
  peerId: number
  fd: number
  /** The peer's IPv6 address (its /128), or null. */
  ip6: Uint8Array | null
}

/**
 * Peer records by slot, for the addon, and one more record (index
 * maxPeers) for our own IPv6 address. An IPv6 address is in at most one
 * peer's record: a peer that claims another's (a stale PEER racing a new
 * one) takes it, as the route table's latest claim does, and the other's
 * packets from or to it go to the JS path.
 */
export class FastPeers {
  readonly words: Int32Array
  readonly #self: number
  /** IPv6 address (text of its words) → the slot whose record holds it. */
  readonly #owner6 = new Map<string, number>()
  readonly #key6: (string | undefined)[] = []

  constructor (maxPeers: number) {
    this.words = sharedInt32((maxPeers + 1) * FP_WORDS)
    this.#self = maxPeers
  }

  /**
   * Write a peer's record; `ready`/`remoteIndex`: outbound send-key state;
   * `ip6`: the IPv6 address it may be matched by exactly (PeerTable.ownIp6).
   */
  set (p: FastPeerFields, ready = false, remoteIndex = 0, ip6: Uint8Array | null = p.ip6): void {
    const w = this.words
    const b = p.slot * FP_WORDS
    this.#release6(p.slot)
    w[b + FP_FLAGS] = FPF_USED | (ready ? FPF_READY : 0) | (p.relayVia ? FPF_RELAY : 0)
    w[b + FP_TUNNEL_IP] = p.tunnelIp | 0
    w[b + FP_EP_IP] = p.epIp | 0
    w[b + FP_EP_PORT] = p.epPort
    w[b + FP_REMOTE_INDEX] = remoteIndex | 0
    w[b + FP_PEER_ID] = p.peerId | 0
    w[b + FP_FD] = p.fd
    if (ip6 !== null) this.#claim6(p.slot, ip6)
  }

  clear (slot: number): void {
    this.#release6(slot)
    this.words.fill(0, slot * FP_WORDS, (slot + 1) * FP_WORDS)
  }

  /** Our own IPv6 address (the first /128 of LOCAL), or none. */
  setSelf6 (a: Uint8Array | null): void {
    const b = this.#self * FP_WORDS
    this.words.fill(0, b, b + FP_WORDS)
    if (a !== null) { this.#write6(b, a); this.words[b + FP_FLAGS] = FPF_V6 }
  }

  #write6 (b: number, a: Uint8Array): void {
    for (let i = 0; i < 4; i++) this.words[b + FP_IP6 + i] = (a[4 * i] << 24) | (a[4 * i + 1] << 16) | (a[4 * i + 2] << 8) | a[4 * i + 3]
  }

  #claim6 (slot: number, a: Uint8Array): void {
    const key = a.join('.')
    const prev = this.#owner6.get(key)
    if (prev !== undefined && prev !== slot) {
      this.words[prev * FP_WORDS + FP_FLAGS] &= ~FPF_V6
      this.#key6[prev] = undefined
    }
    this.#owner6.set(key, slot)
    this.#key6[slot] = key
    const b = slot * FP_WORDS
    this.#write6(b, a)
    this.words[b + FP_FLAGS] |= FPF_V6
  }

  #release6 (slot: number): void {
    const key = this.#key6[slot]
    if (key === undefined) return
    if (this.#owner6.get(key) === slot) this.#owner6.delete(key)
    this.#key6[slot] = undefined
    this.words[slot * FP_WORDS + FP_FLAGS] &= ~FPF_V6
  }
}
