/**
 * Outbound pipeline: TUN → seal → UDP. Runs on the outbound worker thread.
 *
 *   1. tunReadSplit (native): the TUN fd has IFF_VNET_HDR with TSO/USO on,
 *      so the kernel hands over TCP/UDP superpackets (IPv4 or IPv6) of up to
 *      64 KiB; each is split into MSS-sized packets (own IP header, TCP
 *      sequence number or UDP length, full checksums) into this worker's packet slots, each at
 *      slot + HEADROOM. (tunReadBatch on a plain TUN fd: one packet a slot.)
 *   2. route (JS, per packet): destination address → peer (IPv4: the exact
 *      tunnel address first, then the longest allowed prefix; IPv6, version
 *      nibble 6, destination at +24: the longest allowed prefix,
 *      route-table.ts); neither IPv4 nor IPv6 → dropNotIp; no route or no
 *      session yet → count, or queue a copy and ask the main thread for a
 *      session (NEED_SESSION, at most once a second per peer). A send key
 *      whose counter reached REKEY_AFTER_MESSAGES asks for a rekey once
 *      (SEND_LIMIT); at REJECT_AFTER_MESSAGES it is wiped and its packets
 *      queue as if there were no session (the fast path leaves both to us).
 *      A packet larger than its path carries (PATH_MTU, one compare) is
 *      dropped and answered with ICMP too-big written back to the TUN
 *      (icmp-too-big.ts; one answer per peer per batch, so a split TSO
 *      superpacket costs one); peers with such a limit stay off the fast path.
 *      --mss-clamp: a TCP SYN's MSS option is lowered to that limit (the TUN
 *      MTU's without one) minus the headers (mss-clamp.ts); the fast path
 *      hands SYNs to this path then (native/tcp-syn.h).
 *   3. frame (JS): write the 16-byte transport header in front of the packet
 *      (type 4, receiver index, counter) and, for a relayed peer, the 8-byte
 *      relay envelope in front of that.
 *   4. aeadSealBatch (native): seal every packet of the batch in place.
 *   5. udpSendBatchGso (native, sendmmsg + UDP_SEGMENT) from the same slots:
 *      consecutive equal-length packets to one peer (a TCP stream's full
 *      segments) leave as one GSO send each, split by the kernel.
 *
 * All stages run in order on one thread, so per-peer packet order is the TUN
 * read order. Nothing is copied except packets queued while a session is set
 * up. FEC peers (fec-hooks.ts): after step 4 each of their sealed data
 * messages goes to the peer's encoder; where a group closes, step 5 sends
 * the batch up to there and the group's parity right behind it; they never
 * take the native fast path (#syncFast), so the encoder sees every data
 * message.
 */
import type { Native } from './native.js'
import { MSG_DATA, MSG_RELAY } from '../wire/messages.js'
import { KEY_LEN, REJECT_AFTER_MESSAGES, REKEY_AFTER_MESSAGES } from '../wire/constants.js'
import { PeerTable, QUEUE_MAX, type WorkerPeer } from './peers.js'
import { statsView } from './stats.js'
import { FastPeers, IntHash, fastConfig, ip6HashKey, sharedFloat64, sharedInt32, sharedUint8 } from './fast-path.js'
import { FecSender } from './fec-hooks.js'
import type { FecConfig } from './fec.js'
import { BATCH, C, HEADROOM, MAX_PACKET, NO_PATH_LIMIT, PEER_FIELDS, P_TX_BYTES, P_TX_PACKETS, RELAY_PATH, SLOT_SIZE, TAG, COUNTERS, type FromWorker, type ToWorker, type WorkerInit } from '../workers/layout.js'
import { buildTooBig, TOO_BIG6_MAX } from './icmp-too-big.js'
import { clampMssCounted } from './mss-clamp.js'


