/**
 * Cryptokey routing by longest prefix: IPv4 and IPv6 prefixes → peer slot,
 * one table per pipeline (dataplane/peers.ts PeerTable holds it), filled
 * from PEER messages (the peer's tunnelIp as a /32 plus its `prefixes`: its
 * IPv6 tunnel address as a /128, its approved routes) and emptied on
 * PEER_REMOVE. The same class, with slot 0 for every prefix, holds the
 * node's own inner addresses of the last LOCAL message (inbound.ts).
 *
 * Control events (rare) → set(slot, prefixes) / removeSlot(slot): rebuild
 * that slot's entries. Packets (hot) → lookup4(ip) / lookup6(mem, off):
 * visit the prefix lengths in use, longest first, masking the address and
 * probing one open-addressing hash per length; no allocation, no strings.
 *
 * Storage: one Int32Array of entries [tag, w0, w1, w2, w3, value + 1]
 * (tag = family << 8 | len, 0 = empty; w = the masked address as four
 * big-endian 32-bit words, IPv4 in w0), linear probing, deletion by
 * backward shift, grown by rehashing (on a control event only).
 *
 * Two peers claiming the same prefix (the server approves without overlap,
 * but a stale PEER may race a new one): the latest claim wins, and when it
 * is withdrawn the previous claimant gets it back (`#claims`).
 */
import type { IpPrefix } from '../wire/prefix.js'

const STRIDE = 6
const T_TAG = 0
const T_VALUE = 5

/** The network mask of each prefix length as four 32-bit words (IPv6; IPv4 uses word 0 of lengths 0..32). */
const MASKS = (() => {
  const m = new Int32Array(129 * 4)
  for (let len = 0; len <= 128; len++) {
    for (let w = 0; w < 4; w++) {
      const bits = Math.max(0, Math.min(32, len - 32 * w))
      m[len * 4 + w] = bits === 0 ? 0 : bits === 32 ? -1 : (-1 << (32 - bits))
    }
  }
  return m
})()

function hash (tag: number, w0: number, w1: number, w2: number, w3: number): number {
  let h = Math.imul(tag ^ w0, 0x9e3779b1) ^ Math.imul(w1, 0x85ebca77) ^ Math.imul(w2, 0xc2b2ae3d) ^ Math.imul(w3, 0x27d4eb2f)
  h ^= h >>> 15
  h = Math.imul(h, 0x2c1b3c6d)
  return h ^ (h >>> 13)
}

function word (a: Uint8Array, i: number): number {
  return (a[i] << 24) | (a[i + 1] << 16) | (a[i + 2] << 8) | a[i + 3]
}

function claimKey (p: IpPrefix): string {
  const w = p.family === 4 ? 1 : 4
  let k = `${p.family}/${p.len}`
  for (let i = 0; i < w; i++) k += `:${word(p.addr, i * 4) & MASKS[p.len * 4 + i]}`
  return k
}

export class RouteTable {
  #table = new Int32Array(16 * STRIDE)
  #mask = 15
  #size = 0
  /** Prefix lengths in use, longest first, per family; and how many entries each length has. */
  #lens4 = new Int32Array(33)
  #n4 = 0
  #lens6 = new Int32Array(129)
  #n6 = 0
  readonly #count4 = new Int32Array(33)
  readonly #count6 = new Int32Array(129)
  /** Control side: prefix key → the slots claiming it, latest last (the table maps it to the last). */
  readonly #claims = new Map<string, { p: IpPrefix, slots: number[] }>()
  /** Control side: slot → the claim keys it holds. */
  readonly #bySlot = new Map<number, string[]>()

