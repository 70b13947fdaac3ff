/**
 * The client's address cache (tinc's idea): the peers it recently reached
 * directly, with their static key and the endpoints where they answered, in
 * `<state-dir>/peers.json`. A client restarted while the server is down loads
 * it and reaches those peers at their last confirmed endpoints (the handshake
 * goes there straight; the peer's key is checked against the cached one).
 * When the server answers again its peer list is authoritative: a peer it no
 * longer lists leaves the table and so the cache.
 *
 *   ClientController ──note(peer, key, endpoints) / forget(peer)──▶ PeerCache (in memory)
 *   tick ──saveIfDue──▶ CacheStore.write (atomic: temp file 0600, fsync, rename)
 *   start ──load──▶ CacheStore.read ──decodeCache──▶ peers (expired and malformed entries dropped)
 *
 * Bounded: at most CACHE_MAX_PEERS entries (the most recently confirmed
 * kept), MAX_HANDSHAKE_ENDPOINTS endpoints each, entries older than
 * CACHE_MAX_AGE dropped. A corrupt file is reported once and replaced at the
 * next save; it never stops the daemon.
 */
import { readFileSync } from 'node:fs'
import { writeAtomic } from '../state/atomic-file.js'
import { formatEndpoint, intToIp, ipToInt, isIpv4 } from '../wire/addr.js'
import { MAX_HANDSHAKE_ENDPOINTS } from './constants.js'
import type { Endpoint } from './nat.js'
import { formatPrefix, parsePrefix, samePrefix, type IpPrefix } from '../wire/prefix.js'

/** Keep at most this many peers. */
export const CACHE_MAX_PEERS = 256
/** Forget a peer not confirmed for this long (wall ms). */
export const CACHE_MAX_AGE = 7 * 24 * 3600_000
/** Write the file at most this often (monotonic ms) when something changed. */
export const CACHE_SAVE_INTERVAL = 30_000
/** Cache file format version. */
const FORMAT = 1

export interface CachedPeer {
  tunnelIp: number
  /** The peer's static public key (32 bytes), or null when unknown. */
  key: Uint8Array | null
  /** Where it answered, the one in use first. */
  endpoints: Endpoint[]
  /** When it was last confirmed (wall ms). */
  confirmedAt: number
  /** Its IPv6 tunnel address with prefix length, as the server listed it; absent/null: none. In the file: "tunnel6": "fd00:77::3/64". */
  tunnel6?: IpPrefix | null
}

/** Where the cache lives: the file, or memory in tests. */
export interface CacheStore {
  /** The file's text, or null when there is none. Throws on other read errors. */
  read(): string | null
  write(text: string): void
  /** For messages: the file's path. */
  readonly where: string
}

export function encodeCache (peers: readonly CachedPeer[]): string {
  return JSON.stringify({
    version: FORMAT,
    peers: peers.map(p => ({
      tunnelIp: intToIp(p.tunnelIp),
      ...(p.tunnel6 != null ? { tunnel6: formatPrefix(p.tunnel6) } : {}),
      key: p.key === null ? null : Buffer.from(p.key).toString('base64'),
      endpoints: p.endpoints.map(e => formatEndpoint(e.ip, e.port)),
      confirmedAt: new Date(p.confirmedAt).toISOString()
    }))
  }, null, 1) + '\n'
}

/** How an IPv6 endpoint's address ("[2001:db8::3]:41000") becomes an endpoint u32 (the daemon's table: a pinned handle). */
export type EndpointIp = (text: string) => number | null

function parseEndpoint (s: unknown, endpointIp?: EndpointIp): Endpoint | null {
  if (typeof s !== 'string') return null
  const m6 = /^\[([0-9a-fA-F:.]+)\]:([0-9]{1,5})$/.exec(s)
  if (m6 !== null) {
    // Written by a daemon with IPv6 outside: read back only where there is a table to hold it.
    const ip = endpointIp?.(m6[1]!) ?? null
    const port = Number(m6[2])
    return ip !== null && ip !== 0 && port > 0 && port < 65536 ? { ip, port } : null
  }
  const m = /^([0-9.]+):([0-9]{1,5})$/.exec(s)
  if (m === null || !isIpv4(m[1]!)) return null
  const port = Number(m[2])
  const ip = ipToInt(m[1]!)
  return port > 0 && port < 65536 && ip !== 0 ? { ip, port } : null
}

