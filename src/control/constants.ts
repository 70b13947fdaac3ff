/**
 * Protocol timers, in milliseconds. Values follow WireGuard's where the
 * meaning is the same (whitepaper §6.1, wireguard-go device/constants.go).
 */
/** Start a new handshake on a session this old (WireGuard REKEY_AFTER_TIME). */
export const REKEY_AFTER = 120_000
/** Never use a session older than this (WireGuard REJECT_AFTER_TIME). */
export const REJECT_AFTER = 180_000
/** Retransmit a handshake init after this long without a response (WireGuard REKEY_TIMEOUT 5 s is tuned for the internet; our first try should be quick). */
export const HANDSHAKE_RETRY = 1_000
/** Random extra delay added to every retry, so many clients do not retry in lockstep. */
export const RETRY_JITTER = 250
/** Back off to this interval at most between registration attempts. */
export const REGISTER_BACKOFF_MAX = 16_000
/** Give up a peer-to-peer handshake after this many tries (until the dataplane asks again). */
export const PEER_HANDSHAKE_TRIES = 5
/** Keep the previous session for receiving this long after a new one is confirmed (packets in flight). */
export const PREVIOUS_SESSION_GRACE = 30_000
/** A responder's unconfirmed session is forgotten after this long. */
export const PENDING_SESSION_TIMEOUT = 15_000
/** Control-plane tick. */
export const TICK = 250
/** A client's tick: finer, because punch rounds and direct-path heartbeats are 100–400 ms apart (control/p2p.ts). */
export const CLIENT_TICK = 50
/** A client's tick when nothing time-critical is under way (no punching, birthday search, handshake or busy direct path): 4 wake-ups a second instead of 20. */
export const CLIENT_IDLE_TICK = 250
/** At most one reject to the same source address per this interval. */
export const REJECT_INTERVAL = 1_000
/** Rejects sent per second at most, all sources together. */
export const REJECT_BUDGET_PER_SEC = 200
/** Log a wrong-key source address at most once per this interval. */
export const WRONG_KEY_LOG_INTERVAL = 60_000
/** Bounded memory for per-source rate limits. */
export const RATE_TABLE_MAX = 4096
/** Re-register at most once per this interval when the server says it lost our session. */
export const UNKNOWN_SESSION_REREGISTER_INTERVAL = 2_000
/** Coalesce peer-list changes and push them to clients at most this often. */
export const PEER_UPDATE_INTERVAL = 100
