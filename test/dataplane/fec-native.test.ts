/**
 * The addon's gfMatMul (native/fec.c) against the TypeScript reference
 * (reed-solomon.ts gfMatMulJs), both its AVX2 and its portable loop
 * (LWT_FEC_SCALAR=1, in a child process); the Backblaze/klauspost
 * reference vector through the addon; a full encode/lose/rebuild through
 * FecEncoder and FecDecoder with the addon; and its bounds checks.
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { loadNative } from '../../src/dataplane/native.js'
import { ReedSolomon, gfMatMulJs, reedSolomon } from '../../src/dataplane/reed-solomon.js'
import { FecDecoder, FecEncoder } from '../../src/dataplane/fec.js'
import { writeU32, writeU64 } from '../../src/wire/messages.js'

const native = loadNative()
const kernel = native.gfMatMul.bind(native)
const ADDON = fileURLToPath(new URL('../../build/Release/lwt_native.node', import.meta.url))

/** A deterministic case: rows × k coefficients (every value 0-255 appears), k sources of varied lengths, len. */
function makeCase (rows: number, k: number, len: number, seed: number): { coefs: Uint8Array, src: Uint8Array, so: Int32Array, sl: Int32Array, dOff: Int32Array } {
  let s = seed
  const rnd = (): number => { s = (s * 1103515245 + 12345) >>> 0; return s >>> 24 }
  const coefs = Uint8Array.from({ length: rows * k }, (_, i) => i < 256 ? i : rnd())
  const src = Uint8Array.from({ length: k * (len + 7) }, rnd)
  const so = Int32Array.from({ length: k }, (_, c) => c * (len + 7) + (c % 7))
  const sl = Int32Array.from({ length: k }, (_, c) => c % 3 === 2 ? Math.max(0, len - 5 * c) : len + 3) // short ones count as zero-padded
  const dOff = Int32Array.from({ length: rows }, (_, j) => 3 + j * (len + 1))
  return { coefs, src, so, sl, dOff }
}

const CASES: Array<[number, number, number]> = [[3, 10, 1400], [16, 32, 2048], [1, 1, 1], [5, 5, 31], [4, 9, 33], [2, 7, 0], [300 >> 2, 3, 97]]

function run (mm: typeof gfMatMulJs, rows: number, k: number, len: number, seed: number): Uint8Array {
  const c = makeCase(rows, k, len, seed)
  const dst = new Uint8Array(3 + rows * (len + 1)).fill(0xaa) // stale bytes: the product overwrites its outputs
  mm(c.coefs, rows, k, c.src, c.so, c.sl, dst, c.dOff, len)
  return dst
}

t.test('gfMatMul equals the TypeScript reference (every coefficient, odd lengths, short sources)', async t => {
  for (const [rows, k, len] of CASES) {
    t.same(Buffer.from(run(kernel, rows, k, len, rows * 1000 + k)), Buffer.from(run(gfMatMulJs, rows, k, len, rows * 1000 + k)), `${rows} × ${k}, ${len} bytes`)
  }
})

t.test('the portable loop (LWT_FEC_SCALAR=1) gives the same bytes', async t => {
  const script = `const n = require(${JSON.stringify(ADDON)}); const c = JSON.parse(require('fs').readFileSync(0, 'utf8'));
    const out = c.map(([rows, k, len, coefs, src, so, sl, dOff]) => { const dst = new Uint8Array(3 + rows * (len + 1)).fill(0xaa);
      n.gfMatMul(Uint8Array.from(coefs), rows, k, Uint8Array.from(src), Int32Array.from(so), Int32Array.from(sl), dst, Int32Array.from(dOff), len); return Buffer.from(dst).toString('hex') });
    process.stdout.write(JSON.stringify(out))`
  const cases = CASES.map(([rows, k, len]) => { const c = makeCase(rows, k, len, rows * 1000 + k); return [rows, k, len, [...c.coefs], [...c.src], [...c.so], [...c.sl], [...c.dOff]] })
  const r = spawnSync(process.execPath, ['-e', script], { input: JSON.stringify(cases), env: { ...process.env, NODE_OPTIONS: '', LWT_FEC_SCALAR: '1' }, encoding: 'utf8', maxBuffer: 1 << 26 })
  t.equal(r.status, 0, r.stderr ?? String(r.error))
  const got = JSON.parse(r.stdout) as string[]
  CASES.forEach(([rows, k, len], i) => { t.equal(got[i], Buffer.from(run(gfMatMulJs, rows, k, len, rows * 1000 + k)).toString('hex'), `${rows} × ${k}, ${len} bytes`) })
})