  /** Entries in the table (distinct prefixes). */
  get size (): number { return this.#size }

  /** Make `prefixes` the slot's prefixes (replacing what it had). */
  set (slot: number, prefixes: readonly IpPrefix[]): void {
    this.removeSlot(slot)
    const keys: string[] = []
    for (const p of prefixes) {
      const k = claimKey(p)
      if (keys.includes(k)) continue
      keys.push(k)
      const c = this.#claims.get(k)
      if (c === undefined) this.#claims.set(k, { p, slots: [slot] })
      else c.slots.push(slot)
      this.#put(p, slot)
    }
    if (keys.length > 0) this.#bySlot.set(slot, keys)
  }

  /** Withdraw every prefix of the slot; a prefix another slot also claims goes back to it. */
  removeSlot (slot: number): void {
    const keys = this.#bySlot.get(slot)
    if (keys === undefined) return
    this.#bySlot.delete(slot)
    for (const k of keys) {
      const c = this.#claims.get(k)!
      const i = c.slots.lastIndexOf(slot)
      if (i >= 0) c.slots.splice(i, 1)
      if (c.slots.length === 0) { this.#claims.delete(k); this.#del(c.p) } else this.#put(c.p, c.slots[c.slots.length - 1])
    }
  }

  clear (): void {
    for (const slot of [...this.#bySlot.keys()]) this.removeSlot(slot)
  }

  /** The slot of the longest prefix containing the IPv4 address (a u32 or int32), or -1. */
  lookup4 (ip: number): number {
    const lens = this.#lens4
    for (let i = 0; i < this.#n4; i++) {
      const len = lens[i]
      const v = this.#find(0x400 | len, ip & MASKS[len * 4], 0, 0, 0)
      if (v >= 0) return v
    }
    return -1
  }

  /** The slot of the longest prefix containing the IPv6 address at mem[off, off + 16), or -1. */
  lookup6 (mem: Uint8Array, off: number): number {
    const n = this.#n6
    if (n === 0) return -1
    const a0 = word(mem, off); const a1 = word(mem, off + 4); const a2 = word(mem, off + 8); const a3 = word(mem, off + 12)
    const lens = this.#lens6
    for (let i = 0; i < n; i++) {
      const len = lens[i]
      const m = len * 4
      const v = this.#find(0x600 | len, a0 & MASKS[m], a1 & MASKS[m + 1], a2 & MASKS[m + 2], a3 & MASKS[m + 3])
      if (v >= 0) return v
    }
    return -1
  }

  #find (tag: number, w0: number, w1: number, w2: number, w3: number): number {
    const t = this.#table
    const mask = this.#mask
    for (let i = hash(tag, w0, w1, w2, w3) & mask; ; i = (i + 1) & mask) {
      const e = i * STRIDE
      const et = t[e]
      if (et === 0) return -1
      if (et === tag && t[e + 1] === w0 && t[e + 2] === w1 && t[e + 3] === w2 && t[e + 4] === w3) return t[e + T_VALUE] - 1
    }
  }

  #words (p: IpPrefix): [number, number, number, number, number] {
    const m = p.len * 4
    if (p.family === 4) return [0x400 | p.len, word(p.addr, 0) & MASKS[m], 0, 0, 0]
    return [0x600 | p.len, word(p.addr, 0) & MASKS[m], word(p.addr, 4) & MASKS[m + 1], word(p.addr, 8) & MASKS[m + 2], word(p.addr, 12) & MASKS[m + 3]]
  }

  /** Insert or overwrite. */
  #put (p: IpPrefix, slot: number): void {
    if ((this.#size + 1) * 2 > this.#mask + 1) this.#grow()
    const [tag, w0, w1, w2, w3] = this.#words(p)
    const t = this.#table
    const mask = this.#mask
    for (let i = hash(tag, w0, w1, w2, w3) & mask; ; i = (i + 1) & mask) {
      const e = i * STRIDE
      if (t[e] === 0) {
        t[e] = tag; t[e + 1] = w0; t[e + 2] = w1; t[e + 3] = w2; t[e + 4] = w3; t[e + T_VALUE] = slot + 1
        this.#size++
        this.#countLen(p.family, p.len, 1)
        return
      }
      if (t[e] === tag && t[e + 1] === w0 && t[e + 2] === w1 && t[e + 3] === w2 && t[e + 4] === w3) { t[e + T_VALUE] = slot + 1; return }
    }
  }

  #del (p: IpPrefix): void {
    const [tag, w0, w1, w2, w3] = this.#words(p)
    const t = this.#table
    const mask = this.#mask
    let i = hash(tag, w0, w1, w2, w3) & mask
    for (; ; i = (i + 1) & mask) {
      const e = i * STRIDE
      if (t[e] === 0) return
      if (t[e] === tag && t[e + 1] === w0 && t[e + 2] === w1 && t[e + 3] === w2 && t[e + 4] === w3) break
    }
    // Backward-shift deletion: move later entries of the cluster into the hole when their home allows it.
    let hole = i
    for (let j = (i + 1) & mask; ; j = (j + 1) & mask) {
      const e = j * STRIDE
      if (t[e] === 0) break
      const home = hash(t[e], t[e + 1], t[e + 2], t[e + 3], t[e + 4]) & mask
      // Entry j may move to the hole when its home is not cyclically in (hole, j].
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        t.copyWithin(hole * STRIDE, e, e + STRIDE)
        hole = j
      }
    }
    t.fill(0, hole * STRIDE, hole * STRIDE + STRIDE)
    this.#size--
    this.#countLen(p.family, p.len, -1)
  }

  #grow (): void {
    const old = this.#table
    const cap = (this.#mask + 1) * 2
    this.#table = new Int32Array(cap * STRIDE)
    this.#mask = cap - 1
    const t = this.#table
    for (let e = 0; e < old.length; e += STRIDE) {
      if (old[e] === 0) continue
      for (let i = hash(old[e], old[e + 1], old[e + 2], old[e + 3], old[e + 4]) & this.#mask; ; i = (i + 1) & this.#mask) {
        if (t[i * STRIDE + T_TAG] === 0) { t.set(old.subarray(e, e + STRIDE), i * STRIDE); break }
      }
    }
  }

  /** Keep the per-family list of lengths in use (longest first) as entries come and go. */
  #countLen (family: 4 | 6, len: number, d: number): void {
    const count = family === 4 ? this.#count4 : this.#count6
    count[len] += d
    if ((d > 0 && count[len] !== 1) || (d < 0 && count[len] !== 0)) return
    const lens = family === 4 ? this.#lens4 : this.#lens6
    let n = 0
    for (let l = count.length - 1; l >= 0; l--) if (count[l] > 0) lens[n++] = l
    if (family === 4) this.#n4 = n
    else this.#n6 = n
  }
}
