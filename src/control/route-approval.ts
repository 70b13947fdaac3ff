/**
 * The server's decision on each route a client advertises (docs/PROTOCOL.md
 * §11a "Subnet routes"). Pure: the policy, the tunnel network, the server's
 * own routes and the routes already held by other nodes in; one decision per
 * advertised route out.
 *
 *   advertised route ─▶ overlaps the tunnel network?          ─▶ refused
 *                     ─▶ overlaps a route of the server?       ─▶ refused (names both)
 *                     ─▶ overlaps a route held by a node
 *                        decided earlier (first holder keeps)? ─▶ refused (names both)
 *                     ─▶ inside a network approved for it?     ─▶ approved
 *                     ─▶ otherwise                              ─▶ pending
 *
 * server-routes.ts runs decideRoutes over every client in registration order
 * whenever an input changes (a registration, a client gone, a reload).
 */
import { intToIp } from '../wire/addr.js'
import { formatPrefix, prefixContains, prefixesOverlap, type IpPrefix } from '../wire/prefix.js'

export type RouteState = 'approved' | 'pending' | 'refused'

export interface RouteDecision {
  readonly prefix: IpPrefix
  readonly state: RouteState
  /** Why it is pending or refused, in plain words naming the fix or the other holder; null when approved. */
  readonly reason: string | null
}

/** A route held by a node decided earlier (host-order tunnel address; 0 = the server). */
export interface HeldRoute { readonly node: number, readonly prefix: IpPrefix }

export interface ApprovalView {
  /** What the operator approved for this node (config/routes.ts approvedFor). */
  readonly policy: 'all' | readonly IpPrefix[]
  /** The IPv4 tunnel network (and, when known, the IPv6 one). */
  readonly tunnelNets: readonly IpPrefix[]
  /** The server's own routes (--advertise-routes on the server). */
  readonly serverRoutes: readonly IpPrefix[]
  /** Routes approved so far for other nodes (and this node's earlier ones). */
  readonly held: readonly HeldRoute[]
}

/** One decision per advertised route, in order; approved routes are appended to `held` by the caller. */
export function decideRoutes (node: number, advertised: readonly IpPrefix[], v: ApprovalView): RouteDecision[] {
  const out: RouteDecision[] = []
  const mine: IpPrefix[] = []
  for (const p of advertised) {
    const text = formatPrefix(p)
    const net = v.tunnelNets.find(n => prefixesOverlap(n, p))
    if (net !== undefined) {
      out.push({ prefix: p, state: 'refused', reason: `${text} ${p.len <= net.len ? 'covers' : 'lies inside'} the tunnel network ${formatPrefix(net)}` })
      continue
    }
    const srv = v.serverRoutes.find(s => prefixesOverlap(s, p))
    if (srv !== undefined) {
      out.push({ prefix: p, state: 'refused', reason: `${text} overlaps the server's own route ${formatPrefix(srv)}` })
      continue
    }
    const other = v.held.find(h => prefixesOverlap(h.prefix, p)) ?? (mine.some(m => prefixesOverlap(m, p)) ? { node, prefix: mine.find(m => prefixesOverlap(m, p))! } : undefined)
    if (other !== undefined) {
      const who = other.node === node ? 'its own route' : `${intToIp(other.node)}'s approved route`
      out.push({ prefix: p, state: 'refused', reason: `${text} overlaps ${who} ${formatPrefix(other.prefix)} (the first holder keeps it)` })
      continue
    }
    const ok = v.policy === 'all' || v.policy.some(a => a.family === p.family && a.len <= p.len && prefixContains(a, p.family, p.addr))
    if (!ok) {
      out.push({ prefix: p, state: 'pending', reason: `not approved: add ${intToIp(node)}=${text} to the server's --approve-routes (or "all")` })
      continue
    }
    mine.push(p)
    out.push({ prefix: p, state: 'approved', reason: null })
  }
  return out
}

/** The approved prefixes of a decision list. */
export function approvedOf (ds: readonly RouteDecision[]): IpPrefix[] {
  return ds.filter(d => d.state === 'approved').map(d => d.prefix)
}
