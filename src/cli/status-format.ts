/**
 * Renders a StatusReport (the control socket's `status` answer) for people:
 * a header about this node, then one table row per peer. `status --json`
 * prints the report itself instead; this module never changes its content.
 *
 *   lightweight-tunnel 0.1.0, client on lwt0
 *     tunnel address  10.0.0.2/24 (mtu 1400)   (", fd00:77::2/64" after the CIDR with an IPv6 address)
 *     node key        SHA256:Zmh6rfhivXdsj8GL (public key 4Yrt…=)
 *     server          198.51.100.1:9000
 *     state           registered
 *     uptime          1h 02m 03s
 *     dataplane       inline; TUN offloads tso+uso; UDP GRO on
 *     control plane   timer late p50 1.2 ms, p99 3.4 ms, max 12 ms; loop delay p99 11 ms, max 40 ms; 3 of 4032 runs > 20 ms late
 *
 *   (an IPV6 column after TUNNEL IP when some peer has an IPv6 tunnel address)
 *   TUNNEL IP  ROLE    KEY                      PATH    ENDPOINT            RTT      TX       RX       SESSION      LAST SEEN  NOTE
 *   10.0.0.1   server  SHA256:q3Xk0mJd9cOaP1sQ  relay   198.51.100.1:9000   12.3 ms  1.5 MiB  640 KiB  established  2s ago     -
 *
 *   direct paths (our NAT: cone):
 *   PEER       PEER NAT   STRATEGY  LAST PONG  TRIED  CANDIDATES                                        WHY RELAY
 *   10.0.0.3   symmetric  punch     0s ago     2/3    198.51.100.9:4100 public confirmed 1.2 ms, ...    -
 */
import type { PeerStatus, StatusReport } from '../control/status.js'
import type { PortMapStatus } from '../control/port-mapping.js'

/** "512 B", "1.5 KiB", "12.0 MiB", ... (binary units). */
export function formatBytes (n: number): string {
  if (!Number.isFinite(n) || n < 0) return '-'
  if (n < 1024) return `${n} B`
  const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB']
  let v = n / 1024
  let i = 0
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++ }
  return `${v < 100 ? v.toFixed(1) : Math.round(v).toString()} ${units[i]}`
}

/** "45s", "3m 05s", "1h 02m 03s", "2d 03h 04m". */
export function formatDuration (sec: number): string {
  if (!Number.isFinite(sec) || sec < 0) return '-'
  const s = Math.floor(sec)
  const d = Math.floor(s / 86400)
  const h = Math.floor((s % 86400) / 3600)
  const m = Math.floor((s % 3600) / 60)
  const r = s % 60
  const p2 = (x: number): string => String(x).padStart(2, '0')
  if (d > 0) return `${d}d ${p2(h)}h ${p2(m)}m`
  if (h > 0) return `${h}h ${p2(m)}m ${p2(r)}s`
  if (m > 0) return `${m}m ${p2(r)}s`
  return `${r}s`
}

function formatRtt (ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return '-'
  return ms < 10 ? `${ms.toFixed(2)} ms` : ms < 100 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`
}

/** "0.4 ms", "12 ms": a lateness figure (one decimal below 10 ms). */
function formatLate (ms: number): string {
  if (!Number.isFinite(ms)) return '-'
  return ms < 10 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`
}

function formatLastSeen (sec: number | null): string {
  if (sec === null || !Number.isFinite(sec)) return '-'
  return `${formatDuration(sec)} ago`
}

/** Makes control characters from a (possibly hostile) peer's strings harmless on a terminal. */
function clean (s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?')
}

function dash (s: string | null | undefined): string {
  return s === null || s === undefined || s === '' ? '-' : clean(s)
}

const COLUMNS = ['TUNNEL IP', 'ROLE', 'KEY', 'PATH', 'ENDPOINT', 'RTT', 'TX', 'RX', 'SESSION', 'LAST SEEN', 'NOTE'] as const

function peerRow (p: PeerStatus): string[] {
  return [
    dash(p.tunnelIp),
    dash(p.role),
    dash(p.key),
    dash(p.path),
    dash(p.endpoint),
    formatRtt(p.rttMs),
    formatBytes(p.txBytes),
    formatBytes(p.rxBytes),
    dash(p.session),
    formatLastSeen(p.lastSeenSec),
    dash(p.note)
  ]
}

/** Left-aligned columns two spaces apart; the last column is not padded. */
function table (header: readonly string[], rows: readonly string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map(r => r[i]!.length)))
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()
  return [line(header), ...rows.map(line)]
}

/** Sorts peers by tunnel address numerically (the server's own entry first). */
function ipKey (ip: string): number {
  const o = ip.split('.').map(Number)
  return o.length === 4 && o.every(x => Number.isInteger(x)) ? ((o[0]! << 24) >>> 0) + (o[1]! << 16) + (o[2]! << 8) + o[3]! : Number.MAX_SAFE_INTEGER
}

