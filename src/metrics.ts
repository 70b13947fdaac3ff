/**
 * `--metrics HOST:PORT`: Prometheus text exposition (format 0.0.4) on
 * http://HOST:PORT/metrics. Collect-on-scrape: every scrape builds the same
 * StatusReport `lightweight-tunnel status` shows (daemon.ts status()), which
 * reads the dataplane's shared-memory counters (dataplane/stats.ts) and the
 * controllers' state on the main thread. No pipeline is asked anything, and
 * nothing on the packet path touches this module.
 *
 *   GET /metrics ──▶ collect() → StatusReport ──▶ renderMetrics() ──▶ text
 *
 * Why not prom-client: it would be the daemon's first runtime dependency (and
 * its own two), for a registry we would fill from our counters on every
 * scrape anyway; the format is lines of `name{label="v"} value`, written and
 * tested here in ~150 lines (docs/METRICS.md lists every metric).
 *
 * The endpoint is plain HTTP without authentication: it binds 127.0.0.1
 * unless the user names another host (cli/help.ts says so). Bounded: few
 * connections, short timeouts, GET/HEAD on /metrics only.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { VpnError } from './errors.js'
import type { Logger } from './log.js'
import type { LateFigures, StatusReport } from './control/status.js'

/** What the daemon hands the metrics server: the report of this instant (the same as `status --json`). */
export type Collect = () => StatusReport

export interface MetricsServer {
  /** The bound address ("127.0.0.1:9100"; the real port when 0 was asked). */
  readonly address: string
  close(): Promise<void>
}

/** Concurrent scrape connections; more are refused (a scraper needs one). */
const MAX_CONNECTIONS = 16
/** A scrape connection idle for this long is closed (ms). */
const IDLE_MS = 10_000

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

type Labels = Record<string, string>
interface Family { help: string, type: 'counter' | 'gauge', samples: Array<{ labels: Labels, value: number }> }

