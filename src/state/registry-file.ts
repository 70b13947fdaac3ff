/**
 * FileRegistry: the server's address→key registry (control/registry.ts
 * NodeRegistry) kept in memory and persisted in <state-dir>/registry.json.
 *
 *   server.ts ── check/bind/touch/remove/allow ──▶ maps (byKey, byAddr, revoked)
 *                                                   │ every change but touch: write now
 *                                                   │ touch: at most every 30 s, and flush(force) at shutdown
 *                                                   ▼
 *            registry.json.tmp-PID (0600) ─ fsync ─ rename ─▶ registry.json ─ fsync(dir)
 *
 * The file (0600, in the 0700 state directory):
 *   { "format": "lightweight-tunnel registry", "version": 1,
 *     "nodes":   [{ "key": BASE64, "address": "10.0.0.2", "address6": "fd00:77::2", "firstSeen": MS, "lastSeen": MS }],
 *     "revoked": [{ "key": BASE64, "at": MS }] }
 * "address6" (the node's IPv6 tunnel address) is there only when it has one.
 * Times are wall ms. A missing file is an empty registry (first start); a
 * file that cannot be read or parsed stops the start with an error naming it:
 * starting empty would hand bound addresses to whoever asks first.
 *
 * Bounded: at most REGISTRY_MAX_RECORDS bindings (a new key beyond that
 * evicts the least recently seen binding, freeing its address) and
 * REGISTRY_MAX_REVOKED revoked keys (the oldest revocation is forgotten).
 * A failed write (disk full) keeps the registry in memory, is reported once
 * through `onWriteError` and retried at the next change or flush.
 *
 * Strict mode (`--authorized-nodes`): setAuthorized() gives the list; check
 * answers 'not-authorized' for any key/address pair it does not hold.
 */
