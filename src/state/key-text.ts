/**
 * Node public keys as people see them: the text form (standard base64 of the
 * 32 raw X25519 bytes, as `wg genkey | wg pubkey` prints) and the
 * fingerprint (`SHA256:` + unpadded base64 of SHA-256 of the raw key, as
 * ssh-keygen -l shows), which `nodes`, `status` and log lines print so
 * operators can compare keys out of band.
 */
import { createHash } from 'node:crypto'

export const NODE_KEY_LEN = 32

/** The base64 text of a raw key. */
export function keyToText (key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('base64')
}

/** The raw key of a base64 text, or null unless it is exactly 32 bytes in canonical standard base64. */
export function keyFromText (text: string): Uint8Array | null {
  if (!/^[A-Za-z0-9+/]{43}=$/.test(text)) return null
  const raw = Buffer.from(text, 'base64')
  if (raw.length !== NODE_KEY_LEN || raw.toString('base64') !== text) return null
  return new Uint8Array(raw)
}

/** "SHA256:…" (43 characters of unpadded base64 after the prefix). */
export function fingerprint (key: Uint8Array): string {
  return 'SHA256:' + createHash('sha256').update(key).digest('base64').replace(/=+$/, '')
}

/** A fingerprint as typed by an operator: with or without the "SHA256:" prefix. */
export function isFingerprintText (text: string): boolean {
  return /^(SHA256:)?[A-Za-z0-9+/]{43}$/.test(text)
}
