/**
 * BLAKE2s (RFC 7693) with a key and a chosen digest length: the MAC behind
 * the handshake's mac1/mac2 and the cookie (crypto/cookie.ts). Node's
 * `createHash('blake2s256')` has neither a key nor a digest length, and
 * @noble/hashes' blake2s costs ~12.5 µs for a 150-byte init on this machine;
 * this one works in place on the caller's bytes with no allocation (~1-2 µs),
 * because the server's inbound worker runs it on every HandshakeInit before
 * anything reaches the control ring, floods included. Tested byte for byte
 * against @noble/hashes (test/crypto/cookie.test.ts).
 *
 * Not thread-shared: the scratch state is per module instance (one per thread).
 */

const IV = Uint32Array.of(0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19)
const SIGMA = Uint8Array.of(
  0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
  14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3,
  11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4,
  7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8,
  9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13,
  2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9,
  12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11,
  13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10,
  6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5,
  10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0
)

const h = new Uint32Array(8)
const v = new Uint32Array(16)
const m = new Uint32Array(16)
const block = new Uint8Array(64)

function g (a: number, b: number, c: number, d: number, x: number, y: number): void {
  let va = v[a]; let vb = v[b]; let vc = v[c]; let vd = v[d]
  va = (va + vb + x) | 0; vd ^= va; vd = (vd >>> 16) | (vd << 16)
  vc = (vc + vd) | 0; vb ^= vc; vb = (vb >>> 12) | (vb << 20)
  va = (va + vb + y) | 0; vd ^= va; vd = (vd >>> 8) | (vd << 24)
  vc = (vc + vd) | 0; vb ^= vc; vb = (vb >>> 7) | (vb << 25)
  v[a] = va; v[b] = vb; v[c] = vc; v[d] = vd
}

/** Compress the 64 bytes of `buf` at `off`; `t` = bytes hashed so far including this block. */
function compress (buf: Uint8Array, off: number, t: number, last: boolean): void {
  for (let i = 0; i < 16; i++) {
    const o = off + i * 4
    m[i] = buf[o] | (buf[o + 1] << 8) | (buf[o + 2] << 16) | (buf[o + 3] << 24)
  }
  for (let i = 0; i < 8; i++) { v[i] = h[i]; v[i + 8] = IV[i] }
  v[12] ^= t >>> 0
  v[13] ^= Math.floor(t / 0x1_0000_0000)
  if (last) v[14] = ~v[14]
  for (let r = 0; r < 10; r++) {
    const s = r * 16
    g(0, 4, 8, 12, m[SIGMA[s]], m[SIGMA[s + 1]])
    g(1, 5, 9, 13, m[SIGMA[s + 2]], m[SIGMA[s + 3]])
    g(2, 6, 10, 14, m[SIGMA[s + 4]], m[SIGMA[s + 5]])
    g(3, 7, 11, 15, m[SIGMA[s + 6]], m[SIGMA[s + 7]])
    g(0, 5, 10, 15, m[SIGMA[s + 8]], m[SIGMA[s + 9]])
    g(1, 6, 11, 12, m[SIGMA[s + 10]], m[SIGMA[s + 11]])
    g(2, 7, 8, 13, m[SIGMA[s + 12]], m[SIGMA[s + 13]])
    g(3, 4, 9, 14, m[SIGMA[s + 14]], m[SIGMA[s + 15]])
  }
  for (let i = 0; i < 8; i++) h[i] ^= v[i] ^ v[i + 8]
}

/**
 * BLAKE2s of `data[start, end)` with `key` (0..32 bytes; empty = unkeyed),
 * `outLen` bytes (1..32) written to `out` at `outOff`. Returns `out`.
 */
export function blake2sInto (key: Uint8Array, data: Uint8Array, start: number, end: number, outLen: number, out: Uint8Array, outOff = 0): Uint8Array {
  if (key.length > 32 || outLen < 1 || outLen > 32) throw new RangeError('blake2s: key must be at most 32 bytes, output 1..32 bytes')
  h.set(IV)
  h[0] ^= 0x01010000 ^ (key.length << 8) ^ outLen
  let t = 0
  let len = end - start
  if (key.length > 0) {
    block.fill(0)
    block.set(key)
    t = 64
    if (len === 0) {
      compress(block, 0, t, true)
      return finish(outLen, out, outOff)
    }
    compress(block, 0, t, false)
  }
  let p = start
  while (len > 64) {
    t += 64
    compress(data, p, t, false)
    p += 64
    len -= 64
  }
  block.fill(0)
  block.set(data.subarray(p, p + len))
  t += len
  compress(block, 0, t, true)
  return finish(outLen, out, outOff)
}

function finish (outLen: number, out: Uint8Array, outOff: number): Uint8Array {
  for (let i = 0; i < outLen; i++) out[outOff + i] = h[i >> 2] >>> (8 * (i & 3))
  return out
}

/** BLAKE2s of the concatenation of `parts` (unkeyed, 32 bytes): HASH() of the cookie key derivations. */
export function blake2sHash (...parts: Uint8Array[]): Uint8Array {
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let o = 0
  for (const p of parts) { all.set(p, o); o += p.length }
  return blake2sInto(new Uint8Array(0), all, 0, all.length, 32, new Uint8Array(32))
}

/** Keyed BLAKE2s-128 of `data[start, end)`: WireGuard's MAC(). */
export function mac128 (key: Uint8Array, data: Uint8Array, start = 0, end = data.length, out = new Uint8Array(16), outOff = 0): Uint8Array {
  return blake2sInto(key, data, start, end, 16, out, outOff)
}