/**
 * The peers of a cache file, newest first: entries that are malformed or
 * older than CACHE_MAX_AGE are skipped (counted in `skipped`); a file that
 * is not a cache at all gives a `problem` sentence and no peers.
 */
export function decodeCache (text: string, wallNow: number, endpointIp?: EndpointIp): { peers: CachedPeer[], skipped: number, problem: string | null } {
  let doc: unknown
  try { doc = JSON.parse(text) } catch (e) { return { peers: [], skipped: 0, problem: `not JSON (${(e as Error).message})` } }
  const d = doc as { version?: unknown, peers?: unknown }
  if (typeof doc !== 'object' || doc === null || d.version !== FORMAT || !Array.isArray(d.peers)) {
    return { peers: [], skipped: 0, problem: `not an address cache of format ${FORMAT} (expected {"version":${FORMAT},"peers":[…]})` }
  }
  const peers: CachedPeer[] = []
  let skipped = 0
  const seen = new Set<number>()
  for (const raw of d.peers as unknown[]) {
    const e = raw as { tunnelIp?: unknown, tunnel6?: unknown, key?: unknown, endpoints?: unknown, confirmedAt?: unknown }
    let tunnel6: IpPrefix | null = null
    try { if (e?.tunnel6 !== undefined) tunnel6 = parsePrefix(e.tunnel6 as string, { keepHostBits: true }) } catch { tunnel6 = null }
    const bad6 = e?.tunnel6 !== undefined && (tunnel6 === null || tunnel6.family !== 6)
    const at = typeof e?.confirmedAt === 'string' ? Date.parse(e.confirmedAt) : NaN
    const key = typeof e?.key === 'string' ? Buffer.from(e.key, 'base64') : null
    const eps = Array.isArray(e?.endpoints) ? e.endpoints.map((x: unknown) => parseEndpoint(x, endpointIp)) : []
    const ok = typeof e?.tunnelIp === 'string' && isIpv4(e.tunnelIp) && Number.isFinite(at) &&
      (e.key === null || key?.length === 32) && eps.length > 0 && eps.every(x => x !== null)
    if (!ok || bad6 || wallNow - at > CACHE_MAX_AGE || at > wallNow + CACHE_MAX_AGE) { skipped++; continue }
    const tunnelIp = ipToInt(e.tunnelIp as string)
    if (seen.has(tunnelIp)) { skipped++; continue }
    seen.add(tunnelIp)
    peers.push({ tunnelIp, key: key === null ? null : new Uint8Array(key), endpoints: (eps as Endpoint[]).slice(0, MAX_HANDSHAKE_ENDPOINTS), confirmedAt: at, ...(tunnel6 !== null ? { tunnel6 } : {}) })
  }
  peers.sort((a, b) => b.confirmedAt - a.confirmedAt)
  skipped += Math.max(0, peers.length - CACHE_MAX_PEERS)
  return { peers: peers.slice(0, CACHE_MAX_PEERS), skipped, problem: null }
}

/** The cache in memory, written back through a CacheStore. Main thread only. */
export class PeerCache {
  readonly #store: CacheStore
  readonly #warn: (msg: string) => void
  readonly #peers = new Map<number, CachedPeer>()
  /** The text last written (or read): nothing is written while the content is unchanged. */
  #saved = ''
  #dirty = false
  #lastSave = -Infinity

  readonly #endpointIp: EndpointIp | undefined

  constructor (store: CacheStore, warn: (msg: string) => void, endpointIp?: EndpointIp) {
    this.#endpointIp = endpointIp
    this.#store = store
    this.#warn = warn
  }

