/**
 * FEC over groups of sealed data messages, one encoder and one decoder per
 * peer session (issue 13 item 3; wire layout in wire/fec.ts, the code in
 * reed-solomon.ts). Sans-IO: the outbound pipeline hands each sealed data
 * message to the encoder and sends what it returns; the inbound pipeline
 * hands each authenticated data message and each parity message to the
 * decoder and opens what it returns. Time comes in as `now` (ms).
 *
 *   sender:   sealed data message ─▶ FecEncoder.add ─(group of `data` full,
 *             or a gap in counters / a new key)─▶ `parity` parity messages
 *             FecEncoder.flush(now) ─(group open ≥ flushMs)─▶ parity over
 *             the partial group (latency: a lone packet waits for nothing;
 *             its parity follows within flushMs)
 *   receiver: data message (after its AEAD open succeeded, the sealed bytes
 *             copied before) ─▶ FecDecoder.addData ─▶ recent window
 *             parity message ─▶ FecDecoder.addParity ─▶ enough shards and a
 *             data message missing ─▶ rebuilt sealed data messages, to be
 *             opened as if received (the AEAD and the replay window judge
 *             them: a forged shard costs one failed open, never a packet)
 *
 * Bounded: a decoder keeps at most WINDOW recent data messages and
 * MAX_GROUPS groups awaiting shards (the oldest is dropped, counted
 * unrecoverable if it was missing data); a group is judged at most
 * GROUP_TIMEOUT ms after its first parity. Counters say what happened
 * (FecCounters). One thread only (the worker that owns the pipeline).
 *
 * Wired (fec-hooks.ts): `--fec DATA,PARITY` (config fec, Go fec_data +
 * fec_parity); negotiated per peer session (control/fec-negotiation.ts: both
 * offer, each side sends with its own parameters); outbound before the send,
 * inbound around the open; the server relays type 8; counters in status
 * and metrics. Tests: test/dataplane/fec.test.ts, pipelines-fec.test.ts,
 * test/e2e/fec.test.ts; bench/fec-loss.ts.
 * Memory and cost: an encoder copies each message into its own group
 * buffer (no allocation) and writes the parity messages into a preallocated
 * output buffer (returned as views, valid until its next add or flush); a
 * decoder keeps recent data messages in a ring indexed by counter and
 * parity shards in an arena, allocated once. The matrix product is the
 * GfMatMul passed in: the addon's (native/fec.c) in the pipelines, the
 * TypeScript reference by default. bench/micro fec: FecEncoder.add 10+3
 * per 1400-byte message ~0.5 µs with the addon, 12-24 µs in TypeScript.
 */
import { FEC_HEADER_LEN, FEC_MAX_DATA, FEC_MAX_PARITY, FEC_MAX_SHARD, MSG_FEC, decodeFecParity } from '../wire/fec.js'
import { TRANSPORT_COUNTER_OFFSET, TRANSPORT_MIN, readU32, readU64, writeU16, writeU32, writeU64 } from '../wire/messages.js'
import { gfMatMulJs, reedSolomon, type GfMatMul } from './reed-solomon.js'

/** A partial group is closed (its parity sent) this long after its first message, ms: the added latency of a recovered packet at low rates. */
export const FEC_FLUSH_MS = 5
/** Recent data messages a decoder keeps (copies): 4 groups of the largest size, for reordering. */
export const FEC_WINDOW = 4 * FEC_MAX_DATA
/** Groups a decoder tracks at once (each holds up to `parity` shards). */
export const FEC_MAX_GROUPS = 16
/** A group still missing data this long after its first parity is given up (unrecoverable), ms. */
export const FEC_GROUP_TIMEOUT = 200

export interface FecConfig { data: number, parity: number }

/** The longest parity message: one message's room in an encoder's output buffer. */
export const FEC_PARITY_MAX = FEC_HEADER_LEN + 2 * FEC_MAX_DATA + FEC_MAX_SHARD

/** Parses `DATA,PARITY` (the --fec value); a sentence saying what is wrong, or the config. */
export function parseFec (v: string): FecConfig | string {
  const m = /^\s*(\d{1,3})\s*,\s*(\d{1,3})\s*$/.exec(v)
  if (m === null) return `expected DATA,PARITY (e.g. 10,3), got "${v}"`
  const data = Number(m[1])
  const parity = Number(m[2])
  if (data < 1 || data > FEC_MAX_DATA) return `DATA must be 1-${FEC_MAX_DATA} (got ${data})`
  if (parity < 1 || parity > FEC_MAX_PARITY) return `PARITY must be 1-${FEC_MAX_PARITY} (got ${parity})`
  return { data, parity }
}

