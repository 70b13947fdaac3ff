/**
 * Handshake payloads: the plaintexts carried encrypted inside HandshakeInit
 * (type 1) and HandshakeResp (type 2). They are only ever read after the
 * Noise layer authenticated them, but the decoders still check every length
 * and range and throw WireError on anything else (a peer with the network
 * key can still be buggy or hostile).
 *
 * Integers little-endian, IPv4 addresses 4 raw bytes in network order; in
 * memory addresses are host-order unsigned numbers (wire/addr.ts).
 */
import { WireError } from '../errors.js'
import { MAX_LAN_ADDRS } from './constants.js'
import { readIp, writeIp } from './addr.js'
import { checkRoom, checkUint, readU16, readU32, readU64, writeU16, writeU32, writeU64 } from './messages.js'
import { NO_ATTRS, attrsLength, isEmptyAttrs, decodeAttrs, encodeAttrs, type NodeAttrs } from './attrs.js'

/** A LAN endpoint a client can be reached at without NAT: ip (host order) and UDP port. */
export interface LanAddr {
  ip: number
  port: number
}

/** Wire size of one LAN address: ip 4 + port u16. */
export const LAN_ADDR_LEN = 6

// ---------------------------------------------------------------------------
// InitPayload (inside message 1)
//
//   0      1          2          4            8                           16         17
//  +------+----------+----------+------------+---------------------------+----------+
//  | role | prefixLen| mtu u16  | tunnelIp   | timestamp u64 (ms, epoch) | lanCount |
//  +------+----------+----------+------------+---------------------------+----------+
//  17                                17 + 6 x lanCount
//  +---------------------------------+------------------------------+
//  | lanCount x (ip 4 | port u16)    | attributes (wire/attrs.ts)   |
//  +---------------------------------+------------------------------+
//
//  role      1 = a client registering with the server, 2 = peer to peer.
//  prefixLen, mtu, tunnelIp: the initiator's tunnel configuration
//            (role 1: the address it asks for; role 2: its own address).
//  timestamp: wall clock, milliseconds since the Unix epoch (< 2^53). It
//            makes replayed inits useless: the responder keeps the highest
//            timestamp seen per initiator static key (the key the Noise
//            layer authenticated, never an id taken from the payload) and
//            ignores an init whose timestamp is not strictly greater.
//  lan:      0..8 LAN endpoints (role 1; role 2 sends 0).
//  attributes (v3): TUNNEL6, the initiator's IPv6 tunnel address; ROUTE
//            (role 1), the networks it advertises.
// ---------------------------------------------------------------------------

export const ROLE_CLIENT = 1
export const ROLE_PEER = 2
export type Role = typeof ROLE_CLIENT | typeof ROLE_PEER

/** InitPayload bytes before the LAN addresses. */
export const INIT_PAYLOAD_FIXED_LEN = 17

export interface InitPayload {
  role: Role
  /** 0..32. */
  prefixLen: number
  /** u16, the initiator's TUN MTU. */
  mtu: number
  tunnelIp: number
  /** ms since the Unix epoch, integer < 2^53. */
  timestamp: number
  lan: LanAddr[]
  /** IPv6 tunnel address and advertised routes (absent: none; the decoder sets it only when the block is not empty). */
  attrs?: NodeAttrs
}

export function initPayloadLength (p: InitPayload): number {
  return INIT_PAYLOAD_FIXED_LEN + p.lan.length * LAN_ADDR_LEN + attrsLength(p.attrs)
}

function checkLan (lan: LanAddr[]): void {
  if (!Array.isArray(lan) || lan.length > MAX_LAN_ADDRS) throw new WireError(`at most ${MAX_LAN_ADDRS} LAN addresses`)
  for (const a of lan) {
    checkUint('lan ip', a.ip, 0xffffffff)
    checkUint('lan port', a.port, 0xffff)
  }
}

/** Writes lan.length x (ip, port) at buf[off]; returns the new offset. Checked by the caller. */
export function writeLan (buf: Uint8Array, off: number, lan: LanAddr[]): number {
  for (const a of lan) {
    writeIp(buf, off, a.ip)
    writeU16(buf, off + 4, a.port)
    off += LAN_ADDR_LEN
  }
  return off
}

/** Reads `count` LAN addresses at buf[off]; the caller has checked the length. */
export function readLan (buf: Uint8Array, off: number, count: number): LanAddr[] {
  const lan: LanAddr[] = []
  for (let i = 0; i < count; i++, off += LAN_ADDR_LEN) lan.push({ ip: readIp(buf, off), port: readU16(buf, off + 4) })
  return lan
}

