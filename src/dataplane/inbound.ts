/**
 * Inbound pipeline: UDP → open → TUN (and, on the server, UDP → UDP relay).
 * Runs on the inbound worker thread.
 *
 *   1. udpRecvGro (native, recvmmsg): up to RX_BUFS datagrams straight into
 *      this pipeline's packet memory, with their source addresses. The
 *      socket has UDP_GRO on, so a sender's GSO batch (or a run the kernel's
 *      GRO coalesced) arrives as ONE datagram of same-size packets: one skb
 *      through the receiving stack instead of dozens; the addon splits it in
 *      place into its packets (no copy).
 *   2. classify (JS, per datagram) by the type byte:
 *      - 4 data: find the session by receiver index → open list;
 *      - 5 relay: an inner message not of type 1-4 is dropped
 *        (dropRelayInnerType, PROTOCOL §4.4); server with --client-isolation:
 *        dropped (dropIsolated); server: rewrite the envelope's
 *        peerId from destination to source and queue it for forwarding,
 *        unopened (the server cannot read client↔client traffic); client:
 *        unwrap, data → open list, anything else → control ring;
 *      - 1, 2, 3, 6, 7 (handshakes, control, reject, cookie reply) → control
 *        ring, to the main thread, copied (rare); on the server a direct
 *        HandshakeInit first passes the InitGuard (init-guard.ts: mac1,
 *        cookie under load, per-source and global rates), which drops it
 *        (counted) or answers it with a CookieReply instead;
 *      - anything else: counted and dropped.
 *   3. aeadOpenBatch (native): open the batch in place.
 *   4. accept (JS): replay window (after authentication), then the inner
 *      packet (IPv4, or IPv6: source at +8, destination at +24; anything
 *      else dropNotIp) must come from the peer (its tunnel address, or a
 *      prefix whose longest match is that peer's slot: its IPv6 /128, its
 *      approved routes; route-table.ts) and be addressed to us (our tunnel
 *      address or a prefix of the last LOCAL), so a key holder cannot inject
 *      packets as someone else (dropSpoofedSource) nor send us traffic for
 *      elsewhere (dropNotForUs).
 *      --mss-clamp: a TCP SYN's MSS option is lowered to the peer's path
 *      (PATH_MTU, kept here too; mss-clamp.ts), as outbound.ts does.
 *   5. tunWriteBatchGro (native) from the same slots: runs of in-sequence
 *      segments of one TCP flow are coalesced into one TSO superpacket, runs
 *      of equal-size datagrams of one UDP flow into one USO superpacket
 *      (IFF_VNET_HDR; writev, no copy), everything else is written as is; udpSendBatchGso for relays
 *      (runs of equal-length datagrams to one client leave as one GSO send).
 *
 * FEC sessions (fec-hooks.ts): their data messages are copied before step 3
 * and handed to the session's decoder once authenticated; parity messages
 * (type 8, direct or relayed) go to the decoder too, after the batch's data
 * (parity follows its group at once, often in the same batch: judged
 * before that data it would rebuild messages that did arrive). Messages it rebuilds
 * run steps 3-5 after the batch, from a scratch buffer, like received
 * ones. FEC sessions are left out of the fast path's session hash.
 *
 * One thread, one pass per batch: per-peer order is the arrival order.
 */
import type { Native } from './native.js'
import { MSG_CONTROL, MSG_DATA, MSG_HANDSHAKE_INIT, MSG_HANDSHAKE_RESP, MSG_REJECT, MSG_RELAY } from '../wire/messages.js'
import { KEY_LEN } from '../wire/constants.js'
import { PeerTable, endpointKey, type RecvSession, type WorkerPeer } from './peers.js'
import { ReplayWindow } from '../crypto/replay.js'
import { RouteTable } from './route-table.js'
import { SpscRing } from './ring.js'
import { InitGuard } from './init-guard.js'
import { FEC_CHUNK, FecReceiver } from './fec-hooks.js'
import { FEC_MAX_SHARD, MSG_FEC } from '../wire/fec.js'
import { CookieChecker } from '../crypto/cookie.js'
import { COOKIE_REPLY_LEN, MSG_COOKIE_REPLY } from '../wire/cookie.js'
import { clearPeerCounters, statsView } from './stats.js'
import { clampMssCounted } from './mss-clamp.js'

