/**
 * IPv4 address helpers shared by the wire codecs, the peer table and config.
 *
 * Representation contract, used everywhere in the code base:
 *   - An IPv4 address in memory is a *host-order unsigned* 32-bit number:
 *     '10.0.0.1' -> 0x0a000001 = 167772161. Always in [0, 2^32 - 1], never
 *     negative (results go through `>>> 0`).
 *   - On the wire it is 4 raw bytes in *network order* (big-endian): 0a 00 00 01.
 *     readIp()/writeIp() are the only conversions between the two.
 *   - An endpoint (ip, port) has a numeric key ip * 65536 + port, an exact
 *     integer below 2^48, usable as a Map key without allocating a string.
 *
 * Parsing functions take user input (config, CLI) and throw
 * VpnError('ERR_CONFIG_INVALID'); they never accept anything but the strict
 * dotted-quad form (no leading zeros, no shorthand like '10.1').
 */
import { fakeTcpHandleText, isFakeTcpHandle } from './faketcp-handle.js'
import { VpnError } from '../errors.js'
import { HANDLE_INDEX_MASK, isConnHandle, isHandle, isV6Handle } from './endpoint-handle.js'

/** A parsed 'a.b.c.d/prefix' (same shape as config/schema.ts Ipv4Cidr). */
export interface Cidr {
  /** Dotted quad of the address part as written (canonical form). */
  readonly ip: string
  /** Host-order unsigned value of `ip`. */
  readonly ipInt: number
  /** Prefix length, 0..32. */
  readonly prefix: number
}

const OCTET = /^(?:0|[1-9][0-9]{0,2})$/

/** True when `s` is a strict dotted-quad IPv4 address. */
export function isIpv4 (s: string): boolean {
  const parts = s.split('.')
  if (parts.length !== 4) return false
  for (const p of parts) {
    if (!OCTET.test(p) || Number(p) > 255) return false
  }
  return true
}

/** '10.0.0.1' -> 167772161 (host order, unsigned). Throws ERR_CONFIG_INVALID. */
export function ipToInt (s: string): number {
  if (typeof s !== 'string' || !isIpv4(s)) {
    throw new VpnError('ERR_CONFIG_INVALID', `invalid IPv4 address: ${JSON.stringify(s)}`,
      { hint: 'write it as four decimal numbers 0-255, e.g. 10.0.0.1' })
  }
  const p = s.split('.')
  return ((Number(p[0]) << 24) | (Number(p[1]) << 16) | (Number(p[2]) << 8) | Number(p[3])) >>> 0
}

/** 167772161 -> '10.0.0.1'. `ip` must be an integer in [0, 2^32). */
export function intToIp (ip: number): string {
  if (!Number.isInteger(ip) || ip < 0 || ip > 0xffffffff) {
    throw new VpnError('ERR_CONFIG_INVALID', `invalid IPv4 value: ${ip}`)
  }
  return `${ip >>> 24}.${(ip >>> 16) & 0xff}.${(ip >>> 8) & 0xff}.${ip & 0xff}`
}

/**
 * '10.0.0.1/24' -> { ip: '10.0.0.1', ipInt, prefix: 24 }. Host bits may be
 * set (the usual way to write a tunnel address with its network). A missing
 * '/prefix' is an error: the prefix decides routing, so it is never guessed.
 */
export function parseCidr (s: string): Cidr {
  const slash = typeof s === 'string' ? s.indexOf('/') : -1
  if (slash < 0) {
    throw new VpnError('ERR_CONFIG_INVALID', `invalid CIDR: ${JSON.stringify(s)}`,
      { hint: 'write address and prefix length, e.g. 10.0.0.1/24' })
  }
  const ipPart = s.slice(0, slash)
  const prefixPart = s.slice(slash + 1)
  if (!/^(?:[0-9]|[1-2][0-9]|3[0-2])$/.test(prefixPart)) {
    throw new VpnError('ERR_CONFIG_INVALID', `invalid prefix length in ${JSON.stringify(s)}`,
      { hint: 'the prefix length is a number 0-32' })
  }
  const ipInt = ipToInt(ipPart)
  return { ip: ipPart, ipInt, prefix: Number(prefixPart) }
}

