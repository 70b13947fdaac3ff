/**
 * Node attributes (protocol version 3): what a node says about itself beyond
 * its IPv4 tunnel address, appended to InitPayload, RespPayload and every
 * PeerUpdate entry as one block.
 *
 *   0          2
 *  +----------+------------------------------------------------
 *  | len u16  | attributes, `len` bytes: type u8, vlen u8, value
 *  +----------+------------------------------------------------
 *
 *  type 1 TUNNEL6 (vlen 17): the node's IPv6 tunnel address, 16 bytes, and
 *         its prefix length u8 (0..128). At most one.
 *  type 2 ROUTE (vlen 6 or 18): family u8 (4 or 6), prefix length u8, the
 *         network address (4 or 16 bytes, every bit past the length zero).
 *         InitPayload (role 1): the networks the client advertises.
 *         RespPayload: the networks the server itself serves.
 *         PeerUpdate entry: the peer's *approved* routes.
 *         At most MAX_ROUTES.
 *  type 3 REFUSED (vlen 1): family u8 (4 or 6): in a RespPayload whose
 *         status is a refusal, which of the initiator's tunnel addresses
 *         the status is about (absent: the IPv4 one). Nowhere else.
 *  type 4 FEC (vlen 2): data u8 (1..FEC_MAX_DATA), parity u8
 *         (1..FEC_MAX_PARITY): the node can decode FEC parity (type 8) and
 *         sends parity with these parameters on end-to-end sessions where
 *         the other side offered FEC too (PROTOCOL §4.7). At most one.
 *
 *  type 5 ENDPOINT6 (vlen 18): an IPv6 address (16 bytes) and UDP port u16:
 *         in a PeerUpdate entry, the peer's endpoint as the server sees it,
 *         when that is IPv6 (the entry's IPv4 endpoint is then 0:0). At most
 *         one.
 *  type 6 CANDIDATE6 (vlen 18): an IPv6 address and port u16: one of the
 *         node's own global IPv6 addresses with its port (InitPayload role
 *         1, forwarded in PeerUpdate entries), probed like a LAN candidate.
 *         At most MAX_CANDIDATES6.
 *
 *  Attributes of unknown type are skipped (a later version may add some
 *  without changing PROTOCOL_VERSION); a known type with a wrong length or
 *  value, a duplicate TUNNEL6, too many routes, or an attribute running past
 *  the block is a WireError. Encoders write TUNNEL6 first, then the routes
 *  in order, then REFUSED, then FEC, then ENDPOINT6, then the CANDIDATE6s.
 */
import { WireError } from '../errors.js'
import { maxPrefixLen, networkOf, samePrefix, type IpPrefix } from './prefix.js'
import { checkRoom, readU16, writeU16 } from './messages.js'

export const ATTR_TUNNEL6 = 1
export const ATTR_ROUTE = 2
export const ATTR_REFUSED = 3
export const ATTR_FEC = 4
export const ATTR_ENDPOINT6 = 5
export const ATTR_CANDIDATE6 = 6
/** IPv6 candidates a node may give (its global addresses; more are dropped by the encoder's caller). */
export const MAX_CANDIDATES6 = 4
const EP6_VLEN = 18
/** FEC limits (the same as wire/fec.ts, repeated to keep this file free of dataplane imports). */
const FEC_ATTR_MAX_DATA = 32
const FEC_ATTR_MAX_PARITY = 16
/** Routes a node may advertise, and a peer entry may carry. */
export const MAX_ROUTES = 16
const TUNNEL6_VLEN = 17
/** The largest block an encoder writes: TUNNEL6 and MAX_ROUTES IPv6 routes. */
export const ATTRS_MAX_LEN = 2 + (2 + TUNNEL6_VLEN) + MAX_ROUTES * (2 + 18) + 3 + 4 + (1 + MAX_CANDIDATES6) * (2 + EP6_VLEN)

/** An IPv6 UDP endpoint on the wire (ENDPOINT6, CANDIDATE6). */
export interface Endpoint6 {
  readonly addr: Uint8Array
  readonly port: number
}

export interface NodeAttrs {
  /** The node's IPv6 tunnel address with its prefix length (host bits kept), or null. */
  readonly tunnel6: IpPrefix | null
  /** Networks (host bits zero), IPv4 or IPv6. */
  readonly routes: readonly IpPrefix[]
  /** A refusal's RespPayload only: the family of the refused address (6: the IPv6 one); absent otherwise. */
  readonly refused?: 4 | 6
  /** FEC offered (data, parity), absent or null: none. */
  readonly fec?: { readonly data: number, readonly parity: number } | null
  /** PeerUpdate entry: the peer's IPv6 endpoint as the server sees it; absent or null: none. */
  readonly endpoint6?: Endpoint6 | null
  /** The node's own IPv6 candidates (global addresses, its port); absent: none. */
  readonly candidates6?: readonly Endpoint6[]
}