/** Fake-TCP receive slots (4 KiB: a segment of a 1500-byte path with room) in the inbound packet memory. */
const FT_BUF_SIZE = 4096
const FT_BUFS = Math.min(256, (RX_BUFS * RX_BUF_SIZE) / FT_BUF_SIZE)
import { FastPeers, FR_WORDS, FS_LOCAL_INDEX, FS_SLOT, FS_WORDS, IntHash, endpointHashKey, fastConfig, sharedFloat64, sharedInt32, sharedUint32, sharedUint8 } from './fast-path.js'
import {
  C, COUNTERS, CTRL_KIND_PACKET, CTRL_KIND_RELAYED, CTRL_KIND_UNKNOWN_INDEX, CTRL_KIND_UNKNOWN_RELAY_SOURCE,
  CTRL_RING_SLOTS, CTRL_SLOT_SIZE, META_IP, META_KIND, META_LEN, META_PORT, META_SOCK, META_VIA, META_WORDS,
  NO_PATH_LIMIT, PEER_FIELDS, P_LAST_RX, P_RX_BYTES, P_RX_PACKETS, RELAY_PATH, RX_BUFS, RX_BUF_SIZE, RX_MAX_PACKETS, TAG,
  type FromWorker, type ToWorker, type WorkerInit
} from '../workers/layout.js'

/** Smallest data message: header + tag + a 20-byte IPv4 header. */
const MIN_DATA = 16 + TAG + 20
/** Counters at or above 2^53 cannot be exact JS numbers; no session lives that long (REJECT_AFTER_MESSAGES). */
const MAX_COUNTER_HIGH = 0x1f_ffff
/** PROTOCOL §4.4: an envelope carries a handshake, control, data or FEC parity message (types 1-4, 8), never a Relay (5) or a Reject (6). */
function relayableInner (type: number): boolean {
  return (type >= MSG_HANDSHAKE_INIT && type <= MSG_DATA) || type === MSG_FEC
}
/** Scratch room per rebuilt data message (a FEC shard, plus room in front). */
const FEC_SLOT = FEC_MAX_SHARD + 64

const RELAY_QUEUED = 1
const RELAY_DROPPED = 2
const RELAY_UNKNOWN_SOURCE = 3

