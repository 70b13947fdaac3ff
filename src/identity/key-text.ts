/**
 * The text forms of node keys, used everywhere a key meets a human or a
 * file: a key (private or public) is standard base64 of its 32 raw bytes,
 * as `wg genkey` writes it; a fingerprint is "SHA256:" followed by the
 * first 16 characters of the unpadded base64 of SHA-256(public key), to
 * compare out of band like an SSH fingerprint (96 bits). Pure functions.
 */
import { createHash } from 'node:crypto'
import { KEY_LEN } from '../wire/constants.js'

/** Standard base64 (with padding) of a 32-byte key. */
export function keyToText (key: Uint8Array): string {
  return Buffer.from(key).toString('base64')
}

/**
 * The 32 bytes of a key's text form (surrounding whitespace ignored), or
 * null when it is not standard base64 of exactly 32 bytes.
 */
export function keyFromText (text: string): Uint8Array | null {
  const t = text.trim()
  if (!/^[A-Za-z0-9+/]{43}=$/.test(t)) return null
  const b = Buffer.from(t, 'base64')
  return b.length === KEY_LEN ? new Uint8Array(b) : null
}

/** "SHA256:" + the first 16 base64 characters of SHA-256(pub). */
export function fingerprint (pub: Uint8Array): string {
  return 'SHA256:' + createHash('sha256').update(pub).digest('base64').slice(0, 16)
}
