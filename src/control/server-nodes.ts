/**
 * The operator's view of the server's nodes: the registry (control/registry.ts)
 * beside the live client records.
 *
 *   a registration the registry refuses ─▶ claimRefusal(): the log line (address,
 *     both fingerprints, the nodes command that fixes it)
 *   `nodes` commands (control/nodes.ts) ─▶ nodesAdmin(): registry, live endpoints, disconnect
 *   revocation, strict mode, a reload ─▶ disconnect() / dropUnadmitted(): Bye, the
 *     client removed, every other client told at the next peer-list flush
 *
 * Main thread only.
 */
import { sameBytes } from './session.js'
import { encodeControl, CTL_BYE } from '../wire/control.js'
import { formatEndpoint, intToIp } from '../wire/addr.js'
import { fingerprint } from '../identity/key-text.js'
import type { ClaimResult } from './registry.js'
import { formatIp6, type IpPrefix } from '../wire/prefix.js'
import type { NodesAdmin } from './nodes.js'
import type { ClientRecord, ServerContext } from './server-context.js'

/** A refused claim. */
export type ClaimRefusal = Exclude<ClaimResult, { ok: true }>

/**
 * The server's log line for a claim the registry refused (rate-limited by the
 * caller): the address, both fingerprints, the remedy. Pure: `byIp` gives the
 * live holder's endpoint, `authorizedFile` names the strict-mode list.
 */
export function claimRefusal (claim: ClaimRefusal, key: Uint8Array, ip: number, byIp: ReadonlyMap<number, ClientRecord>, authorizedFile: string | undefined, tunnel6: IpPrefix | null = null): string {
  const fp = fingerprint(key)
  switch (claim.reason) {
    case 'address-bound-to-other-key': {
      const h = claim.holder
      const live = h === undefined ? undefined : byIp.get(h.address)
      const where = live?.active === true ? `, registered now from ${formatEndpoint(live.endpointIp, live.endpointPort)}` : ', not connected now'
      // The IPv6 address when that is the one bound (family 6), else the IPv4 one.
      const a = claim.family === 6 && tunnel6 !== null ? `the IPv6 address ${formatIp6(tunnel6.addr)}` : intToIp(ip)
      const sel = claim.family === 6 && tunnel6 !== null ? formatIp6(tunnel6.addr) : intToIp(ip)
      return `${a} belongs to another node key (${h === undefined ? 'unknown' : fingerprint(h.key)}${where}); this one presented ${fp}. ` +
        `If it replaced that node, free the address: lightweight-tunnel nodes remove ${sel}`
    }
    case 'key-revoked': return `its key ${fp} was revoked (lightweight-tunnel nodes allow KEY lifts a revocation)`
    case 'not-authorized': return `${fp} asking for ${intToIp(ip)} is not listed in ${authorizedFile ?? 'the list of admitted nodes'}`
    default: return `refused (${String((claim as { reason: string }).reason)})`
  }
}

/** The registry as the operator's nodes commands see it (control/nodes.ts). */
export function nodesAdmin (ctx: ServerContext): NodesAdmin {
  return {
    registry: ctx.registry,
    liveEndpoint: (address, key) => {
      const rec = ctx.byIp.get(address)
      if (rec === undefined || !rec.active || !sameBytes(rec.key, key)) return null
      return formatEndpoint(rec.endpointIp, rec.endpointPort)
    },
    disconnect: (address, why) => disconnect(ctx, address, why),
    authorized: () => ctx.registry.authorized,
    wallNow: () => ctx.clock.wallNow()
  }
}

/**
 * Cuts a node off at once (revocation, strict mode): Bye on its session (it
 * reconnects and meets the refusal), its sessions and slot dropped, and
 * every other client told at the next peer-list flush (PEER_UPDATE_INTERVAL),
 * which drops their sessions with it. Pending registrations for the address
 * go too. True when a client was registered there.
 */
export function disconnect (ctx: ServerContext, address: number, why: string): boolean {
  for (const p of ctx.pending.forAddress(address)) { ctx.pending.delete(p); ctx.dropSession(p.session) }
  const rec = ctx.byIp.get(address)
  if (rec === undefined) return false
  const s = rec.sessions.current
  if (rec.active && s !== null) ctx.port.sendControl(s.ctl.seal(encodeControl({ kind: CTL_BYE, reason: 1 })), rec.endpointIp, rec.endpointPort)
  ctx.log.warn(`disconnected ${intToIp(address)}: ${why}`, { peer: intToIp(address) })
  ctx.remove(rec, null)
  return true
}

/**
 * Drops every registered client the registry no longer admits (after a
 * reload of --authorized-nodes, or a revocation by key); returns how many.
 */
export function dropUnadmitted (ctx: ServerContext, why: string): number {
  let n = 0
  for (const rec of [...ctx.byIp.values()]) {
    const r = ctx.registry.check(rec.key, rec.tunnelIp, rec.tunnel6?.addr ?? null)
    if (!r.ok && disconnect(ctx, rec.tunnelIp, `${why} (${r.reason})`)) n++
  }
  return n
}