  get size (): number { return this.#peers.size }

  /** Read the file (once, at start): the peers to reach, newest first. */
  load (wallNow: number): CachedPeer[] {
    let text: string | null
    try { text = this.#store.read() } catch (e) {
      this.#warn(`cannot read the address cache ${this.#store.where}: ${(e as Error).message}; starting without it (peers are learned from the server)`)
      return []
    }
    if (text === null) return []
    const r = decodeCache(text, wallNow, this.#endpointIp)
    if (r.problem !== null) {
      this.#warn(`ignoring the address cache ${this.#store.where}: ${r.problem}; it is rewritten from the peers reached from now on`)
      this.#dirty = true
      return []
    }
    for (const p of r.peers) this.#peers.set(p.tunnelIp, p)
    this.#saved = text
    this.#dirty = r.skipped > 0
    return r.peers
  }

  /** The peer answered at these endpoints now (direct path confirmed). */
  note (tunnelIp: number, key: Uint8Array | null, endpoints: readonly Endpoint[], wallNow: number, tunnel6: IpPrefix | null = null): void {
    if (endpoints.length === 0) return
    const old = this.#peers.get(tunnelIp)
    const eps = endpoints.slice(0, MAX_HANDSHAKE_ENDPOINTS).map(e => ({ ip: e.ip, port: e.port }))
    const same = old !== undefined && sameKey(old.key, key) && old.endpoints.length === eps.length &&
      (old.tunnel6 == null ? tunnel6 === null : tunnel6 !== null && samePrefix(old.tunnel6, tunnel6)) &&
      old.endpoints.every((e, i) => e.ip === eps[i]!.ip && e.port === eps[i]!.port)
    // An unchanged entry is refreshed in memory; its time reaches the file with the next real change (or within an hour).
    if (old !== undefined) this.#peers.delete(tunnelIp)
    this.#peers.set(tunnelIp, { tunnelIp, key, endpoints: eps, confirmedAt: wallNow, ...(tunnel6 !== null ? { tunnel6 } : {}) })
    if (!same) this.#dirty = true
    if (this.#peers.size > CACHE_MAX_PEERS) {
      const oldest = [...this.#peers.values()].sort((a, b) => a.confirmedAt - b.confirmedAt)[0]!
      this.#peers.delete(oldest.tunnelIp)
    }
  }

  /** The server no longer lists the peer (it left, or was revoked): never reach it from the cache again. */
  forget (tunnelIp: number): void {
    if (this.#peers.delete(tunnelIp)) this.#dirty = true
  }

  get (tunnelIp: number): CachedPeer | undefined { return this.#peers.get(tunnelIp) }

  /** Write the file when it changed and CACHE_SAVE_INTERVAL has passed (or, unchanged, once an hour so times stay fresh); `force` at shutdown. */
  saveIfDue (now: number, wallNow: number, force = false): boolean {
    const stale = now - this.#lastSave >= 3600_000 && this.#peers.size > 0
    if (!force && !((this.#dirty || stale) && now - this.#lastSave >= CACHE_SAVE_INTERVAL)) return false
    for (const p of [...this.#peers.values()]) if (wallNow - p.confirmedAt > CACHE_MAX_AGE) this.#peers.delete(p.tunnelIp)
    const peers = [...this.#peers.values()].sort((a, b) => b.confirmedAt - a.confirmedAt)
    const text = encodeCache(peers)
    this.#lastSave = now
    this.#dirty = false
    if (text === this.#saved) return false
    try {
      this.#store.write(text)
      this.#saved = text
      return true
    } catch (e) {
      this.#warn(`cannot write the address cache ${this.#store.where}: ${(e as Error).message}; retrying in ${CACHE_SAVE_INTERVAL / 1000} s`)
      this.#dirty = true
      return false
    }
  }
}

function sameKey (a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === null || b === null) return a === b
  return a.length === b.length && a.every((x, i) => x === b[i])
}

/** The cache file: read whole; written atomically (state/atomic-file.ts: a temp file beside it, mode 0600, fsync, rename). */
export function fileStore (path: string): CacheStore {
  return {
    where: path,
    read: () => {
      try { return readFileSync(path, 'utf8') } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null
        throw e
      }
    },
    write: (text) => { writeAtomic(path, text) }
  }
}
