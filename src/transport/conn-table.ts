/**
 * The transport connection table: every peer reached over a stream (TCP) or a
 * fake-TCP flow instead of the UDP socket is entry i, and the control plane
 * knows it as the endpoint { ip: HANDLE_CONN | i, port: the far end's real
 * port } (wire/endpoint-handle.ts). Nothing above the DataplanePort sees more.
 *
 * How a message crosses (the "bridge": one loopback UDP socket per entry):
 *
 *   link (tcp-link.ts, or ftcp's fake-TCP flow) ──deliver(msg)──▶ bridge socket
 *       ──sendto 127.0.0.1:daemonPort──▶ the daemon's own UDP socket, where the
 *       pipelines read it like any datagram, from 127.a.b.c:bridgePort
 *   pipelines / control plane ──sendto 127.a.b.c:bridgePort──▶ bridge socket
 *
 * Entry i's bridge binds 127.a.b.c with a.b.c = i (all of 127/8 is local on
 * Linux), so each connection is a source address of its own to the
 * dataplane: the server's per-source handshake limits (init-guard.ts) apply
 * per connection, not to all TCP clients together.
 *       ──link.send(msg)──▶ the stream (whole frames; a backed-up link drops)
 *
 * So the dataplane and its fast path run unchanged; transport-port.ts turns
 * a handle into its bridge address on the way down and back on the way up.
 *
 * The seam for another kind (ftcp): implement LinkIo, call `add(link,
 * { open })` and feed each received message to `entry.deliver(msg)`; call
 * `entry.close(reason)` when the flow ends. The table bounds the entries
 * (maxConns), and the unauthenticated ones (maxUnauth: the oldest goes
 * first); an entry turns authenticated when the daemon answers a handshake
 * through it (a HandshakeResp, byte 0 = 2), so a flood of connections that
 * never complete a handshake cannot push out the real ones.
 *
 * Main thread only.
 */
import { HANDLE_CONN, HANDLE_INDEX_MASK, isConnHandle } from '../wire/endpoint-handle.js'
import { MSG_HANDSHAKE_RESP } from '../wire/messages.js'
import { endpointKey, intToIp, ipToInt } from '../wire/addr.js'
import { isFakeTcpHandle } from '../wire/faketcp-handle.js'
import { loadNative, type Native } from '../dataplane/native.js'
import { Bridge } from './bridge.js'

export type ConnKind = 'tcp' | 'faketcp'

/** What a transport link gives the table. */
export interface LinkIo {
  readonly kind: ConnKind
  /** The far end's real IPv4 address (host order) and port. */
  readonly remote: { readonly ip: number, readonly port: number }
  /** Send one whole message; false: dropped (the link is backed up), never a part of it. */
  send(msg: Uint8Array): boolean
  /**
   * Close the link (idempotent); the table has already forgotten the entry. graceful (daemon stop): what
   * was sent still leaves (a Bye) before the link ends, within a bound.
   */
  close(graceful?: boolean): void
}

export interface ConnEntry {
  readonly handle: number
  readonly link: LinkIo
  /** A handshake was answered through it (or we opened it ourselves). */
  readonly open: boolean
  readonly createdAt: number
  /** A message received on the link: into the daemon. */
  deliver(msg: Uint8Array): void
  /** Forget the entry and close its link and bridge. */
  close(reason: string): void
}

export interface ConnTableOptions {
  /** The daemon's UDP socket, as the bridge reaches it (127.0.0.1 for a wildcard bind); asked when needed (the port is known once the dataplane runs). */
  daemon: () => { host: string, port: number }
  maxConns: number
  maxUnauth: number
  now: () => number
  /** The addon (default: loaded here). */
  native?: Native
}

export const LOOPBACK = 0x7f000001

/** Counters in status (summed over kinds; names start with the kind's "tcp"/"faketcp" only where the link counts). */
export interface ConnCounters {
  transportConns: number
  transportConnsRefused: number
  transportUnauthEvicted: number
  transportMsgsIn: number
  transportMsgsOut: number
  transportDropBackedUp: number
  /** Messages from links the daemon's socket did not take (its buffer full). */
  transportDropBridge: number
}

interface Entry extends ConnEntry {
  open: boolean
  bridge: Bridge
  bridgeIp: number
  bridgePort: number
  closed: boolean
  onClose: Array<(reason: string) => void>
}

/** Handle indexes 2..0xFFFFFE: entry i binds 127.a.b.c = i, never 127.0.0.1 (local tools) nor 127.255.255.255. */
const FIRST_INDEX = 2

export class ConnTable {
  readonly #o: ConnTableOptions
  readonly #byHandle = new Map<number, Entry>()
  /** endpointKey(bridge ip, port) → entry. */
  readonly #byBridge = new Map<number, Entry>()
  readonly counters: ConnCounters = { transportConns: 0, transportConnsRefused: 0, transportUnauthEvicted: 0, transportMsgsIn: 0, transportMsgsOut: 0, transportDropBackedUp: 0, transportDropBridge: 0 }
  readonly #native: Native
  #daemonIp = { host: '', ip: 0, port: 0 }
  #nextIndex = FIRST_INDEX

  constructor (o: ConnTableOptions) {
    this.#o = o
    this.#native = o.native ?? loadNative()
  }

