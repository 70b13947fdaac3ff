/**
 * The operator's view of the registry: `lightweight-tunnel nodes` (list),
 * `nodes remove ADDR|KEY|FINGERPRINT` (revoke) and `nodes allow
 * KEY|FINGERPRINT` (lift a revocation), served over the control socket.
 *
 *   CLI ──{"cmd":"nodes"|"nodes-remove"|"nodes-allow","node":SEL}──▶ daemon.ts
 *     ──▶ answerNodes(req, admin) ── resolve SEL against the registry ──▶
 *         registry.remove / allow, then admin.disconnect(...) for each live
 *         node (server.ts: Bye, sessions dropped, peers told at the next
 *         peer-list flush) ──▶ NodesReport / NodesChange (JSON) ──▶ cli/nodes.ts
 *
 * Pure apart from the NodesAdmin it is given; the registry decides, this
 * module only resolves selectors and shapes answers.
 */
import { VpnError } from '../errors.js'
import { isIPv6 } from 'node:net'
import { intToIp, ipToInt, isIpv4 } from '../wire/addr.js'
import { formatIp6, parseIp6 } from '../wire/prefix.js'
import { fingerprint, keyFromText, keyToText } from '../identity/key-text.js'

/** A fingerprint as typed by an operator: with or without the "SHA256:" prefix (identity/key-text.ts: 16 base64 characters). */
function isFingerprintText (text: string): boolean {
  return /^(SHA256:)?[A-Za-z0-9+/]{16}$/.test(text)
}
import { keyId, type NodeRecord, type NodeRegistry, type RegistryAdmin } from './registry.js'

/** One bound node, as `nodes --json` shows it. */
export interface NodeInfo {
  fingerprint: string
  /** The public key, base64. */
  key: string
  address: string
  /** Its IPv6 tunnel address ("fd00:77::2"), or null. */
  address6?: string | null
  /** Registered now (a confirmed session). */
  live: boolean
  /** Its public endpoint while live, else null. */
  endpoint: string | null
  /** Wall time, ISO 8601. */
  firstSeen: string
  lastSeen: string
  /** Listed in --authorized-nodes (null without strict mode). */
  authorized: boolean | null
}

export interface RevokedInfo { fingerprint: string, key: string, at: string }

export interface NodesReport {
  nodes: NodeInfo[]
  revoked: RevokedInfo[]
  /** The --authorized-nodes file, or null (any holder of the network key may register). */
  authorizedNodes: string | null
}

export interface NodesChange {
  /** What `remove` unbound (and revoked), or `allow` re-admitted. */
  nodes: NodeInfo[]
  revoked: RevokedInfo[]
  allowed: RevokedInfo[]
  /** Live sessions torn down. */
  disconnected: number
}

/** What the server gives this module. */
export interface NodesAdmin {
  registry: NodeRegistry & RegistryAdmin
  /** Live endpoint of the node holding `address` with `key`, or null. */
  liveEndpoint (address: number, key: Uint8Array): string | null
  /** Tears down the live node holding `address` (its sessions, its peers' sessions with it); true when one was live. */
  disconnect (address: number, why: string): boolean
  /** The strict-mode list, if any. */
  authorized (): { file: string, admits (key: Uint8Array, address: number): boolean } | null
  wallNow (): number
}

const iso = (ms: number): string => new Date(ms).toISOString()

function bad (message: string, hint?: string): VpnError {
  return new VpnError('ERR_USAGE', message, hint === undefined ? {} : { hint })
}

export function nodeInfo (r: NodeRecord, a: NodesAdmin): NodeInfo {
  const endpoint = a.liveEndpoint(r.address, r.key)
  const auth = a.authorized()
  return {
    fingerprint: fingerprint(r.key),
    key: keyToText(r.key),
    address: intToIp(r.address),
    address6: r.address6 === undefined ? null : formatIp6(r.address6),
    live: endpoint !== null,
    endpoint,
    firstSeen: iso(r.firstSeen),
    lastSeen: iso(r.lastSeen),
    authorized: auth === null ? null : auth.admits(r.key, r.address)
  }
}

function revokedInfo (key: Uint8Array, at: number): RevokedInfo {
  return { fingerprint: fingerprint(key), key: keyToText(key), at: iso(at) }
}

export function nodesReport (a: NodesAdmin): NodesReport {
  return {
    nodes: a.registry.list().map(r => nodeInfo(r, a)),
    revoked: a.registry.revoked().sort((x, y) => x.at - y.at).map(r => revokedInfo(r.key, r.at)),
    authorizedNodes: a.authorized()?.file ?? null
  }
}

/** What a selector names: an address, a key, or a fingerprint (resolved against bound and revoked keys). */
type Selector = { address: number } | { address6: Uint8Array } | { key: Uint8Array } | { fingerprint: string }

