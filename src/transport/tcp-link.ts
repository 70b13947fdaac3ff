/**
 * One TCP connection as a transport link (conn-table.ts LinkIo): the server's
 * accepted connections and a client's connection to its server.
 *
 *   socket read (readingSocket: into the one READ_BUF, no allocation; a plain
 *   socket: 'data') ─▶ receive ─▶ Deframer ─▶ onMessage(msg) (the table's
 *   deliver, which copies it on before the buffer is read into again)
 *                            └▶ bad length: close, counted (tcpBadFrames)
 *   send(msg) ─▶ header + msg packed into the link's slab after this turn's
 *                earlier frames; at the event loop's check phase the turn's
 *                frames leave in one write (one buffer, no per-message
 *                allocation); unless the socket has more than SEND_BACKLOG
 *                bytes queued in user space (or the turn already holds
 *                SEND_BATCH): then the whole message is dropped (counted by
 *                the table), never a part, and nothing queues beyond the
 *                kernel's socket buffer (TCP over TCP: the inner flows see
 *                loss and slow down)
 *   a frame half-read for STALL_MS: close, counted (tcpStalls)
 *
 * Main thread only.
 */
import { Socket, connect, type OnReadOpts, type SocketConstructorOpts } from 'node:net'
import { Deframer, FRAME_HEADER, MAX_FRAME } from './framing.js'
import type { ConnKind, LinkIo } from './conn-table.js'
import { ipToInt, isIpv4 } from '../wire/addr.js'

/** A graceful close (daemon stop) waits this long at most for the last frames to leave, ms. */
const GRACE_MS = 500

/** A frame may sit half-read this long (ms) before the connection is closed. */
export const STALL_MS = 5000
/** User-space bytes a socket may hold beyond the kernel's buffer before sends are dropped. */
export const SEND_BACKLOG = 64 * 1024
/** Bytes one event-loop turn may batch into one write. */
export const SEND_BATCH = 256 * 1024
/** A link's staging slab: room for several turns' writes still held by the stream. */
const SLAB = 2 * SEND_BATCH

/**
 * Bytes one read takes at most. Every socket from readingSocket() reads into the one READ_BUF (main thread:
 * a read is deframed and its messages copied onward before the next read of any socket).
 */
const READ_BYTES = 256 * 1024
const READ_BUF = Buffer.allocUnsafeSlow(READ_BYTES)
/** Sockets made by readingSocket() → their link (null until the TcpLink over it is built). */
const readsToLink = new WeakMap<Socket, TcpLink | null>()

/**
 * A socket whose reads land in READ_BUF and go straight to its TcpLink's receive(): no Buffer allocated
 * and no stream machinery per read (Node's onread). `fd`: an accepted connection (tcp-server.ts), returned
 * paused; or connect options (client-transport.ts). Build the TcpLink over it before resuming it.
 */
export function readingSocket (how: { fd: number } | { host: string, port: number, timeout: number }): Socket {
  let sock: Socket | null = null
  const onread: OnReadOpts = {
    buffer: READ_BUF,
    callback: (n: number, buf: Uint8Array): boolean => {
      const l = sock === null ? null : readsToLink.get(sock)
      l?.receive(buf.subarray(0, n))
      return true
    }
  }
  if ('fd' in how) {
    // onread is an option of the constructor since Node 12 (documented there since 2024; @types/node lists it under connect only).
    sock = new Socket({ fd: how.fd, readable: true, writable: true, onread } as SocketConstructorOpts)
    sock.pause() // nothing is read before the loop runs; the owner resumes it
  } else {
    sock = connect({ ...how, onread })
  }
  readsToLink.set(sock, null)
  return sock
}

export interface TcpLinkCounters {
  tcpBadFrames: number
  tcpStalls: number
}

export function newTcpLinkCounters (): TcpLinkCounters { return { tcpBadFrames: 0, tcpStalls: 0 } }