t.test('Backblaze testOneEncode through the addon; every single and double loss of 10+3 rebuilt', async t => {
  const rs = new ReedSolomon(5, 5)
  const data = [[0, 1], [4, 5], [2, 3], [6, 7], [8, 9]].map(x => Uint8Array.from(x))
  const parity = Array.from({ length: 5 }, () => new Uint8Array(2))
  rs.encode(data, parity, 2, kernel)
  t.same(parity.map(p => [...p]), [[12, 13], [10, 11], [14, 15], [90, 91], [94, 95]])
  const r = reedSolomon(10, 3)
  const shards = Array.from({ length: 10 }, (_, i) => Uint8Array.from({ length: 1400 }, (_, j) => (i * 131 + j * 17) & 0xff))
  const par = Array.from({ length: 3 }, () => new Uint8Array(1400))
  r.encode(shards, par, 1400, kernel)
  const ref = Array.from({ length: 3 }, () => new Uint8Array(1400))
  r.encode(shards, ref, 1400)
  t.same(par, ref, 'parity equals the reference encoder\'s')
  let ok = 0
  for (let a = 0; a < 13; a++) {
    for (let b = a; b < 13; b++) {
      const got: Array<Uint8Array | null> = [...shards, ...par]
      got[a] = null
      got[b] = null
      r.reconstruct(got, 1400, kernel)
      if (shards.every((s, i) => Buffer.compare(Buffer.from(s), Buffer.from(got[i]!)) === 0)) ok++
    }
  }
  t.equal(ok, 13 * 14 / 2)
})

t.test('FecEncoder and FecDecoder on the addon: a lost message rebuilt byte for byte', async t => {
  const enc = new FecEncoder({ data: 10, parity: 3 }, 5, kernel)
  const dec = new FecDecoder(9, kernel)
  const msgs = Array.from({ length: 10 }, (_, c) => {
    const m = Uint8Array.from({ length: 200 + 40 * c }, (_, j) => (c * 7 + j) & 0xff)
    m[0] = 4
    writeU32(m, 4, 9)
    writeU64(m, 8, 100 + c)
    return m
  })
  let parity: Uint8Array[] = []
  for (const m of msgs) parity = enc.add(m, 0)?.map(p => p.slice()) ?? parity
  t.equal(parity.length, 3)
  for (const [c, m] of msgs.entries()) if (c !== 2 && c !== 7) dec.addData(m, 0)
  const out = [...dec.addParity(parity[0]!, 0), ...dec.addParity(parity[2]!, 0)]
  t.same(out.map(m => Buffer.from(m)), [Buffer.from(msgs[2]!), Buffer.from(msgs[7]!)])
})

t.test('bounds: a shard outside its buffer is a RangeError, nothing written', async t => {
  const dst = new Uint8Array(10)
  t.throws(() => { native.gfMatMul(new Uint8Array(1), 1, 1, new Uint8Array(10), Int32Array.of(5), Int32Array.of(8), dst, Int32Array.of(0), 8) }, RangeError)
  t.throws(() => { native.gfMatMul(new Uint8Array(1), 1, 1, new Uint8Array(10), Int32Array.of(0), Int32Array.of(8), dst, Int32Array.of(5), 8) }, RangeError)
  t.throws(() => { native.gfMatMul(new Uint8Array(1), 1, 2, new Uint8Array(10), Int32Array.of(0, 0), Int32Array.of(8, 8), dst, Int32Array.of(0), 8) }, RangeError, 'coefs shorter than rows × k')
  t.throws(() => { native.gfMatMul(new Uint8Array(1), 1, 1, new Uint8Array(10), Int32Array.of(-1), Int32Array.of(1), dst, Int32Array.of(0), 1) }, RangeError)
  t.same([...dst], new Array(10).fill(0))
})
