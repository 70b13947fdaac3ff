// transport/framing.ts: the TCP transport's u16 length-prefixed frames.
import t from 'tap'
import { Deframer, MAX_FRAME, encodeFrame, frameHeader } from '../../src/transport/framing.js'

function collect (): { d: Deframer, got: number[][] } {
  const got: number[][] = []
  return { d: new Deframer((m) => { got.push([...m]) }), got }
}

t.test('golden bytes: header is the big-endian length', async t => {
  t.same([...encodeFrame(Uint8Array.of(1, 2, 3))], [0, 3, 1, 2, 3])
  t.same([...frameHeader(MAX_FRAME)], [MAX_FRAME >>> 8, MAX_FRAME & 0xff])
  t.throws(() => frameHeader(0), RangeError)
  t.throws(() => frameHeader(MAX_FRAME + 1), RangeError)
})

t.test('whole frames in one chunk, and split at every byte boundary', async t => {
  const msgs = [Uint8Array.of(1), new Uint8Array(300).fill(7), Uint8Array.of(9, 8)]
  const stream = Buffer.concat(msgs.map(encodeFrame))
  const one = collect()
  t.equal(one.d.push(stream), null)
  t.same(one.got, msgs.map(m => [...m]), 'one chunk: three frames')
  for (let cut = 1; cut < stream.length; cut++) {
    const c = collect()
    t.equal(c.d.push(stream.subarray(0, cut)), null)
    t.equal(c.d.push(stream.subarray(cut)), null)
    if (JSON.stringify(c.got) !== JSON.stringify(msgs.map(m => [...m]))) { t.fail(`cut at ${cut}`); return }
  }
  const b = collect()
  for (const byte of stream) t.equal(b.d.push(Uint8Array.of(byte)), null)
  t.same(b.got, msgs.map(m => [...m]), 'byte by byte')
  t.notOk(b.d.partial, 'nothing held after the last frame')
})

t.test('partial says a frame is half-read', async t => {
  const c = collect()
  c.d.push(Uint8Array.of(0, 5, 1, 2))
  t.ok(c.d.partial)
  c.d.push(Uint8Array.of(3, 4, 5))
  t.notOk(c.d.partial)
  t.same(c.got, [[1, 2, 3, 4, 5]])
})

t.test('a length beyond the limit or zero ends the stream, also when the header is split', async t => {
  const a = collect()
  t.equal(a.d.push(Uint8Array.of(0xff, 0xff, 0)), 'too-long')
  t.equal(a.d.push(Uint8Array.of(0, 1, 1)), 'too-long', 'sticky: nothing more is read')
  t.same(a.got, [])
  const b = collect()
  t.equal(b.d.push(Uint8Array.of(0, 1, 7, 0)), null, 'a good frame, then half a header')
  t.equal(b.d.push(Uint8Array.of(0)), 'empty', 'the header completes as length 0')
  t.same(b.got, [[7]], 'the good frame came through')
  const c = collect()
  t.equal(c.d.push(Uint8Array.of((MAX_FRAME + 1) >>> 8)), null)
  t.equal(c.d.push(Uint8Array.of((MAX_FRAME + 1) & 0xff)), 'too-long', 'split header beyond the limit')
})

t.test('random streams in random chunks come out whole (fuzz)', async t => {
  let seed = 12345
  const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n }
  for (let run = 0; run < 200; run++) {
    const msgs = Array.from({ length: 1 + rnd(20) }, () => Uint8Array.from({ length: 1 + rnd(2000) }, () => rnd(256)))
    const stream = Buffer.concat(msgs.map(encodeFrame))
    const c = collect()
    for (let off = 0; off < stream.length;) {
      const n = 1 + rnd(3000)
      if (c.d.push(stream.subarray(off, off + n)) !== null) { t.fail('error on a good stream'); return }
      off += n
    }
    if (c.got.length !== msgs.length || c.got.some((m, i) => m.length !== msgs[i]!.length || m.some((v, j) => v !== msgs[i]![j]))) { t.fail(`run ${run} differs`); return }
  }
  t.pass('200 random streams in random chunks come out whole')
})

t.test('chunks read into one reused Buffer (a socket with onread): a frame split across reads survives the reuse', async t => {
  const frames = Array.from({ length: 60 }, (_, k) => new Uint8Array(1400 + (k % 7)).fill(k))
  const stream = Buffer.concat(frames.map((f) => encodeFrame(f)))
  for (const size of [1, 2, 3, 1000, 4096, 65536]) {
    const reused = Buffer.alloc(size) // Buffer: its slice() is a view, unlike Uint8Array's
    const got: number[][] = []
    const d = new Deframer((m) => { got.push([m.length, m[0]!, m[m.length - 1]!]) })
    const errors: string[] = []
    for (let at = 0; at < stream.length; at += size) {
      const n = stream.copy(reused, 0, at, at + size)
      const e = d.push(reused.subarray(0, n))
      if (e !== null) errors.push(e)
      reused.fill(0xee) // the next read overwrites it
    }
    t.same(errors, [], `reads of ${size} bytes: no framing error`)
    t.same(got, frames.map((f) => [f.length, f[0], f[f.length - 1]]), `reads of ${size} bytes: every frame whole`)
  }
})