/** ADDR (IPv4 or IPv6), KEY (base64 of 32 bytes) or FINGERPRINT ("SHA256:…", the prefix optional). */
export function parseSelector (text: unknown): Selector {
  if (typeof text !== 'string' || text === '') throw bad('expected a node: its tunnel address (10.0.0.3 or its IPv6 one), its public key (base64) or its fingerprint (SHA256:…), as "lightweight-tunnel nodes" lists them')
  if (isIpv4(text)) return { address: ipToInt(text) >>> 0 }
  if (isIPv6(text)) return { address6: parseIp6(text) }
  const key = keyFromText(text)
  if (key !== null) return { key }
  if (isFingerprintText(text)) return { fingerprint: text.startsWith('SHA256:') ? text : `SHA256:${text}` }
  throw bad(`${JSON.stringify(text.slice(0, 80))} is not a tunnel address, a public key (44 characters of base64) or a fingerprint (SHA256: and 16 characters)`, 'see "lightweight-tunnel nodes" for the nodes this server knows')
}

function keyOfFingerprint (fp: string, a: NodesAdmin): Uint8Array | null {
  for (const r of a.registry.list()) if (fingerprint(r.key) === fp) return r.key
  for (const r of a.registry.revoked()) if (fingerprint(r.key) === fp) return r.key
  return null
}

/**
 * `nodes remove SEL`: unbinds and revokes. A key (as text) is revoked even
 * when it never registered; an address or a fingerprint must name a known node.
 */
export function removeNodes (sel: unknown, a: NodesAdmin): NodesChange {
  const s = parseSelector(sel)
  let target: { address?: number, key?: Uint8Array }
  if ('address6' in s) {
    // An IPv6 address selects the node that holds it: the same as its IPv4 address.
    const r = a.registry.list().find(n => n.address6 !== undefined && Buffer.compare(n.address6, s.address6) === 0)
    if (r === undefined) throw bad(`no node holds ${formatIp6(s.address6)}: there is nothing to remove`, 'see "lightweight-tunnel nodes"; to refuse a key that has not registered yet, give the key')
    target = { address: r.address }
  } else if ('fingerprint' in s) {
    const key = keyOfFingerprint(s.fingerprint, a)
    if (key === null) throw bad(`no node with the fingerprint ${s.fingerprint} is known here`, 'see "lightweight-tunnel nodes"')
    target = { key }
  } else target = s
  const before = new Set(a.registry.revoked().map(r => keyId(r.key)))
  if ('address' in target && !a.registry.list().some(r => r.address === target.address)) {
    throw bad(`no node holds ${intToIp(target.address!)}: there is nothing to remove`, 'see "lightweight-tunnel nodes"; to refuse a key that has not registered yet, give the key')
  }
  const removed = a.registry.remove(target)
  const nodes = removed.map(r => ({ ...nodeInfo(r, a), live: false, endpoint: null }))
  let disconnected = 0
  for (const r of removed) {
    if (a.disconnect(r.address, `its key ${fingerprint(r.key)} was revoked by the operator (nodes remove)`)) disconnected++
  }
  const revoked = a.registry.revoked().filter(r => !before.has(keyId(r.key))).map(r => revokedInfo(r.key, r.at))
  return { nodes, revoked, allowed: [], disconnected }
}

/** `nodes allow KEY|FINGERPRINT`: lifts a revocation (the node may register again, for a free address). */
export function allowNode (sel: unknown, a: NodesAdmin): NodesChange {
  const s = parseSelector(sel)
  if ('address' in s || 'address6' in s) throw bad('nodes allow takes the revoked key or its fingerprint, not an address (a revoked key holds no address)', 'see the "revoked" list of "lightweight-tunnel nodes"')
  const key = 'key' in s ? s.key : keyOfFingerprint(s.fingerprint, a)
  if (key === null) throw bad(`no revoked key has the fingerprint ${(s as { fingerprint: string }).fingerprint}`, 'see the "revoked" list of "lightweight-tunnel nodes"')
  const rec = a.registry.revoked().find(r => keyId(r.key) === keyId(key))
  if (rec === undefined || !a.registry.allow(key)) throw bad(`the key ${fingerprint(key)} is not revoked: there is nothing to allow`)
  return { nodes: [], revoked: [], allowed: [revokedInfo(key, rec.at)], disconnected: 0 }
}

/** Routes the control socket's nodes requests. */
export function answerNodes (req: { cmd: string, node?: unknown }, a: NodesAdmin | null): NodesReport | NodesChange {
  if (a === null) throw bad(`${req.cmd === 'nodes' ? 'nodes' : req.cmd.replace('-', ' ')} is a server command: this daemon is a client (run it on the server)`)
  switch (req.cmd) {
    case 'nodes': return nodesReport(a)
    case 'nodes-remove': return removeNodes(req.node, a)
    case 'nodes-allow': return allowNode(req.node, a)
    default: throw bad(`unknown control command "${req.cmd}"`)
  }
}
