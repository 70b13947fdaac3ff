/**
 * The IPv6 address table: one per daemon (daemon.ts makes it; the UDP socket, the pipelines and the
 * control plane share its SharedArrayBuffer). Entry i holds one IPv6 address; the endpoint handle
 * 0xFE000000|i (wire/endpoint-handle.ts) stands for it wherever an endpoint is a u32, so the control
 * plane keeps comparing u32 endpoints (one address = one handle).
 *
 * Flow: the control plane interns the addresses it has reason to keep (the configured server, peers'
 * IPv6 endpoints and candidates from peer lists, a client it admits) pinned; the addon (native/addr6.c)
 * looks every IPv6 source up on receive without allocating and adds an unknown one unpinned (a new
 * client's HandshakeInit must reach the control plane); on send it resolves a handle to sockaddr_in6.
 * An unpinned entry (or one unpinned or freed by the control plane) is recycled only after
 * REUSE_GUARD_S seconds, so a handle a worker still holds keeps naming the same address meanwhile.
 *
 * Layout (bytes; native/addr6.c has the same constants):
 *   header, 16 int32 words: [0] writer lock, [1] capacity, [2] bucket count (power of two),
 *     [3] hash seed, [4] misses (no entry could be made: full), [5] recycled, [6] allocation cursor,
 *     [7] entries added by the receive path
 *   entries at 64, capacity x 32 bytes: address (16), seq (u32, odd while written), flags
 *     (USED 1, PINNED 2, FREED 4), stamp (monotonic seconds when made, unpinned or freed), spare
 *   index: buckets x 4 uint32 (entry index + 1; 0 empty)
 * Writers (this class on the main thread, addr6.c on the inbound thread) take the lock word; readers
 * never lock and use each entry's seq as a seqlock, so a half-written entry is never seen.
 */
import { HANDLE_INDEX_MASK, HANDLE_V6, isV6Handle } from '../wire/endpoint-handle.js'
import { formatIp6, parseIp6 } from '../wire/prefix.js'

const HDR = 64
const ENTRY = 32
const WAYS = 4
const W_LOCK = 0
const W_CAP = 1
const W_BUCKETS = 2
const W_SEED = 3
const W_MISS = 4
const W_RECYCLED = 5
const W_CURSOR = 6
const W_ADDED = 7
const F_USED = 1
const F_PINNED = 2

const E_SEQ = 16
const E_FLAGS = 20
const E_STAMP = 24
/** Seconds before an unpinned or freed entry may name another address (a worker may still hold its handle). */
export const REUSE_GUARD_S = 10
/** Entries examined per allocation (bounded work under a flood of new sources). */
const ALLOC_SCAN = 64
/** Default capacity: every client of a server (LIMITS.maxClients is far below) plus room for strangers. */
export const V6_TABLE_CAPACITY = 4096

/** Monotonic seconds on the clock addr6.c uses (CLOCK_MONOTONIC: libuv's hrtime on Linux). */
export function monoSec (): number { return Number(process.hrtime.bigint() / 1_000_000_000n) }

export interface V6TableStats {
  /** Entries in use, and of those pinned by the control plane. */
  entries: number
  pinned: number
  /** IPv6 sources that could not be given an entry (table full of young or pinned entries). */
  misses: number
  /** Entries made for a source and later recycled for another. */
  recycled: number
  /** Entries the receive path added (unknown IPv6 sources). */
  added: number
}

export class V6Table {
  readonly mem: Uint8Array
  readonly #i32: Int32Array
  readonly #u32: Uint32Array
  readonly #cap: number
  readonly #buckets: number
  readonly #now: () => number

  /** A new table in a fresh SharedArrayBuffer (capacity entries; buckets: capacity rounded up to a power of two, 4 ways each). */
  static create (capacity = V6_TABLE_CAPACITY, opts: { now?: () => number, seed?: number } = {}): V6Table {
    let buckets = 1
    while (buckets < capacity) buckets *= 2
    const sab = new SharedArrayBuffer(HDR + capacity * ENTRY + buckets * WAYS * 4)
    const i32 = new Int32Array(sab)
    i32[W_CAP] = capacity
    i32[W_BUCKETS] = buckets
    i32[W_SEED] = opts.seed ?? ((Math.random() * 0x100000000) | 0)
    return new V6Table(new Uint8Array(sab), opts.now)
  }

