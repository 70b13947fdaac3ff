import type { P2pStatus } from './direct-path.js'
import type { PortMapStatus } from './port-mapping.js'
import type { TransportReport } from '../transport/daemon-transport.js'
import type { PathMtuReport } from './path-mtu-client.js'

/**
 * TUN offloads the kernel accepted: 'tso+uso' (TCP superpackets over IPv4 and IPv6, UDP ones over both),
 * 'tso' (TCP over IPv4 and IPv6), 'tso4' (TCP over IPv4 only), or 'none'.
 */
export type TunOffload = 'tso+uso' | 'tso' | 'tso4' | 'none'

/**
 * The shape of `lightweight-tunnel status --json`. The control socket's
 * `status` command returns exactly this object; the CLI renders it as a table.
 */
export type PathKind = 'direct' | 'relay' | 'connecting'

export interface PeerStatus {
  /** The peer's tunnel address ("10.0.0.3"). */
  tunnelIp: string
  /** Its IPv6 tunnel address ("fd00:77::3"), or null (absent: none). */
  tunnel6?: string | null
  /** Server-assigned id of the client (0 for the server itself). */
  peerId: number
  /** 'server' for a client's view of its server, else 'client'. */
  role: 'server' | 'client'
  /** Fingerprint of the node's static key ("SHA256:…", identity/key-text.ts), or null before it is known. */
  key?: string | null
  path: PathKind
  /** Where packets to this peer are sent now ("198.51.100.7:9000"; over TCP "tcp:198.51.100.7:41000"), or null. */
  endpoint: string | null
  /** The transport of that path (transport/conn-table.ts transportOf); absent: udp. */
  transport?: 'udp' | 'tcp' | 'faketcp'
  /** The peer's public endpoint as the server sees it, or null. */
  publicEndpoint: string | null
  /** Round trip over the current path: the lowest of the last 5 control Ping/Pong round trips (control/rtt.ts), ms, or null when unmeasured. */
  rttMs: number | null
  txBytes: number
  rxBytes: number
  txPackets: number
  rxPackets: number
  /** 'none' | 'handshaking' | 'established' */
  session: string
  /** Seconds since an authenticated packet (data or control) last arrived from this peer, or null. */
  lastSeenSec: number | null
  /** Why the path is what it is, in plain words, or null. */
  note: string | null
  /**
   * Client peers of a client: the direct-path view (candidates tried, our NAT
   * and the peer's as learned, why the path is relay, time since the last
   * pong); null with --no-p2p. Absent for the server entry and on a server.
   */
  p2p?: P2pStatus | null
  /**
   * Client peers of a client with --fec: the FEC of the current session
   * (our sending parameters; both sides offered it), or null when the
   * session runs without (the peer did not offer it, or no session yet).
   * Absent without --fec. Groups recovered etc.: counters.fec*.
   */
  fec?: { data: number, parity: number } | null
  /**
   * A client's paths: the path MTU found by probing (control/path-mtu.ts; outer IP bytes), its state
   * ('searching' | 'confirmed' | 'black-hole' (a confirmed size stopped passing: searching again) |
   * 'unanswered' (the other end does not answer probes) | 'idle'), the largest inner packet sent on it
   * (null: not limited) and the time to find it; a relayed peer shows the server's path (via 'relay').
   * null before the path is up. Absent on a server.
   */
  pmtu?: PathMtuReport | null
  /**
   * Server: the routes this client advertised, each with the server's
   * decision (approved, pending: not approved by --approve-routes, refused:
   * overlapping the tunnel network, the server's or another node's route)
   * and why. Absent when it advertised none.
   */
  routes?: RouteStatus[]
}

export interface RouteStatus {
  /** "192.168.50.0/24". */
  prefix: string
  state: 'approved' | 'pending' | 'refused'
  /** Why it is pending or refused (naming the fix or the other holder), else null. */
  reason: string | null
}

