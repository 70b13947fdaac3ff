/**
 * Outer UDP messages of protocol v2: the bytes of every UDP payload the daemon
 * sends or receives. This module owns the six layouts, their sizes and
 * offsets, and the little-endian integer helpers the other wire modules use.
 * It does no crypto: handshake and transport ciphertexts are opaque here
 * (crypto/noise.ts and crypto/control-channel.ts fill and open them).
 *
 * Conventions (all layouts):
 *   - Byte 0 is the message type (MSG_*). Decoders check type, length and
 *     reserved bytes before reading anything else and throw WireError; no
 *     other exception escapes a decoder for any input.
 *   - Integers are little-endian. IPv4 addresses are 4 raw bytes in network
 *     order (wire/addr.ts readIp/writeIp).
 *   - Reserved bytes are written as 0 and must be 0 on receipt (strict;
 *     a future version will bump PROTOCOL_VERSION or use a new type).
 *   - encodeX(m, buf, offset) writes into a caller-supplied buffer and returns
 *     the number of bytes written; encodeX(m) allocates and returns a new
 *     Uint8Array of exactly xLength(m) bytes.
 *   - Byte arrays in decoded messages (ephemeral, ciphertext, inner) are
 *     views (subarray) into the input buffer: zero-copy, valid only as long
 *     as the caller does not reuse that buffer.
 *
 * Type   Name             Encrypted?  Reference
 *   1    HandshakeInit    static key, payload   Noise message 1 (-> psk, e, s)
 *   2    HandshakeResp    static key, payload   Noise message 2 (<- e, ee, se, s, es)
 *   3    Control          all         transport layout, control keys (main thread)
 *   4    Data             all         transport layout, data keys (worker threads)
 *   5    Relay            no          wraps one message of type 1-4 for the server to forward
 *   6    Reject           no          8 bytes, unauthenticated hint to handshake again
 */
import { WireError } from '../errors.js'
import { PROTOCOL_VERSION } from './constants.js'

// ---------------------------------------------------------------------------
// Types and sizes
// ---------------------------------------------------------------------------

export const MSG_HANDSHAKE_INIT = 1
export const MSG_HANDSHAKE_RESP = 2
export const MSG_CONTROL = 3
export const MSG_DATA = 4
export const MSG_RELAY = 5
export const MSG_REJECT = 6

export type MessageType = typeof MSG_HANDSHAKE_INIT | typeof MSG_HANDSHAKE_RESP | typeof MSG_CONTROL
  | typeof MSG_DATA | typeof MSG_RELAY | typeof MSG_REJECT
/** The two types that share the transport layout. */
export type TransportType = typeof MSG_CONTROL | typeof MSG_DATA
/** The types a Relay message may carry. */
export type RelayableType = typeof MSG_HANDSHAKE_INIT | typeof MSG_HANDSHAKE_RESP | TransportType

/** Poly1305 tag appended to every AEAD ciphertext. */
export const TAG_LEN = 16
/** X25519 public key. */
export const EPHEMERAL_LEN = 32
/** A static X25519 public key encrypted in a handshake message: 32 + tag. */
export const STATIC_ENC_LEN = 32 + TAG_LEN

/** Bytes of a HandshakeInit before its encrypted payload: type..encrypted static. */
export const HANDSHAKE_INIT_HEADER_LEN = 88
/** Smallest HandshakeInit: header + tag of an empty payload (a real init carries a >= 17-byte InitPayload: >= 121). */
export const HANDSHAKE_INIT_MIN = HANDSHAKE_INIT_HEADER_LEN + TAG_LEN
/** Bytes of a HandshakeResp before its encrypted payload: type..encrypted static. */
export const HANDSHAKE_RESP_HEADER_LEN = 92
/** Smallest HandshakeResp: header + tag of an empty payload (a real resp carries an 18-byte RespPayload: 126). */
export const HANDSHAKE_RESP_MIN = HANDSHAKE_RESP_HEADER_LEN + TAG_LEN
/**
 * Largest handshake message accepted or produced. Payloads are at most
 * 65 bytes (InitPayload with 8 LAN addresses: init = 169 bytes); the cap
 * bounds the work an unauthenticated sender can cause before the AEAD check.
 */
