/**
 * The dataplane as the control plane sees it: opens the TUN device and the
 * UDP socket, starts the pipeline threads, and implements DataplanePort. The
 * control plane never touches a data packet: it sends control datagrams,
 * drains the control ring, and posts key and route changes to the pipelines.
 *
 * Thread placement (`--placement`, decided by measurement; see
 * docs/ARCHITECTURE.md and docs/PERFORMANCE.md): 'split' runs one worker per
 * direction (the outbound worker owns TUN reads, sealing and sends; the
 * inbound worker owns receives, opening, relaying and TUN writes); 'fused'
 * runs both pipelines on one worker; 'inline' runs both on the main thread
 * (InlineHost), still behind postMessage. Either way each direction runs on
 * one thread, so per-peer order holds, and each session's send counter and
 * replay window have a single owner.
 */
import type { EventEmitter } from 'node:events'
import { Worker } from 'node:worker_threads'
import { fileURLToPath } from 'node:url'
import { VpnError } from '../errors.js'
import type { Logger } from '../log.js'
import { loadNative, openTunVnet, type Native, type PollHandle } from './native.js'
import { openOutsideSocket } from './v6-socket.js'
import type { V6Table } from './v6-table.js'
import { SpscRing } from './ring.js'
import { StatsReader, createStatsBuffer, type PeerCounters } from './stats.js'
import { configureTun } from './tun-config.js'
import { InlineHost } from './inline-host.js'
import { ControlDrain } from './control-drain.js'
import type { ControlHandler, DataplanePort, PeerRoute } from '../control/port.js'
import type { TunOffload } from '../control/status.js'
import type { IpPrefix } from '../wire/prefix.js'
import type { Placement } from '../config/schema.js'
import {
  BATCH, CTRL_RING_SLOTS, CTRL_SLOT_SIZE, RX_BUF_SIZE, RX_BUFS, SLOT_SIZE, WORKER_ROLES,
  type FromWorker, type ToWorker, type WorkerInit, type WorkerKind, type WorkerRole
} from '../workers/layout.js'

export interface DataplaneOptions {
  mode: 'server' | 'client'
  dev: string
  /** "10.0.0.1/24" */
  cidr: string
  tunnelIp: number
  mtu: number
  listenHost: string
  listenPort: number
  maxPeers: number
  /** Socket buffer size in bytes. */
  socketBuffer: number
  /** Thread placement: 'split' = a worker per direction, 'fused' = one worker for both. */
  placement: Placement
  /** Handle lone packets in the addon (native/fastpath.c); default true. */
  fastPath?: boolean
  /** --mss-clamp: TCP SYNs' MSS lowered to the peer's path, both ways (mss-clamp.ts); default false. */
  mssClamp?: boolean
  /** The fake-TCP link's data socket (dataplane/faketcp-link.ts opens and closes it), polled by the inbound pipeline. */
  ftcpFd?: number
  /** Server: mac1/cookie keys; the inbound pipeline then gates HandshakeInits (dataplane/init-guard.ts). */
  macKeys?: { mac1: Uint8Array, cookie: Uint8Array }
  /** Server: --client-isolation (no relay between clients). */
  clientIsolation?: boolean
  /** The node's IPv6 tunnel address with its prefix length (config tun6), added to the device; null/absent: none. */
  tun6?: IpPrefix | null
  /** The daemon's IPv6 address table: an AF_INET6 socket resolves handles through it (v6-socket.ts). */
  v6Table?: V6Table | null
}

/** Probe sockets open at once at most, adopted ones included (the birthday search opens 256). */
const MAX_PROBE_SOCKETS = 384

/** A thread running pipelines: a Worker, or the main thread itself (InlineHost). */
type PipelineThread = EventEmitter & { postMessage: (m: ToWorker) => void, terminate: () => Promise<number> }

export class Dataplane implements DataplanePort {
  readonly #native: Native
  readonly #log: Logger
  readonly #opt: DataplaneOptions
  #tunFd = -1
  #udpFd = -1
  #boundPort = 0
  #family: 4 | 6 = 4
  #devName = ''
  #tunOffload: TunOffload = 'none'
  #udpGro = false
  /** Worker per pipeline role; with 'fused' both roles map to the same worker. */
  readonly #workers = new Map<WorkerRole, PipelineThread>()
  /** Resolves when the worker has exited (for whatever reason). */
  readonly #exited = new Map<PipelineThread, Promise<void>>()
  readonly #ring: SpscRing
  readonly #drain: ControlDrain
  readonly #ringSab: SharedArrayBuffer
  readonly #statsSab: SharedArrayBuffer
  readonly #stats: StatsReader
  #handler: ControlHandler | null = null
  /** The last setLocalPrefixes (re-sent to threads that start later). */
  #localPrefixes: readonly IpPrefix[] = []
  #closing: Promise<void> | null = null
  #onFatal: (err: Error) => void = () => {}

