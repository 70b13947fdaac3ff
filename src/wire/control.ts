/**
 * Control payloads: the plaintexts carried inside type-3 (Control) messages,
 * sealed with a session's control keys (crypto/control-channel.ts). They flow
 * client <-> server on the registration session and client <-> client on a
 * peer session (directly or through the relay). Byte 0 is the kind.
 *
 * Kind  Name        Len        Direction and meaning
 *   1   Ping        12         any -> any; keepalive, RTT probe, path probe (hole punching)
 *   2   Pong        18         answer to a Ping; echoes txid, reports the endpoint the Ping came from
 *   3   PeerUpdate  8 + ...    server -> client; the peer list, full (RESET) or a delta
 *   5   Confirm     4          initiator -> responder, first message on a new session
 *   6   Bye         4          any -> any; the sender is closing the session
 *   7   Punch       8 + 6n     client -> client (relayed); "probe me now": the
 *                              sender's NAT kind and its candidate endpoints
 *   (4 is unassigned; decoders reject it.)
 *
 * Decoders check the kind, the exact length and every reserved byte and throw
 * WireError; nothing else escapes decodeControl() for any input.
 * Integers little-endian; IPv4 addresses 4 raw network-order bytes.
 */
import { WireError } from '../errors.js'
import { MAX_LAN_ADDRS, PEER_UPDATE_MAX_BYTES } from './constants.js'
import { readIp, writeIp } from './addr.js'
import { checkBytes, checkRoom, checkUint, readU16, readU32, writeU16, writeU32 } from './messages.js'
import { LAN_ADDR_LEN, type LanAddr, readLan, writeLan } from './payloads.js'
import { ATTRS_MAX_LEN, attrsLength, isEmptyAttrs, decodeAttrs, encodeAttrs, NO_ATTRS, type NodeAttrs } from './attrs.js'

export const CTL_PING = 1
export const CTL_PONG = 2
export const CTL_PEER_UPDATE = 3
export const CTL_CONFIRM = 5
export const CTL_BYE = 6
export const CTL_PUNCH = 7
export type ControlKind = typeof CTL_PING | typeof CTL_PONG | typeof CTL_PEER_UPDATE | typeof CTL_CONFIRM | typeof CTL_BYE | typeof CTL_PUNCH

// ---------------------------------------------------------------------------
// 1 Ping, 12 bytes
//
//   0      1                 4            8                   12
//  +------+-----------------+------------+-------------------+
//  | k=1  |  reserved=0     | txid u32   | peerListVersion   |
//  +------+-----------------+------------+-------------------+
//
//  txid: chosen by the sender (random), echoed by the Pong.
//  peerListVersion: the version of the peer list the sender holds (client ->
//  server: the server answers a mismatch with a full PeerUpdate); 0 when not
//  applicable (peer to peer, or no list yet).
//
// 2 Pong, 18 bytes
//
//   0      1                 4            8                   12           16             18
//  +------+-----------------+------------+-------------------+------------+--------------+
//  | k=2  |  reserved=0     | txid u32   | peerListVersion   | observedIp | observedPort |
//  +------+-----------------+------------+-------------------+------------+--------------+
//
//  peerListVersion: the version the Pong's sender holds (server: current).
//  observedIp/Port: UDP source endpoint of the Ping as the Pong's sender saw it.
// ---------------------------------------------------------------------------

export const PING_LEN = 12
export const PONG_LEN = 18

export interface Ping {
  kind: typeof CTL_PING
  txid: number
  peerListVersion: number
}

export interface Pong {
  kind: typeof CTL_PONG
  txid: number
  peerListVersion: number
  observedIp: number
  observedPort: number
}