export const HANDSHAKE_MAX_LEN = 1024

/** Transport header (types 3 and 4); it is also the AEAD associated data. */
export const TRANSPORT_HEADER_LEN = 16
/** Smallest transport message: header + tag of an empty payload (a data keepalive). */
export const TRANSPORT_MIN = TRANSPORT_HEADER_LEN + TAG_LEN
/** Offset of the 8 counter bytes; the AEAD nonce is 4 zero bytes || buf[8..16]. */
export const TRANSPORT_COUNTER_OFFSET = 8

/** Relay header, prepended to the inner message. */
export const RELAY_HEADER_LEN = 8
/** Smallest relay message: header + the smallest inner message (a transport message). */
export const RELAY_MIN = RELAY_HEADER_LEN + TRANSPORT_MIN

/** Reject messages are exactly this long. */
export const REJECT_LEN = 8

/** Largest counter representable exactly in a JS number; readTransportHeader rejects larger ones. */
export const MAX_COUNTER = Number.MAX_SAFE_INTEGER

/** Reject reason 1: the handshake init did not authenticate (wrong network key). `index` = the init's senderIndex. */
export const REJECT_AUTH_FAILED = 1
/** Reject reason 2: receiver index or relay source unknown; handshake again. `index` = the unknown receiverIndex, or 0 (NO_INDEX) for a relay from an unregistered source. */
export const REJECT_UNKNOWN_SESSION = 2
/** Reject reason 3: the init's protocol version (byte 1) is not ours; upgrade. `index` = the init's senderIndex. */
export const REJECT_VERSION = 3
export type RejectReason = typeof REJECT_AUTH_FAILED | typeof REJECT_UNKNOWN_SESSION | typeof REJECT_VERSION

// ---------------------------------------------------------------------------
// Little-endian integer helpers (no bounds checks: callers check lengths first)
// ---------------------------------------------------------------------------

export function readU16 (b: Uint8Array, o: number): number {
  return b[o] | (b[o + 1] << 8)
}
export function readU32 (b: Uint8Array, o: number): number {
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0
}
/** u64 as a number; returns -1 when the value is > MAX_COUNTER (2^53 - 1). */
export function readU64 (b: Uint8Array, o: number): number {
  const hi = readU32(b, o + 4)
  if (hi > 0x1fffff) return -1
  return hi * 0x100000000 + readU32(b, o)
}
export function writeU16 (b: Uint8Array, o: number, v: number): void {
  b[o] = v
  b[o + 1] = v >>> 8
}
export function writeU32 (b: Uint8Array, o: number, v: number): void {
  b[o] = v
  b[o + 1] = v >>> 8
  b[o + 2] = v >>> 16
  b[o + 3] = v >>> 24
}
/** `v` must be an integer in [0, 2^53). */
export function writeU64 (b: Uint8Array, o: number, v: number): void {
  const lo = v % 0x100000000
  writeU32(b, o, lo)
  writeU32(b, o + 4, (v - lo) / 0x100000000)
}

// ---------------------------------------------------------------------------
// Validation helpers shared by the wire modules
// ---------------------------------------------------------------------------

/** Throws WireError unless `v` is an integer in [0, max]. Used by encoders. */
export function checkUint (name: string, v: number, max: number): void {
  if (!Number.isInteger(v) || v < 0 || v > max) throw new WireError(`${name} out of range: ${v}`)
}
export function checkBytes (name: string, v: Uint8Array, len: number): void {
  if (!(v instanceof Uint8Array) || v.length !== len) throw new WireError(`${name} must be ${len} bytes`)
}
/** Throws WireError unless buf[offset, offset + len) exists. */
export function checkRoom (buf: Uint8Array, offset: number, len: number): void {
  if (!Number.isInteger(offset) || offset < 0 || buf.length - offset < len) {
    throw new WireError(`buffer too small: need ${len} bytes at offset ${offset}, have ${buf.length - offset}`)
  }
}
function checkZero (buf: Uint8Array, from: number, to: number, what: string): void {
  for (let i = from; i < to; i++) if (buf[i] !== 0) throw new WireError(`${what}: reserved byte ${i} is not zero`)
}
function checkType (buf: Uint8Array, type: number, min: number, what: string): void {
  if (buf.length < min) throw new WireError(`${what}: ${buf.length} bytes, need at least ${min}`)
  if (buf[0] !== type) throw new WireError(`${what}: type ${buf[0]}, expected ${type}`)
}

