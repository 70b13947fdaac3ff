/**
 * Direct paths between two clients: candidates, probes, path choice, NAT
 * classification and the punching strategy. One DirectPath per peer, owned
 * by the ClientController (main thread). Sans-IO: time comes in through
 * `now` arguments, and everything it does to the world goes through the
 * narrow PathIo interface (send a sealed probe, send a relayed Punch, switch
 * the dataplane route), so unit tests drive it over a FakeNet on a manual
 * clock. docs/NAT-TRAVERSAL.md explains the design for users.
 *
 *   Path state (per peer):
 *
 *     relay(reason) ──pong from a candidate (not held down)──▶ direct(candidate)
 *        ▲                                                        │
 *        └── MISS_LIMIT probes unanswered on the direct path ◀────┘
 *            (the candidate is held down HOLDDOWN ms: hysteresis)
 *
 *   The relay always carries traffic while the state is relay: nothing waits
 *   for punching. A direct path is used only after a probe round trip over
 *   it (our Ping reached the peer through both NATs and its Pong came back),
 *   kept while its probes are answered, and dropped after MISS_LIMIT
 *   unanswered heartbeats (ACTIVE_HEARTBEAT apart while data flows).
 *
 *   Punch rounds (state relay, or the upgrade search right after a start):
 *   at PUNCH_OFFSETS after a trigger (new session, Punch message from the
 *   peer, new candidates, path lost), then every RELAY_REPROBE while relayed.
 *   The first probe to a non-LAN candidate goes out with IP TTL LOW_TTL: it
 *   opens our NAT's mapping but dies before the peer's NAT, so the peer's
 *   NAT never sees an unsolicited packet from us before its own mapping
 *   exists (the conntrack race of research/nat-anchors.md §4.6).
 *   A received Ping is answered at once and triggers a Ping back to its
 *   source (a triggered check), at most once per TRIGGER_GAP per candidate;
 *   Pongs never trigger anything, so two peers cannot ping-pong forever.
 */
import type { LanAddr } from '../wire/payloads.js'
import { NAT_WIRE_EDM, NAT_WIRE_EIM, NAT_WIRE_OPEN, NAT_WIRE_UNKNOWN, type Punch } from '../wire/control.js'
import { formatEndpoint } from '../wire/addr.js'

// ── constants (ms unless noted) ─────────────────────────────────────────────

/** Probe rounds after a trigger, as offsets from it. Dense first (lab RTT ≈ 0, internet ≲ 300 ms), then 1 s apart. */
export const PUNCH_OFFSETS: readonly number[] = [0, 100, 250, 500, 1000, 1500, 2000, 3000, 4000, 5000]
/** While relayed (and punching can work), one probe round this often: a healed path is direct again within ~this + 1 RTT. */
export const RELAY_REPROBE = 3_000
/** Both NATs symmetric: probes are pointless; one round this often only, in case a NAT changed (bounded budget). */
export const DOUBLE_SYMMETRIC_REPROBE = 120_000
/** Double-symmetric pairs send at most this many probe rounds per trigger. */
export const DOUBLE_SYMMETRIC_ROUNDS = 4
/** Heartbeat on the direct path while data flows: failure is noticed within ~MISS_LIMIT × this. */
export const ACTIVE_HEARTBEAT = 400
/** Unanswered heartbeats that drop a direct path (3 × 400 ms ≈ 1.2 s to fall back; goal: ≤ 3 s). */
export const MISS_LIMIT = 3
/**
 * Idle keepalive on a direct path, sent by one side only (the controlling
 * side; the other answers): one small packet each way per 25 s holds a NAT
 * mapping with a 30 s timeout (WireGuard's advice; RFC 4787 REQ-5 allows 2 min,
 * Hätönen et al. measured home gateways as low as 30 s).
 */
export const IDLE_KEEPALIVE = 25_000
/** The non-controlling side pings an idle path only after this much silence (the controlling side is gone?). */
export const IDLE_KEEPALIVE_PASSIVE = 40_000
/** A direct path is trusted at most this long after last hearing from it, even idle. */
export const TRUST_IDLE = 60_000
/** Data counters moved within this long: the path is active. */
export const ACTIVE_WINDOW = 2_000
/** A candidate that failed is not used again for this long (hysteresis: no flapping). */
export const HOLDDOWN = 2_000
/** At most one triggered Ping per candidate per this interval. */
export const TRIGGER_GAP = 200
/** At most one Punch message answered per this interval (a Punch answers a Punch only once). */
export const PUNCH_MSG_GAP = 1_000
/** TTL of the first probe to a non-LAN candidate: enough for our own NAT (and a CPE or two), not the far one. */
export const LOW_TTL = 2
/**
 * Birthday search (symmetric side S ↔ cone side E that filters by port;
 * research/nat-anchors.md §1, §7.6): S opens BIRTHDAY_SOCKETS sockets and
 * sends one low-TTL probe from each to E's public endpoint (256 mappings on
 * S's NAT, each open to E); E sprays probes at random ports of S's public
 * address, BIRTHDAY_SPRAY_PER_TICK per tick (≈ 500/s at the 50-ms client
 * tick), at most BIRTHDAY_SPRAY_MAX per search. P(hit) after k probes =
 * 1 − (1 − 256/64512)^k: 95 % at ~750 (≈ 1.5 s), 99.9 % at ~1740.
 */
