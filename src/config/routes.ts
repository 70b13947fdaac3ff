/**
 * The route settings (issue 11, docs/PROTOCOL.md "Subnet routes"), read and
 * checked for config/load.ts:
 *
 *   advertiseRoutes  --advertise-routes 192.168.50.0/24,fd50::/64 (Go: -routes,
 *                    config "routes"; a file may also give a JSON list) →
 *                    canonical "ADDR/LEN" strings
 *   approveRoutes    --approve-routes all | NODE=CIDR[+CIDR...][,NODE=...] |
 *                    NODE=all; a file may also give a list of such items or
 *                    an object { "10.0.0.2": ["192.168.50.0/24"], "10.0.0.3": "all" }
 *                    → 'all' | { node: 'all' | CIDRs }
 *
 * Every problem names the flag or key, the value and the fix: malformed
 * prefixes, host bits, a route covering or inside the tunnel network,
 * duplicates and overlaps, more than MAX_ROUTES. Values are kept as text
 * (the frozen Config holds no byte arrays); routePrefixes() turns them back
 * into IpPrefix for the control plane.
 */
import { describeError } from '../errors.js'
import { intToIp, isIpv4, ipToInt, inSubnet, networkAddress } from '../wire/addr.js'
import { MAX_ROUTES } from '../wire/attrs.js'
import { formatPrefix, ipv4Prefix, networkOf, parsePrefix, prefixesOverlap, samePrefix, type IpPrefix } from '../wire/prefix.js'
import { show } from './messages.js'
import type { ApproveRoutes, Ipv4Cidr } from './schema.js'
import type { Raw } from './validate.js'

/** Canonical route texts → prefixes (they were checked by the readers below). */
export function routePrefixes (texts: readonly string[]): IpPrefix[] {
  return texts.map(t => parsePrefix(t))
}

/** A comma-separated string or (file) a JSON list of strings → items, or null after a problem. */
function items (raw: Raw, what: string, sep: RegExp, problems: string[]): string[] | null {
  if (typeof raw.value === 'string') return raw.value.split(sep).map(x => x.trim()).filter(x => x !== '')
  if (Array.isArray(raw.value) && raw.value.every(x => typeof x === 'string')) return (raw.value as string[]).map(x => x.trim())
  problems.push(`${raw.source}: expected ${what}, got ${show(raw.value)}`)
  return null
}

/**
 * One route's text → prefix, or null after a problem naming `source`:
 * malformed, host bits, or overlapping the tunnel network (a route may
 * neither cover nor lie inside it: those addresses are the nodes' own).
 */
function parseRoute (text: string, source: string, tun: Ipv4Cidr | null, problems: string[], tun6: IpPrefix | null): IpPrefix | null {
  let p: IpPrefix
  try {
    p = parsePrefix(text)
  } catch (err) {
    problems.push(`${source}: ${describeError(err).replace(/\n {2}hint: /, '; ')}`)
    return null
  }
  if (tun !== null) {
    const tunNetwork = ipv4Prefix(networkAddress(tun.ipInt, tun.prefix), tun.prefix)
    if (prefixesOverlap(p, tunNetwork)) {
      const how = p.len <= tun.prefix ? 'covers' : 'lies inside'
      problems.push(`${source}: the route ${text} ${how} the tunnel network ${formatPrefix(tunNetwork)}; routes are networks behind a node, outside the tunnel network (remove it, or pick another tunnel network with --tun)`)
      return null
    }
  }
  if (tun6 !== null) {
    const tunNetwork = networkOf(tun6)
    if (prefixesOverlap(p, tunNetwork)) {
      const how = p.len <= tun6.len ? 'covers' : 'lies inside'
      problems.push(`${source}: the route ${text} ${how} the tunnel's IPv6 network ${formatPrefix(tunNetwork)}; routes are networks behind a node, outside the tunnel network (remove it, or pick another IPv6 tunnel network with --tun)`)
      return null
    }
  }
  return p
}