/** Input form of a message for its encoder: `type` may be omitted. */
export type Fields<T extends { type: number }> = Omit<T, 'type'> & { type?: T['type'] }

/** Returns byte 0 as a MessageType; throws WireError when empty or unknown. */
export function peekType (buf: Uint8Array): MessageType {
  if (buf.length === 0) throw new WireError('empty message')
  const t = buf[0]
  if (t < MSG_HANDSHAKE_INIT || t > MSG_REJECT) throw new WireError(`unknown message type ${t}`)
  return t as MessageType
}

// ---------------------------------------------------------------------------
// 1 HandshakeInit
//
//   0       1       2       3       4               8
//  +-------+-------+-------+-------+---------------+
//  | type=1| ver=2 |   reserved=0  | senderIndex   |  senderIndex: u32 LE, chosen by the initiator
//  +-------+-------+-------+-------+---------------+
//  8                                              40
//  +-----------------------------------------------+
//  | ephemeral: X25519 public key (32)             |
//  +-----------------------------------------------+
//  40                                             88
//  +-----------------------------------------------+
//  | encStatic: initiator's static key (32) + tag  |  = EncryptAndHash(s.pub), psk-derived key
//  +-----------------------------------------------+
//  88                                     len-16  len
//  +--------------------------------------+--------+
//  | encrypted InitPayload                | tag 16 |  = `ciphertext` (payload + tag)
//  +--------------------------------------+--------+
// ---------------------------------------------------------------------------

export interface HandshakeInit {
  type: typeof MSG_HANDSHAKE_INIT
  /** u32, the initiator's local index for the session; the responder addresses replies to it. */
  senderIndex: number
  /** 32 bytes. */
  ephemeral: Uint8Array
  /** 48 bytes: the initiator's encrypted static public key and its tag. */
  encStatic: Uint8Array
  /** Encrypted payload followed by its 16-byte tag (>= 16 bytes). */
  ciphertext: Uint8Array
}

export function handshakeInitLength (m: Fields<HandshakeInit>): number {
  return HANDSHAKE_INIT_HEADER_LEN + m.ciphertext.length
}

export function encodeHandshakeInit (m: Fields<HandshakeInit>): Uint8Array
export function encodeHandshakeInit (m: Fields<HandshakeInit>, buf: Uint8Array, offset?: number): number
export function encodeHandshakeInit (m: Fields<HandshakeInit>, buf?: Uint8Array, offset = 0): Uint8Array | number {
  checkUint('senderIndex', m.senderIndex, 0xffffffff)
  checkBytes('ephemeral', m.ephemeral, EPHEMERAL_LEN)
  checkBytes('encStatic', m.encStatic, STATIC_ENC_LEN)
  const len = handshakeInitLength(m)
  if (m.ciphertext.length < TAG_LEN || len > HANDSHAKE_MAX_LEN) throw new WireError(`handshake init ciphertext length ${m.ciphertext.length} out of range`)
  const out = buf ?? new Uint8Array(len)
  checkRoom(out, offset, len)
  out[offset] = MSG_HANDSHAKE_INIT
  out[offset + 1] = PROTOCOL_VERSION
  out[offset + 2] = 0
  out[offset + 3] = 0
  writeU32(out, offset + 4, m.senderIndex)
  out.set(m.ephemeral, offset + 8)
  out.set(m.encStatic, offset + 40)
  out.set(m.ciphertext, offset + HANDSHAKE_INIT_HEADER_LEN)
  return buf === undefined ? out : len
}

