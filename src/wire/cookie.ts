/**
 * The anti-flood wire parts (WireGuard whitepaper §5.4.4, for our protocol):
 * the MAC trailer every HandshakeInit carries and the CookieReply (type 7).
 * Layouts and sizes only; the MACs and the cookie seal are crypto/cookie.ts.
 *
 * MAC trailer, appended AFTER the complete Noise message (crypto/noise.ts),
 * so the Noise layout knows nothing of it:
 *
 *   0                                  n        n+16      n+32
 *  +------------------------------------+---------+---------+
 *  | HandshakeInit as crypto/noise.ts   |  mac1   |  mac2   |
 *  | builds it (type 1 ... tag)         |   16    |   16    |
 *  +------------------------------------+---------+---------+
 *   mac1 = MAC(HASH("mac1----" || psk), bytes[0, n))        (always)
 *   mac2 = MAC(cookie, bytes[0, n+16))   or 16 zero bytes   (no cookie held)
 *
 * 7 CookieReply, exactly 64 bytes (a v2 init is >= 153 with its trailer: no amplification):
 *
 *   0       1       2       3       4               8
 *  +-------+-------+-------+-------+---------------+
 *  | type=7|    reserved = 0       | receiverIndex |  = the init's senderIndex (u32 LE)
 *  +-------+-------+-------+-------+---------------+
 *  8                                              32
 *  +-----------------------------------------------+
 *  | nonce (24, random)                            |
 *  +-----------------------------------------------+
 *  32                              48             64
 *  +-------------------------------+---------------+
 *  | encrypted cookie (16)         |   tag (16)    |  XChaCha20-Poly1305, key HASH("cookie--" || psk), AD = the init's mac1
 *  +-------------------------------+---------------+
 */
import { WireError } from '../errors.js'
import { readU32, writeU32 } from './messages.js'

export const MSG_COOKIE_REPLY = 7
export const MAC_LEN = 16
/** mac1 + mac2. */
export const MAC_TRAILER_LEN = 2 * MAC_LEN
export const COOKIE_LEN = 16
export const COOKIE_NONCE_LEN = 24
export const COOKIE_REPLY_LEN = 64
/** Offsets inside a CookieReply. */
export const COOKIE_REPLY_INDEX = 4
export const COOKIE_REPLY_NONCE = 8
export const COOKIE_REPLY_SEALED = 32

/** Where the trailer's macs sit in a message of `len` bytes (trailer included). */
export function mac1Offset (len: number): number { return len - MAC_TRAILER_LEN }
export function mac2Offset (len: number): number { return len - MAC_LEN }

/** The Noise message of a wire HandshakeInit (a view without the trailer). Throws WireError when too short to carry one. */
export function stripMacs (msg: Uint8Array): Uint8Array {
  if (msg.length < MAC_TRAILER_LEN + 1) throw new WireError(`handshake init: ${msg.length} bytes, too short for its MAC trailer`)
  return msg.subarray(0, msg.length - MAC_TRAILER_LEN)
}

export interface CookieReply {
  type: typeof MSG_COOKIE_REPLY
  receiverIndex: number
  /** 24 bytes. */
  nonce: Uint8Array
  /** Encrypted cookie + tag, 32 bytes. */
  sealed: Uint8Array
}

/** Write a CookieReply into `buf` at `offset` (64 bytes). Returns COOKIE_REPLY_LEN. */
export function encodeCookieReply (m: Omit<CookieReply, 'type'>, buf: Uint8Array = new Uint8Array(COOKIE_REPLY_LEN), offset = 0): Uint8Array {
  if (!Number.isInteger(m.receiverIndex) || m.receiverIndex < 0 || m.receiverIndex > 0xffffffff) throw new WireError(`receiverIndex must be a u32: ${m.receiverIndex}`)
  if (m.nonce.length !== COOKIE_NONCE_LEN) throw new WireError(`nonce must be ${COOKIE_NONCE_LEN} bytes`)
  if (m.sealed.length !== COOKIE_LEN + 16) throw new WireError(`sealed cookie must be ${COOKIE_LEN + 16} bytes`)
  if (buf.length - offset < COOKIE_REPLY_LEN) throw new WireError('no room for a cookie reply')
  buf.fill(0, offset, offset + 4)
  buf[offset] = MSG_COOKIE_REPLY
  writeU32(buf, offset + COOKIE_REPLY_INDEX, m.receiverIndex)
  buf.set(m.nonce, offset + COOKIE_REPLY_NONCE)
  buf.set(m.sealed, offset + COOKIE_REPLY_SEALED)
  return buf
}

/** Decode a CookieReply (views into `buf`). Throws WireError for a wrong type, length or reserved bytes. */
export function decodeCookieReply (buf: Uint8Array): CookieReply {
  if (buf.length !== COOKIE_REPLY_LEN) throw new WireError(`cookie reply: ${buf.length} bytes, expected ${COOKIE_REPLY_LEN}`)
  if (buf[0] !== MSG_COOKIE_REPLY) throw new WireError(`cookie reply: type ${buf[0]}, expected ${MSG_COOKIE_REPLY}`)
  if (buf[1] !== 0 || buf[2] !== 0 || buf[3] !== 0) throw new WireError('cookie reply: reserved bytes are not zero')
  return {
    type: MSG_COOKIE_REPLY,
    receiverIndex: readU32(buf, COOKIE_REPLY_INDEX),
    nonce: buf.subarray(COOKIE_REPLY_NONCE, COOKIE_REPLY_SEALED),
    sealed: buf.subarray(COOKIE_REPLY_SEALED, COOKIE_REPLY_LEN)
  }
}
