/**
 * The inner addresses a peer owns beyond its IPv4 tunnel address, as the
 * dataplane's PeerRoute.prefixes wants them (control/port.ts): its IPv6
 * tunnel address as a /128 and its approved routes. One function, used by
 * the client for every peer (from the peer-list entry's attributes) and by
 * the server for every client (from what it approved).
 *
 *   NodeAttrs (wire/attrs.ts) ─▶ peerPrefixes ─▶ DataplanePort.setPeer({ …, prefixes })
 */
import type { NodeAttrs } from '../wire/attrs.js'
import type { IpPrefix } from '../wire/prefix.js'

export function peerPrefixes (a: NodeAttrs): IpPrefix[] { return [...(a.tunnel6 !== null ? [{ family: 6 as const, addr: a.tunnel6.addr, len: 128 }] : []), ...a.routes] }
