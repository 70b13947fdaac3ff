/**
 * IP prefixes of either family: a node's IPv6 tunnel address, subnet routes
 * (advertised, approved, installed) and the dataplane's allowed inner
 * addresses all use this one type.
 *
 * Representation contract:
 *   - `addr` holds the address bytes in network order: 4 bytes for IPv4,
 *     16 for IPv6. (IPv4 code elsewhere keeps the host-order u32 of addr.ts;
 *     ipv4Prefix() and prefixIpv4() convert.)
 *   - A *network* prefix (a route) has every bit past `len` zero; parsePrefix
 *     refuses host bits unless asked to keep them (a tunnel address is
 *     written with its host bits: fd00:77::2/64).
 *
 * Text: IPv4 strictly dotted-quad (addr.ts); IPv6 as RFC 4291 §2.2 (hex
 * groups, one '::', an embedded dotted quad at the end), formatted as RFC
 * 5952 (lower case, longest zero run as '::'). No zone ids: a tunnel or a
 * route has no scope.
 */
import { isIPv6 } from 'node:net'
import { VpnError } from '../errors.js'
import { intToIp, ipToInt, isIpv4 } from './addr.js'

export type IpFamily = 4 | 6

export interface IpPrefix {
  readonly family: IpFamily
  /** 4 or 16 bytes, network order. */
  readonly addr: Uint8Array
  /** 0..32 (IPv4) or 0..128 (IPv6). */
  readonly len: number
}

export function maxPrefixLen (family: IpFamily): number { return family === 4 ? 32 : 128 }

/** Strict IPv6 text → 16 bytes. Throws ERR_CONFIG_INVALID. */
export function parseIp6 (s: string): Uint8Array {
  if (typeof s !== 'string' || s.includes('%') || !isIPv6(s)) {
    throw new VpnError('ERR_CONFIG_INVALID', `invalid IPv6 address: ${JSON.stringify(s)}`,
      { hint: 'write it as hex groups separated by colons, e.g. fd00:77::2' })
  }
  const out = new Uint8Array(16)
  let text = s
  const lastColon = text.lastIndexOf(':')
  if (text.slice(lastColon + 1).includes('.')) {
    // An embedded dotted quad (::ffff:192.0.2.1) becomes its two hex groups.
    const v4 = ipToInt(text.slice(lastColon + 1))
    text = `${text.slice(0, lastColon + 1)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`
  }
  const halves = text.split('::')
  const groups = (part: string): number[] => part === '' ? [] : part.split(':').map(g => parseInt(g, 16))
  const head = groups(halves[0])
  const rest = halves.length > 1 ? groups(halves[1]) : []
  const words = halves.length > 1
    ? [...head, ...new Array<number>(8 - head.length - rest.length).fill(0), ...rest]
    : head
  if (words.length !== 8) throw new VpnError('ERR_CONFIG_INVALID', `invalid IPv6 address: ${JSON.stringify(s)}`)
  for (let i = 0; i < 8; i++) { out[2 * i] = words[i] >>> 8; out[2 * i + 1] = words[i] & 0xff }
  return out
}

/** 16 bytes → RFC 5952 text (lower case, the longest run of two or more zero groups as '::'). */
export function formatIp6 (b: Uint8Array): string {
  const w: number[] = []
  for (let i = 0; i < 8; i++) w.push((b[2 * i] << 8) | b[2 * i + 1])
  let bestAt = -1; let bestLen = 1
  for (let i = 0; i < 8;) {
    if (w[i] !== 0) { i++; continue }
    let j = i
    while (j < 8 && w[j] === 0) j++
    if (j - i > bestLen) { bestAt = i; bestLen = j - i }
    i = j
  }
  const hex = (xs: number[]): string => xs.map(x => x.toString(16)).join(':')
  if (bestAt < 0) return hex(w)
  return `${hex(w.slice(0, bestAt))}::${hex(w.slice(bestAt + bestLen))}`
}

