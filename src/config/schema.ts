/**
 * The validated, frozen configuration of one daemon. Produced once by
 * loadConfig() in config/load.ts from the settings cli/args.ts parsed out of
 * argv and/or the JSON file named by -c; nothing else interprets options.
 */
import type { IpPrefix } from '../wire/prefix.js'

export type Mode = 'server' | 'client'

/**
 * How the dataplane's stages map onto worker threads (docs/ARCHITECTURE.md,
 * docs/PERFORMANCE.md): 'split' = one worker per direction (TUN→UDP and
 * UDP→TUN); 'fused' = one worker runs both directions; 'inline' = the main
 * thread runs both directions (no worker thread).
 */
export type Placement = 'split' | 'fused' | 'inline'
export const PLACEMENTS: readonly Placement[] = ['split', 'fused', 'inline']

export interface Ipv4Cidr {
  /** Dotted quad, e.g. "10.0.0.2". */
  readonly ip: string
  /** Host-order 32-bit value of `ip`. */
  readonly ipInt: number
  readonly prefix: number
}

export interface HostPort {
  readonly host: string
  readonly port: number
}

export interface Config {
  readonly mode: Mode
  /** Server: where to listen (default 0.0.0.0:9000). Client: local bind (default 0.0.0.0:0). */
  readonly listen: HostPort
  /** Client only: the server's address (hostname allowed; resolved at start). */
  readonly remote: HostPort | null
  /** Own tunnel address and the network prefix. */
  readonly tun: Ipv4Cidr
  /**
   * The IPv6 tunnel address with its prefix length (host bits kept, e.g.
   * fd00:77::2/64), or null: IPv4 only. Not a setting of its own: it is the
   * IPv6 half of `tun` ("10.0.0.2/24,fd00:77::2/64"; config/tun-address.ts).
   */
  readonly tun6: IpPrefix | null
  /**
   * The network's shared secret (stretched later by crypto/kdf.ts), from the
   * first of: -k / --key-file on the command line, LWT_KEY in the
   * environment, "key" / "keyFile" in the config file (config/load.ts readKey).
   */
  readonly key: string
  /** The file the key was read from (absolute), or null when it came from -k, LWT_KEY or the config's "key". */
  readonly keyFile: string | null
  /**
   * Optional network name, mixed into the psk's salt with the tunnel network
   * (crypto/kdf.ts pskSalt): networks that share a secret and a CIDR differ
   * only by it. null: unnamed. Must be the same on every node.
   */
  readonly networkName: string | null
  /** TUN device name (default "lwt0"). */
  readonly dev: string
  /** Unix control socket path (default: see config/defaults.ts controlPathFor()). */
  readonly control: string
  /** TUN MTU (default 1400). */
  readonly mtu: number
  /**
   * Client: forward error correction offered to peers, `--fec DATA,PARITY`
   * (PARITY parity messages after every DATA data messages; dataplane/fec.ts);
   * null (default): off. Used on a session only when the peer offers it too.
   */
  readonly fec: { readonly data: number, readonly parity: number } | null
  /** Server: maximum registered clients (default 100). */
  readonly maxClients: number
  /** Client: try direct paths (default true). */
  readonly p2p: boolean
  /** Client: ask the gateway for a UDP port mapping (PCP / NAT-PMP) and offer it to peers (default true; needs p2p). */
  readonly portMapping: boolean
  /** Seconds between keepalives to the server (default 10). */
  readonly keepalive: number
  /** Log level. */
  readonly logLevel: 'error' | 'warn' | 'info' | 'debug'
  /**
   * Log line shape (default "text"; log.ts chooseFormat): "text", or one JSON
   * object per line. Text gets journald priority prefixes under systemd.
   */
  readonly logFormat: 'text' | 'json'
  /** Dataplane thread placement (default: DEFAULTS.placement[mode], the measured best). */
  readonly placement: Placement
  /**
   * Handle lone packets (a ping, a keystroke) entirely in the native addon,
   * without entering JavaScript (default true; docs/PERFORMANCE.md "Idle latency").
   */
  readonly fastPath: boolean
  /**
   * Lower the MSS option of TCP SYNs through the tunnel (both ways) to what
   * the peer's path carries (dataplane/mss-clamp.ts; default false).
   */
  readonly mssClamp: boolean
  /**
   * Serve Prometheus metrics on http://HOST:PORT/metrics (src/metrics.ts), or
   * null (default: off). A bare port binds 127.0.0.1; the endpoint has no
   * authentication.
   */
  readonly metrics: HostPort | null
  /**
   * Server: threads that run the handshake's DH step (control/handshake-pool.ts),
   * or 'auto' (the default): 0 for now (bench:handshakes on 2 cores: the pool is
   * slower than the main thread; control/handshake-pool.ts poolSize).
   */
  readonly handshakeWorkers: number | 'auto'
  /**
   * Where the node keeps its state: node.key, server.pub, registry.json,
   * peers.json (default /var/lib/lightweight-tunnel/<dev>; created 0700;
   * identity/state-dir.ts). An absolute path.
   */
  readonly stateDir: string
  /** The node's private key file (--node-key), or null: STATE_DIR/node.key, created on first start. */
  readonly nodeKey: string | null
  /**
   * Client: the server's public key (base64), or an absolute path to a file
   * holding it (--server-key); null: pin the key the server presents first
   * (STATE_DIR/server.pub; identity/server-pin.ts).
   */
  readonly serverKey: string | null
  /**
   * Server: strict mode's list of admitted nodes, one "PUBKEY ADDRESS" per
   * line (state/authorized-nodes.ts), as an absolute path; null (default):
   * every holder of the network key may register a free address.
   */
  readonly authorizedNodes: string | null
  /**
   * Networks behind this node, canonical "ADDR/LEN" text (config/routes.ts;
   * IPv4 or IPv6, host bits zero, at most MAX_ROUTES). A client advertises
   * them to the server, which approves them or not; a server's are always
   * approved. Default none.
   */
  readonly advertiseRoutes: readonly string[]
  /**
   * Server: which advertised client routes are used (docs/PROTOCOL.md §11a
   * "Subnet routes"): 'all', or per client tunnel address (dotted quad) the
   * networks approved for it, or 'all' of what that client advertises.
   * Default {}: none (advertised routes stay pending).
   */
  readonly approveRoutes: ApproveRoutes
  /** Client: install the peers' approved routes on the TUN device (default true). */
  readonly acceptRoutes: boolean
  /** Server: clients reach the server and its routes, never each other (default false). */
  readonly clientIsolation: boolean
  /**
   * Client: the transport to the server (transport/choice.ts): 'auto' (default: UDP, and
   * TCP when UDP gets no answer in 2 s, back to UDP when it answers), or 'udp' / 'tcp' pinned,
   * or 'faketcp' (pinned: dataplane/faketcp-link.ts).
   */
  readonly transport: 'auto' | 'udp' | 'tcp' | 'faketcp'
  /** Server: accept the tunnel over TCP too (default true; transport/tcp-server.ts). */
  readonly tcp: boolean
  /** Server: where the TCP listener binds (null, the default: the --listen host and UDP port number). */
  readonly tcpListen: HostPort | null
  /** Server: also accept clients over fake TCP on the TCP port of our UDP port's number (`--faketcp`, default off). */
  readonly faketcp: boolean
  /**
   * Fake TCP's superpackets (`--no-faketcp-offload` turns them off, default on): bulk data through an
   * AF_PACKET socket as TSO frames to the learned next hop (native/faketcp-packet.c). Off: every segment
   * through the raw IP socket, so this host's own output firewall and NAT see each one (slower).
   */
  readonly faketcpOffload: boolean
}

