/**
 * `npm run bench:ci`: the performance regression gate. A short, stable
 * subset of the benchmarks, each expressed as a ratio to a reference measured
 * in the same run, compared with the committed baseline (bench/baseline.json):
 *
 *   pipeline-*        in-process pipeline packets/s (bench/micro/pipeline.bench.ts)
 *                     ÷ the JS calibration loop's ops/s
 *   aead-*-addon-*    the addon's batch seal/open packets/s ÷ the native
 *                     calibration (node:crypto SHA-256 of 16 KiB: OpenSSL, same CPU features)
 *   aead-*-noble-*    the pure-JS fallback ÷ the JS calibration loop
 *   tunnel-tcp1       our daemon's single-stream TCP (iperf3, 3 s, A → server)
 *                     ÷ the raw link's in the same lab, same run
 *   ping-fast-path    idle ping p50 through our tunnel with --no-fast-path ÷ the
 *                     same with the fast path (native/fastpath.c), same lab, same
 *                     run: how much the lone-packet path saves (≈2–3×; 1 if it broke)
 *
 * Each micro figure is the best of several rounds, with its calibration taken
 * right before and after it (the better one counts). A metric below
 * baseline × (1 − tolerance) is re-measured once; if it still is, the gate
 * fails. Tolerances (bench/baseline.json): 15% by default, 30% for the
 * pure-JS AEAD (JIT variance), 45% for tunnel-tcp1 (the raw link swings most
 * on a shared machine; a 2× regression still fails) and for ping-fast-path
 * (a fast path that stopped working, ratio ≈ 1, still fails). Prints a table; exits 1 on a regression, 0 otherwise. Bounded: about
 * a minute; the whole run is cut at --budget seconds (default 170).
 *
 *   node dist/bench/ci.js [--update-baseline] [--no-tunnel] [--baseline FILE] [--json FILE] [--budget S]
 */
import { createHash } from 'node:crypto'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { time, type TimerOptions } from './micro/timer.js'
import { directCase, relayCase, runCase } from './micro/pipeline.bench.js'
import { addonCases } from './micro/aead.bench.js'
import { chacha20poly1305 } from '@noble/ciphers/chacha.js'
import { compare, failed, formatVerdicts, makeBaseline, type Baseline } from './lib/compare.js'
import { runHarness } from './run.js'
import { Progress } from './lib/progress.js'
import { ROOT } from './tunnels/index.js'

const TIMER: TimerOptions = { rounds: 5, minMs: 100 }
const DEFAULT_TOLERANCE = 0.15
/** The harness's wait for a quiet machine, shortened for the gate. */
const LAB_QUIET = { maxBusy: 0.5, windowMs: 1000, timeoutMs: 8000 }

/** JS calibration: integer and typed-array work like the dataplane's JS stages. ops = array elements visited. */
function calibJs (): number {
  const a = new Uint32Array(4096)
  let x = 0x9e3779b9
  return time('calib', 'js', a.length, () => {
    for (let i = 0; i < a.length; i++) {
      x ^= x << 13; x ^= x >>> 17; x ^= x << 5
      a[i] = (a[i]! + x) >>> 0
    }
  }, TIMER).opsPerSec
}

/** Native calibration: OpenSSL through node:crypto (SHA-256 of 16 KiB), ops = hashes. */
function calibNative (): number {
  const buf = Buffer.alloc(16384, 7)
  return time('calib', 'native', 1, () => { createHash('sha256').update(buf).digest() }, TIMER).opsPerSec
}

interface Metric { id: string, what: string, measure: () => number | null }