/** Routes of one list: each parsed; duplicates and overlaps within the list refused; at most MAX_ROUTES. */
function parseRouteList (texts: readonly string[], source: string, tun: Ipv4Cidr | null, problems: string[], tun6: IpPrefix | null): string[] | null {
  const before = problems.length
  const out: IpPrefix[] = []
  for (const t of texts) {
    const p = parseRoute(t, source, tun, problems, tun6)
    if (p === null) continue
    const dup = out.find(q => prefixesOverlap(p, q))
    if (dup !== undefined) {
      problems.push(samePrefix(dup, p)
        ? `${source}: the route ${formatPrefix(p)} is given twice; give it once`
        : `${source}: the routes ${formatPrefix(dup)} and ${formatPrefix(p)} overlap; give only the larger one or split them into networks that do not overlap`)
      continue
    }
    out.push(p)
  }
  if (out.length > MAX_ROUTES) problems.push(`${source}: ${out.length} routes, at most ${MAX_ROUTES}; combine neighbouring networks into larger prefixes`)
  return problems.length > before ? null : out.map(formatPrefix)
}

/** advertiseRoutes: none when absent (or "" / []). */
export function readAdvertiseRoutes (raw: Raw | undefined, tun: Ipv4Cidr | null, problems: string[], tun6: IpPrefix | null = null): string[] | null {
  if (raw === undefined) return []
  const list = items(raw, 'networks behind this node, comma-separated (e.g. 192.168.50.0/24,fd50::/64)', /,/, problems)
  if (list === null) return null
  return parseRouteList(list, raw.source, tun, problems, tun6)
}

/**
 * approveRoutes (server): absent → {} (nothing approved). "all"; or items
 * "NODE=CIDR+CIDR" / "NODE=all" (comma-separated, or a JSON list); or a JSON
 * object NODE → list | "all". NODE is a client's tunnel address inside the
 * tunnel network, not the server's own; each node once.
 */
export function readApproveRoutes (raw: Raw | undefined, tun: Ipv4Cidr | null, problems: string[], tun6: IpPrefix | null = null): ApproveRoutes | null {
  if (raw === undefined || raw.value === '' || raw.value === 'none') return {}
  if (raw.value === 'all') return 'all'
  const fix = 'expected "all", or NODE=CIDR[+CIDR...] per client separated by commas (NODE = the client\'s tunnel address, e.g. 10.0.0.2=192.168.50.0/24+fd50::/64), or NODE=all'
  let pairs: Array<[string, unknown]>
  if (raw.value !== null && typeof raw.value === 'object' && !Array.isArray(raw.value)) {
    pairs = Object.entries(raw.value as Record<string, unknown>)
  } else {
    const list = items(raw, fix, /,/, problems)
    if (list === null) return null
    pairs = []
    for (const it of list) {
      const eq = it.indexOf('=')
      if (eq < 0) { problems.push(`${raw.source}: ${show(it)} names no node; ${fix}`); continue }
      const v = it.slice(eq + 1).trim()
      pairs.push([it.slice(0, eq).trim(), v === 'all' ? 'all' : v.split('+').map(x => x.trim()).filter(x => x !== '')])
    }
  }
  const before = problems.length
  const out: Record<string, 'all' | readonly string[]> = {}
  for (const [node, v] of pairs) {
    if (!isIpv4(node)) { problems.push(`${raw.source}: ${show(node)} is not a node's tunnel address; ${fix}`); continue }
    if (tun !== null && (!inSubnet(ipToInt(node), networkAddress(tun.ipInt, tun.prefix), tun.prefix) || node === tun.ip)) {
      problems.push(`${raw.source}: ${node} is not a client address of the tunnel network ${intToIp(networkAddress(tun.ipInt, tun.prefix))}/${tun.prefix} (the server's own routes are given with --advertise-routes)`)
      continue
    }
    if (Object.hasOwn(out, node)) { problems.push(`${raw.source}: the node ${node} is named twice; give its routes once, joined with +`); continue }
    if (v === 'all') { out[node] = 'all'; continue }
    if (!Array.isArray(v) || !v.every(x => typeof x === 'string')) { problems.push(`${raw.source}: the routes of ${node}: expected a list of networks or "all", got ${show(v)}`); continue }
    const routes = parseRouteList(v as string[], `${raw.source} (node ${node})`, tun, problems, tun6)
    if (routes !== null) out[node] = routes
  }
  return problems.length > before ? null : out
}

/** The approved networks of a node as prefixes, or 'all'; none when the node is not named. */
export function approvedFor (a: ApproveRoutes, nodeIp: number): 'all' | IpPrefix[] {
  if (a === 'all') return 'all'
  const v = a[intToIp(nodeIp)]
  if (v === undefined) return []
  return v === 'all' ? 'all' : routePrefixes(v)
}
