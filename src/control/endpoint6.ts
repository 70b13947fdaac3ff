/**
 * IPv6 endpoints in the control plane. Endpoints stay u32 (wire/endpoint-handle.ts): an IPv6 endpoint
 * is a handle into the daemon's IPv6 address table (dataplane/v6-table.ts), which the control plane
 * reaches through the narrow V6Names interface (ControlComponents.v6; absent in tests without IPv6).
 *
 * Flow: the server pins the handle of every client it routes to (ServerContext.route) and unpins it when
 * the client is removed; peer-list entries carry such a client's address in the ENDPOINT6 attribute
 * (wire/attrs.ts type 5) with 0 as the IPv4 endpoint; a client interns a peer's ENDPOINT6 pinned and
 * uses the handle as that peer's public endpoint. Handles never reach the wire: wireIp() zeroes them.
 */
import { isHandle, isV6Handle } from '../wire/endpoint-handle.js'
import { MAX_CANDIDATES6, type Endpoint6 } from '../wire/attrs.js'

export interface V6Names {
  /** The handle of an address (added if absent); pin keeps it until unpin. null: the table is full. */
  intern(addr: Uint8Array, pin: boolean): number | null
  /** The address a handle names, or null. */
  address(handle: number): Uint8Array | null
  unpin(handle: number): void
}

/** Keep an IPv6 endpoint's table entry while something routes to it. */
export function pinEndpoint (v6: V6Names | undefined, ip: number): void {
  if (v6 === undefined || !isV6Handle(ip)) return
  const a = v6.address(ip)
  if (a !== null) v6.intern(a, true)
}

export function unpinEndpoint (v6: V6Names | undefined, ip: number): void {
  if (v6 !== undefined && isV6Handle(ip)) v6.unpin(ip)
}

/** The ENDPOINT6 attribute for an endpoint, or null when it is IPv4 (or no longer in the table). */
export function endpoint6Of (v6: V6Names | undefined, ip: number, port: number): Endpoint6 | null {
  if (v6 === undefined || !isV6Handle(ip)) return null
  const addr = v6.address(ip)
  return addr === null ? null : { addr, port }
}

/** The CANDIDATE6 part of an init's attrs: our global IPv6 addresses, at most MAX_CANDIDATES6; {} when none. */
export function candidates6Attr (own: readonly Endpoint6[] | undefined): { candidates6?: readonly Endpoint6[] } {
  return own === undefined || own.length === 0 ? {} : { candidates6: own.slice(0, MAX_CANDIDATES6) }
}

/** A peer's CANDIDATE6s as candidates to probe: each interned (pinned) as a handle. */
export function peerCandidates6 (v6: V6Names | undefined, c6: readonly Endpoint6[] | undefined): Array<{ ip: number, port: number }> {
  if (v6 === undefined || c6 === undefined) return []
  const out: Array<{ ip: number, port: number }> = []
  for (const e of c6) {
    const h = v6.intern(e.addr, true)
    if (h !== null) out.push({ ip: h, port: e.port })
  }
  return out
}

/** A peer-list entry's endpoint: its IPv4 one, else its ENDPOINT6 interned (pinned), else 0:0. */
export function peerEndpoint (v6: V6Names | undefined, ip: number, port: number, e6: Endpoint6 | null | undefined): { ip: number, port: number } {
  if (ip !== 0 || e6 == null || v6 === undefined) return { ip, port }
  const h = v6.intern(e6.addr, true)
  return h === null ? { ip: 0, port: 0 } : { ip: h, port: e6.port }
}