/** Subnet routes: the server's decisions per client, and the routes in our kernel table. */
function routeLines (report: StatusReport): string[] {
  const out: string[] = []
  const decided = report.peers.filter(p => p.routes !== undefined && p.routes.length > 0)
  if (decided.length > 0) {
    out.push('', 'client routes:')
    const rows = decided.flatMap(p => p.routes!.map(r => [dash(p.tunnelIp), clean(r.prefix), r.state, r.reason === null ? '-' : clean(r.reason)]))
    out.push(...table(['CLIENT', 'ROUTE', 'STATE', 'WHY'], rows))
  }
  const kernel = report.routes?.kernel ?? []
  if (kernel.length > 0) {
    out.push('', 'routes in the kernel table:')
    out.push(...table(['ROUTE', 'VIA', 'STATE', 'WHY'], kernel.map(k => [clean(k.prefix), clean(k.via), k.state, k.reason === null ? '-' : clean(k.reason)])))
  }
  return out
}

const PORT_MAP_PROTOCOL: Record<string, string> = { pcp: 'PCP', 'nat-pmp': 'NAT-PMP', upnp: 'UPnP' }

/** "PCP 100.64.1.2:40000 → port 9000, lifetime 7200 s (3598 s left)", or the state and why there is none. */
export function formatPortMapping (m: PortMapStatus): string {
  if (m.state === 'mapped') {
    const life = m.lifetimeSec === 0 ? 'a permanent lease (the router grants no other; deleted on exit)' : `lifetime ${m.lifetimeSec ?? '-'} s (${m.lifetimeLeftSec ?? '-'} s left)`
    return `${PORT_MAP_PROTOCOL[m.protocol ?? ''] ?? dash(m.protocol)} ${dash(m.external)} → port ${m.internalPort} via gateway ${dash(m.gateway)}, ${life}; offered to peers`
  }
  const hint = m.state === 'failed' ? ' (turn on UPnP, NAT-PMP or PCP in the router so that peers behind symmetric NATs can reach this node directly)' : ''
  return `none (${clean(m.state)}): ${clean(m.note)}${hint}`
}