export const BIRTHDAY_SOCKETS = 256
export const BIRTHDAY_SPRAY_PER_TICK = 25
export const BIRTHDAY_SPRAY_MAX = 2400
/** The symmetric side gives a search this long, then closes its sockets. */
export const BIRTHDAY_TIMEOUT = 8_000
/** … and starts the next one no sooner than this after a failed one. */
export const BIRTHDAY_RETRY = 60_000
/** A search starts only when the normal punch has not worked this long into a burst (cheap pairs never pay for it). */
export const BIRTHDAY_AFTER = 500

/** Bounded memory: candidates per peer, outstanding pings. */
export const MAX_CANDIDATES = 16
export const MAX_PINGS = 64

// ── NAT classification ──────────────────────────────────────────────────────

/** Mapping behaviour (RFC 4787): no NAT, endpoint-independent (cone), endpoint-dependent (symmetric). */
export type NatMapping = 'unknown' | 'open' | 'eim' | 'edm'

export const NAT_LABEL: Readonly<Record<NatMapping, string>> = {
  unknown: 'unknown',
  open: 'none',
  eim: 'cone',
  edm: 'symmetric'
}

export function natToWire (n: NatMapping): number {
  switch (n) {
    case 'open': return NAT_WIRE_OPEN
    case 'eim': return NAT_WIRE_EIM
    case 'edm': return NAT_WIRE_EDM
    default: return NAT_WIRE_UNKNOWN
  }
}

export function natFromWire (n: number): NatMapping {
  return n === NAT_WIRE_OPEN ? 'open' : n === NAT_WIRE_EIM ? 'eim' : n === NAT_WIRE_EDM ? 'edm' : 'unknown'
}

export interface Endpoint { ip: number, port: number }

/**
 * Our own NAT's mapping, from what others observe. `serverObserved` is our
 * endpoint as the server's main port sees it; `others` are observations by
 * other destinations (the server's NAT-check port, peers' Pongs).
 *  - the server sees one of our own addresses and our port → open (no NAT);
 *  - another destination sees our public IP with another port → edm;
 *  - another destination sees the same ip:port → eim;
 *  - otherwise unknown. An edm observation wins over eim ones (one is enough).
 */
export function classifyLocal (serverObserved: Endpoint | null, localAddrs: readonly number[], localPort: number, others: readonly Endpoint[]): NatMapping {
  if (serverObserved === null) return 'unknown'
  if (localAddrs.includes(serverObserved.ip) && serverObserved.port === localPort) return 'open'
  let eim = false
  for (const o of others) {
    if (o.ip !== serverObserved.ip) continue
    if (o.port !== serverObserved.port) return 'edm'
    eim = true
  }
  return eim ? 'eim' : 'unknown'
}

/**
 * The peer's NAT: what it announces (its own classification) when it knows;
 * else from where its probes come from: its public IP with another port than
 * the server saw → edm; the same port → eim.
 */
export function classifyPeer (announced: NatMapping, publicEp: Endpoint | null, seenFrom: readonly Endpoint[]): NatMapping {
  if (announced !== 'unknown') return announced
  if (publicEp === null) return 'unknown'
  let eim = false
  for (const s of seenFrom) {
    if (s.ip !== publicEp.ip) continue
    if (s.port !== publicEp.port) return 'edm'
    eim = true
  }
  return eim ? 'eim' : 'unknown'
}

// ── strategy ────────────────────────────────────────────────────────────────

export type Strategy = 'punch' | 'birthday' | 'relay-only'

/** Why a peer's traffic goes through the relay (stable codes; status shows them). */
export type RelayReason =
  | 'P2P_DISABLED'
  | 'NO_SESSION'
  | 'NO_CANDIDATES'
  | 'PUNCHING'
  | 'NO_ANSWER'
  | 'PATH_LOST'
  | 'DOUBLE_SYMMETRIC'
  | 'SYMMETRIC_PORT_RESTRICTED'
  | 'BIRTHDAY_SEARCH'

