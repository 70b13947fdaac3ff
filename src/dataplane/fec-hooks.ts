/**
 * The pipelines' FEC hooks (issue 13 item 3): where FecEncoder and
 * FecDecoder (fec.ts) meet packet memory, sockets and counters. The
 * pipelines call these few methods and know nothing else about FEC.
 *
 *   outbound (FecSender, one per Outbound):
 *     SEND_KEY with fec ─▶ set(slot, cfg): a fresh encoder for the new session
 *     aeadSealBatch ─▶ sealed(p, bytes, now) for a FEC peer's data message
 *       ─▶ the encoder ─(group closed)─▶ parity messages copied to a
 *       staging buffer (in a relay envelope when relayed); the pipeline
 *       sends the batch's data up to that message, then endBatch(): the
 *       staged parity in one udpSendBatchGso (a group's parity messages
 *       have one length: one GSO send), so parity follows its group at once
 *     a timer FEC_FLUSH_MS after a group opened ─▶ flush(now): partial groups
 *   the code's byte work is the addon's gfMatMul (native/fec.c) on both sides
 *   inbound (FecReceiver, one per Inbound):
 *     RECV_KEY with fec ─▶ open(localIndex): a decoder for that session
 *     a data message of such a session, before its in-place open ─▶
 *       keep(mem, …) (a copy in the stage); after the open succeeded ─▶ opened(…)
 *     a parity message (type 8, direct or relayed) ─▶ queueParity(start, len);
 *       after the batch's data (or every FEC_CHUNK data messages) ─▶
 *       judgeParity(mem, out) ─▶ parity(bytes, now) each
 *     either may return rebuilt sealed data messages: the pipeline opens
 *     them like received ones (AEAD, replay window, source checks), so a
 *     forged parity costs a failed open and a duplicate is a replay.
 *
 * Counters (workers/layout.ts C.fec*): parity sent, groups recovered,
 * packets recovered, groups unrecoverable, parity malformed, parity
 * dropped (no FEC session for its receiver index). One thread each.
 */
import { FecDecoder, FecEncoder, FEC_FLUSH_MS, FEC_PARITY_MAX, type FecConfig } from './fec.js'
import type { GfMatMul } from './reed-solomon.js'
import { MSG_RELAY } from '../wire/messages.js'
import { FEC_HEADER_LEN, FEC_MAX_SHARD } from '../wire/fec.js'
import type { Native } from './native.js'
import type { WorkerPeer } from './peers.js'
import { C, RX_MAX_PACKETS } from '../workers/layout.js'

/** Parity messages staged for one send (more are sent in several). */
const STAGE_MAX = 64
/** A staged message's room: a relay envelope and the longest parity message. */
const STAGE_SLOT = 8 + FEC_PARITY_MAX

/** The addon's matrix product, bound (the encoders and decoders call it as a plain function). */
function kernelOf (native: Native): GfMatMul { return native.gfMatMul.bind(native) }

export class FecSender {
  readonly #enc: Array<FecEncoder | undefined>
  readonly #native: Native
  readonly #kernel: GfMatMul
  readonly #udpFd: number
  readonly #stats: Float64Array
  readonly #now: () => number
  readonly #peer: (slot: number) => WorkerPeer | undefined
  #timer: ReturnType<typeof setTimeout> | null = null
  #count = 0
  readonly #stage = new Uint8Array(STAGE_MAX * STAGE_SLOT)
  readonly #stageView = new DataView(this.#stage.buffer)
  readonly #offs = Int32Array.from({ length: STAGE_MAX }, (_, i) => i * STAGE_SLOT)
  readonly #lens = new Int32Array(STAGE_MAX)
  readonly #addrs = new Uint32Array(2 * STAGE_MAX)
  readonly #fds = new Int32Array(STAGE_MAX)
  #staged = 0

  constructor (maxPeers: number, native: Native, udpFd: number, stats: Float64Array, now: () => number, peer: (slot: number) => WorkerPeer | undefined) {
    this.#enc = new Array<FecEncoder | undefined>(maxPeers)
    this.#native = native
    this.#kernel = kernelOf(native)
    this.#udpFd = udpFd
    this.#stats = stats
    this.#now = now
    this.#peer = peer
  }

