/**
 * dataplane/reed-solomon.ts against reference vectors: Backblaze
 * JavaReedSolomon's GaloisTest.testWithPythonAnswers and
 * ReedSolomonTest.testOneEncode (klauspost/reedsolomon's TestOneEncode has
 * the same vector: same field, same matrix), then every erasure pattern the
 * code must survive (MDS: any `data` shards rebuild the data).
 */
import t, { type Test } from 'tap'
import { ReedSolomon, RS_MAX_SHARDS, gfDiv, gfExp, gfMul, reedSolomon } from '../../src/dataplane/reed-solomon.js'

t.test('GF(2^8): the reference\'s products and powers; a field', async t => {
  t.equal(gfMul(3, 4), 12)
  t.equal(gfMul(7, 7), 21)
  t.equal(gfMul(23, 45), 41)
  t.equal(gfExp(2, 2), 4)
  t.equal(gfExp(5, 20), 235)
  t.equal(gfExp(13, 7), 43)
  let ok = true
  for (let a = 0; a < 256; a++) {
    if (gfMul(a, 1) !== a || gfMul(a, 0) !== 0) ok = false
    if (a !== 0 && gfMul(a, gfDiv(1, a)) !== 1) ok = false
    for (let b = 0; b < 256; b++) if (gfMul(a, b) !== gfMul(b, a) || (b !== 0 && gfMul(gfDiv(a, b), b) !== a)) ok = false
  }
  t.ok(ok, 'identity, inverses, commutativity, division undoes multiplication')
  t.throws(() => gfDiv(1, 0), RangeError)
})

t.test('Backblaze testOneEncode: 5 + 5, two-byte shards', async t => {
  const rs = new ReedSolomon(5, 5)
  const data = [[0, 1], [4, 5], [2, 3], [6, 7], [8, 9]].map(x => Uint8Array.from(x))
  const parity = Array.from({ length: 5 }, () => new Uint8Array(2))
  rs.encode(data, parity, 2)
  t.same(parity.map(p => [...p]), [[12, 13], [10, 11], [14, 15], [90, 91], [94, 95]])
  for (let i = 0; i < 5; i++) t.same([...rs.row(i)], Array.from({ length: 5 }, (_, c) => c === i ? 1 : 0), `row ${i} is the identity's`)
})

/** Every subset of `lost` shard indexes out of n, in increasing order. */
function subsets (n: number, lost: number, from = 0): number[][] {
  if (lost === 0) return [[]]
  const out: number[][] = []
  for (let i = from; i <= n - lost; i++) for (const rest of subsets(n, lost - 1, i + 1)) out.push([i, ...rest])
  return out
}

function roundTrip (t: Test, data: number, parity: number, len: number, seed: number): void {
  let s = seed
  const rnd = (): number => { s = (s * 1103515245 + 12345) >>> 0; return s >>> 24 }
  const rs = reedSolomon(data, parity)
  const shards = Array.from({ length: data }, () => Uint8Array.from({ length: len }, rnd))
  const par = Array.from({ length: parity }, () => new Uint8Array(len))
  rs.encode(shards, par, len)
  const all = [...shards, ...par]
  let patterns = 0
  let bad = 0
  for (let lost = 0; lost <= parity; lost++) {
    for (const gone of subsets(data + parity, lost)) {
      const got: Array<Uint8Array | null> = all.map((x, i) => gone.includes(i) ? null : x)
      const rebuilt = rs.reconstruct(got, len)
      patterns++
      if (rebuilt === null || got.slice(0, data).some((x, i) => Buffer.compare(Buffer.from(x!), Buffer.from(shards[i]!)) !== 0)) bad++
    }
  }
  t.equal(bad, 0, `${data} + ${parity}: all ${patterns} patterns of up to ${parity} lost shards rebuild the data`)
  const tooMany: Array<Uint8Array | null> = all.map((x, i) => i <= parity ? null : x)
  t.equal(rs.reconstruct(tooMany, len), null, `${parity + 1} lost: not recoverable, nothing invented`)
}

t.test('MDS: any data shards rebuild the data', async t => {
  roundTrip(t, 5, 5, 2, 1)
  roundTrip(t, 10, 3, 1400, 2)
  roundTrip(t, 4, 2, 64, 3)
  roundTrip(t, 1, 1, 10, 4)
})

t.test('short data shards count as zero-padded', async t => {
  const rs = reedSolomon(3, 2)
  const data = [Uint8Array.of(1, 2, 3, 4), Uint8Array.of(9), Uint8Array.of(5, 6)]
  const padded = data.map(d => { const p = new Uint8Array(4); p.set(d); return p })
  const a = [new Uint8Array(4), new Uint8Array(4)]
  const b = [new Uint8Array(4), new Uint8Array(4)]
  rs.encode(data, a, 4)
  rs.encode(padded, b, 4)
  t.same(a, b)
  const got: Array<Uint8Array | null> = [data[0]!, null, null, a[0]!, a[1]!]
  t.same(rs.reconstruct(got, 4), [1, 2])
  t.same([...got[1]!], [9, 0, 0, 0])
  t.same([...got[2]!], [5, 6, 0, 0])
})

t.test('bad shapes are refused', async t => {
  t.throws(() => new ReedSolomon(0, 1), RangeError)
  t.throws(() => new ReedSolomon(200, RS_MAX_SHARDS - 199), RangeError)
  t.throws(() => reedSolomon(2, 1).encode([new Uint8Array(1)], [new Uint8Array(1)], 1), RangeError)
  t.doesNotThrow(() => new ReedSolomon(RS_MAX_SHARDS - 1, 1))
})
