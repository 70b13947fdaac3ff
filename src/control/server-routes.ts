/**
 * The server's subnet routes: the decisions on what each client advertises
 * (route-approval.ts), kept on the client records, and what follows from a
 * change (docs/PROTOCOL.md §11a).
 *
 *   registration (server-registration.ts: rec.advertised from the init) ─┐
 *   a client removed (server-context.ts remove → dirty)                  ├─▶ recompute(): decideRoutes for every
 *   SIGHUP with a new --approve-routes (setPolicy)                       ┘   active client in registration order
 *       a client whose approved set changed ─▶ setPeer (its prefixes) + peerList.announce (its PeerEntry attrs)
 *       a newly pending or refused route   ─▶ logged once (per node, prefix, reason)
 *
 * Only approved routes ever leave the server (PeerEntry attrs.routes). The
 * server's own routes are always approved (RespPayload attrs, setLocalPrefixes).
 * Main thread only.
 */
import type { Logger } from '../log.js'
import type { ApproveRoutes } from '../config/schema.js'
import { approvedFor } from '../config/routes.js'
import { intToIp } from '../wire/addr.js'
import { formatPrefix, samePrefix, type IpPrefix } from '../wire/prefix.js'
import { approvedOf, decideRoutes, type HeldRoute, type RouteDecision } from './route-approval.js'
import type { ClientRecord } from './server-context.js'

/** What the server's routes act on (server.ts wires them to the context). */
export interface RoutesIo {
  /** Records by tunnel address, in registration order. */
  readonly byIp: ReadonlyMap<number, ClientRecord>
  /** The record's approved routes changed: its dataplane route and its peer-list entry follow. */
  changed(rec: ClientRecord): void
  readonly log: Logger
}

export class ServerRoutes {
  #policy: ApproveRoutes
  readonly #tunnelNets: readonly IpPrefix[]
  /** The server's own routes (--advertise-routes on the server): always approved. */
  readonly own: readonly IpPrefix[]
  readonly #io: RoutesIo
  #dirty = false
  /** "node prefix" → the "state reason" last logged: a decision is logged when it changes, not at every recompute. */
  readonly #logged = new Map<string, string>()

  constructor (policy: ApproveRoutes, tunnelNets: readonly IpPrefix[], own: readonly IpPrefix[], io: RoutesIo) {
    this.#policy = policy
    this.#tunnelNets = tunnelNets
    this.own = own
    this.#io = io
  }

  /** A reloaded --approve-routes: every client decided again now. */
  setPolicy (p: ApproveRoutes): void { this.#policy = p; this.recompute() }

  /** Something held a route and is gone: decide again at the next tick. */
  markDirty (): void { this.#dirty = true }

  tick (): void { if (this.#dirty) this.recompute() }

  /**
   * Decides every active client's routes. The first holder keeps a network:
   * routes approved before (and still advertised) are decided first, in
   * registration order, then every other advertised route, in the same
   * order. Records whose approved set changed are announced; `except` (a
   * client being activated: its caller routes and announces it) only gets
   * its decisions.
   */
  recompute (except: ClientRecord | null = null): void {
    this.#dirty = false
    const held: HeldRoute[] = []
    const recs = [...this.#io.byIp.values()].filter(r => r.active || r === except)
    /** Per record, the decision for each advertised route by its index. */
    const decided = new Map<ClientRecord, RouteDecision[]>()
    for (const incumbents of [true, false]) {
      for (const rec of recs) {
        const was = new Set(rec.approved.map(formatPrefix))
        const idx = rec.advertised.map((_, i) => i).filter(i => was.has(formatPrefix(rec.advertised[i]!)) === incumbents)
        const ds = decideRoutes(rec.tunnelIp, idx.map(i => rec.advertised[i]!), { policy: approvedFor(this.#policy, rec.tunnelIp), tunnelNets: this.#tunnelNets, serverRoutes: this.own, held })
        const out = decided.get(rec) ?? []
        decided.set(rec, out)
        ds.forEach((d, k) => {
          out[idx[k]!] = d
          if (d.state === 'approved') held.push({ node: rec.tunnelIp, prefix: d.prefix })
        })
      }
    }
    for (const rec of recs) {
      const ds = decided.get(rec)!
      const before = rec.approved
      rec.routes = ds
      rec.approved = approvedOf(ds)
      this.#logDecisions(rec, ds)
      if (rec !== except && !sameList(before, rec.approved)) this.#io.changed(rec)
    }
  }

  #logDecisions (rec: ClientRecord, ds: readonly RouteDecision[]): void {
    for (const d of ds) {
      const key = `${intToIp(rec.tunnelIp)} ${formatPrefix(d.prefix)}`
      const line = `${d.state} ${d.reason ?? ''}`
      if (this.#logged.get(key) === line) continue
      if (this.#logged.size > 4096) this.#logged.clear()
      this.#logged.set(key, line)
      const peer = intToIp(rec.tunnelIp)
      if (d.state === 'approved') this.#io.log.info(`route ${formatPrefix(d.prefix)} of ${peer} approved`, { peer })
      else if (d.state === 'pending') this.#io.log.warn(`route ${formatPrefix(d.prefix)} of ${peer} is pending: ${d.reason!}`, { peer })
      else this.#io.log.error(`route ${formatPrefix(d.prefix)} of ${peer} refused: ${d.reason!}`, { peer })
    }
  }

  /** status counters: routes approved, pending and refused now, over the active clients. */
  counters (): { routesApproved: number, routesPending: number, routesRefused: number } {
    const c = { routesApproved: 0, routesPending: 0, routesRefused: 0 }
    for (const rec of this.#io.byIp.values()) {
      if (!rec.active) continue
      for (const d of rec.routes) {
        if (d.state === 'approved') c.routesApproved++
        else if (d.state === 'pending') c.routesPending++
        else c.routesRefused++
      }
    }
    return c
  }
}

function sameList (a: readonly IpPrefix[], b: readonly IpPrefix[]): boolean {
  return a.length === b.length && a.every((p, i) => samePrefix(p, b[i]!))
}