export function decodeHandshakeInit (buf: Uint8Array): HandshakeInit {
  checkType(buf, MSG_HANDSHAKE_INIT, HANDSHAKE_INIT_MIN, 'handshake init')
  if (buf.length > HANDSHAKE_MAX_LEN) throw new WireError(`handshake init: ${buf.length} bytes, at most ${HANDSHAKE_MAX_LEN}`)
  if (buf[1] !== PROTOCOL_VERSION) throw new WireError(`handshake init: version ${buf[1]}, expected ${PROTOCOL_VERSION}`)
  checkZero(buf, 2, 4, 'handshake init')
  return {
    type: MSG_HANDSHAKE_INIT,
    senderIndex: readU32(buf, 4),
    ephemeral: buf.subarray(8, 40),
    encStatic: buf.subarray(40, HANDSHAKE_INIT_HEADER_LEN),
    ciphertext: buf.subarray(HANDSHAKE_INIT_HEADER_LEN)
  }
}

// ---------------------------------------------------------------------------
// 2 HandshakeResp
//
//   0       1       2       3       4               8               12
//  +-------+-------+-------+-------+---------------+---------------+
//  | type=2| ver=2 |   reserved=0  | senderIndex   | receiverIndex |
//  +-------+-------+-------+-------+---------------+---------------+
//  12                                             44
//  +-----------------------------------------------+
//  | ephemeral: X25519 public key (32)             |
//  +-----------------------------------------------+
//  44                                             92
//  +-----------------------------------------------+
//  | encStatic: responder's static key (32) + tag  |
//  +-----------------------------------------------+
//  92                                     len-16  len
//  +--------------------------------------+--------+
//  | encrypted RespPayload                | tag 16 |
//  +--------------------------------------+--------+
//
//  senderIndex: the responder's local index; receiverIndex: the initiator's
//  senderIndex from the HandshakeInit being answered.
// ---------------------------------------------------------------------------

export interface HandshakeResp {
  type: typeof MSG_HANDSHAKE_RESP
  /** u32, the responder's local index for the session. */
  senderIndex: number
  /** u32, echoes the init's senderIndex. */
  receiverIndex: number
  ephemeral: Uint8Array
  /** 48 bytes: the responder's encrypted static public key and its tag. */
  encStatic: Uint8Array
  ciphertext: Uint8Array
}

export function handshakeRespLength (m: Fields<HandshakeResp>): number {
  return HANDSHAKE_RESP_HEADER_LEN + m.ciphertext.length
}

export function encodeHandshakeResp (m: Fields<HandshakeResp>): Uint8Array
export function encodeHandshakeResp (m: Fields<HandshakeResp>, buf: Uint8Array, offset?: number): number
export function encodeHandshakeResp (m: Fields<HandshakeResp>, buf?: Uint8Array, offset = 0): Uint8Array | number {
  checkUint('senderIndex', m.senderIndex, 0xffffffff)
  checkUint('receiverIndex', m.receiverIndex, 0xffffffff)
  checkBytes('ephemeral', m.ephemeral, EPHEMERAL_LEN)
  checkBytes('encStatic', m.encStatic, STATIC_ENC_LEN)
  const len = handshakeRespLength(m)
  if (m.ciphertext.length < TAG_LEN || len > HANDSHAKE_MAX_LEN) throw new WireError(`handshake resp ciphertext length ${m.ciphertext.length} out of range`)
  const out = buf ?? new Uint8Array(len)
  checkRoom(out, offset, len)
  out[offset] = MSG_HANDSHAKE_RESP
  out[offset + 1] = PROTOCOL_VERSION
  out[offset + 2] = 0
  out[offset + 3] = 0
  writeU32(out, offset + 4, m.senderIndex)
  writeU32(out, offset + 8, m.receiverIndex)
  out.set(m.ephemeral, offset + 12)
  out.set(m.encStatic, offset + 44)
  out.set(m.ciphertext, offset + HANDSHAKE_RESP_HEADER_LEN)
  return buf === undefined ? out : len
}

