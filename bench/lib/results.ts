/**
 * The harness's result model and its renderings: a markdown table and an SVG
 * chart drawn by hand (throughput and latency per tunnel). Pure functions of
 * the result object (test/bench/report.test.ts).
 */

export interface Busy {
  /** Whole-machine busy share (0..1) over the quiet-wait window just before the measurement. */
  before: number
  /** Whole-machine busy share (0..1) while the measurement ran (includes the load it generated). */
  during: number
  /** False when the machine never got quiet within the timeout. */
  quiet: boolean
}

export interface TcpResult { mbps: number, retransmits: number | null, busy: Busy }
export interface UdpResult { pps: number, sentPps: number, lostPct: number, busy: Busy }
export interface PingResult { p50: number | null, p99: number | null, lossPct: number, replies: number, busy: Busy }

export interface TunnelResult {
  name: string
  label: string
  kind: 'limit' | 'ours' | 'peer'
  status: 'ok' | 'failed' | 'unavailable'
  /** Why it failed or could not run. */
  error: string | null
  mtu: number | null
  config: string
  tcp1: TcpResult | null
  tcp4: TcpResult | null
  udp64: UdpResult | null
  pingIdle: PingResult | null
  pingLoad: PingResult | null
  /** CPU seconds of all the tunnel's daemons together per GB carried during the single-stream TCP test. */
  cpuSecPerGB: number | null
  /** Peak RSS (VmHWM) per daemon role, kB, read at the end. */
  peakRssKb: Record<string, number | null>
  /** RSS (VmRSS) per daemon role, kB, with the tunnel up and idle, before any test (absent in older reports). */
  idleRssKb?: Record<string, number | null>
  /** Errors of single tests (the tunnel itself ran). */
  testErrors: Record<string, string>
}

export interface BenchReport {
  version: 1
  startedAt: string
  finishedAt: string
  durationSec: number
  machine: { cpus: number, model: string, kernel: string, node: string }
  options: { testSeconds: number, tests: string[], quiet: { maxBusy: number, windowMs: number, timeoutMs: number } }
  /** Mean whole-machine busy share before the measurements (0..1). */
  meanBusyBefore: number
  tunnels: TunnelResult[]
}

const fmt = (v: number | null | undefined, digits = 0): string => v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(digits)

function busyMark (b: Busy | undefined): string {
  return b !== undefined && !b.quiet ? '*' : ''
}

function peakMiB (r: TunnelResult): number | null {
  const v = Object.values(r.peakRssKb).filter((x): x is number => x !== null)
  return v.length === 0 ? null : Math.max(...v) / 1024
}

function pingCell (p: PingResult | null): string {
  if (p === null) return '–'
  return `${fmt(p.p50, 3)} / ${fmt(p.p99, 3)}${p.lossPct > 0 ? ` (${fmt(p.lossPct, 0)}% lost)` : ''}${busyMark(p.busy)}`
}

/** The result table in GitHub markdown. A '*' marks a figure taken while the machine did not get quiet. */
export function markdownTable (rep: BenchReport): string {
  const head = ['tunnel', 'TCP 1 stream Mbit/s', 'TCP 4 streams Mbit/s', 'UDP 64 B kpps received', 'ping idle p50 / p99 ms', 'ping loaded p50 / p99 ms', 'CPU s/GB', 'client RSS idle MiB', 'peak RSS MiB', 'machine busy before %']
  const rows = rep.tunnels.map((r) => {
    if (r.status !== 'ok') return [r.label, `${r.status}: ${(r.error ?? '').split('\n')[0]!.slice(0, 120).replace(/\|/g, '/')}`, '', '', '', '', '', '', '', '']
    const idle = r.idleRssKb?.client
    const busies = [r.tcp1, r.tcp4, r.udp64, r.pingIdle, r.pingLoad].flatMap((x) => x === null ? [] : [x.busy.before])
    return [
      r.label,
      r.tcp1 === null ? '–' : `${fmt(r.tcp1.mbps)}${busyMark(r.tcp1.busy)}`,
      r.tcp4 === null ? '–' : `${fmt(r.tcp4.mbps)}${busyMark(r.tcp4.busy)}`,
      r.udp64 === null ? '–' : `${fmt(r.udp64.pps / 1000, 1)}${busyMark(r.udp64.busy)}`,
      pingCell(r.pingIdle),
      pingCell(r.pingLoad),
      fmt(r.cpuSecPerGB, 2),
      fmt(idle === undefined || idle === null ? null : idle / 1024, 1),
      fmt(peakMiB(r), 1),
      busies.length === 0 ? '–' : fmt(100 * Math.max(...busies), 0)
    ]
  })
  const line = (cells: string[]): string => `| ${cells.join(' | ')} |`
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n')
}