export function describeRelayReason (r: RelayReason): string {
  switch (r) {
    case 'P2P_DISABLED': return 'direct paths are off (--no-p2p)'
    case 'NO_SESSION': return 'no end-to-end session yet'
    case 'NO_CANDIDATES': return 'no candidate address for the peer yet'
    case 'PUNCHING': return 'probing candidate addresses (hole punching)'
    case 'NO_ANSWER': return 'no candidate address answered our probes; retrying periodically'
    case 'PATH_LOST': return 'the direct path stopped answering; probing again'
    case 'DOUBLE_SYMMETRIC': return 'both NATs are symmetric (a new port per destination): hole punching cannot work, the relay is used (probes limited to one round every 2 min)'
    case 'SYMMETRIC_PORT_RESTRICTED': return 'one NAT is symmetric and the other filters by port: the birthday search found no path yet (next try within a minute)'
    case 'BIRTHDAY_SEARCH': return 'one NAT is symmetric and the other filters by port: birthday search running (256 sockets on the symmetric side, random probes from the other)'
  }
}

/**
 * The punching strategy for a pair of NAT mappings. Only a pair of
 * endpoint-dependent mappings is hopeless without port prediction (both
 * sides would have to guess the other's new port: ~65k probes per side for
 * even odds, research/nat-anchors.md §1); every other pair is punched, the
 * symmetric side's real port being learned from its probes.
 */
export function chooseStrategy (local: NatMapping, peer: NatMapping): { strategy: Strategy, reason: RelayReason | null } {
  if (local === 'edm' && peer === 'edm') return { strategy: 'relay-only', reason: 'DOUBLE_SYMMETRIC' }
  // One side symmetric, the other cone: punch first (enough when the cone
  // side does not filter by port); if that fails, a birthday search.
  if ((local === 'edm' && peer === 'eim') || (local === 'eim' && peer === 'edm')) return { strategy: 'birthday', reason: null }
  return { strategy: 'punch', reason: null }
}

// ── path comparison ─────────────────────────────────────────────────────────

export type CandidateKind = 'lan' | 'public' | 'learned'

export interface PathScore {
  /** 'relay' for the relay path. */
  kind: CandidateKind | 'relay'
  /** Smoothed round-trip time, or null when unmeasured. */
  rttMs: number | null
}

/** LAN candidates (same network, no NAT between) rank above everything else direct. */
function rank (k: PathScore['kind']): number {
  return k === 'relay' ? 0 : k === 'lan' ? 2 : 1
}

/**
 * Is `a` better than the current path `b`? Pure; used with b = current, so
 * every "no" keeps the current path (hysteresis).
 *  1. any path beats none;
 *  2. direct beats relay;
 *  3. a LAN candidate beats a public or learned one (no NAT in the way, no
 *     mapping to keep alive, usually faster);
 *  4. within one rank, `a` must be at least 30 % and 1 ms faster (both
 *     measured): small differences never move traffic.
 */
export function betterPath (a: PathScore, b: PathScore | null): boolean {
  if (b === null) return true
  const ra = rank(a.kind)
  const rb = rank(b.kind)
  if (ra !== rb) return ra > rb
  if (a.rttMs === null || b.rttMs === null) return false
  return a.rttMs < b.rttMs * 0.7 && b.rttMs - a.rttMs >= 1
}

// ── per-peer state ──────────────────────────────────────────────────────────

export interface Candidate {
  readonly ip: number
  readonly port: number
  kind: CandidateKind
  pingsSent: number
  pongs: number
  lastPingAt: number
  /** Last Pong from it, or Ping received from it. */
  lastHeardAt: number
  lastPongAt: number
  /** Pings sent since it was last heard from. */
  unanswered: number
  rttMs: number | null
  lowTtlSent: boolean
  /** Not to be used as the path before this time (it failed: hysteresis). */
  holdUntil: number
  /** From the server's peer list or a Punch message (still advertised). */
  advertised: boolean
  /** Our socket that reaches it: 0 the main one, else a probe socket (birthday search); where we last heard it. */
  sock: number
}

export type PathState =
  | { state: 'relay', reason: RelayReason, since: number }
  | { state: 'direct', key: number, since: number }

