/**
 * One peer's direct path: its candidates, probes, path choice and punching
 * schedule. One DirectPath per peer, owned by the ClientController (main
 * thread). Sans-IO: time comes in through `now` arguments, randomness through
 * the injected Random, and everything it does to the world goes through the
 * narrow PathIo interface (send a sealed probe, send a relayed Punch, switch
 * the dataplane route), so unit tests drive it over a FakeNet on a manual
 * clock. The pieces it is made of: path.ts (candidates, betterPath, the
 * state), nat.ts (classification, strategy), birthday.ts (the search);
 * docs/NAT-TRAVERSAL.md explains the design for users.
 *
 *   The relay always carries traffic while the state is relay: nothing waits
 *   for punching. A direct path is used only after a probe round trip over
 *   it (our Ping reached the peer through both NATs and its Pong came back),
 *   kept while its probes are answered, and dropped after MISS_LIMIT
 *   unanswered probes and PATH_SILENCE without a word from it: heartbeats
 *   go ACTIVE_HEARTBEAT apart while data flows, and an overdue one is
 *   followed up every SUSPECT_PROBE by both sides, busy or idle.
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
import { CTL_PUNCH, type Punch } from '../wire/control.js'
import { endpointKey, formatEndpoint } from '../wire/addr.js'
import type { Random } from '../random.js'
import {
  ACTIVE_HEARTBEAT, ACTIVE_WINDOW, BURST_RESTART_GAP, DOUBLE_SYMMETRIC_REPROBE, DOUBLE_SYMMETRIC_ROUNDS, HOLDDOWN, IDLE_KEEPALIVE,
  IDLE_KEEPALIVE_PASSIVE, LOW_TTL, MAX_ADVERTISED, MAX_HANDSHAKE_ENDPOINTS, MAX_CANDIDATES, MAX_PINGS, MAX_SEEN_FROM, PUNCH_MSG_GAP, PUNCH_OFFSETS, RELAY_REPROBE, TRIGGER_GAP
} from './constants.js'
import { NAT_LABEL, chooseStrategy, classifyNat, natFromWire, natToWire, oneSymmetricOneCone, type Endpoint, type NatMapping, type Strategy } from './nat.js'
import {
  awaitingAnswer, betterPath, candidateAlive, candidateState, isPrivate, newCandidate, rank, suspectGap,
  type Candidate, type CandidateKind, type PathState, type RelayReason
} from './path.js'
import { BirthdaySearch } from './birthday.js'
import { RttWindow } from './rtt.js'

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
  /** The peer's birthday Punches we did not spray for (a spray was running, or its budget per BIRTHDAY_RETRY was spent). */
  birthdayPunchesIgnored: number
}

export class DirectPath {
  readonly #io: PathIo
  /** This side sends the idle keepalives (the lower tunnel address). */
  readonly #controlling: boolean
  /** By endpointKey(ip, port). */
  readonly candidates = new Map<number, Candidate>()
  /** Outstanding Pings: txid → the endpoint key probed and when (at most MAX_PINGS, oldest dropped). */
  readonly #pings = new Map<number, { key: number, at: number }>()
  /** Where the peer's probes came from (evidence for its NAT kind). */
  readonly #seenFrom: Endpoint[] = []
  #publicEp: Endpoint | null = null
  #announced: NatMapping = 'unknown'
  #state: PathState
  #session = false
  #burst: { at: number, next: number, rounds: number } | null = null
  #nextReprobe = Infinity
  #lastPunchSent = -Infinity
  #round = 0
  #txid: number
  #lastTrafficAt = -Infinity
  readonly #knownAt: number
  #directAt: number | null = null
  #pathChanges = 0
  #probesSent = 0
  /** Candidate keys from the server's peer list, and from the peer's last Punch. */
  #serverKeys = new Set<number>()
  #punchKeys = new Set<number>()
  /** Candidate keys from the address cache (peer-cache.ts): endpoints confirmed before a restart. */
  #cachedKeys = new Set<number>()
  readonly #bday: BirthdaySearch
  /** The direct path failed and has not come back yet (status says PATH_LOST rather than NO_ANSWER). */
  #lost = false
  /** Round trips of Pongs from one candidate (#rttKey), for status: the candidate's rttMs is a smoothed value for betterPath. */
  readonly #rtt = new RttWindow()
  #rttKey = -1