export class Outbound {
  readonly #native: Native
  readonly #init: WorkerInit
  readonly #post: (m: FromWorker) => void
  readonly #now: () => number
  readonly peers: PeerTable
  /** Per-peer FEC encoders and their parity sends (fec-hooks.ts). */
  readonly fec: FecSender
  readonly #mem: Uint8Array
  readonly #view: DataView
  readonly #stats: Float64Array
  /** Send keys, KEY_LEN bytes per peer slot. */
  readonly #keys: Uint8Array
  /** Next send counter per peer slot (shared with the native fast path, like everything below). */
  readonly #counters: Float64Array
  readonly #fastPeers: FastPeers
  /** Message-count limits of a send key (init, default the wire constants). */
  readonly #rekeyAfter: number
  readonly #rejectAfter: number
  /** Slots whose key reached REJECT_AFTER_MESSAGES in the current batch: wiped once the batch is sealed. */
  readonly #retired: number[] = []
  /** Tunnel address and ip6HashKey(IPv6 /128) → slot, for the fast path (the batch path uses peers.byTunnelIp and peers.routes). */
  readonly #routes: IntHash
  // Per-batch scratch, reused (no allocation on the packet path).
  readonly #rdOffsets = new Int32Array(BATCH)
  readonly #rdLens = new Int32Array(BATCH)
  readonly #desc = new Int32Array(BATCH * 4)
  readonly #sendOffsets = new Int32Array(BATCH)
  readonly #sendLens = new Int32Array(BATCH)
  readonly #sendAddrs = new Uint32Array(BATCH * 2)
  readonly #sendSlots = new Int32Array(BATCH)
  readonly #sendFds = new Int32Array(BATCH)
  /** Superpacket buffer and split state (tunVnet only). */
  readonly #sbuf: Uint8Array | null
  readonly #split = sharedInt32(4)
  #splitDropped = 0
  #splitSuper = 0
  /** The largest inner packet a relayed peer's path (the server's) carries (PATH_MTU RELAY_PATH). */
  #relayInner = NO_PATH_LIMIT
  /** Batch number (one per TUN read), for one ICMP too-big per peer per batch. */
  #batchNo = 0
  /** ICMP too-big scratch: 16 bytes of room for the vnet header, then the answer. */
  readonly #icmp = new Uint8Array(16 + TOO_BIG6_MAX)
  readonly #icmpOff = new Int32Array([16])
  readonly #icmpLen = new Int32Array(1)

