/**
 * A client's path MTU discovery (issue 13 items 1-2): one PathMtu machine
 * (path-mtu.ts) for the path to the server and one per peer with a direct
 * path, each started when its path comes up or moves, and the limits they
 * confirm pushed to the dataplane (DataplanePort.setPathMtu), which answers
 * larger inner packets with ICMP too-big (dataplane/icmp-too-big.ts).
 *
 *   tick(now) ──▶ per path: (re)start on a new endpoint, PathMtu.tick ──▶ MtuProbe (kind 8, padded, sealed
 *                 on the path's session, sent straight to its endpoint) ──▶ server / peer answers MtuAck (kind 9)
 *   onAck(owner, msg) ──▶ that path's PathMtu.onAck
 *   after both ──▶ #push: limits that changed ──▶ setPathMtu(SERVER_SLOT | RELAY_PATH | peer slot, inner)
 *   onPeerProbe(p, msg, from) ──▶ MtuAck to the peer, straight back to where the probe came from
 *
 * Sizes: the machines count outer IP bytes; a data message's inner packet
 * may be that less IP (20, 40 for an IPv6 endpoint) + UDP 8 + transport
 * header 16 + tag 16, less 8 more for a relayed one (the relay envelope).
 * The server path's max is sized for relayed packets (TUN MTU + 68), since
 * every relayed peer's packets take it. A path not (yet) known to be smaller
 * than the TUN needs has no limit (NO_PATH_LIMIT): packets go out as before.
 * Probes are never relayed: a relayed peer's limit is the server path's.
 */
import { CTL_MTU_ACK, CTL_MTU_PROBE, encodeControl, type MtuAck, type MtuProbe } from '../wire/control.js'
import { endpointKey } from '../wire/addr.js'
import { isV6Handle } from '../wire/endpoint-handle.js'
import { NO_PATH_LIMIT, RELAY_PATH } from '../workers/layout.js'
import { fecParityLength } from '../wire/fec.js'
import { PathMtu, pathOverhead, type PathMtuStatus } from './path-mtu.js'
import { SERVER_SLOT, type ClientContext } from './client-context.js'
import type { Session } from './session.js'
import type { PeerRemote } from './peer-table.js'

const RELAY_ENVELOPE = 8
/** A path counts as busy (its size re-checked) while it sent within this, ms: longer than a stalled TCP's backoff early on. */
const ACTIVE_WINDOW = 5000
/** RFC 8899 §5.1.2 BASE_PLPMTU: IPv4 576, IPv6 1280. */
const BASE4 = 576
const BASE6 = 1280

/** A path's MTU in status: the machine's view, the inner limit it imposes, and (relayed peers) whose path it is. */
export interface PathMtuReport extends PathMtuStatus {
  /** The largest inner packet sent on this path, or null when not limited (not known smaller than the TUN MTU). */
  innerMax: number | null
  /** 'relay': a relayed peer, whose packets take the server's path (its figures). */
  via?: 'relay'
}

export interface PathMtuCounters {
  mtuProbesAnswered: number
  /** Probes that came through the relay (never sent that way) or on no direct path. */
  mtuProbesDropped: number
  /** Acks naming no probe in flight or a length the probe did not have. */
  mtuAcksDropped: number
  /** Confirmed sizes that stopped passing while small probes passed. */
  mtuBlackHoles: number
}

interface Tracked {
  readonly m: PathMtu
  /** The endpoint (and socket) it measures. */
  readonly key: string
  /** Outer bytes around an inner packet on this path (IP + UDP + transport). */
  readonly overhead: number
}

export class ClientPathMtu {
  readonly #ctx: ClientContext
  readonly #counters: PathMtuCounters
  #server: Tracked | null = null
  /** The server session of the last tick (null: not registered). */
  #serverSession: Session | null = null
  readonly #peers = new Map<number, Tracked>()
  /** Last limit pushed per dataplane slot (RELAY_PATH included). */
  readonly #pushed = new Map<number, number>()
  /** Per-slot tx packet count at the last tick, and when it last changed (activity). */
  readonly #lastTx = new Map<number, { tx: number, at: number }>()

