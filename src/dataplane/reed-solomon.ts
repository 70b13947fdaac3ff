/**
 * A systematic Reed-Solomon erasure code over GF(2^8), for FEC over groups
 * of sealed packets (dataplane/fec.ts). MDS: any `data` of the `data +
 * parity` shards rebuild the data shards.
 *
 *   field: GF(2^8) with the polynomial x^8+x^4+x^3+x^2+1 (0x11d) and the
 *     generator 2, as Backblaze's JavaReedSolomon and klauspost/reedsolomon
 *     (so their test vectors hold: test/dataplane/reed-solomon.test.ts);
 *   matrix: the (data+parity) × data Vandermonde matrix V[r][c] = r^c,
 *     times the inverse of its top data × data square, so the top is the
 *     identity (data shards go out unchanged) and every data × data
 *     submatrix stays invertible;
 *   encode: parity[i] = Σ_c M[data+i][c] · shard[c] (bytewise, shards of
 *     one length: the caller pads);
 *   reconstruct: take `data` present shards, invert their rows of M, and
 *     compute the missing data shards from them.
 *
 * Pure and allocation-light: multiplication by a constant is a row of a
 * 64-KiB table, the inner loop one lookup and one XOR per byte. Codecs are
 * cached per (data, parity). No I/O, no time.
 */

const POLY = 0x11d
const EXP = new Uint8Array(510)
const LOG = new Uint8Array(256)
{
  let x = 1
  for (let i = 0; i < 255; i++) {
    EXP[i] = x
    LOG[x] = i
    x <<= 1
    if ((x & 0x100) !== 0) x ^= POLY
  }
  for (let i = 255; i < 510; i++) EXP[i] = EXP[i - 255]!
}
/** MUL[a * 256 + b] = a · b. */
const MUL = new Uint8Array(256 * 256)
for (let a = 1; a < 256; a++) for (let b = 1; b < 256; b++) MUL[a * 256 + b] = EXP[LOG[a]! + LOG[b]!]!

export function gfMul (a: number, b: number): number { return MUL[(a & 0xff) * 256 + (b & 0xff)]! }

export function gfDiv (a: number, b: number): number {
  if (b === 0) throw new RangeError('GF(2^8): division by zero')
  return a === 0 ? 0 : EXP[LOG[a]! + 255 - LOG[b]!]!
}

/** a^n in GF(2^8) (0^0 = 1). */
export function gfExp (a: number, n: number): number {
  if (n === 0) return 1
  if (a === 0) return 0
  return EXP[(LOG[a]! * n) % 255]!
}

/** The largest data + parity: the Vandermonde rows r = 0…255 are distinct field elements. */
export const RS_MAX_SHARDS = 256

type Matrix = Uint8Array[]

function identity (n: number): Matrix {
  return Array.from({ length: n }, (_, i) => { const r = new Uint8Array(n); r[i] = 1; return r })
}

function multiply (a: Matrix, b: Matrix): Matrix {
  const n = b[0]!.length
  return a.map(row => {
    const out = new Uint8Array(n)
    for (let c = 0; c < n; c++) {
      let v = 0
      for (let k = 0; k < row.length; k++) v ^= gfMul(row[k]!, b[k]![c]!)
      out[c] = v
    }
    return out
  })
}

/** Gauss-Jordan inverse of a square matrix; throws on a singular one (never for a Vandermonde submatrix). */
function invert (m: Matrix): Matrix {
  const n = m.length
  const a = m.map(r => r.slice())
  const inv = identity(n)
  for (let col = 0; col < n; col++) {
    let pivot = col
    while (pivot < n && a[pivot]![col] === 0) pivot++
    if (pivot === n) throw new RangeError('Reed-Solomon: singular matrix')
    if (pivot !== col) {
      [a[col], a[pivot]] = [a[pivot]!, a[col]!];
      [inv[col], inv[pivot]] = [inv[pivot]!, inv[col]!]
    }
    const scale = gfDiv(1, a[col]![col]!)
    for (let c = 0; c < n; c++) { a[col]![c] = gfMul(a[col]![c]!, scale); inv[col]![c] = gfMul(inv[col]![c]!, scale) }
    for (let r = 0; r < n; r++) {
      const f = a[r]![col]!
      if (r === col || f === 0) continue
      for (let c = 0; c < n; c++) { a[r]![c] ^= gfMul(f, a[col]![c]!); inv[r]![c] ^= gfMul(f, inv[col]![c]!) }
    }
  }
  return inv
}

