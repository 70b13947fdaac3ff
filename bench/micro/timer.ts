/**
 * A small benchmark timer for the micro and pipeline benchmarks: warm up,
 * then `rounds` timed rounds of at least `minMs` each; the best round counts
 * (the least disturbed one on a shared machine), the median is kept too.
 * No allocation happens in the timer's loop; the measured function decides
 * how many operations one call does (a batch of 64 packets = 64 ops).
 */
export interface TimerOptions {
  /** Timed rounds (default 5). */
  rounds: number
  /** Minimum length of a round, ms (default 200). */
  minMs: number
}

export interface BenchResult {
  /** "group/name", e.g. "aead-1400/addon seal batch 64". */
  id: string
  group: string
  name: string
  /** Nanoseconds per op in the best round. */
  nsPerOp: number
  /** Ops per second in the best round. */
  opsPerSec: number
  /** Ops per second, median round. */
  medianOpsPerSec: number
  /** Bytes per op, when meaningful (for MB/s). */
  bytesPerOp: number | null
}

export const DEFAULT_TIMER: TimerOptions = { rounds: 5, minMs: 200 }

/** Times `fn` (which performs `opsPerCall` ops per call). */
export function time (group: string, name: string, opsPerCall: number, fn: () => void, opts: TimerOptions = DEFAULT_TIMER, bytesPerOp: number | null = null): BenchResult {
  // Warm-up: let V8 optimize, and size the inner loop to ~10 ms per sample.
  let calls = 1
  const w0 = process.hrtime.bigint()
  while (Number(process.hrtime.bigint() - w0) < 50e6) { for (let i = 0; i < calls; i++) fn(); calls = Math.min(calls * 2, 1 << 20) }
  const t1 = process.hrtime.bigint()
  for (let i = 0; i < calls; i++) fn()
  const per = Math.max(1, Number(process.hrtime.bigint() - t1)) / calls
  const inner = Math.max(1, Math.round(10e6 / per))
  const rates: number[] = []
  for (let r = 0; r < opts.rounds; r++) {
    let n = 0
    const s = process.hrtime.bigint()
    let el = 0
    do {
      for (let i = 0; i < inner; i++) fn()
      n += inner
      el = Number(process.hrtime.bigint() - s)
    } while (el < opts.minMs * 1e6)
    rates.push((n * opsPerCall) / (el / 1e9))
  }
  rates.sort((a, b) => a - b)
  const best = rates[rates.length - 1]!
  return { id: `${group}/${name}`, group, name, nsPerOp: 1e9 / best, opsPerSec: best, medianOpsPerSec: rates[Math.floor(rates.length / 2)]!, bytesPerOp }
}

/** Formats results as an aligned text table. */
export function formatResults (results: readonly BenchResult[]): string {
  const rows = [['benchmark', 'ns/op', 'ops/s (best)', 'ops/s (median)', 'MB/s'], ...results.map((r) => [
    r.id,
    r.nsPerOp < 100 ? r.nsPerOp.toFixed(1) : r.nsPerOp.toFixed(0),
    humanRate(r.opsPerSec),
    humanRate(r.medianOpsPerSec),
    r.bytesPerOp === null ? '' : (r.opsPerSec * r.bytesPerOp / 1e6).toFixed(0)
  ])]
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)))
  return rows.map((row) => row.map((c, i) => i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!)).join('  ')).join('\n')
}

export function humanRate (v: number): string {
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)}M`
  if (v >= 1e3) return `${(v / 1e3).toFixed(1)}k`
  return v.toFixed(0)
}
