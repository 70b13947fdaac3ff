/**
 * Randomness, injected like the Clock: control-plane code never calls
 * Math.random() or crypto.randomBytes() itself, so tests can pin every
 * random choice (retry jitter, probe txids, birthday ports, receiver
 * indexes) with a seeded Random.
 *
 *   systemRandom   – the daemon's: Math.random() for jitter and probe
 *                    choices (not secret), node:crypto for bytes (receiver
 *                    indexes and check txids must be unguessable).
 *   seededRandom() – deterministic (a 32-bit PRNG, mulberry32); tests only.
 */
import { randomBytes } from 'node:crypto'

export interface Random {
  /** A uniform integer in [0, maxExclusive); maxExclusive ≤ 2^32. */
  int(maxExclusive: number): number
  /** A uniform float in [0, 1). */
  float(): number
  /** n random bytes (a fresh array). */
  bytes(n: number): Uint8Array
}

export const systemRandom: Random = {
  int: (maxExclusive) => Math.floor(Math.random() * maxExclusive),
  float: () => Math.random(),
  bytes: (n) => new Uint8Array(randomBytes(n))
}

/** A deterministic Random from a 32-bit seed (mulberry32). Not for keys or indexes in production. */
export function seededRandom (seed: number): Random {
  let s = seed >>> 0
  const next = (): number => {
    s = (s + 0x6d2b79f5) >>> 0
    let z = s
    z = Math.imul(z ^ (z >>> 15), z | 1)
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61)
    return ((z ^ (z >>> 14)) >>> 0) / 0x1_0000_0000
  }
  return {
    int: (maxExclusive) => Math.floor(next() * maxExclusive),
    float: next,
    bytes: (n) => {
      const out = new Uint8Array(n)
      for (let i = 0; i < n; i++) out[i] = Math.floor(next() * 256)
      return out
    }
  }
}
