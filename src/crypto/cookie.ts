/**
 * mac1 / mac2 and the cookie reply (WireGuard whitepaper §5.4.4-5.4.7, keyed
 * by the network psk instead of the responder's static key), sans-IO on the
 * caller's clock (`now`, monotonic ms).
 *
 *   CookieChecker (responder: the server's inbound worker, dataplane/init-guard.ts)
 *     checkMac1(init)            keyed BLAKE2s-128 under HASH("mac1----" || psk):
 *                                an outsider without the network key cannot make it.
 *     checkMac2(init, ip, port)  MAC(cookie(ip, port), init up to mac2): proves the
 *                                sender receives at its source address.
 *     createReply(init, ip, port) CookieReply (64 bytes): the cookie sealed with
 *                                XChaCha20-Poly1305 under HASH("cookie--" || psk), AD = mac1.
 *     cookie(ip, port) = MAC(secret, ip || port); the 32-byte secret is random and
 *     replaced every COOKIE_SECRET_MS (old cookies then fail mac2: one more round trip).
 *
 *   CookieGenerator (initiator: server-link.ts, peer handshakes)
 *     addMacs(noiseInit, now)    appends mac1 and mac2 (mac2 zero without a fresh cookie),
 *                                remembers mac1 to authenticate the reply.
 *     consumeReply(reply, now)   opens a CookieReply for the last init sent; keeps the
 *                                cookie COOKIE_VALID_MS; the caller resends at once.
 *
 * Threading: one instance per thread; no shared state.
 */
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js'
import { blake2sHash, mac128 } from './blake2s.js'
import {
  COOKIE_LEN, COOKIE_NONCE_LEN, COOKIE_REPLY_INDEX, MAC_LEN, MAC_TRAILER_LEN, decodeCookieReply, encodeCookieReply
} from '../wire/cookie.js'
import { HANDSHAKE_INIT_MIN, readU32 } from '../wire/messages.js'

/** The responder's cookie secret lives this long (WireGuard: 120 s). */
export const COOKIE_SECRET_MS = 120_000
/** An initiator uses a cookie this long (the secret's life minus a margin for in-flight replies). */
export const COOKIE_VALID_MS = 120_000 - 5_000
/** Smallest wire HandshakeInit: the smallest Noise message (wire/messages.ts) + the trailer. */
export const INIT_WITH_MACS_MIN = HANDSHAKE_INIT_MIN + MAC_TRAILER_LEN

const enc = new TextEncoder()

/** The two keys every node derives from the network psk. */
export interface MacKeys {
  /** HASH("mac1----" || psk), 32 bytes. */
  mac1: Uint8Array
  /** HASH("cookie--" || psk), 32 bytes. */
  cookie: Uint8Array
}

export function macKeys (psk: Uint8Array): MacKeys {
  return { mac1: blake2sHash(enc.encode('mac1----'), psk), cookie: blake2sHash(enc.encode('cookie--'), psk) }
}

/** Constant-time comparison of `a[ao, ao+n)` and `b[bo, bo+n)`. */
function equalAt (a: Uint8Array, ao: number, b: Uint8Array, bo: number, n: number): boolean {
  let d = 0
  for (let i = 0; i < n; i++) d |= a[ao + i] ^ b[bo + i]
  return d === 0
}

const mac1Scratch = new Uint8Array(MAC_LEN)

/** The init at `buf[off, off+len)` (trailer included) carries a valid mac1 under `keys`. */
export function checkMac1 (keys: MacKeys, buf: Uint8Array, off = 0, len = buf.length - off): boolean {
  if (len < INIT_WITH_MACS_MIN) return false
  const m1 = off + len - MAC_TRAILER_LEN
  mac128(keys.mac1, buf, off, m1, mac1Scratch)
  return equalAt(mac1Scratch, 0, buf, m1, MAC_LEN)
}

export class CookieChecker {
  readonly #keys: MacKeys
  readonly #random: (buf: Uint8Array) => void
  readonly #secret = new Uint8Array(32)
  #secretAt = -Infinity
  readonly #scratch = new Uint8Array(MAC_LEN)
  readonly #cookie = new Uint8Array(COOKIE_LEN)
  readonly #src = new Uint8Array(6)