/** out[i] ^= coef · src[i] for i < len. */
function mulAdd (coef: number, src: Uint8Array, out: Uint8Array, len: number): void {
  if (coef === 0) return
  const base = coef * 256
  for (let i = 0; i < len; i++) out[i] ^= MUL[base + src[i]!]!
}

export class ReedSolomon {
  readonly data: number
  readonly parity: number
  /** The full (data + parity) × data encoding matrix; rows 0…data−1 are the identity. */
  readonly #m: Matrix

  constructor (data: number, parity: number) {
    if (!Number.isInteger(data) || !Number.isInteger(parity) || data < 1 || parity < 0 || data + parity > RS_MAX_SHARDS) {
      throw new RangeError(`Reed-Solomon: need 1 <= data, 0 <= parity, data + parity <= ${RS_MAX_SHARDS} (got ${data}, ${parity})`)
    }
    this.data = data
    this.parity = parity
    const vand: Matrix = Array.from({ length: data + parity }, (_, r) => Uint8Array.from({ length: data }, (_, c) => gfExp(r, c)))
    this.#m = multiply(vand, invert(vand.slice(0, data)))
  }

  /** Row `i` of the encoding matrix (a copy), for tests. */
  row (i: number): Uint8Array { return this.#m[i]!.slice() }

  /** Writes the parity shards: parity[j] (length ≥ len) = row data+j applied to shards[0…data−1] (each ≥ len bytes; short ones count as zero-padded). */
  encode (shards: readonly Uint8Array[], parity: readonly Uint8Array[], len: number): void {
    if (shards.length !== this.data || parity.length !== this.parity) throw new RangeError('Reed-Solomon: wrong shard count')
    for (let j = 0; j < this.parity; j++) {
      const out = parity[j]!
      out.fill(0, 0, len)
      const row = this.#m[this.data + j]!
      for (let c = 0; c < this.data; c++) {
        const s = shards[c]!
        mulAdd(row[c]!, s, out, Math.min(len, s.length))
      }
    }
  }

  /**
   * Rebuilds the missing data shards in place. `shards` has data + parity
   * entries, null where missing; present ones are ≥ len bytes (shorter data
   * shards count as zero-padded). Missing data shards get new len-byte
   * arrays. Returns the indexes rebuilt, or null when fewer than `data`
   * shards are present (nothing changes).
   */
  reconstruct (shards: Array<Uint8Array | null>, len: number): number[] | null {
    if (shards.length !== this.data + this.parity) throw new RangeError('Reed-Solomon: wrong shard count')
    const missing: number[] = []
    for (let i = 0; i < this.data; i++) if (shards[i] === null) missing.push(i)
    if (missing.length === 0) return []
    const use: number[] = []
    for (let i = 0; i < shards.length && use.length < this.data; i++) if (shards[i] !== null) use.push(i)
    if (use.length < this.data) return null
    const dec = invert(use.map(i => this.#m[i]!))
    for (const i of missing) {
      const out = new Uint8Array(len)
      const row = dec[i]!
      for (let k = 0; k < use.length; k++) {
        const s = shards[use[k]!]!
        mulAdd(row[k]!, s, out, Math.min(len, s.length))
      }
      shards[i] = out
    }
    return missing
  }
}

const cache = new Map<number, ReedSolomon>()

/** A codec for (data, parity), built once and kept (at most RS_MAX_SHARDS² entries; FEC uses a few). */
export function reedSolomon (data: number, parity: number): ReedSolomon {
  const k = data * 1024 + parity
  let rs = cache.get(k)
  if (rs === undefined) { rs = new ReedSolomon(data, parity); cache.set(k, rs) }
  return rs
}
