/**
 * TCP MSS clamping (--mss-clamp): lowers the MSS option of a TCP SYN or
 * SYN-ACK (IPv4 or IPv6) passing through the pipelines to what the peer's
 * path carries: its inner limit (PATH_MTU; the TUN MTU when no smaller limit
 * is known) minus the IP and TCP headers (40 bytes for IPv4, 60 for IPv6),
 * so neither end of the connection sends a segment the path would drop.
 * Pure function over a packet buffer; the pipelines call it per packet
 * (outbound.ts #frame: to a peer, that peer's limit; inbound.ts
 * #openAndDeliver: from a peer, the same peer's limit) and count its
 * verdicts (mssClamped; mssMalformed: the option list is malformed, the
 * packet passes untouched: clamping is a courtesy, not a filter).
 *
 *   packet ─▶ cheap test: IPv4 (not a later fragment) or IPv6 with next
 *             header TCP, SYN flag set ─▶ otherwise MSS_NOT_SYN (almost every packet)
 *          ─▶ walk the options, bounded by the data offset and the packet ─▶ MSS_MALFORMED (untouched)
 *          ─▶ no MSS option, or MSS ≤ limit ─▶ MSS_UNCHANGED
 *          ─▶ MSS > limit: rewritten, TCP checksum updated incrementally (RFC 1624 eqn. 3) ─▶ MSS_CLAMPED
 *
 * IPv6 SYNs behind extension headers are left alone (MSS_NOT_SYN): hosts
 * do not send them, and walking the chain is not worth it on the packet path.
 */
import { C, NO_PATH_LIMIT } from '../workers/layout.js'

export const MSS_NOT_SYN = 0
export const MSS_UNCHANGED = 1
export const MSS_CLAMPED = 2
export const MSS_MALFORMED = 3

/** IP + TCP header bytes subtracted from the inner limit (iptables' --clamp-mss-to-pmtu does the same). */
export const MSS_OVERHEAD_V4 = 40
export const MSS_OVERHEAD_V6 = 60

/**
 * Clamp the MSS option of the packet at b[off, off + len) to `inner` minus
 * the headers. Returns one of the MSS_* verdicts; only MSS_CLAMPED changes bytes.
 */
export function clampMss (b: Uint8Array, off: number, len: number, inner: number): number {
  const ver = b[off] >> 4
  let t: number
  let max: number
  if (ver === 4) {
    if (len < 40 || b[off + 9] !== 6) return MSS_NOT_SYN
    if ((((b[off + 6] & 0x1f) << 8) | b[off + 7]) !== 0) return MSS_NOT_SYN // a later fragment: no TCP header
    const ihl = (b[off] & 15) * 4
    if (ihl < 20 || ihl + 20 > len) return MSS_NOT_SYN
    t = off + ihl
    max = inner - MSS_OVERHEAD_V4
  } else if (ver === 6) {
    if (len < 60 || b[off + 6] !== 6) return MSS_NOT_SYN
    t = off + 40
    max = inner - MSS_OVERHEAD_V6
  } else return MSS_NOT_SYN
  if ((b[t + 13] & 0x02) === 0) return MSS_NOT_SYN
  const doff = (b[t + 12] >> 4) * 4
  const end = t + doff
  if (doff < 20 || end > off + len) return MSS_MALFORMED
  let at = -1
  for (let i = t + 20; i < end;) {
    const kind = b[i]
    if (kind === 0) break // end of option list
    if (kind === 1) { i++; continue } // no-op
    if (i + 1 >= end) return MSS_MALFORMED
    const l = b[i + 1]
    if (l < 2 || i + l > end) return MSS_MALFORMED
    if (kind === 2) {
      if (l !== 4 || at >= 0) return MSS_MALFORMED
      at = i + 2
    }
    i += l
  }
  if (at < 0 || max <= 0) return MSS_UNCHANGED
  const mss = (b[at] << 8) | b[at + 1]
  if (mss <= max) return MSS_UNCHANGED
  b[at] = max >> 8
  b[at + 1] = max & 0xff
  // RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'). A field at an odd offset from the TCP header straddles two
  // checksum words: its bytes land swapped in the ones' complement sum.
  let m = mss
  let m2 = max
  if (((at - t) & 1) === 1) { m = ((m & 0xff) << 8) | (m >> 8); m2 = ((m2 & 0xff) << 8) | (m2 >> 8) }
  const hc = (b[t + 16] << 8) | b[t + 17]
  let sum = (~hc & 0xffff) + (~m & 0xffff) + m2
  sum = (sum & 0xffff) + (sum >>> 16)
  sum = (sum & 0xffff) + (sum >>> 16)
  const nc = ~sum & 0xffff
  b[t + 16] = nc >> 8
  b[t + 17] = nc & 0xff
  return MSS_CLAMPED
}

/**
 * The pipelines' hook: clamp to the peer's inner limit (NO_PATH_LIMIT: the
 * TUN MTU's) and count the verdict (mssClamped, mssMalformed) in stats.
 */
export function clampMssCounted (stats: Float64Array, b: Uint8Array, off: number, len: number, limit: number, mtu: number): void {
  const v = clampMss(b, off, len, limit === NO_PATH_LIMIT ? mtu : limit)
  if (v === MSS_CLAMPED) stats[C.mssClamped]++
  else if (v === MSS_MALFORMED) stats[C.mssMalformed]++
}