export function formatStatus (report: StatusReport): string {
  const out: string[] = []
  out.push(`lightweight-tunnel ${dash(report.version)}, ${dash(report.mode)} on ${dash(report.dev)}`)
  const kv: Array<[string, string]> = []
  kv.push(['tunnel address', `${dash(report.tunnelIp)}/${report.prefix}${report.tunnel6 != null ? `, ${clean(report.tunnel6)}` : ''} (mtu ${report.mtu})`])
  if (report.nodeKey !== undefined) kv.push(['node key', `${clean(report.nodeKey.fingerprint)} (public key ${clean(report.nodeKey.publicKey)})`])
  if (report.mode === 'server') kv.push(['listening on', dash(report.listen)])
  else {
    kv.push(['server', dash(report.server)])
    if (report.listen !== null) kv.push(['local address', dash(report.listen)])
  }
  kv.push(['state', dash(report.state)])
  if (report.problem !== null && report.problem !== '') kv.push(['PROBLEM', clean(report.problem)])
  kv.push(['uptime', formatDuration(report.uptimeSec)])
  if (report.dataplane !== undefined) {
    const d = report.dataplane
    kv.push(['dataplane', `${clean(d.placement)}; TUN offloads ${clean(d.tunOffload)}; UDP GRO ${d.udpGro ? 'on' : 'off'}${d.fastPath === undefined ? '' : `; fast path ${d.fastPath ? 'on' : 'off'}`}`])
  }
  if (report.controlPlane !== undefined) {
    const c = report.controlPlane
    kv.push(['control plane', `timer late p50 ${formatLate(c.tickLateMs.p50)}, p99 ${formatLate(c.tickLateMs.p99)}, max ${formatLate(c.tickLateMs.max)}; ` +
      (c.loopDelayMs === null ? 'loop delay not sampled' : `loop delay p99 ${formatLate(c.loopDelayMs.p99)}, max ${formatLate(c.loopDelayMs.max)}`) +
      `; ${c.ticksLate} of ${c.ticks} runs > 20 ms late`])
  }
  if (report.routes !== undefined) {
    const r = report.routes
    if (r.clientIsolation === true) kv.push(['isolation', 'on: clients reach this server and its routes, never each other'])
    if (r.advertised.length > 0) kv.push(['own routes', r.advertised.map(clean).join(', ')])
  }
  if (report.portMapping !== undefined && report.portMapping !== null) kv.push(['port mapping', formatPortMapping(report.portMapping)])
  const tr = report.transport
  if (tr?.tcpListen !== undefined) kv.push(['tcp', tr.tcpListen === null ? 'off (--no-tcp)' : `accepting on ${clean(tr.tcpListen)}`])
  if (tr?.client !== undefined) {
    const c = tr.client
    kv.push(['transport', `${c.transport}${c.tcp !== null ? ` to ${clean(c.tcp)}` : ''} (--transport ${c.mode})${c.reason !== null ? `: ${clean(c.reason)}` : ''}`])
  }
  // The fake-TCP link (dataplane/faketcp-link.ts status()): its state, port(s) and nftables table.
  if (report.faketcp !== undefined) kv.push(['fake TCP', Object.entries(report.faketcp).filter(([k]) => k !== 'transport').map(([k, v]) => `${clean(k)} ${clean(String(v))}`).join(', ')])
  const direct = report.peers.filter(p => p.path === 'direct').length
  const relay = report.peers.filter(p => p.path === 'relay').length
  kv.push(['peers', `${report.peers.length} (${direct} direct, ${relay} relayed, ${report.peers.length - direct - relay} connecting)`])
  const kw = Math.max(...kv.map(([k]) => k.length))
  for (const [k, v] of kv) out.push(`  ${k.padEnd(kw)}  ${v}`)
  out.push('')
  if (report.peers.length === 0) {
    out.push(report.mode === 'server' ? 'no clients registered' : 'no peers yet')
  } else {
    const peers = [...report.peers].sort((a, b) => ipKey(a.tunnelIp) - ipKey(b.tunnelIp))
    // The IPv6 column only where some peer has an IPv6 tunnel address.
    const six = peers.some(p => p.tunnel6 != null)
    const rows = peers.map(p => six ? [dash(p.tunnelIp), dash(p.tunnel6), ...peerRow(p).slice(1)] : peerRow(p))
    out.push(...table(six ? [COLUMNS[0], 'IPV6', ...COLUMNS.slice(1)] : COLUMNS, rows))
  }
  const withP2p = report.peers.filter(p => p.p2p !== undefined && p.p2p !== null)
  if (withP2p.length > 0) {
    out.push('')
    out.push(`direct paths (our NAT: ${dash(withP2p[0]!.p2p!.localNat)}):`)
    const rows = [...withP2p].sort((a, b) => ipKey(a.tunnelIp) - ipKey(b.tunnelIp)).map(p => {
      const x = p.p2p!
      const cands = x.candidates.map(c => `${clean(c.endpoint)} ${c.kind} ${c.state}${c.rttMs !== null ? ` ${formatRtt(c.rttMs)}` : ''}`).join(', ')
      return [
        dash(p.tunnelIp),
        dash(x.peerNat),
        dash(x.strategy),
        x.lastPongSec === null ? '-' : formatLastSeen(x.lastPongSec),
        `${x.candidatesTried}/${x.candidates.length}`,
        cands === '' ? '-' : cands,
        x.relayReason === null ? '-' : clean(x.relayReason)
      ]
    })
    out.push(...table(['PEER', 'PEER NAT', 'STRATEGY', 'LAST PONG', 'TRIED', 'CANDIDATES', 'WHY RELAY'], rows))
  }
  const withFec = report.peers.filter(p => p.fec !== undefined)
  if (withFec.length > 0) {
    const c = report.counters ?? {}
    out.push('')
    out.push(`FEC (--fec; recovered groups ${c.fecGroupsRecovered ?? 0}, packets ${c.fecPacketsRecovered ?? 0}, unrecoverable groups ${c.fecGroupsUnrecoverable ?? 0}, parity sent ${c.fecParitySent ?? 0}, malformed parity dropped ${c.dropFecMalformed ?? 0}):`)
    for (const p of [...withFec].sort((a, b) => ipKey(a.tunnelIp) - ipKey(b.tunnelIp))) {
      out.push(`  ${dash(p.tunnelIp)}  ${p.fec === null || p.fec === undefined ? 'off (the peer does not use --fec, or no session yet)' : `${p.fec.data},${p.fec.parity} (${p.fec.parity} parity after every ${p.fec.data} data messages)`}`)
    }
  }
  out.push(...pathMtuLines(report))
  out.push(...routeLines(report))
  const counters = Object.entries(report.counters ?? {}).filter(([, v]) => v !== 0).sort(([a], [b]) => a.localeCompare(b))
  if (counters.length > 0) {
    out.push('')
    out.push('counters (non-zero):')
    let line = ' '
    for (const [k, v] of counters) {
      const item = ` ${clean(k)}=${v}`
      if (line.length + item.length > 100) { out.push(line); line = ' ' }
      line += item
    }
    if (line.trim() !== '') out.push(line)
  }
  return out.join('\n') + '\n'
}

/** "path MTU:" one line per path (control/path-mtu-client.ts), when the report has any. */
function pathMtuLines (report: StatusReport): string[] {
  const withMtu = report.peers.filter(p => p.pmtu != null)
  if (withMtu.length === 0) return []
  const rows = [...withMtu].sort((a, b) => ipKey(a.tunnelIp) - ipKey(b.tunnelIp)).map(p => {
    const m = p.pmtu!
    return [
      dash(p.tunnelIp) + (p.role === 'server' ? ' (server)' : ''),
      m.mtu === null ? '-' : String(m.mtu),
      m.state === 'black-hole' ? 'black hole suspected, searching' : m.state,
      m.innerMax === null ? 'no limit' : `inner ≤ ${m.innerMax}`,
      m.foundInMs === null ? '-' : `${(m.foundInMs / 1000).toFixed(1)} s`,
      m.via === 'relay' ? 'the server\'s path (relayed)' : 'own path'
    ]
  })
  return ['', 'path MTU (probed; outer IP bytes):', ...table(['PEER', 'MTU', 'STATE', 'SENDS', 'FOUND IN', 'PATH'], rows)]
}