/** An address of either family → bytes; throws ERR_CONFIG_INVALID naming the text. */
export function parseIp (s: string): { family: IpFamily, addr: Uint8Array } {
  if (typeof s === 'string' && isIpv4(s)) return { family: 4, addr: ipv4Bytes(ipToInt(s)) }
  if (typeof s === 'string' && s.includes(':')) return { family: 6, addr: parseIp6(s) }
  throw new VpnError('ERR_CONFIG_INVALID', `invalid IP address: ${JSON.stringify(s)}`,
    { hint: 'an IPv4 address such as 192.168.50.1 or an IPv6 address such as fd50::1' })
}

export function formatIp (family: IpFamily, addr: Uint8Array): string {
  return family === 4 ? intToIp(bytesIpv4(addr)) : formatIp6(addr)
}

/**
 * 'ADDR/LEN' of either family. `keepHostBits` (a tunnel address) keeps the
 * address as written; otherwise (a route) host bits are an error naming the
 * network the user probably meant, as `ip route` does.
 */
export function parsePrefix (s: string, opts: { keepHostBits?: boolean } = {}): IpPrefix {
  const slash = typeof s === 'string' ? s.indexOf('/') : -1
  if (slash < 0) {
    throw new VpnError('ERR_CONFIG_INVALID', `invalid prefix: ${JSON.stringify(s)}`,
      { hint: 'write address and prefix length, e.g. 192.168.50.0/24 or fd50::/64' })
  }
  const { family, addr } = parseIp(s.slice(0, slash))
  const lenText = s.slice(slash + 1)
  const len = Number(lenText)
  if (!/^[0-9]{1,3}$/.test(lenText) || len > maxPrefixLen(family)) {
    throw new VpnError('ERR_CONFIG_INVALID', `invalid prefix length in ${JSON.stringify(s)}`,
      { hint: `the prefix length of an IPv${family} prefix is a number 0-${maxPrefixLen(family)}` })
  }
  const p: IpPrefix = { family, addr, len }
  if (opts.keepHostBits !== true) {
    const net = networkOf(p)
    if (!equalBytes(net.addr, addr)) {
      throw new VpnError('ERR_CONFIG_INVALID', `${s} has host bits set`,
        { hint: `the network is ${formatPrefix(net)}` })
    }
  }
  return p
}

export function formatPrefix (p: IpPrefix): string { return `${formatIp(p.family, p.addr)}/${p.len}` }

/** The prefix with every bit past `len` cleared. */
export function networkOf (p: IpPrefix): IpPrefix {
  const addr = new Uint8Array(p.addr)
  for (let bit = p.len; bit < addr.length * 8; bit++) addr[bit >> 3] &= ~(0x80 >> (bit & 7))
  return { family: p.family, addr, len: p.len }
}

/** True when `addr` (same family) lies inside `p`. */
export function prefixContains (p: IpPrefix, family: IpFamily, addr: Uint8Array): boolean {
  if (family !== p.family) return false
  const full = p.len >> 3
  for (let i = 0; i < full; i++) if (p.addr[i] !== addr[i]) return false
  const rem = p.len & 7
  if (rem === 0) return true
  const mask = (0xff << (8 - rem)) & 0xff
  return (p.addr[full] & mask) === (addr[full] & mask)
}

/** True when the two prefixes share at least one address (one contains the other). */
export function prefixesOverlap (a: IpPrefix, b: IpPrefix): boolean {
  if (a.family !== b.family) return false
  return a.len <= b.len ? prefixContains(a, b.family, b.addr) : prefixContains(b, a.family, a.addr)
}

export function samePrefix (a: IpPrefix, b: IpPrefix): boolean {
  return a.family === b.family && a.len === b.len && equalBytes(a.addr, b.addr)
}

/** A host-order IPv4 u32 (addr.ts) and a length → IpPrefix. */
export function ipv4Prefix (ip: number, len: number): IpPrefix {
  return { family: 4, addr: ipv4Bytes(ip), len }
}

export function ipv4Bytes (ip: number): Uint8Array {
  return Uint8Array.of(ip >>> 24, (ip >>> 16) & 0xff, (ip >>> 8) & 0xff, ip & 0xff)
}

export function bytesIpv4 (b: Uint8Array): number {
  return ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0
}

function equalBytes (a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}
