/**
 * The fake-TCP segment (docs/PROTOCOL.md §14a): an ordinary TCP header (RFC 9293 §3.1) with options,
 * carried in IPv4, in front of ONE sealed message (the same bytes a UDP datagram would carry). The
 * handshake segments (SYN, SYN-ACK, ACK; dataplane/faketcp-flow.ts) are built and read here; data
 * segments are built and read by the addon (native/faketcp.c) with the same layout:
 *
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-------------------------------+-------------------------------+
 *   |          source port          |       destination port        |
 *   +-------------------------------+-------------------------------+
 *   |        sequence number: advances by the payload length        |
 *   +---------------------------------------------------------------+
 *   |  acknowledgment number: the highest sequence end received     |
 *   +-------+-------+---------------+-------------------------------+
 *   | doff  |   0   |     flags     |            window             |
 *   +-------+-------+---------------+-------------------------------+
 *   |           checksum            |        urgent pointer = 0     |
 *   +-------------------------------+-------------------------------+
 *   | options: SYN, SYN-ACK: MSS, SACK-permitted, timestamps, NOP,  |
 *   |   window scale (20 bytes, Linux's order); after: NOP NOP      |
 *   |   timestamps (12 bytes)                                       |
 *   +---------------------------------------------------------------+
 *   | payload: one sealed message (data segments only)              |
 *
 * The checksum covers the IPv4 pseudo-header (RFC 9293 §3.1, RFC 1071 arithmetic). Decoding checks
 * the IPv4 header (version 4, protocol 6, lengths, no fragment), the TCP data offset and every option's
 * length; anything else is a WireError.
 */
import { WireError } from '../errors.js'

export const TCP_FIN = 0x01
export const TCP_SYN = 0x02
export const TCP_RST = 0x04
export const TCP_PSH = 0x08
export const TCP_ACK = 0x10
/** The TCP header without options. */
export const TCP_HEADER_LEN = 20
/** IPv4 + TCP + NOP NOP timestamps: what a data segment adds in front of a sealed message (24 more than UDP's 28). */
export const FAKETCP_OVERHEAD = 20 + 20 + 12

export interface TcpOptions {
  mss?: number
  /** Window scale shift (RFC 7323 §2). */
  wscale?: number
  sackOk?: boolean
  /** Timestamps (RFC 7323 §3): our clock and the peer's last value. */
  ts?: { val: number, ecr: number }
}

export interface TcpSegment {
  srcPort: number
  dstPort: number
  seq: number
  ack: number
  flags: number
  window: number
  options: TcpOptions
  payload: Uint8Array
}

export interface Ipv4Tcp {
  srcIp: number
  dstIp: number
  seg: TcpSegment
  /** Whether the TCP checksum was right. */
  checksumOk: boolean
}

/** The options' bytes, in Linux's order (MSS, SACK-permitted + timestamps, NOP + window scale), padded to 4. */
function encodeOptions (o: TcpOptions): number[] {
  const b: number[] = []
  if (o.mss !== undefined) b.push(2, 4, (o.mss >>> 8) & 0xff, o.mss & 0xff)
  const ts = o.ts === undefined ? [] : [8, 10, ...u32(o.ts.val), ...u32(o.ts.ecr)]
  if (o.sackOk === true) b.push(4, 2, ...(ts.length > 0 ? ts : [1, 1]))
  else if (ts.length > 0) b.push(1, 1, ...ts)
  if (o.wscale !== undefined) b.push(1, 3, 3, o.wscale & 0xff)
  return b
}

function u32 (v: number): number[] { return [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff] }
function rd16 (b: Uint8Array, o: number): number { return (b[o]! << 8) | b[o + 1]! }
function rd32 (b: Uint8Array, o: number): number { return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0 }

/** The segment's bytes, checksum 0 (the addon fills it in when it sends; tcpChecksum computes it here). */
export function encodeSegment (s: TcpSegment): Uint8Array {
  const opts = encodeOptions(s.options)
  const hlen = TCP_HEADER_LEN + opts.length
  const out = new Uint8Array(hlen + s.payload.length)
  out.set([(s.srcPort >>> 8) & 0xff, s.srcPort & 0xff, (s.dstPort >>> 8) & 0xff, s.dstPort & 0xff, ...u32(s.seq), ...u32(s.ack),
    (hlen / 4) << 4, s.flags & 0xff, (s.window >>> 8) & 0xff, s.window & 0xff, 0, 0, 0, 0, ...opts])
  out.set(s.payload, hlen)
  return out
}

