/**
 * An in-memory twin of the addon's I/O side (src/dataplane/native.ts
 * `Native`), so the real pipelines (dataplane/pipelines.ts, outbound.ts,
 * inbound.ts) run without root, devices or sockets (STYLE habit 2,
 * wireguard-go tuntest/bindtest):
 *
 *   test ──inject()──▶ FakeTun.toPipeline ──tunRead*──▶ pipeline ──udpSend*──▶ FakeUdp at that address? ─▶ its rx queue
 *                                                                      └─ else ─▶ sender's outbox ──takeSent()──▶ test
 *   test ──inject(bytes, from)──▶ FakeUdp.rx ──udpRecv*──▶ pipeline ──tunWrite*──▶ FakeTun.written ──take()──▶ test
 *
 * - Fds are numbers from 1000 up, never real descriptors; every fd names a
 *   FakeTun or a FakeUdp of this FakeIo (its own little host and network).
 * - pollStart is driven by the queues: while an fd's receive queue holds
 *   something, each poll on it runs its callback on a setImmediate turn
 *   (level-triggered, like the real uv_poll). `settle()` waits until no
 *   callback is pending.
 * - Packet cost is a copy per crossing: inject keeps a reference to the
 *   caller's bytes (don't change them until read), a read copies them into
 *   the pipeline's memory, a send or TUN write copies out of it into a
 *   reused buffer of the queue. No allocation per packet once the queues
 *   have grown (bench/micro/pipeline.bench.ts relies on it).
 * - No offloads: tunOpenVnet grants none (offload 0), reads hand over one
 *   packet per slot, writes write each packet as is, udpSetGro says no, and
 *   the native fast path is attached but never takes a packet, so every
 *   packet goes through the TypeScript pipelines.
 * - AEAD (aeadSealBatch/aeadOpenBatch) and fastLayout are the real addon's
 *   (crypto needs no root). The addon's test-only functions (vnetSplit,
 *   vnetCoalesce, poly1305Blocks, socketPairDgram) are not in the twin.
 * - Failures look like the addon's: Error{ code, syscall, errno } with the
 *   message "<fn>: <syscall> failed: <text> (<CODE>)".
 */
import { loadNative, type Native, type PollHandle } from '../../src/dataplane/native.js'

const ERRNO: Record<string, number> = { EBADF: 9, EBUSY: 16, EEXIST: 17, EADDRINUSE: 98, ENOTSOCK: 88, EBADFD: 77, EINVAL: 22 }

function errnoError (fn: string, syscall: string, code: string): Error {
  return Object.assign(new Error(`${fn}: ${syscall} failed: (fake-io) (${code})`), { code, syscall, errno: -(ERRNO[code] ?? 1) })
}

const NOTHING = new Uint8Array(0)

function endpointKey (ip: number, port: number): number { return ip * 65536 + port }

export function ipString (ip: number): string { return [ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255].join('.') }

function parseIp (fn: string, host: string): number {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host)
  if (m === null || m.slice(1).some((p) => Number(p) > 255)) throw new RangeError(`${fn}: host "${host}" is not a dotted-quad IPv4 address`)
  return ((Number(m[1]) << 24) | (Number(m[2]) << 16) | (Number(m[3]) << 8) | Number(m[4])) >>> 0
}

/** One queued packet: `data[0, len)`; ip/port: a datagram's source (rx) or destination (outbox). */
interface Entry { data: Uint8Array, len: number, ip: number, port: number, own: Uint8Array | null }

/** A FIFO of packets on a ring of reused entries (grows by doubling, never shrinks). */
export class PacketQueue {
  #ring: Entry[] = []
  #head = 0
  #size = 0

