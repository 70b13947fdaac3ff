/**
 * The whole dataplane pipeline in-process, without kernel I/O: the real
 * Outbound and Inbound classes (src/dataplane) driven over memory by a fake
 * addon whose TUN and UDP calls are memcpys, while its AEAD calls are the real
 * addon's. One prebuilt IPv4 packet is "read from the TUN" into the slots
 * (a copy, as the kernel would make), routed, framed and sealed by Outbound,
 * "sent" (copied into the receiver's slots), classified, opened,
 * replay-checked and accepted by Inbound, and "written to the TUN" (counted).
 *
 * Cases (packets/s on one core, 64 and 1400-byte inner packets):
 *   outbound     client TUN → seal → UDP (the send is dropped)
 *   full         outbound + inbound (client → server) on one thread
 *   relay        the server's relay path: recvmmsg of relay envelopes →
 *                look-up → header rewrite → sendmmsg (no crypto)
 *
 * This exercises whatever the dataplane classes do per packet; when their
 * interface changes, this file changes with them (bench:ci runs it).
 */
import { randomBytes } from 'node:crypto'
import { loadNative, type Native } from '../../src/dataplane/native.js'
import { Outbound } from '../../src/dataplane/outbound.js'
import { Inbound } from '../../src/dataplane/inbound.js'
import { createStatsBuffer } from '../../src/dataplane/stats.js'
import { BATCH, RX_BUF_SIZE, RX_BUFS, SLOT_SIZE, type WorkerInit } from '../../src/workers/layout.js'
import { time, type BenchResult, type TimerOptions, DEFAULT_TIMER } from './timer.js'

const CLIENT_IP = 0x0a4d0002 // 10.77.0.2
const SERVER_IP = 0x0a4d0001 // 10.77.0.1
const OTHER_IP = 0x0a4d0003 // 10.77.0.3
const EP_CLIENT = { ip: 0x64400201, port: 40001 }
const EP_OTHER = { ip: 0x64400202, port: 40002 }
const EP_SERVER = { ip: 0x64400001, port: 9000 }
/** Batches per onReadable call before the fake TUN reports "empty". */
const BATCHES_PER_CALL = 8
const MAX_PEERS = 8

/** An IPv4/UDP packet of `size` bytes from `src` to `dst` (checksums are not checked on this path). */
export function ipv4Packet (size: number, src: number, dst: number): Uint8Array {
  const p = new Uint8Array(size)
  const v = new DataView(p.buffer)
  p[0] = 0x45
  v.setUint16(2, size)
  p[8] = 64
  p[9] = 17
  v.setUint32(12, src)
  v.setUint32(16, dst)
  p.fill(0xab, 28)
  return p
}

/**
 * A worker's init for one role. Cast: fields the dataplane adds later (offload flags, extra packet
 * memory) stay undefined here, which selects the plain path; this keeps the bench compiling across
 * dataplane changes, and the delivery check in runCase catches a path that stops working.
 */
function init (role: 'outbound' | 'inbound', mode: 'client' | 'server', tunnelIp: number, statsIndex: number): WorkerInit {
  return {
    role, statsIndex, mode, tunFd: -1, udpFd: -1, tunnelIp, mtu: 1400, maxPeers: MAX_PEERS,
    packetMem: new SharedArrayBuffer(role === 'inbound' ? RX_BUFS * RX_BUF_SIZE : BATCH * SLOT_SIZE), stats: createStatsBuffer(MAX_PEERS), ctrlRing: null
  } as unknown as WorkerInit
}

interface Wire {
  mem: Uint8Array
  lens: Int32Array
  addrs: Uint32Array
  n: number
}

function newWire (): Wire {
  return { mem: new Uint8Array(BATCH * SLOT_SIZE), lens: new Int32Array(BATCH), addrs: new Uint32Array(BATCH * 2), n: 0 }
}

/**
 * A PEER control message for a direct peer. Typed loosely (`never` fits any parameter): fields the
 * dataplane adds later get neutral values (fd -1 = the worker's own socket, which the fake addon ignores).
 */
function peerMsg (slot: number, peerId: number, tunnelIp: number, ep: { ip: number, port: number }): never {
  return { code: 'PEER', slot, peerId, tunnelIp, endpointIp: ep.ip, endpointPort: ep.port, relayVia: false, fd: -1 } as never
}

