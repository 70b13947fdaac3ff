/**
 * A peer's inner addresses beyond its IPv4 tunnel address, as the dataplane
 * wants them (PeerRoute.prefixes): its IPv6 tunnel address as a /128 (if it
 * has one) and its routes (from the server, which sends only approved ones).
 * The one place a client turns a peer's NodeAttrs into prefixes.
 */
import type { NodeAttrs } from '../wire/attrs.js'
import type { IpPrefix } from '../wire/prefix.js'

export function peerPrefixes (a: NodeAttrs): IpPrefix[] { return [...(a.tunnel6 !== null ? [{ family: 6 as const, addr: a.tunnel6.addr, len: 128 }] : []), ...a.routes] }