  constructor (ctx: ClientContext, counters: PathMtuCounters) {
    this.#ctx = ctx
    this.#counters = counters
  }

  #new (session: () => Session | null, send: (bytes: Uint8Array) => void, ip: number, key: string, relayRoom: number): Tracked {
    const v6 = isV6Handle(ip)
    const overhead = pathOverhead(ip)
    const base = v6 ? BASE6 : BASE4
    let m: PathMtu | null = null
    m = new PathMtu({
      base,
      max: Math.max(base, this.#ctx.opt.mtu + overhead + relayRoom + this.#fecRoom()),
      overhead,
      txid: () => this.#ctx.random.int(0x1_0000_0000),
      send: (txid, length) => {
        const s = session()
        if (s === null) return
        const probe: MtuProbe = { kind: CTL_MTU_PROBE, txid, pathMtu: m?.mtu ?? 0, length }
        send(s.ctl.seal(encodeControl(probe)))
      }
    })
    return { m, key, overhead }
  }

  /**
   * Timers, path changes, limits. `serverSession`: the current session with
   * the server when registered, else null; `peers`: every peer.
   */
  tick (now: number, serverSession: Session | null, peers: Iterable<PeerRemote>): void {
    const { opt, port } = this.#ctx
    // The server's path.
    const skey = `${opt.serverIp}:${opt.serverPort}`
    this.#serverSession = serverSession
    if (serverSession === null) {
      // Keep what was found through a reconnection to the same address; a new address starts over below.
    } else if (this.#server === null || this.#server.key !== skey) {
      this.#server = this.#new(() => this.#serverSession, (b) => { this.#ctx.sendToServer(b) }, opt.serverIp, skey, RELAY_ENVELOPE)
      this.#server.m.start(now)
    }
    let relayActive = false
    const seen = new Set<number>()
    for (const p of peers) {
      const direct = p.path?.directCandidate ?? null
      const active = this.#active(p.slot, now)
      if (direct === null || p.sessions.current === null) {
        relayActive ||= active
        continue
      }
      seen.add(p.slot)
      const key = `${endpointKey(direct.ip, direct.port)}/${direct.sock}`
      let t = this.#peers.get(p.slot)
      if (t === undefined || t.key !== key) {
        t = this.#new(() => p.sessions.current, (b) => { port.sendControl(b, direct.ip, direct.port, direct.sock) }, direct.ip, key, 0)
        this.#peers.set(p.slot, t)
        t.m.start(now)
      }
      this.#run(t, now, active, p.path?.directRttMs ?? null)
    }
    for (const slot of [...this.#peers.keys()]) if (!seen.has(slot)) this.#peers.delete(slot)
    if (this.#server !== null && serverSession !== null) this.#run(this.#server, now, this.#active(SERVER_SLOT, now) || relayActive, null)
    this.#push(peers)
  }

  #run (t: Tracked, now: number, active: boolean, rttMs: number | null): void {
    const bh = t.m.blackHoles
    t.m.tick(now, active, rttMs)
    if (t.m.blackHoles !== bh) {
      this.#counters.mtuBlackHoles++
      this.#ctx.log.warn(`path MTU black hole: probes of ${t.m.mtu ?? '?'} bytes to ${t.key} are lost while small ones pass; searching for the new size`)
    }
  }

  /**
   * The slot sent packets within ACTIVE_WINDOW: a stalled TCP flow retransmits
   * seconds apart, and its path must still be checked.
   */
  #active (slot: number, now: number): boolean {
    const tx = this.#ctx.port.peerCounters(slot).txPackets
    const was = this.#lastTx.get(slot)
    if (was === undefined) { this.#lastTx.set(slot, { tx, at: -Infinity }); return false }
    if (tx !== was.tx) { was.tx = tx; was.at = now }
    return now - was.at <= ACTIVE_WINDOW
  }

  /** An ack on the server's session (`fromServer`) or on a peer's (`peer`). */
  onAck (msg: MtuAck, peer: PeerRemote | null, peers: Iterable<PeerRemote>): void {
    const t = peer === null ? this.#server : this.#peers.get(peer.slot)
    if (t === undefined || t === null) { this.#counters.mtuAcksDropped++; return }
    const before = t.m.acksDropped
    const had = t.m.mtu
    t.m.onAck(msg.txid, msg.length, this.#ctx.clock.now())
    this.#counters.mtuAcksDropped += t.m.acksDropped - before
    if (t.m.mtu !== had) {
      this.#ctx.log.info(`path MTU to ${peer === null ? 'the server' : t.key}: ${t.m.mtu} bytes`)
      this.#push(peers)
    }
  }

  /** A peer's probe: answered straight back when it came straight (`from`), else dropped (probes are never relayed). */
  onPeerProbe (p: PeerRemote, msg: MtuProbe, from: { ip: number, port: number, sock: number } | null): void {
    const s = p.sessions.current
    if (from === null || s === null) { this.#counters.mtuProbesDropped++; return }
    this.#counters.mtuProbesAnswered++
    this.#ctx.port.sendControl(s.ctl.seal(encodeControl({ kind: CTL_MTU_ACK, txid: msg.txid, length: msg.length })), from.ip, from.port, from.sock)
  }

  /** A round or a check is in flight: tick finely. */
  busy (): boolean {
    if (this.#server?.m.busy() === true) return true
    for (const t of this.#peers.values()) if (t.m.busy()) return true
    return false
  }

  /**
   * With --fec, a parity message is longer than the largest data message it covers by its header and
   * the group's lengths (wire/fec.ts): paths to peers budget that room, so a full-size packet's parity
   * still fits (relayed, it would otherwise exceed a 1500-byte link and be dropped at the send).
   */
  #fecRoom (): number {
    const f = this.#ctx.opt.fec
    return f === undefined || f === null ? 0 : fecParityLength(f.data, 0)
  }

  /**
   * The largest inner packet on a path, or NO_PATH_LIMIT when it carries what the TUN MTU needs. toPeer:
   * the path carries end-to-end sessions (a direct peer, or relayed), where FEC parity may travel.
   */
  #inner (t: Tracked | null | undefined, relayed: boolean, toPeer: boolean): number {
    const mtu = t?.m.mtu ?? null
    if (t === null || t === undefined || mtu === null) return NO_PATH_LIMIT
    const inner = mtu - t.overhead - (relayed ? RELAY_ENVELOPE : 0) - (toPeer ? this.#fecRoom() : 0)
    return inner >= this.#ctx.opt.mtu ? NO_PATH_LIMIT : inner
  }

  #push (peers: Iterable<PeerRemote>): void {
    const live = new Set<number>([SERVER_SLOT, RELAY_PATH])
    this.#set(SERVER_SLOT, this.#inner(this.#server, false, false))
    this.#set(RELAY_PATH, this.#inner(this.#server, true, true))
    for (const p of peers) {
      live.add(p.slot)
      this.#set(p.slot, this.#inner(this.#peers.get(p.slot), false, true))
    }
    // A removed peer's slot starts without a limit in the dataplane when reused.
    for (const slot of [...this.#pushed.keys()]) if (!live.has(slot)) this.#pushed.delete(slot)
  }

  #set (slot: number, inner: number): void {
    if ((this.#pushed.get(slot) ?? NO_PATH_LIMIT) === inner) return
    this.#pushed.set(slot, inner)
    this.#ctx.port.setPathMtu(slot, inner)
  }

  /** Status: the server's path (peer null) or a peer's (its direct path, else the server's, marked via relay). */
  report (peer: PeerRemote | null): PathMtuReport | null {
    const t = peer === null ? this.#server : this.#peers.get(peer.slot) ?? null
    if (t !== null) {
      const inner = this.#inner(t, false, peer !== null)
      return { ...t.m.status(), innerMax: inner === NO_PATH_LIMIT ? null : inner }
    }
    if (peer === null || this.#server === null) return null
    const inner = this.#inner(this.#server, true, true)
    return { ...this.#server.m.status(), innerMax: inner === NO_PATH_LIMIT ? null : inner, via: 'relay' }
  }
}