/** Config fields derived from another setting rather than set on their own (tun6: from `tun`). */
export type DerivedKey = 'tun6'
/** See Config.approveRoutes. */
export type ApproveRoutes = 'all' | Readonly<Record<string, 'all' | readonly string[]>>

/** A setting's name: a Config field, and its key in our own JSON files. */
export type SettingKey = Exclude<keyof Config, DerivedKey>

const SETTING_LIST = [
  'mode', 'listen', 'remote', 'tun', 'key', 'keyFile', 'networkName', 'dev', 'control', 'mtu', 'fec', 'maxClients',
  'p2p', 'portMapping', 'keepalive', 'logLevel', 'logFormat', 'placement', 'fastPath', 'mssClamp', 'metrics', 'handshakeWorkers', 'stateDir', 'nodeKey', 'serverKey',
  'authorizedNodes', 'advertiseRoutes', 'approveRoutes', 'acceptRoutes', 'clientIsolation',
  'transport', 'tcp', 'tcpListen', 'faketcp', 'faketcpOffload'
] as const satisfies readonly SettingKey[]
/** Compiles only while SETTING_LIST names every Config field (unused at run time). */
const LISTS_EVERY_SETTING: [Exclude<SettingKey, typeof SETTING_LIST[number]>] extends [never] ? true : never = true

/** Every setting, in the order of Config (and of the file keys listed in messages). */
export const SETTINGS: readonly SettingKey[] = Object.freeze(SETTING_LIST)