export function decodeHandshakeResp (buf: Uint8Array): HandshakeResp {
  checkType(buf, MSG_HANDSHAKE_RESP, HANDSHAKE_RESP_MIN, 'handshake resp')
  if (buf.length > HANDSHAKE_MAX_LEN) throw new WireError(`handshake resp: ${buf.length} bytes, at most ${HANDSHAKE_MAX_LEN}`)
  if (buf[1] !== PROTOCOL_VERSION) throw new WireError(`handshake resp: version ${buf[1]}, expected ${PROTOCOL_VERSION}`)
  checkZero(buf, 2, 4, 'handshake resp')
  return {
    type: MSG_HANDSHAKE_RESP,
    senderIndex: readU32(buf, 4),
    receiverIndex: readU32(buf, 8),
    ephemeral: buf.subarray(12, 44),
    encStatic: buf.subarray(44, HANDSHAKE_RESP_HEADER_LEN),
    ciphertext: buf.subarray(HANDSHAKE_RESP_HEADER_LEN)
  }
}

// ---------------------------------------------------------------------------
// 3 Control and 4 Data: the transport layout
//
//   0       1       2       3       4               8                              16
//  +-------+-------+-------+-------+---------------+-------------------------------+
//  | type  |     reserved=0        | receiverIndex | counter: u64 LE               |
//  +-------+-------+-------+-------+---------------+-------------------------------+
//  16                                     len-16  len
//  +--------------------------------------+--------+
//  | ciphertext (ChaCha20)                | tag 16 |
//  +--------------------------------------+--------+
//
//  AEAD: ChaCha20-Poly1305 (RFC 8439), key = the session's control (type 3)
//  or data (type 4) key for this direction, nonce = 00 00 00 00 || bytes
//  8..15 (the LE counter, as WireGuard), associated data = bytes 0..15.
//  receiverIndex: the *receiver's* local index (its senderIndex from the
//  handshake). Counters start at 0 per key and direction and never repeat.
// ---------------------------------------------------------------------------

export interface TransportHeader {
  type: TransportType
  receiverIndex: number
  /** Exact integer in [0, MAX_COUNTER]. */
  counter: number
}

export interface TransportMessage extends TransportHeader {
  /** Ciphertext followed by its tag (>= 16 bytes); view into the input. */
  ciphertext: Uint8Array
}

/**
 * Reads and validates the 16-byte header of a type-3/4 message. Checks the
 * whole message is at least TRANSPORT_MIN bytes (header + tag), the type,
 * the reserved bytes and that counter <= MAX_COUNTER; throws WireError.
 */
export function readTransportHeader (buf: Uint8Array): TransportHeader {
  if (buf.length < TRANSPORT_MIN) throw new WireError(`transport: ${buf.length} bytes, need at least ${TRANSPORT_MIN}`)
  const type = buf[0]
  if (type !== MSG_CONTROL && type !== MSG_DATA) throw new WireError(`transport: type ${type}, expected 3 or 4`)
  if (buf[1] !== 0 || buf[2] !== 0 || buf[3] !== 0) throw new WireError('transport: reserved bytes are not zero')
  const counter = readU64(buf, TRANSPORT_COUNTER_OFFSET)
  if (counter < 0) throw new WireError('transport: counter >= 2^53')
  return { type, receiverIndex: readU32(buf, 4), counter }
}

/** Writes a transport header at buf[off]; returns TRANSPORT_HEADER_LEN. Throws WireError on bad arguments or no room. */
export function writeTransportHeader (buf: Uint8Array, off: number, type: TransportType, receiverIndex: number, counter: number): number {
  if (type !== MSG_CONTROL && type !== MSG_DATA) throw new WireError(`transport: type ${type}, expected 3 or 4`)
  checkUint('receiverIndex', receiverIndex, 0xffffffff)
  checkUint('counter', counter, MAX_COUNTER)
  checkRoom(buf, off, TRANSPORT_HEADER_LEN)
  buf[off] = type
  buf[off + 1] = 0
  buf[off + 2] = 0
  buf[off + 3] = 0
  writeU32(buf, off + 4, receiverIndex)
  writeU64(buf, off + TRANSPORT_COUNTER_OFFSET, counter)
  return TRANSPORT_HEADER_LEN
}