// ---------------------------------------------------------------------------
// 3 PeerUpdate, 8 + sum(entry) bytes
//
//   0      1        2            4               8
//  +------+--------+------------+---------------+------------------
//  | k=3  | flags  | count u16  | version u32   | count x entry
//  +------+--------+------------+---------------+------------------
//
//  flags bit 0 RESET: forget all known peers before applying this message.
//        bit 1 FINAL: after applying this message the receiver holds `version`.
//        bits 2..7 SEQ: index of this message within one update, mod 64
//        (0 for the first message). The receiver of a multi-message update
//        checks that SEQ advances by one per message for the same version; a
//        gap means a lost message: it discards the update and keeps
//        advertising its old version, so the server sends a full list again.
//
//  entry (48 + 6 x lanCount bytes):
//   0    1          5          9          13               15         16
//  +----+----------+----------+----------+----------------+----------+
//  | op | peerId   | tunnelIp | publicIp | publicPort u16 | lanCount |
//  +----+----------+----------+----------+----------------+----------+
//  16                                   48
//  +-------------------------------------+-----------------------------
//  | key: the peer's static public key   | lanCount x (ip 4, port u16)
//  +-------------------------------------+-----------------------------
//  48 + 6 x lanCount
//  +------------------------------------------------------------------
//  | attributes (v3, wire/attrs.ts): TUNNEL6, the peer's approved ROUTEs
//  +------------------------------------------------------------------
//  op 1 UPSERT: add or replace the peer; op 2 REMOVE: forget peerId (the
//  other fields are still present, zeros allowed). key: the X25519 static
//  key the server authenticated this peer with (v2); a client accepts a
//  peer handshake only from that key.
// ---------------------------------------------------------------------------

export const PEER_UPDATE_HEADER_LEN = 8
export const PEER_ENTRY_FIXED_LEN = 48
/** Offset and length of the static key in an entry. */
export const PEER_ENTRY_KEY_OFFSET = 16
export const PEER_KEY_LEN = 32
export const PEER_ENTRY_MAX_LEN = PEER_ENTRY_FIXED_LEN + MAX_LAN_ADDRS * LAN_ADDR_LEN + ATTRS_MAX_LEN
export const PEER_FLAG_RESET = 0x01
export const PEER_FLAG_FINAL = 0x02
export const PEER_SEQ_SHIFT = 2
/** SEQ counts modulo this. */
export const PEER_SEQ_MOD = 64

export const PEER_OP_UPSERT = 1
export const PEER_OP_REMOVE = 2
export type PeerOp = typeof PEER_OP_UPSERT | typeof PEER_OP_REMOVE

export interface PeerEntry {
  op: PeerOp
  peerId: number
  tunnelIp: number
  /** The peer's public endpoint as the server sees it (0/0 when unknown or for REMOVE). */
  publicIp: number
  publicPort: number
  /** The peer's static public key, 32 bytes (zeros allowed for REMOVE); decoded entries carry a copy. */
  key: Uint8Array
  lan: LanAddr[]
  /** IPv6 tunnel address and approved routes (absent: none; the decoder sets it only when the block is not empty). */
  attrs?: NodeAttrs
}

export interface PeerUpdate {
  kind: typeof CTL_PEER_UPDATE
  reset: boolean
  final: boolean
  /** 0..63: index of this message within one update, modulo 64. */
  seq: number
  /** u32 peer-list version; the server increments it on every change. */
  version: number
  entries: PeerEntry[]
}

// ---------------------------------------------------------------------------
// 5 Confirm, 4 bytes            6 Bye, 4 bytes
//
//  +------+----------------+     +------+--------+---------------+
//  | k=5  | reserved=0 (3) |     | k=6  | reason | reserved=0 (2)|
//  +------+----------------+     +------+--------+---------------+
//
//  Confirm: sent by the initiator as the first message of a new session; it
//  proves to the responder that the initiator derived the keys, and the
//  responder starts sending on the session only after receiving it (or any
//  other authenticated message on it).
//  Bye reason: 1 SHUTDOWN. Unknown reasons are accepted and mean "closing".
// ---------------------------------------------------------------------------

