/**
 * The regression gate's arithmetic (bench:ci): every metric is a ratio of a
 * measurement to a reference measured in the same run (a calibration loop,
 * the raw link), so a slower or busier machine moves both and the ratio
 * stays put. A metric regresses when its ratio falls below
 * baseline × (1 − tolerance). Pure functions (test/bench/compare.test.ts).
 */

export interface BaselineMetric {
  /** The ratio recorded in the baseline. */
  ratio: number
  /** Allowed relative drop, 0..1 (overrides the file's default). */
  tolerance?: number
  /** What the ratio is, in words. */
  what?: string
}

export interface Baseline {
  version: 1
  /** Default allowed relative drop, 0..1. */
  tolerance: number
  recordedAt: string
  metrics: Record<string, BaselineMetric>
}

export interface Verdict {
  id: string
  ratio: number | null
  baseline: number | null
  tolerance: number
  /** ratio / baseline − 1 (null when either is missing). */
  change: number | null
  status: 'ok' | 'regression' | 'improved' | 'new' | 'missing'
}

/** Compares measured ratios with the baseline. 'improved' means beyond +tolerance (time to update the baseline). */
export function compare (measured: Record<string, number | null>, baseline: Baseline): Verdict[] {
  const ids = [...new Set([...Object.keys(baseline.metrics), ...Object.keys(measured)])]
  return ids.map((id) => {
    const b = baseline.metrics[id]
    const tol = b?.tolerance ?? baseline.tolerance
    const r = measured[id] ?? null
    if (b === undefined) return { id, ratio: r, baseline: null, tolerance: tol, change: null, status: 'new' as const }
    if (r === null || !Number.isFinite(r)) return { id, ratio: null, baseline: b.ratio, tolerance: tol, change: null, status: 'missing' as const }
    const change = r / b.ratio - 1
    // 1e-9: a ratio exactly at the allowed drop passes despite floating-point rounding.
    const status = change < -tol - 1e-9 ? 'regression' as const : change > tol + 1e-9 ? 'improved' as const : 'ok' as const
    return { id, ratio: r, baseline: b.ratio, tolerance: tol, change, status }
  })
}

/** True when the gate fails: a regression, or a baseline metric that could not be measured. */
export function failed (verdicts: readonly Verdict[]): boolean {
  return verdicts.some((v) => v.status === 'regression' || v.status === 'missing')
}

/** A new baseline from measured ratios, keeping per-metric tolerances and descriptions. */
export function makeBaseline (measured: Record<string, number | null>, old: Baseline | null, tolerance: number, what: Record<string, string>, at: string): Baseline {
  const metrics: Record<string, BaselineMetric> = {}
  for (const [id, r] of Object.entries(measured)) {
    if (r === null || !Number.isFinite(r)) continue
    const prev = old?.metrics[id]
    metrics[id] = { ratio: Number(r.toPrecision(4)), ...(prev?.tolerance !== undefined ? { tolerance: prev.tolerance } : {}), ...(what[id] !== undefined ? { what: what[id] } : {}) }
  }
  return { version: 1, tolerance: old?.tolerance ?? tolerance, recordedAt: at, metrics }
}

/** The verdicts as an aligned text table. */
export function formatVerdicts (verdicts: readonly Verdict[]): string {
  const pct = (x: number | null): string => x === null ? '–' : `${x >= 0 ? '+' : ''}${(100 * x).toFixed(1)}%`
  const num = (x: number | null): string => x === null ? '–' : x < 0.01 ? x.toExponential(3) : x.toPrecision(4)
  const rows = [['metric', 'ratio', 'baseline', 'change', 'allowed drop', 'status'], ...verdicts.map((v) => [
    v.id, num(v.ratio), num(v.baseline), pct(v.change), `${(100 * v.tolerance).toFixed(0)}%`, v.status.toUpperCase()
  ])]
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  return rows.map((r) => r.map((c, i) => i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!)).join('  ')).join('\n')
}