/** What a DirectPath does to the world. */
export interface PathIo {
  /** Send a sealed probe (a Ping or Pong) straight to ip:port from socket `sock` (0 main); ttl null = default. */
  sendProbe(kind: 'ping' | 'pong', txid: number, ip: number, port: number, ttl: number | null, observed: Endpoint | null, sock: number): void
  /** Birthday search: open (or share) up to n probe sockets; adopt the winner; release them (unadopted ones are closed). */
  openSockets(n: number): number[]
  adoptSocket(sock: number): void
  closeSockets(socks: readonly number[]): void
  /** Send a Punch to the peer through the relay (on the end-to-end session). */
  sendPunch(p: Punch): void
  /** Route the peer's data straight to ip:port (from socket `sock`), or through the relay (null). */
  setRoute(ep: (Endpoint & { sock: number }) | null): void
  /** Our own NAT mapping and candidates now. */
  localNat(): NatMapping
  localCandidates(): LanAddr[]
  /** A Pong told us how a peer sees us (feeds our own NAT classification). */
  observed(ep: Endpoint): void
  /** The direct path failed: refresh our public endpoint with the server now. */
  pathLost(): void
  log(msg: string, fields?: Record<string, unknown>): void
}

export interface CandidateStatus {
  endpoint: string
  kind: CandidateKind
  state: 'untried' | 'probing' | 'confirmed' | 'held-down'
  pingsSent: number
  pongs: number
  rttMs: number | null
}

export interface P2pStatus {
  enabled: boolean
  /** Our NAT as we classified it, and the peer's as learned: 'none' | 'cone' | 'symmetric' | 'unknown'. */
  localNat: string
  peerNat: string
  strategy: Strategy
  /** Stable code of why the path is relay (null when direct). */
  relayReason: RelayReason | null
  candidates: CandidateStatus[]
  /** Candidates probed at least once. */
  candidatesTried: number
  /** Seconds since the last Pong over any direct candidate, or null. */
  lastPongSec: number | null
  /** ms from learning of the peer to the first confirmed direct path, or null. */
  timeToDirectMs: number | null
  /** Path changes (relay ↔ direct, candidate switches) since the peer appeared. */
  pathChanges: number
  /** Seconds since the path last changed (or since the peer appeared). */
  pathAgeSec: number
  probesSent: number
}

const key = (ip: number, port: number): number => ip * 65536 + port

export class DirectPath {
  readonly #io: PathIo
  /** This side sends the idle keepalives (the lower tunnel address). */
  readonly #controlling: boolean
  readonly candidates = new Map<number, Candidate>()
  readonly #pings = new Map<number, { key: number, at: number }>()
  readonly #seenFrom: Endpoint[] = []
  #publicEp: Endpoint | null = null
  #announced: NatMapping = 'unknown'
  #state: PathState
  #session = false
  #burst: { at: number, next: number, rounds: number } | null = null
  #nextReprobe = Infinity
  #lastPunchSent = -Infinity
  #round = 0
  #txid = (Math.random() * 0x1_0000_0000) >>> 0
  #lastTrafficAt = -Infinity
  readonly #knownAt: number
  #directAt: number | null = null
  #pathChanges = 0
  #probesSent = 0
  /** Candidate keys from the server's peer list, and from the peer's last Punch. */
  #serverKeys = new Set<number>()
  #punchKeys = new Set<number>()
  /** Birthday search: the symmetric side's sockets, or the cone side's spray. */
  #bday: { role: 'hard', socks: number[], until: number } | { role: 'easy', ip: number, sent: number, until: number } | null = null
  #nextBirthday = 0
  #birthdays = 0
  /** The direct path failed and has not come back yet (status says PATH_LOST rather than NO_ANSWER). */
  #lost = false

  constructor (io: PathIo, controlling: boolean, now: number) {
    this.#io = io
    this.#controlling = controlling
    this.#knownAt = now
    this.#state = { state: 'relay', reason: 'NO_SESSION', since: now }
  }