/** Builds the families in a fixed order; a family with no samples is left out. */
class Exposition {
  readonly #families = new Map<string, Family>()
  add (name: string, type: Family['type'], help: string, value: number | null | undefined, labels: Labels = {}): void {
    let f = this.#families.get(name)
    if (f === undefined) { f = { help, type, samples: [] }; this.#families.set(name, f) }
    if (value === null || value === undefined || !Number.isFinite(value)) return
    f.samples.push({ labels, value })
  }

  text (): string {
    const out: string[] = []
    for (const [name, f] of this.#families) {
      if (f.samples.length === 0) continue
      out.push(`# HELP ${name} ${f.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`)
      out.push(`# TYPE ${name} ${f.type}`)
      for (const s of f.samples) out.push(`${name}${labelText(s.labels)} ${formatValue(s.value)}`)
    }
    return out.join('\n') + '\n'
  }
}

function labelText (labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`)
  return parts.length === 0 ? '' : `{${parts.join(',')}}`
}

/** Label values: backslash, double quote and line feed escaped (the exposition format's rule). */
export function escapeLabel (v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
}

function formatValue (v: number): string {
  return Number.isInteger(v) ? String(v) : String(Math.round(v * 1e6) / 1e6)
}

/** "dropNotIp" → "not_ip"; "relayedPackets" → "relayed_packets". */
export function snake (s: string): string {
  return s.replace(/([a-z0-9])([A-Z])/g, '$1_$2').replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2').toLowerCase()
}

/** Dataplane and controller counters that are not drops: metric name, help, and label set. */
const TRAFFIC: Record<string, { name: string, help: string, labels?: Labels }> = {
  tunRxPackets: { name: 'lwt_tun_packets_total', help: 'Packets read from (rx) or written to (tx) the TUN device.', labels: { direction: 'rx' } },
  tunTxPackets: { name: 'lwt_tun_packets_total', help: '', labels: { direction: 'tx' } },
  tunRxBytes: { name: 'lwt_tun_bytes_total', help: 'Bytes read from (rx) or written to (tx) the TUN device.', labels: { direction: 'rx' } },
  tunTxBytes: { name: 'lwt_tun_bytes_total', help: '', labels: { direction: 'tx' } },
  udpRxPackets: { name: 'lwt_udp_packets_total', help: 'Datagrams received (rx) or sent (tx) on the UDP socket.', labels: { direction: 'rx' } },
  udpTxPackets: { name: 'lwt_udp_packets_total', help: '', labels: { direction: 'tx' } },
  udpRxBytes: { name: 'lwt_udp_bytes_total', help: 'Bytes received (rx) or sent (tx) on the UDP socket.', labels: { direction: 'rx' } },
  udpTxBytes: { name: 'lwt_udp_bytes_total', help: '', labels: { direction: 'tx' } },
  relayedPackets: { name: 'lwt_relayed_packets_total', help: 'Packets the server relayed between two clients.' },
  relayedBytes: { name: 'lwt_relayed_bytes_total', help: 'Bytes the server relayed between two clients.' },
  controlPackets: { name: 'lwt_control_packets_total', help: 'Control-plane datagrams handed from the dataplane to the control plane.' },
  tunRxSuperpackets: { name: 'lwt_tun_superpackets_total', help: 'TSO/USO superpackets read from the TUN device (each split into many tunnel packets).' },
  udpRxCoalesced: { name: 'lwt_udp_coalesced_total', help: 'UDP_GRO batches received (several datagrams in one read).' },
  fastPathPackets: { name: 'lwt_fast_path_packets_total', help: 'Packets carried end to end by the native lone-packet path.' },
  fecParitySent: { name: 'lwt_fec_parity_sent_total', help: 'FEC parity messages sent (--fec).' },
  fecGroupsRecovered: { name: 'lwt_fec_groups_total', help: 'FEC groups received that had lost data messages: rebuilt (recovered) or lost beyond their parity (unrecoverable).', labels: { result: 'recovered' } },
  fecGroupsUnrecoverable: { name: 'lwt_fec_groups_total', help: '', labels: { result: 'unrecoverable' } },
  fecPacketsRecovered: { name: 'lwt_fec_recovered_packets_total', help: 'Data messages rebuilt from FEC parity.' },
  icmpTooBigSent: { name: 'lwt_icmp_too_big_sent_total', help: 'ICMP frag-needed / Packet Too Big answers written to the TUN for inner packets too big for their path.' },
  mssClamped: { name: 'lwt_mss_clamped_total', help: 'TCP SYNs whose MSS option --mss-clamp lowered to the path.' },
  mssMalformed: { name: 'lwt_mss_malformed_total', help: 'TCP SYNs with a malformed option list, passed on untouched by --mss-clamp.' },
  mtuProbesAnswered: { name: 'lwt_mtu_probes_answered_total', help: 'Path MTU probes answered (from clients on the server, from direct peers on a client).' },
  mtuBlackHoles: { name: 'lwt_path_mtu_black_holes_total', help: 'Client: confirmed path MTUs that stopped passing while small probes passed (searched again).' },
  cookieReplies: { name: 'lwt_cookie_replies_total', help: 'Server: CookieReplies sent (under load, to inits without a valid mac2).' },
  natCheckAnswered: { name: 'lwt_nat_check_answered_total', help: 'NAT checks the server answered on its NAT-check port (listen port + 1).' },
  endpointChecks: { name: 'lwt_endpoint_checks_total', help: 'Server: return-routability checks of a client\'s new source endpoint (a Ping sent there).' },
  endpointMoves: { name: 'lwt_endpoint_moves_total', help: 'Server: clients moved to a new endpoint after its check was answered from there.' },
  handshakesCompleted: { name: 'lwt_handshakes_total', help: 'Registration handshakes with the server (client: completed, including rekeys; server: accepted, refused, auth_failed).', labels: { result: 'completed' } },
  handshakesAccepted: { name: 'lwt_handshakes_total', help: 'Registration handshakes with the server (client: completed, including rekeys; server: accepted, refused, auth_failed).', labels: { result: 'accepted' } },
  handshakesRefused: { name: 'lwt_handshakes_total', help: '', labels: { result: 'refused' } },
  handshakesAuthFailed: { name: 'lwt_handshakes_total', help: '', labels: { result: 'auth_failed' } },
  handshakesShed: { name: 'lwt_handshakes_total', help: '', labels: { result: 'shed' } },
  handshakesKeyRefused: { name: 'lwt_handshakes_total', help: '', labels: { result: 'key_refused' } },
  handshakesReplayed: { name: 'lwt_handshakes_total', help: '', labels: { result: 'replayed' } },
  handshakesWrongVersion: { name: 'lwt_handshakes_total', help: '', labels: { result: 'wrong_version' } },
  serverVersionRejects: { name: 'lwt_handshakes_total', help: '', labels: { result: 'version_rejected' } },
  portMapRequests: { name: 'lwt_port_map_requests_total', help: 'Client: PCP / NAT-PMP requests sent to the gateway (probes, mappings, renewals, deletes).' },
  portMapAnswers: { name: 'lwt_port_map_answers_total', help: 'Client: PCP / NAT-PMP answers accepted from the gateway.' },
  portMapRenewals: { name: 'lwt_port_map_renewals_total', help: 'Client: port-mapping renewals sent (retries included).' },
  portMapExpired: { name: 'lwt_port_map_expired_total', help: 'Client: port mappings that expired unrenewed.' },
  portMapGatewayReboots: { name: 'lwt_port_map_gateway_reboots_total', help: 'Client: gateway restarts noticed by its epoch going backwards.' },
  portMapFailures: { name: 'lwt_port_map_failures_total', help: 'Client: times the gateway gave no mapping (no answer in 3 tries, or refused).' },
  portMapStaleDeleted: { name: 'lwt_port_map_stale_deleted_total', help: 'Client: mappings a killed run left, deleted at start.' },
  upnpRequests: { name: 'lwt_upnp_requests_total', help: 'Client: UPnP IGD requests sent (SSDP M-SEARCH datagrams, description and SOAP requests).' },
  upnpAnswers: { name: 'lwt_upnp_answers_total', help: 'Client: UPnP IGD answers accepted (SSDP, HTTP).' },
  upnpRefused: { name: 'lwt_upnp_refused_total', help: 'Client: UPnPError answers to SOAP requests (725, 718, 606 ...).' },
  upnpRenewals: { name: 'lwt_upnp_renewals_total', help: 'Client: UPnP mapping renewals started (at half the lease).' },
  upnpExpired: { name: 'lwt_upnp_expired_total', help: 'Client: UPnP mappings whose lease ran out unrenewed.' },
  upnpFailures: { name: 'lwt_upnp_failures_total', help: 'Client: times UPnP IGD gave no mapping (no IGD, a refusal, a bad answer).' },
  upnpStaleDeleted: { name: 'lwt_upnp_stale_deleted_total', help: 'Client: UPnP mappings a killed run left, deleted at start.' }
}

/** Status numbers that are levels, not counts: metric name, help, labels. */
const GAUGES: Record<string, { name: string, help: string, labels: Labels }> = {
  routesApproved: { name: 'lwt_client_routes', help: 'Server: routes advertised by the registered clients, by the server\'s decision (docs/PROTOCOL.md §11a).', labels: { state: 'approved' } },
  routesPending: { name: 'lwt_client_routes', help: '', labels: { state: 'pending' } },
  routesRefused: { name: 'lwt_client_routes', help: '', labels: { state: 'refused' } }
}

/** Drop counters that do not start with "drop": their reason label. */
const OTHER_DROPS: Record<string, string> = {
  p2pDropped: 'control_invalid',
  peerKeyMismatch: 'peer_key_mismatch',
  natCheckDropped: 'nat_check_invalid',
  portMapForged: 'port_map_forged',
  portMapMalformed: 'port_map_malformed',
  upnpSsdpIgnored: 'upnp_ssdp_ignored',
  upnpMalformed: 'upnp_malformed',
  mtuProbesDropped: 'mtu_probe_invalid',
  controlDropped: 'control_invalid',
  mtuAcksDropped: 'mtu_ack_invalid'
}

const DROPS_HELP = 'Packets dropped, by reason (docs/METRICS.md explains each reason).'

/** The StatusReport of one instant as Prometheus text. Pure; the tests parse its output. */
export function renderMetrics (r: StatusReport, proc: ProcessFacts = processFacts()): string {
  const e = new Exposition()
  e.add('lwt_info', 'gauge', 'Always 1; labels: version, mode (server|client), TUN device, tunnel address.', 1,
    { version: r.version, mode: r.mode, dev: r.dev, tunnel_ip: `${r.tunnelIp}/${r.prefix}` })
  if (r.dataplane !== undefined) {
    const d = r.dataplane
    e.add('lwt_dataplane_info', 'gauge', 'Always 1; labels: thread placement and the offloads the kernel granted.', 1, {
      placement: d.placement, tun_offload: d.tunOffload, udp_gro: d.udpGro ? 'on' : 'off', fast_path: d.fastPath === undefined ? 'unknown' : d.fastPath ? 'on' : 'off'
    })
  }
  e.add('lwt_state', 'gauge', 'Always 1; label state: the daemon\'s state as status shows it (client: registering, registered, unresponsive, rejected, reconnecting; server: running).', 1, { state: r.state })
  e.add('lwt_problem', 'gauge', '1 while status shows a PROBLEM line (refused, wrong key, server not answering), else 0.', r.problem === null ? 0 : 1)
  e.add('lwt_uptime_seconds', 'gauge', 'Seconds since the daemon started.', r.uptimeSec)

  for (const [k, v] of Object.entries(r.counters ?? {})) {
    const t = TRAFFIC[k]
    const g = GAUGES[k]
    if (g !== undefined) {
      e.add(g.name, 'gauge', g.help, v, g.labels)
    } else if (t !== undefined) {
      e.add(t.name, 'counter', t.help, v, t.labels)
    } else if (k.startsWith('drop')) {
      e.add('lwt_drops_total', 'counter', DROPS_HELP, v, { reason: snake(k.slice(4)) })
    } else if (OTHER_DROPS[k] !== undefined) {
      e.add('lwt_drops_total', 'counter', DROPS_HELP, v, { reason: OTHER_DROPS[k] })
    } else {
      e.add(`lwt_${snake(k)}_total`, 'counter', `The counter ${k} of status --json.`, v)
    }
  }

  if (r.portMapping !== undefined && r.portMapping !== null) {
    const m = r.portMapping
    e.add('lwt_port_mapping_info', 'gauge', 'Client: always 1; labels: the port mapping\'s state (mapped, probing, mapping, failed, idle), protocol (pcp, nat-pmp, upnp) and external endpoint.', 1,
      { state: m.state, protocol: m.protocol ?? '', external: m.external ?? '' })
    e.add('lwt_port_mapping_lifetime_seconds', 'gauge', 'Client: seconds the port mapping has left (absent without one).', m.lifetimeLeftSec)
  }

  const counts = { direct: 0, relay: 0, connecting: 0 }
  let sessions = 0
  for (const p of r.peers) {
    counts[p.path]++
    if (p.session === 'established') sessions++
  }
  for (const path of ['direct', 'relay', 'connecting'] as const) {
    e.add('lwt_peers', 'gauge', 'Peers by path: direct, relay (through the server) or connecting. A server counts its registered clients as direct.', counts[path], { path })
  }
  e.add('lwt_sessions', 'gauge', 'Peers with an established session.', sessions)
  if (r.mode === 'server') e.add('lwt_registered_clients', 'gauge', 'Clients registered with this server.', r.peers.length)

  for (const p of r.peers) {
    const peer = { peer: p.tunnelIp }
    e.add('lwt_peer_info', 'gauge', 'Always 1 per peer; labels: role (server|client), path (direct|relay|connecting), endpoint packets go to, session state.', 1,
      { peer: p.tunnelIp, role: p.role, path: p.path, endpoint: p.endpoint ?? '', session: p.session })
    e.add('lwt_peer_rtt_seconds', 'gauge', 'Round trip to the peer on its current path: the lowest of the last 5 control Ping/Pong round trips (absent until measured; docs/METRICS.md).', p.rttMs === null ? null : p.rttMs / 1000, peer)
    e.add('lwt_peer_last_seen_seconds', 'gauge', 'Seconds since the last authenticated packet (data or control) from the peer.', p.lastSeenSec, peer)
    e.add('lwt_peer_tx_packets_total', 'counter', 'Tunnel packets sent to the peer.', p.txPackets, peer)
    e.add('lwt_peer_tx_bytes_total', 'counter', 'Tunnel payload bytes sent to the peer.', p.txBytes, peer)
    e.add('lwt_peer_rx_packets_total', 'counter', 'Tunnel packets received from the peer.', p.rxPackets, peer)
    e.add('lwt_peer_rx_bytes_total', 'counter', 'Tunnel payload bytes received from the peer.', p.rxBytes, peer)
    if (p.pmtu != null && p.pmtu.mtu !== null) {
      e.add('lwt_peer_path_mtu_bytes', 'gauge', 'Client: the path MTU to the peer (outer IP bytes) found by probing; label state (confirmed, black-hole, searching); a relayed peer shows the server path\'s (via relay).',
        p.pmtu.mtu, { peer: p.tunnelIp, state: p.pmtu.state, via: p.pmtu.via ?? 'own' })
    }
    if (p.fec !== undefined) {
      e.add('lwt_peer_fec_parity_per_data', 'gauge', 'With --fec: parity messages sent per data message on the peer\'s session (PARITY/DATA), 0 when the session runs without FEC (the peer does not use it).',
        p.fec === null ? 0 : p.fec.parity / p.fec.data, peer)
    }
  }

  // The control plane's timing health (control/ticker.ts): how late its timer runs fire, the main loop's delay
  // (sampled only on request, so usually absent), runs > 20 ms late.
  const cp = r.controlPlane
  if (cp !== undefined) {
    const quantiles = (name: string, help: string, f: LateFigures | null): void => {
      if (f === null) return
      e.add(name, 'gauge', help, f.p50 / 1000, { quantile: '0.5' })
      e.add(name, 'gauge', '', f.p99 / 1000, { quantile: '0.99' })
      e.add(name, 'gauge', '', f.max / 1000, { quantile: '1' })
    }
    quantiles('lwt_control_plane_timer_late_seconds', 'How late the control-plane timer fired against when it was due, over the last 10 s (quantile 1 = the maximum).', cp.tickLateMs)
    quantiles('lwt_control_plane_loop_delay_seconds', 'The main event loop\'s delay over the last 10 s (quantile 1 = the maximum); present only while sampled (a control request with sampleLoop).', cp.loopDelayMs)
    e.add('lwt_control_plane_timer_runs_total', 'counter', 'Control-plane timer runs since start.', cp.ticks)
    e.add('lwt_control_plane_timer_runs_late_total', 'counter', 'Control-plane timer runs more than 20 ms late since start.', cp.ticksLate)
  }

  e.add('process_cpu_seconds_total', 'counter', 'User and system CPU time of the daemon process, seconds.', proc.cpuSeconds)
  e.add('process_resident_memory_bytes', 'gauge', 'Resident memory of the daemon process, bytes.', proc.rssBytes)
  e.add('process_start_time_seconds', 'gauge', 'Start time of the daemon process, seconds since the epoch.', proc.startTimeSeconds)
  return e.text()
}

export interface ProcessFacts { cpuSeconds: number, rssBytes: number, startTimeSeconds: number }

function processFacts (): ProcessFacts {
  const cpu = process.cpuUsage()
  return {
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    rssBytes: process.memoryUsage.rss(),
    startTimeSeconds: Math.round((Date.now() - process.uptime() * 1000) / 1000)
  }
}

/**
 * Serves `collect()` as Prometheus text on http://host:port/metrics until
 * close(). Rejects with ERR_METRICS when it cannot listen (port in use,
 * address not on this host, a privileged port).
 */
export async function startMetricsServer (host: string, port: number, collect: Collect, log: Logger): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    if (path !== '/metrics') {
      res.writeHead(path === '/' ? 200 : 404, { 'content-type': 'text/plain; charset=utf-8' })
      res.end(path === '/' ? 'lightweight-tunnel metrics: GET /metrics\n' : 'not found; the metrics are at /metrics\n')
      return
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' })
      res.end('only GET and HEAD\n')
      return
    }
    let body: string
    try {
      body = renderMetrics(collect())
    } catch (err) {
      log.warn('metrics scrape failed', { err })
      res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' })
      res.end('the metrics could not be collected; see the daemon log\n')
      return
    }
    res.writeHead(200, { 'content-type': CONTENT_TYPE, 'content-length': Buffer.byteLength(body) })
    res.end(req.method === 'HEAD' ? undefined : body)
  })
  server.maxConnections = MAX_CONNECTIONS
  server.keepAliveTimeout = IDLE_MS
  server.headersTimeout = IDLE_MS
  server.requestTimeout = IDLE_MS
  server.on('clientError', (_err, sock) => { sock.destroy() })
  const where = `${host}:${port}`
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      const hint = err.code === 'EADDRINUSE'
        ? `another program (or another daemon) uses it: choose another --metrics port, or find it with: ss -ltnp 'sport = :${port}'`
        : err.code === 'EADDRNOTAVAIL'
          ? `${host} is not an address of this host; use 127.0.0.1 (the default) or one of this host's addresses`
          : err.code === 'EACCES' ? 'ports below 1024 need privileges; use a port such as 9100' : undefined
      const why = err.code === 'EADDRINUSE' ? 'the port is already in use' : err.message
      reject(new VpnError('ERR_METRICS', `cannot serve metrics on ${where}: ${why}`, { cause: err, hint }))
    })
    server.listen(port, host, () => { server.removeAllListeners('error'); resolve() })
  })
  server.on('error', (err) => { log.warn('metrics server error', { err }) })
  const a = server.address() as AddressInfo
  let closing: Promise<void> | null = null
  return {
    address: `${a.address}:${a.port}`,
    close (): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
      return closing
    }
  }
}
