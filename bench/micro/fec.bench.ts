/**
 * FEC (src/dataplane/reed-solomon.ts, fec.ts): what a group of 10 sealed
 * 1400-byte messages with 3 parity costs in TypeScript — encoding the
 * parity (every group a sender closes) and rebuilding lost messages (only
 * on loss) — in TypeScript and in the addon (native/fec.c gfMatMul, what
 * the pipelines use), side by side. Ops are data messages, so the rate is
 * messages/s through FEC.
 */
import { reedSolomon, type GfMatMul } from '../../src/dataplane/reed-solomon.js'
import { loadNative } from '../../src/dataplane/native.js'
import { FecEncoder } from '../../src/dataplane/fec.js'
import { writeU32, writeU64 } from '../../src/wire/messages.js'
import { time, type BenchResult, type TimerOptions, DEFAULT_TIMER } from './timer.js'

export function run (opts: TimerOptions = DEFAULT_TIMER): BenchResult[] {
  const out: BenchResult[] = []
  const K = 10
  const M = 3
  const LEN = 1400
  const data = Array.from({ length: K }, (_, i) => Uint8Array.from({ length: LEN }, (_, j) => (i * 31 + j * 7) & 0xff))
  const parity = Array.from({ length: M }, () => new Uint8Array(LEN))
  const rs = reedSolomon(K, M)
  const native = loadNative()
  const kernels: Array<[string, GfMatMul | undefined]> = [['TS', undefined], ['addon', native.gfMatMul.bind(native)]]
  for (const [name, kernel] of kernels) {
    out.push(time('fec', `${name}: RS ${K}+${M} encode (per data message, ${LEN} B)`, K, () => { rs.encode(data, parity, LEN, kernel) }, opts, LEN))
    out.push(time('fec', `${name}: RS ${K}+${M} rebuild 1 lost (per data message)`, K, () => {
      const s: Array<Uint8Array | null> = [...data, ...parity]
      s[3] = null
      rs.reconstruct(s, LEN, kernel)
    }, opts, LEN))
    out.push(time('fec', `${name}: RS ${K}+${M} rebuild 3 lost (per data message)`, K, () => {
      const s: Array<Uint8Array | null> = [...data, ...parity]
      s[0] = null; s[4] = null; s[9] = null
      rs.reconstruct(s, LEN, kernel)
    }, opts, LEN))
    const enc = new FecEncoder({ data: K, parity: M }, 5, kernel)
    const msg = new Uint8Array(LEN)
    msg[0] = 4
    writeU32(msg, 4, 7)
    let c = 0
    let sink = 0
    out.push(time('fec', `${name}: FecEncoder.add ${K}+${M} (copy + parity messages)`, 1, () => { writeU64(msg, 8, c++); sink += enc.add(msg, 0)?.length ?? 0 }, opts, LEN))
    if (sink === -1) console.log(sink)
  }
  return out
}
