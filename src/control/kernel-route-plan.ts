/**
 * Which of the peers' approved routes a node puts in its kernel routing
 * table (--accept-routes), and what changes from what is installed. Pure:
 * offers and facts in, a plan and a diff out; dataplane/kernel-routes.ts
 * runs the iproute2 commands.
 *
 *   offers (the server's routes, every peer's approved routes: client.ts routeOffers)
 *     ─▶ planRoutes: skip (with the reason, logged and counted by kernel-routes.ts)
 *          a route holding the server's underlay address (it would capture the tunnel's own path),
 *          a route overlapping the tunnel network, or one of our own networks,
 *          a second offer of a network already offered by another node
 *     ─▶ diffRoutes(installed, plan.install): add (ip route replace), remove (ip route del)
 */
import { intToIp } from '../wire/addr.js'
import { formatPrefix, ipv4Bytes, prefixContains, prefixesOverlap, type IpPrefix } from '../wire/prefix.js'

/** A network some node serves: `via` is its tunnel address (host order; the server's too). */
export interface RouteOffer { readonly via: number, readonly prefix: IpPrefix }

export interface PlanFacts {
  /** The server's underlay IPv4 address (host order), 0 while unknown. */
  readonly serverUnderlay: number
  /** The tunnel network(s). */
  readonly tunnelNets: readonly IpPrefix[]
  /** Networks this node advertises itself. */
  readonly own: readonly IpPrefix[]
}

export interface SkippedRoute { readonly offer: RouteOffer, readonly reason: string }
export interface RoutePlan { readonly install: RouteOffer[], readonly skipped: SkippedRoute[] }

export function planRoutes (offers: readonly RouteOffer[], f: PlanFacts): RoutePlan {
  const install: RouteOffer[] = []
  const skipped: SkippedRoute[] = []
  for (const o of offers) {
    const p = o.prefix
    const text = formatPrefix(p)
    const from = intToIp(o.via)
    if (f.serverUnderlay !== 0 && prefixContains(p, 4, ipv4Bytes(f.serverUnderlay))) {
      skipped.push({ offer: o, reason: `${text} from ${from} holds the server's address ${intToIp(f.serverUnderlay)}: routed into the tunnel it would cut the tunnel's own path` })
      continue
    }
    const net = f.tunnelNets.find(n => prefixesOverlap(n, p))
    if (net !== undefined) { skipped.push({ offer: o, reason: `${text} from ${from} overlaps the tunnel network ${formatPrefix(net)}` }); continue }
    const own = f.own.find(n => prefixesOverlap(n, p))
    if (own !== undefined) { skipped.push({ offer: o, reason: `${text} from ${from} overlaps our own network ${formatPrefix(own)}` }); continue }
    const dup = install.find(i => prefixesOverlap(i.prefix, p))
    if (dup !== undefined) { skipped.push({ offer: o, reason: `${text} from ${from} overlaps ${formatPrefix(dup.prefix)} from ${intToIp(dup.via)}` }); continue }
    install.push(o)
  }
  return { install, skipped }
}

/** The kernel's key of a route: its prefix text (the device is always ours). */
export function routeKey (p: IpPrefix): string { return formatPrefix(p) }

/** Routes to add (new, or now via another node) and to remove (no longer wanted). */
export function diffRoutes (installed: ReadonlyMap<string, RouteOffer>, wanted: readonly RouteOffer[]): { add: RouteOffer[], remove: RouteOffer[] } {
  const want = new Map(wanted.map(o => [routeKey(o.prefix), o]))
  const add = wanted.filter(o => { const i = installed.get(routeKey(o.prefix)); return i === undefined || i.via !== o.via })
  const remove = [...installed.entries()].filter(([k]) => !want.has(k)).map(([, o]) => o)
  return { add, remove }
}
