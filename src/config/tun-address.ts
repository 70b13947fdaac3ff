/**
 * The `tun` setting: a node's tunnel addresses. One IPv4 CIDR (required this
 * release) and at most one IPv6 address with its prefix length, given as
 * "10.0.0.2/24,fd00:77::2/64" (a flag, or a file string with a comma) or as
 * a JSON list in the file (["10.0.0.2/24", "fd00:77::2/64"]; the Go key
 * "tunnel_addr" is the same setting).
 *
 *   Raw (flag or file) ─▶ readTunAddresses ─▶ { tun: Ipv4Cidr (validate.ts checkCidr),
 *                                               tun6: IpPrefix | null (checkTun6 below) }
 *
 * Every problem names the setting, the value and the fix; config/load.ts
 * collects them with the others.
 */
import { show } from './messages.js'
import { checkCidr, type Raw } from './validate.js'
import type { Ipv4Cidr, Mode } from './schema.js'
import { formatPrefix, networkOf, parsePrefix, prefixContains, samePrefix, type IpPrefix } from '../wire/prefix.js'
import { isVpnError } from '../errors.js'

/** The widest IPv6 tunnel network accepted (a /8 would capture routes to unrelated addresses, as for IPv4). */
export const TUN6_PREFIX_MIN = 16

/** RFC 8200 §5: every link carrying IPv6 has an MTU of at least 1280. */
export const IPV6_MIN_MTU = 1280

const EXAMPLE = 'e.g. 10.0.0.2/24,fd00:77::2/64'

/** Address ranges a tunnel address may not come from, with the reason shown. */
const FORBIDDEN6: ReadonlyArray<{ net: IpPrefix, why: string }> = [
  { net: parsePrefix('::/128'), why: 'the unspecified address ::' },
  { net: parsePrefix('::1/128'), why: 'the loopback address ::1' },
  { net: parsePrefix('::ffff:0:0/96'), why: 'an IPv4-mapped address (give the IPv4 address on its own)' },
  { net: parsePrefix('fe80::/10'), why: 'link-local (fe80::/10): the kernel gives every device one of its own' },
  { net: parsePrefix('ff00::/8'), why: 'multicast (ff00::/8)' }
]

/**
 * The `tun` value → both addresses. Null fields where a problem was pushed
 * (the IPv4 one is required: a missing one is a problem too).
 */
export function readTunAddresses (raw: Raw, mode: Mode | null, problems: string[]): { tun: Ipv4Cidr | null, tun6: IpPrefix | null } {
  const none = { tun: null, tun6: null }
  let parts: string[]
  if (typeof raw.value === 'string') parts = raw.value.split(',').map(p => p.trim())
  else if (Array.isArray(raw.value) && raw.value.length > 0 && raw.value.every(v => typeof v === 'string')) parts = (raw.value as string[]).map(p => p.trim())
  else {
    problems.push(`${raw.source}: expected the tunnel address as CIDR, ${EXAMPLE} (or a list of one IPv4 and one IPv6 CIDR), got ${show(raw.value)}`)
    return none
  }
  if (parts.some(p => p === '')) {
    problems.push(`${raw.source}: an empty address in ${show(raw.value)}; write one IPv4 CIDR and optionally one IPv6 CIDR separated by a comma, ${EXAMPLE}`)
    return none
  }
  const v4 = parts.filter(p => !p.includes(':'))
  const v6 = parts.filter(p => p.includes(':'))
  let ok = true
  if (v4.length === 0) {
    problems.push(`${raw.source}: no IPv4 address in ${show(raw.value)}: every node needs an IPv4 tunnel address (IPv6-only nodes are not supported yet); add one, ${EXAMPLE}`)
    ok = false
  } else if (v4.length > 1) {
    problems.push(`${raw.source}: two IPv4 addresses (${v4.join(', ')}): a node has one IPv4 tunnel address; keep one`)
    ok = false
  }
  if (v6.length > 1) {
    problems.push(`${raw.source}: two IPv6 addresses (${v6.join(', ')}): a node has at most one IPv6 tunnel address; keep one`)
    ok = false
  }
  const tun = v4.length === 1 ? checkCidr(v4[0]!, raw.source, problems) : null
  const tun6 = v6.length === 1 ? checkTun6(v6[0]!, mode, raw.source, problems) : null
  if (!ok) return none
  return { tun, tun6 }
}

/**
 * One IPv6 tunnel address "ADDR/LEN": a unicast address (not unspecified,
 * loopback, IPv4-mapped, link-local or multicast), LEN TUN6_PREFIX_MIN..128,
 * not the all-zero host (the subnet-router anycast address of RFC 4291
 * §2.6.1); on a server LEN < 128 (its clients need room in the network).
 */
export function checkTun6 (value: string, mode: Mode | null, source: string, problems: string[]): IpPrefix | null {
  let p: IpPrefix
  try {
    p = parsePrefix(value, { keepHostBits: true })
  } catch (err) {
    if (!isVpnError(err)) throw err
    const hint = err.hint !== undefined ? `; ${err.hint}` : ''
    problems.push(`${source}: expected an IPv6 address with prefix length, e.g. fd00:77::2/64, got ${show(value)} (${err.message}${hint})`)
    return null
  }
  if (p.family !== 6) {
    problems.push(`${source}: expected an IPv6 address with prefix length, e.g. fd00:77::2/64, got ${show(value)}`)
    return null
  }
  const bad = FORBIDDEN6.find(f => prefixContains(f.net, 6, p.addr))
  if (bad !== undefined) {
    problems.push(`${source}: ${show(value)} cannot be a tunnel address: it is ${bad.why}; use a unique local address such as fd00:77::2/64`)
    return null
  }
  if (p.len < TUN6_PREFIX_MIN) {
    problems.push(`${source}: expected an IPv6 prefix length ${TUN6_PREFIX_MIN}..128, got /${p.len} in ${show(value)} (a network larger than /${TUN6_PREFIX_MIN} would swallow routes to unrelated addresses); /64 is the usual choice`)
    return null
  }
  if (mode === 'server' && p.len === 128) {
    problems.push(`${source}: the server's IPv6 address ${show(value)} has prefix /128, which leaves no room for clients; give the network's prefix length, e.g. ${formatPrefix({ ...p, len: 64 })}`)
    return null
  }
  if (p.len < 128 && samePrefix(networkOf(p), p)) {
    problems.push(`${source}: expected a host address, got ${show(value)}, the subnet-router anycast address of ${formatPrefix(networkOf(p))} (all host bits zero); use e.g. ${formatPrefix(hostOne(p))}`)
    return null
  }
  return p
}

/** The network's first host (::1 within it), for messages. */
function hostOne (p: IpPrefix): IpPrefix {
  const addr = new Uint8Array(networkOf(p).addr)
  addr[15] |= 1
  return { family: 6, addr, len: p.len }
}