  /** A view of an existing table (another thread's copy of mem). */
  constructor (mem: Uint8Array, now: () => number = monoSec) {
    this.mem = mem
    this.#i32 = new Int32Array(mem.buffer, mem.byteOffset, mem.byteLength >> 2)
    this.#u32 = new Uint32Array(mem.buffer, mem.byteOffset, mem.byteLength >> 2)
    this.#cap = this.#i32[W_CAP]
    this.#buckets = this.#i32[W_BUCKETS]
    this.#now = now
  }

  get capacity (): number { return this.#cap }

  /** The handle of `addr` (16 bytes, or IPv6 text), adding it if absent; pin keeps it until unpin. null when full. */
  intern (addr: Uint8Array | string, pin: boolean): number | null {
    const a = typeof addr === 'string' ? parseIp6(addr) : addr
    this.#lock()
    try {
      let i = this.#lookup(a)
      if (i < 0) i = this.#add(a)
      if (i < 0) { Atomics.add(this.#i32, W_MISS, 1); return null }
      if (pin) this.#setFlags(i, F_USED | F_PINNED, this.#u32[this.#w(i, E_STAMP)])
      return (HANDLE_V6 | i) >>> 0
    } finally { this.#unlock() }
  }

  /** The handle of addr if present (never adds). */
  find (addr: Uint8Array | string): number | null {
    const i = this.#lookup(typeof addr === 'string' ? parseIp6(addr) : addr)
    return i < 0 ? null : (HANDLE_V6 | i) >>> 0
  }

  /** The 16 address bytes a handle names, or null (not a v6 handle, or no such entry). */
  address (handle: number): Uint8Array | null {
    if (!isV6Handle(handle)) return null
    const i = handle & HANDLE_INDEX_MASK
    if (i >= this.#cap) return null
    const out = new Uint8Array(16)
    return this.#read(i, out) ? out : null
  }

  /** The handle's address as text ('2001:db8::1'), or null. */
  text (handle: number): string | null {
    const a = this.address(handle)
    return a === null ? null : formatIp6(a)
  }

  /** Ends a pin: the entry becomes recyclable after REUSE_GUARD_S. */
  unpin (handle: number): void {
    if (!isV6Handle(handle)) return
    const i = handle & HANDLE_INDEX_MASK
    if (i >= this.#cap) return
    this.#lock()
    try {
      const fl = this.#u32[this.#w(i, E_FLAGS)]
      if ((fl & F_PINNED) !== 0) this.#setFlags(i, F_USED, this.#now())
    } finally { this.#unlock() }
  }

  stats (): V6TableStats {
    let entries = 0
    let pinned = 0
    for (let i = 0; i < this.#cap; i++) {
      const fl = Atomics.load(this.#u32, this.#w(i, E_FLAGS))
      if ((fl & F_USED) !== 0) entries++
      if ((fl & F_PINNED) !== 0) pinned++
    }
    return { entries, pinned, misses: Atomics.load(this.#i32, W_MISS), recycled: Atomics.load(this.#i32, W_RECYCLED), added: Atomics.load(this.#i32, W_ADDED) }
  }

  #w (i: number, off: number): number { return (HDR + i * ENTRY + off) >> 2 }
  #bucket (a: Uint8Array): number { return ((HDR + this.#cap * ENTRY) >> 2) + (hash(this.#i32[W_SEED], a) & (this.#buckets - 1)) * WAYS }

  #lock (): void {
    while (Atomics.compareExchange(this.#i32, W_LOCK, 0, 1) !== 0) { /* the other writer holds it for a few hundred ns */ }
  }

  #unlock (): void { Atomics.store(this.#i32, W_LOCK, 0) }

  #read (i: number, out: Uint8Array): boolean {
    const seq = this.#w(i, E_SEQ)
    const s1 = Atomics.load(this.#u32, seq)
    if ((s1 & 1) !== 0) return false
    const fl = Atomics.load(this.#u32, this.#w(i, E_FLAGS))
    out.set(this.mem.subarray(HDR + i * ENTRY, HDR + i * ENTRY + 16))
    return Atomics.load(this.#u32, seq) === s1 && (fl & F_USED) !== 0
  }

  #lookup (a: Uint8Array): number {
    const b = this.#bucket(a)
    const got = new Uint8Array(16)
    for (let k = 0; k < WAYS; k++) {
      const v = Atomics.load(this.#u32, b + k)
      if (v === 0 || v > this.#cap) continue
      if (this.#read(v - 1, got) && equal16(got, a)) return v - 1
    }
    return -1
  }

  /** Under the lock: a free or recyclable entry for a (-1: none within ALLOC_SCAN, or its bucket is full). */
  #add (a: Uint8Array): number {
    const now = this.#now()
    const b = this.#bucket(a)
    let way = this.#freeWay(b)
    if (way < 0) return -1
    let cur = this.#i32[W_CURSOR]
    let victim = -1
    for (let n = 0; n < ALLOC_SCAN && n < this.#cap; n++) {
      const i = (cur + n) % this.#cap
      const fl = this.#u32[this.#w(i, E_FLAGS)]
      const st = this.#u32[this.#w(i, E_STAMP)]
      if (fl === 0 || ((fl & F_PINNED) === 0 && now - st >= REUSE_GUARD_S)) { victim = i; cur = i + 1; break }
    }
    if (victim < 0) return -1
    if ((this.#u32[this.#w(victim, E_FLAGS)] & F_USED) !== 0) {
      const ob = this.#bucket(this.mem.subarray(HDR + victim * ENTRY, HDR + victim * ENTRY + 16))
      for (let k = 0; k < WAYS; k++) if (this.#u32[ob + k] === victim + 1) Atomics.store(this.#u32, ob + k, 0)
      Atomics.add(this.#i32, W_RECYCLED, 1)
      way = this.#freeWay(b)
    }
    const seq = this.#w(victim, E_SEQ)
    Atomics.add(this.#u32, seq, 1)
    this.mem.set(a, HDR + victim * ENTRY)
    Atomics.store(this.#u32, this.#w(victim, E_FLAGS), F_USED)
    Atomics.store(this.#u32, this.#w(victim, E_STAMP), now)
    Atomics.add(this.#u32, seq, 1)
    Atomics.store(this.#u32, b + way, victim + 1)
    this.#i32[W_CURSOR] = cur % this.#cap
    return victim
  }

  #freeWay (b: number): number {
    for (let k = 0; k < WAYS; k++) if (this.#u32[b + k] === 0) return k
    return -1
  }

  #setFlags (i: number, flags: number, stamp: number): void {
    const seq = this.#w(i, E_SEQ)
    Atomics.add(this.#u32, seq, 1)
    Atomics.store(this.#u32, this.#w(i, E_FLAGS), flags)
    Atomics.store(this.#u32, this.#w(i, E_STAMP), stamp)
    Atomics.add(this.#u32, seq, 1)
  }
}

/** Same mix as addr6.c v6_hash (little-endian words: this machine's and the addon's order). */
function hash (seed: number, a: Uint8Array): number {
  let h = seed >>> 0
  for (let k = 0; k < 16; k += 4) {
    const w = (a[k] | (a[k + 1] << 8) | (a[k + 2] << 16) | (a[k + 3] << 24)) >>> 0
    h = (h ^ w) >>> 0
    h = Math.imul(h, 0x9e3779b1) >>> 0
    h = (h ^ (h >>> 15)) >>> 0
  }
  // murmur3's finaliser: every input bit reaches the low bits that pick the bucket.
  h = (h ^ (h >>> 16)) >>> 0
  h = Math.imul(h, 0x85ebca6b) >>> 0
  h = (h ^ (h >>> 13)) >>> 0
  h = Math.imul(h, 0xc2b2ae35) >>> 0
  return (h ^ (h >>> 16)) >>> 0
}

function equal16 (a: Uint8Array, b: Uint8Array): boolean {
  for (let k = 0; k < 16; k++) if (a[k] !== b[k]) return false
  return true
}