export function encodeInitPayload (p: InitPayload): Uint8Array
export function encodeInitPayload (p: InitPayload, buf: Uint8Array, offset?: number): number
export function encodeInitPayload (p: InitPayload, buf?: Uint8Array, offset = 0): Uint8Array | number {
  if (p.role !== ROLE_CLIENT && p.role !== ROLE_PEER) throw new WireError(`init payload: unknown role ${p.role}`)
  checkUint('prefixLen', p.prefixLen, 32)
  checkUint('mtu', p.mtu, 0xffff)
  checkUint('tunnelIp', p.tunnelIp, 0xffffffff)
  checkUint('timestamp', p.timestamp, Number.MAX_SAFE_INTEGER)
  checkLan(p.lan)
  const len = initPayloadLength(p)
  const out = buf ?? new Uint8Array(len)
  checkRoom(out, offset, len)
  out[offset] = p.role
  out[offset + 1] = p.prefixLen
  writeU16(out, offset + 2, p.mtu)
  writeIp(out, offset + 4, p.tunnelIp)
  writeU64(out, offset + 8, p.timestamp)
  out[offset + 16] = p.lan.length
  const end = writeLan(out, offset + INIT_PAYLOAD_FIXED_LEN, p.lan)
  encodeAttrs(p.attrs ?? NO_ATTRS, out, end)
  return buf === undefined ? out : len
}

export function decodeInitPayload (buf: Uint8Array): InitPayload {
  if (buf.length < INIT_PAYLOAD_FIXED_LEN) throw new WireError(`init payload: ${buf.length} bytes, need at least ${INIT_PAYLOAD_FIXED_LEN}`)
  const role = buf[0]
  if (role !== ROLE_CLIENT && role !== ROLE_PEER) throw new WireError(`init payload: unknown role ${role}`)
  const prefixLen = buf[1]
  if (prefixLen > 32) throw new WireError(`init payload: prefix length ${prefixLen} > 32`)
  const lanCount = buf[16]
  if (lanCount > MAX_LAN_ADDRS) throw new WireError(`init payload: ${lanCount} LAN addresses, at most ${MAX_LAN_ADDRS}`)
  const lanEnd = INIT_PAYLOAD_FIXED_LEN + lanCount * LAN_ADDR_LEN
  if (buf.length < lanEnd) throw new WireError(`init payload: ${buf.length} bytes, need ${lanEnd} for ${lanCount} LAN addresses`)
  const { attrs, end } = decodeAttrs(buf, lanEnd, 'init payload')
  if (end !== buf.length) throw new WireError(`init payload: ${buf.length - end} trailing bytes`)
  const timestamp = readU64(buf, 8)
  if (timestamp < 0) throw new WireError('init payload: timestamp >= 2^53')
  return {
    role: role as Role,
    prefixLen,
    mtu: readU16(buf, 2),
    tunnelIp: readIp(buf, 4),
    timestamp,
    lan: readLan(buf, INIT_PAYLOAD_FIXED_LEN, lanCount),
    ...(isEmptyAttrs(attrs) ? {} : { attrs })
  }
}

// ---------------------------------------------------------------------------
// RespPayload (inside message 2), 18 bytes and the attributes
//
//   0        1          2          4            8            12           16            18
//  +--------+----------+----------+------------+------------+------------+-------------+------------+
//  | status | prefixLen| mtu u16  | tunnelIp   | peerId u32 | observedIp | observedPort| attributes |
//  +--------+----------+----------+------------+------------+------------+-------------+------------+
//
//  status    RESP_* below; anything but RESP_OK means "no session": the
//            handshake still completes cryptographically (so the status is
//            authenticated), but the initiator discards the keys.
//  prefixLen, mtu, tunnelIp: the responder's own tunnel configuration
//            (server: the network's prefix and MTU, and the server's address).
//  peerId    server: the id assigned to this client (used in Relay and
//            PeerUpdate); peer to peer: the responder's peerId, or 0 (NO_INDEX).
//  observedIp/observedPort: the initiator's endpoint as the responder saw
//            it (UDP source of the init): the client's public, post-NAT address.
//  attributes (v3, wire/attrs.ts): the responder's TUNNEL6 and, from a
//            server, the networks it serves itself (ROUTE).
// ---------------------------------------------------------------------------

export const RESP_OK = 0
export const RESP_ADDRESS_IN_USE = 1
export const RESP_SERVER_FULL = 2
export const RESP_ADDRESS_OUTSIDE_NETWORK = 3
export const RESP_ADDRESS_RESERVED = 4
export const RESP_BAD_REQUEST = 5
export const RESP_ADDRESS_BOUND = 6
export const RESP_KEY_REVOKED = 7
export const RESP_NOT_AUTHORIZED = 8
export type RespStatus = typeof RESP_OK | typeof RESP_ADDRESS_IN_USE | typeof RESP_SERVER_FULL
  | typeof RESP_ADDRESS_OUTSIDE_NETWORK | typeof RESP_ADDRESS_RESERVED | typeof RESP_BAD_REQUEST
  | typeof RESP_ADDRESS_BOUND | typeof RESP_KEY_REVOKED | typeof RESP_NOT_AUTHORIZED