function decodeOptions (b: Uint8Array, from: number, to: number): TcpOptions {
  const o: TcpOptions = {}
  let i = from
  while (i < to) {
    const kind = b[i]!
    if (kind === 0) break
    if (kind === 1) { i++; continue }
    if (i + 1 >= to) throw new WireError('TCP option without its length')
    const len = b[i + 1]!
    if (len < 2 || i + len > to) throw new WireError(`TCP option ${kind} of length ${len} overruns the header`)
    if (kind === 2 && len === 4) o.mss = rd16(b, i + 2)
    else if (kind === 3 && len === 3) o.wscale = b[i + 2]!
    else if (kind === 4 && len === 2) o.sackOk = true
    else if (kind === 8 && len === 10) o.ts = { val: rd32(b, i + 2), ecr: rd32(b, i + 6) }
    else if (kind === 2 || kind === 3 || kind === 4 || kind === 8) throw new WireError(`TCP option ${kind} of length ${len}`)
    i += len
  }
  return o
}

/** An IPv4 packet carrying a TCP segment (as a raw socket reads it). */
export function decodeIpv4Tcp (b: Uint8Array): Ipv4Tcp {
  if (b.length < 20 || b[0]! >> 4 !== 4) throw new WireError('not an IPv4 packet')
  const ihl = (b[0]! & 15) * 4
  const total = rd16(b, 2)
  if (ihl < 20 || total > b.length || total < ihl + TCP_HEADER_LEN) throw new WireError(`IPv4 lengths ${ihl}/${total} do not fit ${b.length} bytes`)
  if (b[9] !== 6) throw new WireError(`IPv4 protocol ${b[9]!} is not TCP`)
  if ((rd16(b, 6) & 0x3fff) !== 0) throw new WireError('IPv4 fragment')
  const t = ihl
  const doff = (b[t + 12]! >> 4) * 4
  if (doff < TCP_HEADER_LEN || t + doff > total) throw new WireError(`TCP data offset ${doff} does not fit ${total - ihl} bytes`)
  const srcIp = rd32(b, 12)
  const dstIp = rd32(b, 16)
  const segBytes = b.subarray(t, total)
  const seg: TcpSegment = {
    srcPort: rd16(b, t),
    dstPort: rd16(b, t + 2),
    seq: rd32(b, t + 4),
    ack: rd32(b, t + 8),
    flags: b[t + 13]!,
    window: rd16(b, t + 14),
    options: decodeOptions(b, t + 20, t + doff),
    payload: b.slice(t + doff, total)
  }
  return { srcIp, dstIp, seg, checksumOk: tcpChecksum(srcIp, dstIp, segBytes) === 0 }
}

/** RFC 1071: the one's-complement sum of 16-bit big-endian words, folded, not complemented. */
export function onesSum (b: Uint8Array, initial = 0): number {
  let s = initial
  const even = b.length & ~1
  for (let i = 0; i < even; i += 2) s += (b[i]! << 8) | b[i + 1]!
  if (b.length & 1) s += b[b.length - 1]! << 8
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000)
  return s
}

/** The internet checksum of bytes (RFC 1071): 0 over data that includes a right checksum. */
export function internetChecksum (b: Uint8Array): number { return ~onesSum(b) & 0xffff }

/**
 * The TCP checksum of `segment` (header with its checksum field as is, and payload) over the IPv4
 * pseudo-header: the value to store when the field is 0, and 0 when the stored one is right.
 */
export function tcpChecksum (srcIp: number, dstIp: number, segment: Uint8Array): number {
  const pseudo = (srcIp >>> 16) + (srcIp & 0xffff) + (dstIp >>> 16) + (dstIp & 0xffff) + 6 + segment.length
  return ~onesSum(segment, pseudo) & 0xffff
}