  constructor (init: WorkerInit, native: Native, post: (m: FromWorker) => void, now: () => number = Date.now) {
    this.#native = native
    this.#init = init
    this.#post = post
    this.#now = now
    this.peers = new PeerTable(init.maxPeers)
    this.#mem = new Uint8Array(init.packetMem)
    this.#view = new DataView(init.packetMem)
    this.#stats = statsView(init)
    this.#keys = sharedUint8(init.maxPeers * KEY_LEN)
    this.#counters = sharedFloat64(init.maxPeers)
    this.#rekeyAfter = init.rekeyAfterMessages ?? REKEY_AFTER_MESSAGES
    this.#rejectAfter = Math.min(init.rejectAfterMessages ?? REJECT_AFTER_MESSAGES, REJECT_AFTER_MESSAGES)
    this.#fastPeers = new FastPeers(init.maxPeers)
    this.#routes = new IntHash(init.maxPeers * 2) // tunnel addresses and IPv6 /128 keys
    for (let i = 0; i < BATCH; i++) this.#rdOffsets[i] = i * SLOT_SIZE + HEADROOM
    this.#sbuf = init.tunVnet ? new Uint8Array(65536 + 64) : null
    this.fec = new FecSender(init.maxPeers, native, init.udpFd, this.#stats, now, (slot) => this.peers.bySlot[slot])
  }

  /** Add or update a peer (PEER). */
  upsertPeer (m: Extract<ToWorker, { code: 'PEER' }>): void {
    const old = this.peers.bySlot[m.slot]
    if (old !== undefined) this.#unroute(old)
    const p = this.peers.upsert(m)
    if (p.tunnelIp !== 0) this.#routes.set(p.tunnelIp, p.slot)
    const ip6 = this.peers.ownIp6(p)
    if (ip6 !== null) this.#routes.set(ip6HashKey(ip6), p.slot)
    this.#syncFast(p)
  }

  /** Drop the fast path's route keys of a peer (those still pointing at its slot). */
  #unroute (p: WorkerPeer): void {
    if (this.#routes.get(p.tunnelIp) === p.slot) this.#routes.delete(p.tunnelIp)
    if (p.ip6 !== null && this.#routes.get(ip6HashKey(p.ip6)) === p.slot) this.#routes.delete(ip6HashKey(p.ip6))
  }

  /** Install a send key: new session for this peer, counter restarts at 0, queued packets are flushed. */
  setSendKey (slot: number, key: Uint8Array, remoteIndex: number, fec: FecConfig | null = null): void {
    const p = this.peers.bySlot[slot]
    if (p === undefined) return
    this.fec.set(slot, fec)
    this.#keys.set(key, slot * KEY_LEN)
    p.sendKeyOff = slot * KEY_LEN
    p.remoteIndex = remoteIndex
    p.rekeyAsked = false
    this.#counters[slot] = 0
    this.#syncFast(p)
    this.#flushQueue(p)
  }

  /**
   * The peer's session expired (or its key reached REJECT_AFTER_MESSAGES):
   * wipe the send key; the peer's packets queue and ask for a new session.
   */
  clearSendKey (slot: number): void {
    const p = this.peers.bySlot[slot]
    if (p === undefined || p.sendKeyOff < 0) return
    p.sendKeyOff = -1
    p.askedAt = -Infinity
    this.fec.set(slot, null)
    this.#syncFast(p)
    this.#wipeKey(slot)
  }

  /** Zero a slot's send key, unless a new one was installed meanwhile. */
  #wipeKey (slot: number): void {
    const p = this.peers.bySlot[slot]
    if (p !== undefined && p.sendKeyOff >= 0) return
    this.#keys.fill(0, slot * KEY_LEN, slot * KEY_LEN + KEY_LEN)
    this.#counters[slot] = 0
    this.#native.aeadForget()
  }

  removePeer (slot: number): void {
    const p = this.peers.remove(slot)
    if (p === undefined) return
    this.#keys.fill(0, slot * KEY_LEN, slot * KEY_LEN + KEY_LEN)
    this.#native.aeadForget()
    this.#unroute(p)
    this.fec.set(slot, null)
    this.#fastPeers.clear(slot)
    this.#counters[slot] = 0
  }

  #syncFast (p: WorkerPeer): void {
    // A FEC session's packets must all reach the encoder, and a path-limited peer's must all be size-checked:
    // the fast path treats such a peer as keyless.
    const limited = (p.relayVia ? this.#relayInner : p.pathInner) !== NO_PATH_LIMIT
    this.#fastPeers.set(p, p.sendKeyOff >= 0 && !this.fec.on(p.slot) && !limited, p.remoteIndex, this.peers.ownIp6(p))
  }

  /** PATH_MTU: the largest inner packet the peer's path (RELAY_PATH: every relayed peer's) carries. */
  setPathMtu (slot: number, inner: number): void {
    if (slot === RELAY_PATH) {
      this.#relayInner = inner
      for (const p of this.peers.bySlot) if (p !== undefined && p.relayVia) this.#syncFast(p)
      return
    }
    const p = this.peers.bySlot[slot]
    if (p === undefined) return
    p.pathInner = inner
    this.#syncFast(p)
  }

  /** Drop a packet too big for its path; answer its sender with ICMP too-big (once per peer per batch). */
  #tooBig (p: WorkerPeer, off: number, len: number, limit: number): void {
    this.#stats[C.dropPathMtu]++
    if (p.tooBigBatch === this.#batchNo) return
    p.tooBigBatch = this.#batchNo
    const n = buildTooBig(this.#mem, off, len, limit, this.#icmp, 16)
    if (n === 0) return
    this.#icmpLen[0] = n
    const w = this.#init.tunVnet
      ? this.#native.tunWriteBatchVnet(this.#init.tunFd, this.#icmp, this.#icmpOff, this.#icmpLen, 1)
      : this.#native.tunWriteBatch(this.#init.tunFd, this.#icmp, this.#icmpOff, this.#icmpLen, 1)
    if (w === 1) this.#stats[C.icmpTooBigSent]++
  }

  /**
   * The arguments of native fastPathOut after the poll handle, or null when
   * the TUN fd has no vnet header (the fast path reads vnet packets only).
   */
  fastPathArgs (): [Float64Array, Uint8Array, Int32Array, Int32Array, Float64Array, Uint8Array, Int32Array, Float64Array] | null {
    if (this.#sbuf === null) return null
    const cfg = fastConfig(this.#init, { routeBits: this.#routes.bits })
    return [cfg, this.#sbuf, this.#split, this.#fastPeers.words, this.#counters, this.#keys, this.#routes.table, this.#stats]
  }

  /** TUN readable: drain it in batches. */
  onReadable (): void {
    const cap = Math.min(MAX_PACKET, this.#init.mtu)
    for (;;) {
      const n = this.#sbuf !== null
        ? this.#readSplit(cap)
        : this.#native.tunReadBatch(this.#init.tunFd, this.#mem, this.#rdOffsets, this.#rdLens, BATCH, cap)
      if (n === 0) return
      this.#batchNo++
      let k = 0
      for (let i = 0; i < n; i++) {
        if (this.#frame(this.#rdOffsets[i], this.#rdLens[i], k)) k++
      }
      this.#sealAndSend(k)
      while (this.#retired.length > 0) this.#wipeKey(this.#retired.pop()!)
      if (n < BATCH) return
    }
  }

  #readSplit (cap: number): number {
    const st = this.#split
    const n = this.#native.tunReadSplit(this.#init.tunFd, this.#sbuf!, this.#mem, this.#rdOffsets, this.#rdLens, BATCH, cap, st)
    if (st[2] !== this.#splitDropped) { this.#stats[C.dropTooBig] += st[2] - this.#splitDropped; this.#splitDropped = st[2] }
    if (st[3] !== this.#splitSuper) { this.#stats[C.tunRxSuperpackets] += st[3] - this.#splitSuper; this.#splitSuper = st[3] }
    return n
  }

  /**
   * Route and frame the packet at `off` (inner packet start) as batch entry k.
   * Returns false when the packet was dropped or queued.
   */
  #frame (off: number, len: number, k: number): boolean {
    const s = this.#stats
    s[C.tunRxPackets]++
    s[C.tunRxBytes] += len
    const mem = this.#mem
    const ver = mem[off] >> 4
    let p: WorkerPeer | undefined
    if (ver === 4 && len >= 20) p = this.peers.route4(this.#view.getUint32(off + 16))
    else if (ver === 6 && len >= 40) {
      const slot = this.peers.routes.lookup6(mem, off + 24)
      p = slot < 0 ? undefined : this.peers.bySlot[slot]
    } else { s[C.dropNotIp]++; return false }
    if (p === undefined) { s[C.dropNoRoute]++; return false }
    const limit = p.relayVia ? this.#relayInner : p.pathInner
    if (len > limit) { this.#tooBig(p, off, len, limit); return false }
    if (this.#init.mssClamp === true) clampMssCounted(s, mem, off, len, limit, this.#init.mtu)
    if (p.sendKeyOff < 0) { this.#enqueue(p, off, len); return false }
    if (this.#counters[p.slot] >= this.#rekeyAfter && !this.#underLimits(p)) { this.#enqueue(p, off, len); return false }
    this.#frameFor(p, off, len, k)
    return true
  }

  /**
   * Message-count limits (PROTOCOL §9.2), checked once the counter reached
   * REKEY_AFTER_MESSAGES: ask the control plane for a new session once
   * (SEND_LIMIT); at REJECT_AFTER_MESSAGES retire the key (false: the
   * packet queues for the next session).
   */
  #underLimits (p: WorkerPeer): boolean {
    if (this.#counters[p.slot] >= this.#rejectAfter) {
      this.#stats[C.sendKeyExhausted]++
      // Earlier packets of this batch are still to be sealed with the key: it is wiped after the batch.
      p.sendKeyOff = -1
      p.askedAt = -Infinity
      this.#syncFast(p)
      this.#retired.push(p.slot)
      return false
    }
    if (!p.rekeyAsked) {
      p.rekeyAsked = true
      this.#stats[C.rekeyOnMessages]++
      this.#post({ code: 'SEND_LIMIT', slot: p.slot })
    }
    return true
  }

  #frameFor (p: WorkerPeer, off: number, len: number, k: number): void {
    const view = this.#view
    const hdr = off - 16
    view.setUint32(hdr, MSG_DATA, true) // type 4, three reserved zero bytes
    view.setUint32(hdr + 4, p.remoteIndex, true)
    const c = this.#counters[p.slot]
    this.#counters[p.slot] = c + 1
    view.setUint32(hdr + 8, c >>> 0, true)
    view.setUint32(hdr + 12, Math.floor(c / 0x1_0000_0000), true)
    let start = hdr
    if (p.relayVia) {
      start = hdr - 8
      view.setUint32(start, MSG_RELAY, true)
      view.setUint32(start + 4, p.peerId, true)
    }
    const d = this.#desc
    d[k * 4] = hdr
    d[k * 4 + 1] = 16
    d[k * 4 + 2] = len
    d[k * 4 + 3] = p.sendKeyOff
    this.#sendOffsets[k] = start
    this.#sendLens[k] = hdr - start + 16 + len + TAG
    this.#sendAddrs[k * 2] = p.epIp
    this.#sendAddrs[k * 2 + 1] = p.epPort
    this.#sendSlots[k] = p.slot
    this.#sendFds[k] = p.fd < 0 ? this.#init.udpFd : p.fd
  }

  #sealAndSend (k: number): void {
    if (k === 0) return
    this.#native.aeadSealBatch(this.#mem, this.#desc, k, this.#keys)
    let sent = 0
    if (this.fec.any) sent = this.#sendWithFec(k)
    else {
      // One GSO-capable send per run of packets that leave from the same socket
      // (the main socket, or a peer's adopted birthday-search socket).
      const fds = this.#sendFds
      for (let i = 0; i < k;) {
        let j = i + 1
        while (j < k && fds[j] === fds[i]) j++
        sent += i === 0 && j === k
          ? this.#native.udpSendBatchGso(fds[0], this.#mem, this.#sendOffsets, this.#sendLens, this.#sendAddrs, k)
          : this.#native.udpSendBatchGso(fds[i], this.#mem, this.#sendOffsets.subarray(i), this.#sendLens.subarray(i), this.#sendAddrs.subarray(2 * i), j - i)
        i = j
      }
    }
    const s = this.#stats
    const base = COUNTERS.length
    for (let i = 0; i < sent; i++) {
      const len = this.#sendLens[i]
      s[C.udpTxPackets]++
      s[C.udpTxBytes] += len
      const ps = base + this.#sendSlots[i] * PEER_FIELDS
      s[ps + P_TX_PACKETS]++
      s[ps + P_TX_BYTES] += len
    }
    if (sent < k) s[C.dropUdpSend] += k - sent
  }

  /** Send entries [from, to) of the batch (FEC batches), one GSO-capable send per run of one socket, as above. Returns the number sent. */
  #send (from: number, to: number): number {
    const fds = this.#sendFds
    let sent = 0
    for (let i = from; i < to;) {
      let j = i + 1
      while (j < to && fds[j] === fds[i]) j++
      sent += i === 0
        ? this.#native.udpSendBatchGso(fds[0], this.#mem, this.#sendOffsets, this.#sendLens, this.#sendAddrs, j)
        : this.#native.udpSendBatchGso(fds[i], this.#mem, this.#sendOffsets.subarray(i), this.#sendLens.subarray(i), this.#sendAddrs.subarray(2 * i), j - i)
      i = j
    }
    return sent
  }

  /**
   * The batch with FEC peers in it: each FEC peer's sealed data message goes to its encoder, and where a
   * group closes, the data up to there leaves first and the group's parity right behind it, so a receiver
   * that lost one of the group rebuilds it a group's length late, not a batch's (TCP reads a late packet
   * as a loss). Returns the number of data messages sent.
   */
  #sendWithFec (k: number): number {
    const now = this.#now()
    let from = 0
    let sent = 0
    for (let i = 0; i < k; i++) {
      const slot = this.#sendSlots[i]
      if (!this.fec.on(slot)) continue
      const hdr = this.#desc[i * 4]
      if (this.fec.sealed(this.peers.bySlot[slot]!, this.#mem.subarray(hdr, hdr + 16 + this.#desc[i * 4 + 2] + TAG), now)) {
        sent += this.#send(from, i + 1)
        from = i + 1
        this.fec.endBatch()
      }
    }
    return sent + this.#send(from, k)
  }

  #enqueue (p: WorkerPeer, off: number, len: number): void {
    const s = this.#stats
    if (p.queue.length >= QUEUE_MAX) {
      // Drop the oldest: the newest packets are the ones a retrying sender cares about.
      p.queue.shift()
      s[C.dropQueueFull]++
    }
    p.queue.push(this.#mem.slice(off, off + len))
    const now = this.#now()
    if (now - p.askedAt >= 1000) {
      p.askedAt = now
      this.#post({ code: 'NEED_SESSION', slot: p.slot })
    }
  }

  /** Send the packets cached while the session was set up, through the same frame/seal/send path. */
  #flushQueue (p: WorkerPeer): void {
    const q = p.queue
    p.queue = []
    let k = 0
    for (const pkt of q) {
      const off = k * SLOT_SIZE + HEADROOM
      this.#mem.set(pkt, off)
      this.#frameFor(p, off, pkt.length, k)
      k++
      if (k === BATCH) { this.#sealAndSend(k); k = 0 }
    }
    this.#sealAndSend(k)
  }
}
