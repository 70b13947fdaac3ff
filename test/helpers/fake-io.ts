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
 *   reused buffer of the queue. Once the queues have grown no buffer is
 *   allocated per packet (at most a typed-array view), and inject(p, times)
 *   queues one entry for a repeated packet: bench/micro/pipeline.bench.ts
 *   measures the pipelines through this twin and relies on both.
 * - No TUN offloads: tunOpenVnet grants none (offload 0), reads hand over
 *   one packet per slot, writes write each packet as is. UDP GRO is modelled
 *   (udpRecvGro coalesces runs of equal-size datagrams as the kernel does);
 *   sends are never segmented. The native fast path is attached but never
 *   takes a packet, so every packet goes through the TypeScript pipelines.
 * - AEAD (aeadSealBatch/aeadOpenBatch) and fastLayout are the real addon's
 *   (crypto needs no root). The addon's test-only functions (vnetSplit,
 *   vnetCoalesce, poly1305Blocks, socketPairDgram) are not in the twin.
 * - Failures look like the addon's: Error{ code, syscall, errno } with the
 *   message "<fn>: <syscall> failed: <text> (<CODE>)".
 */
import { loadNative, type Native, type PollHandle } from '../../src/dataplane/native.js'
import { gfMatMulJs } from '../../src/dataplane/reed-solomon.js'

const ERRNO: Record<string, number> = { EBADF: 9, EBUSY: 16, EEXIST: 17, EADDRINUSE: 98, ENOTSOCK: 88, EBADFD: 77, EINVAL: 22 }

function errnoError (fn: string, syscall: string, code: string): Error {
  return Object.assign(new Error(`${fn}: ${syscall} failed: (fake-io) (${code})`), { code, syscall, errno: -(ERRNO[code] ?? 1) })
}

const NOTHING = new Uint8Array(0)
/** Most segments the kernel's UDP GRO puts in one datagram. */
const GRO_SEGMENTS = 64

export function ipString (ip: number): string { return [ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255].join('.') }

function parseIp (fn: string, host: string): number {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host)
  if (m === null || m.slice(1).some((p) => Number(p) > 255)) throw new RangeError(`${fn}: host "${host}" is not a dotted-quad IPv4 address`)
  return ((Number(m[1]) << 24) | (Number(m[2]) << 16) | (Number(m[3]) << 8) | Number(m[4])) >>> 0
}

/** One queued packet, `times` times over: `data[0, len)`; ip/port: a datagram's source (rx) or destination (outbox). */
interface Entry { data: Uint8Array, len: number, ip: number, port: number, times: number, own: Uint8Array | null }

/** A FIFO of packets on a ring of reused entries (a power of two; grows by doubling, never shrinks). */
export class PacketQueue {
  #ring: Entry[] = []
  #mask = -1
  #head = 0
  /** Entries in use. */
  #size = 0
  /** Packets waiting (an entry counts `times`). */
  #packets = 0

