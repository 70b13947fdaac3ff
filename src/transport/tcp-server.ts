/**
 * The server's TCP listener (same port number as its UDP port unless
 * --tcp-listen moves it; --no-tcp: none). It authenticates nothing itself:
 *
 *   accept ─▶ TcpLink ─▶ first frame must be a HandshakeInit (byte 0 = 1),
 *     else close (tcpBadFirstFrame) ─▶ ConnTable.add (unauthenticated; past
 *     MAX_UNAUTH the oldest such goes) ─▶ every frame: entry.deliver → the
 *     daemon's own UDP socket, where the server sees the handle endpoint
 *   not answered with a HandshakeResp within HANDSHAKE_MS: close (tcpHandshakeTimeouts)
 *   nothing received for IDLE_MS (clients send keepalives): close (tcpIdleTimeouts)
 *
 * Main thread only.
 */
import { createServer, type Server, type Socket } from 'node:net'
import type { ConnTable } from './conn-table.js'
import { TcpLink, newTcpLinkCounters, type TcpLinkCounters } from './tcp-link.js'
import { MSG_HANDSHAKE_INIT } from '../wire/messages.js'
import type { Logger } from '../log.js'
import { formatHostPort } from '../config/validate.js'

/** A connection must complete a handshake this soon (ms). */
export const HANDSHAKE_MS = 5000
/** An authenticated connection with nothing received this long (ms) is closed. */
export const IDLE_MS = 120_000
/** At most this many connections without a completed handshake (the oldest goes first). */
export const MAX_UNAUTH = 64

export interface TcpServerCounters extends TcpLinkCounters {
  tcpAccepted: number
  tcpBadFirstFrame: number
  tcpHandshakeTimeouts: number
  tcpIdleTimeouts: number
}

export class TcpServer {
  readonly #table: ConnTable
  readonly #log: Logger
  readonly #server: Server
  readonly counters: TcpServerCounters = { tcpAccepted: 0, tcpBadFirstFrame: 0, tcpHandshakeTimeouts: 0, tcpIdleTimeouts: 0, ...newTcpLinkCounters() }
  #closing = false

  private constructor (table: ConnTable, log: Logger) {
    this.#table = table
    this.#log = log
    this.#server = createServer({ pauseOnConnect: true }, (sock) => { this.#accept(sock) })
  }

  /** Listen on host:port; rejects with the socket error (EADDRINUSE...) for the daemon to name. */
  static async listen (table: ConnTable, host: string, port: number, log: Logger): Promise<TcpServer> {
    const s = new TcpServer(table, log)
    await new Promise<void>((resolve, reject) => {
      s.#server.once('error', reject)
      s.#server.listen({ host, port, backlog: 128 }, () => { s.#server.off('error', reject); resolve() })
    })
    s.#server.on('error', (err) => { log.warn('TCP listener error', { err }) })
    return s
  }

  get address (): string {
    const a = this.#server.address()
    return a !== null && typeof a === 'object' ? formatHostPort(a.address, a.port) : ''
  }

  async close (): Promise<void> {
    this.#closing = true
    await new Promise<void>((resolve) => { this.#server.close(() => { resolve() }) })
  }

  #accept (sock: Socket): void {
    if (this.#closing) { sock.destroy(); return }
    this.counters.tcpAccepted++
    let entry: Awaited<ReturnType<ConnTable['add']>> = null
    let first = true
    const link = new TcpLink(sock, (msg) => {
      if (first) {
        first = false
        if (msg[0] !== MSG_HANDSHAKE_INIT) {
          this.counters.tcpBadFirstFrame++
          link.close()
          entry?.close('the first frame was not a handshake')
          return
        }
      }
      entry?.deliver(msg)
    }, this.counters)
    link.onEnd = (why) => { entry?.close(why) }
    void this.#table.add(link, { open: false }).then((e) => {
      if (e === null) return
      entry = e
      if (link.isClosed) { e.close('connection closed'); return }
      const hs = setTimeout(() => {
        if (!e.open) { this.counters.tcpHandshakeTimeouts++; e.close('no handshake') }
      }, HANDSHAKE_MS)
      hs.unref()
      this.#table.onClose(e.handle, () => { clearTimeout(hs) })
      sock.setTimeout(IDLE_MS, () => { this.counters.tcpIdleTimeouts++; e.close('idle') })
      sock.resume()
    }).catch((err: unknown) => { this.#log.warn('TCP connection not taken', { err }); link.close() })
  }
}
