/**
 * The data of direct-path selection, and its pure comparator: candidate
 * endpoints of a peer, the per-peer path state, why a peer is relayed, and
 * betterPath(). No I/O and no time source: DirectPath (direct-path.ts) owns
 * the candidates and calls these with its `now`.
 *
 *   Path state (per peer):
 *
 *     relay(reason) ──pong from a candidate (not held down)──▶ direct(candidate)
 *        ▲                                                        │
 *        └── MISS_LIMIT probes unanswered and PATH_SILENCE ◀───────┘
 *            without a word on the direct path (overdue probes are
 *            followed up every SUSPECT_PROBE; the candidate is then
 *            held down HOLDDOWN ms: hysteresis)
 */
import { MISS_LIMIT, PATH_SILENCE, SUSPECT_PROBE, TRUST_IDLE } from './constants.js'

/** 'mapped': the peer's router's address with another port than the server sees, advertised by the peer: its port mapping (port-mapping.ts); ranked and probed like 'public'. */
export type CandidateKind = 'lan' | 'public' | 'mapped' | 'learned'

export interface PathScore {
  /** 'relay' for the relay path. */
  kind: CandidateKind | 'relay'
  /** Smoothed round-trip time, or null when unmeasured. */
  rttMs: number | null
}

/** LAN candidates (same network, no NAT between) rank above everything else direct. */
export function rank (k: PathScore['kind']): number {
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

/** One endpoint of a peer we may reach directly. Owned and mutated by the peer's DirectPath (main thread). */
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
  /** Smoothed round-trip time, ms (EWMA, 1/5 weight on the newest sample), or null before the first Pong. */
  rttMs: number | null
  lowTtlSent: boolean
  /** Not to be used as the path before this time (it failed: hysteresis). */
  holdUntil: number
  /** From the server's peer list or a Punch message (still advertised). */
  advertised: boolean
  /** Our socket that reaches it: 0 the main one, else a probe socket (birthday search); where we last heard it. */
  sock: number
}

export function newCandidate (ip: number, port: number, kind: CandidateKind): Candidate {
  return {
    ip, port, kind, pingsSent: 0, pongs: 0, lastPingAt: -Infinity, lastHeardAt: -Infinity, lastPongAt: -Infinity,
    unanswered: 0, rttMs: null, lowTtlSent: kind === 'lan', holdUntil: -Infinity, advertised: false, sock: 0
  }
}

/**
 * A candidate is confirmed: answered at least once, heard from within
 * TRUST_IDLE, and not failing — failing is MISS_LIMIT probes in a row
 * unanswered and silent for silenceLimit (both: no flapping on a hiccup).
 */
export function candidateAlive (c: Candidate, now: number): boolean {
  if (c.pongs === 0 || c.lastPongAt === -Infinity || now - c.lastHeardAt >= TRUST_IDLE) return false
  return c.unanswered < MISS_LIMIT || now - c.lastHeardAt < silenceLimit(c)
}

/** How long a candidate with MISS_LIMIT unanswered probes may stay silent before it counts as failed, ms: PATH_SILENCE, or 4 round trips on a slow path. */
export function silenceLimit (c: Candidate): number {
  return Math.max(PATH_SILENCE, 4 * (c.rttMs ?? 0))
}

/** After this long without a Pong, a probe is overdue: the candidate is probed again (SUSPECT_PROBE, or 2 round trips on a slow path), ms. */
export function suspectGap (c: Candidate): number {
  return Math.max(SUSPECT_PROBE, 2 * (c.rttMs ?? 0))
}

/** The candidate's newest probe is unanswered so far (a Pong, or a Ping from the peer over it, answers). */
export function awaitingAnswer (c: Candidate): boolean {
  return c.lastPingAt > c.lastHeardAt
}

/** A candidate's status word: 'held-down' | 'confirmed' | 'probing' | 'untried'. */
export function candidateState (c: Candidate, now: number): 'untried' | 'probing' | 'confirmed' | 'held-down' {
  return now < c.holdUntil ? 'held-down' : candidateAlive(c, now) ? 'confirmed' : c.pingsSent > 0 ? 'probing' : 'untried'
}

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

export type PathState =
  | { state: 'relay', reason: RelayReason, since: number }
  | { state: 'direct', key: number, since: number }

/** RFC 1918 / link-local: an address only meaningful on a LAN. */
export function isPrivate (ip: number): boolean {
  const a = ip >>> 24
  const b = (ip >>> 16) & 0xff
  return a === 10 || (a === 172 && b >= 16 && b < 32) || (a === 192 && b === 168) || (a === 169 && b === 254)
}
