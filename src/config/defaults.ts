/**
 * Defaults and limits of every configuration value, in one place.
 * config/load.ts and config/validate.ts apply them; cli/help.ts prints them;
 * nothing else hard-codes these numbers.
 *
 * The control socket's default path is per device AND per network namespace,
 * so two daemons in different namespaces of one host never collide even when
 * both use the same device name: `/run/lightweight-tunnel/<dev>.<netns-id>.sock`,
 * where netns-id is the inode number of /proc/self/ns/net. `status` computes the
 * same path, so `ip netns exec X lightweight-tunnel status` finds the daemon of X.
 */
import { statSync } from 'node:fs'
import { join } from 'node:path'

export const DEFAULTS = Object.freeze({
  /**
   * Server: all addresses of both families (one AF_INET6 socket, IPV6_V6ONLY off), UDP port 9000 (the
   * Go project's default port); a host without IPv6 falls back to 0.0.0.0 (dataplane.ts, one info line).
   */
  serverListen: Object.freeze({ host: '::', port: 9000 }),
  /** Client: any local address of either family, a kernel-chosen port (same fallback). */
  clientListen: Object.freeze({ host: '::', port: 0 }),
  dev: 'lwt0',
  /**
   * 1400 leaves room for the outer IPv4 (20) + UDP (8) + tunnel header and AEAD
   * tag inside a 1500-byte Ethernet path, with slack for PPPoE (8) links.
   */
  mtu: 1400,
  maxClients: 100,
  p2p: true,
  acceptRoutes: true,
  clientIsolation: false,
  /** TCP SYNs' MSS option lowered to the path (dataplane/mss-clamp.ts; --mss-clamp): off. */
  mssClamp: false,
  /** Client: UDP, and TCP to the server when UDP gets no answer (transport/choice.ts). */
  transport: 'auto' as const,
  /** Server: accept the tunnel over TCP on the UDP port's number too. */
  tcp: true,
  /** Server: accept fake TCP too (dataplane/faketcp-link.ts; --faketcp). */
  faketcp: false,
  /** Fake TCP's superpackets through an AF_PACKET socket (--no-faketcp-offload). */
  faketcpOffload: true,
  /** Port mapping (control/port-mapping.ts): asked for unless --no-port-mapping. */
  portMapping: true,
  /** Seconds. Short enough to keep common NAT UDP mappings (30 s and up) open. */
  keepalive: 10,
  logLevel: 'info' as const,
  /** Text lines (journald priority prefixes under systemd); JSON only when asked for. */
  logFormat: 'text' as const,
  /** The native lone-packet path (docs/PERFORMANCE.md, "Idle latency"): on. */
  fastPath: true,
  /** Server handshake pool threads: 'auto' (control/handshake-pool.ts poolSize). */
  handshakeWorkers: 'auto' as number | 'auto',
  /**
   * Dataplane thread placement per mode, measured in docs/PERFORMANCE.md
   * ("Thread placement"): a client runs its pipelines on the main thread (same
   * speed, no second V8 isolate); a server keeps them on a worker, away from
   * handshake bursts of many clients on the main thread.
   */
  placement: Object.freeze({ client: 'inline', server: 'fused' }) as { readonly client: 'split' | 'fused' | 'inline', readonly server: 'split' | 'fused' | 'inline' }
})

export const LIMITS = Object.freeze({
  /** 576: the IPv4 minimum datagram every host must accept (RFC 791). */
  mtuMin: 576,
  /** 1900: the largest inner packet a dataplane packet slot holds (MAX_MTU in workers/layout.ts). */
  mtuMax: 1900,
  maxClientsMin: 1,
  handshakeWorkersMax: 64,
  /** Bounded so the server's peer table and signaling fan-out stay bounded. */
  maxClientsMax: 65535,
  keepaliveMin: 1,
  /** Seconds. Longer than common NAT UDP timeouts (2–5 min) would let mappings expire. */
  keepaliveMax: 300,
  /** /8 is the largest sensible private network; /31 and /32 leave no room for a second peer. */
  prefixMin: 8,
  prefixMax: 30,
  /** Linux IFNAMSIZ is 16 including the terminating NUL. */
  devNameMax: 15,
  /** sockaddr_un.sun_path holds 108 bytes including the terminating NUL. */
  controlPathMax: 107,
  /** A key shorter than this is accepted with a warning. */
  keyWarnBelow: 8
})

export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const
export const LOG_FORMATS = ['text', 'json'] as const

/** Directory of the default control sockets (created 0755 by the daemon). */
export const CONTROL_DIR = '/run/lightweight-tunnel'

/**
 * The id of the current network namespace: the inode number of
 * /proc/self/ns/net, as a decimal string. Two processes share a network
 * namespace exactly when these are equal. Returns null when /proc is missing.
 */
export function currentNetnsId (): string | null {
  try {
    return String(statSync('/proc/self/ns/net').ino)
  } catch {
    return null
  }
}

/**
 * Default control socket path for device `dev` in the network namespace
 * `netnsId` (default: the caller's own namespace). Without /proc (never on a
 * normal Linux host) the namespace part is left out.
 */
export function controlPathFor (dev: string, netnsId: string | null = currentNetnsId()): string {
  return join(CONTROL_DIR, netnsId === null ? `${dev}.sock` : `${dev}.${netnsId}.sock`)
}