  get length (): number { return this.#size }

  #slot (): Entry {
    if (this.#size === this.#ring.length) {
      const old = this.#ring
      const grown: Entry[] = []
      for (let i = 0; i < old.length; i++) grown.push(old[(this.#head + i) % old.length]!)
      for (let i = 0; i < Math.max(16, old.length); i++) grown.push({ data: NOTHING, len: 0, ip: 0, port: 0, own: null })
      this.#ring = grown
      this.#head = 0
    }
    const e = this.#ring[(this.#head + this.#size) % this.#ring.length]!
    this.#size++
    return e
  }

  /** Queue the caller's bytes by reference. */
  push (data: Uint8Array, ip = 0, port = 0): void {
    const e = this.#slot()
    e.data = data; e.len = data.length; e.ip = ip; e.port = port
  }

  /** Queue a copy of src[off, off + len) in the entry's own reused buffer. */
  pushCopy (src: Uint8Array, off: number, len: number, ip = 0, port = 0): void {
    const e = this.#slot()
    if (e.own === null || e.own.length < len) e.own = new Uint8Array(Math.max(len, 2048))
    e.own.set(src.subarray(off, off + len))
    e.data = e.own; e.len = len; e.ip = ip; e.port = port
  }

  /** The oldest entry, or undefined; valid until the next push. */
  peek (): Readonly<Entry> | undefined { return this.#size === 0 ? undefined : this.#ring[this.#head] }

  /** Copy the oldest entry's first `cap` bytes to dst[off] and drop it. Returns its full length. */
  shiftInto (dst: Uint8Array, off: number, cap: number): number {
    const e = this.#ring[this.#head]!
    const n = Math.min(e.len, cap)
    dst.set(n === e.data.length ? e.data : e.data.subarray(0, n), off)
    this.drop()
    return e.len
  }

  drop (): void {
    const e = this.#ring[this.#head]!
    if (e.own === null || e.data !== e.own) e.data = NOTHING // release the caller's bytes
    this.#head = (this.#head + 1) % this.#ring.length
    this.#size--
  }

  /** Remove everything; each entry as a fresh copy. */
  takeAll (): Array<{ bytes: Uint8Array, ip: number, port: number }> {
    const out: Array<{ bytes: Uint8Array, ip: number, port: number }> = []
    for (let e = this.peek(); e !== undefined; e = this.peek()) {
      out.push({ bytes: e.data.slice(0, e.len), ip: e.ip, port: e.port })
      this.drop()
    }
    return out
  }
}

/** A TUN device: `inject` is the kernel routing a packet into it; `take` is what the pipeline wrote to it. */
export class FakeTun {
  readonly toPipeline = new PacketQueue()
  readonly written = new PacketQueue()
  /** Keep written packets for take(); false: count them only (benchmarks). */
  keepWrites = true
  writtenPackets = 0
  /** Deleted under the daemon (ip link del): reads fail with EBADFD, writes fail. */
  removed = false
  constructor (readonly io: FakeIo, readonly name: string, readonly index: number) {}

  inject (packet: Uint8Array): void {
    this.toPipeline.push(packet)
    this.io.wake(this)
  }

  /** The packets the pipeline wrote since the last take, oldest first. */
  take (): Uint8Array[] { return this.written.takeAll().map((e) => e.bytes) }

  /** Simulate `ip link del`: the device is gone, its fds stay open. */
  remove (): void { this.removed = true; this.io.wake(this) }
}

/** A UDP socket bound to ip:port (ip 0 = any). */
export class FakeUdp {
  readonly rx = new PacketQueue()
  /** Datagrams sent to an address where no FakeUdp of this FakeIo is bound (the "wire"). */
  readonly outbox = new PacketQueue()
  /** Keep outbox datagrams for takeSent(); false: count them only (benchmarks). */
  keepSent = true
  sentPackets = 0
  constructor (readonly io: FakeIo, readonly ip: number, readonly port: number) {}

  /** A datagram arrives from fromIp:fromPort. */
  inject (bytes: Uint8Array, fromIp: number, fromPort: number): void {
    this.rx.push(bytes, fromIp, fromPort)
    this.io.wake(this)
  }

  /** Datagrams sent to the wire since the last take, oldest first, with their destinations. */
  takeSent (): Array<{ bytes: Uint8Array, ip: number, port: number }> { return this.outbox.takeAll() }
}

interface Poll { fd: number, cb: () => void, scheduled: boolean, stopped: boolean }

export interface FakeIoOptions {
  /** The host's address: the source of datagrams from sockets bound to 0.0.0.0 (default 127.0.0.1). */
  localIp?: number
  /** The real addon, for AEAD (default loadNative()). */
  real?: Native
}

export class FakeIo implements Native {
  readonly #real: Native
  readonly localIp: number
  readonly #fds = new Map<number, FakeTun | FakeUdp>()
  readonly #tunNames = new Map<string, FakeTun>()
  readonly #bound = new Map<number, FakeUdp>()
  readonly #polls = new Set<Poll>()
  #nextFd = 1000
  #nextPort = 32768
  #nextIndex = 100
  /** fastPathOut/fastPathIn calls (attached, never taking a packet). */
  fastPathAttached = 0

  constructor (opts: FakeIoOptions = {}) {
    this.#real = opts.real ?? loadNative()
    this.localIp = opts.localIp ?? 0x7f000001
  }

  // ── test side ──

  tun (fd: number): FakeTun {
    const t = this.#fds.get(fd)
    if (!(t instanceof FakeTun)) throw new Error(`fake-io: fd ${fd} is no TUN device`)
    return t
  }

  tunByName (name: string): FakeTun | undefined { return this.#tunNames.get(name) }

  udp (fd: number): FakeUdp {
    const s = this.#fds.get(fd)
    if (!(s instanceof FakeUdp)) throw new Error(`fake-io: fd ${fd} is no UDP socket`)
    return s
  }

  /** Fds open now (a leak check). */
  get openFds (): number[] { return [...this.#fds.keys()] }
  /** Polls started and not stopped. */
  get activePolls (): number { return this.#polls.size }

  /** Resolves once no poll callback is pending (every queue a poll watches is drained or unwatched). */
  async settle (maxTurns = 1000): Promise<void> {
    for (let i = 0; i < maxTurns; i++) {
      if (![...this.#polls].some((p) => p.scheduled)) return
      await new Promise<void>((resolve) => setImmediate(resolve))
    }
    throw new Error('fake-io: polls still busy after settle()')
  }

  /** Schedule the polls of the fds of `dev` that have something to read. */
  wake (dev: FakeTun | FakeUdp): void {
    for (const p of this.#polls) if (this.#fds.get(p.fd) === dev) this.#schedule(p)
  }

  #readable (fd: number): boolean {
    const d = this.#fds.get(fd)
    if (d instanceof FakeTun) return d.removed || d.toPipeline.length > 0
    return d !== undefined && d.rx.length > 0
  }

  #schedule (p: Poll): void {
    if (p.scheduled || p.stopped || !this.#readable(p.fd)) return
    p.scheduled = true
    setImmediate(() => {
      p.scheduled = false
      if (p.stopped || !this.#readable(p.fd)) return
      p.cb()
      this.#schedule(p) // level-triggered: still readable, called again next turn
    })
  }

  #tunOf (fn: string, fd: number, syscall: string): FakeTun {
    const d = this.#fds.get(fd)
    if (d === undefined) throw errnoError(fn, syscall, 'EBADF')
    if (!(d instanceof FakeTun)) throw errnoError(fn, syscall, 'EINVAL')
    return d
  }

  #udpOf (fn: string, fd: number, syscall: string): FakeUdp {
    const d = this.#fds.get(fd)
    if (d === undefined) throw errnoError(fn, syscall, 'EBADF')
    if (!(d instanceof FakeUdp)) throw errnoError(fn, syscall, 'ENOTSOCK')
    return d
  }

  // ── Native: TUN ──

  tunOpen (name: string, _multiQueue: boolean, exclusive: boolean): { fd: number, name: string } {
    if (Buffer.byteLength(name) > 15) throw new RangeError('tunOpen: the TUN device name is longer than 15 bytes')
    let actual = name === '' ? 'tun%d' : name
    if (actual.includes('%d')) {
      let i = 0
      while (this.#tunNames.has(actual.replace('%d', String(i)))) i++
      actual = actual.replace('%d', String(i))
    }
    let dev = this.#tunNames.get(actual)
    if (dev !== undefined && exclusive) throw errnoError('tunOpen', 'ioctl(TUNSETIFF)', 'EBUSY')
    if (dev === undefined) {
      dev = new FakeTun(this, actual, this.#nextIndex++)
      this.#tunNames.set(actual, dev)
    }
    const fd = this.#nextFd++
    this.#fds.set(fd, dev)
    return { fd, name: actual }
  }

  tunOpenVnet (name: string, multiQueue: boolean, exclusive: boolean): { fd: number, name: string, offload: number } {
    return { ...this.tunOpen(name, multiQueue, exclusive), offload: 0 }
  }

  ifIndex (name: string): number { return this.#tunNames.get(name)?.index ?? 0 }

  tunReadBatch (fd: number, mem: Uint8Array, offsets: Int32Array, lens: Int32Array, max: number, cap: number): number {
    const t = this.#tunOf('tunReadBatch', fd, 'read')
    if (t.removed) throw errnoError('tunReadBatch', 'read', 'EBADFD')
    let n = 0
    // A read of a packet longer than cap returns its first cap bytes, as read(2) on a TUN fd does.
    while (n < max && t.toPipeline.length > 0) { lens[n] = Math.min(cap, t.toPipeline.shiftInto(mem, offsets[n]!, cap)); n++ }
    return n
  }

  /** Without a vnet header there are no superpackets: one packet per slot; longer than cap: dropped and counted in state[2]. */
  tunReadSplit (fd: number, _sbuf: Uint8Array, mem: Uint8Array, offsets: Int32Array, lens: Int32Array, max: number, cap: number, state: Int32Array): number {
    const t = this.#tunOf('tunReadSplit', fd, 'read')
    if (t.removed) throw errnoError('tunReadSplit', 'read', 'EBADFD')
    let n = 0
    while (n < max && t.toPipeline.length > 0) {
      if (t.toPipeline.peek()!.len > cap) { t.toPipeline.drop(); state[2]!++; continue }
      lens[n] = t.toPipeline.shiftInto(mem, offsets[n]!, cap)
      n++
    }
    return n
  }

  tunWriteBatch (fd: number, mem: Uint8Array, offsets: Int32Array, lens: Int32Array, n: number): number {
    const t = this.#tunOf('tunWriteBatch', fd, 'write')
    if (t.removed) return 0
    for (let i = 0; i < n; i++) {
      if (t.keepWrites) t.written.pushCopy(mem, offsets[i]!, lens[i]!)
      t.writtenPackets++
    }
    return n
  }

  tunWriteBatchVnet (fd: number, mem: Uint8Array, offsets: Int32Array, lens: Int32Array, n: number): number {
    return this.tunWriteBatch(fd, mem, offsets, lens, n)
  }

  /** No coalescing in the twin: each packet is written as is. */
  tunWriteBatchGro (fd: number, mem: Uint8Array, offsets: Int32Array, lens: Int32Array, n: number): number {
    return this.tunWriteBatch(fd, mem, offsets, lens, n)
  }

  // ── Native: UDP ──

  udpOpen (host: string, port: number, _bufBytes: number): { fd: number, port: number } {
    const ip = parseIp('udpOpen', host)
    const taken = (p: number): boolean => this.#bound.has(endpointKey(ip, p)) || this.#bound.has(endpointKey(0, p)) ||
      (ip === 0 && [...this.#bound.values()].some((s) => s.port === p))
    if (port === 0) {
      while (taken(this.#nextPort)) this.#nextPort = this.#nextPort >= 60999 ? 32768 : this.#nextPort + 1
      port = this.#nextPort++
    } else if (taken(port)) {
      throw errnoError('udpOpen', 'bind', 'EADDRINUSE')
    }
    const s = new FakeUdp(this, ip, port)
    this.#bound.set(endpointKey(ip, port), s)
    const fd = this.#nextFd++
    this.#fds.set(fd, s)
    return { fd, port }
  }

  udpSetGro (fd: number, _on: boolean): boolean {
    this.#udpOf('udpSetGro', fd, 'setsockopt')
    return false
  }

  close (fd: number): void {
    const d = this.#fds.get(fd)
    if (d === undefined) throw errnoError('close', 'close', 'EBADF')
    this.#fds.delete(fd)
    for (const p of this.#polls) if (p.fd === fd) { p.stopped = true; this.#polls.delete(p) }
    if (d instanceof FakeUdp) this.#bound.delete(endpointKey(d.ip, d.port))
    // The kernel removes a TUN device with its last fd.
    else if (![...this.#fds.values()].includes(d)) this.#tunNames.delete(d.name)
  }

  udpRecvBatch (fd: number, mem: Uint8Array, offsets: Int32Array, lens: Int32Array, addrs: Uint32Array, max: number, cap: number): number {
    const s = this.#udpOf('udpRecvBatch', fd, 'recvmmsg')
    let n = 0
    for (let e = s.rx.peek(); n < max && e !== undefined; e = s.rx.peek()) {
      addrs[2 * n] = e.ip
      addrs[2 * n + 1] = e.port
      const len = s.rx.shiftInto(mem, offsets[n]!, cap)
      lens[n] = len > cap ? -1 : len
      n++
    }
    return n
  }

  /** GRO is never on in the twin: one entry per datagram, datagram j into bufOffsets[j]; info[1], info[2] stay 0. */
  udpRecvGro (fd: number, mem: Uint8Array, bufOffsets: Int32Array, nBufs: number, bufCap: number, offsets: Int32Array, lens: Int32Array,
    addrs: Uint32Array, max: number, info: Int32Array): number {
    const m = Math.min(nBufs, max)
    for (let j = 0; j < m; j++) offsets[j] = bufOffsets[j]!
    const n = this.udpRecvBatch(fd, mem, offsets, lens, addrs, m, bufCap)
    info[0] = n
    return n
  }

  /** Deliver to the FakeUdp bound at ip:port (or 0.0.0.0:port), else put on the sender's outbox. */
  #route (s: FakeUdp, mem: Uint8Array, off: number, len: number, ip: number, port: number): void {
    const dst = this.#bound.get(endpointKey(ip, port)) ?? this.#bound.get(endpointKey(0, port))
    if (dst !== undefined) {
      const src = s.ip !== 0 ? s.ip : (ip >>> 24) === 127 ? 0x7f000001 : this.localIp
      dst.rx.pushCopy(mem, off, len, src, s.port)
      this.wake(dst)
      return
    }
    if (s.keepSent) s.outbox.pushCopy(mem, off, len, ip, port)
    s.sentPackets++
  }

  udpSendBatch (fd: number, mem: Uint8Array, offsets: Int32Array, lens: Int32Array, addrs: Uint32Array, n: number): number {
    const s = this.#udpOf('udpSendBatch', fd, 'sendmmsg')
    for (let i = 0; i < n; i++) this.#route(s, mem, offsets[i]!, lens[i]!, addrs[2 * i]!, addrs[2 * i + 1]!)
    return n
  }

  /** No segmentation offload in the twin: the same datagrams, one by one. */
  udpSendBatchGso (fd: number, mem: Uint8Array, offsets: Int32Array, lens: Int32Array, addrs: Uint32Array, n: number): number {
    return this.udpSendBatch(fd, mem, offsets, lens, addrs, n)
  }

  udpSendTo (fd: number, buf: Uint8Array, ip: number, port: number): number {
    this.#route(this.#udpOf('udpSendTo', fd, 'sendto'), buf, 0, buf.length, ip >>> 0, port)
    return buf.length
  }

  /** The TTL is not modelled: the datagram is delivered like any other. */
  udpSendToTtl (fd: number, buf: Uint8Array, ip: number, port: number, _ttl: number): number {
    return this.udpSendTo(fd, buf, ip, port)
  }

  // ── Native: polls ──

  pollStart (fd: number, cb: () => void): PollHandle {
    if (!this.#fds.has(fd)) throw errnoError('pollStart', 'uv_poll_init', 'EBADF')
    const p: Poll = { fd, cb, scheduled: false, stopped: false }
    this.#polls.add(p)
    this.#schedule(p)
    return p
  }

  pollStop (handle: PollHandle): void {
    const p = handle as Poll
    p.stopped = true
    this.#polls.delete(p)
  }

  // ── Native: crypto (the real addon) ──

  aeadSealBatch (mem: Uint8Array, desc: Int32Array, n: number, keys: Uint8Array): void {
    this.#real.aeadSealBatch(mem, desc, n, keys)
  }

  aeadOpenBatch (mem: Uint8Array, desc: Int32Array, n: number, keys: Uint8Array, results: Int32Array): number {
    return this.#real.aeadOpenBatch(mem, desc, n, keys, results)
  }

  // ── Native: the fast path, attached but never taken ──

  fastPathOut (): void { this.fastPathAttached++ }
  fastPathIn (): void { this.fastPathAttached++ }
  fastPathLink (): void {}
  fastLayout (): ReturnType<Native['fastLayout']> { return this.#real.fastLayout() }

  // ── the addon's test-only functions: not in the twin ──

  vnetSplit (): number { throw new Error('fake-io: vnetSplit is not in the twin') }
  vnetCoalesce (): number { throw new Error('fake-io: vnetCoalesce is not in the twin') }
  poly1305Blocks (): Uint8Array { throw new Error('fake-io: poly1305Blocks is not in the twin') }
  socketPairDgram (): [number, number] { throw new Error('fake-io: socketPairDgram is not in the twin') }
}