export class Inbound {
  readonly #native: Native
  readonly #init: WorkerInit
  readonly #post: (m: FromWorker) => void
  readonly peers: PeerTable
  /** Our own inner addresses beyond tunnelIp (the last LOCAL: our IPv6 /128, routes we serve), slot 0 each. */
  readonly #local = new RouteTable()
  readonly #sessions = new Map<number, RecvSession>()
  /** --mss-clamp: the relayed peers' inner limit (PATH_MTU RELAY_PATH); direct peers keep theirs in pathInner. */
  #relayInner = NO_PATH_LIMIT
  /** Receive keys, KEY_LEN bytes per session; free offsets in #freeKeys. */
  readonly #keys: Uint8Array
  readonly #freeKeys: number[] = []
  // Tables the native fast path reads (fast-path.ts); a session's number is its keyOff / KEY_LEN.
  readonly #maxSessions: number
  readonly #sessionHash: IntHash
  readonly #sess: Int32Array
  readonly #rings: Uint32Array
  readonly #lasts: Float64Array
  readonly #fastPeers: FastPeers
  /** Server relay lookups for the fast path: endpoint → slot (direct peers), peer id → slot. */
  readonly #epHash: IntHash
  readonly #idHash: IntHash
  readonly #mem: Uint8Array
  readonly #view: DataView
  readonly #stats: Float64Array
  readonly #ring: SpscRing | null
  readonly #isServer: boolean
  /** Server: gates HandshakeInits before the control ring (null on clients). */
  readonly #guard: InitGuard | null
  readonly #reply = new Uint8Array(COOKIE_REPLY_LEN)
  // Per-batch scratch (no allocation on the packet path), one entry per packet of a receive.
  readonly #bufOffsets = Int32Array.from({ length: RX_BUFS }, (_, i) => i * RX_BUF_SIZE)
  readonly #rxInfo = new Int32Array(4)
  #rxCoalesced = 0
  #rxOverflow = 0
  readonly #offsets = new Int32Array(RX_MAX_PACKETS)
  readonly #lens = new Int32Array(RX_MAX_PACKETS)
  readonly #addrs = new Uint32Array(RX_MAX_PACKETS * 2)
  readonly #desc = new Int32Array(RX_MAX_PACKETS * 4)
  readonly #results = new Int32Array(RX_MAX_PACKETS)
  readonly #openSess: (RecvSession | undefined)[] = new Array(RX_MAX_PACKETS)
  readonly #openCounter = new Float64Array(RX_MAX_PACKETS)
  readonly #openVia = new Int32Array(RX_MAX_PACKETS)
  readonly #openSrc = new Int32Array(RX_MAX_PACKETS)
  readonly #tunOffsets = new Int32Array(RX_MAX_PACKETS)
  readonly #tunLens = new Int32Array(RX_MAX_PACKETS)
  readonly #fwdOffsets = new Int32Array(RX_MAX_PACKETS)
  readonly #fwdLens = new Int32Array(RX_MAX_PACKETS)
  readonly #fwdAddrs = new Uint32Array(RX_MAX_PACKETS * 2)
  /** FEC decoders of the sessions that negotiated it; the sealed copies of the batch's FEC data messages (null: not FEC). */
  readonly #fec: FecReceiver
  readonly #openCopy: (Uint8Array | null)[] = new Array(RX_MAX_PACKETS).fill(null)
  /** Rebuilt sealed data messages waiting for their open (after the batch), and the scratch memory they are opened in. */
  #rebuilt: Uint8Array[] = []
  #fecMem: Uint8Array | null = null

  constructor (init: WorkerInit, native: Native, post: (m: FromWorker) => void) {
    this.#native = native
    this.#init = init
    this.#post = post
    this.#isServer = init.mode === 'server'
    this.peers = new PeerTable(init.maxPeers)
    const maxSessions = init.maxPeers * 3 // current, previous and next per peer
    this.#keys = sharedUint8(maxSessions * KEY_LEN)
    this.#maxSessions = maxSessions
    this.#sessionHash = new IntHash(maxSessions)
    this.#sess = sharedInt32(maxSessions * FS_WORDS)
    this.#rings = sharedUint32(maxSessions * FR_WORDS)
    this.#lasts = sharedFloat64(maxSessions)
    this.#fastPeers = new FastPeers(init.maxPeers)
    this.#epHash = new IntHash(maxSessions)
    this.#idHash = new IntHash(maxSessions)
    for (let i = maxSessions - 1; i >= 0; i--) this.#freeKeys.push(i * KEY_LEN)
    this.#mem = new Uint8Array(init.packetMem)
    this.#view = new DataView(init.packetMem)
    this.#stats = statsView(init)
    this.#ring = init.ctrlRing ? new SpscRing(init.ctrlRing, CTRL_RING_SLOTS, CTRL_SLOT_SIZE) : null
    this.#guard = this.#isServer && init.macKeys != null
      ? new InitGuard(new CookieChecker(init.macKeys, (b) => { crypto.getRandomValues(b) }), performance.now())
      : null
    this.#fec = new FecReceiver(this.#stats, native)
    if (init.packetMem.byteLength < RX_BUFS * RX_BUF_SIZE) throw new RangeError(`inbound packet memory must be at least ${RX_BUFS * RX_BUF_SIZE} bytes`)
  }