/** The fake addon: real AEAD, TUN/UDP replaced by copies between memory areas. */
function fakeNative (real: Native, io: {
  tunRead?: (mem: Uint8Array, offsets: Int32Array, lens: Int32Array, max: number) => number
  udpSend?: (mem: Uint8Array, offsets: Int32Array, lens: Int32Array, addrs: Uint32Array, n: number) => number
  udpRecv?: (mem: Uint8Array, offsets: Int32Array, lens: Int32Array, addrs: Uint32Array, max: number) => number
  tunWrite?: (n: number) => number
}): Native {
  const fake = Object.create(real) as Native
  const f = fake as unknown as Record<string, unknown>
  // By name, so that variants with the same arguments (udpSendBatchGso, tunWriteBatchVnet, tunWriteBatchGro, ...)
  // are faked too: every batch send, receive and TUN write of the addon is replaced, whatever the dataplane calls.
  const names = new Set([...Object.keys(real), 'tunReadBatch', 'udpSendBatch', 'udpRecvBatch', 'udpRecvGro', 'tunWriteBatch', 'udpSendTo'])
  for (const name of names) {
    if (name.startsWith('udpSendBatch')) {
      f[name] = (_fd: number, mem: Uint8Array, offsets: Int32Array, lens: Int32Array, addrs: Uint32Array, n: number) => io.udpSend?.(mem, offsets, lens, addrs, n) ?? n
    } else if (name.startsWith('udpRecvBatch')) {
      f[name] = (_fd: number, mem: Uint8Array, offsets: Int32Array, lens: Int32Array, addrs: Uint32Array, max: number) => io.udpRecv?.(mem, offsets, lens, addrs, max) ?? 0
    } else if (name === 'udpRecvGro') {
      // Datagrams one per 2 KiB in the receive memory, as many as a plain batch (no coalescing: the per-packet path).
      f[name] = (_fd: number, mem: Uint8Array, _bufOffsets: Int32Array, _nBufs: number, _cap: number, offsets: Int32Array, lens: Int32Array,
        addrs: Uint32Array, max: number, info: Int32Array) => {
        const m = Math.min(max, BATCH)
        for (let i = 0; i < m; i++) offsets[i] = i * SLOT_SIZE
        const n = io.udpRecv?.(mem, offsets, lens, addrs, m) ?? 0
        info[0] = n === m ? RX_BUFS : 0 // full: the pipeline calls again
        return n
      }
    } else if (name.startsWith('tunWriteBatch')) {
      f[name] = (_fd: number, _mem: Uint8Array, _offsets: Int32Array, _lens: Int32Array, n: number) => io.tunWrite?.(n) ?? n
    } else if (name === 'tunReadBatch') {
      f[name] = (_fd: number, mem: Uint8Array, offsets: Int32Array, lens: Int32Array, max: number) => io.tunRead?.(mem, offsets, lens, max) ?? 0
    } else if (name === 'udpSendTo') {
      f[name] = () => 0
    }
  }
  return fake
}

export interface PipelineCase {
  /** Runs BATCHES_PER_CALL batches of BATCH packets. */
  fn: () => void
  /** Packets one call moves. */
  packetsPerCall: number
  /** Packets delivered so far (sanity: equals packets sent). */
  delivered: () => number
}

