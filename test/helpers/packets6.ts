/**
 * IPv6 packets for dataplane tests, built the way a far host would and
 * independent of the addon: a fixed 40-byte header (RFC 8200 §3), optional
 * TCP/UDP with their checksums over the IPv6 pseudo-header (RFC 8200 §8.1)
 * computed here in plain TypeScript.
 *
 *   ipv6(src, dst, payload, nextHeader)   [6|tc|flow][payload len][nh][hop 64][src 16][dst 16] ‖ payload
 *   udp6(...) / tcp6(...)                 the same around a UDP / TCP segment, checksum filled in
 */
import { parseIp6 } from '../../src/wire/prefix.js'

/** Address text → 16 bytes. */
export const a6 = (s: string): Uint8Array => parseIp6(s)

export function ipv6 (src: Uint8Array, dst: Uint8Array, payload: Uint8Array = new Uint8Array(8), nextHeader = 17): Uint8Array {
  const p = new Uint8Array(40 + payload.length)
  const v = new DataView(p.buffer)
  p[0] = 0x60
  v.setUint16(4, payload.length)
  p[6] = nextHeader
  p[7] = 64
  p.set(src, 8)
  p.set(dst, 24)
  p.set(payload, 40)
  return p
}

/** The one's-complement checksum of an IPv6 packet's L4 bytes (from +40) with the pseudo-header, as the receiver verifies. */
export function l4Checksum6 (pkt: Uint8Array, proto = pkt[6]!): number {
  const v = new DataView(pkt.buffer, pkt.byteOffset, pkt.byteLength)
  const l4len = pkt.length - 40
  let sum = 0
  for (let i = 8; i < 40; i += 2) sum += v.getUint16(i)
  sum += (l4len >>> 16) + (l4len & 0xffff) + proto
  for (let i = 40; i + 1 < pkt.length; i += 2) sum += v.getUint16(i)
  if ((l4len & 1) === 1) sum += pkt[pkt.length - 1]! << 8
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16)
  return sum
}

/** True when the TCP/UDP checksum of an IPv6 packet verifies (the sum including the field is 0xffff). */
export function checksumOk6 (pkt: Uint8Array): boolean {
  return l4Checksum6(pkt) === 0xffff
}

function fill (pkt: Uint8Array, at: number): Uint8Array {
  const v = new DataView(pkt.buffer, pkt.byteOffset, pkt.byteLength)
  v.setUint16(40 + at, 0)
  let c = ~l4Checksum6(pkt) & 0xffff
  if (c === 0 && pkt[6] === 17) c = 0xffff
  v.setUint16(40 + at, c)
  return pkt
}

export function udp6 (src: Uint8Array, dst: Uint8Array, sport: number, dport: number, data: Uint8Array): Uint8Array {
  const u = new Uint8Array(8 + data.length)
  const v = new DataView(u.buffer)
  v.setUint16(0, sport)
  v.setUint16(2, dport)
  v.setUint16(4, u.length)
  u.set(data, 8)
  return fill(ipv6(src, dst, u, 17), 6)
}

/** A TCP segment (20-byte header, or longer with `options`), flags ACK unless told. */
export function tcp6 (src: Uint8Array, dst: Uint8Array, sport: number, dport: number, seq: number, data: Uint8Array,
  o: { ack?: number, flags?: number, options?: Uint8Array } = {}): Uint8Array {
  const opt = o.options ?? new Uint8Array(0)
  const hl = 20 + opt.length
  const s = new Uint8Array(hl + data.length)
  const v = new DataView(s.buffer)
  v.setUint16(0, sport)
  v.setUint16(2, dport)
  v.setUint32(4, seq >>> 0)
  v.setUint32(8, (o.ack ?? 1) >>> 0)
  s[12] = (hl / 4) << 4
  s[13] = o.flags ?? 0x10
  v.setUint16(14, 65535)
  s.set(opt, 20)
  s.set(data, hl)
  return fill(ipv6(src, dst, s, 6), 16)
}