export const NO_ATTRS: NodeAttrs = Object.freeze({ tunnel6: null, routes: Object.freeze([]) as readonly IpPrefix[] })

export function isEmptyAttrs (a: NodeAttrs): boolean {
  return a.tunnel6 === null && a.routes.length === 0 && a.refused === undefined && (a.fec ?? null) === null && (a.endpoint6 ?? null) === null && (a.candidates6 ?? []).length === 0
}

/** Encoded size including the u16 length. */
export function attrsLength (a: NodeAttrs = NO_ATTRS): number {
  let n = 2
  if (a.tunnel6 !== null) n += 2 + TUNNEL6_VLEN
  for (const r of a.routes) n += 2 + 2 + (r.family === 4 ? 4 : 16)
  if (a.refused !== undefined) n += 3
  if ((a.fec ?? null) !== null) n += 2 + 2
  if ((a.endpoint6 ?? null) !== null) n += 2 + EP6_VLEN
  n += (a.candidates6 ?? []).length * (2 + EP6_VLEN)
  return n
}

function checkPrefix (what: string, p: IpPrefix): void {
  if (p.family !== 4 && p.family !== 6) throw new WireError(`${what}: family ${String(p.family)}`)
  if (!(p.addr instanceof Uint8Array) || p.addr.length !== (p.family === 4 ? 4 : 16)) throw new WireError(`${what}: address must be ${p.family === 4 ? 4 : 16} bytes`)
  if (!Number.isInteger(p.len) || p.len < 0 || p.len > maxPrefixLen(p.family)) throw new WireError(`${what}: prefix length ${p.len}`)
}

/** Writes the block at buf[offset]; returns the new offset. */
export function encodeAttrs (a: NodeAttrs, buf: Uint8Array, offset: number): number {
  if (a.refused !== undefined && a.refused !== 4 && a.refused !== 6) throw new WireError(`refused: family ${String(a.refused)}`)
  if (a.routes.length > MAX_ROUTES) throw new WireError(`attributes: ${a.routes.length} routes, at most ${MAX_ROUTES}`)
  if (a.tunnel6 !== null) {
    checkPrefix('tunnel6', a.tunnel6)
    if (a.tunnel6.family !== 6) throw new WireError('tunnel6: not an IPv6 address')
  }
  for (const r of a.routes) {
    checkPrefix('route', r)
    if (!samePrefix(networkOf(r), r)) throw new WireError('route: host bits set')
  }
  const fec = a.fec ?? null
  if (fec !== null && !validFec(fec.data, fec.parity)) throw new WireError(`FEC ${fec.data},${fec.parity} out of range`)
  const ep6 = a.endpoint6 ?? null
  const cands6 = a.candidates6 ?? []
  if (cands6.length > MAX_CANDIDATES6) throw new WireError(`attributes: ${cands6.length} IPv6 candidates, at most ${MAX_CANDIDATES6}`)
  for (const e of ep6 === null ? cands6 : [ep6, ...cands6]) checkEndpoint6(e)
  const len = attrsLength(a)
  checkRoom(buf, offset, len)
  writeU16(buf, offset, len - 2)
  let p = offset + 2
  if (a.tunnel6 !== null) {
    buf[p] = ATTR_TUNNEL6
    buf[p + 1] = TUNNEL6_VLEN
    buf.set(a.tunnel6.addr, p + 2)
    buf[p + 18] = a.tunnel6.len
    p += 2 + TUNNEL6_VLEN
  }
  for (const r of a.routes) {
    const alen = r.family === 4 ? 4 : 16
    buf[p] = ATTR_ROUTE
    buf[p + 1] = 2 + alen
    buf[p + 2] = r.family
    buf[p + 3] = r.len
    buf.set(r.addr, p + 4)
    p += 4 + alen
  }
  if (a.refused !== undefined) {
    buf[p] = ATTR_REFUSED
    buf[p + 1] = 1
    buf[p + 2] = a.refused
    p += 3
  }
  if (fec !== null) {
    buf[p] = ATTR_FEC
    buf[p + 1] = 2
    buf[p + 2] = fec.data
    buf[p + 3] = fec.parity
    p += 4
  }
  if (ep6 !== null) p = writeEndpoint6(buf, p, ATTR_ENDPOINT6, ep6)
  for (const e of cands6) p = writeEndpoint6(buf, p, ATTR_CANDIDATE6, e)
  return p
}

function checkEndpoint6 (e: Endpoint6): void {
  if (!(e.addr instanceof Uint8Array) || e.addr.length !== 16) throw new WireError('IPv6 endpoint: address must be 16 bytes')
  if (!Number.isInteger(e.port) || e.port < 1 || e.port > 65535) throw new WireError(`IPv6 endpoint: port ${e.port}`)
}