  /** `random` fills a buffer with secure random bytes (crypto.getRandomValues in the daemon). */
  constructor (keys: MacKeys, random: (buf: Uint8Array) => void) {
    this.#keys = keys
    this.#random = random
  }

  /** The init at `buf[off, off+len)` (trailer included) carries a valid mac1. */
  checkMac1 (buf: Uint8Array, off: number, len: number): boolean {
    return checkMac1(this.#keys, buf, off, len)
  }

  /** The init carries a mac2 made with the current cookie of (ip, port). Call after checkMac1. */
  checkMac2 (buf: Uint8Array, off: number, len: number, ip: number, port: number, now: number): boolean {
    if (len < INIT_WITH_MACS_MIN) return false
    this.#makeCookie(ip, port, now)
    const m2 = off + len - MAC_LEN
    mac128(this.#cookie, buf, off, m2, this.#scratch)
    return equalAt(this.#scratch, 0, buf, m2, MAC_LEN)
  }

  /** A 64-byte CookieReply to the init at `buf[off, off+len)` from (ip, port), written to `out` at `outOff`. */
  createReply (buf: Uint8Array, off: number, len: number, ip: number, port: number, now: number, out: Uint8Array, outOff = 0): Uint8Array {
    this.#makeCookie(ip, port, now)
    const nonce = new Uint8Array(COOKIE_NONCE_LEN)
    this.#random(nonce)
    const m1 = off + len - MAC_TRAILER_LEN
    const sealed = xchacha20poly1305(this.#keys.cookie, nonce, buf.slice(m1, m1 + MAC_LEN)).encrypt(this.#cookie)
    return encodeCookieReply({ receiverIndex: readU32(buf, off + 4), nonce, sealed }, out, outOff)
  }

  #makeCookie (ip: number, port: number, now: number): void {
    if (now - this.#secretAt >= COOKIE_SECRET_MS) {
      this.#random(this.#secret)
      this.#secretAt = now
    }
    const s = this.#src
    s[0] = ip >>> 24; s[1] = ip >>> 16; s[2] = ip >>> 8; s[3] = ip
    s[4] = port >>> 8; s[5] = port
    mac128(this.#secret, s, 0, 6, this.#cookie)
  }
}

export class CookieGenerator {
  readonly #keys: MacKeys
  #cookie: Uint8Array | null = null
  #cookieAt = -Infinity
  /** mac1 and senderIndex of the last init sent: a reply must answer it. */
  #lastMac1: Uint8Array | null = null
  #lastIndex = -1

  constructor (keys: MacKeys) { this.#keys = keys }

  /** `noiseInit` (crypto/noise.ts createInit's message) with the MAC trailer appended. */
  addMacs (noiseInit: Uint8Array, now: number): Uint8Array {
    const n = noiseInit.length
    const out = new Uint8Array(n + MAC_TRAILER_LEN)
    out.set(noiseInit)
    mac128(this.#keys.mac1, out, 0, n, out, n)
    if (this.#cookie !== null && now - this.#cookieAt < COOKIE_VALID_MS) mac128(this.#cookie, out, 0, n + MAC_LEN, out, n + MAC_LEN)
    this.#lastMac1 = out.slice(n, n + MAC_LEN)
    this.#lastIndex = n >= 8 ? readU32(out, 4) : -1
    return out
  }

  /** Holds a cookie younger than COOKIE_VALID_MS. */
  hasCookie (now: number): boolean { return this.#cookie !== null && now - this.#cookieAt < COOKIE_VALID_MS }

  /**
   * Open a CookieReply. True when it answers the last init sent and
   * authenticates (the cookie is then kept; resend the init at once); false
   * for anything else (malformed, stale, forged), which changes nothing.
   */
  consumeReply (reply: Uint8Array, now: number): boolean {
    if (this.#lastMac1 === null) return false
    let r
    try { r = decodeCookieReply(reply) } catch { return false }
    if (readU32(reply, COOKIE_REPLY_INDEX) !== this.#lastIndex) return false
    let cookie: Uint8Array
    try {
      cookie = xchacha20poly1305(this.#keys.cookie, r.nonce, this.#lastMac1).decrypt(r.sealed)
    } catch {
      return false
    }
    this.#cookie = cookie
    this.#cookieAt = now
    this.#lastMac1 = null // one reply per init
    return true
  }
}
