/**
 * Typed loader for the native addon (native/*.c, export table in
 * native/module.c, built by node-gyp into build/Release/lwt_native.node),
 * plus mappers from its errno errors to VpnError for the two user-facing
 * opens (TUN device, UDP socket). The addon's test-only exports live in a
 * separate build (lwt_native_testing.node) that only tests load, through
 * test/helpers/native-testing.ts.
 *
 * The addon is context-aware: every worker_thread calls loadNative() and gets
 * its own instance. Fds are process-wide, so one thread may open an fd and
 * hand the number to another. A poll handle belongs to the thread (libuv
 * loop) that created it.
 */
import { existsSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { VpnError } from '../errors.js'

/** Opaque handle returned by pollStart. */
export type PollHandle = object

/**
 * The addon's exports. `mem` is a Uint8Array view (normally over a
 * SharedArrayBuffer); offsets are bytes relative to the view's start. Outer
 * UDP addresses are IPv4 only: a host-order uint32 plus a port. Every batch is
 * validated before any byte is touched; misuse throws TypeError/RangeError.
 * Syscall failures throw an Error with `.code` (errno name), `.syscall` and
 * `.errno` (negative), see NativeErrnoError.
 */
export interface Native {
  /** Open /dev/net/tun, TUNSETIFF with IFF_TUN|IFF_NO_PI (|IFF_MULTI_QUEUE if multiQueue) (|IFF_TUN_EXCL if exclusive: fail EBUSY if the name exists). fd is O_NONBLOCK|O_CLOEXEC. Returns the fd and the actual name. A name over 15 bytes throws RangeError. */
  tunOpen(name: string, multiQueue: boolean, exclusive: boolean): { fd: number, name: string }
  /**
   * tunOpen plus IFF_VNET_HDR (every read and write carries a 10-byte virtio_net_hdr) and TUNSETOFFLOAD
   * (CSUM|TSO4|TSO6|USO4|USO6, or as much of it as the kernel takes). offload: 0 = none accepted,
   * 1 = CSUM+TSO4, 2 = CSUM+TSO4+TSO6, 3 = CSUM+TSO4+TSO6+USO4+USO6.
   * Read it with tunReadSplit, write it with tunWriteBatchVnet.
   */
  tunOpenVnet(name: string, multiQueue: boolean, exclusive: boolean): { fd: number, name: string, offload: number }
  /**
   * Read packets from a tunOpenVnet fd into sbuf (>= 65546 bytes) and split each into slots
   * (mem+offsets[i], capacity cap; lens[i] = bytes): TSO TCPv4 and USO UDPv4 superpackets into MSS-sized
   * packets with their own IPv4 length/id/checksum and TCP sequence number / UDP length and full L4
   * checksums; partial checksums (NEEDS_CSUM) completed. state: Int32Array(4) [pending bytes, next segment,
   * dropped (cumulative), superpackets (cumulative)]; a superpacket that does not fit the slots left is
   * continued on the next call. Returns slots filled (0: nothing to read). Malformed or oversized: dropped, counted.
   */
  tunReadSplit(fd: number, sbuf: Uint8Array, mem: Uint8Array, offsets: Int32Array, lens: Int32Array, max: number, cap: number, state: Int32Array): number
  /** tunWriteBatch for a tunOpenVnet fd: a zero vnet header is written into the 10 bytes before each packet (offsets[i] >= 10). */
  tunWriteBatchVnet(fd: number, mem: Uint8Array, offsets: Int32Array, lens: Int32Array, n: number): number
  /**
   * tunWriteBatchVnet with TCP coalescing (GRO): each run of consecutive in-sequence TCPv4 segments of one
   * flow (equal payloads, only ACK/PSH, same ACK number and options; at most 64 and 64 KiB) is written as ONE
   * TSO superpacket (writev of the rewritten first header and every payload, no copy); likewise each run of
   * consecutive UDPv4 datagrams of one flow with DF and equal payloads (the last may be shorter; at most 64)
   * as ONE USO (GSO_UDP_L4) superpacket. Other packets: zero
   * vnet header. A refused superpacket is written segment by segment. Order kept; packet bytes are clobbered.
   * Returns packets written.
   */
  tunWriteBatchGro(fd: number, mem: Uint8Array, offsets: Int32Array, lens: Int32Array, n: number): number
  /** if_nametoindex; 0 when absent. */
  ifIndex(name: string): number
  /** socket(AF_INET, SOCK_DGRAM|SOCK_NONBLOCK|SOCK_CLOEXEC), SO_RCVBUF/SO_SNDBUF (SO_*BUFFORCE first, failure ignored) set to bufBytes if > 0, bind(host, port). Returns fd and the bound port. host is a dotted quad (else RangeError). */
  /** host: a dotted quad (AF_INET) or an IPv6 address, '::' for all (AF_INET6, IPV6_V6ONLY off: IPv4 peers too). */
  udpOpen(host: string, port: number, bufBytes: number): { fd: number, port: number, family: 4 | 6 }
  /** The socket resolves 0xFE000000|i endpoints through this IPv6 address table (v6-table.ts) and adds new IPv6 sources to it. */
  udpAttachV6Table(fd: number, mem: Uint8Array): void
  close(fd: number): void
  /**
   * Watch fd for readability on the CALLING thread's libuv loop. cb() runs via
   * napi_make_callback (microtasks run after it; a throw is an uncaught
   * exception) each loop turn while fd is readable (level-triggered), and once
   * more on an fd error (POLLERR) so its read surfaces the error. An active
   * poll keeps the loop alive. At most one poll per fd per thread (else EEXIST).
   * Call pollStop before closing the fd.
   */
  pollStart(fd: number, cb: () => void): PollHandle
  /** Stop and close (idempotent). The handle no longer keeps the loop alive. */
  pollStop(handle: PollHandle): void
  /** Read up to `max` packets into mem+offsets[i] (capacity cap each) until EAGAIN; lens[i] = bytes. Returns n (0 if nothing). Throws other errors only when nothing was read. */
  tunReadBatch(fd: number, mem: Uint8Array, offsets: Int32Array, lens: Int32Array, max: number, cap: number): number
  /** write(fd, mem+offsets[i], lens[i]) for i < n. Returns how many succeeded; failed writes (EAGAIN, EINVAL, EIO when down, ...) are skipped. Only EBADF throws. */
  tunWriteBatch(fd: number, mem: Uint8Array, offsets: Int32Array, lens: Int32Array, n: number): number
  /** recvmmsg(MSG_DONTWAIT) of up to max datagrams into mem+offsets[i] (capacity cap). lens[i] = bytes, or -1 if truncated; addrs[2i] = source IPv4 (host order), addrs[2i+1] = source port. Returns n (0 if none). Throws only when nothing was received. */
  udpRecvBatch(fd: number, mem: Uint8Array, offsets: Int32Array, lens: Int32Array, addrs: Uint32Array, max: number, cap: number): number
  /** setsockopt UDP_GRO: true when the kernel took it (coalesced datagrams then arrive whole; read them with udpRecvGro). */
  udpSetGro(fd: number, on: boolean): boolean
  /**
   * One recvmmsg of up to nBufs datagrams, datagram j into mem[bufOffsets[j] .. + bufCap). A coalesced
   * datagram (UDP_GRO cmsg) is split in place into its packets. One entry per packet: offsets[i], lens[i]
   * (-1: truncated), addrs[2i] source IPv4 (host order), addrs[2i+1] port; at most max entries, the rest
   * dropped and counted. info: Int32Array(4) [datagrams received by this call (nBufs: call again),
   * coalesced datagrams (cumulative), packets dropped for room (cumulative), 0]. Returns entries; 0 when
   * nothing was waiting. Throws only when nothing was received.
   */
  udpRecvGro(fd: number, mem: Uint8Array, bufOffsets: Int32Array, nBufs: number, bufCap: number, offsets: Int32Array, lens: Int32Array,
    addrs: Uint32Array, max: number, info: Int32Array): number
  /**
   * Fake TCP (native/faketcp.c). ftcpOpen: the link's two raw sockets, filtered (BPF) to segments to our
   * TCP port (server) or from port `port` (client; and from srcIp unless 0): fd gets data segments, ctlFd the others.
   * ftcpFlowSet programs a flow (handle 0: by its key; creates it) and returns its handle (0xFD800000 | i;
   * -1: table full); datagrams sent to a handle by any udpSend* leave as TCP segments on that flow.
   * ftcpFlowInfo: [up, seq, ack, rxPackets, rxBytes, txPackets, txBytes, ms since the last data segment (-1)].
   * ftcpSendRaw sends a segment built by wire/tcp-segment.ts (checksum and IPv4 header added); ftcpRecvCtl
   * reads one IPv4 packet from ctlFd (0: none). ftcpRecv has udpRecvGro's contract (info[2] malformed,
   * info[3] unknown flow, both cumulative); entries come from { handle, the peer's TCP port }.
   * ftcpFlowInfo's out[8] (when out has 9 entries): 1 when the flow's data leaves as superpackets.
   *
   * The superpacket path (native/faketcp-packet.c): ftcpOpenPacket opens the link's AF_PACKET socket
   * (same filter as fd), paired with the raw data socket rawFd, and returns its fd: ftcpRecv on it
   * receives GSO/GRO superpackets (JS's slots regrouped into 64 KiB buffers; contiguous slots needed)
   * and splits them by gso_size; flows of the pair send runs of equal-size datagrams as one TSO
   * superpacket once their next hop is known. ftcpUnpair forgets a pairing before its fds close.
   * ftcpOffloadStats: [superpackets sent, segments sent through packet sockets, packet sends failed,
   * superpackets received, their segments, flows on the packet path now].
   */
  ftcpOpen(client: boolean, srcIp: number, port: number, bufBytes: number): { fd: number, ctlFd: number }
  ftcpFlowSet(handle: number, fd: number, rip: number, rport: number, lip: number, lport: number, seq: number, ack: number, tsRecent: number, up: boolean): number
  ftcpFlowDrop(handle: number): void
  ftcpFlowInfo(handle: number, out: Float64Array): boolean
  ftcpSendRaw(fd: number, srcIp: number, dstIp: number, segment: Uint8Array): number
  ftcpRecvCtl(ctlFd: number, buf: Uint8Array): number
  ftcpOpenPacket(client: boolean, srcIp: number, port: number, bufBytes: number, rawFd: number): number
  ftcpUnpair(fd: number): void
  ftcpOffloadStats(out: Float64Array): void
  ftcpRecv(fd: number, mem: Uint8Array, bufOffsets: Int32Array, nBufs: number, bufCap: number, offsets: Int32Array, lens: Int32Array,
    addrs: Uint32Array, max: number, info: Int32Array): number
  /** sendmmsg of n datagrams (mem+offsets[i], lens[i]) to addrs[2i]:addrs[2i+1]. EAGAIN/ENOBUFS stop the batch; other per-datagram errors skip that datagram. Returns the number sent. EBADF/ENOTSOCK throw. */
  udpSendBatch(fd: number, mem: Uint8Array, offsets: Int32Array, lens: Int32Array, addrs: Uint32Array, n: number): number
  /**
   * Same contract as udpSendBatch, with UDP GSO: each run of consecutive datagrams to one address with one
   * length (the last of a run may be shorter; at most 64) is one sendmsg with UDP_SEGMENT, which the kernel
   * carries as one skb and splits into the same datagrams. Falls back to one message per datagram where the
   * kernel refuses (EINVAL/EMSGSIZE for that run; EIO turns GSO off for the thread).
   */
  udpSendBatchGso(fd: number, mem: Uint8Array, offsets: Int32Array, lens: Int32Array, addrs: Uint32Array, n: number): number
  /**
   * FEC's byte work (native/fec.c): dst[dstOffsets[j] + i] = XOR over c < k of coefs[j·k + c] · src[srcOffsets[c] + i]
   * in GF(2^8) (0x11d), for j < rows, i < len, a source counting as zero past srcLens[c]. The contract of
   * reed-solomon.ts's GfMatMul; RangeError when a shard lies outside its buffer.
   */
  gfMatMul(coefs: Uint8Array, rows: number, k: number, src: Uint8Array, srcOffsets: Int32Array, srcLens: Int32Array,
    dst: Uint8Array, dstOffsets: Int32Array, len: number): void
  /** One sendto. Returns bytes sent, or -errno; throws only on bad arguments. */
  udpSendTo(fd: number, buf: Uint8Array, ip: number, port: number): number
  /** ChaCha20-Poly1305 seal in place. desc: 4 ints per packet [off, aadLen (>= 16), ptLen, keyOff]; tag written after the ciphertext; key = keys[keyOff, +32); nonce = 4 zero bytes || mem[off+8, off+16). */
  aeadSealBatch(mem: Uint8Array, desc: Int32Array, n: number, keys: Uint8Array): void
  /** Open in place: desc [off, aadLen (>= 16), ctLen incl. tag, keyOff]. results[i] = 1 if verified (plaintext in place), else 0 (also when ctLen < 16). Returns the number verified. */
  aeadOpenBatch(mem: Uint8Array, desc: Int32Array, n: number, keys: Uint8Array, results: Int32Array): number
  /** Wipe this thread's cached copies of the last seal/open keys and their OpenSSL contexts (call when a key is removed). */
  aeadForget(): void
  /**
   * Attach the lone-packet fast path (native/fastpath.c) to a poll watching a tunOpenVnet fd: a plain IPv4
   * packet to a peer with a session is framed, sealed and sent without calling the poll's JS callback;
   * anything else is left pending in sbuf/split for tunReadSplit. Tables: src/dataplane/fast-path.ts.
   */
  fastPathOut(poll: PollHandle, cfg: Float64Array, sbuf: Uint8Array, split: Int32Array, peers: Int32Array, counters: Float64Array,
    keys: Uint8Array, routes: Int32Array, stats: Float64Array): void
  /**
   * Attach the inbound fast path to a poll watching the main UDP socket: a lone data message (direct, or relayed to a
   * client) is opened, checked and written to the TUN fd in C, and a server forwards a lone relay envelope; anything
   * else stays queued for the JS callback.
   */
  fastPathIn(poll: PollHandle, cfg: Float64Array, peers: Int32Array, sessions: Int32Array, sess: Int32Array, rings: Uint32Array,
    lasts: Float64Array, keys: Uint8Array, stats: Float64Array, endpoints: Int32Array, peerIds: Int32Array): void
  /**
   * Both polls on this thread with fast paths attached (placements fused, inline): after the inbound fast path
   * writes a packet to the TUN, it services outPoll at once (an echo reply is already queued) instead of a loop turn later.
   */
  fastPathLink(inPoll: PollHandle, outPoll: PollHandle): void
  /** The addon's side of the fast-path layout (cfg word names in order, record sizes), for a test to compare with fast-path.ts. */
  fastLayout(): { cfg: string[], peerWords: number, sessWords: number, ringWords: number, inCap: number }
  /** One sendmsg with this datagram's IP TTL set by ancillary data (1..255). Returns bytes sent, or -errno. */
  udpSendToTtl(fd: number, buf: Uint8Array, ip: number, port: number, ttl: number): number
  /**
   * sd_notify(3) without libsystemd (native/notify.c): one datagram `message` ("READY=1", "STOPPING=1",
   * "STATUS=...", newline separated) to the unix socket socketPath ($NOTIFY_SOCKET; '@' starts an abstract
   * name). Returns bytes sent. RangeError for a path neither absolute nor abstract or over 108 bytes; an
   * errno Error (ENOENT, ECONNREFUSED, EACCES...) when the send fails.
   */
  sdNotify(socketPath: string, message: string): number
  /**
   * The TCP transport's listener (native/tcplisten.c): a non-blocking listening socket on host (IPv4 or
   * IPv6 literal; "::" is dual-stack) and port (0: any), SO_REUSEADDR. An errno Error (EADDRINUSE...) when
   * a syscall fails, RangeError for a host that is no address literal.
   */
  tcpListen(host: string, port: number, backlog: number): { fd: number, port: number }
  /** accept4 one connection: its fd (non-blocking), or -errno (-EAGAIN: none waiting; EMFILE etc. for the caller to count). */
  tcpAccept(fd: number): number
  /** What this build is: N-API version it targets, whether it is the test build, the C compiler's version string. */
  buildInfo(): { napiVersion: number, testing: boolean, compiler: string }
}

/** Error thrown by a failed syscall in the addon. */
export interface NativeErrnoError extends Error {
  code: string
  syscall: string
  errno: number
}

export function isNativeErrnoError (err: unknown): err is NativeErrnoError {
  return err instanceof Error &&
    typeof (err as Partial<NativeErrnoError>).code === 'string' &&
    typeof (err as Partial<NativeErrnoError>).syscall === 'string'
}

/** The production addon, relative to the package root. */
export const ADDON = join('build', 'Release', 'lwt_native.node')

let cached: Native | undefined

/** The directory holding package.json, from this module upwards (src/dataplane or dist/src/dataplane). */
export function packageRoot (): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir
    const up = dirname(dir)
    if (up === dir) throw new Error(`no package.json above ${dirname(fileURLToPath(import.meta.url))}`)
    dir = up
  }
}