function microMetrics (): Metric[] {
  const paired = (ref: () => number, value: () => number): number => {
    const before = ref()
    const v = value()
    const after = ref()
    return v / Math.max(before, after)
  }
  const pipe = (size: number, kind: 'full' | 'relay'): number => {
    const c = kind === 'full' ? directCase(size, true) : relayCase(size)
    return runCase('ci', `${kind}-${size}`, c, TIMER, size, true).opsPerSec
  }
  const addon = (size: number, op: 'seal' | 'pair'): number => {
    const c = addonCases(size)
    return time('ci', `addon-${op}-${size}`, 64, op === 'seal' ? c.seal : c.pair, TIMER).opsPerSec
  }
  const noble = (size: number): number => {
    const key = new Uint8Array(32).fill(1)
    const nonce = new Uint8Array(12)
    const aad = new Uint8Array(16)
    const pt = new Uint8Array(size)
    const out = new Uint8Array(size + 16)
    let c = 0
    return time('ci', `noble-${size}`, 1, () => { nonce[4] = c++ & 0xff; chacha20poly1305(key, nonce, aad).encrypt(pt, out) }, TIMER).opsPerSec
  }
  return [
    { id: 'pipeline-1400-full', what: 'in-process client→server pipeline pps at 1400 B ÷ JS calibration ops/s', measure: () => paired(calibJs, () => pipe(1400, 'full')) },
    { id: 'pipeline-64-full', what: 'in-process client→server pipeline pps at 64 B ÷ JS calibration ops/s', measure: () => paired(calibJs, () => pipe(64, 'full')) },
    { id: 'pipeline-1400-relay', what: 'in-process server relay pps at 1400 B ÷ JS calibration ops/s', measure: () => paired(calibJs, () => pipe(1400, 'relay')) },
    { id: 'aead-1400-addon-seal', what: 'addon seal pps at 1400 B (batch 64) ÷ native calibration ops/s', measure: () => paired(calibNative, () => addon(1400, 'seal')) },
    { id: 'aead-1400-addon-seal-open', what: 'addon seal+open pairs/s at 1400 B ÷ native calibration ops/s', measure: () => paired(calibNative, () => addon(1400, 'pair')) },
    { id: 'aead-64-addon-seal', what: 'addon seal pps at 64 B (batch 64) ÷ native calibration ops/s', measure: () => paired(calibNative, () => addon(64, 'seal')) },
    { id: 'aead-1400-noble-seal', what: '@noble/ciphers seal pps at 1400 B ÷ JS calibration ops/s', measure: () => paired(calibJs, () => noble(1400)) }
  ]
}

async function tunnelRatio (): Promise<number | null> {
  const rep = await runHarness({
    tunnels: ['raw', 'ours'],
    tests: ['tcp1'],
    testSeconds: 3,
    quiet: LAB_QUIET
  }, new Progress())
  const raw = rep.tunnels.find((t) => t.name === 'raw')?.tcp1?.mbps
  const ours = rep.tunnels.find((t) => t.name === 'ours')
  if (ours?.status !== 'ok') process.stderr.write(`bench:ci: our tunnel did not run: ${ours?.error ?? ours?.testErrors.tcp1 ?? '?'}\n`)
  const o = ours?.tcp1?.mbps
  if (raw === undefined || o === undefined || raw <= 0) return null
  process.stderr.write(`bench:ci: tunnel ${o.toFixed(0)} Mbit/s, raw link ${raw.toFixed(0)} Mbit/s\n`)
  return o / raw
}

/** Idle ping p50 with --no-fast-path ÷ with the fast path (both A → server, 200 pings, same lab). */
async function pingFastRatio (): Promise<number | null> {
  const rep = await runHarness({
    tunnels: ['ours-nofast', 'ours'],
    tests: ['ping'],
    testSeconds: 2,
    quiet: LAB_QUIET
  }, new Progress())
  const slow = rep.tunnels.find((t) => t.name === 'ours-nofast')?.pingIdle?.p50
  const fast = rep.tunnels.find((t) => t.name === 'ours')?.pingIdle?.p50
  if (slow == null || fast == null || fast <= 0) return null
  process.stderr.write(`bench:ci: idle ping ${fast.toFixed(3)} ms, ${slow.toFixed(3)} ms with --no-fast-path\n`)
  return slow / fast
}

/** The metrics measured in a lab of namespaces (root only; skipped with --no-tunnel). */
interface LabMetric {
  id: string
  what: string
  /** Allowed drop recorded with a new baseline. */
  tolerance: number
  /** What runs, for the progress line. */
  how: string
  measure: () => Promise<number | null>
  /**
   * The baseline is at most this (a floor, not the last run) and is left out
   * of the "faster than the baseline" hint: ping-fast-path swings 3.4–7.6
   * between runs (a 0.05–0.12 ms ping in the denominator); 3.0 with a 50 %
   * allowed drop fails only a fast path that stopped working (≈1).
   */
  baselineMax?: number
}

const LAB_METRICS: readonly LabMetric[] = [
  { id: 'tunnel-tcp1', what: 'our single-stream TCP Mbit/s (iperf3 3 s, A → server) ÷ the raw link\'s in the same lab', tolerance: 0.45, how: 'namespaces, iperf3', measure: tunnelRatio },
  { id: 'ping-fast-path', what: 'idle ping p50 with --no-fast-path ÷ with the fast path (A → server, same lab)', tolerance: 0.5, how: 'namespaces, ping', measure: pingFastRatio, baselineMax: 3.0 }
]

