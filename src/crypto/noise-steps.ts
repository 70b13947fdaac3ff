/**
 * The inside of the v2 handshake (crypto/noise.ts): the Noise primitives
 * (rev 34 §4: HASH, HMAC, HKDF; §5.1 CipherState and §5.2 SymmetricState as
 * `Symmetric`) and the four IXpsk0 pattern steps, each a function of a
 * Symmetric state that it mutates. noise.ts owns the public API (framing,
 * validation, single-use states, error mapping) and calls these steps on a
 * clone of its fixed initial state. test/helpers/noise-conformance.ts is a
 * second, independent implementation (on @noble) the tests compare these
 * steps with byte for byte. No I/O, no clock; main thread or a handshake
 * worker (nothing here holds state between calls).
 */
import { createHmac, type KeyObject } from 'node:crypto'
import { generateKeyPair, publicKeyObject, sharedSecret, type KeyPair } from './x25519.js'
import { aeadOpen, aeadSeal, blake2s } from './aead.js'
import { VpnError } from '../errors.js'

// ---------------------------------------------------------------------------
// Noise primitives (rev 34 §4, §5.1, §5.2)
// ---------------------------------------------------------------------------

const HASHLEN = 32
export const EMPTY = new Uint8Array(0)
const encoder = new TextEncoder()

function hash2 (a: Uint8Array, b: Uint8Array): Uint8Array {
  return blake2s(a, b)
}

/**
 * HMAC-BLAKE2s through Node's OpenSSL: ~10 µs against ~27 µs with noble's
 * HMAC (measured side by side here); ~16 of them per handshake side.
 */
function hmacB2s (key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  const m = createHmac('blake2s256', key)
  for (const p of parts) m.update(p)
  return new Uint8Array(m.digest())
}

const ONE = Uint8Array.of(1)
const TWO = Uint8Array.of(2)
const THREE = Uint8Array.of(3)

/** Noise HKDF(chaining_key, input_key_material, 2). */
function hkdf2 (ck: Uint8Array, ikm: Uint8Array): [Uint8Array, Uint8Array] {
  const temp = hmacB2s(ck, ikm)
  const o1 = hmacB2s(temp, ONE)
  const o2 = hmacB2s(temp, o1, TWO)
  temp.fill(0)
  return [o1, o2]
}

/** Noise HKDF(chaining_key, input_key_material, 3). */
function hkdf3 (ck: Uint8Array, ikm: Uint8Array): [Uint8Array, Uint8Array, Uint8Array] {
  const temp = hmacB2s(ck, ikm)
  const o1 = hmacB2s(temp, ONE)
  const o2 = hmacB2s(temp, o1, TWO)
  const o3 = hmacB2s(temp, o2, THREE)
  temp.fill(0)
  return [o1, o2, o3]
}

/** ChaChaPoly nonce: 4 zero bytes || 8-byte little-endian n. */
function nonce (n: number): Uint8Array {
  const b = new Uint8Array(12)
  let v = n
  for (let i = 4; i < 12; i++) { b[i] = v % 256; v = Math.floor(v / 256) }
  return b
}

/** Noise SymmetricState (+ its CipherState k, n). Mutable; clone() before speculative use. */
export class Symmetric {
  constructor (public ck: Uint8Array, public h: Uint8Array, public k: Uint8Array | null = null, public n = 0) {}

  static initialize (protocolName: string, prologue: Uint8Array): Symmetric {
    const name = encoder.encode(protocolName)
    let h: Uint8Array
    if (name.length <= HASHLEN) {
      h = new Uint8Array(HASHLEN)
      h.set(name)
    } else {
      h = blake2s(name)
    }
    const s = new Symmetric(h.slice(), h)
    s.mixHash(prologue)
    return s
  }

  clone (): Symmetric {
    return new Symmetric(this.ck.slice(), this.h.slice(), this.k === null ? null : this.k.slice(), this.n)
  }

  mixHash (data: Uint8Array): void {
    this.h = hash2(this.h, data)
  }

  mixKey (ikm: Uint8Array): void {
    const [ck, tempK] = hkdf2(this.ck, ikm)
    this.ck = ck
    this.k = tempK // HASHLEN == 32 == key length: no truncation needed
    this.n = 0
  }

  mixKeyAndHash (ikm: Uint8Array): void {
    const [ck, tempH, tempK] = hkdf3(this.ck, ikm)
    this.ck = ck
    this.mixHash(tempH)
    this.k = tempK
    this.n = 0
  }

  encryptAndHash (plaintext: Uint8Array): Uint8Array {
    const ct = this.k === null ? plaintext.slice() : aeadSeal(this.k, nonce(this.n++), this.h, plaintext)
    this.mixHash(ct)
    return ct
  }