/** Outbound only, or outbound + inbound (client → server) when `full`. */
export function directCase (size: number, full: boolean): PipelineCase {
  const real = loadNative()
  const key = new Uint8Array(randomBytes(32))
  const pkt = ipv4Packet(size, CLIENT_IP, SERVER_IP)
  let batchesLeft = 0
  let delivered = 0
  const wire = newWire()
  let inb: Inbound | null = null
  const out = new Outbound(init('outbound', 'client', CLIENT_IP, 0), fakeNative(real, {
    tunRead: (mem, offsets, lens, max) => {
      if (batchesLeft === 0) return 0
      batchesLeft--
      for (let i = 0; i < max; i++) { mem.set(pkt, offsets[i]); lens[i] = size }
      return max
    },
    udpSend: (mem, offsets, lens, _addrs, n) => {
      if (inb === null) return n
      for (let i = 0; i < n; i++) {
        wire.mem.set(mem.subarray(offsets[i], offsets[i]! + lens[i]!), i * SLOT_SIZE)
        wire.lens[i] = lens[i]!
        wire.addrs[i * 2] = EP_CLIENT.ip
        wire.addrs[i * 2 + 1] = EP_CLIENT.port
      }
      wire.n = n
      inb.onReadable()
      return n
    }
  }), () => {}, () => 0)
  out.peers.upsert(peerMsg(1, 0, SERVER_IP, EP_SERVER))
  out.setSendKey(1, key, 77)
  if (full) {
    inb = new Inbound(init('inbound', 'server', SERVER_IP, 1), fakeNative(real, {
      udpRecv: (mem, offsets, lens, addrs, max) => {
        const n = Math.min(wire.n, max)
        for (let i = 0; i < n; i++) {
          mem.set(wire.mem.subarray(i * SLOT_SIZE, i * SLOT_SIZE + wire.lens[i]!), offsets[i])
          lens[i] = wire.lens[i]!
          addrs[i * 2] = wire.addrs[i * 2]!
          addrs[i * 2 + 1] = wire.addrs[i * 2 + 1]!
        }
        wire.n = 0
        return n
      },
      tunWrite: (n) => { delivered += n; return n }
    }), () => {})
    inb.handle(peerMsg(1, 1, CLIENT_IP, EP_CLIENT))
    inb.handle({ code: 'RECV_KEY', slot: 1, localIndex: 77, key })
  }
  return {
    fn: () => { batchesLeft = BATCHES_PER_CALL; out.onReadable() },
    packetsPerCall: BATCHES_PER_CALL * BATCH,
    delivered: () => delivered
  }
}

/** The server's relay path: relay envelopes from a registered client to another. */
export function relayCase (size: number): PipelineCase {
  const real = loadNative()
  // A relay envelope (8 bytes) around a data message (16 + inner + 16); the server never opens it.
  const dgram = new Uint8Array(8 + 16 + size + 16)
  const v = new DataView(dgram.buffer)
  v.setUint32(0, 5, true)
  v.setUint32(4, 2, true) // to peer 2
  v.setUint32(8, 4, true)
  dgram.set(randomBytes(dgram.length - 12), 12)
  let batchesLeft = 0
  let forwarded = 0
  const inb = new Inbound(init('inbound', 'server', SERVER_IP, 1), fakeNative(real, {
    udpRecv: (mem, offsets, lens, addrs, max) => {
      if (batchesLeft === 0) return 0
      batchesLeft--
      for (let i = 0; i < max; i++) {
        mem.set(dgram, offsets[i])
        lens[i] = dgram.length
        addrs[i * 2] = EP_CLIENT.ip
        addrs[i * 2 + 1] = EP_CLIENT.port
      }
      return max
    },
    udpSend: (_mem, _offsets, _lens, _addrs, n) => { forwarded += n; return n }
  }), () => {})
  inb.handle(peerMsg(1, 1, CLIENT_IP, EP_CLIENT))
  inb.handle(peerMsg(2, 2, OTHER_IP, EP_OTHER))
  return {
    fn: () => { batchesLeft = BATCHES_PER_CALL; inb.onReadable() },
    packetsPerCall: BATCHES_PER_CALL * BATCH,
    delivered: () => forwarded
  }
}

export function runCase (group: string, name: string, c: PipelineCase, opts: TimerOptions, size: number, checkDelivery: boolean): BenchResult {
  c.fn()
  if (checkDelivery && c.delivered() !== c.packetsPerCall) throw new Error(`pipeline ${name}: ${c.delivered()} of ${c.packetsPerCall} packets arrived (the pipeline drops packets)`)
  return time(group, name, c.packetsPerCall, c.fn, opts, size)
}

export function run (opts: TimerOptions = DEFAULT_TIMER): BenchResult[] {
  const out: BenchResult[] = []
  for (const size of [64, 1400]) {
    const g = `pipeline-${size}`
    out.push(runCase(g, 'outbound: route+frame+seal', directCase(size, false), opts, size, false))
    out.push(runCase(g, 'full: outbound + inbound (open, replay, accept)', directCase(size, true), opts, size, true))
    out.push(runCase(g, 'server relay: classify+rewrite+forward', relayCase(size), opts, size, true))
  }
  return out
}