async function main (): Promise<number> {
  const { values } = parseArgs({ options: { 'update-baseline': { type: 'boolean' }, 'no-tunnel': { type: 'boolean' }, baseline: { type: 'string' }, json: { type: 'string' }, budget: { type: 'string' }, help: { type: 'boolean', short: 'h' } } })
  if (values.help === true) { console.log('npm run bench:ci -- [--update-baseline] [--no-tunnel] [--baseline FILE] [--json FILE] [--budget S]'); return 0 }
  const budget = Number(values.budget ?? 170) * 1000
  const t0 = Date.now()
  const killer = setTimeout(() => {
    console.error(`bench:ci: over the time budget of ${budget / 1000} s; failing`)
    process.exit(1)
  }, budget)
  killer.unref()
  const file = values.baseline ?? join(ROOT, 'bench', 'baseline.json')
  const base: Baseline | null = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) as Baseline : null
  const metrics = microMetrics()
  const what: Record<string, string> = Object.fromEntries(metrics.map((m) => [m.id, m.what]))
  const measured: Record<string, number | null> = {}
  for (const m of metrics) {
    process.stderr.write(`bench:ci: ${m.id}\n`)
    try { measured[m.id] = m.measure() } catch (err) { process.stderr.write(`bench:ci: ${m.id} failed: ${err instanceof Error ? err.message : String(err)}\n`); measured[m.id] = null }
  }
  const canTunnel = values['no-tunnel'] !== true && typeof process.getuid === 'function' && process.getuid() === 0
  for (const m of LAB_METRICS) {
    what[m.id] = m.what
    if (!canTunnel) continue
    process.stderr.write(`bench:ci: ${m.id} (${m.how})\n`)
    measured[m.id] = await m.measure().catch((err: unknown) => { process.stderr.write(`bench:ci: ${m.id} failed: ${String(err)}\n`); return null })
  }
  if (values['update-baseline'] === true || base === null) {
    const nb = makeBaseline(measured, base, DEFAULT_TOLERANCE, what, new Date().toISOString())
    for (const m of LAB_METRICS) {
      const b = nb.metrics[m.id]
      if (b === undefined) continue
      b.tolerance ??= m.tolerance
      if (m.baselineMax !== undefined) b.ratio = Math.min(b.ratio, m.baselineMax)
    }
    writeFileSync(file, JSON.stringify(nb, null, 2) + '\n')
    console.log(`bench:ci: baseline written to ${file}`)
    console.log(formatVerdicts(compare(measured, nb)))
    return 0
  }
  if (!canTunnel) for (const m of LAB_METRICS) delete base.metrics[m.id]
  let verdicts = compare(measured, base)
  // A figure that looks like a regression is measured once more: a shared machine makes single outliers.
  const again = verdicts.filter((v) => v.status === 'regression' || v.status === 'missing').map((v) => v.id)
  if (again.length > 0) {
    process.stderr.write(`bench:ci: measuring again: ${again.join(', ')}\n`)
    for (const id of again) {
      const m = metrics.find((x) => x.id === id)
      let r: number | null = null
      const lab = LAB_METRICS.find((x) => x.id === id)
      try { r = m !== undefined ? m.measure() : lab !== undefined ? await lab.measure() : null } catch { r = null }
      if (r !== null && (measured[id] === null || r > measured[id]!)) measured[id] = r
    }
    verdicts = compare(measured, base)
  }
  console.log(formatVerdicts(verdicts))
  if (values.json !== undefined) writeFileSync(values.json, JSON.stringify({ at: new Date().toISOString(), verdicts }, null, 2) + '\n')
  const secs = ((Date.now() - t0) / 1000).toFixed(0)
  if (failed(verdicts)) {
    console.log(`bench:ci: FAILED after ${secs} s: performance regression beyond the allowed drop (see the table; bench/baseline.json holds the reference ratios)`)
    return 1
  }
  const floors = new Set(LAB_METRICS.filter((m) => m.baselineMax !== undefined).map((m) => m.id))
  const imp = verdicts.filter((v) => v.status === 'improved' && !floors.has(v.id)).map((v) => v.id)
  console.log(`bench:ci: passed in ${secs} s${imp.length > 0 ? `; faster than the baseline: ${imp.join(', ')} (record it: npm run bench:ci -- --update-baseline)` : ''}`)
  return 0
}

main().then((c) => { process.exitCode = c }, (err: unknown) => { console.error(err); process.exitCode = 1 })