export class TcpLink implements LinkIo {
  readonly kind: ConnKind = 'tcp'
  readonly remote: { ip: number, port: number }
  readonly #sock: Socket
  readonly #deframer: Deframer
  readonly #counters: TcpLinkCounters
  #stallTimer: NodeJS.Timeout | null = null
  /**
   * This turn's frames, back to back in #slab from #turnStart (#turnLen bytes): one write at the turn's
   * end. A write the kernel does not take at once keeps its part of the slab (the stream holds it), so
   * the next turn goes on after it; once nothing is queued the next turn starts at 0 again.
   */
  #slab = Buffer.allocUnsafeSlow(SLAB)
  #turnStart = 0
  #turnLen = 0
  readonly #flush = (): void => {
    const len = this.#turnLen
    if (len === 0) return
    const start = this.#turnStart
    this.#turnLen = 0
    this.#turnStart = start + len
    if (!this.#closed) this.#sock.write(this.#slab.subarray(start, start + len))
  }
  #closed = false
  /** Frames read so far: a stall is a partial frame with no frame completed for STALL_MS. */
  #frames = 0
  /** Set by the owner: called once when the link ends (either side). */
  onEnd: (why: string) => void = () => {}

  constructor (sock: Socket, onMessage: (msg: Uint8Array) => void, counters: TcpLinkCounters) {
    this.#sock = sock
    this.#counters = counters
    const addr = (sock.remoteAddress ?? '').replace(/^::ffff:/, '')
    this.remote = { ip: isIpv4(addr) ? ipToInt(addr) : 0, port: sock.remotePort ?? 0 }
    this.#deframer = new Deframer((msg) => { this.#frames++; onMessage(msg) }, MAX_FRAME)
    sock.setNoDelay(true)
    // A socket made by readingSocket() hands its bytes to receive() itself; any other emits 'data'.
    if (!readsToLink.has(sock)) sock.on('data', (chunk: Buffer) => { this.receive(chunk) })
    else readsToLink.set(sock, this)
    sock.on('error', () => { this.#end('connection error') })
    sock.on('close', () => { this.#end('connection closed') })
  }

  /** Bytes read from the socket: frames out to onMessage (synchronously: `chunk` may be reused afterwards). */
  receive (chunk: Uint8Array): void {
    if (this.#closed) return
    const err = this.#deframer.push(chunk)
    if (err !== null) {
      this.#counters.tcpBadFrames++
      this.#end(err === 'too-long' ? `a frame longer than ${MAX_FRAME} bytes` : 'an empty frame')
      return
    }
    this.#watchStall()
  }

  send (msg: Uint8Array): boolean {
    if (this.#closed || msg.length === 0 || msg.length > MAX_FRAME) return false
    const need = FRAME_HEADER + msg.length
    if (this.#sock.writableLength > SEND_BACKLOG || this.#turnLen + need > SEND_BATCH) return false
    if (this.#turnLen === 0) {
      // A new turn: what earlier turns wrote is in the kernel (nothing queued), so the slab is free again.
      if (this.#sock.writableLength === 0) this.#turnStart = 0
      if (this.#slab.length - this.#turnStart < SEND_BATCH) { this.#slab = Buffer.allocUnsafeSlow(SLAB); this.#turnStart = 0 }
      setImmediate(this.#flush)
    }
    const slab = this.#slab
    const at = this.#turnStart + this.#turnLen
    slab[at] = msg.length >>> 8
    slab[at + 1] = msg.length & 0xff
    slab.set(msg, at + FRAME_HEADER)
    this.#turnLen += need
    return true
  }

  get isClosed (): boolean { return this.#closed }

  close (graceful = false): void {
    if (this.#closed) return
    if (graceful) this.#flush()
    this.#closed = true
    if (this.#stallTimer !== null) clearTimeout(this.#stallTimer)
    if (!graceful) { this.#sock.destroy(); return }
    // What this turn staged (a Bye) is written above; end() sends FIN after it; a peer that does not read gets GRACE_MS.
    this.#sock.end()
    setTimeout(() => { this.#sock.destroy() }, GRACE_MS).unref()
  }

  #watchStall (): void {
    if (!this.#deframer.partial) {
      if (this.#stallTimer !== null) { clearTimeout(this.#stallTimer); this.#stallTimer = null }
      return
    }
    if (this.#stallTimer !== null) return
    const framesAtStart = this.#frames
    this.#stallTimer = setTimeout(() => {
      this.#stallTimer = null
      if (!this.#deframer.partial) return
      if (this.#frames !== framesAtStart) { this.#watchStall(); return }
      this.#counters.tcpStalls++
      this.#end(`a frame stalled half-read for ${STALL_MS / 1000} s`)
    }, STALL_MS)
    this.#stallTimer.unref()
  }

  #end (why: string): void {
    if (this.#closed) return
    this.close()
    this.onEnd(why)
  }
}
