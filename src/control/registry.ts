/**
 * The server's address ↔ node-key registry: which static key owns which
 * tunnel address. The ServerController asks `check` when a registration
 * init arrives (after the psk authenticated it and before any DH), calls
 * `bind` when the client's Confirm proves the key, and `touch` while the
 * client is alive. This is the narrow interface every backing store
 * implements (a file in the state directory; later a shared store for
 * several servers); `MemoryRegistry` is the embedded in-memory one (no
 * persistence: bindings last as long as the process). Main thread only.
 *
 *   init (key K, address A) ─▶ check(K, A): ok | bound to another key | revoked | not authorized
 *   Confirm on K's session  ─▶ bind(K, A, now): A belongs to K (K's old address, if any, is freed)
 *   operator                ─▶ remove({ address } | { key }): frees the address(es), revokes the key(s)
 */

export interface NodeRecord {
  /** The node's static X25519 public key, 32 bytes. */
  key: Uint8Array
  /** Tunnel IPv4 address, u32 host order. */
  address: number
  /** Its IPv6 tunnel address (16 bytes), bound with the IPv4 one on Confirm; absent when it has none. */
  address6?: Uint8Array
  /** Wall-clock ms. */
  firstSeen: number
  lastSeen: number
}

export type ClaimResult =
  | { ok: true }
  | { ok: false, reason: 'address-bound-to-other-key' | 'key-revoked' | 'not-authorized', holder?: NodeRecord, family?: 4 | 6 }

/** Hex of an IPv6 address, the registries' map key. */
export const addr6Id = (a: Uint8Array): string => Buffer.from(a).toString('hex')

export interface NodeRegistry {
  /**
   * Pure query, before any DH: may `key` have `address` (and `address6`, its
   * IPv6 tunnel address, when it has one)? An IPv6 address bound to another
   * key is refused like an IPv4 one, with `family: 6`.
   */
  check(key: Uint8Array, address: number, address6?: Uint8Array | null): ClaimResult
  /** On Confirm: `address` (and `address6`) belong to `key` from now on; a key holds one of each (re-binding moves them). */
  bind(key: Uint8Array, address: number, wallNow: number, address6?: Uint8Array | null): void
  touch(key: Uint8Array, wallNow: number): void
  list(): NodeRecord[]
  /** Frees the address(es) and revokes the key(s); returns the records removed. */
  remove(sel: { address?: number, key?: Uint8Array }): NodeRecord[]
}

const hex = (k: Uint8Array): string => Buffer.from(k).toString('hex')

/** The embedded registry: two maps, nothing persisted. Revoked keys are kept (bounded by the operator's removals). */
export class MemoryRegistry implements NodeRegistry {
  readonly #byAddress = new Map<number, NodeRecord>()
  readonly #byAddress6 = new Map<string, NodeRecord>()
  readonly #byKey = new Map<string, NodeRecord>()
  readonly #revoked = new Set<string>()

  check (key: Uint8Array, address: number, address6: Uint8Array | null = null): ClaimResult {
    if (this.#revoked.has(hex(key))) return { ok: false, reason: 'key-revoked' }
    const holder = this.#byAddress.get(address)
    if (holder !== undefined && Buffer.compare(holder.key, key) !== 0) return { ok: false, reason: 'address-bound-to-other-key', holder: { ...holder } }
    const holder6 = address6 === null ? undefined : this.#byAddress6.get(addr6Id(address6))
    if (holder6 !== undefined && Buffer.compare(holder6.key, key) !== 0) return { ok: false, reason: 'address-bound-to-other-key', holder: { ...holder6 }, family: 6 }
    return { ok: true }
  }

  bind (key: Uint8Array, address: number, wallNow: number, address6: Uint8Array | null = null): void {
    const k = hex(key)
    const old = this.#byKey.get(k)
    if (old !== undefined) {
      this.#byAddress.delete(old.address)
      if (old.address6 !== undefined) this.#byAddress6.delete(addr6Id(old.address6))
    }
    const rec: NodeRecord = { key: new Uint8Array(key), address, firstSeen: old?.firstSeen ?? wallNow, lastSeen: wallNow }
    if (address6 !== null) rec.address6 = new Uint8Array(address6)
    const other = this.#byAddress.get(address)
    if (other !== undefined) this.#byKey.delete(hex(other.key))
    this.#byAddress.set(address, rec)
    if (address6 !== null) this.#byAddress6.set(addr6Id(address6), rec)
    this.#byKey.set(k, rec)
  }

  touch (key: Uint8Array, wallNow: number): void {
    const rec = this.#byKey.get(hex(key))
    if (rec !== undefined) rec.lastSeen = wallNow
  }

  list (): NodeRecord[] {
    return [...this.#byAddress.values()].map(r => ({ ...r, key: new Uint8Array(r.key) })).sort((a, b) => a.address - b.address)
  }

  remove (sel: { address?: number, key?: Uint8Array }): NodeRecord[] {
    const out: NodeRecord[] = []
    const drop = (rec: NodeRecord): void => {
      this.#byAddress.delete(rec.address)
      if (rec.address6 !== undefined) this.#byAddress6.delete(addr6Id(rec.address6))
      this.#byKey.delete(hex(rec.key))
      this.#revoked.add(hex(rec.key))
      out.push(rec)
    }
    if (sel.address !== undefined) { const r = this.#byAddress.get(sel.address); if (r !== undefined) drop(r) }
    if (sel.key !== undefined) {
      const r = this.#byKey.get(hex(sel.key))
      if (r !== undefined && !out.includes(r)) drop(r)
      this.#revoked.add(hex(sel.key))
    }
    return out
  }
}

/** A key the operator revoked (`nodes remove`), and when (wall ms). */
export interface RevokedKey { key: Uint8Array, at: number }

/** Strict mode's admitted key/address pairs (state/authorized-nodes.ts AuthorizedNodes). */
export interface AuthorizedList {
  readonly file: string
  admits (key: Uint8Array, address: number): boolean
  addressOf (key: Uint8Array): number | null
}

/**
 * What the operator's commands need beyond NodeRegistry (`nodes allow`, the
 * revoked list in `nodes`, strict mode, persistence points). The persisted
 * state/registry-file.ts FileRegistry implements both; the server takes
 * `NodeRegistry & RegistryAdmin`.
 */
export interface RegistryAdmin {
  /** Strict mode's list (--authorized-nodes), or null: check answers 'not-authorized' for any pair it does not admit. */
  setAuthorized (a: AuthorizedList | null): void
  readonly authorized: AuthorizedList | null
  /** Lifts a revocation; false when the key was not revoked. */
  allow (key: Uint8Array): boolean
  revoked (): RevokedKey[]
  /** Writes what `touch` left unwritten (at most every REGISTRY_TOUCH_FLUSH ms; `force` at shutdown). */
  flush (wallNow: number, force?: boolean): void
}

/** Bytes as a map key. */
export function keyId (key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('base64')
}