export const CONFIRM_LEN = 4
export const BYE_LEN = 4
export const BYE_SHUTDOWN = 1

export interface Confirm {
  kind: typeof CTL_CONFIRM
}

export interface Bye {
  kind: typeof CTL_BYE
  /** u8; BYE_SHUTDOWN = 1. */
  reason: number
}

// ---------------------------------------------------------------------------
// 7 Punch, 8 + 6 x count bytes (client <-> client, on the end-to-end session,
// through the relay)
//
//   0      1         2        3          4            8
//  +------+---------+--------+----------+------------+--------------------------
//  | k=7  | natKind | count  | flags    | round u32  | count x (ip 4, port u16)
//  +------+---------+--------+----------+------------+--------------------------
//
//  "Probe these endpoints now": the receiver merges the candidates into its
//  list for the sender and starts a probe round at once, while the sender
//  starts its own (both sides punch at the same moment).
//  natKind: the sender's own NAT mapping as it has classified it:
//    0 unknown, 1 open (no NAT), 2 endpoint-independent (cone), 3
//    endpoint-dependent (symmetric). Other values are rejected.
//  count <= MAX_PUNCH_CANDIDATES (8); round: the sender's punch-round number
//  (diagnostics; a receiver may ignore stale rounds).
//  flags bit 0 BIRTHDAY: the sender (behind a symmetric NAT) has just opened
//  many probe sockets towards the receiver's public endpoint: the receiver
//  sprays probes at random ports of the sender's public address. Other bits
//  must be zero.
// ---------------------------------------------------------------------------

export const PUNCH_HEADER_LEN = 8
export const MAX_PUNCH_CANDIDATES = 8
export const NAT_WIRE_UNKNOWN = 0
export const NAT_WIRE_OPEN = 1
export const NAT_WIRE_EIM = 2
export const NAT_WIRE_EDM = 3
export const PUNCH_FLAG_BIRTHDAY = 0x01

export interface Punch {
  kind: typeof CTL_PUNCH
  /** 0..3, NAT_WIRE_*. */
  natKind: number
  round: number
  candidates: LanAddr[]
  /** flags bit 0: spray my public address (birthday search). */
  birthday: boolean
}

export type ControlMessage = Ping | Pong | PeerUpdate | Confirm | Bye | Punch
/** Encoder input: as ControlMessage, but PeerUpdate.seq may be omitted (0). */
export type ControlInput = Ping | Pong | (Omit<PeerUpdate, 'seq'> & { seq?: number }) | Confirm | Bye | Punch

// ---------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------

export function peerEntryLength (e: PeerEntry): number {
  return PEER_ENTRY_FIXED_LEN + e.lan.length * LAN_ADDR_LEN + attrsLength(e.attrs)
}

/** Exact encoded length of `m`. */
export function controlLength (m: ControlInput): number {
  switch (m.kind) {
    case CTL_PING: return PING_LEN
    case CTL_PONG: return PONG_LEN
    case CTL_PEER_UPDATE: {
      let n = PEER_UPDATE_HEADER_LEN
      for (const e of m.entries) n += peerEntryLength(e)
      return n
    }
    case CTL_CONFIRM: return CONFIRM_LEN
    case CTL_BYE: return BYE_LEN
    case CTL_PUNCH: return PUNCH_HEADER_LEN + m.candidates.length * LAN_ADDR_LEN
    default: throw new WireError(`control: unknown kind ${(m as { kind: unknown }).kind}`)
  }
}

function checkEntry (e: PeerEntry): void {
  if (e.op !== PEER_OP_UPSERT && e.op !== PEER_OP_REMOVE) throw new WireError(`peer entry: unknown op ${e.op}`)
  checkUint('peerId', e.peerId, 0xffffffff)
  checkUint('tunnelIp', e.tunnelIp, 0xffffffff)
  checkUint('publicIp', e.publicIp, 0xffffffff)
  checkUint('publicPort', e.publicPort, 0xffff)
  checkBytes('key', e.key, PEER_KEY_LEN)
  if (!Array.isArray(e.lan) || e.lan.length > MAX_LAN_ADDRS) throw new WireError(`peer entry: at most ${MAX_LAN_ADDRS} LAN addresses`)
  for (const a of e.lan) {
    checkUint('lan ip', a.ip, 0xffffffff)
    checkUint('lan port', a.port, 0xffff)
  }
}