/** Name and human text of every status, for logs and error messages (index = status). */
export const RESP_STATUS: Readonly<Record<RespStatus, { readonly name: string, readonly message: string }>> = Object.freeze({
  0: { name: 'OK', message: 'accepted' },
  1: { name: 'ADDRESS_IN_USE', message: 'the requested tunnel address is used by another client' },
  2: { name: 'SERVER_FULL', message: 'the server has reached its maximum number of clients' },
  3: { name: 'ADDRESS_OUTSIDE_NETWORK', message: 'the requested tunnel address is outside the server\'s network' },
  4: { name: 'ADDRESS_RESERVED', message: 'the requested tunnel address is the network, broadcast or server address' },
  5: { name: 'BAD_REQUEST', message: 'the request was refused: malformed payload, wrong role, or a prefix length that differs from the responder\'s' },
  6: { name: 'ADDRESS_BOUND', message: 'the requested tunnel address belongs to another node key' },
  7: { name: 'KEY_REVOKED', message: 'this node\'s key was revoked on the server' },
  8: { name: 'NOT_AUTHORIZED', message: 'this node\'s key is not in the server\'s authorized nodes' }
})

/** RespPayload bytes before the attributes. */
export const RESP_PAYLOAD_FIXED_LEN = 18

export interface RespPayload {
  status: RespStatus
  prefixLen: number
  mtu: number
  tunnelIp: number
  peerId: number
  observedIp: number
  observedPort: number
  /** The responder's IPv6 tunnel address and own routes (absent: none; the decoder sets it only when the block is not empty). */
  attrs?: NodeAttrs
}

export function respPayloadLength (p: RespPayload): number {
  return RESP_PAYLOAD_FIXED_LEN + attrsLength(p.attrs)
}

export function encodeRespPayload (p: RespPayload): Uint8Array
export function encodeRespPayload (p: RespPayload, buf: Uint8Array, offset?: number): number
export function encodeRespPayload (p: RespPayload, buf?: Uint8Array, offset = 0): Uint8Array | number {
  if (!(p.status in RESP_STATUS)) throw new WireError(`resp payload: unknown status ${p.status}`)
  checkUint('status', p.status, 255)
  checkUint('prefixLen', p.prefixLen, 32)
  checkUint('mtu', p.mtu, 0xffff)
  checkUint('tunnelIp', p.tunnelIp, 0xffffffff)
  checkUint('peerId', p.peerId, 0xffffffff)
  checkUint('observedIp', p.observedIp, 0xffffffff)
  checkUint('observedPort', p.observedPort, 0xffff)
  const len = respPayloadLength(p)
  const out = buf ?? new Uint8Array(len)
  checkRoom(out, offset, len)
  out[offset] = p.status
  out[offset + 1] = p.prefixLen
  writeU16(out, offset + 2, p.mtu)
  writeIp(out, offset + 4, p.tunnelIp)
  writeU32(out, offset + 8, p.peerId)
  writeIp(out, offset + 12, p.observedIp)
  writeU16(out, offset + 16, p.observedPort)
  encodeAttrs(p.attrs ?? NO_ATTRS, out, offset + RESP_PAYLOAD_FIXED_LEN)
  return buf === undefined ? out : len
}

export function decodeRespPayload (buf: Uint8Array): RespPayload {
  if (buf.length < RESP_PAYLOAD_FIXED_LEN) throw new WireError(`resp payload: ${buf.length} bytes, need at least ${RESP_PAYLOAD_FIXED_LEN}`)
  const { attrs, end } = decodeAttrs(buf, RESP_PAYLOAD_FIXED_LEN, 'resp payload')
  if (end !== buf.length) throw new WireError(`resp payload: ${buf.length - end} trailing bytes`)
  const status = buf[0]
  if (status > RESP_NOT_AUTHORIZED) throw new WireError(`resp payload: unknown status ${status}`)
  const prefixLen = buf[1]
  if (prefixLen > 32) throw new WireError(`resp payload: prefix length ${prefixLen} > 32`)
  return {
    status: status as RespStatus,
    prefixLen,
    mtu: readU16(buf, 2),
    tunnelIp: readIp(buf, 4),
    peerId: readU32(buf, 8),
    observedIp: readIp(buf, 12),
    observedPort: readU16(buf, 16),
    ...(isEmptyAttrs(attrs) ? {} : { attrs })
  }
}