function writeEndpoint6 (buf: Uint8Array, p: number, type: number, e: Endpoint6): number {
  buf[p] = type
  buf[p + 1] = EP6_VLEN
  buf.set(e.addr, p + 2)
  writeU16(buf, p + 18, e.port)
  return p + 2 + EP6_VLEN
}

function validFec (data: number, parity: number): boolean {
  return Number.isInteger(data) && Number.isInteger(parity) && data >= 1 && data <= FEC_ATTR_MAX_DATA && parity >= 1 && parity <= FEC_ATTR_MAX_PARITY
}

/** Reads the block at buf[offset] (the caller knows it starts there); returns the attributes and the offset after it. */
export function decodeAttrs (buf: Uint8Array, offset: number, what: string): { attrs: NodeAttrs, end: number } {
  if (buf.length - offset < 2) throw new WireError(`${what}: attribute block truncated`)
  const end = offset + 2 + readU16(buf, offset)
  if (end > buf.length) throw new WireError(`${what}: attribute block runs past the message`)
  let tunnel6: IpPrefix | null = null
  const routes: IpPrefix[] = []
  let refused: 4 | 6 | undefined
  let fec: { data: number, parity: number } | null = null
  let endpoint6: Endpoint6 | null = null
  const candidates6: Endpoint6[] = []
  for (let p = offset + 2; p < end;) {
    if (end - p < 2) throw new WireError(`${what}: attribute header truncated`)
    const type = buf[p]
    const vlen = buf[p + 1]
    const v = p + 2
    if (v + vlen > end) throw new WireError(`${what}: attribute ${type} runs past the block`)
    if (type === ATTR_TUNNEL6) {
      if (vlen !== TUNNEL6_VLEN) throw new WireError(`${what}: TUNNEL6 of ${vlen} bytes`)
      if (tunnel6 !== null) throw new WireError(`${what}: two TUNNEL6 attributes`)
      const len = buf[v + 16]
      if (len > 128) throw new WireError(`${what}: TUNNEL6 prefix length ${len}`)
      tunnel6 = { family: 6, addr: buf.slice(v, v + 16), len }
    } else if (type === ATTR_ROUTE) {
      const family = buf[v]
      if (!((family === 4 && vlen === 6) || (family === 6 && vlen === 18))) throw new WireError(`${what}: ROUTE family ${family} with ${vlen} bytes`)
      const len = buf[v + 1]
      if (len > maxPrefixLen(family)) throw new WireError(`${what}: ROUTE prefix length ${len}`)
      const r: IpPrefix = { family, addr: buf.slice(v + 2, v + vlen), len }
      if (!samePrefix(networkOf(r), r)) throw new WireError(`${what}: ROUTE with host bits set`)
      if (routes.length === MAX_ROUTES) throw new WireError(`${what}: more than ${MAX_ROUTES} routes`)
      routes.push(r)
    } else if (type === ATTR_REFUSED) {
      if (vlen !== 1 || (buf[v] !== 4 && buf[v] !== 6)) throw new WireError(`${what}: REFUSED of ${vlen} bytes, family ${buf[v]}`)
      refused = buf[v] as 4 | 6
    } else if (type === ATTR_FEC) {
      if (vlen !== 2) throw new WireError(`${what}: FEC of ${vlen} bytes`)
      if (fec !== null) throw new WireError(`${what}: two FEC attributes`)
      if (!validFec(buf[v], buf[v + 1])) throw new WireError(`${what}: FEC ${buf[v]},${buf[v + 1]} out of range`)
      fec = { data: buf[v], parity: buf[v + 1] }
    } else if (type === ATTR_ENDPOINT6 || type === ATTR_CANDIDATE6) {
      const name = type === ATTR_ENDPOINT6 ? 'ENDPOINT6' : 'CANDIDATE6'
      if (vlen !== EP6_VLEN) throw new WireError(`${what}: ${name} of ${vlen} bytes`)
      const e = { addr: buf.slice(v, v + 16), port: readU16(buf, v + 16) }
      if (e.port === 0) throw new WireError(`${what}: ${name} with port 0`)
      if (type === ATTR_ENDPOINT6) {
        if (endpoint6 !== null) throw new WireError(`${what}: two ENDPOINT6 attributes`)
        endpoint6 = e
      } else {
        if (candidates6.length === MAX_CANDIDATES6) throw new WireError(`${what}: more than ${MAX_CANDIDATES6} CANDIDATE6 attributes`)
        candidates6.push(e)
      }
    }
    p = v + vlen
  }
  return {
    attrs: {
      tunnel6, routes, ...(refused !== undefined ? { refused } : {}), ...(fec !== null ? { fec } : {}),
      ...(endpoint6 !== null ? { endpoint6 } : {}), ...(candidates6.length > 0 ? { candidates6 } : {})
    },
    end
  }
}