export function decodeTransport (buf: Uint8Array): TransportMessage {
  const h = readTransportHeader(buf)
  return { type: h.type, receiverIndex: h.receiverIndex, counter: h.counter, ciphertext: buf.subarray(TRANSPORT_HEADER_LEN) }
}

export function transportLength (m: { ciphertext: Uint8Array }): number {
  return TRANSPORT_HEADER_LEN + m.ciphertext.length
}

/** Frames an already-sealed ciphertext (+tag). Sealing itself is crypto/control-channel.ts sealTransport. */
export function encodeTransport (m: TransportMessage): Uint8Array
export function encodeTransport (m: TransportMessage, buf: Uint8Array, offset?: number): number
export function encodeTransport (m: TransportMessage, buf?: Uint8Array, offset = 0): Uint8Array | number {
  if (m.ciphertext.length < TAG_LEN) throw new WireError('transport: ciphertext shorter than the tag')
  const len = transportLength(m)
  const out = buf ?? new Uint8Array(len)
  checkRoom(out, offset, len)
  writeTransportHeader(out, offset, m.type, m.receiverIndex, m.counter)
  out.set(m.ciphertext, offset + TRANSPORT_HEADER_LEN)
  return buf === undefined ? out : len
}

// ---------------------------------------------------------------------------
// 5 Relay
//
//   0       1       2       3       4               8
//  +-------+-------+-------+-------+---------------+------------------------
//  | type=5|     reserved=0        | peerId        | inner message (type 1, 2, 3 or 4), verbatim
//  +-------+-------+-------+-------+---------------+------------------------
//
//  client -> server: peerId = the destination client.
//  server -> client: peerId = the source client (the server rewrites bytes
//  4..7 in place with writeRelayHeader and forwards; the inner message is
//  end-to-end encrypted between the two clients and never opened here).
// ---------------------------------------------------------------------------

export interface Relay {
  type: typeof MSG_RELAY
  /** u32 peer id (destination when sent to the server, source when received from it). */
  peerId: number
  /** The carried message, starting with its own type byte (1-4); view into the input. */
  inner: Uint8Array
}

function innerMin (t: number): number {
  switch (t) {
    case MSG_HANDSHAKE_INIT: return HANDSHAKE_INIT_MIN
    case MSG_HANDSHAKE_RESP: return HANDSHAKE_RESP_MIN
    case MSG_CONTROL:
    case MSG_DATA: return TRANSPORT_MIN
    default: return -1
  }
}

export function relayLength (m: Fields<Relay>): number {
  return RELAY_HEADER_LEN + m.inner.length
}

export function encodeRelay (m: Fields<Relay>): Uint8Array
export function encodeRelay (m: Fields<Relay>, buf: Uint8Array, offset?: number): number
export function encodeRelay (m: Fields<Relay>, buf?: Uint8Array, offset = 0): Uint8Array | number {
  const min = m.inner.length === 0 ? -1 : innerMin(m.inner[0])
  if (min < 0 || m.inner.length < min) throw new WireError('relay: inner message must be a type 1-4 message')
  const len = relayLength(m)
  const out = buf ?? new Uint8Array(len)
  checkRoom(out, offset, len)
  writeRelayHeader(out, offset, m.peerId)
  out.set(m.inner, offset + RELAY_HEADER_LEN)
  return buf === undefined ? out : len
}

/** Writes (or rewrites in place) the 8-byte relay header at buf[off]; returns RELAY_HEADER_LEN. */
export function writeRelayHeader (buf: Uint8Array, off: number, peerId: number): number {
  checkUint('peerId', peerId, 0xffffffff)
  checkRoom(buf, off, RELAY_HEADER_LEN)
  buf[off] = MSG_RELAY
  buf[off + 1] = 0
  buf[off + 2] = 0
  buf[off + 3] = 0
  writeU32(buf, off + 4, peerId)
  return RELAY_HEADER_LEN
}

