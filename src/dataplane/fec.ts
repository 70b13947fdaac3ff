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
 * offer, each side sends with its own parameters); outbound after the send,
 * inbound around the open; the server relays type 8; counters in status
 * and metrics. Tests: test/dataplane/fec.test.ts, pipelines-fec.test.ts,
 * test/e2e/fec.test.ts; bench/fec-loss.ts.
 * Cost in TypeScript (bench/micro fec): ~9 µs a 1400-byte data message to
 * encode 10+3, ~14 µs with the copies — about 0.8 Gbit/s on one core.
 */
import { FEC_MAX_DATA, FEC_MAX_PARITY, FEC_MAX_SHARD, decodeFecParity, encodeFecParity } from '../wire/fec.js'
import { TRANSPORT_COUNTER_OFFSET, TRANSPORT_MIN, readU32, readU64 } from '../wire/messages.js'
import { reedSolomon } from './reed-solomon.js'

/** A partial group is closed (its parity sent) this long after its first message, ms: the added latency of a recovered packet at low rates. */
export const FEC_FLUSH_MS = 5
/** Recent data messages a decoder keeps (copies): 4 groups of the largest size, for reordering. */
export const FEC_WINDOW = 4 * FEC_MAX_DATA
/** Groups a decoder tracks at once (each holds up to `parity` shards). */
export const FEC_MAX_GROUPS = 16
/** A group still missing data this long after its first parity is given up (unrecoverable), ms. */
export const FEC_GROUP_TIMEOUT = 200