  handle (m: ToWorker): void {
    switch (m.code) {
      case 'PEER': {
        const old = this.peers.bySlot[m.slot]
        if (old === undefined) clearPeerCounters(this.#stats, m.slot)
        else this.#unindexFast(old)
        this.#indexFast(this.peers.upsert(m))
        break
      }
      case 'PATH_MTU': { // kept for --mss-clamp (a peer's SYNs are clamped to its path)
        if (m.slot === RELAY_PATH) this.#relayInner = m.inner
        else { const p = this.peers.bySlot[m.slot]; if (p !== undefined) p.pathInner = m.inner }
        break
      }
      case 'PEER_REMOVE': {
        const gone = this.peers.remove(m.slot)
        if (gone !== undefined) this.#unindexFast(gone)
        this.#fastPeers.clear(m.slot)
        for (const s of [...this.#sessions.values()]) if (s.slot === m.slot) this.#dropSession(s.localIndex)
        break
      }
      case 'RECV_KEY': {
        this.#dropSession(m.localIndex)
        const keyOff = this.#freeKeys.pop()
        if (keyOff === undefined) return // table full: the handshake will be retried
        this.#keys.set(m.key, keyOff)
        const sn = keyOff / KEY_LEN
        const window = new ReplayWindow(this.#rings.subarray(sn * FR_WORDS, (sn + 1) * FR_WORDS), this.#lasts, sn)
        window.reset()
        this.#sess[sn * FS_WORDS + FS_SLOT] = m.slot
        this.#sess[sn * FS_WORDS + FS_LOCAL_INDEX] = m.localIndex | 0
        this.#sessions.set(m.localIndex, { localIndex: m.localIndex, slot: m.slot, keyOff, window })
        // A FEC session's data must reach its decoder: the fast path does not know it.
        if (m.fec === true) this.#fec.open(m.localIndex)
        else this.#sessionHash.set(m.localIndex >>> 0, sn)
        break
      }
      case 'DROP_INDEX': this.#dropSession(m.localIndex); break
      case 'LOCAL':
        this.#local.set(0, m.prefixes)
        this.#fastPeers.setSelf6(m.prefixes.find((x) => x.family === 6 && x.len === 128)?.addr ?? null)
        break
      default: break
    }
  }

  #dropSession (localIndex: number): void {
    const s = this.#sessions.get(localIndex)
    if (s === undefined) return
    this.#sessions.delete(localIndex)
    this.#sessionHash.delete(localIndex >>> 0)
    this.#fec.close(localIndex)
    this.#keys.fill(0, s.keyOff, s.keyOff + KEY_LEN)
    this.#native.aeadForget() // and the addon's cached copy of the last key opened
    this.#freeKeys.push(s.keyOff)
  }

  /** Write a peer's record and its relay lookups for the fast path (as PeerTable indexes byEndpoint and byPeerId). */
  #indexFast (p: WorkerPeer): void {
    this.#fastPeers.set(p, false, 0, this.peers.ownIp6(p))
    if (!p.relayVia) this.#epHash.set(endpointHashKey(p.epIp, p.epPort), p.slot)
    // --client-isolation: no peer-id lookups, so the addon's relay finds no destination and leaves every envelope to #relay.
    if (p.peerId !== 0 && this.#init.clientIsolation !== true) this.#idHash.set(p.peerId >>> 0, p.slot)
  }

  /** Drop a peer's relay lookups (those still pointing at its slot) before it changes or goes. */
  #unindexFast (p: WorkerPeer): void {
    const ep = endpointHashKey(p.epIp, p.epPort)
    if (this.#epHash.get(ep) === p.slot) this.#epHash.delete(ep)
    if (this.#idHash.get(p.peerId >>> 0) === p.slot) this.#idHash.delete(p.peerId >>> 0)
  }

  /** The arguments of native fastPathIn after the poll handle, or null when the TUN fd has no vnet header. */
  fastPathArgs (): [Float64Array, Int32Array, Int32Array, Int32Array, Uint32Array, Float64Array, Uint8Array, Float64Array, Int32Array, Int32Array] | null {
    if (!this.#init.tunVnet) return null
    const cfg = fastConfig(this.#init, { sessBits: this.#sessionHash.bits, maxSessions: this.#maxSessions })
    return [cfg, this.#fastPeers.words, this.#sessionHash.table, this.#sess, this.#rings, this.#lasts, this.#keys, this.#stats, this.#epHash.table, this.#idHash.table]
  }

  /** The socket of the batch being processed: 0 main, else a probe socket id (tagged on control packets). */
  #sock = 0

  /**
   * UDP readable: drain the socket in batches. `fd`/`sock`: a probe socket
   * that won a birthday search (client; data and probes of one peer arrive
   * there, processed exactly like the main socket's).
   */
  onReadable (fd: number = this.#init.udpFd, sock = 0, fakeTcp = false): void {
    this.#sock = sock
    if (fakeTcp) { this.#onFakeTcp(fd); return }
    const info = this.#rxInfo
    for (;;) {
      const n = this.#native.udpRecvGro(fd, this.#mem, this.#bufOffsets, RX_BUFS, RX_BUF_SIZE, this.#offsets, this.#lens, this.#addrs, RX_MAX_PACKETS, info)
      if (info[1] !== this.#rxCoalesced) { this.#stats[C.udpRxCoalesced] += info[1] - this.#rxCoalesced; this.#rxCoalesced = info[1] }
      if (info[2] !== this.#rxOverflow) { this.#stats[C.dropRxOverflow] += info[2] - this.#rxOverflow; this.#rxOverflow = info[2] }
      if (n > 0) this.#processBatch(n)
      if (info[0] < RX_BUFS) return
    }
  }

  /** ftcpRecv's info words: [segments received by the call, 0, malformed (cumulative), of no known flow (cumulative)]. */
  readonly #ftInfo = new Int32Array(4)
  /** Fake TCP has no GRO (a segment per skb): the same memory as FT_BUFS slots of FT_BUF_SIZE, so one recvmmsg takes 256 segments. */
  readonly #ftBufOffsets = Int32Array.from({ length: FT_BUFS }, (_, i) => i * FT_BUF_SIZE)

  /** The fake-TCP data socket: segments into the same slots, each payload a datagram from its flow's handle (native/faketcp.c). */
  #onFakeTcp (fd: number): void {
    const info = this.#ftInfo
    for (;;) {
      const malformed = info[2]!
      const unknown = info[3]!
      const n = this.#native.ftcpRecv(fd, this.#mem, this.#ftBufOffsets, FT_BUFS, FT_BUF_SIZE, this.#offsets, this.#lens, this.#addrs, RX_MAX_PACKETS, info)
      this.#stats[C.dropMalformed] += info[2]! - malformed
      this.#stats[C.dropFaketcpUnknownFlow] += info[3]! - unknown
      if (n > 0) this.#processBatch(n)
      if (info[0]! < FT_BUFS) return
    }
  }

  #processBatch (n: number): void {
    const s = this.#stats
    const mem = this.#mem
    const view = this.#view
    let nOpen = 0
    let nFwd = 0
    let nCtrl = 0
    for (let i = 0; i < n; i++) {
      const off = this.#offsets[i]
      const len = this.#lens[i]
      const ip = this.#addrs[i * 2]
      const port = this.#addrs[i * 2 + 1]
      s[C.udpRxPackets]++
      if (len <= 0) { s[C.dropMalformed]++; continue }
      s[C.udpRxBytes] += len
      let start = off
      let mlen = len
      let via = -1
      let type = mem[off]
      if (type === MSG_RELAY) {
        if (len < 8 + 8) { s[C.dropMalformed]++; continue }
        if (this.#isServer) {
          const r = this.#relay(off, len, ip, port, nFwd)
          if (r === RELAY_QUEUED) nFwd++
          else if (r === RELAY_UNKNOWN_SOURCE && this.#toControl(CTRL_KIND_UNKNOWN_RELAY_SOURCE, off, 8, ip, port, 0, nCtrl)) nCtrl++
          continue
        }
        // Client: the server tells us who sent it; the session proves it.
        via = view.getUint32(off + 4, true)
        start = off + 8
        mlen = len - 8
        type = mem[start]
        // §4.4: only types 1-4 travel in an envelope; a relayed Relay or Reject (forged by a member) is dropped here.
        if (!relayableInner(type)) { s[C.dropRelayInnerType]++; continue }
      }
      if (type === MSG_DATA) {
        if (mlen < MIN_DATA) { s[C.dropMalformed]++; continue }
        if (nOpen === FEC_CHUNK && this.#fec.pendingParity > 0) {
          // Parity waits for its batch's data, but a decoder keeps only FEC_WINDOW data messages: open in chunks.
          this.#openAndDeliver(nOpen, mem, view)
          this.#fec.judgeParity(mem, this.#rebuilt)
          nOpen = 0
        }
        const idx = view.getUint32(start + 4, true)
        const sess = this.#sessions.get(idx)
        if (sess === undefined) {
          s[C.dropUnknownIndex]++
          if (this.#toControl(CTRL_KIND_UNKNOWN_INDEX, start, 16, ip, port, via < 0 ? 0 : via, nCtrl)) nCtrl++
          continue
        }
        const hi = view.getUint32(start + 12, true)
        if (hi > MAX_COUNTER_HIGH) { s[C.dropReplay]++; continue }
        const d = this.#desc
        d[nOpen * 4] = start
        d[nOpen * 4 + 1] = 16
        d[nOpen * 4 + 2] = mlen - 16
        d[nOpen * 4 + 3] = sess.keyOff
        this.#openSess[nOpen] = sess
        this.#openCounter[nOpen] = hi * 0x1_0000_0000 + view.getUint32(start + 8, true)
        this.#openVia[nOpen] = via
        this.#openSrc[nOpen] = i
        // FEC: keep the sealed bytes (the open is in place) for the decoder.
        this.#openCopy[nOpen] = this.#fec.any && this.#fec.on(idx) && mlen <= FEC_MAX_SHARD ? this.#fec.keep(mem, start, mlen, nOpen) : null
        nOpen++
      } else if (type === MSG_FEC) {
        this.#fec.queueParity(start, mlen) // judged after the batch's data (fec-hooks.ts)
      } else if (type === MSG_HANDSHAKE_INIT && via < 0 && this.#guard !== null) {
        if (this.#gate(start, mlen, ip, port, nCtrl) && this.#toControl(CTRL_KIND_PACKET, start, mlen, ip, port, 0, nCtrl)) nCtrl++
      } else if (type === MSG_HANDSHAKE_INIT || type === MSG_HANDSHAKE_RESP || type === MSG_CONTROL || type === MSG_REJECT || type === MSG_COOKIE_REPLY) {
        if (this.#toControl(via < 0 ? CTRL_KIND_PACKET : CTRL_KIND_RELAYED, start, mlen, ip, port, via < 0 ? 0 : via, nCtrl)) nCtrl++
      } else {
        s[C.dropUnknownType]++
      }
    }
    if (nCtrl > 0 && this.#ring!.publish(nCtrl)) this.#post({ code: 'CTRL' })
    if (nOpen > 0) this.#openAndDeliver(nOpen, mem, view)
    if (this.#fec.pendingParity > 0) this.#fec.judgeParity(mem, this.#rebuilt)
    if (this.#rebuilt.length > 0) this.#openRebuilt()
    if (nFwd > 0) {
      const sent = this.#native.udpSendBatchGso(this.#init.udpFd, mem, this.#fwdOffsets, this.#fwdLens, this.#fwdAddrs, nFwd)
      for (let i = 0; i < sent; i++) {
        s[C.relayedPackets]++
        s[C.relayedBytes] += this.#fwdLens[i]
        s[C.udpTxPackets]++
        s[C.udpTxBytes] += this.#fwdLens[i]
      }
      if (sent < nFwd) s[C.dropUdpSend] += nFwd - sent
    }
  }

  /** Server: queue a relay envelope for forwarding as entry k. */
  #relay (off: number, len: number, ip: number, port: number, k: number): number {
    const s = this.#stats
    const src = this.peers.byEndpoint.get(endpointKey(ip, port))
    if (src === undefined) { s[C.dropRelayUnknownSource]++; return RELAY_UNKNOWN_SOURCE }
    if (!relayableInner(this.#mem[off + 8]!)) { s[C.dropRelayInnerType]++; return RELAY_DROPPED }
    if (this.#init.clientIsolation === true) { s[C.dropIsolated]++; return RELAY_DROPPED }
    const view = this.#view
    const dst = this.peers.byPeerId.get(view.getUint32(off + 4, true))
    if (dst === undefined || dst === src) { s[C.dropRelayUnknownPeer]++; return RELAY_DROPPED }
    view.setUint32(off + 4, src.peerId, true)
    this.#fwdOffsets[k] = off
    this.#fwdLens[k] = len
    this.#fwdAddrs[k * 2] = dst.epIp
    this.#fwdAddrs[k * 2 + 1] = dst.epPort
    return RELAY_QUEUED
  }

  /** Open the data messages FEC rebuilt, from a scratch buffer, through the same checks as received ones. */
  #openRebuilt (): void {
    const list = this.#rebuilt
    this.#rebuilt = []
    const mem = this.#fecMem ??= new Uint8Array(RX_MAX_PACKETS * FEC_SLOT)
    const view = new DataView(mem.buffer)
    let n = 0
    for (const m of list) {
      if (n === RX_MAX_PACKETS) { this.#openAndDeliver(n, mem, view); n = 0 }
      const start = n * FEC_SLOT + 64
      mem.set(m, start)
      const sess = this.#sessions.get(view.getUint32(start + 4, true))
      const hi = view.getUint32(start + 12, true)
      if (sess === undefined || m.length < MIN_DATA || hi > MAX_COUNTER_HIGH) { this.#stats[C.dropAuthFailed]++; continue }
      const d = this.#desc
      d[n * 4] = start
      d[n * 4 + 1] = 16
      d[n * 4 + 2] = m.length - 16
      d[n * 4 + 3] = sess.keyOff
      this.#openSess[n] = sess
      this.#openCounter[n] = hi * 0x1_0000_0000 + view.getUint32(start + 8, true)
      this.#openVia[n] = -1
      this.#openSrc[n] = 0
      this.#openCopy[n] = null
      n++
    }
    if (n > 0) this.#openAndDeliver(n, mem, view)
  }

  #openAndDeliver (nOpen: number, mem: Uint8Array, view: DataView): void {
    const s = this.#stats
    this.#native.aeadOpenBatch(mem, this.#desc, nOpen, this.#keys, this.#results)
    const base = COUNTERS.length
    const now = Date.now()
    const own = this.#init.tunnelIp
    const routes = this.peers.routes
    const local = this.#local
    let nTun = 0
    for (let j = 0; j < nOpen; j++) {
      if (this.#results[j] !== 1) { s[C.dropAuthFailed]++; continue }
      const sess = this.#openSess[j]!
      const copy = this.#openCopy[j]
      if (copy !== null) {
        this.#openCopy[j] = null
        for (const r of this.#fec.opened(sess.localIndex, copy, now)) this.#rebuilt.push(r)
      }
      if (!sess.window.accept(this.#openCounter[j])) { s[C.dropReplay]++; continue }
      const peer = this.peers.bySlot[sess.slot]
      if (peer === undefined) { s[C.dropNoSession]++; continue }
      const via = this.#openVia[j]
      if (via >= 0 && via !== peer.peerId) { s[C.dropSpoofedSource]++; continue }
      const hdr = this.#desc[j * 4]
      const inner = hdr + 16
      const ilen = this.#desc[j * 4 + 2] - TAG
      const ps = base + sess.slot * PEER_FIELDS
      s[ps + P_LAST_RX] = now
      if (ilen === 0) continue // keepalive
      const ver = mem[inner] >> 4
      if (ver === 4 && ilen >= 20) {
        const src = view.getUint32(inner + 12)
        if (src !== peer.tunnelIp && routes.lookup4(src) !== peer.slot) { s[C.dropSpoofedSource]++; continue }
        const dst = view.getUint32(inner + 16)
        if (dst !== own && local.lookup4(dst) < 0) { s[C.dropNotForUs]++; continue }
      } else if (ver === 6 && ilen >= 40) {
        if (routes.lookup6(mem, inner + 8) !== peer.slot) { s[C.dropSpoofedSource]++; continue }
        if (local.lookup6(mem, inner + 24) < 0) { s[C.dropNotForUs]++; continue }
      } else { s[C.dropNotIp]++; continue }
      s[ps + P_RX_PACKETS]++
      s[ps + P_RX_BYTES] += ilen
      // Roaming: an authenticated packet sent straight to us (not relayed) from a new address is reported;
      // the control plane moves the peer once that address answers a Ping (return routability).
      if (via < 0 && this.#isServer) this.#maybeRoam(peer.slot, this.#openSrc[j], now)
      if (this.#init.mssClamp === true) clampMssCounted(s, mem, inner, ilen, peer.relayVia ? this.#relayInner : peer.pathInner, this.#init.mtu)
      this.#tunOffsets[nTun] = inner
      this.#tunLens[nTun] = ilen
      nTun++
    }
    if (nTun === 0) return
    // Inner packets sit behind their 16-byte transport header, so a vnet header fits in front of each;
    // consecutive segments of one TCP flow are written as one superpacket (GRO).
    const ok = this.#init.tunVnet
      ? this.#native.tunWriteBatchGro(this.#init.tunFd, mem, this.#tunOffsets, this.#tunLens, nTun)
      : this.#native.tunWriteBatch(this.#init.tunFd, mem, this.#tunOffsets, this.#tunLens, nTun)
    s[C.tunTxPackets] += ok
    if (ok < nTun) s[C.dropTunWrite] += nTun - ok
    for (let j = 0; j < nTun; j++) s[C.tunTxBytes] += this.#tunLens[j]
  }

  /** Report a peer's new source address (at most once a second per address); never move it here: setPeer does, after the check. */
  #maybeRoam (slot: number, i: number, now: number): void {
    const peer = this.peers.bySlot[slot]!
    const ip = this.#addrs[i * 2]
    const port = this.#addrs[i * 2 + 1]
    if (peer.epIp === ip && peer.epPort === port) return
    const key = endpointKey(ip, port)
    if (peer.roamKey === key && now - peer.roamAt < 1000) return
    peer.roamKey = key
    peer.roamAt = now
    this.#post({ code: 'ENDPOINT', slot, ip, port })
  }

  /** Server: may the init at mem[off, off+len) go to the control ring? Drops are counted; under load it is answered with a CookieReply. */
  #gate (off: number, len: number, ip: number, port: number, pending: number): boolean {
    const guard = this.#guard!
    const now = performance.now()
    const v = guard.check(this.#mem, off, len, ip, port, now, this.#ring!.size() + pending)
    const s = this.#stats
    switch (v) {
      case 'pass': case 'report': return true
      case 'bad-mac1': s[C.dropInitMac1]++; return false
      case 'rate-source': s[C.dropInitRateSource]++; return false
      case 'rate-global': s[C.dropInitRateGlobal]++; return false
      case 'cookie-limited': s[C.dropCookieReplyLimited]++; return false
      case 'cookie':
        guard.checker.createReply(this.#mem, off, len, ip, port, now, this.#reply)
        if (this.#native.udpSendTo(this.#init.udpFd, this.#reply, ip, port) >= 0) {
          s[C.cookieReplies]++
          s[C.udpTxPackets]++
          s[C.udpTxBytes] += COOKIE_REPLY_LEN
        } else s[C.dropUdpSend]++
        return false
    }
  }

  /** Copy a control packet into the control ring as the k-th unpublished entry. */
  #toControl (kind: number, off: number, len: number, ip: number, port: number, via: number, k: number): boolean {
    const ring = this.#ring
    if (ring === null || len > CTRL_SLOT_SIZE) { this.#stats[C.dropMalformed]++; return false }
    const slot = ring.reserve(k)
    if (slot < 0) { this.#stats[C.dropControlRingFull]++; return false }
    ring.data.set(this.#mem.subarray(off, off + len), slot * CTRL_SLOT_SIZE)
    const m = slot * META_WORDS
    ring.meta[m + META_LEN] = len
    ring.meta[m + META_KIND] = kind
    ring.meta[m + META_IP] = ip | 0
    ring.meta[m + META_PORT] = port
    ring.meta[m + META_VIA] = via | 0
    ring.meta[m + META_SOCK] = this.#sock
    this.#stats[C.controlPackets]++
    return true
  }
}