/** Loads the addon once per thread. Throws VpnError ERR_NATIVE_ADDON when it is not built or fails to load. */
export function loadNative (): Native {
  if (cached !== undefined) return cached
  let path = ADDON
  try {
    path = join(packageRoot(), ADDON)
    const require = createRequire(import.meta.url)
    cached = require(path) as Native
    return cached
  } catch (err) {
    const cause = err instanceof Error ? err.message.split('\n')[0] : String(err)
    throw new VpnError('ERR_NATIVE_ADDON', `the native addon is not built (${path}: ${cause})`, {
      cause: err,
      hint: addonBuildHint()
    })
  }
}

/** How to (re)build the addon: npm ci in a clone, a rebuild of the installed package otherwise. */
function addonBuildHint (): string {
  let root = '.'
  try { root = packageRoot() } catch { /* keep '.' */ }
  return existsSync(join(root, '.git'))
    ? `run npm ci in ${root} (needs python3, make and g++)`
    : 'rebuild it: sudo npm rebuild -g lightweight-tunnel, or reinstall the package (needs python3, make and g++)'
}

function errnoText (err: unknown): string {
  if (isNativeErrnoError(err)) return `${err.syscall}: ${err.code}`
  return err instanceof Error ? err.message : String(err)
}

/**
 * Maps a tunOpen failure to a VpnError. `name` is the requested device name.
 * EINVAL from TUNSETIFF when the name already exists means it belongs to a
 * non-TUN device or to a TUN device with the other queue mode: name taken.
 */
