/**
 * A client's transport to its server, driven: runs the choice (choice.ts) on
 * the control-plane tick and does its I/O.
 *
 *   tick ─▶ TransportChoice.tick(now, registered) ─▶ actions:
 *     connect   ─▶ net.connect(server ip, tcpPort; reads into one reused buffer,
 *                   tcp-link.ts readingSocket) ─▶ TcpLink ─▶ ConnTable.add(open)
 *                   ─▶ choice.connected(handle) | choice.connectFailed(why)
 *     use-tcp   ─▶ controller.setServerEndpoint(handle, port): the server path,
 *                   and the relay routes, go over the connection (a new registration)
 *     use-udp   ─▶ controller.setServerEndpoint(udp ip, port)
 *     probe-udp ─▶ controller.sendUdpProbe(udp ip, port); its Pong ─▶ choice.udpAnswered
 *     close-tcp ─▶ the entry closes (its link too)
 *   the connection ends ─▶ choice.closed
 *
 * The server's UDP address can change (its name re-resolves): setUdpEndpoint.
 * Main thread only.
 */
import type { ClientController } from '../control/client.js'
import type { Clock } from '../clock.js'
import type { Logger } from '../log.js'
import { intToIp, formatEndpoint } from '../wire/addr.js'
import { HANDLE_CONN } from '../wire/endpoint-handle.js'
import { TransportChoice, type ChoiceAction, type TransportMode } from './choice.js'
import type { ConnTable } from './conn-table.js'
import { TcpLink, newTcpLinkCounters, readingSocket } from './tcp-link.js'

/** A TCP connect gives up after this long (ms). */
export const CONNECT_MS = 3000
/** The server endpoint while pinned to TCP and not connected: a handle that is never live (sends are discarded). */
export const NO_CONN = HANDLE_CONN

export interface TransportStatus {
  mode: TransportMode
  transport: 'udp' | 'tcp'
  /** Why the server path is not on UDP (null on UDP). */
  reason: string | null
  tcp: string | null
}

export class ClientTransport {
  readonly choice: TransportChoice
  readonly linkCounters = newTcpLinkCounters()
  readonly #table: ConnTable
  readonly #controller: ClientController
  readonly #clock: Clock
  readonly #log: Logger
  readonly #tcpPort: number
  #udp: { ip: number, port: number }
  #stopped = false

  constructor (mode: TransportMode, c: { table: ConnTable, controller: ClientController, clock: Clock, log: Logger, udp: { ip: number, port: number }, tcpPort: number }) {
    this.#table = c.table
    this.#controller = c.controller
    this.#clock = c.clock
    this.#log = c.log
    this.#udp = c.udp
    this.#tcpPort = c.tcpPort
    this.choice = new TransportChoice(mode, c.clock.now())
    c.controller.onUdpProbeAnswer = (ip, port) => {
      if (ip === this.#udp.ip && port === this.#udp.port) this.#run(this.choice.udpAnswered(this.#clock.now()))
    }
  }

  /** The server's UDP endpoint (its name resolved again): used now if we are on UDP. */
  setUdpEndpoint (ip: number, port: number): boolean {
    this.#udp = { ip, port }
    if (this.choice.transport === 'udp' && this.choice.mode !== 'tcp') return this.#controller.setServerEndpoint(ip, port)
    return false
  }

  get udpEndpoint (): { ip: number, port: number } { return this.#udp }

  tick (): void {
    if (this.#stopped) return
    // Answered: registered, or refused by the server (a wrong key is not a blocked UDP: no fallback then).
    const s = this.#controller.state
    this.#run(this.choice.tick(this.#clock.now(), s === 'registered' || s === 'rejected'))
  }

  stop (): void { this.#stopped = true }

  status (): TransportStatus {
    const s = this.choice.state
    const e = s.kind === 'tcp' ? this.#table.get(s.handle) : undefined
    return { mode: this.choice.mode, transport: this.choice.transport, reason: this.choice.reason, tcp: e === undefined ? null : formatEndpoint(e.link.remote.ip, e.link.remote.port) }
  }

  #run (actions: ChoiceAction[]): void {
    for (const a of actions) {
      switch (a.type) {
        case 'connect': this.#connect(); break
        case 'use-tcp':
          this.#log.info('server path on TCP', { why: this.choice.reason, server: `${intToIp(this.#udp.ip)}:${this.#tcpPort}` })
          this.#controller.setServerEndpoint(a.handle, this.#tcpPort)
          break
        case 'use-udp':
          if (this.choice.mode === 'tcp') { this.#controller.setServerEndpoint(NO_CONN, this.#tcpPort); break }
          this.#log.info('server path on UDP', { server: formatEndpoint(this.#udp.ip, this.#udp.port) })
          this.#controller.setServerEndpoint(this.#udp.ip, this.#udp.port)
          break
        case 'close-tcp': this.#table.get(a.handle)?.close('back on UDP'); break
        case 'probe-udp': this.#controller.sendUdpProbe(this.#udp.ip, this.#udp.port); break
      }
    }
  }

  #connect (): void {
    if (this.#udp.ip === 0) { this.#run(this.choice.connectFailed(this.#clock.now(), 'the server name has not resolved yet')); return }
    const sock = readingSocket({ host: intToIp(this.#udp.ip), port: this.#tcpPort, timeout: CONNECT_MS })
    let done = false
    const fail = (why: string): void => {
      if (done) return
      done = true
      sock.destroy()
      if (!this.#stopped) this.#run(this.choice.connectFailed(this.#clock.now(), why))
    }
    sock.once('timeout', () => { fail(`no answer in ${CONNECT_MS / 1000} s`) })
    sock.once('error', (err: NodeJS.ErrnoException) => { fail(err.code ?? err.message) })
    sock.once('connect', () => {
      if (done) return
      done = true
      sock.setTimeout(0)
      sock.removeAllListeners('error')
      let entry: Awaited<ReturnType<ConnTable['add']>> = null
      const link = new TcpLink(sock, (msg) => { entry?.deliver(msg) }, this.linkCounters)
      sock.pause()
      link.onEnd = (why) => { entry?.close(why) }
      void this.#table.add(link, { open: true }).then((e) => {
        if (e === null) { this.#run(this.choice.connectFailed(this.#clock.now(), 'no room for the connection')); return }
        entry = e
        if (link.isClosed) { e.close('connection closed'); this.#run(this.choice.connectFailed(this.#clock.now(), 'connection closed')); return }
        this.#table.onClose(e.handle, (why) => { if (!this.#stopped) this.#run(this.choice.closed(this.#clock.now(), e.handle, why)) })
        sock.resume()
        if (this.#stopped) { e.close('stopping'); return }
        this.#run(this.choice.connected(this.#clock.now(), e.handle))
      })
    })
  }
}
