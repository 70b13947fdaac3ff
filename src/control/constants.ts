/**
 * Control-plane timers and limits, in milliseconds on the injected monotonic
 * Clock unless noted: the only set (wire/constants.ts keeps the protocol's
 * crypto identifiers, counter limits and sizes). Values follow WireGuard's
 * where the meaning is the same (whitepaper §6.1 "Timers & Stateless UX",
 * wireguard-go device/constants.go); docs/PROTOCOL.md §10 and §13 are the
 * prose version, docs/NAT-TRAVERSAL.md explains the direct-path ones.
 */

// ── sessions and handshakes (PROTOCOL.md §10) ────────────────────────────────

/**
 * TEST ONLY: `LWT_TEST_TIME_SCALE=N` (an integer 2…1000) divides the session
 * lifetimes below (REKEY_AFTER, REJECT_AFTER) by N, so a test can run a
 * daemon through several session lifetimes in seconds (test/e2e/outage.test.ts).
 * Read here and nowhere else; unset, malformed or out of range: 1. Never set
 * it in production: sessions would be replaced N times as often.
 */
export const TEST_TIME_SCALE = testTimeScale(process.env.LWT_TEST_TIME_SCALE)

export function testTimeScale (v: string | undefined): number {
  if (v === undefined || !/^[0-9]{1,4}$/.test(v)) return 1
  const n = Number(v)
  return n >= 2 && n <= 1000 ? n : 1
}

/**
 * The initiator of a session starts a new handshake once the session is this
 * old (WireGuard REKEY_AFTER_TIME = 120 s). Only the initiator rekeys on time,
 * so the two ends never race to replace the same session.
 */
export const REKEY_AFTER = 120_000 / TEST_TIME_SCALE
/**
 * Never use a session older than this (WireGuard REJECT_AFTER_TIME = 180 s):
 * the REJECT_AFTER − REKEY_AFTER = 60 s margin covers the rekey handshake.
 */
export const REJECT_AFTER = 180_000 / TEST_TIME_SCALE
/** Retransmit a handshake init after this long without a response (WireGuard REKEY_TIMEOUT 5 s is tuned for the internet; our first try should be quick). */
export const HANDSHAKE_RETRY = 1_000
/** Random extra delay in [0, RETRY_JITTER) added to every retry, so many clients do not retry in lockstep (WireGuard: up to 333 ms on 5 s). */
export const RETRY_JITTER = 250
/** Back off to this interval at most between registration attempts. */
export const REGISTER_BACKOFF_MAX = 16_000
/** Give up a peer-to-peer handshake after this many tries (until the dataplane asks again). */
export const PEER_HANDSHAKE_TRIES = 5
/** Keep the previous session for receiving this long after a new one is confirmed (packets in flight). */
export const PREVIOUS_SESSION_GRACE = 30_000
/** A responder's unconfirmed session is forgotten after this long. */
export const PENDING_SESSION_TIMEOUT = 15_000

// ── ticks ────────────────────────────────────────────────────────────────────

/** Control-plane tick. */
export const TICK = 250
/** A client's tick: finer, because punch rounds and direct-path heartbeats are 100–400 ms apart (control/direct-path.ts). */
export const CLIENT_TICK = 50
/** A client's tick when nothing time-critical is under way (no punching, birthday search, handshake or busy direct path): 4 wake-ups a second instead of 20. */
export const CLIENT_IDLE_TICK = 250

// ── server: rejects and peer lists ───────────────────────────────────────────

/** At most one reject to the same source address per this interval. */
export const REJECT_INTERVAL = 1_000
/** Rejects sent per second at most, all sources together. */
export const REJECT_BUDGET_PER_SEC = 200
/** Log a wrong-key source address at most once per this interval. */
export const WRONG_KEY_LOG_INTERVAL = 60_000
/** Bounded memory for per-source rate limits. */
export const RATE_TABLE_MAX = 4096
/** A client's new source endpoint is checked (a Ping there, moved on its Pong) at most once per this interval per endpoint. */
export const ROAM_CHECK_GAP = 500
/** Coalesce peer-list changes and push them to clients at most this often. */
export const PEER_UPDATE_INTERVAL = 100
/**
 * Unconfirmed registrations (an OK sent, no Confirm yet) from one source IP
 * at once: a fifth evicts that source's oldest. They hold no client slot and
 * no address (control/pending-registrations.ts), so a member cannot fill
 * --max-clients with them; 4 lets a few clients behind one NAT register together.
 */
export const PENDING_PER_SOURCE = 4
/** Unconfirmed registrations at once, all sources: beyond it the oldest is evicted (bounded memory under a flood of valid inits). */
export const PENDING_MAX = 1024
/** An unconfirmed registration is forgotten after this long (ms; a client confirms within one round trip, and retries after HANDSHAKE_RETRY). */
export const PENDING_REGISTRATION_TTL = 10_000

// ── client: registration, NAT check, peer sessions ───────────────────────────