export function tunOpenError (err: unknown, name: string, native?: Native): VpnError {
  const opts = { cause: err }
  if (err instanceof RangeError || err instanceof TypeError) {
    const why = Buffer.byteLength(name) > 15 ? 'longer than 15 bytes' : err.message.replace(/^tunOpen(?:Vnet)?: /, '')
    return new VpnError('ERR_TUN_OPEN', `invalid TUN device name "${name}": ${why}`, { ...opts, hint: 'choose a device name of 1 to 15 characters' })
  }
  if (!isNativeErrnoError(err)) return new VpnError('ERR_TUN_OPEN', `cannot open TUN device ${name}: ${errnoText(err)}`, opts)
  switch (err.code) {
    case 'ENOENT':
    case 'ENODEV':
    case 'ENXIO':
      if (err.syscall === 'open') {
        return new VpnError('ERR_TUN_UNAVAILABLE', '/dev/net/tun is missing: the tun kernel module is not loaded', { ...opts, hint: 'modprobe tun' })
      }
      break
    case 'EPERM':
    case 'EACCES':
      if (err.syscall === 'open' && err.code === 'EACCES') {
        // The device node itself is closed to this user (some containers make it 0600). Opening it grants
        // nothing without CAP_NET_ADMIN, which is why distributions make it 0666 (udev).
        return new VpnError('ERR_TUN_PERMISSION', `this user cannot open /dev/net/tun (mode ${tunNodeMode()}, EACCES): opening a TUN device needs root or ` +
          'CAP_NET_ADMIN, and without root the device node must be open to the user too', {
          ...opts,
          hint: 'make it 0666 as distributions do (chmod 0666 /dev/net/tun; udev rule KERNEL=="tun", MODE="0666"): ' +
            'the device grants nothing without CAP_NET_ADMIN; or run it as root'
        })
      }
      return new VpnError('ERR_TUN_PERMISSION', 'opening a TUN device needs root or CAP_NET_ADMIN', {
        ...opts,
        hint: 'run it as root (sudo), as the systemd service (lightweight-tunnel install-service NAME: the unit grants ' +
          'CAP_NET_ADMIN by AmbientCapabilities=), or with sudo systemd-run -p AmbientCapabilities=CAP_NET_ADMIN ' +
          '-p User="$(id -un)" lightweight-tunnel ...; do not setcap the node binary: that would give every Node script on the machine CAP_NET_ADMIN'
      })
    case 'EBUSY':
    case 'EEXIST':
      return nameTaken(name, opts)
    case 'EINVAL':
      if (name !== '' && !name.includes('%') && existsAsDevice(name, native)) return nameTaken(name, opts)
      return new VpnError('ERR_TUN_OPEN', `cannot open TUN device "${name}": the kernel rejected the name or flags (${err.syscall}: EINVAL)`, opts)
  }
  return new VpnError('ERR_TUN_OPEN', `cannot open TUN device ${name}: ${err.syscall} failed with ${err.code}`, opts)
}