  /** The daemon's socket as a u32 address and port (the host is parsed once; the same object while nothing changes: asked per message). */
  #daemon (): { ip: number, port: number } {
    const d = this.#o.daemon()
    const c = this.#daemonIp
    if (d.host !== c.host || d.port !== c.port) this.#daemonIp = { host: d.host, ip: ipToInt(d.host), port: d.port }
    return this.#daemonIp
  }

  get size (): number { return this.#byHandle.size }

  /** The far end of a connection handle and its kind, or null when it is not (or no longer) a live entry. */
  remoteOf (handle: number): { ip: number, port: number, kind: ConnKind } | null {
    const e = this.#byHandle.get(handle)
    return e === undefined ? null : { ...e.link.remote, kind: e.link.kind }
  }

  /** The transport of an endpoint: a fake-TCP flow's handle (the addon hands those out), a live entry's kind, else UDP. */
  transportOf (ip: number): 'udp' | ConnKind {
    if (isFakeTcpHandle(ip)) return 'faketcp'
    return isConnHandle(ip) ? (this.#byHandle.get(ip)?.link.kind ?? 'tcp') : 'udp'
  }

  /** How a handle reads in logs and status ("tcp:198.51.100.7:41000"); the daemon installs it (wire/addr.ts setConnHandleText). */
  text (handle: number): string {
    const r = this.remoteOf(handle)
    return r === null ? `closed connection #${handle & HANDLE_INDEX_MASK}` : `${r.kind}:${intToIp(r.ip)}:${r.port}`
  }
  get (handle: number): ConnEntry | undefined { return this.#byHandle.get(handle) }
  entries (): IterableIterator<ConnEntry> { return this.#byHandle.values() }

  /**
   * Take a new link. null (and the link closed) when the table is full of
   * authenticated entries; an unauthenticated one beyond maxUnauth pushes
   * out the oldest unauthenticated entry. `open`: trusted from the start
   * (a client's own connection to its server).
   */
  async add (link: LinkIo, opt: { open: boolean }): Promise<ConnEntry | null> {
    if (!opt.open) {
      const unauth = [...this.#byHandle.values()].filter(e => !e.open)
      if (unauth.length >= this.#o.maxUnauth) {
        unauth.sort((a, b) => a.createdAt - b.createdAt)[0]!.close('evicted: too many connections without a handshake')
        this.counters.transportUnauthEvicted++
      }
    }
    if (this.#byHandle.size >= this.#o.maxConns) {
      this.counters.transportConnsRefused++
      link.close()
      return null
    }
    let bridge: Bridge
    const table = this
    const handle = this.#allocate()
    const bridgeIp = (0x7f000000 | (handle & HANDLE_INDEX_MASK)) >>> 0
    let e: Entry
    try {
      bridge = new Bridge(this.#native, intToIp(bridgeIp), () => this.#daemon(), (msg, fromPort) => {
        if (fromPort !== this.#daemon().port) return // only the daemon's own socket talks to a bridge
        if (msg[0] === MSG_HANDSHAKE_RESP) e.open = true
        if (link.send(msg)) this.counters.transportMsgsOut++
        else this.counters.transportDropBackedUp++
      })
    } catch {
      link.close()
      this.counters.transportConnsRefused++
      return null
    }
    bridge.onLost = (n) => { this.counters.transportDropBridge += n }
    const port = bridge.port
    e = {
      handle, link, open: opt.open, createdAt: this.#o.now(), bridge, bridgeIp, bridgePort: port, closed: false, onClose: [],
      deliver (msg: Uint8Array): void {
        if (e.closed) return
        table.counters.transportMsgsIn++
        if (!bridge.send(msg)) table.counters.transportDropBridge++
      },
      close (reason: string): void { table.#remove(e, reason) }
    }
    this.#byHandle.set(handle, e)
    this.#byBridge.set(endpointKey(bridgeIp, port), e)
    this.counters.transportConns++
    return e
  }

  /** Run `fn` when the entry closes (the client's transport choice listens). */
  onClose (handle: number, fn: (reason: string) => void): void {
    const e = this.#byHandle.get(handle)
    if (e === undefined) fn('gone')
    else e.onClose.push(fn)
  }

  /** The bridge address the daemon's socket sends to for `handle`, or null when it is not live. */
  bridgeOf (handle: number): { ip: number, port: number } | null {
    const e = this.#byHandle.get(handle)
    return e === undefined ? null : { ip: e.bridgeIp, port: e.bridgePort }
  }

  /** The handle endpoint of a datagram that came from a bridge, or null for any other source. */
  handleOf (ip: number, port: number): { ip: number, port: number } | null {
    if (ip >>> 24 !== 127) return null
    const e = this.#byBridge.get(endpointKey(ip, port))
    return e === undefined ? null : { ip: e.handle, port: e.link.remote.port }
  }

  /**
   * Close everything (daemon stop). What the daemon's socket already sent toward a connection (the
   * controller's Bye, sent just before) is read from its bridge and leaves on the link before it ends.
   */
  closeAll (): void {
    for (const e of [...this.#byHandle.values()]) {
      e.bridge.pump()
      this.#remove(e, 'shutting down', true)
    }
  }

  #allocate (): number {
    for (;;) {
      const i = this.#nextIndex
      this.#nextIndex = i >= HANDLE_INDEX_MASK - 1 ? FIRST_INDEX : i + 1
      const h = (HANDLE_CONN | i) >>> 0
      if (!this.#byHandle.has(h)) return h
    }
  }

  #remove (e: Entry, reason: string, graceful = false): void {
    if (e.closed) return
    e.closed = true
    this.#byHandle.delete(e.handle)
    this.#byBridge.delete(endpointKey(e.bridgeIp, e.bridgePort))
    e.bridge.close()
    e.link.close(graceful)
    for (const fn of e.onClose) fn(reason)
  }
}

export { isConnHandle }