export class FecEncoder {
  readonly data: number
  readonly parity: number
  readonly flushMs: number
  /** The open group's messages, copied: message i at i × FEC_MAX_SHARD. */
  readonly #buf: Uint8Array
  readonly #offs: Int32Array
  readonly #lens: Int32Array
  /** Parity messages of the last closed group: message j at j × FEC_PARITY_MAX. */
  readonly out: Uint8Array
  readonly #shardOffs: Int32Array
  readonly #kernel: GfMatMul
  #n = 0
  #index = 0
  #first = 0
  #openedAt = 0
  /** Parity messages produced, groups closed (full and partial). */
  readonly counters = { parity: 0, groups: 0, partialGroups: 0 }

  constructor (cfg: FecConfig, flushMs = FEC_FLUSH_MS, kernel: GfMatMul = gfMatMulJs) {
    this.data = cfg.data
    this.parity = cfg.parity
    this.flushMs = flushMs
    this.#kernel = kernel
    this.#buf = new Uint8Array(cfg.data * FEC_MAX_SHARD)
    this.#offs = Int32Array.from({ length: cfg.data }, (_, i) => i * FEC_MAX_SHARD)
    this.#lens = new Int32Array(cfg.data)
    this.out = new Uint8Array(cfg.parity * FEC_PARITY_MAX)
    this.#shardOffs = new Int32Array(cfg.parity)
  }

