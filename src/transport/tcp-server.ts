/**
 * The server's TCP listener (same port number as its UDP port unless
 * --tcp-listen moves it; --no-tcp: none). It authenticates nothing itself:
 *
 *   listener readable (the addon's socket, native/tcplisten.c, polled on the
 *     main loop) ─▶ tcpAccept until EAGAIN (out of descriptors: counted,
 *     tcpAcceptErrors, and the listener rests ACCEPT_REST_MS) ─▶ a socket
 *     that reads into one reused buffer (tcp-link.ts readingSocket)
 *   ─▶ TcpLink ─▶ first frame must be a HandshakeInit (byte 0 = 1),
 *     else close (tcpBadFirstFrame) ─▶ ConnTable.add (unauthenticated; past
 *     MAX_UNAUTH the oldest such goes) ─▶ every frame: entry.deliver → the
 *     daemon's own UDP socket, where the server sees the handle endpoint
 *   not answered with a HandshakeResp within HANDSHAKE_MS: close (tcpHandshakeTimeouts)
 *   nothing received for IDLE_MS (clients send keepalives): close (tcpIdleTimeouts)
 *
 * Main thread only.
 */
import type { Socket } from 'node:net'
import { constants } from 'node:os'
import type { ConnTable } from './conn-table.js'
import { TcpLink, newTcpLinkCounters, readingSocket, type TcpLinkCounters } from './tcp-link.js'
import { MSG_HANDSHAKE_INIT } from '../wire/messages.js'
import type { Logger } from '../log.js'
import { formatHostPort } from '../config/validate.js'
import { loadNative, type Native, type PollHandle } from '../dataplane/native.js'

/** A connection must complete a handshake this soon (ms). */
export const HANDSHAKE_MS = 5000
/** An authenticated connection with nothing received this long (ms) is closed. */
export const IDLE_MS = 120_000
/** At most this many connections without a completed handshake (the oldest goes first). */
export const MAX_UNAUTH = 64
/** Connections the kernel queues for us before refusing more (listen(2) backlog; Node's net.Server default too). */
const BACKLOG = 128
/** After an accept failed for want of file descriptors or memory, the listener rests this long (ms) before trying again. */
export const ACCEPT_REST_MS = 1000

export interface TcpServerCounters extends TcpLinkCounters {
  tcpAccepted: number
  /** accept4 failed (EMFILE, ENFILE, ENOBUFS, ENOMEM...): the listener rests ACCEPT_REST_MS, the connection waits in the kernel's queue. */
  tcpAcceptErrors: number
  tcpBadFirstFrame: number
  tcpHandshakeTimeouts: number
  tcpIdleTimeouts: number
}

/** EMFILE for 24, as errors read elsewhere. */
function errnoName (e: number): string {
  return Object.entries(constants.errno).find(([, v]) => v === e)?.[0] ?? `errno ${e}`
}

export class TcpServer {
  readonly #table: ConnTable
  readonly #log: Logger
  readonly #native: Native
  readonly #fd: number
  readonly #address: string
  #poll: PollHandle | null = null
  #rest: NodeJS.Timeout | null = null
  readonly counters: TcpServerCounters = { tcpAccepted: 0, tcpAcceptErrors: 0, tcpBadFirstFrame: 0, tcpHandshakeTimeouts: 0, tcpIdleTimeouts: 0, ...newTcpLinkCounters() }
  #closing = false

  private constructor (table: ConnTable, log: Logger, native: Native, fd: number, address: string) {
    this.#table = table
    this.#log = log
    this.#native = native
    this.#fd = fd
    this.#address = address
    this.#watch()
  }

  /**
   * Listen on host:port (the addon's listener, native/tcplisten.c: accepted connections become sockets that
   * read into one reused buffer, tcp-link.ts readingSocket). Rejects with the errno Error (code EADDRINUSE...)
   * for the daemon to name.
   */
  static async listen (table: ConnTable, host: string, port: number, log: Logger, native: Native = loadNative()): Promise<TcpServer> {
    const l = native.tcpListen(host, port, BACKLOG)
    return new TcpServer(table, log, native, l.fd, formatHostPort(host, l.port))
  }

  get address (): string { return this.#address }

  async close (): Promise<void> {
    if (this.#closing) return
    this.#closing = true
    if (this.#rest !== null) clearTimeout(this.#rest)
    if (this.#poll !== null) this.#native.pollStop(this.#poll)
    this.#poll = null
    this.#native.close(this.#fd)
  }

  #watch (): void { this.#poll = this.#native.pollStart(this.#fd, () => { this.#acceptAll() }) }

  /** The listener is readable: take every waiting connection. */
  #acceptAll (): void {
    while (!this.#closing) {
      const fd = this.#native.tcpAccept(this.#fd)
      if (fd === -constants.errno.EAGAIN) return
      if (fd < 0) {
        // Out of descriptors or memory: the connection stays queued in the kernel; rest instead of spinning on it.
        this.counters.tcpAcceptErrors++
        this.#log.warn('cannot accept a TCP connection; trying again in 1 s', { err: errnoName(-fd), hint: 'raise the open-file limit (LimitNOFILE=, ulimit -n) or lower --max-clients' })
        if (this.#poll !== null) this.#native.pollStop(this.#poll)
        this.#poll = null
        this.#rest = setTimeout(() => { this.#rest = null; if (!this.#closing) this.#watch() }, ACCEPT_REST_MS)
        this.#rest.unref()
        return
      }
      let sock: Socket
      try { sock = readingSocket({ fd }) } catch (err) { this.#native.close(fd); this.#log.warn('TCP connection not taken', { err }); continue }
      this.#accept(sock)
    }
  }

  #accept (sock: Socket): void {
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
