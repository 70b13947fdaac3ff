/**
 * Machine and process measurements: how busy the machine is (/proc/stat),
 * waiting for a quiet machine before a measurement, and a daemon's CPU time
 * (/proc/PID/stat) and peak RSS (VmHWM in /proc/PID/status).
 *
 * The machine is shared, so every measurement records the busy share of the
 * whole machine while it waited and while it ran; a figure taken on a busy
 * machine is marked, not dropped.
 */
import { readFileSync } from 'node:fs'
import { busyBetween, parsePidStatTicks, parseProcStat, parseStatusKb } from './parse.js'
import { sleep } from '../../src/lab/exec.js'

/** Kernel clock ticks per second (USER_HZ); 100 on every Linux ABI we run on. */
export const CLK_TCK = 100

export function readProcStat (): { total: number, idle: number } {
  const s = parseProcStat(readFileSync('/proc/stat', 'utf8'))
  if (s === null) throw new Error('cannot parse /proc/stat')
  return s
}

/** CPU seconds (user + system, all threads) used by `pid` so far, or null when it is gone. */
export function cpuSeconds (pid: number): number | null {
  try {
    const t = parsePidStatTicks(readFileSync(`/proc/${pid}/stat`, 'utf8'))
    return t === null ? null : t / CLK_TCK
  } catch {
    return null
  }
}

/** Peak resident set size (VmHWM) of `pid`, kB, or null. */
export function peakRssKb (pid: number): number | null {
  try { return parseStatusKb(readFileSync(`/proc/${pid}/status`, 'utf8'), 'VmHWM') } catch { return null }
}

/** Current resident set size (VmRSS) of `pid`, kB, or null. */
export function rssKb (pid: number): number | null {
  try { return parseStatusKb(readFileSync(`/proc/${pid}/status`, 'utf8'), 'VmRSS') } catch { return null }
}

export interface QuietOptions {
  /** Busy share (0..1) of the whole machine at or below which it counts as quiet. */
  maxBusy: number
  /** The machine must stay quiet for this long, ms. */
  windowMs: number
  /** Give up waiting after this long and measure anyway (recorded), ms. */
  timeoutMs: number
}

export interface QuietResult {
  /** True when a quiet window was found before the timeout. */
  quiet: boolean
  /** Busy share over the last window before the measurement started (0..1). */
  busy: number
  waitedMs: number
}

/**
 * Waits until the whole machine's busy share over a sliding window of
 * `windowMs` is ≤ `maxBusy`, sampling every 250 ms; returns after
 * `timeoutMs` regardless.
 */
export async function waitQuiet (opts: QuietOptions, onWait?: (busy: number, waitedMs: number) => void): Promise<QuietResult> {
  const stepMs = 250
  const need = Math.max(1, Math.round(opts.windowMs / stepMs))
  const samples = [readProcStat()]
  const t0 = Date.now()
  for (;;) {
    await sleep(stepMs)
    samples.push(readProcStat())
    if (samples.length > need + 1) samples.shift()
    const waited = Date.now() - t0
    const busy = busyBetween(samples[0]!, samples.at(-1)!)
    if (samples.length === need + 1 && busy <= opts.maxBusy) return { quiet: true, busy, waitedMs: waited }
    if (waited >= opts.timeoutMs) return { quiet: false, busy, waitedMs: waited }
    onWait?.(busy, waited)
  }
}

/** Measures the whole machine's busy share over the time `fn` runs. */
export async function busyDuring<T> (fn: () => Promise<T>): Promise<{ value: T, busy: number }> {
  const a = readProcStat()
  const value = await fn()
  return { value, busy: busyBetween(a, readProcStat()) }
}
