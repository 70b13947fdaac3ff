/**
 * The whole dataplane pipeline in-process, without kernel I/O: the real
 * Outbound and Inbound classes (src/dataplane) driven over memory by the
 * addon's in-memory twin (test/helpers/fake-io.ts, shared with the pipeline
 * tests), whose TUN and UDP calls are queues and memcpys while its AEAD calls
 * are the real addon's. Per batch, one prebuilt IPv4 packet is injected
 * BATCH times over into the twin TUN (one queue entry, no per-packet push);
 * Outbound reads them into its slots (a copy, as the kernel would make),
 * routes, frames and seals them, and "sends" them (a copy into the receiving
 * socket's queue, or a count when nobody is bound there); Inbound receives
 * them (a copy, coalesced as UDP GRO would), classifies, opens,
 * replay-checks and accepts them, and "writes them to the TUN" (counted). The twin costs a copy per crossing and nothing
 * more: measured against the former private fake addon, every case within
 * ±5 % (relay-64 +2 ns/packet), i.e. within the noise of a shared machine.
 *
 * Cases (packets/s on one core, 64 and 1400-byte inner packets):
 *   outbound     client TUN → seal → UDP (the send is counted)
 *   full         outbound + inbound (client → server) on one thread
 *   ... IPv6     the same with IPv6 packets (64 B: the 48-byte minimum
 *                grows to 64), routed and checked by longest prefix, printed
 *                beside the IPv4 row for the ratio
 *   relay        the server's relay path: recvmmsg of relay envelopes →
 *                look-up → header rewrite → sendmmsg (no crypto)
 *
 * This exercises whatever the dataplane classes do per packet; when their
 * interface changes, this file changes with them (bench:ci runs it).
 */
import { randomBytes } from 'node:crypto'
import { Outbound } from '../../src/dataplane/outbound.js'
import { Inbound } from '../../src/dataplane/inbound.js'
import { createStatsBuffer } from '../../src/dataplane/stats.js'
import { BATCH, RX_BUF_SIZE, RX_BUFS, SLOT_SIZE, type WorkerInit } from '../../src/workers/layout.js'
import { FakeIo, ipString, type FakeTun, type FakeUdp } from '../../test/helpers/fake-io.js'
import { parsePrefix } from '../../src/wire/prefix.js'
import { time, type BenchResult, type TimerOptions, DEFAULT_TIMER } from './timer.js'

const CLIENT_IP = 0x0a4d0002 // 10.77.0.2
const SERVER_IP = 0x0a4d0001 // 10.77.0.1
const OTHER_IP = 0x0a4d0003 // 10.77.0.3
const CLIENT6 = parsePrefix('fd00:77::2/128')
const SERVER6 = parsePrefix('fd00:77::1/128')
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
function init (role: 'outbound' | 'inbound', mode: 'client' | 'server', tunnelIp: number, statsIndex: number, tunFd: number, udpFd: number, mssClamp = false): WorkerInit {
  return {
    role, statsIndex, mode, tunFd, udpFd, tunnelIp, mtu: 1400, maxPeers: MAX_PEERS, mssClamp,
    packetMem: new SharedArrayBuffer(role === 'inbound' ? RX_BUFS * RX_BUF_SIZE : BATCH * SLOT_SIZE), stats: createStatsBuffer(MAX_PEERS), ctrlRing: null
  } as unknown as WorkerInit
}

/**
 * A PEER control message for a direct peer. Typed loosely (`never` fits any parameter): fields the
 * dataplane adds later get neutral values (fd -1 = the worker's own socket).
 */
function peerMsg (slot: number, peerId: number, tunnelIp: number, ep: { ip: number, port: number }): never {
  return { code: 'PEER', slot, peerId, tunnelIp, endpointIp: ep.ip, endpointPort: ep.port, relayVia: false, fd: -1 } as never
}

/** A twin socket bound at ep that counts what it sends to the wire instead of keeping it. */
function bindAt (io: FakeIo, ep: { ip: number, port: number }, gro: boolean): { fd: number, udp: FakeUdp } {
  const fd = io.udpOpen(ipString(ep.ip), ep.port, 0).fd
  if (gro) io.udpSetGro(fd, true)
  const udp = io.udp(fd)
  udp.keepSent = false
  return { fd, udp }
}

/** A twin TUN device that counts what is written to it instead of keeping it. */
function tunDev (io: FakeIo, name: string): { fd: number, tun: FakeTun } {
  const fd = io.tunOpen(name, false, true).fd
  const tun = io.tun(fd)
  tun.keepWrites = false
  return { fd, tun }
}

export interface PipelineCase {
  /** Runs BATCHES_PER_CALL batches of BATCH packets. */
  fn: () => void
  /** Packets one call moves. */
  packetsPerCall: number
  /** Packets delivered so far (sanity: equals packets sent). */
  delivered: () => number
}

