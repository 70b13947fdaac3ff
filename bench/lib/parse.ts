/**
 * Pure parsers and statistics for the benchmark harness: iperf3 JSON
 * (TCP and UDP), ping per-packet RTTs, /proc/stat and /proc/PID files.
 * Nothing here touches the system; tests feed them captured text
 * (test/bench/parse.test.ts).
 */

/** Percentile by linear interpolation between closest ranks (p in 0..100). null for an empty list. */
export function percentile (values: readonly number[], p: number): number | null {
  if (values.length === 0) return null
  const s = [...values].sort((a, b) => a - b)
  const rank = (p / 100) * (s.length - 1)
  const lo = Math.floor(rank)
  const hi = Math.ceil(rank)
  return s[lo]! + (s[hi]! - s[lo]!) * (rank - lo)
}

export function median (values: readonly number[]): number | null {
  return percentile(values, 50)
}

export interface IperfTcp {
  /** Receiver's rate, bits/s. */
  bps: number
  /** Bytes the receiver got. */
  bytes: number
  seconds: number
  retransmits: number | null
  /** The sender's mean smoothed RTT of the (first) stream, ms; null when iperf3 does not report it. */
  meanRttMs: number | null
  /** The sender's largest congestion window of the (first) stream, bytes; null when not reported. */
  maxCwndBytes: number | null
}

export interface IperfUdp {
  /** Datagrams the receiver got per second. */
  pps: number
  sentPps: number
  lostPct: number
  seconds: number
}

/** Result or the reason there is none. */
export type Parsed<T> = { ok: true, value: T } | { ok: false, error: string }

function parseJson (text: string): Parsed<Record<string, unknown>> {
  const start = text.indexOf('{')
  if (start < 0) return { ok: false, error: 'iperf3 printed no JSON' }
  try {
    return { ok: true, value: JSON.parse(text.slice(start)) as Record<string, unknown> }
  } catch {
    return { ok: false, error: 'iperf3 printed malformed JSON' }
  }
}

interface IperfSum { seconds?: number, bytes?: number, bits_per_second?: number, retransmits?: number, packets?: number, lost_packets?: number, lost_percent?: number }

/** iperf3 -J of a TCP test (client side): the receiver's rate. */
export function parseIperfTcp (text: string): Parsed<IperfTcp> {
  const j = parseJson(text)
  if (!j.ok) return j
  const v = j.value as { error?: string, end?: { sum_received?: IperfSum, sum_sent?: IperfSum, streams?: Array<{ sender?: { mean_rtt?: number, max_snd_cwnd?: number } }> } }
  if (typeof v.error === 'string') return { ok: false, error: `iperf3: ${v.error}` }
  const r = v.end?.sum_received
  if (r === undefined || typeof r.bits_per_second !== 'number' || typeof r.bytes !== 'number') return { ok: false, error: 'iperf3 gave no TCP result' }
  const snd = v.end?.streams?.[0]?.sender
  return {
    ok: true,
    value: {
      bps: r.bits_per_second,
      bytes: r.bytes,
      seconds: r.seconds ?? 0,
      retransmits: typeof v.end?.sum_sent?.retransmits === 'number' ? v.end.sum_sent.retransmits : null,
      // iperf3 reports mean_rtt in µs.
      meanRttMs: typeof snd?.mean_rtt === 'number' ? snd.mean_rtt / 1000 : null,
      maxCwndBytes: typeof snd?.max_snd_cwnd === 'number' ? snd.max_snd_cwnd : null
    }
  }
}

/** iperf3 -J of a UDP test (client side): datagrams the server received per second. */
export function parseIperfUdp (text: string): Parsed<IperfUdp> {
  const j = parseJson(text)
  if (!j.ok) return j
  const v = j.value as { error?: string, end?: { sum?: IperfSum, sum_received?: IperfSum, sum_sent?: IperfSum } }
  if (typeof v.error === 'string') return { ok: false, error: `iperf3: ${v.error}` }
  // iperf3 ≥ 3.11 reports sum_received; older ones put the server's view in sum.
  const r = v.end?.sum_received ?? v.end?.sum
  if (r === undefined || typeof r.packets !== 'number' || typeof r.seconds !== 'number' || r.seconds <= 0) return { ok: false, error: 'iperf3 gave no UDP result' }
  const got = r.packets - (r.lost_packets ?? 0)
  const sent = v.end?.sum_sent
  return {
    ok: true,
    value: {
      pps: got / r.seconds,
      sentPps: sent !== undefined && typeof sent.packets === 'number' && typeof sent.seconds === 'number' && sent.seconds > 0 ? sent.packets / sent.seconds : r.packets / r.seconds,
      lostPct: r.lost_percent ?? 0,
      seconds: r.seconds
    }
  }
}

export interface PingRtts {
  /** Per-reply round trip times, ms, in arrival order. */
  rtts: number[]
  transmitted: number
  received: number
}

/** `ping -n` output: one "time=X ms" per reply and the summary line. */
export function parsePingRtts (text: string): PingRtts {
  const rtts: number[] = []
  for (const m of text.matchAll(/time[=<]([\d.]+) ?ms/g)) rtts.push(Number(m[1]))
  const s = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(text)
  return { rtts, transmitted: s !== null ? Number(s[1]) : rtts.length, received: s !== null ? Number(s[2]) : rtts.length }
}

/** The aggregate "cpu" line of /proc/stat: total and idle (idle + iowait) jiffies. */
export function parseProcStat (text: string): { total: number, idle: number } | null {
  const line = text.split('\n').find((l) => l.startsWith('cpu '))
  if (line === undefined) return null
  const f = line.trim().split(/\s+/).slice(1).map(Number)
  if (f.length < 4 || f.some((x) => !Number.isFinite(x))) return null
  // user nice system idle iowait irq softirq steal guest guest_nice; guest time is already in user.
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0)
  return { total, idle: f[3]! + (f[4] ?? 0) }
}

/** Busy share (0..1) between two /proc/stat samples. */
export function busyBetween (a: { total: number, idle: number }, b: { total: number, idle: number }): number {
  const dt = b.total - a.total
  if (dt <= 0) return 0
  return Math.min(1, Math.max(0, 1 - (b.idle - a.idle) / dt))
}

/**
 * utime + stime of /proc/PID/stat, in clock ticks (the whole thread group).
 * The command name (field 2) may contain spaces and parentheses: fields are
 * counted after the last ')'.
 */
export function parsePidStatTicks (text: string): number | null {
  const close = text.lastIndexOf(')')
  if (close < 0) return null
  const f = text.slice(close + 2).trim().split(/\s+/)
  // After the name: state(3) ppid(4) ... utime is field 14, stime 15 → indexes 11 and 12 here.
  const ut = Number(f[11])
  const st = Number(f[12])
  return Number.isFinite(ut) && Number.isFinite(st) ? ut + st : null
}

/** A "Name:   N kB" field of /proc/PID/status, in kB. */
export function parseStatusKb (text: string, field: string): number | null {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)
  return m === null ? null : Number(m[1])
}