  constructor (io: PathIo, controlling: boolean, now: number, random: Random) {
    this.#io = io
    this.#controlling = controlling
    this.#knownAt = now
    this.#state = { state: 'relay', reason: 'NO_SESSION', since: now }
    this.#txid = random.int(0x1_0000_0000)
    this.#bday = new BirthdaySearch({
      probe: (ip, port, ttl, sock, track, t) => { this.#probe(ip, port, ttl, sock, track, t) },
      punch: (t) => { this.#sendPunch(t, true) },
      openSockets: (n) => io.openSockets(n),
      closeSockets: (socks) => { io.closeSockets(socks) },
      log: (msg, fields) => { io.log(msg, fields) }
    }, random)
  }

  get state (): PathState { return this.#state }
  get peerNat (): NatMapping { return classifyNat({ announced: this.#announced, reference: this.#publicEp, views: this.#seenFrom }) }
  get strategy (): { strategy: Strategy, reason: RelayReason | null } {
    const s = chooseStrategy(this.#io.localNat(), this.peerNat)
    // The peer's router maps a port for it: that candidate takes our probes whatever our NATs are, so keep punching (rounds every RELAY_REPROBE).
    if (s.strategy === 'relay-only' && [...this.candidates.values()].some(c => c.kind === 'mapped' && c.advertised)) return { strategy: 'punch', reason: null }
    return s
  }

  /** The candidate carrying the peer's traffic, or null while relayed. */
  get directCandidate (): Candidate | null {
    const st = this.#state
    return st.state === 'direct' ? this.candidates.get(st.key) ?? null : null
  }

  /** Lowest round trip over the direct path (of its last RTT_WINDOW Pongs), ms; null while relayed or unmeasured. */
  get directRttMs (): number | null {
    const st = this.#state
    return st.state === 'direct' && st.key === this.#rttKey ? this.#rtt.min : null
  }

  // ── inputs ──

  /** The server's view of the peer: its public endpoint and LAN addresses. */
  setAdvertised (publicEp: Endpoint | null, lan: readonly LanAddr[], now: number): void {
    this.#publicEp = publicEp !== null && publicEp.ip !== 0 ? publicEp : null
    const keys = new Set<number>()
    if (this.#publicEp !== null) {
      this.#addCandidate(this.#publicEp.ip, this.#publicEp.port, 'public')
      keys.add(endpointKey(this.#publicEp.ip, this.#publicEp.port))
    }
    for (const a of lan) {
      if (a.ip === 0 || a.port === 0) continue
      // A host without NAT advertises its public address as its own: it stays 'public'.
      this.#addCandidate(a.ip, a.port, this.#advertisedKind(a, 'lan'))
      keys.add(endpointKey(a.ip, a.port))
    }
    const changed = keys.size !== this.#serverKeys.size || [...keys].some(k => !this.#serverKeys.has(k))
    this.#serverKeys = keys
    this.#markAdvertised()
    this.#prune()
    if (changed && this.#session) this.#trigger(now, true)
  }

  /** Candidates still advertised (by the server or the peer's last Punch) are never pruned. */
  #markAdvertised (): void {
    for (const [k, c] of this.candidates) c.advertised = this.#serverKeys.has(k) || this.#punchKeys.has(k) || this.#cachedKeys.has(k)
  }

  /** Endpoints where the peer answered before a restart (the address cache): candidates to probe and to send handshakes to. */
  remember (eps: readonly Endpoint[]): void {
    for (const e of eps.slice(0, MAX_ADVERTISED)) {
      if (e.ip === 0 || e.port === 0) continue
      this.#addCandidate(e.ip, e.port, isPrivate(e.ip) ? 'lan' : 'public')
      this.#cachedKeys.add(endpointKey(e.ip, e.port))
    }
    this.#markAdvertised()
    this.#prune()
  }

  /**
   * Where to send a handshake when there is no direct path and the relay is
   * down: candidates that answered a probe once (newest first), else the
   * cached ones; at most MAX_HANDSHAKE_ENDPOINTS.
   */
  handshakeEndpoints (): Array<Endpoint & { sock: number }> {
    const known = [...this.candidates.entries()].filter(([k, c]) => c.pongs > 0 || this.#cachedKeys.has(k)).map(([, c]) => c)
    known.sort((a, b) => b.lastHeardAt - a.lastHeardAt)
    return known.slice(0, MAX_HANDSHAKE_ENDPOINTS).map(c => ({ ip: c.ip, port: c.port, sock: c.sock }))
  }

  /** Endpoints confirmed now (the direct one first), for the address cache; main socket only (probe sockets do not survive a restart). */
  confirmedEndpoints (now: number): Endpoint[] {
    const cur = this.directCandidate
    const out: Endpoint[] = cur !== null && cur.sock === 0 ? [{ ip: cur.ip, port: cur.port }] : []
    for (const c of this.candidates.values()) {
      if (c !== cur && c.sock === 0 && candidateAlive(c, now) && out.length < MAX_HANDSHAKE_ENDPOINTS) out.push({ ip: c.ip, port: c.port })
    }
    return out
  }

  /** Our own candidates or NAT kind changed: tell the peer and probe again. */
  localChanged (now: number): void { this.#trigger(now, true) }

  /**
   * Our public endpoint moved (NAT rebinding, roaming): every path from us
   * is a new one, so the hold-downs of paths that failed from the old
   * mapping are lifted (they failed because we moved) and we probe again.
   */
  publicEndpointMoved (now: number): void {
    for (const c of this.candidates.values()) c.holdUntil = -Infinity
    this.#trigger(now, true)
  }

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
      this.#addCandidate(c.ip, c.port, this.#advertisedKind(c, isPrivate(c.ip) ? 'lan' : 'public'))
      keys.add(endpointKey(c.ip, c.port))
    }
    this.#punchKeys = keys
    this.#markAdvertised()
    this.#prune()
    // The symmetric peer opened its birthday sockets: spray its public address.
    if (p.birthday && this.#publicEp !== null && this.#state.state === 'relay') this.#bday.spray(this.#publicEp, now)
    // Answer with our own Punch unless we just sent one: one answer per PUNCH_MSG_GAP, never a loop.
    this.#trigger(now, now - this.#lastPunchSent >= PUNCH_MSG_GAP)
  }

  /** An authenticated Ping from the peer arrived straight from ip:port. */
  onPing (txid: number, ip: number, port: number, now: number, sock = 0): void {
    this.#io.sendProbe('pong', txid, ip, port, null, { ip, port }, sock)
    const c = this.#addCandidate(ip, port, 'learned')
    // Heard on another of our sockets (a birthday-search hit): probe back from it at once.
    const moved = c.sock !== sock
    c.sock = sock
    this.#noteSeen(ip, port)
    c.lastHeardAt = now
    c.unanswered = 0
    // Triggered check: probe the source back at once (this is what opens a
    // port-restricted NAT towards a symmetric peer's new port). Not for a
    // confirmed path: there our Pong is all the peer needs (no doubled keepalives).
    if ((moved || now - c.lastPingAt >= TRIGGER_GAP) && !candidateAlive(c, now)) this.#ping(c, now, null)
    this.#evaluate(now)
  }

  /** An authenticated Pong from the peer arrived straight from ip:port. */
  onPong (txid: number, ip: number, port: number, observed: Endpoint, now: number, sock = 0): void {
    const sent = this.#pings.get(txid)
    if (sent === undefined) return // stale or not ours: ignore
    this.#pings.delete(txid)
    const c = this.candidates.get(sent.key)
    if (c === undefined || c.ip !== ip || c.port !== port) {
      // Return routability: a Pong from elsewhere than where its Ping went proves
      // only that the peer can send with that source (a member could name any
      // address). Probe the source instead; its own Pong confirms it.
      const l = this.#addCandidate(ip, port, 'learned')
      l.sock = sock
      this.#noteSeen(ip, port)
      if (now - l.lastPingAt >= TRIGGER_GAP) this.#ping(l, now, null)
      return
    }
    this.#noteSeen(ip, port)
    c.sock = sock
    const rtt = now - sent.at
    c.rttMs = c.rttMs === null ? rtt : c.rttMs * 0.8 + rtt * 0.2
    const key = endpointKey(c.ip, c.port)
    if (key !== this.#rttKey) { this.#rtt.clear(); this.#rttKey = key }
    this.#rtt.add(rtt)
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
   * rounds (100 ms apart at first), a birthday search (a spray per tick),
   * heartbeats on a direct path carrying traffic (ACTIVE_HEARTBEAT), or the
   * follow-ups of an unanswered probe on it (SUSPECT_PROBE). Anything
   * else here runs on timers of seconds.
   */
  wantsFastTick (now: number): boolean {
    const cur = this.directCandidate
    return this.#burst !== null || this.#bday.running || (cur !== null && (now - this.#lastTrafficAt < ACTIVE_WINDOW || awaitingAnswer(cur)))
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
        // An overdue probe is followed up until the path answers or is dropped, active or not, on either side.
        const overdue = awaitingAnswer(c) && now - c.lastPingAt >= suspectGap(c)
        if (overdue || (now - c.lastPingAt >= gap && (active || this.#controlling || now - c.lastHeardAt >= gap))) this.#ping(c, now, null)
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
    this.#bday.tick(now, {
      direct: this.#state.state === 'direct',
      publicEp: this.#publicEp,
      localNat: this.#io.localNat(),
      peerNat: this.peerNat,
      burstAt: this.#burst?.at ?? null
    })
    this.#evaluate(now)
    if (this.#state.state === 'relay' && this.#burst === null) this.#setRelayReason(this.#idleReason())
  }

  /** Close everything (the peer is gone or we stop). */
  destroy (now: number): void { this.#bday.end(now) }

  // ── internals ──

  /**
   * An endpoint the peer advertises: its public endpoint as the server sees
   * it is 'public'; its router's address with another port is the router's
   * port mapping ('mapped': a client offers its mapping beside its LAN
   * addresses); anything else is `other`.
   */
  #advertisedKind (a: Endpoint, other: CandidateKind): CandidateKind {
    const pub = this.#publicEp
    if (pub === null || a.ip !== pub.ip) return other
    return a.port === pub.port ? 'public' : 'mapped'
  }

  #scheduleReprobe (now: number): void {
    this.#nextReprobe = now + (this.strategy.strategy === 'relay-only' ? DOUBLE_SYMMETRIC_REPROBE : RELAY_REPROBE)
  }

  #sendPunch (now: number, birthday: boolean): void {
    this.#lastPunchSent = now
    this.#io.sendPunch({
      kind: CTL_PUNCH, natKind: natToWire(this.#io.localNat()), round: this.#round, candidates: this.#io.localCandidates().slice(0, MAX_ADVERTISED), birthday
    })
  }

  /** Start (or restart) a burst of probe rounds; with `tellPeer`, send a Punch so the peer starts at the same moment. */
  #trigger (now: number, tellPeer: boolean): void {
    if (!this.#session) return
    if (tellPeer) this.#sendPunch(now, false)
    if (this.#burst !== null && now - this.#burst.at < BURST_RESTART_GAP) return // a burst is already running
    this.#burst = { at: now, next: now, rounds: 0 }
    if (this.#state.state === 'relay') this.#setRelayReason(this.#lost ? 'PATH_LOST' : 'PUNCHING')
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

  /** Ping a candidate; a full-TTL ping is a probe that counts (pingsSent, misses). */
  #ping (c: Candidate, now: number, ttl: number | null): void {
    if (ttl === null) {
      // Count a miss only for probes after the previous one went unanswered for a while.
      if (c.lastPingAt > c.lastHeardAt && c.pingsSent > 0) c.unanswered++
      c.pingsSent++
      c.lastPingAt = now
    }
    this.#probe(c.ip, c.port, ttl, c.sock, ttl === null, now)
  }

  /** Send one Ping with a fresh txid; with `track`, remember it so its Pong is matched to ip:port. */
  #probe (ip: number, port: number, ttl: number | null, sock: number, track: boolean, now: number): void {
    const txid = this.#txid = (this.#txid + 1) >>> 0
    if (track) {
      this.#pings.set(txid, { key: endpointKey(ip, port), at: now })
      if (this.#pings.size > MAX_PINGS) this.#pings.delete(this.#pings.keys().next().value!)
    }
    this.#probesSent++
    this.#io.sendProbe('ping', txid, ip, port, ttl, null, sock)
  }

  #addCandidate (ip: number, port: number, kind: CandidateKind): Candidate {
    const k = endpointKey(ip, port)
    let c = this.candidates.get(k)
    if (c === undefined) {
      c = newCandidate(ip, port, kind)
      this.candidates.set(k, c)
    } else if (rank(kind) > rank(c.kind) || (c.kind === 'learned' && kind !== 'learned') || (c.kind === 'mapped' && kind === 'public')) {
      // 'mapped' → 'public': the server now sees the peer at that port (a rebinding looked like a mapping until it caught up).
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
    if (this.#seenFrom.length > MAX_SEEN_FROM) this.#seenFrom.shift()
  }

  #best (now: number): Candidate | null {
    let best: Candidate | null = null
    for (const c of this.candidates.values()) {
      if (!candidateAlive(c, now) || now < c.holdUntil) continue
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
    if (cur === undefined || !candidateAlive(cur, now)) {
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
    const k = endpointKey(c.ip, c.port)
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
    if (this.#state.state === 'relay') { this.#setRelayReason(reason); return }
    this.#state = { state: 'relay', reason, since: now }
    this.#pathChanges++
    this.#io.setRoute(null)
    this.#io.log('back to the relay', { reason })
  }

  /** A new reason for the relay, keeping its `since`. */
  #setRelayReason (reason: RelayReason): void {
    if (this.#state.state === 'relay' && this.#state.reason !== reason) this.#state = { state: 'relay', reason, since: this.#state.since }
  }

  #idleReason (): RelayReason {
    if (!this.#session) return 'NO_SESSION'
    if (this.candidates.size === 0) return 'NO_CANDIDATES'
    const s = this.strategy
    if (s.reason !== null) return s.reason
    if (this.#bday.running) return 'BIRTHDAY_SEARCH'
    if (this.#lost) return 'PATH_LOST'
    // A symmetric side that got no answer from a cone side: the cone side filters by port.
    if (oneSymmetricOneCone(this.#io.localNat(), this.peerNat)) return 'SYMMETRIC_PORT_RESTRICTED'
    return 'NO_ANSWER'
  }

  status (enabled: boolean, now: number): P2pStatus {
    const cands: CandidateStatus[] = [...this.candidates.values()].map(c => ({
      endpoint: formatEndpoint(c.ip, c.port),
      kind: c.kind,
      state: candidateState(c, now),
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
      probesSent: this.#probesSent,
      birthdayPunchesIgnored: this.#bday.punchesIgnored
    }
  }
}
