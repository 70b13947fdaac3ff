/**
 * The server's address→key registry, behind a narrow interface: which node
 * key holds which tunnel address. The server asks `check` before any
 * Diffie-Hellman (the initiator's static key is known after message 1),
 * calls `bind` only on a Confirm, `touch` on authenticated traffic, and
 * `remove` for `lightweight-tunnel nodes remove` (revocation).
 *
 * Implementations: MemoryRegistry (below, tests and the default without a
 * state directory) and state/registry-file.ts FileRegistry (persisted in
 * <state-dir>/registry.json). Several servers sharing one network will back
 * this interface with a shared store; no caller reads the file.
 */
export interface NodeRecord { key: Uint8Array; address: number /* tunnel IPv4, u32 */; firstSeen: number; lastSeen: number /* wall ms */ }
export type ClaimResult =
  | { ok: true }
  | { ok: false; reason: 'address-bound-to-other-key' | 'key-revoked' | 'not-authorized'; holder?: NodeRecord }
export interface NodeRegistry {
  check (key: Uint8Array, address: number): ClaimResult          // pure query, before any DH
  bind (key: Uint8Array, address: number, wallNow: number): void // on Confirm; a key holds one address (re-binding moves it)
  touch (key: Uint8Array, wallNow: number): void
  list (): NodeRecord[]
  remove (sel: { address?: number; key?: Uint8Array }): NodeRecord[] // frees the address(es) and revokes the key(s)
}

/** A key the operator revoked (`nodes remove`), and when (wall ms). */
export interface RevokedKey { key: Uint8Array; at: number }

/**
 * What the operator's commands need beyond NodeRegistry (`nodes allow`, the
 * revoked list in `nodes`, strict mode, persistence points). FileRegistry
 * implements it; the server takes `NodeRegistry & RegistryAdmin`.
 */
export interface RegistryAdmin {
  /** Strict mode's list (--authorized-nodes), or null: check answers 'not-authorized' for any pair it does not admit. */
  setAuthorized (a: AuthorizedList | null): void
  readonly authorized: AuthorizedList | null
  /** Lifts a revocation; false when the key was not revoked. */
  allow (key: Uint8Array): boolean
  revoked (): RevokedKey[]
  /** Writes what `touch` left unwritten (at most every REGISTRY_TOUCH_FLUSH ms, and at shutdown). */
  flush (wallNow: number, force?: boolean): void
}

/** Strict mode's admitted key/address pairs (state/authorized-nodes.ts AuthorizedNodes). */
export interface AuthorizedList {
  readonly file: string
  admits (key: Uint8Array, address: number): boolean
  addressOf (key: Uint8Array): number | null
}

/** Bytes as a map key. */
export function keyId (key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('base64')
}

/** The in-memory registry (the interface's reference behaviour; FileRegistry persists the same). */
export class MemoryRegistry implements NodeRegistry {
  readonly #byKey = new Map<string, NodeRecord>()
  readonly #byAddr = new Map<number, NodeRecord>()

  check (key: Uint8Array, address: number): ClaimResult {
    const holder = this.#byAddr.get(address >>> 0)
    if (holder !== undefined && keyId(holder.key) !== keyId(key)) return { ok: false, reason: 'address-bound-to-other-key', holder: { ...holder } }
    return { ok: true }
  }

  bind (key: Uint8Array, address: number, wallNow: number): void {
    const id = keyId(key)
    const old = this.#byKey.get(id)
    if (old !== undefined) this.#byAddr.delete(old.address)
    const rec = { key: Uint8Array.from(key), address: address >>> 0, firstSeen: old?.firstSeen ?? wallNow, lastSeen: wallNow }
    this.#byKey.set(id, rec)
    this.#byAddr.set(rec.address, rec)
  }

  touch (key: Uint8Array, wallNow: number): void {
    const rec = this.#byKey.get(keyId(key))
    if (rec !== undefined) rec.lastSeen = wallNow
  }

  list (): NodeRecord[] { return [...this.#byKey.values()].map(r => ({ ...r })) }

  remove (sel: { address?: number; key?: Uint8Array }): NodeRecord[] {
    const out: NodeRecord[] = []
    for (const r of [...this.#byKey.values()]) {
      if ((sel.address !== undefined && r.address === sel.address >>> 0) || (sel.key !== undefined && keyId(r.key) === keyId(sel.key))) {
        this.#byKey.delete(keyId(r.key))
        this.#byAddr.delete(r.address)
        out.push(r)
      }
    }
    return out
  }
}