  /**
   * A sealed data message (type 4, header included) about to be sent to the
   * peer. Returns parity messages to send now (the group closed), or null:
   * views into `out`, valid until the next add or flush, all of one length.
   * A message that does not continue the open group (another receiver
   * index: a new key; a counter gap) first closes that group.
   */
  add (msg: Uint8Array, now: number): Uint8Array[] | null {
    if (msg.length < TRANSPORT_MIN || msg.length > FEC_MAX_SHARD) return null
    const index = readU32(msg, 4)
    const counter = readU64(msg, TRANSPORT_COUNTER_OFFSET)
    let out: Uint8Array[] | null = null
    if (this.#n > 0 && (index !== this.#index || counter !== this.#first + this.#n)) out = this.#close()
    if (this.#n === 0) { this.#index = index; this.#first = counter; this.#openedAt = now }
    this.#buf.set(msg, this.#n * FEC_MAX_SHARD)
    this.#lens[this.#n++] = msg.length
    // At most one close per add: a gap close leaves one message open, and a group of one (data = 1) closes at once.
    if (this.#n === this.data) out = this.#close()
    return out
  }

  /** Closes a group open for flushMs or more; its parity messages (as add), or null. */
  flush (now: number): Uint8Array[] | null {
    return this.#n > 0 && now - this.#openedAt >= this.flushMs ? this.#close() : null
  }

  /** When flush() has work, or Infinity. */
  get dueAt (): number { return this.#n > 0 ? this.#openedAt + this.flushMs : Infinity }

  #close (): Uint8Array[] {
    const k = this.#n
    this.#n = 0
    let len = 0
    for (let i = 0; i < k; i++) if (this.#lens[i]! > len) len = this.#lens[i]!
    const m = this.parity
    const out = this.out
    const hdr = FEC_HEADER_LEN + 2 * k
    const msgLen = hdr + len
    const msgs: Uint8Array[] = []
    for (let j = 0; j < m; j++) {
      const at = j * FEC_PARITY_MAX
      out[at] = MSG_FEC
      out[at + 1] = k
      out[at + 2] = m
      out[at + 3] = j
      writeU32(out, at + 4, this.#index)
      writeU64(out, at + 8, this.#first)
      for (let i = 0; i < k; i++) writeU16(out, at + FEC_HEADER_LEN + 2 * i, this.#lens[i]!)
      this.#shardOffs[j] = at + hdr
      msgs.push(out.subarray(at, at + msgLen))
    }
    this.#kernel(reedSolomon(k, m).parityCoefs, m, k, this.#buf, this.#offs, this.#lens, out, this.#shardOffs, len)
    this.counters.groups++
    if (k < this.data) this.counters.partialGroups++
    this.counters.parity += m
    return msgs
  }
}

export interface FecCounters {
  /** Groups whose every data message arrived (their parity was not needed). */
  groupsComplete: number
  /** Groups that had lost data messages and were rebuilt. */
  groupsRecovered: number
  /** Data messages rebuilt. */
  packetsRecovered: number
  /** Groups that lost more than their parity could rebuild (or timed out, or were evicted, missing data). */
  groupsUnrecoverable: number
  /** Parity messages that did not decode (lengths that do not add up, index out of range, …). */
  malformed: number
  /** Parity messages for another receiver index, or disagreeing with the group's first parity (forged or damaged). */
  stale: number
  /** Parity messages of a group already judged (the usual fate of parity on a link that lost nothing). */
  parityUnused: number
}

interface Group {
  k: number
  m: number
  first: number
  lengths: readonly number[]
  /** parity[j]: shard j has arrived (it is in the arena at this group's slot). */
  parity: boolean[]
  /** The group's parity slots in the arena: slot × FEC_MAX_PARITY … + m − 1. */
  slot: number
  since: number
}

/** Arena layout (shards of FEC_MAX_SHARD bytes): FEC_WINDOW data slots, then FEC_MAX_GROUPS × FEC_MAX_PARITY parity slots, then FEC_MAX_PARITY rebuild outputs. */
const PARITY_BASE = FEC_WINDOW
const OUT_BASE = PARITY_BASE + FEC_MAX_GROUPS * FEC_MAX_PARITY
const ARENA_SHARDS = OUT_BASE + FEC_MAX_PARITY

export class FecDecoder {
  /** The receiver index whose data this decoder sees (the session's local index). */
  readonly receiverIndex: number
  readonly #kernel: GfMatMul
  /** Every shard the decoder holds (allocated at first use; pages are touched only as shards reach them). */
  #arena: Uint8Array | null = null
  /** Recent data messages: counter c in data slot c mod FEC_WINDOW, with its counter (−1: empty) and length. */
  readonly #ringCounter = new Float64Array(FEC_WINDOW).fill(-1)
  readonly #ringLen = new Int32Array(FEC_WINDOW)
  #recent = 0
  readonly #groups = new Map<number, Group>()
  readonly #freeSlots: number[] = Array.from({ length: FEC_MAX_GROUPS }, (_, i) => FEC_MAX_GROUPS - 1 - i)
  /** Groups judged lately (first counters), so their late parity is stale, not a new group: bounded like the ring. */
  readonly #judged = new Set<number>()
  readonly #srcOffs = new Int32Array(FEC_MAX_DATA)
  readonly #srcLens = new Int32Array(FEC_MAX_DATA)
  readonly #dstOffs = Int32Array.from({ length: FEC_MAX_PARITY }, (_, j) => (OUT_BASE + j) * FEC_MAX_SHARD)
  readonly counters: FecCounters = { groupsComplete: 0, groupsRecovered: 0, packetsRecovered: 0, groupsUnrecoverable: 0, malformed: 0, stale: 0, parityUnused: 0 }

  constructor (receiverIndex: number, kernel: GfMatMul = gfMatMulJs) {
    this.receiverIndex = receiverIndex
    this.#kernel = kernel
  }

  /** Memory held, in data/parity messages (for tests of the bounds). */
  get held (): { recent: number, groups: number } { return { recent: this.#recent, groups: this.#groups.size } }

  #mem (): Uint8Array { return this.#arena ??= new Uint8Array(ARENA_SHARDS * FEC_MAX_SHARD) }

  /**
   * An authenticated data message of this session (its sealed bytes, kept
   * before the open), copied into the ring. Returns messages rebuilt because
   * of it (a late data message can complete a group), usually none.
   */
  addData (sealed: Uint8Array, now: number): Uint8Array[] {
    if (sealed.length < TRANSPORT_MIN || sealed.length > FEC_MAX_SHARD) return []
    const counter = readU64(sealed, TRANSPORT_COUNTER_OFFSET)
    const slot = counter % FEC_WINDOW
    const had = this.#ringCounter[slot]!
    if (had >= counter) return [] // a duplicate, or older than what the ring keeps
    if (had < 0) this.#recent++
    this.#mem().set(sealed, slot * FEC_MAX_SHARD)
    this.#ringCounter[slot] = counter
    this.#ringLen[slot] = sealed.length
    for (const g of this.#groups.values()) {
      if (counter >= g.first && counter < g.first + g.k) return this.#try(g, now)
    }
    return []
  }

  /** A parity message (type 8) arrived. Returns the sealed data messages it let us rebuild (to be opened), usually none. */
  addParity (bytes: Uint8Array, now: number): Uint8Array[] {
    let p
    try { p = decodeFecParity(bytes) } catch { this.counters.malformed++; return [] }
    this.expire(now)
    if (p.receiverIndex !== this.receiverIndex) { this.counters.stale++; return [] }
    if (this.#judged.has(p.first)) { this.counters.parityUnused++; return [] }
    let g = this.#groups.get(p.first)
    if (g === undefined) {
      // All data here already (the usual case): judged complete without storing the shard.
      if (this.#present(p.first, p.data, p.lengths) === p.data) {
        this.#judgedAdd(p.first)
        this.counters.groupsComplete++
        return []
      }
      if (this.#groups.size >= FEC_MAX_GROUPS) this.#evict(this.#groups.values().next().value!)
      g = { k: p.data, m: p.parity, first: p.first, lengths: p.lengths, parity: new Array<boolean>(p.parity).fill(false), slot: this.#freeSlots.pop()!, since: now }
      this.#groups.set(p.first, g)
    } else if (g.k !== p.data || g.m !== p.parity || g.lengths.some((l, i) => l !== p.lengths[i])) {
      this.counters.stale++
      return []
    }
    if (!g.parity[p.index]!) {
      g.parity[p.index] = true
      this.#mem().set(p.shard, (PARITY_BASE + g.slot * FEC_MAX_PARITY + p.index) * FEC_MAX_SHARD)
    }
    return this.#try(g, now)
  }

  /** Gives up groups older than FEC_GROUP_TIMEOUT (counted). */
  expire (now: number): void {
    for (const g of this.#groups.values()) {
      if (now - g.since < FEC_GROUP_TIMEOUT) break // insertion order = age order
      this.#evict(g)
    }
  }

  /** Is data message `first + i` of length `len` in the ring? */
  #has (counter: number, len: number): boolean {
    const slot = counter % FEC_WINDOW
    return this.#ringCounter[slot] === counter && this.#ringLen[slot] === len
  }

  /** How many of a group's data messages are in the ring (a length that disagrees is not this group's message, or the parity is forged). */
  #present (first: number, k: number, lengths: readonly number[]): number {
    let n = 0
    for (let i = 0; i < k; i++) if (this.#has(first + i, lengths[i]!)) n++
    return n
  }

  #evict (g: Group): void {
    this.#judge(g)
    if (this.#present(g.first, g.k, g.lengths) < g.k) this.counters.groupsUnrecoverable++
    else this.counters.groupsComplete++
  }

  #judge (g: Group): void {
    this.#groups.delete(g.first)
    this.#freeSlots.push(g.slot)
    this.#judgedAdd(g.first)
  }

  #judgedAdd (first: number): void {
    this.#judged.add(first)
    if (this.#judged.size > FEC_WINDOW) this.#judged.delete(this.#judged.values().next().value!)
  }

  #try (g: Group, _now: number): Uint8Array[] {
    const present: boolean[] = []
    let have = 0
    for (let i = 0; i < g.k; i++) { const h = this.#has(g.first + i, g.lengths[i]!); present.push(h); if (h) have++ }
    if (have === g.k) { this.#judge(g); this.counters.groupsComplete++; return [] }
    for (const p of g.parity) { present.push(p); if (p) have++ }
    if (have < g.k) return []
    const r = reedSolomon(g.k, g.m).rebuildCoefs(present)
    this.#judge(g)
    if (r === null) return [] // cannot happen: enough shards were counted
    let len = 0
    for (const l of g.lengths) if (l > len) len = l
    r.use.forEach((i, c) => {
      if (i < g.k) {
        this.#srcOffs[c] = ((g.first + i) % FEC_WINDOW) * FEC_MAX_SHARD
        this.#srcLens[c] = g.lengths[i]!
      } else {
        this.#srcOffs[c] = (PARITY_BASE + g.slot * FEC_MAX_PARITY + i - g.k) * FEC_MAX_SHARD
        this.#srcLens[c] = len
      }
    })
    const mem = this.#mem()
    this.#kernel(r.coefs, r.missing.length, g.k, mem, this.#srcOffs, this.#srcLens, mem, this.#dstOffs, len)
    this.counters.groupsRecovered++
    this.counters.packetsRecovered += r.missing.length
    return r.missing.map((i, j) => mem.slice(this.#dstOffs[j]!, this.#dstOffs[j]! + g.lengths[i]!))
  }
}

export { FEC_MAX_DATA, FEC_MAX_PARITY }