/** Re-register at most once per this interval when the server says it lost our session. */
export const UNKNOWN_SESSION_REREGISTER_INTERVAL = 2_000
/** A refused registration is tried again no sooner than this. */
export const REFUSED_RETRY_MIN = 5_000
/** A REJECT for relayed packets from an unknown source (index 0), or a lost direct path, pings the server at most this often. */
export const LOST_PING_INTERVAL = 500
/** The server answers NAT checks on its port + this (a second destination shows whether our NAT maps per destination). */
export const NAT_CHECK_PORT_OFFSET = 1
/** NAT checks to the server's second port: at registration, then this often while the result is unknown. */
export const NAT_CHECK_INTERVAL = 2_000
/** A controlling client (the lower tunnel address) starts the end-to-end session with a new peer this often at most. */
export const PROACTIVE_SESSION_RETRY = 5_000
/**
 * … and only this long after learning of it: the server pushes peer-list
 * changes every PEER_UPDATE_INTERVAL (100 ms), so the peer may not know us
 * yet, and an init from an unknown peer is dropped (a 1-s retry: measured as
 * the slow half of the time-to-direct matrix before this delay).
 */
export const PROACTIVE_SESSION_DELAY = 200
/**
 * A peer on a working direct path that a full peer list leaves out is kept
 * this long before it is dropped (unless the list names it again): longer
 * than a client's longest registration backoff (16 s) plus a keepalive, so
 * peers re-registering after a server restart are back in the list first.
 */
export const UNLISTED_GRACE = 30_000
/** At most one handshake per this interval because a peer sends on a session we do not have. */
export const PEER_RESYNC_INTERVAL = 2_000
/** With direct paths on, the first retry of a peer handshake comes this soon (the init may have raced the peer list). */
export const PEER_FIRST_RETRY = 400

// ── direct paths (control/direct-path.ts, docs/NAT-TRAVERSAL.md) ─────────────

/** Probe rounds after a trigger, as offsets from it. Dense first (lab RTT ≈ 0, internet ≲ 300 ms), then 1 s apart. */
export const PUNCH_OFFSETS: readonly number[] = [0, 100, 250, 500, 1000, 1500, 2000, 3000, 4000, 5000]
/** While relayed (and punching can work), one probe round this often: a healed path is direct again within ~this + 1 RTT. */
export const RELAY_REPROBE = 3_000
/** Both NATs symmetric: probes are pointless; one round this often only, in case a NAT changed (bounded budget). */
export const DOUBLE_SYMMETRIC_REPROBE = 120_000
/** Double-symmetric pairs send at most this many probe rounds per trigger. */
export const DOUBLE_SYMMETRIC_ROUNDS = 4
/** A trigger within this long of the running burst's start does not restart it. */
export const BURST_RESTART_GAP = 1_000
/** Heartbeat on the direct path while data flows: the first probe after a path dies goes out within this. */
export const ACTIVE_HEARTBEAT = 400
/**
 * A direct path is dropped when MISS_LIMIT probes in a row went unanswered
 * AND nothing was heard over it for PATH_SILENCE (or 4 round trips, if
 * longer). Both guard against flapping: one or two lost Pongs never drop a
 * working path, nor does an outage shorter than PATH_SILENCE −
 * ACTIVE_HEARTBEAT − SUSPECT_PROBE = 600 ms whatever the heartbeat phase (a
 * burst of loss, a queue spike); a dropped candidate is then held down
 * HOLDDOWN ms. With SUSPECT_PROBE follow-ups a dead path is dropped
 * 0.8–1.2 s after it died, by the heartbeat phase (goals: failover ≤ 3 s,
 * traffic again ≤ 2 s after a NAT rebinding).
 */
export const MISS_LIMIT = 3
export const PATH_SILENCE = 1_200
/**
 * A probe on the direct path unanswered for this long (or 2 round trips, if
 * longer) makes the path suspect: it is probed again this often until it
 * answers or is dropped, on both sides, whether data flows or not. Before,
 * a side whose traffic stopped with the outage (it only answers the other's
 * packets) left the 400-ms heartbeat ACTIVE_WINDOW after its last packet,
 * sometimes before its misses were counted; on a loaded machine (ticks
 * 80 ms late) it then kept a dead path until its next keepalive, and a NAT
 * rebinding cost 2.1 s to ≥ 6 s of traffic (test/control/p2p.test.ts).
 */
export const SUSPECT_PROBE = 200
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

/** Bounded memory: candidates per peer, outstanding pings, endpoints a peer's probes came from, our own observations. */
export const MAX_CANDIDATES = 16
export const MAX_PINGS = 64
export const MAX_SEEN_FROM = 8
export const MAX_OBSERVATIONS = 8
/** Candidates (ours in a Punch, LAN addresses in a registration) sent at most (wire MAX_PUNCH_CANDIDATES, MAX_LAN_ADDRS). */
export const MAX_ADVERTISED = 8
/** A handshake without a direct path and without the server goes to at most this many endpoints where the peer answered before (and the address cache keeps as many per peer). */
export const MAX_HANDSHAKE_ENDPOINTS = 4
