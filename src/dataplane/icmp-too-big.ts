/**
 * ICMP "too big" answers the outbound pipeline writes back to the TUN when
 * an inner packet does not fit its peer's path (path-mtu-client.ts sets the
 * limit): IPv4 destination unreachable / fragmentation needed (RFC 792,
 * RFC 1191 next-hop MTU) and ICMPv6 Packet Too Big (RFC 4443 §3.2), so the
 * inner sender's own PMTUD lowers its packet size for that destination.
 *
 *   inner packet (too big) ──▶ buildTooBig(pkt, off, len, mtu, out, outOff) ──▶ length, or 0: no answer
 *
 * The answer comes "from" the packet's destination (addresses swapped): it
 * routes back through the tunnel, passes reverse-path filtering, and is what
 * a router on the tunnel path would look like. It quotes the offending
 * packet's header and the start of its payload (the IPv4 answer 576 bytes
 * at most, RFC 1812 §4.3.2.3; the IPv6 one 1280, RFC 4443 §2.4(c)).
 * No answer (0) for: an ICMP error (never answer an error with an error), a
 * non-first IPv4 fragment, a truncated header, a multicast/broadcast or
 * unspecified source.
 * Pure byte work on caller-supplied buffers; no allocation.
 */

/** The ICMP answer's own headers: IPv4 20 + ICMP 8; IPv6 40 + ICMPv6 8. */
export const TOO_BIG4_HEADER = 28
export const TOO_BIG6_HEADER = 48
/** Largest answers (RFC 1812 576 for IPv4, the IPv6 minimum MTU 1280). */
export const TOO_BIG4_MAX = 576
export const TOO_BIG6_MAX = 1280
/** RFC 8200 §5: IPv6 links carry at least 1280; a smaller limit is announced as 1280 (the packet is still dropped). */
export const IPV6_MIN_MTU = 1280

function sum16 (b: Uint8Array, from: number, to: number, acc: number): number {
  let i = from
  for (; i + 1 < to; i += 2) acc += (b[i] << 8) | b[i + 1]
  if (i < to) acc += b[i] << 8
  return acc
}
function fold (acc: number): number {
  while (acc > 0xffff) acc = (acc & 0xffff) + (acc >>> 16)
  return (~acc) & 0xffff
}

/** Build the answer into out[outOff..]; returns its length, or 0 when this packet must not be answered. */
export function buildTooBig (pkt: Uint8Array, off: number, len: number, mtu: number, out: Uint8Array, outOff: number): number {
  const ver = pkt[off] >> 4
  if (ver === 4) return buildFragNeeded4(pkt, off, len, mtu, out, outOff)
  if (ver === 6) return buildPacketTooBig6(pkt, off, len, mtu, out, outOff)
  return 0
}

/** IPv4 type 3 code 4 with the next-hop MTU `mtu` (the largest inner packet that fits). */
export function buildFragNeeded4 (pkt: Uint8Array, off: number, len: number, mtu: number, out: Uint8Array, outOff: number): number {
  if (len < 20) return 0
  const ihl = (pkt[off] & 0x0f) * 4
  if (ihl < 20 || len < ihl) return 0
  if (((pkt[off + 6] & 0x1f) | pkt[off + 7]) !== 0) return 0 // a non-first fragment
  const src0 = pkt[off + 12]
  if (src0 === 0 || src0 >= 224 || (src0 === 127)) return 0 // unspecified, multicast/broadcast/class E, loopback
  if (pkt[off + 9] === 1) {
    // ICMP: answer only queries (echo request 8, timestamp 13, ...), never an error.
    if (len < ihl + 1) return 0
    const t = pkt[off + ihl]
    if (t === 3 || t === 4 || t === 5 || t === 11 || t === 12) return 0
  }
  const quote = Math.min(len, TOO_BIG4_MAX - TOO_BIG4_HEADER)
  const total = TOO_BIG4_HEADER + quote
  const o = outOff
  out[o] = 0x45
  out[o + 1] = 0xc0 // DSCP CS6, as routers send ICMP errors
  out[o + 2] = total >>> 8
  out[o + 3] = total & 0xff
  out[o + 4] = 0; out[o + 5] = 0 // id
  out[o + 6] = 0; out[o + 7] = 0 // no DF: a 576-byte answer always fits
  out[o + 8] = 64 // TTL
  out[o + 9] = 1 // ICMP
  out[o + 10] = 0; out[o + 11] = 0
  for (let i = 0; i < 4; i++) {
    out[o + 12 + i] = pkt[off + 16 + i] // source: the packet's destination
    out[o + 16 + i] = pkt[off + 12 + i] // destination: its source
  }
  const ck = fold(sum16(out, o, o + 20, 0))
  out[o + 10] = ck >>> 8
  out[o + 11] = ck & 0xff
  const m = o + 20
  out[m] = 3 // destination unreachable
  out[m + 1] = 4 // fragmentation needed and DF set
  out[m + 2] = 0; out[m + 3] = 0
  out[m + 4] = 0; out[m + 5] = 0 // unused
  out[m + 6] = (mtu >>> 8) & 0xff
  out[m + 7] = mtu & 0xff
  out.set(pkt.subarray(off, off + quote), m + 8)
  const ick = fold(sum16(out, m, m + 8 + quote, 0))
  out[m + 2] = ick >>> 8
  out[m + 3] = ick & 0xff
  return total
}

/** ICMPv6 type 2 code 0 with MTU max(mtu, 1280). */
export function buildPacketTooBig6 (pkt: Uint8Array, off: number, len: number, mtu: number, out: Uint8Array, outOff: number): number {
  if (len < 40) return 0
  const src0 = pkt[off + 8]
  if (src0 === 0xff) return 0 // multicast source (invalid)
  let unspecified = true
  for (let i = 8; i < 24; i++) if (pkt[off + i] !== 0) { unspecified = false; break }
  if (unspecified) return 0
  if (pkt[off + 6] === 58) {
    // ICMPv6 right after the header: errors are types 0..127.
    if (len < 41 || pkt[off + 40] < 128) return 0
  }
  const quote = Math.min(len, TOO_BIG6_MAX - TOO_BIG6_HEADER)
  const plen = 8 + quote
  const o = outOff
  out[o] = 0x60; out[o + 1] = 0; out[o + 2] = 0; out[o + 3] = 0
  out[o + 4] = plen >>> 8
  out[o + 5] = plen & 0xff
  out[o + 6] = 58 // ICMPv6
  out[o + 7] = 64 // hop limit
  for (let i = 0; i < 16; i++) {
    out[o + 8 + i] = pkt[off + 24 + i] // source: the packet's destination
    out[o + 24 + i] = pkt[off + 8 + i] // destination: its source
  }
  const m = o + 40
  const v = Math.max(mtu, IPV6_MIN_MTU)
  out[m] = 2; out[m + 1] = 0; out[m + 2] = 0; out[m + 3] = 0
  out[m + 4] = (v >>> 24) & 0xff
  out[m + 5] = (v >>> 16) & 0xff
  out[m + 6] = (v >>> 8) & 0xff
  out[m + 7] = v & 0xff
  out.set(pkt.subarray(off, off + quote), m + 8)
  // Checksum over the pseudo-header (source, destination, length, next header 58) and the message.
  let acc = sum16(out, o + 8, o + 40, 0)
  acc += plen + 58
  acc = sum16(out, m, m + plen, acc)
  const ck = fold(acc)
  out[m + 2] = ck >>> 8
  out[m + 3] = ck & 0xff
  return 40 + plen
}
