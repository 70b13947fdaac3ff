/**
 * The transports of one daemon, composed (daemon.ts holds one): the
 * connection table, the DataplanePort/handler wrappers that resolve its
 * handles, and either the server's TCP listener or the client's transport
 * choice.
 *
 *   daemon ─▶ port(dataplane) / handler(h): the wrappers (transport-port.ts)
 *          ─▶ start(controller): server: TcpServer.listen (--tcp-listen, or
 *             the --listen host and the UDP port's number; --no-tcp: none);
 *             client: ClientTransport (--transport)
 *          ─▶ tick() each control tick; status(), counters(); stop()
 *
 * Main thread only.
 */
import type { Config } from '../config/schema.js'
import type { ControlHandler, DataplanePort } from '../control/port.js'
import type { PeerStatus } from '../control/status.js'
import type { ClientController } from '../control/client.js'
import type { ServerController } from '../control/server.js'
import type { Clock } from '../clock.js'
import type { Logger } from '../log.js'
import { VpnError } from '../errors.js'
import { setConnHandleText } from '../wire/addr.js'
import { formatHostPort } from '../config/validate.js'
import { ConnTable } from './conn-table.js'
import { transportHandler, transportPort } from './transport-port.js'
import { TcpServer } from './tcp-server.js'
import { ClientTransport, NO_CONN, type TransportStatus } from './client-transport.js'

/** A server takes at most this many connections beyond its client limit (handshakes in progress). */
const CONN_SLACK = 64

export interface TransportReport {
  /** Server: where TCP is accepted, or null (--no-tcp). */
  tcpListen?: string | null
  /** Client: the server path's transport and why. */
  client?: TransportStatus
}

export class DaemonTransport {
  readonly table: ConnTable
  readonly #config: Config
  readonly #log: Logger
  readonly #clock: Clock
  readonly #daemonPort: () => number
  #server: TcpServer | null = null
  #client: ClientTransport | null = null

  constructor (config: Config, daemonPort: () => number, clock: Clock, log: Logger) {
    this.#config = config
    this.#log = log
    this.#clock = clock
    this.#daemonPort = daemonPort
    const host = bridgeTarget(config)
    this.table = new ConnTable({
      daemon: () => ({ host, port: this.#daemonPort() }),
      maxConns: config.mode === 'server' ? config.maxClients + CONN_SLACK : 4,
      maxUnauth: config.mode === 'server' ? CONN_SLACK : 4,
      now: () => clock.now()
    })
    setConnHandleText((ip) => this.table.text(ip))
  }

  /** The server endpoint a client starts with: pinned to TCP, a handle that is never live until connected. */
  initialServerIp (udpIp: number): number { return this.#config.mode === 'client' && this.#config.transport === 'tcp' ? NO_CONN : udpIp }
  initialServerPort (udpPort: number): number { return udpPort }

  port (inner: DataplanePort): DataplanePort { return transportPort(inner, this.table) }
  handler (inner: ControlHandler): ControlHandler { return transportHandler(inner, this.table) }

  /** After the dataplane runs (its UDP port is known). Throws a VpnError naming the remedy when the TCP port is taken. */
  async start (controller: ServerController | ClientController, udpServer: { ip: number, port: number } | null): Promise<void> {
    const c = this.#config
    if (c.mode === 'server') {
      if (!c.tcp) return
      const host = c.tcpListen?.host ?? c.listen.host
      const port = c.tcpListen?.port ?? this.#daemonPort()
      try {
        this.#server = await TcpServer.listen(this.table, host, port, this.#log)
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message
        throw new VpnError('ERR_CONFIG_INVALID', `cannot accept TCP on ${formatHostPort(host, port)}: ${code}`,
          { hint: 'free that TCP port, move the listener with --tcp-listen HOST:PORT (e.g. 0.0.0.0:443), or turn TCP off with --no-tcp', cause: err })
      }
      this.#log.info('accepting the tunnel over TCP', { listen: this.#server.address })
      return
    }
    if (c.transport === 'faketcp') return // pinned: the fake-TCP link (dataplane/faketcp-link.ts) is the server path
    this.#client = new ClientTransport(c.transport, {
      table: this.table,
      controller: controller as ClientController,
      clock: this.#clock,
      log: this.#log,
      udp: udpServer ?? { ip: 0, port: c.remote!.port },
      tcpPort: c.remote!.port
    })
  }

  tick (): void { this.#client?.tick() }

  /** Client: the server's UDP address (its name resolved, or again); true when the server path moved. */
  setServerUdp (controller: ClientController, ip: number, port: number): boolean {
    if (this.#client === null) return controller.setServerEndpoint(ip, port)
    return this.#client.setUdpEndpoint(ip, port)
  }

  /** Client: the server's real UDP address (never a handle), e.g. for kernel routes. */
  serverUdpIp (fallback: number): number { return this.#client?.udpEndpoint.ip ?? fallback }

  status (): TransportReport {
    if (this.#config.mode === 'server') return { tcpListen: this.#server?.address ?? null }
    return this.#client === null ? {} : { client: this.#client.status() }
  }

  /** Client: the server's entry in status gets its transport (the dataplane only knows an endpoint). */
  decorate (peers: PeerStatus[]): void {
    const t = this.#client?.status()
    if (t === undefined) return
    for (const p of peers) if (p.role === 'server') p.transport = t.transport
  }

  counters (): Record<string, number> {
    return { ...this.table.counters, ...this.#server?.counters, ...this.#client?.choice.counters, ...this.#client?.linkCounters }
  }

  async stop (): Promise<void> {
    this.#client?.stop()
    setConnHandleText(null)
    const s = this.#server
    this.#server = null
    const closing = s?.close()
    this.table.closeAll()
    await closing
  }
}

/**
 * Where the bridges (conn-table.ts, IPv4 loopback sockets) reach the daemon's own UDP socket: 127.0.0.1 when
 * it listens on every address (0.0.0.0, or [::] dual-stack), else its IPv4 listen address. A socket bound to
 * one IPv6 address takes no IPv4 datagrams: refused at start while a TCP transport is in use.
 */
export function bridgeTarget (config: Pick<Config, 'mode' | 'listen' | 'tcp' | 'transport'>): string {
  const h = config.listen.host
  if (h === '0.0.0.0' || h === '::') return '127.0.0.1'
  if (!h.includes(':')) return h
  const tcpInUse = config.mode === 'server' ? config.tcp : config.transport === 'auto' || config.transport === 'tcp'
  if (tcpInUse) {
    throw new VpnError('ERR_CONFIG_INVALID', `--listen ${formatHostPort(h, config.listen.port)}: the TCP transport reaches the daemon's UDP socket over IPv4 loopback, which a socket bound to one IPv6 address does not receive`,
      { hint: config.mode === 'server' ? 'listen on [::] (both families) or an IPv4 address, or turn TCP off with --no-tcp' : 'listen on [::] (the default) or an IPv4 address, or pin UDP with --transport udp' })
  }
  return '127.0.0.1'
}
