/**
 * X25519 through Node's OpenSSL instead of @noble/curves: a server answers
 * handshakes on its main thread, and this is what bounds how many per second.
 * Measured side by side on this machine (loaded, 2 cores): a key pair 58 µs
 * and a shared secret ~65 µs here, against 350 µs and 900 µs with noble.
 * test/crypto/x25519.test.ts checks both agree (and RFC 7748's vector).
 *
 * Keys cross OpenSSL as JWK: importing raw keys as DER (PKCS#8/SPKI) costs
 * 0.7–1.2 ms a key through OpenSSL 3's decoders, JWK ~12–50 µs. A private key
 * stays an opaque KeyObject; OpenSSL clears it when it is freed.
 */
import { createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, type KeyObject } from 'node:crypto'

export interface KeyPair {
  readonly priv: KeyObject
  /** Raw 32-byte public key. */
  readonly pub: Uint8Array
}

function rawPublic (key: KeyObject): Uint8Array {
  const x = key.export({ format: 'jwk' }).x
  if (typeof x !== 'string') throw new Error('X25519: no public key in JWK export')
  return new Uint8Array(Buffer.from(x, 'base64url'))
}

/** A fresh key pair, or the pair of a given raw private key (golden-vector tests only). */
export function generateKeyPair (fixedPrivate?: Uint8Array): KeyPair {
  if (fixedPrivate === undefined) {
    const { privateKey, publicKey } = generateKeyPairSync('x25519')
    return { priv: privateKey, pub: rawPublic(publicKey) }
  }
  if (fixedPrivate.length !== 32) throw new RangeError('X25519 private key must be 32 bytes')
  // `x` is required by the JWK importer but not used for a private key; the public key is derived from `d`.
  const priv = createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: Buffer.from(fixedPrivate).toString('base64url'), x: '' }, format: 'jwk' })
  return { priv, pub: rawPublic(createPublicKey(priv)) }
}

/**
 * A raw public key as an OpenSSL key object (~40 µs): import once when the
 * same key enters several DHs (the v2 handshake uses the peer's ephemeral
 * twice on each side).
 */
export function publicKeyObject (pub: Uint8Array): KeyObject {
  if (pub.length !== 32) throw new RangeError('X25519 public key must be 32 bytes')
  return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(pub).toString('base64url') }, format: 'jwk' })
}

/**
 * The shared secret with a public key (raw 32 bytes, or imported with
 * publicKeyObject). Throws for a low-order public key (an all-zero result),
 * which Noise rev 34 §4.1 allows a DH function to signal.
 */
export function sharedSecret (priv: KeyObject, pub: Uint8Array | KeyObject): Uint8Array {
  const publicKey = pub instanceof Uint8Array ? publicKeyObject(pub) : pub
  let out: Uint8Array
  try {
    out = new Uint8Array(diffieHellman({ privateKey: priv, publicKey }))
  } catch (err) {
    throw new RangeError('X25519: invalid (low-order) public key', { cause: err })
  }
  let acc = 0
  for (const b of out) acc |= b
  if (acc === 0) throw new RangeError('X25519: low-order public key')
  return out
}