/** Validates the header and that the inner message has a relayable type and its minimum length. */
export function decodeRelay (buf: Uint8Array): Relay {
  checkType(buf, MSG_RELAY, RELAY_MIN, 'relay')
  checkZero(buf, 1, 4, 'relay')
  const innerType = buf[RELAY_HEADER_LEN]
  const min = innerMin(innerType)
  if (min < 0) throw new WireError(`relay: inner type ${innerType} cannot be relayed`)
  if (buf.length - RELAY_HEADER_LEN < min) throw new WireError(`relay: inner message of type ${innerType} too short`)
  return { type: MSG_RELAY, peerId: readU32(buf, 4), inner: buf.subarray(RELAY_HEADER_LEN) }
}

// ---------------------------------------------------------------------------
// 6 Reject (plaintext, unauthenticated, exactly 8 bytes)
//
//   0       1       2       3       4               8
//  +-------+-------+-------+-------+---------------+
//  | type=6| reason|   reserved=0  | index         |
//  +-------+-------+-------+-------+---------------+
//
//  reason 1 AUTH_FAILED:     index = the rejected init's senderIndex.
//  reason 2 UNKNOWN_SESSION: index = the unknown receiverIndex of a type-3/4
//                            message (the rejecter's index as the sender knew
//                            it), or 0 (NO_INDEX: "you are not registered")
//                            for a Relay from an endpoint that is no registered client.
//  reason 3 VERSION:         index = the init's senderIndex; the init's version
//                            (byte 1) is not this node's PROTOCOL_VERSION.
//  Anyone can forge a Reject: receivers treat it as a hint (handshake again,
//  warn about the key), never as proof, and never tear down a working session
//  because of one.
// ---------------------------------------------------------------------------

export interface Reject {
  type: typeof MSG_REJECT
  reason: RejectReason
  index: number
}

export function encodeReject (m: Fields<Reject>): Uint8Array
export function encodeReject (m: Fields<Reject>, buf: Uint8Array, offset?: number): number
export function encodeReject (m: Fields<Reject>, buf?: Uint8Array, offset = 0): Uint8Array | number {
  if (m.reason !== REJECT_AUTH_FAILED && m.reason !== REJECT_UNKNOWN_SESSION && m.reason !== REJECT_VERSION) throw new WireError(`reject: unknown reason ${m.reason}`)
  checkUint('index', m.index, 0xffffffff)
  const out = buf ?? new Uint8Array(REJECT_LEN)
  checkRoom(out, offset, REJECT_LEN)
  out[offset] = MSG_REJECT
  out[offset + 1] = m.reason
  out[offset + 2] = 0
  out[offset + 3] = 0
  writeU32(out, offset + 4, m.index)
  return buf === undefined ? out : REJECT_LEN
}

export function decodeReject (buf: Uint8Array): Reject {
  checkType(buf, MSG_REJECT, REJECT_LEN, 'reject')
  if (buf.length !== REJECT_LEN) throw new WireError(`reject: ${buf.length} bytes, expected ${REJECT_LEN}`)
  const reason = buf[1]
  if (reason !== REJECT_AUTH_FAILED && reason !== REJECT_UNKNOWN_SESSION && reason !== REJECT_VERSION) throw new WireError(`reject: unknown reason ${reason}`)
  checkZero(buf, 2, 4, 'reject')
  return { type: MSG_REJECT, reason, index: readU32(buf, 4) }
}

// ---------------------------------------------------------------------------
// Any message
// ---------------------------------------------------------------------------

export type OuterMessage = HandshakeInit | HandshakeResp | TransportMessage | Relay | Reject

/** Decodes any outer message by its type byte; throws WireError. */
export function decodeMessage (buf: Uint8Array): OuterMessage {
  switch (peekType(buf)) {
    case MSG_HANDSHAKE_INIT: return decodeHandshakeInit(buf)
    case MSG_HANDSHAKE_RESP: return decodeHandshakeResp(buf)
    case MSG_CONTROL:
    case MSG_DATA: return decodeTransport(buf)
    case MSG_RELAY: return decodeRelay(buf)
    case MSG_REJECT: return decodeReject(buf)
  }
}