  /** Throws (a plain Error) when the tag does not verify; callers map it to a VpnError. */
  decryptAndHash (ciphertext: Uint8Array): Uint8Array {
    let pt: Uint8Array = ciphertext.slice()
    if (this.k !== null) {
      const opened = aeadOpen(this.k, nonce(this.n), this.h, ciphertext)
      if (opened === null) throw new Error('invalid tag')
      pt = opened
    }
    if (this.k !== null) this.n++
    this.mixHash(ciphertext)
    return pt
  }

  /** HKDF(ck, info, 2): Split() when info is empty. */
  derive (info: Uint8Array): [Uint8Array, Uint8Array] {
    return hkdf2(this.ck, info)
  }
}

function dh (priv: KeyObject, pub: Uint8Array | KeyObject): Uint8Array {
  // Throws on an all-zero result (low-order point): Noise rev 34 §4.1 lets DH signal an error for an invalid public key.
  return sharedSecret(priv, pub)
}

export function ephemeralKeyPair (ephemeralPrivate: Uint8Array | undefined): KeyPair {
  if (ephemeralPrivate !== undefined && (!(ephemeralPrivate instanceof Uint8Array) || ephemeralPrivate.length !== 32)) {
    throw new VpnError('ERR_HANDSHAKE', 'ephemeral private key must be 32 bytes')
  }
  return generateKeyPair(ephemeralPrivate)
}

/** MixKey(DH(priv, pub)) and wipe the shared secret. */
function mixDh (ss: Symmetric, priv: KeyObject, pub: Uint8Array | KeyObject): void {
  const shared = dh(priv, pub)
  ss.mixKey(shared)
  shared.fill(0)
}

// ---------------------------------------------------------------------------
// IXpsk0 pattern steps (Noise rev 34 §7.5 IX, §9 psk0):
//
//   -> psk, e, s
//   <- e, ee, se, s, es
//
// A message is e.pub || EncryptAndHash(s.pub) (48) || EncryptAndHash(payload).
// Message 1's static key is encrypted under the psk-derived key, so a
// responder learns (and can vet) the initiator's static key, and detects a
// wrong psk, before it does any DH.
// ---------------------------------------------------------------------------

/** A static key as the steps need it: the private key as an OpenSSL object, the public key raw. */
export interface StaticPair { readonly priv: KeyObject, readonly pub: Uint8Array }

export interface Message { encStatic: Uint8Array, ciphertext: Uint8Array }

export function writeMessage1 (ss: Symmetric, psk: Uint8Array, e: { pub: Uint8Array }, s: { pub: Uint8Array }, payload: Uint8Array): Message {
  ss.mixKeyAndHash(psk) // psk
  ss.mixHash(e.pub) //     e
  ss.mixKey(e.pub) //        (psk modifier, §9.2)
  const encStatic = ss.encryptAndHash(s.pub) // s
  return { encStatic, ciphertext: ss.encryptAndHash(payload) }
}

/** No DH. Throws (a plain Error) when the psk differs or the message was altered. */
export function readMessage1 (ss: Symmetric, psk: Uint8Array, re: Uint8Array, m: Message): { rs: Uint8Array, payload: Uint8Array } {
  ss.mixKeyAndHash(psk)
  ss.mixHash(re)
  ss.mixKey(re)
  const rs = ss.decryptAndHash(m.encStatic)
  return { rs, payload: ss.decryptAndHash(m.ciphertext) }
}

export function writeMessage2 (ss: Symmetric, e: KeyPair, s: StaticPair, re: Uint8Array, rs: Uint8Array, payload: Uint8Array): Message {
  ss.mixHash(e.pub) // e
  ss.mixKey(e.pub)
  const reKey = publicKeyObject(re) // imported once, used twice
  mixDh(ss, e.priv, reKey) // ee
  mixDh(ss, e.priv, rs) // se (initiator static, our ephemeral)
  const encStatic = ss.encryptAndHash(s.pub) // s
  mixDh(ss, s.priv, reKey) // es (initiator ephemeral, our static)
  return { encStatic, ciphertext: ss.encryptAndHash(payload) }
}

/** Throws (a plain Error or RangeError) when the message does not authenticate or a key is low-order. */
export function readMessage2 (ss: Symmetric, e: KeyPair, s: StaticPair, re: Uint8Array, m: Message): { rs: Uint8Array, payload: Uint8Array } {
  ss.mixHash(re)
  ss.mixKey(re)
  const reKey = publicKeyObject(re)
  mixDh(ss, e.priv, reKey) // ee
  mixDh(ss, s.priv, reKey) // se
  const rs = ss.decryptAndHash(m.encStatic)
  mixDh(ss, e.priv, rs) // es
  return { rs, payload: ss.decryptAndHash(m.ciphertext) }
}
