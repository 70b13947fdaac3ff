/**
 * ChaCha20-Poly1305 (RFC 8439) and BLAKE2s-256 for the main thread, through
 * Node's OpenSSL (node:crypto). The control plane's handshakes and control
 * messages use these; the data path uses the addon's batched AEAD, which is
 * checked byte for byte against @noble/ciphers in the tests.
 *
 * node:crypto instead of @noble here: faster for these sizes (seal ~4.5 µs
 * against ~7 µs for 64 bytes, bench/micro) and ~2.5 MB less resident memory
 * (the noble modules are not loaded by the daemon).
 */
import { createCipheriv, createDecipheriv, createHash } from 'node:crypto'

export const AEAD_TAG_LEN = 16

/** ciphertext || tag of `plaintext`. Throws for a key that is not 32 bytes or a nonce that is not 12. */
export function aeadSeal (key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: AEAD_TAG_LEN })
  c.setAAD(ad, { plaintextLength: plaintext.length })
  const body = c.update(plaintext)
  c.final()
  const out = new Uint8Array(plaintext.length + AEAD_TAG_LEN)
  out.set(body, 0)
  out.set(c.getAuthTag(), plaintext.length)
  return out
}

/** The plaintext of `sealed` (ciphertext || tag), or null when it is too short, the tag does not verify or the key or nonce has the wrong size. Never throws. */
export function aeadOpen (key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, sealed: Uint8Array): Uint8Array | null {
  if (sealed.length < AEAD_TAG_LEN) return null
  const n = sealed.length - AEAD_TAG_LEN
  try {
    const d = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: AEAD_TAG_LEN })
    d.setAAD(ad, { plaintextLength: n })
    d.setAuthTag(sealed.subarray(n))
    const body = d.update(sealed.subarray(0, n))
    d.final()
    return new Uint8Array(body.buffer, body.byteOffset, body.length)
  } catch {
    return null
  }
}

/** BLAKE2s-256 of the concatenation of `parts`. */
export function blake2s (...parts: Uint8Array[]): Uint8Array {
  const h = createHash('blake2s256')
  for (const p of parts) h.update(p)
  return new Uint8Array(h.digest())
}