  get length (): number { return this.#packets }

  #slot (): Entry {
    if (this.#size === this.#ring.length) {
      const old = this.#ring
      const grown: Entry[] = []
      for (let i = 0; i < old.length; i++) grown.push(old[(this.#head + i) & this.#mask]!)
      for (let i = 0, n = Math.max(16, old.length); i < n; i++) grown.push({ data: NOTHING, len: 0, ip: 0, port: 0, times: 1, own: null })
      this.#ring = grown
      this.#mask = grown.length - 1
      this.#head = 0
    }
    const e = this.#ring[(this.#head + this.#size) & this.#mask]!
    this.#size++
    return e
  }

  /** Queue the caller's bytes by reference, `times` times (one entry: a benchmark's batch costs no per-packet push). */
  push (data: Uint8Array, ip = 0, port = 0, times = 1): void {
    if (times < 1) return
    const e = this.#slot()
    e.data = data; e.len = data.length; e.ip = ip; e.port = port; e.times = times
    this.#packets += times
  }

  /** Queue a copy of src[off, off + len) in the entry's own reused buffer. */
  pushCopy (src: Uint8Array, off: number, len: number, ip = 0, port = 0): void {
    const e = this.#slot()
    if (e.own === null || e.own.length < len) e.own = new Uint8Array(Math.max(len, 2048))
    e.own.set(src.subarray(off, off + len))
    e.data = e.own; e.len = len; e.ip = ip; e.port = port; e.times = 1
    this.#packets++
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

  /** Drop the oldest packet (`count` copies of the oldest entry, at most its `times`). */
  drop (count = 1): void {
    const e = this.#ring[this.#head]!
    this.#packets -= count
    e.times -= count
    if (e.times > 0) return
    if (e.own === null || e.data !== e.own) e.data = NOTHING // release the caller's bytes
    this.#head = (this.#head + 1) & this.#mask
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

  /** The kernel routes `packet` into the device (`times` times over). Kept by reference until read. */
  inject (packet: Uint8Array, times = 1): void {
    this.toPipeline.push(packet, 0, 0, times)
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
  /** UDP_GRO on (udpSetGro): udpRecvGro coalesces runs as the kernel would. */
  gro = false
  constructor (readonly io: FakeIo, readonly ip: number, readonly port: number) {}

  /** A datagram arrives from fromIp:fromPort (`times` times over). Kept by reference until received. */
  inject (bytes: Uint8Array, fromIp: number, fromPort: number, times = 1): void {
    this.rx.push(bytes, fromIp, fromPort, times)
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
  /** Sockets by bound port. */
  readonly #byPort = new Map<number, FakeUdp[]>()
  /** Bumped by every bind and close: invalidates the route cache. */
  #gen = 0
  /** The last destination looked up (a benchmark sends batch after batch to one address). */
  readonly #routeCache: { gen: number, ip: number, port: number, dst: FakeUdp | undefined } = { gen: -1, ip: 0, port: 0, dst: undefined }
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
    if (this.#polls.size === 0) return
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
    // A read of a packet longer than cap returns its first cap bytes, as read(2) on a TUN fd does.
    return this.#readTun(t.toPipeline, mem, offsets, lens, max, cap, null)
  }

  /** Without a vnet header there are no superpackets: one packet per slot; longer than cap: dropped and counted in state[2]. */
  tunReadSplit (fd: number, _sbuf: Uint8Array, mem: Uint8Array, offsets: Int32Array, lens: Int32Array, max: number, cap: number, state: Int32Array): number {
    const t = this.#tunOf('tunReadSplit', fd, 'read')
    if (t.removed) throw errnoError('tunReadSplit', 'read', 'EBADFD')
    return this.#readTun(t.toPipeline, mem, offsets, lens, max, cap, state)
  }

  /** Up to max packets into mem+offsets[i]; longer than cap: truncated (dropped = null) or dropped and counted in dropped[2]. */
  #readTun (q: PacketQueue, mem: Uint8Array, offsets: Int32Array, lens: Int32Array, max: number, cap: number, dropped: Int32Array | null): number {
    let n = 0
    for (let e = q.peek(); n < max && e !== undefined; e = q.peek()) {
      const len = e.len
      if (len > cap && dropped !== null) { q.drop(); dropped[2]!++; continue }
      const src = len > cap ? e.data.subarray(0, cap) : e.data.length === len ? e.data : e.data.subarray(0, len)
      const r = Math.min(e.times, max - n)
      for (let c = 0; c < r; c++) { mem.set(src, offsets[n]!); lens[n] = src.length; n++ }
      q.drop(r)
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

  /** The twin has no IPv6: nothing to resolve. */
  udpAttachV6Table (_fd: number, _mem: Uint8Array): void {}

  /** IPv4 only in the twin ('::' binds all of it, as a dual-stack socket would for IPv4 peers). */
  udpOpen (host: string, port: number, _bufBytes: number): { fd: number, port: number, family: 4 | 6 } {
    const ip = parseIp('udpOpen', host === '::' ? '0.0.0.0' : host)
    const taken = (p: number): boolean => this.#byPort.get(p)?.some((s) => s.ip === ip || s.ip === 0 || ip === 0) ?? false
    if (port === 0) {
      while (taken(this.#nextPort)) this.#nextPort = this.#nextPort >= 60999 ? 32768 : this.#nextPort + 1
      port = this.#nextPort++
    } else if (taken(port)) {
      throw errnoError('udpOpen', 'bind', 'EADDRINUSE')
    }
    const s = new FakeUdp(this, ip, port)
    this.#byPort.set(port, [...(this.#byPort.get(port) ?? []), s])
    this.#gen++
    const fd = this.#nextFd++
    this.#fds.set(fd, s)
    return { fd, port, family: 4 }
  }

  udpSetGro (fd: number, on: boolean): boolean {
    this.#udpOf('udpSetGro', fd, 'setsockopt').gro = on
    return true
  }

  close (fd: number): void {
    const d = this.#fds.get(fd)
    if (d === undefined) throw errnoError('close', 'close', 'EBADF')
    this.#fds.delete(fd)
    for (const p of this.#polls) if (p.fd === fd) { p.stopped = true; this.#polls.delete(p) }
    if (d instanceof FakeUdp) {
      const list = this.#byPort.get(d.port)!.filter((x) => x !== d)
      if (list.length > 0) this.#byPort.set(d.port, list)
      else this.#byPort.delete(d.port)
      this.#gen++
    }
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

  /**
   * Without GRO: one entry per datagram, datagram j into bufOffsets[j]. With GRO (udpSetGro on), as the kernel
   * coalesces a sender's GSO run: consecutive datagrams from one source with the first one's length (the last
   * may be shorter), at most GRO_SEGMENTS and bufCap bytes, land back to back in one buffer, an entry each;
   * info[1] += coalesced buffers. info[0] = buffers used (nBufs: call again). Never more than max entries
   * (what does not fit stays queued).
   */
  udpRecvGro (fd: number, mem: Uint8Array, bufOffsets: Int32Array, nBufs: number, bufCap: number, offsets: Int32Array, lens: Int32Array,
    addrs: Uint32Array, max: number, info: Int32Array): number {
    const s = this.#udpOf('udpRecvGro', fd, 'recvmmsg')
    const q = s.rx
    let n = 0
    let j = 0
    for (; j < nBufs && n < max && q.length > 0; j++) {
      const base = bufOffsets[j]!
      const end = base + bufCap
      let e = q.peek()!
      const seg = e.len
      const ip = e.ip
      const port = e.port
      let at = base
      let k = 0
      for (;;) {
        const len = e.len
        // Copies of this entry that join the datagram now: one, or as many equal segments as fit (no per-packet queue work).
        const r = s.gro && len === seg && len > 0 ? Math.max(1, Math.min(e.times, GRO_SEGMENTS - k, max - n, Math.floor((end - at) / len))) : 1
        const src = e.data.length === len ? e.data : e.data.subarray(0, len)
        for (let c = 0; c < r; c++) {
          addrs[2 * n] = ip
          addrs[2 * n + 1] = port
          offsets[n] = at
          if (len > end - at) { mem.set(src.subarray(0, end - at), at); lens[n] = -1 } else { mem.set(src, at); lens[n] = len }
          n++
          at += len
        }
        k += r
        q.drop(r)
        if (!s.gro || len < seg || k >= GRO_SEGMENTS || n >= max) break
        const next = q.peek()
        if (next === undefined || next.ip !== ip || next.port !== port || next.len > seg || at + next.len > end) break
        e = next
      }
      if (k > 1) info[1]!++
    }
    info[0] = j
    return n
  }

  #boundAt (ip: number, port: number): FakeUdp | undefined {
    const c = this.#routeCache
    if (c.gen === this.#gen && c.ip === ip && c.port === port) return c.dst
    const list = this.#byPort.get(port)
    let dst: FakeUdp | undefined
    if (list !== undefined) for (const s of list) if (s.ip === ip || s.ip === 0) { dst = s; break }
    c.gen = this.#gen; c.ip = ip; c.port = port; c.dst = dst
    return dst
  }

  /** Deliver to the FakeUdp bound at ip:port (or 0.0.0.0:port), else put on the sender's outbox. */
  #route (s: FakeUdp, mem: Uint8Array, off: number, len: number, ip: number, port: number): void {
    const dst = this.#boundAt(ip, port)
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

  /** FEC's matrix product: the TypeScript reference (the addon's is tested against it). */
  gfMatMul (coefs: Uint8Array, rows: number, k: number, src: Uint8Array, srcOffsets: Int32Array, srcLens: Int32Array, dst: Uint8Array, dstOffsets: Int32Array, len: number): void {
    gfMatMulJs(coefs, rows, k, src, srcOffsets, srcLens, dst, dstOffsets, len)
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

  /** Calls of aeadForget (a key left the pipeline's tables). */
  aeadForgets = 0
  aeadForget (): void {
    this.aeadForgets++
    this.#real.aeadForget()
  }

  // ── Native: the fast path, attached but never taken ──

  fastPathOut (): void { this.fastPathAttached++ }
  fastPathIn (): void { this.fastPathAttached++ }
  fastPathLink (): void {}
  fastLayout (): ReturnType<Native['fastLayout']> { return this.#real.fastLayout() }
  /** The service-manager notification is not part of the packet path: the real addon's. */
  sdNotify (socketPath: string, message: string): number { return this.#real.sdNotify(socketPath, message) }
  buildInfo (): ReturnType<Native['buildInfo']> { return this.#real.buildInfo() }
  /** The TCP transport's listener is not part of the packet path: the real addon's. */
  tcpListen (host: string, port: number, backlog: number): { fd: number, port: number } { return this.#real.tcpListen(host, port, backlog) }
  tcpAccept (fd: number): number { return this.#real.tcpAccept(fd) }

  // ── the addon's test-only functions: not in the twin ──

  // Fake TCP (raw sockets) is not in the twin: test/e2e/faketcp.test.ts runs it for real.
  ftcpOpen (): { fd: number, ctlFd: number } { throw new Error('fake-io: ftcpOpen is not in the twin') }
  ftcpFlowSet (): number { throw new Error('fake-io: ftcpFlowSet is not in the twin') }
  ftcpFlowDrop (): void { throw new Error('fake-io: ftcpFlowDrop is not in the twin') }
  ftcpFlowInfo (): boolean { throw new Error('fake-io: ftcpFlowInfo is not in the twin') }
  ftcpSendRaw (): number { throw new Error('fake-io: ftcpSendRaw is not in the twin') }
  ftcpRecvCtl (): number { throw new Error('fake-io: ftcpRecvCtl is not in the twin') }
  ftcpRecv (): number { throw new Error('fake-io: ftcpRecv is not in the twin') }
  ftcpOpenPacket (): number { throw new Error('fake-io: ftcpOpenPacket is not in the twin') }
  ftcpUnpair (): void { throw new Error('fake-io: ftcpUnpair is not in the twin') }
  ftcpOffloadStats (): void { throw new Error('fake-io: ftcpOffloadStats is not in the twin') }
  vnetSplit (): number { throw new Error('fake-io: vnetSplit is not in the twin') }
  vnetCoalesce (): number { throw new Error('fake-io: vnetCoalesce is not in the twin') }
  poly1305Blocks (): Uint8Array { throw new Error('fake-io: poly1305Blocks is not in the twin') }
  socketPairDgram (): [number, number] { throw new Error('fake-io: socketPairDgram is not in the twin') }
}