/** An IPv6/UDP packet of `size` bytes (at least 48) from `src` to `dst`. */
export function ipv6Packet (size: number, src: Uint8Array, dst: Uint8Array): Uint8Array {
  const p = new Uint8Array(Math.max(48, size))
  const v = new DataView(p.buffer)
  p[0] = 0x60
  v.setUint16(4, p.length - 40)
  p[6] = 17
  p[7] = 64
  p.set(src, 8)
  p.set(dst, 24)
  p.fill(0xab, 48)
  return p
}

/**
 * Outbound only, or outbound + inbound (client → server) when `full`.
 * family 6: IPv6 packets between the nodes' IPv6 addresses, routed and
 * checked by longest prefix (route-table.ts) where IPv4 host addresses take
 * the exact tunnel-address lookup.
 */
export function directCase (size: number, full: boolean, family: 4 | 6 = 4, mssClamp = false): PipelineCase {
  const io = new FakeIo()
  const key = new Uint8Array(randomBytes(32))
  const pkt = family === 4 ? ipv4Packet(size, CLIENT_IP, SERVER_IP) : ipv6Packet(size, CLIENT6.addr, SERVER6.addr)
  // --mss-clamp: TCP segments (an ACK, data offset 5) instead of UDP, so the clamp's test runs its longest non-SYN way.
  if (mssClamp && family === 4) { pkt[9] = 6; pkt[32] = 0x50; pkt[33] = 0x10 }
  const client = tunDev(io, 'client0')
  const clientUdp = bindAt(io, EP_CLIENT, false)
  const out = new Outbound(init('outbound', 'client', CLIENT_IP, 0, client.fd, clientUdp.fd, mssClamp), io, () => {}, () => 0)
  out.peers.upsert({ ...peerMsg(1, 0, SERVER_IP, EP_SERVER) as object, prefixes: [SERVER6] } as never)
  out.setSendKey(1, key, 77)
  let inb: Inbound | null = null
  let server: { fd: number, tun: FakeTun } | null = null
  if (full) {
    // The server's socket is bound at EP_SERVER: the client's sends land in its receive queue (GRO on, as in the daemon).
    server = tunDev(io, 'server0')
    const serverUdp = bindAt(io, EP_SERVER, true)
    inb = new Inbound(init('inbound', 'server', SERVER_IP, 1, server.fd, serverUdp.fd, mssClamp), io, () => {})
    inb.handle({ ...peerMsg(1, 1, CLIENT_IP, EP_CLIENT) as object, prefixes: [CLIENT6] } as never)
    inb.handle({ code: 'LOCAL', prefixes: [SERVER6] } as never)
    inb.handle({ code: 'RECV_KEY', slot: 1, localIndex: 77, key })
  }
  return {
    fn: () => {
      for (let b = 0; b < BATCHES_PER_CALL; b++) {
        client.tun.inject(pkt, BATCH)
        out.onReadable()
        inb?.onReadable()
      }
    },
    packetsPerCall: BATCHES_PER_CALL * BATCH,
    delivered: () => full ? server!.tun.writtenPackets : clientUdp.udp.sentPackets
  }
}

/** The server's relay path: relay envelopes from a registered client to another. */
export function relayCase (size: number): PipelineCase {
  const io = new FakeIo()
  // A relay envelope (8 bytes) around a data message (16 + inner + 16); the server never opens it.
  const dgram = new Uint8Array(8 + 16 + size + 16)
  const v = new DataView(dgram.buffer)
  v.setUint32(0, 5, true)
  v.setUint32(4, 2, true) // to peer 2
  v.setUint32(8, 4, true)
  dgram.set(randomBytes(dgram.length - 12), 12)
  const server = tunDev(io, 'server0')
  const { fd: udpFd, udp } = bindAt(io, EP_SERVER, true)
  const inb = new Inbound(init('inbound', 'server', SERVER_IP, 1, server.fd, udpFd), io, () => {})
  inb.handle(peerMsg(1, 1, CLIENT_IP, EP_CLIENT))
  inb.handle(peerMsg(2, 2, OTHER_IP, EP_OTHER))
  return {
    fn: () => {
      for (let b = 0; b < BATCHES_PER_CALL; b++) {
        udp.inject(dgram, EP_CLIENT.ip, EP_CLIENT.port, BATCH)
        inb.onReadable()
      }
    },
    packetsPerCall: BATCHES_PER_CALL * BATCH,
    delivered: () => udp.sentPackets
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
    out.push(runCase(g, 'outbound IPv6: route+frame+seal', directCase(size, false, 6), opts, size, false))
    out.push(runCase(g, 'full: outbound + inbound (open, replay, accept)', directCase(size, true), opts, size, true))
    out.push(runCase(g, 'full, --mss-clamp (TCP ACKs)', directCase(size, true, 4, true), opts, size, true))
    out.push(runCase(g, 'full IPv6: outbound + inbound', directCase(size, true, 6), opts, size, true))
    out.push(runCase(g, 'server relay: classify+rewrite+forward', relayCase(size), opts, size, true))
  }
  return out
}