  /** A new send session for the slot: FEC on with cfg, or off (null). An open group of the old session is dropped. */
  set (slot: number, cfg: FecConfig | null): void {
    if ((this.#enc[slot] !== undefined) !== (cfg !== null)) this.#count += cfg !== null ? 1 : -1
    this.#enc[slot] = cfg === null ? undefined : new FecEncoder(cfg, FEC_FLUSH_MS, this.#kernel)
  }

  /** Does the slot's current session use FEC (its packets stay off the native fast path)? */
  on (slot: number): boolean { return this.#enc[slot] !== undefined }

  /** Any FEC session at all (the pipeline skips the hook otherwise). */
  get any (): boolean { return this.#count > 0 }

  /** A FEC peer's sealed data message (header, ciphertext, tag), about to be sent; true when a group closed and its parity is staged (endBatch sends it). */
  sealed (p: WorkerPeer, msg: Uint8Array, now: number): boolean {
    const enc = this.#enc[p.slot]
    if (enc === undefined) return false
    const out = enc.add(msg, now)
    if (out !== null) { this.#queue(p, out); return true }
    if (this.#timer === null) this.#arm()
    return false
  }

  /** Send the parity staged so far (the pipeline calls it right after the data it belongs to). */
  endBatch (): void { if (this.#staged > 0) this.#send() }

  /** Close the groups open for FEC_FLUSH_MS or more (the timer calls it; tests call it with their clock). */
  flush (now: number): void {
    for (let slot = 0; slot < this.#enc.length; slot++) {
      const enc = this.#enc[slot]
      if (enc === undefined) continue
      const out = enc.flush(now)
      const p = this.#peer(slot)
      if (out !== null && p !== undefined) this.#queue(p, out)
    }
    this.endBatch()
  }

  /** Stop the timer (pipeline stop). */
  stop (): void {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
  }

  #arm (): void {
    this.#timer = setTimeout(() => {
      this.#timer = null
      const now = this.#now()
      this.flush(now)
      let due = Infinity
      for (const enc of this.#enc) if (enc !== undefined) due = Math.min(due, enc.dueAt)
      if (due !== Infinity) this.#arm()
    }, FEC_FLUSH_MS)
    this.#timer.unref?.()
  }

  /** Copy a group's parity messages (views the encoder reuses) into the stage, each to the peer's endpoint. */
  #queue (p: WorkerPeer, msgs: Uint8Array[]): void {
    const fd = p.fd < 0 ? this.#udpFd : p.fd
    for (const m of msgs) {
      if (this.#staged === STAGE_MAX) this.#send()
      const i = this.#staged++
      const at = this.#offs[i]!
      let len = m.length
      if (p.relayVia) {
        this.#stageView.setUint32(at, MSG_RELAY, true)
        this.#stageView.setUint32(at + 4, p.peerId, true)
        this.#stage.set(m, at + 8)
        len += 8
      } else this.#stage.set(m, at)
      this.#lens[i] = len
      this.#addrs[2 * i] = p.epIp
      this.#addrs[2 * i + 1] = p.epPort
      this.#fds[i] = fd
    }
  }

  /** Send the stage: one udpSendBatchGso per run of one socket. */
  #send (): void {
    const s = this.#stats
    const n = this.#staged
    this.#staged = 0
    for (let i = 0; i < n;) {
      let j = i + 1
      while (j < n && this.#fds[j] === this.#fds[i]) j++
      const sent = this.#native.udpSendBatchGso(this.#fds[i]!, this.#stage, this.#offs.subarray(i), this.#lens.subarray(i), this.#addrs.subarray(2 * i), j - i)
      for (let k = i; k < i + sent; k++) {
        s[C.fecParitySent]++
        s[C.udpTxPackets]++
        s[C.udpTxBytes] += this.#lens[k]!
      }
      if (sent < j - i) s[C.dropUdpSend] += j - i - sent
      i = j
    }
  }
}

/** Data messages a pipeline opens at most before the parity waiting behind them is judged (≤ FEC_WINDOW − FEC_MAX_DATA). */
export const FEC_CHUNK = 64

interface Dec { d: FecDecoder, recovered: number, packets: number, unrecoverable: number, malformed: number }

export class FecReceiver {
  /** Decoders by local (receiver) index (the sessions negotiated with FEC), with the counts already copied to stats. */
  readonly #dec = new Map<number, Dec>()
  readonly #stats: Float64Array
  readonly #kernel: GfMatMul
  /** The pre-open copies of a batch's FEC data messages: one FEC_MAX_SHARD slot per batch entry (allocated at first use). */
  #stage: Uint8Array | null = null
  /** The batch's parity messages (offset, length in the receive memory), judged after the batch's data. */
  readonly #parityAt = new Int32Array(RX_MAX_PACKETS * 2)
  #nParity = 0

  constructor (stats: Float64Array, native: Native) {
    this.#stats = stats
    this.#kernel = kernelOf(native)
  }

  open (localIndex: number): void { this.#dec.set(localIndex, { d: new FecDecoder(localIndex, this.#kernel), recovered: 0, packets: 0, unrecoverable: 0, malformed: 0 }) }

  close (localIndex: number): void { this.#dec.delete(localIndex) }

  /** Does this session use FEC (its data messages are copied before the open and stay off the fast path)? */
  on (localIndex: number): boolean { return this.#dec.has(localIndex) }

  get any (): boolean { return this.#dec.size > 0 }

  /** A copy of batch entry n's sealed bytes (mem[start, start + len), len ≤ FEC_MAX_SHARD), made before its in-place open, for opened(). */
  keep (mem: Uint8Array, start: number, len: number, n: number): Uint8Array {
    const stage = this.#stage ??= new Uint8Array(RX_MAX_PACKETS * FEC_MAX_SHARD)
    const at = n * FEC_MAX_SHARD
    stage.set(mem.subarray(start, start + len), at)
    return stage.subarray(at, at + len)
  }

  /**
   * A parity message (type 8, unwrapped) at mem[start, start + len) of the batch: judged by judgeParity after
   * the batch's data is opened. Parity follows its group at once, so it often shares the batch; judged
   * before that data, it would rebuild messages that did arrive.
   */
  queueParity (start: number, len: number): void {
    this.#parityAt[2 * this.#nParity] = start
    this.#parityAt[2 * this.#nParity + 1] = len
    this.#nParity++
  }

  /** Parity messages queued and not yet judged. */
  get pendingParity (): number { return this.#nParity }

  /** Judge the queued parity messages (in the same receive memory); rebuilt sealed data messages are pushed to out. */
  judgeParity (mem: Uint8Array, out: Uint8Array[]): void {
    const now = Date.now()
    const n = this.#nParity
    this.#nParity = 0
    for (let j = 0; j < n; j++) {
      const at = this.#parityAt[2 * j]!
      for (const r of this.parity(mem.subarray(at, at + this.#parityAt[2 * j + 1]!), now)) out.push(r)
    }
  }

  /** A data message of a FEC session authenticated: its sealed bytes (copied before the open; the decoder copies them again into its ring). Rebuilt messages, usually none. */
  opened (localIndex: number, sealed: Uint8Array, now: number): Uint8Array[] {
    const e = this.#dec.get(localIndex)
    if (e === undefined) return []
    const r = e.d.addData(sealed, now)
    this.#sync(e)
    return r
  }

  /** A parity message (type 8, unwrapped). Rebuilt sealed data messages, to be opened. */
  parity (bytes: Uint8Array, now: number): Uint8Array[] {
    const s = this.#stats
    if (bytes.length < FEC_HEADER_LEN) { s[C.dropFecMalformed]++; return [] }
    const idx = (bytes[4] | (bytes[5] << 8) | (bytes[6] << 16) | (bytes[7] << 24)) >>> 0
    const e = this.#dec.get(idx)
    if (e === undefined) { s[C.dropFecNoSession]++; return [] }
    const r = e.d.addParity(bytes, now)
    this.#sync(e)
    return r
  }

  /** Copy a decoder's counters' growth into the shared stats. */
  #sync (e: Dec): void {
    const c = e.d.counters
    const s = this.#stats
    s[C.fecGroupsRecovered] += c.groupsRecovered - e.recovered
    s[C.fecPacketsRecovered] += c.packetsRecovered - e.packets
    s[C.fecGroupsUnrecoverable] += c.groupsUnrecoverable - e.unrecoverable
    s[C.dropFecMalformed] += c.malformed - e.malformed
    e.recovered = c.groupsRecovered
    e.packets = c.packetsRecovered
    e.unrecoverable = c.groupsUnrecoverable
    e.malformed = c.malformed
  }
}