export interface FecConfig { data: number, parity: number }

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
  #msgs: Uint8Array[] = []
  #index = 0
  #first = 0
  #openedAt = 0
  /** Parity messages produced, groups closed (full and partial). */
  readonly counters = { parity: 0, groups: 0, partialGroups: 0 }

  constructor (cfg: FecConfig, flushMs = FEC_FLUSH_MS) {
    this.data = cfg.data
    this.parity = cfg.parity
    this.flushMs = flushMs
  }

  /**
   * A sealed data message (type 4, header included) was just sent to the
   * peer. Returns parity messages to send now (the group closed), or null.
   * A message that does not continue the open group (another receiver
   * index: a new key; a counter gap) first closes that group.
   */
  add (msg: Uint8Array, now: number): Uint8Array[] | null {
    if (msg.length < TRANSPORT_MIN || msg.length > FEC_MAX_SHARD) return null
    const index = readU32(msg, 4)
    const counter = readU64(msg, TRANSPORT_COUNTER_OFFSET)
    let out: Uint8Array[] | null = null
    if (this.#msgs.length > 0 && (index !== this.#index || counter !== this.#first + this.#msgs.length)) out = this.#close()
    if (this.#msgs.length === 0) { this.#index = index; this.#first = counter; this.#openedAt = now }
    this.#msgs.push(msg.slice())
    if (this.#msgs.length === this.data) {
      const more = this.#close()
      out = out === null ? more : [...out, ...more]
    }
    return out
  }

  /** Closes a group open for flushMs or more; its parity messages, or null. */
  flush (now: number): Uint8Array[] | null {
    return this.#msgs.length > 0 && now - this.#openedAt >= this.flushMs ? this.#close() : null
  }

  /** When flush() has work, or Infinity. */
  get dueAt (): number { return this.#msgs.length > 0 ? this.#openedAt + this.flushMs : Infinity }

  #close (): Uint8Array[] {
    const msgs = this.#msgs
    this.#msgs = []
    const k = msgs.length
    const lengths = msgs.map(m => m.length)
    const len = Math.max(...lengths)
    const shards = Array.from({ length: this.parity }, () => new Uint8Array(len))
    reedSolomon(k, this.parity).encode(msgs, shards, len)
    this.counters.groups++
    if (k < this.data) this.counters.partialGroups++
    this.counters.parity += this.parity
    return shards.map((shard, i) => encodeFecParity({ data: k, parity: this.parity, index: i, receiverIndex: this.#index, first: this.#first, lengths, shard }))
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
  parity: Array<Uint8Array | null>
  since: number
}

export class FecDecoder {
  /** The receiver index whose data this decoder sees (the session's local index). */
  readonly receiverIndex: number
  readonly #recent = new Map<number, Uint8Array>()
  readonly #groups = new Map<number, Group>()
  /** Groups judged lately (first counters), so their late parity is stale, not a new group: bounded like #recent. */
  readonly #judged = new Set<number>()
  readonly counters: FecCounters = { groupsComplete: 0, groupsRecovered: 0, packetsRecovered: 0, groupsUnrecoverable: 0, malformed: 0, stale: 0, parityUnused: 0 }

  constructor (receiverIndex: number) { this.receiverIndex = receiverIndex }

  /** Memory held, in data/parity messages (for tests of the bounds). */
  get held (): { recent: number, groups: number } { return { recent: this.#recent.size, groups: this.#groups.size } }

  /**
   * An authenticated data message of this session (its sealed bytes, copied
   * before the open). Returns messages rebuilt because of it (a late data
   * message can complete a group), usually none. owned: the caller hands
   * the bytes over (a copy of its own), so they are kept without another.
   */
  addData (sealed: Uint8Array, now: number, owned = false): Uint8Array[] {
    if (sealed.length < TRANSPORT_MIN || sealed.length > FEC_MAX_SHARD) return []
    const counter = readU64(sealed, TRANSPORT_COUNTER_OFFSET)
    if (this.#recent.has(counter)) return []
    this.#recent.set(counter, owned ? sealed : sealed.slice())
    if (this.#recent.size > FEC_WINDOW) this.#recent.delete(this.#recent.keys().next().value!)
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
      g = { k: p.data, m: p.parity, first: p.first, lengths: p.lengths, parity: new Array<Uint8Array | null>(p.parity).fill(null), since: now }
      this.#groups.set(p.first, g)
      if (this.#groups.size > FEC_MAX_GROUPS) this.#evict(this.#groups.values().next().value!)
    } else if (g.k !== p.data || g.m !== p.parity || g.lengths.some((l, i) => l !== p.lengths[i])) {
      this.counters.stale++
      return []
    }
    if (g.parity[p.index] === null) g.parity[p.index] = p.shard.slice()
    return this.#try(g, now)
  }

  /** Gives up groups older than FEC_GROUP_TIMEOUT (counted). */
  expire (now: number): void {
    for (const g of this.#groups.values()) {
      if (now - g.since < FEC_GROUP_TIMEOUT) break // insertion order = age order
      this.#evict(g)
    }
  }

  #evict (g: Group): void {
    this.#judge(g)
    let missing = false
    for (let i = 0; i < g.k; i++) if (!this.#recent.has(g.first + i)) missing = true
    if (missing) this.counters.groupsUnrecoverable++
    else this.counters.groupsComplete++
  }

  #judge (g: Group): void {
    this.#groups.delete(g.first)
    this.#judged.add(g.first)
    if (this.#judged.size > FEC_WINDOW) this.#judged.delete(this.#judged.values().next().value!)
  }

  #try (g: Group, _now: number): Uint8Array[] {
    const shards: Array<Uint8Array | null> = []
    let present = 0
    for (let i = 0; i < g.k; i++) {
      const d = this.#recent.get(g.first + i) ?? null
      // A data message whose length disagrees with the group's is not this group's (or the parity is forged).
      shards.push(d !== null && d.length === g.lengths[i] ? d : null)
      if (shards[i] !== null) present++
    }
    if (present === g.k) { this.#judge(g); this.counters.groupsComplete++; return [] }
    let parity = 0
    for (const p of g.parity) { shards.push(p); if (p !== null) parity++ }
    if (present + parity < g.k) return []
    const len = Math.max(...g.lengths)
    const rebuilt = reedSolomon(g.k, g.m).reconstruct(shards, len)
    this.#judge(g)
    if (rebuilt === null) return [] // cannot happen: enough shards were counted
    this.counters.groupsRecovered++
    this.counters.packetsRecovered += rebuilt.length
    return rebuilt.map(i => shards[i]!.subarray(0, g.lengths[i]))
  }
}

export { FEC_MAX_DATA, FEC_MAX_PARITY }