function esc (s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

/**
 * The chart: left panel TCP throughput (1 and 4 streams) per tunnel, right
 * panel ping RTT (idle and loaded p50, p99 whiskers). The raw link is far
 * off the tunnels' scale; it is drawn as a broken bar with its value.
 */
export function svgChart (rep: BenchReport): string {
  const rows = rep.tunnels.filter((r) => r.status === 'ok')
  const W = 1010
  const rowH = 34
  const top = 56
  const H = top + rows.length * rowH + 48
  const labelW = 190
  const panelW = (W - labelW - 40) / 2
  const tx = labelW
  const lx = labelW + panelW + 30
  const peers = rows.filter((r) => r.kind !== 'limit')
  const maxT = Math.max(1, ...peers.flatMap((r) => [r.tcp1?.mbps ?? 0, r.tcp4?.mbps ?? 0]))
  const maxL = Math.max(1, ...rows.flatMap((r) => [r.pingIdle?.p99 ?? 0, r.pingLoad?.p99 ?? 0]).filter(Number.isFinite))
  const tScale = (v: number): number => Math.min(panelW - 60, (v / maxT) * (panelW - 60))
  // Latency on a log scale from 10 µs: idle RTTs (0.01–1 ms) and loaded ones (1–100+ ms) both stay readable.
  const L0 = 0.01
  const decades = Math.ceil(Math.log10(maxL / L0))
  const lScale = (v: number): number => Math.max(1, ((Math.log10(Math.max(v, L0)) - Math.log10(L0)) / decades) * (panelW - 60))
  const out: string[] = []
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`)
  out.push(`<rect width="${W}" height="${H}" fill="#fff"/>`)
  out.push(`<text x="${tx}" y="20" font-size="14" font-weight="bold">TCP throughput, Mbit/s</text>`)
  out.push(`<text x="${tx}" y="38" fill="#555"><tspan fill="#2b6cb0">■</tspan> 1 stream  <tspan fill="#90cdf4">■</tspan> 4 streams</text>`)
  out.push(`<text x="${lx}" y="20" font-size="14" font-weight="bold">ping RTT, ms, log scale (bar p50, whisker p99)</text>`)
  out.push(`<text x="${lx}" y="38" fill="#555"><tspan fill="#2f855a">■</tspan> idle  <tspan fill="#dd6b20">■</tspan> under TCP load</text>`)
  for (let d = 0; d <= decades; d++) {
    const v = L0 * 10 ** d
    const x = lx + ((panelW - 60) * d) / decades
    out.push(`<line x1="${x.toFixed(1)}" y1="${top - 6}" x2="${x.toFixed(1)}" y2="${top + rows.length * rowH}" stroke="#e2e8f0"/>`)
    out.push(`<text x="${x.toFixed(1)}" y="${top + rows.length * rowH + 14}" text-anchor="middle" font-size="10" fill="#555">${v >= 1 ? v.toFixed(0) : String(Number(v.toPrecision(1)))}</text>`)
  }
  rows.forEach((r, i) => {
    const y = top + i * rowH
    const bold = r.kind === 'ours' ? ' font-weight="bold"' : ''
    out.push(`<text x="${labelW - 8}" y="${y + 17}" text-anchor="end"${bold}>${esc(r.label)}</text>`)
    const bars: Array<[number | undefined, string, number]> = [[r.tcp1?.mbps, '#2b6cb0', 0], [r.tcp4?.mbps, '#90cdf4', 14]]
    for (const [v, color, dy] of bars) {
      if (v === undefined) continue
      const w = tScale(v)
      out.push(`<rect x="${tx}" y="${y + dy + 2}" width="${w.toFixed(1)}" height="12" fill="${color}"/>`)
      if (v > maxT) out.push(`<path d="M${tx + w - 14} ${y + dy} l6 16 M${tx + w - 8} ${y + dy} l6 16" stroke="#fff" stroke-width="3"/>`)
      out.push(`<text x="${(tx + w + 4).toFixed(1)}" y="${y + dy + 12}" font-size="10">${fmt(v)}</text>`)
    }
    const pings: Array<[PingResult | null, string, number]> = [[r.pingIdle, '#2f855a', 0], [r.pingLoad, '#dd6b20', 14]]
    for (const [p, color, dy] of pings) {
      if (p === null || p.p50 === null) continue
      const w = lScale(p.p50)
      out.push(`<rect x="${lx}" y="${y + dy + 2}" width="${Math.max(1, w).toFixed(1)}" height="12" fill="${color}"/>`)
      if (p.p99 !== null) {
        const w99 = lScale(p.p99)
        out.push(`<line x1="${(lx + w).toFixed(1)}" y1="${y + dy + 8}" x2="${(lx + w99).toFixed(1)}" y2="${y + dy + 8}" stroke="${color}"/>`)
        out.push(`<line x1="${(lx + w99).toFixed(1)}" y1="${y + dy + 4}" x2="${(lx + w99).toFixed(1)}" y2="${y + dy + 12}" stroke="${color}"/>`)
      }
      out.push(`<text x="${(lx + lScale(p.p99 ?? p.p50) + 4).toFixed(1)}" y="${y + dy + 12}" font-size="10">${fmt(p.p50, 2)} / ${fmt(p.p99, 2)}</text>`)
    }
  })
  const failed = rep.tunnels.filter((r) => r.status !== 'ok').map((r) => `${r.label}: ${r.status}`)
  const foot = `${rep.startedAt.slice(0, 16).replace('T', ' ')} UTC · ${rep.machine.cpus} CPUs · ${rep.options.testSeconds} s per test · machine busy before measurements ${fmt(100 * rep.meanBusyBefore)}% on average${failed.length > 0 ? ` · not measured: ${failed.join(', ')}` : ''}`
  out.push(`<text x="10" y="${H - 16}" fill="#555" font-size="11">${esc(foot)}</text>`)
  out.push('</svg>')
  return out.join('\n') + '\n'
}
