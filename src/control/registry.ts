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
  /** Wall-clock ms. */
  firstSeen: number
  lastSeen: number
}

export type ClaimResult =
  | { ok: true }
  | { ok: false, reason: 'address-bound-to-other-key' | 'key-revoked' | 'not-authorized', holder?: NodeRecord }

export interface NodeRegistry {
  /** Pure query, before any DH: may `key` have `address`? */
  check(key: Uint8Array, address: number): ClaimResult
  /** On Confirm: `address` belongs to `key` from now on; a key holds one address (re-binding moves it). */
  bind(key: Uint8Array, address: number, wallNow: number): void
  touch(key: Uint8Array, wallNow: number): void
  list(): NodeRecord[]
  /** Frees the address(es) and revokes the key(s); returns the records removed. */
  remove(sel: { address?: number, key?: Uint8Array }): NodeRecord[]
}

const hex = (k: Uint8Array): string => Buffer.from(k).toString('hex')

/** The embedded registry: two maps, nothing persisted. Revoked keys are kept (bounded by the operator's removals). */
export class MemoryRegistry implements NodeRegistry {
  readonly #byAddress = new Map<number, NodeRecord>()
  readonly #byKey = new Map<string, NodeRecord>()
  readonly #revoked = new Set<string>()

  check (key: Uint8Array, address: number): ClaimResult {
    if (this.#revoked.has(hex(key))) return { ok: false, reason: 'key-revoked' }
    const holder = this.#byAddress.get(address)
    if (holder !== undefined && Buffer.compare(holder.key, key) !== 0) return { ok: false, reason: 'address-bound-to-other-key', holder: { ...holder } }
    return { ok: true }
  }

  bind (key: Uint8Array, address: number, wallNow: number): void {
    const k = hex(key)
    const old = this.#byKey.get(k)
    if (old !== undefined && old.address === address) { old.lastSeen = wallNow; return }
    if (old !== undefined) this.#byAddress.delete(old.address)
    const rec: NodeRecord = { key: new Uint8Array(key), address, firstSeen: old?.firstSeen ?? wallNow, lastSeen: wallNow }
    const other = this.#byAddress.get(address)
    if (other !== undefined) this.#byKey.delete(hex(other.key))
    this.#byAddress.set(address, rec)
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
