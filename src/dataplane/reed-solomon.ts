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
 * The byte work is one operation, a matrix times shards (GfMatMul): the
 * encoder applies the parity rows, a rebuild the rows of an inverted
 * submatrix. gfMatMulJs here (one 64-KiB table lookup and one XOR per byte)
 * is the reference; the pipelines pass the addon's gfMatMul (native/fec.c,
 * AVX2 split tables; bench/micro fec: ~50× for the encoder), which test/dataplane/fec-native.test.ts
 * checks against this one. The parity rows (parityCoefs) and the rebuild
 * rows of each erasure pattern (rebuildCoefs, cached) are computed here.
 * Codecs are cached per (data, parity). No I/O, no time.
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

/**
 * dst[dstOffsets[j] + i] = Σ_c coefs[j·k + c] · src[srcOffsets[c] + i] for j < rows, i < len, a source
 * counting as zero past its srcLens[c] bytes. The addon's gfMatMul has this signature and contract.
 */
export type GfMatMul = (coefs: Uint8Array, rows: number, k: number, src: Uint8Array, srcOffsets: Int32Array,
  srcLens: Int32Array, dst: Uint8Array, dstOffsets: Int32Array, len: number) => void

/** The reference GfMatMul in TypeScript (one table lookup and one XOR per byte). */
export const gfMatMulJs: GfMatMul = (coefs, rows, k, src, srcOffsets, srcLens, dst, dstOffsets, len) => {
  for (let j = 0; j < rows; j++) {
    const d = dstOffsets[j]!
    dst.fill(0, d, d + len)
    for (let c = 0; c < k; c++) {
      const coef = coefs[j * k + c]!
      if (coef === 0) continue
      const base = coef * 256
      const s = srcOffsets[c]!
      const n = Math.min(len, srcLens[c]!)
      for (let i = 0; i < n; i++) dst[d + i] ^= MUL[base + src[s + i]!]!
    }
  }
}

/** Rebuild rows cached per codec, by erasure pattern (at most this many patterns each). */
const REBUILD_CACHE = 64

/** Concatenates separate arrays into one buffer for a GfMatMul: the buffer and each array's offset. */
function pack (arrays: readonly Uint8Array[], len: number): { buf: Uint8Array, offs: Int32Array, lens: Int32Array } {
  const buf = new Uint8Array(arrays.length * len)
  const offs = new Int32Array(arrays.length)
  const lens = new Int32Array(arrays.length)
  arrays.forEach((a, i) => { const n = Math.min(len, a.length); buf.set(a.subarray(0, n), i * len); offs[i] = i * len; lens[i] = n })
  return { buf, offs, lens }
}

export class ReedSolomon {
  readonly data: number
  readonly parity: number
  /** Rows data…data+parity−1 of the matrix, row-major (parity × data): the encoder's coefficients. */
  readonly parityCoefs: Uint8Array
  /** The full (data + parity) × data encoding matrix; rows 0…data−1 are the identity. */
  readonly #m: Matrix
  readonly #rebuild = new Map<string, { use: number[], missing: number[], coefs: Uint8Array }>()

  constructor (data: number, parity: number) {
    if (!Number.isInteger(data) || !Number.isInteger(parity) || data < 1 || parity < 0 || data + parity > RS_MAX_SHARDS) {
      throw new RangeError(`Reed-Solomon: need 1 <= data, 0 <= parity, data + parity <= ${RS_MAX_SHARDS} (got ${data}, ${parity})`)
    }
    this.data = data
    this.parity = parity
    const vand: Matrix = Array.from({ length: data + parity }, (_, r) => Uint8Array.from({ length: data }, (_, c) => gfExp(r, c)))
    this.#m = multiply(vand, invert(vand.slice(0, data)))
    this.parityCoefs = new Uint8Array(parity * data)
    for (let j = 0; j < parity; j++) this.parityCoefs.set(this.#m[data + j]!, j * data)
  }

  /** Row `i` of the encoding matrix (a copy), for tests. */
  row (i: number): Uint8Array { return this.#m[i]!.slice() }

  /**
   * What a rebuild needs for one erasure pattern (present: a shard index is present, data + parity
   * entries): the `data` shards it reads (use, in order), the data shards it rebuilds (missing), and the
   * rows (missing × data, row-major) that take the used shards to the missing ones. null when fewer than
   * `data` shards are present. Cached per pattern.
   */
  rebuildCoefs (present: readonly boolean[]): { use: number[], missing: number[], coefs: Uint8Array } | null {
    let key = ''
    for (let i = 0; i < this.data + this.parity; i++) key += present[i] === true ? '1' : '0'
    let r = this.#rebuild.get(key)
    if (r !== undefined) return r
    const missing: number[] = []
    for (let i = 0; i < this.data; i++) if (present[i] !== true) missing.push(i)
    const use: number[] = []
    for (let i = 0; i < this.data + this.parity && use.length < this.data; i++) if (present[i] === true) use.push(i)
    if (use.length < this.data) return null
    const dec = missing.length === 0 ? [] : invert(use.map(i => this.#m[i]!))
    const coefs = new Uint8Array(missing.length * this.data)
    missing.forEach((i, j) => coefs.set(dec[i]!, j * this.data))
    r = { use, missing, coefs }
    if (this.#rebuild.size >= REBUILD_CACHE) this.#rebuild.delete(this.#rebuild.keys().next().value!)
    this.#rebuild.set(key, r)
    return r
  }

  /** Writes the parity shards: parity[j] (length ≥ len) = row data+j applied to shards[0…data−1] (each ≥ len bytes; short ones count as zero-padded). */
  encode (shards: readonly Uint8Array[], parity: readonly Uint8Array[], len: number, kernel: GfMatMul = gfMatMulJs): void {
    if (shards.length !== this.data || parity.length !== this.parity) throw new RangeError('Reed-Solomon: wrong shard count')
    const src = pack(shards, len)
    const dst = new Uint8Array(this.parity * len)
    kernel(this.parityCoefs, this.parity, this.data, src.buf, src.offs, src.lens, dst, Int32Array.from({ length: this.parity }, (_, j) => j * len), len)
    parity.forEach((p, j) => p.set(dst.subarray(j * len, (j + 1) * len)))
  }

  /**
   * Rebuilds the missing data shards in place. `shards` has data + parity
   * entries, null where missing; present ones are ≥ len bytes (shorter data
   * shards count as zero-padded). Missing data shards get new len-byte
   * arrays. Returns the indexes rebuilt, or null when fewer than `data`
   * shards are present (nothing changes).
   */
  reconstruct (shards: Array<Uint8Array | null>, len: number, kernel: GfMatMul = gfMatMulJs): number[] | null {
    if (shards.length !== this.data + this.parity) throw new RangeError('Reed-Solomon: wrong shard count')
    const r = this.rebuildCoefs(shards.map(s => s !== null))
    if (r === null) return null
    if (r.missing.length === 0) return []
    const src = pack(r.use.map(i => shards[i]!), len)
    const dst = new Uint8Array(r.missing.length * len)
    kernel(r.coefs, r.missing.length, this.data, src.buf, src.offs, src.lens, dst, Int32Array.from(r.missing, (_, j) => j * len), len)
    r.missing.forEach((i, j) => { shards[i] = dst.slice(j * len, (j + 1) * len) })
    return [...r.missing]
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