/** Encodes a control payload (the plaintext of a type-3 message). Throws WireError on invalid fields. */
export function encodeControl (m: ControlInput): Uint8Array
export function encodeControl (m: ControlInput, buf: Uint8Array, offset?: number): number
export function encodeControl (m: ControlInput, buf?: Uint8Array, offset = 0): Uint8Array | number {
  const len = controlLength(m)
  const out = buf ?? new Uint8Array(len)
  checkRoom(out, offset, len)
  const o = offset
  switch (m.kind) {
    case CTL_PING:
    case CTL_PONG:
      checkUint('txid', m.txid, 0xffffffff)
      checkUint('peerListVersion', m.peerListVersion, 0xffffffff)
      out[o] = m.kind
      out[o + 1] = 0
      out[o + 2] = 0
      out[o + 3] = 0
      writeU32(out, o + 4, m.txid)
      writeU32(out, o + 8, m.peerListVersion)
      if (m.kind === CTL_PONG) {
        checkUint('observedIp', m.observedIp, 0xffffffff)
        checkUint('observedPort', m.observedPort, 0xffff)
        writeIp(out, o + 12, m.observedIp)
        writeU16(out, o + 16, m.observedPort)
      }
      break
    case CTL_PEER_UPDATE: {
      const seq = m.seq ?? 0
      checkUint('seq', seq, PEER_SEQ_MOD - 1)
      checkUint('version', m.version, 0xffffffff)
      checkUint('count', m.entries.length, 0xffff)
      for (const e of m.entries) checkEntry(e)
      out[o] = CTL_PEER_UPDATE
      out[o + 1] = (m.reset ? PEER_FLAG_RESET : 0) | (m.final ? PEER_FLAG_FINAL : 0) | (seq << PEER_SEQ_SHIFT)
      writeU16(out, o + 2, m.entries.length)
      writeU32(out, o + 4, m.version)
      let p = o + PEER_UPDATE_HEADER_LEN
      for (const e of m.entries) {
        out[p] = e.op
        writeU32(out, p + 1, e.peerId)
        writeIp(out, p + 5, e.tunnelIp)
        writeIp(out, p + 9, e.publicIp)
        writeU16(out, p + 13, e.publicPort)
        out[p + 15] = e.lan.length
        out.set(e.key, p + PEER_ENTRY_KEY_OFFSET)
        p = writeLan(out, p + PEER_ENTRY_FIXED_LEN, e.lan)
        p = encodeAttrs(e.attrs ?? NO_ATTRS, out, p)
      }
      break
    }
    case CTL_CONFIRM:
      out[o] = CTL_CONFIRM
      out[o + 1] = 0
      out[o + 2] = 0
      out[o + 3] = 0
      break
    case CTL_BYE:
      checkUint('reason', m.reason, 255)
      out[o] = CTL_BYE
      out[o + 1] = m.reason
      out[o + 2] = 0
      out[o + 3] = 0
      break
    case CTL_PUNCH:
      checkUint('natKind', m.natKind, NAT_WIRE_EDM)
      checkUint('round', m.round, 0xffffffff)
      if (!Array.isArray(m.candidates) || m.candidates.length > MAX_PUNCH_CANDIDATES) throw new WireError(`punch: at most ${MAX_PUNCH_CANDIDATES} candidates`)
      for (const a of m.candidates) {
        checkUint('candidate ip', a.ip, 0xffffffff)
        checkUint('candidate port', a.port, 0xffff)
      }
      out[o] = CTL_PUNCH
      out[o + 1] = m.natKind
      out[o + 2] = m.candidates.length
      out[o + 3] = m.birthday ? PUNCH_FLAG_BIRTHDAY : 0
      writeU32(out, o + 4, m.round)
      writeLan(out, o + PUNCH_HEADER_LEN, m.candidates)
      break
  }
  return buf === undefined ? out : len
}