/** "0600"-style mode of /dev/net/tun, or "unknown". */
function tunNodeMode (): string {
  try { return (statSync('/dev/net/tun').mode & 0o7777).toString(8).padStart(4, '0') } catch { return 'unknown' }
}

function nameTaken (name: string, opts: { cause: unknown }): VpnError {
  return new VpnError('ERR_TUN_NAME_TAKEN', `the device name ${name} is already in use`, { ...opts, hint: 'choose another --dev or stop the daemon that owns it' })
}

function existsAsDevice (name: string, native: Native | undefined): boolean {
  try {
    return (native ?? loadNative()).ifIndex(name) > 0
  } catch {
    return false
  }
}

/** Maps a udpOpen failure to a VpnError. */
export function udpOpenError (err: unknown, bindHost: string, port: number): VpnError {
  const opts = { cause: err }
  const host = bindHost.includes(':') ? `[${bindHost}]` : bindHost // HOST:PORT as the user writes it
  if (isNativeErrnoError(err)) {
    if (err.code === 'EADDRINUSE') {
      return new VpnError('ERR_ADDRESS_IN_USE', `UDP port ${host}:${port} is already in use`, { ...opts, hint: 'choose another port with --listen, or stop the program that holds it (ss -ulpn)' })
    }
    if (err.code === 'EADDRNOTAVAIL') {
      return new VpnError('ERR_SOCKET', `cannot bind UDP ${host}:${port}: no local interface has address ${bindHost} (EADDRNOTAVAIL)`, { ...opts, hint: 'listen on [::] or 0.0.0.0 (every address), or on an address of this host' })
    }
    if (err.code === 'EACCES' || err.code === 'EPERM') {
      return new VpnError('ERR_SOCKET', `cannot bind UDP ${host}:${port}: permission denied (${err.code})`, { ...opts, hint: 'ports below 1024 need root or CAP_NET_BIND_SERVICE' })
    }
    return new VpnError('ERR_SOCKET', `cannot open UDP socket ${host}:${port}: ${err.syscall} failed with ${err.code}`, opts)
  }
  return new VpnError('ERR_SOCKET', `cannot open UDP socket ${host}:${port}: ${errnoText(err)}`, opts)
}

/** tunOpen with failures mapped by tunOpenError. */
export function openTun (native: Native, name: string, multiQueue: boolean, exclusive: boolean): { fd: number, name: string } {
  try {
    return native.tunOpen(name, multiQueue, exclusive)
  } catch (err) {
    throw tunOpenError(err, name, native)
  }
}

/** tunOpenVnet (TUN with IFF_VNET_HDR and offloads) with failures mapped by tunOpenError. */
export function openTunVnet (native: Native, name: string, multiQueue: boolean, exclusive: boolean): { fd: number, name: string, offload: number } {
  try {
    return native.tunOpenVnet(name, multiQueue, exclusive)
  } catch (err) {
    throw tunOpenError(err, name, native)
  }
}

/** udpOpen with failures mapped by udpOpenError. */
export function openUdp (native: Native, host: string, port: number, bufBytes: number): { fd: number, port: number, family: 4 | 6 } {
  try {
    return native.udpOpen(host, port, bufBytes)
  } catch (err) {
    throw udpOpenError(err, host, port)
  }
}