  constructor (opt: DataplaneOptions, log: Logger) {
    this.#native = loadNative()
    this.#opt = opt
    this.#log = log
    this.#ringSab = SpscRing.create(CTRL_RING_SLOTS, CTRL_SLOT_SIZE)
    this.#ring = new SpscRing(this.#ringSab, CTRL_RING_SLOTS, CTRL_SLOT_SIZE)
    this.#drain = new ControlDrain(this.#ring, (input) => { this.#handler?.onControl(input) }, log)
    this.#statsSab = createStatsBuffer(opt.maxPeers)
    this.#stats = new StatsReader(this.#statsSab, opt.maxPeers)
  }

  get port (): number { return this.#boundPort }
  /** The UDP socket's family: 6 = AF_INET6 dual-stack (IPv4 peers too), 4 = IPv4 only. */
  get family (): 4 | 6 { return this.#family }
  /** What the kernel granted: TUN offloads and UDP GRO (for status). */
  get offloads (): { tunOffload: TunOffload, udpGro: boolean, fastPath: boolean } {
    return { tunOffload: this.#tunOffload, udpGro: this.#udpGro, fastPath: this.#opt.fastPath ?? true }
  }
  get devName (): string { return this.#devName }

  /** Open the device and socket, configure the device, start the workers. Undoes everything on failure. */
  async start (handler: ControlHandler, onFatal: (err: Error) => void): Promise<void> {
    this.#handler = handler
    this.#onFatal = onFatal
    const o = this.#opt
    try {
      // TUN offloads (TSO/USO superpackets split by the outbound pipeline) when the kernel takes them.
      const tun = openTunVnet(this.#native, o.dev, true, true)
      this.#tunFd = tun.fd
      if (tun.offload === 0) this.#log.info('the kernel refused TUN offloads; reading packet by packet')
      this.#tunOffload = (['none', 'tso4', 'tso', 'tso+uso'] as const)[tun.offload] ?? 'none'
      this.#devName = tun.name
      const udp = openOutsideSocket(this.#native, o.listenHost, o.listenPort, o.socketBuffer, o.v6Table ?? null, this.#log)
      this.#family = udp.family
      this.#udpFd = udp.fd
      this.#boundPort = udp.port
      // A peer's GSO batch then arrives as one datagram (split by the inbound pipeline): one skb instead of dozens.
      this.#udpGro = this.#native.udpSetGro(udp.fd, true)
      if (!this.#udpGro) this.#log.info('the kernel refused UDP_GRO; receiving datagram by datagram')
      await configureTun(this.#devName, o.cidr, o.mtu, o.tun6 ?? null)
      if (o.placement !== 'split') await this.#startWorker('both', 0)
      else for (const [i, role] of WORKER_ROLES.entries()) await this.#startWorker(role, i)
      // Set before the threads existed (setLocalPrefixes is legal at any time): hand them over now.
      if (this.#localPrefixes.length > 0) this.#postAll({ code: 'LOCAL', prefixes: this.#localPrefixes })
    } catch (err) {
      await this.close()
      throw err
    }
  }

  async #startWorker (role: WorkerKind, statsIndex: number): Promise<void> {
    const init: WorkerInit = {
      role,
      statsIndex,
      mode: this.#opt.mode,
      tunFd: this.#tunFd,
      tunVnet: true, // the device is always opened with IFF_VNET_HDR (openTunVnet above)
      udpFd: this.#udpFd,
      ftcpFd: this.#opt.ftcpFd ?? -1,
      tunnelIp: this.#opt.tunnelIp,
      mtu: this.#opt.mtu,
      maxPeers: this.#opt.maxPeers,
      packetMem: new SharedArrayBuffer(role === 'inbound' ? RX_BUFS * RX_BUF_SIZE : BATCH * SLOT_SIZE),
      packetMemIn: role === 'both' ? new SharedArrayBuffer(RX_BUFS * RX_BUF_SIZE) : null,
      stats: this.#statsSab,
      ctrlRing: role !== 'outbound' ? this.#ringSab : null,
      fastPath: this.#opt.fastPath ?? true,
      mssClamp: this.#opt.mssClamp === true,
      macKeys: this.#opt.macKeys ?? null,
      clientIsolation: this.#opt.clientIsolation === true
    }
    const w: PipelineThread = this.#opt.placement === 'inline'
      ? new InlineHost(init, this.#native)
      : new Worker(fileURLToPath(new URL('../workers/dataplane-worker.js', import.meta.url)), { workerData: init, name: `lwt-${role}` })
    // Recorded now, so close() also finds a worker that already exited (a crash races with shutdown).
    this.#exited.set(w, new Promise<void>((resolve) => { w.once('exit', () => resolve()) }))
    for (const r of role === 'both' ? WORKER_ROLES : [role]) this.#workers.set(r, w)
    const what = this.#threadName(role)
    await new Promise<void>((resolve, reject) => {
      const onMsg = (m: FromWorker): void => {
        if (m.code === 'READY') { w.off('message', onMsg); resolve() } else if (m.code === 'ERROR') reject(new VpnError('ERR_WORKER', `${what} failed to start: ${m.message}`))
      }
      w.on('message', onMsg)
      w.once('error', reject)
    })
    w.on('message', (m: FromWorker) => { this.#fromWorker(role, m) })
    w.on('error', (err) => { this.#fatal(new VpnError('ERR_WORKER', `${what} crashed: ${err.message}`, { cause: err })) })
    w.on('exit', (code) => {
      if (this.#closing === null) this.#fatal(new VpnError('ERR_WORKER', `${what} exited unexpectedly (code ${code})`))
    })
  }

  #threadName (role: WorkerKind): string {
    if (role !== 'both') return `the dataplane's ${role} worker`
    return this.#opt.placement === 'inline' ? 'the dataplane (on the main thread)' : 'the dataplane worker'
  }

  #fatal (err: Error): void {
    if (this.#closing !== null) return
    this.#onFatal(err)
  }

  #fromWorker (role: WorkerKind, m: FromWorker): void {
    const h = this.#handler
    if (h === null) return
    switch (m.code) {
      case 'CTRL': this.drainControl(); break
      case 'NEED_SESSION': h.onNeedSession(m.slot); break
      case 'SEND_LIMIT': h.onSendLimit(m.slot); break
      case 'ENDPOINT': h.onEndpoint(m.slot, m.ip, m.port); break
      case 'ERROR':
        this.#fatal(m.tunGone === true
          ? new VpnError('ERR_TUN_GONE', `the TUN device ${this.#devName} was removed while the daemon was running (${m.message})`, { hint: 'something outside lightweight-tunnel deleted the device (ip link del?); start the daemon again' })
          : new VpnError('ERR_WORKER', `${this.#threadName(role)} failed: ${m.message}`))
        break
      default: break
    }
  }

  /** Hand queued control packets to the control plane, in bounded turns (dataplane/control-drain.ts). */
  drainControl (): void { this.#drain.drain() }

  #post (role: WorkerRole, m: ToWorker): void {
    this.#workers.get(role)?.postMessage(m)
  }

  #postAll (m: ToWorker): void {
    for (const w of new Set(this.#workers.values())) w.postMessage(m)
  }

  // ── DataplanePort ──

  setPeer (r: PeerRoute): void {
    const fd = r.sock !== undefined && r.sock > 0 ? this.#probeSocks.get(r.sock)?.fd ?? -1 : -1
    this.#postAll({ code: 'PEER', slot: r.slot, peerId: r.peerId, tunnelIp: r.tunnelIp, endpointIp: r.endpointIp, endpointPort: r.endpointPort, relayVia: r.relayVia, fd, prefixes: r.prefixes ?? [] })
  }

  setLocalPrefixes (prefixes: readonly IpPrefix[]): void {
    this.#localPrefixes = prefixes
    this.#postAll({ code: 'LOCAL', prefixes })
  }

  removePeer (slot: number): void { this.#postAll({ code: 'PEER_REMOVE', slot }) }

  setSendKey (slot: number, key: Uint8Array, remoteIndex: number, fec: { data: number, parity: number } | null = null): void {
    this.#post('outbound', { code: 'SEND_KEY', slot, key, remoteIndex, fec })
  }

  clearSendKey (slot: number): void {
    this.#post('outbound', { code: 'SEND_KEY_CLEAR', slot })
  }

  setPathMtu (slot: number, inner: number): void {
    this.#postAll({ code: 'PATH_MTU', slot, inner }) // inbound: --mss-clamp clamps a peer's SYNs to it too
  }

  setRecvKey (slot: number, localIndex: number, key: Uint8Array, fec = false): void {
    this.#post('inbound', { code: 'RECV_KEY', slot, localIndex, key, fec })
  }

  dropRecvIndex (localIndex: number): void { this.#post('inbound', { code: 'DROP_INDEX', localIndex }) }

  #fdOf (sock: number | undefined): number {
    if (sock === undefined || sock === 0) return this.#udpFd
    return this.#probeSocks.get(sock)?.fd ?? -1
  }

  sendControl (bytes: Uint8Array, ip: number, port: number, sock?: number): void {
    const fd = this.#fdOf(sock)
    if (fd < 0) return
    const r = this.#native.udpSendTo(fd, bytes, ip, port)
    if (r < 0 && this.#log.enabled('debug')) this.#log.debug('control send failed', { errno: -r })
  }

  sendControlTtl (bytes: Uint8Array, ip: number, port: number, ttl: number, sock?: number): void {
    const fd = this.#fdOf(sock)
    if (fd < 0) return
    const r = this.#native.udpSendToTtl(fd, bytes, ip, port, ttl)
    if (r < 0 && this.#log.enabled('debug')) this.#log.debug('control send failed', { errno: -r })
  }

  // ── probe sockets (birthday search) ──
  //
  // Opened and read by the main thread (a uv_poll each, like the workers'
  // sockets): only probes arrive on them until one wins. The winner is
  // adopted: its poll moves to the inbound worker (ADD_SOCKET) and the
  // outbound worker sends that peer's data from it; it is closed at shutdown.
  // The rest are closed at once. At most MAX_PROBE_SOCKETS open, adopted
  // ones included.

  readonly #probeSocks = new Map<number, { fd: number, poll: PollHandle | null, adopted: boolean }>()
  #nextSock = 1
  readonly #rx = {
    mem: new Uint8Array(16 * 2048), offsets: Int32Array.from({ length: 16 }, (_, i) => i * 2048),
    lens: new Int32Array(16), addrs: new Uint32Array(32)
  }

  openProbeSockets (n: number): number[] {
    const ids: number[] = []
    if (this.#udpFd < 0) return ids
    while (ids.length < n && this.#probeSocks.size < MAX_PROBE_SOCKETS) {
      let fd: number
      try { fd = this.#native.udpOpen('0.0.0.0', 0, 256 * 1024).fd } catch (err) {
        this.#log.warn('cannot open a probe socket', { err })
        break
      }
      const id = this.#nextSock++
      const poll = this.#native.pollStart(fd, () => { this.#drainProbe(id) })
      this.#probeSocks.set(id, { fd, poll, adopted: false })
      ids.push(id)
    }
    return ids
  }

  #drainProbe (id: number): void {
    const s = this.#probeSocks.get(id)
    if (s === undefined || s.adopted) return
    const rx = this.#rx
    for (let round = 0; round < 4; round++) {
      let n: number
      try { n = this.#native.udpRecvBatch(s.fd, rx.mem, rx.offsets, rx.lens, rx.addrs, 16, 2048) } catch { return }
      for (let i = 0; i < n; i++) {
        const len = rx.lens[i]!
        const off = rx.offsets[i]!
        // Only control messages (type 3) matter here; anything else is dropped.
        if (len < 32 || rx.mem[off] !== 3) continue
        try {
          this.#handler?.onControl({ kind: 'packet', bytes: rx.mem.slice(off, off + len), ip: rx.addrs[2 * i]!, port: rx.addrs[2 * i + 1]!, via: 0, sock: id })
        } catch (err) {
          this.#log.error('probe handler failed (packet dropped)', { err })
        }
      }
      if (n < 16) return
    }
  }

  adoptProbeSocket (sock: number): void {
    const s = this.#probeSocks.get(sock)
    if (s === undefined || s.adopted) return
    if (s.poll !== null) { this.#native.pollStop(s.poll); s.poll = null }
    s.adopted = true
    this.#post('inbound', { code: 'ADD_SOCKET', fd: s.fd, sock })
  }

  closeProbeSockets (socks: readonly number[]): void {
    for (const id of socks) {
      const s = this.#probeSocks.get(id)
      if (s === undefined || s.adopted) continue
      if (s.poll !== null) this.#native.pollStop(s.poll)
      this.#native.close(s.fd)
      this.#probeSocks.delete(id)
    }
  }

  peerCounters (slot: number): PeerCounters { return this.#stats.peer(slot) }
  counters (): Record<string, number> { return this.#stats.counters() }

  /** Stop the workers, close the socket and the device (the kernel removes the device with its last fd). Idempotent. */
  close (): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  async #close (): Promise<void> {
    this.#drain.stop()
    await Promise.all([...new Set(this.#workers.values())].map(async (w) => {
      const stopped = this.#exited.get(w)!
      w.postMessage({ code: 'STOP' } satisfies ToWorker)
      const t = setTimeout(() => { void w.terminate() }, 2000)
      await stopped
      clearTimeout(t)
    }))
    this.#workers.clear()
    for (const s of this.#probeSocks.values()) {
      if (s.poll !== null) this.#native.pollStop(s.poll)
      this.#native.close(s.fd)
    }
    this.#probeSocks.clear()
    if (this.#udpFd >= 0) { this.#native.close(this.#udpFd); this.#udpFd = -1 }
    if (this.#tunFd >= 0) { this.#native.close(this.#tunFd); this.#tunFd = -1 }
  }
}