import { mkdirSync, readFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { writeAtomic } from './atomic-file.js'
import { VpnError } from '../errors.js'
import { intToIp, ipToInt, isIpv4 } from '../wire/addr.js'
import { formatIp6, parseIp6 } from '../wire/prefix.js'
import { addr6Id, keyId, type AuthorizedList, type ClaimResult, type NodeRecord, type NodeRegistry, type RegistryAdmin, type RevokedKey } from '../control/registry.js'
import { keyFromText, keyToText } from '../identity/key-text.js'

export const REGISTRY_FILE = 'registry.json'
/** Bindings kept: more than any /16 network has addresses. */
export const REGISTRY_MAX_RECORDS = 65_536
/** Revoked keys remembered. */
export const REGISTRY_MAX_REVOKED = 65_536
/** `touch` (last seen) reaches the file at most this often (ms): last-seen times are informational. */
export const REGISTRY_TOUCH_FLUSH = 30_000
const FORMAT = 'lightweight-tunnel registry'

export interface FileRegistryOptions {
  /** Called once per run of failed writes (then again after a write succeeded and another failed). */
  onWriteError?: (err: Error) => void
  maxRecords?: number
  maxRevoked?: number
}

export class FileRegistry implements NodeRegistry, RegistryAdmin {
  /** registry.json, or null for a registry that is never written (tests). */
  readonly path: string | null
  readonly #byKey = new Map<string, NodeRecord>()
  readonly #byAddr = new Map<number, NodeRecord>()
  /** By addr6Id of the IPv6 tunnel address. */
  readonly #byAddr6 = new Map<string, NodeRecord>()
  /** key id → revocation (insertion order = age). */
  readonly #revoked = new Map<string, RevokedKey>()
  #authorized: AuthorizedList | null = null
  #dirty = false
  #lastWrite = -Infinity
  #failing = false
  readonly #opt: FileRegistryOptions
  readonly #maxRecords: number
  readonly #maxRevoked: number

  /** Loads `path` (absent = empty). Throws ERR_STATE naming the file when it cannot be read or is not a registry. */
  constructor (path: string | null, opt: FileRegistryOptions = {}) {
    this.path = path
    this.#opt = opt
    this.#maxRecords = opt.maxRecords ?? REGISTRY_MAX_RECORDS
    this.#maxRevoked = opt.maxRevoked ?? REGISTRY_MAX_REVOKED
    if (path !== null) this.#load(path)
  }

  setAuthorized (a: AuthorizedList | null): void { this.#authorized = a }
  get authorized (): AuthorizedList | null { return this.#authorized }

  check (key: Uint8Array, address: number, address6: Uint8Array | null = null): ClaimResult {
    const id = keyId(key)
    if (this.#revoked.has(id)) return { ok: false, reason: 'key-revoked' }
    if (this.#authorized !== null && !this.#authorized.admits(key, address)) return { ok: false, reason: 'not-authorized' }
    const holder = this.#byAddr.get(address >>> 0)
    if (holder !== undefined && keyId(holder.key) !== id) return { ok: false, reason: 'address-bound-to-other-key', holder: copy(holder) }
    const holder6 = address6 === null ? undefined : this.#byAddr6.get(addr6Id(address6))
    if (holder6 !== undefined && keyId(holder6.key) !== id) return { ok: false, reason: 'address-bound-to-other-key', holder: copy(holder6), family: 6 }
    return { ok: true }
  }

  /**
   * Binds after a Confirm (the caller asked `check` first). Never takes an
   * address from its holder and never binds a revoked key: either is a
   * no-op, so a race with the operator cannot undo a revocation.
   */
  bind (key: Uint8Array, address: number, wallNow: number, address6: Uint8Array | null = null): void {
    const id = keyId(key)
    const addr = address >>> 0
    if (this.#revoked.has(id)) return
    const holder = this.#byAddr.get(addr)
    if (holder !== undefined && keyId(holder.key) !== id) return
    const holder6 = address6 === null ? undefined : this.#byAddr6.get(addr6Id(address6))
    if (holder6 !== undefined && keyId(holder6.key) !== id) return
    const old = this.#byKey.get(id)
    const same6 = (old?.address6 === undefined && address6 === null) || (old?.address6 !== undefined && address6 !== null && addr6Id(old.address6) === addr6Id(address6))
    if (old !== undefined && old.address === addr && same6) { old.lastSeen = wallNow; this.#dirty = true; return }
    if (old !== undefined) this.#unindex(old)
    else if (this.#byKey.size >= this.#maxRecords) this.#evictOldest()
    const rec: NodeRecord = { key: Uint8Array.from(key), address: addr, firstSeen: old?.firstSeen ?? wallNow, lastSeen: wallNow }
    if (address6 !== null) rec.address6 = Uint8Array.from(address6)
    this.#index(rec)
    this.#write(wallNow)
  }

  #index (rec: NodeRecord): void {
    this.#byKey.set(keyId(rec.key), rec)
    this.#byAddr.set(rec.address, rec)
    if (rec.address6 !== undefined) this.#byAddr6.set(addr6Id(rec.address6), rec)
  }

  #unindex (rec: NodeRecord): void {
    this.#byKey.delete(keyId(rec.key))
    this.#byAddr.delete(rec.address)
    if (rec.address6 !== undefined) this.#byAddr6.delete(addr6Id(rec.address6))
  }

  touch (key: Uint8Array, wallNow: number): void {
    const rec = this.#byKey.get(keyId(key))
    if (rec === undefined) return
    rec.lastSeen = wallNow
    this.#dirty = true
    if (wallNow - this.#lastWrite >= REGISTRY_TOUCH_FLUSH) this.#write(wallNow)
  }

  list (): NodeRecord[] {
    return [...this.#byKey.values()].map(copy).sort((a, b) => a.address - b.address)
  }

  /** The binding of a key, or null. */
  recordOf (key: Uint8Array): NodeRecord | null {
    const r = this.#byKey.get(keyId(key))
    return r === undefined ? null : copy(r)
  }

  /**
   * Frees the selected bindings and revokes their keys (and `sel.key` itself,
   * bound or not: a key can be revoked before it ever registers). Returns the
   * bindings removed.
   */
  remove (sel: { address?: number; key?: Uint8Array }, wallNow = Date.now()): NodeRecord[] {
    const out: NodeRecord[] = []
    const addr = sel.address === undefined ? undefined : sel.address >>> 0
    const id = sel.key === undefined ? undefined : keyId(sel.key)
    for (const r of [...this.#byKey.values()]) {
      if (r.address === addr || keyId(r.key) === id) {
        this.#unindex(r)
        out.push(copy(r))
        this.#revoke(r.key, wallNow)
      }
    }
    if (sel.key !== undefined) this.#revoke(sel.key, wallNow)
    if (out.length > 0 || sel.key !== undefined) this.#write(wallNow)
    return out
  }

  allow (key: Uint8Array, wallNow = Date.now()): boolean {
    if (!this.#revoked.delete(keyId(key))) return false
    this.#write(wallNow)
    return true
  }

  revoked (): RevokedKey[] {
    return [...this.#revoked.values()].map(r => ({ key: Uint8Array.from(r.key), at: r.at }))
  }

  isRevoked (key: Uint8Array): boolean { return this.#revoked.has(keyId(key)) }

  flush (wallNow: number, force = false): void {
    if (!this.#dirty) return
    if (force || wallNow - this.#lastWrite >= REGISTRY_TOUCH_FLUSH) this.#write(wallNow)
  }

  #revoke (key: Uint8Array, at: number): void {
    const id = keyId(key)
    this.#revoked.delete(id)
    this.#revoked.set(id, { key: Uint8Array.from(key), at })
    while (this.#revoked.size > this.#maxRevoked) this.#revoked.delete(this.#revoked.keys().next().value!)
  }

  #evictOldest (): void {
    let oldest: NodeRecord | null = null
    for (const r of this.#byKey.values()) if (oldest === null || r.lastSeen < oldest.lastSeen) oldest = r
    if (oldest === null) return
    this.#unindex(oldest)
  }

  #write (wallNow: number): void {
    this.#dirty = true
    if (this.path === null) { this.#dirty = false; this.#lastWrite = wallNow; return }
    const doc = {
      format: FORMAT,
      version: 1,
      nodes: this.list().map(r => ({ key: keyToText(r.key), address: intToIp(r.address), ...(r.address6 !== undefined ? { address6: formatIp6(r.address6) } : {}), firstSeen: r.firstSeen, lastSeen: r.lastSeen })),
      revoked: [...this.#revoked.values()].map(r => ({ key: keyToText(r.key), at: r.at }))
    }
    try {
      mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 })
      writeAtomic(this.path, JSON.stringify(doc, null, 1) + '\n')
      this.#dirty = false
      this.#lastWrite = wallNow
      this.#failing = false
    } catch (err) {
      if (!this.#failing) this.#opt.onWriteError?.(err as Error)
      this.#failing = true
    }
  }

  #load (path: string): void {
    let text: string
    try {
      text = readFileSync(path, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
      throw new VpnError('ERR_STATE', `cannot read the node registry ${path}: ${(err as Error).message}`, { cause: err, hint: 'check its permissions (the daemon runs as root, the file is 0600)' })
    }
    const bad = (why: string): VpnError => new VpnError('ERR_STATE', `the node registry ${path} is damaged: ${why}`, {
      hint: `the server does not start with a registry it cannot read (it would give bound addresses to other keys). Restore ${path} from a backup or fix it; or move it away to start with an empty registry (every node then claims its address afresh, revocations are forgotten)`
    })
    let doc: unknown
    try { doc = JSON.parse(text) } catch (err) { throw bad(`not JSON (${(err as Error).message})`) }
    const d = doc as { format?: unknown, version?: unknown, nodes?: unknown, revoked?: unknown } | null
    if (d === null || typeof d !== 'object' || d.format !== FORMAT) throw bad(`expected an object with "format": "${FORMAT}"`)
    if (d.version !== 1) throw bad(`version ${JSON.stringify(d.version)} is not one this program reads (1); was it written by a newer version?`)
    if (!Array.isArray(d.nodes) || !Array.isArray(d.revoked)) throw bad('expected arrays "nodes" and "revoked"')
    const time = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
    d.nodes.forEach((n: unknown, i: number) => {
      const r = n as { key?: unknown, address?: unknown, address6?: unknown, firstSeen?: unknown, lastSeen?: unknown } | null
      const key = typeof r?.key === 'string' ? keyFromText(r.key) : null
      let address6: Uint8Array | undefined
      try { if (r?.address6 !== undefined) address6 = parseIp6(r.address6 as string) } catch { address6 = undefined }
      if (r === null || typeof r !== 'object' || key === null || typeof r.address !== 'string' || !isIpv4(r.address) || !time(r.firstSeen) || !time(r.lastSeen) || (r.address6 !== undefined && address6 === undefined)) {
        throw bad(`nodes[${i}] is not {"key": BASE64 of 32 bytes, "address": IPv4, "address6": IPv6 (optional), "firstSeen": ms, "lastSeen": ms}`)
      }
      const address = ipToInt(r.address) >>> 0
      if (this.#byKey.has(keyId(key)) || this.#byAddr.has(address) || (address6 !== undefined && this.#byAddr6.has(addr6Id(address6)))) throw bad(`nodes[${i}] repeats a key or the address ${r.address}${address6 !== undefined ? ` or ${formatIp6(address6)}` : ''}`)
      const rec: NodeRecord = { key, address, firstSeen: r.firstSeen, lastSeen: r.lastSeen }
      if (address6 !== undefined) rec.address6 = address6
      this.#index(rec)
    })
    d.revoked.forEach((n: unknown, i: number) => {
      const r = n as { key?: unknown, at?: unknown } | null
      const key = typeof r?.key === 'string' ? keyFromText(r.key) : null
      if (key === null || !time(r?.at)) throw bad(`revoked[${i}] is not {"key": BASE64 of 32 bytes, "at": ms}`)
      this.#revoked.set(keyId(key), { key, at: r!.at as number })
    })
  }
}

function copy (r: NodeRecord): NodeRecord {
  const c: NodeRecord = { key: Uint8Array.from(r.key), address: r.address, firstSeen: r.firstSeen, lastSeen: r.lastSeen }
  if (r.address6 !== undefined) c.address6 = Uint8Array.from(r.address6)
  return c
}