/** Netmask of a prefix length as a host-order unsigned number: 24 -> 0xffffff00. */
export function prefixMask (prefix: number): number {
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > 32) {
    throw new VpnError('ERR_CONFIG_INVALID', `invalid prefix length: ${prefix}`)
  }
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0
}

/** Network address: ip with the host bits cleared. */
export function networkAddress (ip: number, prefix: number): number {
  return (ip & prefixMask(prefix)) >>> 0
}

/** Broadcast address: ip with the host bits set. */
export function broadcastAddress (ip: number, prefix: number): number {
  return (ip | ~prefixMask(prefix)) >>> 0
}

/** True when `ip` lies in network `net`/`prefix` (host bits of `net` ignored). */
export function inSubnet (ip: number, net: number, prefix: number): boolean {
  const m = prefixMask(prefix)
  return ((ip & m) >>> 0) === ((net & m) >>> 0)
}

/**
 * Numeric key of an endpoint: ip * 65536 + port. Exact (< 2^48), unique per
 * (ip, port), and cheap: the UDP receive path maps source endpoints to peers
 * with it without building strings.
 */
export function endpointKey (ip: number, port: number): number {
  return ip * 65536 + port
}

/** Inverse of endpointKey. */
export function endpointFromKey (key: number): { ip: number, port: number } {
  const port = key % 65536
  return { ip: (key - port) / 65536, port }
}

/**
 * How an endpoint handle (wire/endpoint-handle.ts) is named in text: the daemon sets it to its IPv6
 * table's lookup (one daemon per process; v6-outside.ts). Unset, or for an entry no longer there, a
 * handle prints as v6#INDEX / conn#INDEX.
 */
let handleText: ((ip: number) => string | null) | null = null
export function setHandleText (fn: ((ip: number) => string | null) | null): void { handleText = fn }

/** An endpoint's host part: '10.0.0.1', '[2001:db8::1]' for an IPv6 handle. */
export function formatEndpointHost (ip: number): string {
  if (!isHandle(ip)) return intToIp(ip)
  const t = handleText?.(ip) ?? null
  if (t !== null) return isV6Handle(ip) ? `[${t}]` : t
  return `${isConnHandle(ip) ? 'conn' : isV6Handle(ip) ? 'v6' : 'handle'}#${ip & HANDLE_INDEX_MASK}`
}

/** (167772161, 9000) -> '10.0.0.1:9000', an IPv6 handle -> '[2001:db8::1]:9000', for logs and status output. */
export function formatEndpoint (ip: number, port: number): string {
  if (isFakeTcpHandle(ip)) return fakeTcpHandleText(ip, port) // a fake-TCP flow (wire/faketcp-handle.ts)
  if (connText !== null && isConnHandle(ip)) return connText(ip, port)
  return `${formatEndpointHost(ip)}:${port}`
}

/**
 * How formatEndpoint shows a connection handle ("tcp:198.51.100.7:41000"): the daemon's connection table
 * (transport/daemon-transport.ts installs it, null at stop). Like setHandleText, one hook per process.
 */
let connText: ((ip: number, port: number) => string) | null = null
export function setConnHandleText (fn: ((ip: number, port: number) => string) | null): void { connText = fn }

/** Reads 4 network-order bytes at buf[off] as a host-order unsigned number. No bounds check. */
export function readIp (buf: Uint8Array, off: number): number {
  return ((buf[off] << 24) | (buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3]) >>> 0
}

/** Writes host-order `ip` as 4 network-order bytes at buf[off]. No bounds check. */
export function writeIp (buf: Uint8Array, off: number, ip: number): void {
  buf[off] = ip >>> 24
  buf[off + 1] = ip >>> 16
  buf[off + 2] = ip >>> 8
  buf[off + 3] = ip
}