/**
 * Splits a peer list into PeerUpdate payloads of at most `maxBytes` each
 * (plaintext size; default PEER_UPDATE_MAX_BYTES = 1100). All carry `version`;
 * SEQ counts 0, 1, 2... (mod 64); the first has RESET when `options.reset`,
 * the last has FINAL. An empty list still yields one message (so a receiver
 * learns the version, and with RESET, forgets everything).
 * Throws WireError when maxBytes cannot hold the header plus the largest
 * entry of `entries`, or an entry is invalid.
 */
export function encodePeerUpdates (entries: readonly PeerEntry[], version: number, maxBytes: number = PEER_UPDATE_MAX_BYTES,
  options: { reset?: boolean } = {}): Uint8Array[] {
  checkUint('version', version, 0xffffffff)
  if (!Number.isInteger(maxBytes) || maxBytes < PEER_UPDATE_HEADER_LEN) throw new WireError(`maxBytes must be an integer >= ${PEER_UPDATE_HEADER_LEN}: ${maxBytes}`)
  const groups: PeerEntry[][] = [[]]
  let size = PEER_UPDATE_HEADER_LEN
  for (const e of entries) {
    checkEntry(e)
    const n = peerEntryLength(e)
    if (PEER_UPDATE_HEADER_LEN + n > maxBytes) throw new WireError(`maxBytes ${maxBytes} cannot hold a ${n}-byte peer entry`)
    let cur = groups[groups.length - 1]
    if (size + n > maxBytes || cur.length === 0xffff) {
      cur = []
      groups.push(cur)
      size = PEER_UPDATE_HEADER_LEN
    }
    cur.push(e)
    size += n
  }
  return groups.map((g, i) => encodeControl({
    kind: CTL_PEER_UPDATE,
    reset: i === 0 && options.reset === true,
    final: i === groups.length - 1,
    seq: i % PEER_SEQ_MOD,
    version,
    entries: g
  }))
}

// ---------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------

function need (buf: Uint8Array, len: number, what: string): void {
  if (buf.length !== len) throw new WireError(`${what}: ${buf.length} bytes, expected ${len}`)
}
function zeros (buf: Uint8Array, from: number, to: number, what: string): void {
  for (let i = from; i < to; i++) if (buf[i] !== 0) throw new WireError(`${what}: reserved byte ${i} is not zero`)
}