/** A node's subnet routes (issue 11). */
export interface RoutesReport {
  /** The networks this node advertises (--advertise-routes). */
  advertised: string[]
  /**
   * Routes of other nodes in this node's kernel table (--accept-routes;
   * dataplane/kernel-routes.ts): installed, or skipped with the reason; `via`
   * is the node serving it. Empty with --no-accept-routes.
   */
  kernel: Array<{ prefix: string, via: string, state: 'installed' | 'skipped', reason: string | null }>
  /** Server: --client-isolation is on (clients reach the server and its routes, never each other). */
  clientIsolation?: boolean
}

export interface StatusReport {
  mode: 'server' | 'client'
  version: string
  dev: string
  tunnelIp: string
  prefix: number
  /** This node's IPv6 tunnel address with its prefix length ("fd00:77::2/64"), or null (absent: none). */
  tunnel6?: string | null
  mtu: number
  /** Server: "0.0.0.0:9000". Client: the server address. */
  listen: string | null
  server: string | null
  /**
   * Client: 'resolving' (the --remote name does not resolve yet; `problem`
   * says why; server-name.ts) | 'registering' | 'registered' | 'unresponsive'
   * (registered, but the server has not answered for 2 keepalives + 1 s;
   * `problem` says since when) | 'rejected' | 'reconnecting'. Server: 'running'.
   */
  state: string
  /** Plain-language reason when something is wrong (e.g. the key was rejected), else null. */
  problem: string | null
  /** This node's static public key: base64 and fingerprint (identity/key-text.ts). */
  nodeKey?: { publicKey: string, fingerprint: string }
  uptimeSec: number
  peers: PeerStatus[]
  /** Dataplane counters, by name (packets, bytes, drops by reason). */
  counters: Record<string, number>
  /** How the packet path runs: thread placement and the kernel offloads it got (absent before the dataplane started). */
  dataplane?: DataplaneInfo
  /** How late the control plane's timers run (absent before the daemon's timer started). */
  controlPlane?: ControlPlaneInfo
  /** Subnet routes and isolation (absent from daemons before issue 11). */
  routes?: RoutesReport
  /** A client's port mapping (control/port-mapping.ts): protocol, external endpoint, lifetime left, or why there is none; null when off (--no-port-mapping, --no-p2p) or on a server. */
  portMapping?: PortMapStatus | null
  /** The transports (transport/daemon-transport.ts): the server's TCP listener, or the client's server path. */
  transport?: TransportReport
  /** The fake-TCP link (--transport faketcp, --faketcp): dataplane/faketcp-link.ts status(). */
  faketcp?: object
}

/** Recent lateness figures, ms (nearest-rank percentiles; 0 when nothing was recorded). */
export interface LateFigures { p50: number, p99: number, max: number }

/** The control plane's timing health: control/ticker.ts (Ticker, LoopDelayMonitor). */
export interface ControlPlaneInfo {
  /** How late the control-plane timer (keepalives, heartbeats, failover) fired against when due, over the last 10 s. */
  tickLateMs: LateFigures
  /**
   * The main event loop's delay (monitorEventLoopDelay, 10 ms resolution) over the last 10 s; p99 is the
   * worst second's. Sampled only for 10 minutes after a status request with `sampleLoop: true` (the
   * sampling costs an idle daemon CPU and its idle ping latency), so null unless asked for: the first
   * such request starts it, ask again a second later.
   */
  loopDelayMs: LateFigures | null
  /** Timer runs since start. */
  ticks: number
  /** Of those, runs more than 20 ms late (LATE_MS). */
  ticksLate: number
}

export interface DataplaneInfo {
  /** 'inline' | 'fused' | 'split' (--placement). */
  placement: string
  /** TUN offloads the kernel accepted (TunOffload). */
  tunOffload: TunOffload
  /** UDP_GRO on the socket (a peer's GSO batch arrives as one datagram). */
  udpGro: boolean
  /** The native lone-packet path is on (--fast-path); counters.fastPathPackets counts what it carried. */
  fastPath?: boolean
}