  get state (): PathState { return this.#state }
  get peerNat (): NatMapping { return classifyPeer(this.#announced, this.#publicEp, this.#seenFrom) }
  get strategy (): { strategy: Strategy, reason: RelayReason | null } { return chooseStrategy(this.#io.localNat(), this.peerNat) }

  // ── inputs ──

  /** The server's view of the peer: its public endpoint and LAN addresses. */
  setAdvertised (publicEp: Endpoint | null, lan: readonly LanAddr[], now: number): void {
    this.#publicEp = publicEp !== null && publicEp.ip !== 0 ? publicEp : null
    const keys = new Set<number>()
    if (this.#publicEp !== null) {
      this.#addCandidate(this.#publicEp.ip, this.#publicEp.port, 'public', now)
      keys.add(key(this.#publicEp.ip, this.#publicEp.port))
    }
    for (const a of lan) {
      if (a.ip === 0 || a.port === 0) continue
      // A host without NAT advertises its public address as its own: it stays 'public'.
      const same = this.#publicEp !== null && a.ip === this.#publicEp.ip && a.port === this.#publicEp.port
      this.#addCandidate(a.ip, a.port, same ? 'public' : 'lan', now)
      keys.add(key(a.ip, a.port))
    }
    const changed = keys.size !== this.#serverKeys.size || [...keys].some(k => !this.#serverKeys.has(k))
    this.#serverKeys = keys
    this.#markAdvertised()
    this.#prune()
    if (changed && this.#session) this.#trigger(now, true)
  }

  /** Candidates still advertised (by the server or the peer's last Punch) are never pruned. */
  #markAdvertised (): void {
    for (const [k, c] of this.candidates) c.advertised = this.#serverKeys.has(k) || this.#punchKeys.has(k)
  }

  /** Our own candidates or NAT kind changed: tell the peer and probe again. */
  localChanged (now: number): void { this.#trigger(now, true) }

  /** An end-to-end session with the peer exists (or no longer does). */
  setSession (up: boolean, now: number): void {
    if (up === this.#session) return
    this.#session = up
    if (up) this.#trigger(now, true)
    else this.#toRelay('NO_SESSION', now)
  }

  /** The peer asks us to probe now (a Punch through the relay). */
  onPunch (p: Punch, now: number): void {
    this.#announced = natFromWire(p.natKind)
    const keys = new Set<number>()
    for (const c of p.candidates) {
      if (c.ip === 0 || c.port === 0) continue
      const kind: CandidateKind = this.#publicEp !== null && c.ip === this.#publicEp.ip ? 'public' : isPrivate(c.ip) ? 'lan' : 'public'
      this.#addCandidate(c.ip, c.port, kind, now)
      keys.add(key(c.ip, c.port))
    }
    this.#punchKeys = keys
    this.#markAdvertised()
    this.#prune()
    // The symmetric peer opened its birthday sockets: spray its public address.
    if (p.birthday && this.#publicEp !== null && this.#state.state === 'relay' && (this.#bday === null || this.#bday.role === 'easy')) {
      this.#bday = { role: 'easy', ip: this.#publicEp.ip, sent: 0, until: now + BIRTHDAY_TIMEOUT }
      this.#birthdays++
      this.#io.log('birthday search: spraying the peer\'s public address', { ip: formatEndpoint(this.#publicEp.ip, 0) })
    }
    // Answer with our own Punch unless we just sent one: one answer per PUNCH_MSG_GAP, never a loop.
    this.#trigger(now, now - this.#lastPunchSent >= PUNCH_MSG_GAP)
  }

  /** An authenticated Ping from the peer arrived straight from ip:port. */
  onPing (txid: number, ip: number, port: number, now: number, sock = 0): void {
    this.#io.sendProbe('pong', txid, ip, port, null, { ip, port }, sock)
    const c = this.#addCandidate(ip, port, 'learned', now)
    // Heard on another of our sockets (a birthday-search hit): probe back from it at once.
    const moved = c.sock !== sock
    c.sock = sock
    this.#noteSeen(ip, port)
    c.lastHeardAt = now
    c.unanswered = 0
    // Triggered check: probe the source back at once (this is what opens a
    // port-restricted NAT towards a symmetric peer's new port). Not for a
    // confirmed path: there our Pong is all the peer needs (no doubled keepalives).
    if ((moved || now - c.lastPingAt >= TRIGGER_GAP) && !this.#alive(c, now)) this.#ping(c, now, null)
    this.#evaluate(now)
  }

  /** An authenticated Pong from the peer arrived straight from ip:port. */
  onPong (txid: number, ip: number, port: number, observed: Endpoint, now: number, sock = 0): void {
    const sent = this.#pings.get(txid)
    if (sent === undefined) return // stale or not ours: ignore
    this.#pings.delete(txid)
    let c = this.candidates.get(sent.key)
    if (c === undefined || c.ip !== ip || c.port !== port) c = this.#addCandidate(ip, port, 'learned', now)
    this.#noteSeen(ip, port)
    c.sock = sock
    const rtt = now - sent.at
    c.rttMs = c.rttMs === null ? rtt : c.rttMs * 0.8 + rtt * 0.2
    c.pongs++
    c.lastPongAt = now
    c.lastHeardAt = now
    c.unanswered = 0
    if (observed.ip !== 0) this.#io.observed(observed)
    this.#evaluate(now)
  }

  /** The dataplane moved data to or from this peer (counters changed). */
  noteTraffic (now: number): void { this.#lastTrafficAt = now }

  /**
   * Whether tick() has work due at the client's fine tick (CLIENT_TICK): punch
   * rounds (100 ms apart at first), a birthday search (a spray per tick), or
   * heartbeats on a direct path carrying traffic (ACTIVE_HEARTBEAT). Anything
   * else here runs on timers of seconds.
   */
  wantsFastTick (now: number): boolean {
    return this.#burst !== null || this.#bday !== null || (this.#state.state === 'direct' && now - this.#lastTrafficAt < ACTIVE_WINDOW)
  }

  // ── timers ──

  tick (now: number): void {
    if (!this.#session) return
    const st = this.#state
    // Heartbeat / keepalive on the direct path.
    if (st.state === 'direct') {
      const c = this.candidates.get(st.key)
      if (c !== undefined) {
        const active = now - this.#lastTrafficAt < ACTIVE_WINDOW
        const gap = active ? ACTIVE_HEARTBEAT : this.#controlling ? IDLE_KEEPALIVE : IDLE_KEEPALIVE_PASSIVE
        if (now - c.lastPingAt >= gap && (active || this.#controlling || now - c.lastHeardAt >= gap)) this.#ping(c, now, null)
      }
    }
    // Punch rounds.
    const b = this.#burst
    if (b !== null && now >= b.next) {
      this.#round++
      this.#probeRound(now)
      b.rounds++
      const limit = this.strategy.strategy === 'relay-only' ? DOUBLE_SYMMETRIC_ROUNDS : PUNCH_OFFSETS.length
      if (b.rounds >= limit) {
        this.#burst = null
        this.#scheduleReprobe(now)
      } else {
        b.next = b.at + PUNCH_OFFSETS[b.rounds]!
      }
    } else if (b === null && st.state === 'relay' && now >= this.#nextReprobe) {
      this.#round++
      this.#probeRound(now)
      this.#scheduleReprobe(now)
    }
    this.#birthdayTick(now)
    this.#evaluate(now)
    if (this.#state.state === 'relay' && this.#burst === null) this.#setRelayReason(this.#idleReason(), now)
  }

  /** Start, run and end birthday searches (bounded: one per BIRTHDAY_RETRY, BIRTHDAY_SPRAY_MAX probes, BIRTHDAY_TIMEOUT). */
  #birthdayTick (now: number): void {
    const b = this.#bday
    if (b !== null) {
      if (this.#state.state === 'direct' || now >= b.until || (b.role === 'easy' && b.sent >= BIRTHDAY_SPRAY_MAX)) {
        this.#endBirthday(now)
        return
      }
      if (b.role === 'easy') {
        for (let i = 0; i < BIRTHDAY_SPRAY_PER_TICK && b.sent < BIRTHDAY_SPRAY_MAX; i++, b.sent++) {
          const port = 1024 + Math.floor(Math.random() * (65536 - 1024))
          const txid = this.#txid = (this.#txid + 1) >>> 0
          this.#pings.set(txid, { key: key(b.ip, port), at: now })
          if (this.#pings.size > MAX_PINGS) this.#pings.delete(this.#pings.keys().next().value!)
          this.#probesSent++
          this.#io.sendProbe('ping', txid, b.ip, port, null, null, 0)
        }
      }
      return
    }
    // Start one on the symmetric side when the pair needs it and plain punching has had its chance.
    if (this.#state.state !== 'relay' || this.#publicEp === null || now < this.#nextBirthday) return
    if (this.#io.localNat() !== 'edm' || this.peerNat !== 'eim') return
    if (this.#burst !== null && now - this.#burst.at < BIRTHDAY_AFTER) return
    const socks = this.#io.openSockets(BIRTHDAY_SOCKETS)
    if (socks.length === 0) { this.#nextBirthday = now + BIRTHDAY_RETRY; return }
    this.#bday = { role: 'hard', socks, until: now + BIRTHDAY_TIMEOUT }
    this.#birthdays++
    const ep = this.#publicEp
    for (const sock of socks) {
      const txid = this.#txid = (this.#txid + 1) >>> 0
      this.#probesSent++
      this.#io.sendProbe('ping', txid, ep.ip, ep.port, LOW_TTL, null, sock)
    }
    this.#lastPunchSent = now
    this.#io.sendPunch({ kind: 7, natKind: natToWire(this.#io.localNat()), round: this.#round, candidates: this.#io.localCandidates().slice(0, 8), birthday: true })
    this.#io.log('birthday search: probe sockets open', { sockets: socks.length })
  }

  #endBirthday (now: number): void {
    const b = this.#bday
    if (b === null) return
    this.#bday = null
    this.#nextBirthday = now + BIRTHDAY_RETRY
    if (b.role !== 'hard') return
    // The socket the direct path uses was adopted; the rest may be closed.
    this.#io.closeSockets(b.socks)
  }

  /** Close everything (the peer is gone or we stop). */
  destroy (now: number): void { this.#endBirthday(now) }

  // ── internals ──

  #scheduleReprobe (now: number): void {
    this.#nextReprobe = now + (this.strategy.strategy === 'relay-only' ? DOUBLE_SYMMETRIC_REPROBE : RELAY_REPROBE)
  }

  #advertisedKeys (): string {
    return [...this.candidates.values()].filter(c => c.advertised).map(c => key(c.ip, c.port)).sort().join(',')
  }

  /** Start (or restart) a burst of probe rounds; with `tellPeer`, send a Punch so the peer starts at the same moment. */
  #trigger (now: number, tellPeer: boolean): void {
    if (!this.#session) return
    if (tellPeer) {
      this.#lastPunchSent = now
      const cands = this.#io.localCandidates()
      this.#io.sendPunch({ kind: 7, natKind: natToWire(this.#io.localNat()), round: this.#round, candidates: cands.slice(0, 8), birthday: false })
    }
    if (this.#burst !== null && now - this.#burst.at < 1000) return // a burst is already running
    this.#burst = { at: now, next: now, rounds: 0 }
    if (this.#state.state === 'relay') this.#setRelayReason(this.#lost ? 'PATH_LOST' : 'PUNCHING', now)
    this.tick(now)
  }

  #probeRound (now: number): void {
    if (this.candidates.size === 0) return
    for (const c of this.candidates.values()) {
      if (c.kind !== 'lan' && !c.lowTtlSent) {
        c.lowTtlSent = true
        this.#ping(c, now, LOW_TTL)
      } else {
        this.#ping(c, now, null)
      }
    }
  }

  #ping (c: Candidate, now: number, ttl: number | null): void {
    const txid = this.#txid = (this.#txid + 1) >>> 0
    if (ttl === null) {
      this.#pings.set(txid, { key: key(c.ip, c.port), at: now })
      if (this.#pings.size > MAX_PINGS) this.#pings.delete(this.#pings.keys().next().value!)
      // Count a miss only for probes after the previous one went unanswered for a while.
      if (c.lastPingAt > c.lastHeardAt && c.pingsSent > 0) c.unanswered++
      c.pingsSent++
      c.lastPingAt = now
    }
    this.#probesSent++
    this.#io.sendProbe('ping', txid, c.ip, c.port, ttl, null, c.sock)
  }

  #addCandidate (ip: number, port: number, kind: CandidateKind, now: number): Candidate {
    const k = key(ip, port)
    let c = this.candidates.get(k)
    if (c === undefined) {
      c = {
        ip, port, kind, pingsSent: 0, pongs: 0, lastPingAt: -Infinity, lastHeardAt: -Infinity, lastPongAt: -Infinity,
        unanswered: 0, rttMs: null, lowTtlSent: kind === 'lan', holdUntil: -Infinity, advertised: false, sock: 0
      }
      this.candidates.set(k, c)
      void now
    } else if (rank(kind) > rank(c.kind) || (c.kind === 'learned' && kind !== 'learned')) {
      c.kind = kind
    }
    return c
  }

  /** Keep at most MAX_CANDIDATES: forget the learned ones never heard from for longest, never the current path. */
  #prune (): void {
    if (this.candidates.size <= MAX_CANDIDATES) return
    const cur = this.#state.state === 'direct' ? this.#state.key : -1
    const victims = [...this.candidates.entries()]
      .filter(([k, c]) => k !== cur && !c.advertised)
      .sort((a, b) => a[1].lastHeardAt - b[1].lastHeardAt)
    for (const [k] of victims) {
      if (this.candidates.size <= MAX_CANDIDATES) break
      this.candidates.delete(k)
    }
  }

  #noteSeen (ip: number, port: number): void {
    if (this.#seenFrom.some(s => s.ip === ip && s.port === port)) return
    this.#seenFrom.push({ ip, port })
    if (this.#seenFrom.length > 8) this.#seenFrom.shift()
  }

  #alive (c: Candidate, now: number): boolean {
    return c.pongs > 0 && c.lastPongAt > -Infinity && c.unanswered < MISS_LIMIT && now - c.lastHeardAt < TRUST_IDLE
  }

  #best (now: number): Candidate | null {
    let best: Candidate | null = null
    for (const c of this.candidates.values()) {
      if (!this.#alive(c, now) || now < c.holdUntil) continue
      if (best === null || betterPath({ kind: c.kind, rttMs: c.rttMs }, { kind: best.kind, rttMs: best.rttMs })) best = c
    }
    return best
  }

  #evaluate (now: number): void {
    if (!this.#session) return
    const st = this.#state
    const best = this.#best(now)
    if (st.state === 'relay') {
      if (best !== null) this.#toDirect(best, now)
      return
    }
    const cur = this.candidates.get(st.key)
    if (cur === undefined || !this.#alive(cur, now)) {
      if (cur !== undefined) cur.holdUntil = now + HOLDDOWN
      const alt = this.#best(now)
      if (alt !== null) { this.#toDirect(alt, now); return }
      this.#lost = true
      this.#toRelay('PATH_LOST', now)
      this.#io.pathLost()
      this.#trigger(now, true)
      return
    }
    if (best !== null && best !== cur && betterPath({ kind: best.kind, rttMs: best.rttMs }, { kind: cur.kind, rttMs: cur.rttMs })) this.#toDirect(best, now)
  }

  #toDirect (c: Candidate, now: number): void {
    const k = key(c.ip, c.port)
    if (this.#state.state === 'direct' && this.#state.key === k) return
    this.#state = { state: 'direct', key: k, since: now }
    this.#lost = false
    this.#pathChanges++
    this.#directAt ??= now
    if (c.sock !== 0) this.#io.adoptSocket(c.sock)
    this.#io.setRoute({ ip: c.ip, port: c.port, sock: c.sock })
    this.#io.log('direct path', { endpoint: formatEndpoint(c.ip, c.port), kind: c.kind, rttMs: c.rttMs })
  }

  #toRelay (reason: RelayReason, now: number): void {
    if (this.#state.state === 'relay') { this.#setRelayReason(reason, now); return }
    this.#state = { state: 'relay', reason, since: now }
    this.#pathChanges++
    this.#io.setRoute(null)
    this.#io.log('back to the relay', { reason })
  }

  #setRelayReason (reason: RelayReason, now: number): void {
    if (this.#state.state === 'relay' && this.#state.reason !== reason) this.#state = { state: 'relay', reason, since: this.#state.since }
    void now
  }

  #idleReason (): RelayReason {
    if (!this.#session) return 'NO_SESSION'
    if (this.candidates.size === 0) return 'NO_CANDIDATES'
    const s = this.strategy
    if (s.reason !== null) return s.reason
    if (this.#bday !== null) return 'BIRTHDAY_SEARCH'
    if (this.#lost) return 'PATH_LOST'
    const local = this.#io.localNat()
    const peer = this.peerNat
    // A symmetric side that got no answer from a cone side: the cone side filters by port.
    if ((local === 'edm' && peer === 'eim') || (peer === 'edm' && local === 'eim')) return 'SYMMETRIC_PORT_RESTRICTED'
    return 'NO_ANSWER'
  }

  status (enabled: boolean, now: number): P2pStatus {
    const cands: CandidateStatus[] = [...this.candidates.values()].map(c => ({
      endpoint: formatEndpoint(c.ip, c.port),
      kind: c.kind,
      state: now < c.holdUntil ? 'held-down' : this.#alive(c, now) ? 'confirmed' : c.pingsSent > 0 ? 'probing' : 'untried',
      pingsSent: c.pingsSent,
      pongs: c.pongs,
      rttMs: c.rttMs === null ? null : Math.round(c.rttMs * 100) / 100
    }))
    let lastPong = -Infinity
    for (const c of this.candidates.values()) lastPong = Math.max(lastPong, c.lastPongAt)
    const st = this.#state
    return {
      enabled,
      localNat: NAT_LABEL[this.#io.localNat()],
      peerNat: NAT_LABEL[this.peerNat],
      strategy: this.strategy.strategy,
      relayReason: st.state === 'relay' ? st.reason : null,
      candidates: cands,
      candidatesTried: cands.filter(c => c.pingsSent > 0).length,
      lastPongSec: lastPong === -Infinity ? null : Math.round((now - lastPong) / 100) / 10,
      timeToDirectMs: this.#directAt === null ? null : this.#directAt - this.#knownAt,
      pathChanges: this.#pathChanges,
      pathAgeSec: Math.round((now - st.since) / 10) / 100,
      probesSent: this.#probesSent
    }
  }
}

/** RFC 1918 / link-local: an address only meaningful on a LAN. */
export function isPrivate (ip: number): boolean {
  const a = ip >>> 24
  const b = (ip >>> 16) & 0xff
  return a === 10 || (a === 172 && b >= 16 && b < 32) || (a === 192 && b === 168) || (a === 169 && b === 254)
}