/** Decodes a control payload; throws WireError for anything that is not exactly one valid message. */
export function decodeControl (buf: Uint8Array): ControlMessage {
  if (buf.length === 0) throw new WireError('control: empty payload')
  const kind = buf[0]
  switch (kind) {
    case CTL_PING:
      need(buf, PING_LEN, 'ping')
      zeros(buf, 1, 4, 'ping')
      return { kind: CTL_PING, txid: readU32(buf, 4), peerListVersion: readU32(buf, 8) }
    case CTL_PONG:
      need(buf, PONG_LEN, 'pong')
      zeros(buf, 1, 4, 'pong')
      return { kind: CTL_PONG, txid: readU32(buf, 4), peerListVersion: readU32(buf, 8), observedIp: readIp(buf, 12), observedPort: readU16(buf, 16) }
    case CTL_PEER_UPDATE:
      return decodePeerUpdate(buf)
    case CTL_CONFIRM:
      need(buf, CONFIRM_LEN, 'confirm')
      zeros(buf, 1, 4, 'confirm')
      return { kind: CTL_CONFIRM }
    case CTL_BYE:
      need(buf, BYE_LEN, 'bye')
      zeros(buf, 2, 4, 'bye')
      return { kind: CTL_BYE, reason: buf[1] }
    case CTL_PUNCH: {
      if (buf.length < PUNCH_HEADER_LEN) throw new WireError(`punch: ${buf.length} bytes, need at least ${PUNCH_HEADER_LEN}`)
      const natKind = buf[1]
      const count = buf[2]
      if (natKind > NAT_WIRE_EDM) throw new WireError(`punch: unknown NAT kind ${natKind}`)
      if (count > MAX_PUNCH_CANDIDATES) throw new WireError(`punch: ${count} candidates, at most ${MAX_PUNCH_CANDIDATES}`)
      need(buf, PUNCH_HEADER_LEN + count * LAN_ADDR_LEN, 'punch')
      if ((buf[3] & ~PUNCH_FLAG_BIRTHDAY) !== 0) throw new WireError(`punch: reserved flags 0x${buf[3].toString(16)}`)
      return { kind: CTL_PUNCH, natKind, round: readU32(buf, 4), candidates: readLan(buf, PUNCH_HEADER_LEN, count), birthday: (buf[3] & PUNCH_FLAG_BIRTHDAY) !== 0 }
    }
    default:
      throw new WireError(`control: unknown kind ${kind}`)
  }
}

function decodePeerUpdate (buf: Uint8Array): PeerUpdate {
  if (buf.length < PEER_UPDATE_HEADER_LEN) throw new WireError(`peer update: ${buf.length} bytes, need at least ${PEER_UPDATE_HEADER_LEN}`)
  const flags = buf[1]
  const count = readU16(buf, 2)
  // Each entry is at least PEER_ENTRY_FIXED_LEN bytes: reject impossible counts before looping.
  if (count > (buf.length - PEER_UPDATE_HEADER_LEN) / PEER_ENTRY_FIXED_LEN) throw new WireError(`peer update: count ${count} exceeds the payload`)
  const entries: PeerEntry[] = []
  let p = PEER_UPDATE_HEADER_LEN
  for (let i = 0; i < count; i++) {
    if (buf.length - p < PEER_ENTRY_FIXED_LEN) throw new WireError(`peer update: entry ${i} truncated`)
    const op = buf[p]
    if (op !== PEER_OP_UPSERT && op !== PEER_OP_REMOVE) throw new WireError(`peer update: entry ${i} has unknown op ${op}`)
    const lanCount = buf[p + 15]
    if (lanCount > MAX_LAN_ADDRS) throw new WireError(`peer update: entry ${i} has ${lanCount} LAN addresses, at most ${MAX_LAN_ADDRS}`)
    const lanEnd = p + PEER_ENTRY_FIXED_LEN + lanCount * LAN_ADDR_LEN
    if (buf.length < lanEnd) throw new WireError(`peer update: entry ${i} truncated`)
    const { attrs, end } = decodeAttrs(buf, lanEnd, `peer update: entry ${i}`)
    entries.push({
      op: op as PeerOp,
      peerId: readU32(buf, p + 1),
      tunnelIp: readIp(buf, p + 5),
      publicIp: readIp(buf, p + 9),
      publicPort: readU16(buf, p + 13),
      key: buf.slice(p + PEER_ENTRY_KEY_OFFSET, p + PEER_ENTRY_KEY_OFFSET + PEER_KEY_LEN),
      lan: readLan(buf, p + PEER_ENTRY_FIXED_LEN, lanCount),
      ...(isEmptyAttrs(attrs) ? {} : { attrs })
    })
    p = end
  }
  if (p !== buf.length) throw new WireError(`peer update: ${buf.length - p} trailing bytes`)
  return {
    kind: CTL_PEER_UPDATE,
    reset: (flags & PEER_FLAG_RESET) !== 0,
    final: (flags & PEER_FLAG_FINAL) !== 0,
    seq: flags >>> PEER_SEQ_SHIFT,
    version: readU32(buf, 4),
    entries
  }
}
