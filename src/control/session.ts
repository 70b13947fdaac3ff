/**
 * Sessions and handshakes of one remote (the server, a client, or a peer),
 * as explicit state on the main thread, and the three things both
 * controllers do with them: open a sealed control message (find the session
 * by receiver index, authenticate, check replay, decode), rotate a newly
 * confirmed session in, and expire old ones. The keys of a confirmed session
 * are handed to the dataplane; the control keys stay here (ControlChannel).
 *
 *   Handshake (initiator side):
 *
 *     idle ──start()──▶ initSent ──response──▶ idle   (session becomes current)
 *                         │  ▲
 *                         └──┘ retry every HANDSHAKE_RETRY (+ jitter)
 *
 *   Session slots per remote (installCurrent / confirmPending / expireSessions):
 *
 *     pending ──Confirm──▶ current ──a newer one installed──▶ previous ──PREVIOUS_SESSION_GRACE──▶ dropped
 *       │                    └──older than REJECT_AFTER──▶ dropped, and the dataplane's send key cleared
 *       └──unconfirmed for PENDING_SESSION_TIMEOUT──▶ dropped
 *
 *     pending  – responder side, waiting for the initiator's Confirm;
 *     current  – used for sending; receives too;
 *     previous – still receives for PREVIOUS_SESSION_GRACE after a rekey.
 *
 * "Dropped" means the caller's `drop(session)`: forget the receiver index
 * here and in the dataplane, and wipe the session's keys (wipeSession).
 *
 * Limits (PROTOCOL §10): the initiator rekeys after REKEY_AFTER (its
 * controller's tick); no session older than REJECT_AFTER sends (current is
 * dropped at the first tick past it and the dataplane's send key cleared,
 * so its packets wait for a new session) or is accepted (openSealedControl
 * refuses it at once; its data receive key goes at that same tick). The
 * message-count limits are the dataplane's (outbound.ts: SEND_LIMIT at
 * REKEY_AFTER_MESSAGES, the key retired at REJECT_AFTER_MESSAGES) and
 * ControlChannel's.
 */
import { ControlChannel } from '../crypto/control-channel.js'
import type { InitiatorState, SessionKeys } from '../crypto/noise.js'
import type { Random } from '../random.js'
import { decodeControl, type ControlKind, type ControlMessage } from '../wire/control.js'
import { MSG_CONTROL } from '../wire/messages.js'
import { PENDING_SESSION_TIMEOUT, PREVIOUS_SESSION_GRACE, REJECT_AFTER } from './constants.js'

export type Handshake =
  | { state: 'idle' }
  /** An init is out: its receiver index, the Noise state to finish it, when it was sent and how many inits this handshake has sent. */
  | { state: 'initSent', localIndex: number, initiator: InitiatorState, sentAt: number, tries: number }

export interface Session {
  readonly localIndex: number
  readonly remoteIndex: number
  readonly keys: SessionKeys
  readonly ctl: ControlChannel
  readonly createdAt: number
  readonly initiator: boolean
  /** FEC on this session (both sides offered it; control/fec-negotiation.ts): our sending parameters, else null/absent. */
  fec?: { readonly data: number, readonly parity: number } | null
}

export function newSession (localIndex: number, remoteIndex: number, keys: SessionKeys, now: number, initiator: boolean): Session {
  return {
    localIndex,
    remoteIndex,
    keys,
    ctl: new ControlChannel({ send: keys.ctlSend, recv: keys.ctlRecv }, remoteIndex),
    createdAt: now,
    initiator
  }
}

/** The session slots of one remote. */
export interface SessionSet {
  pending: Session | null
  current: Session | null
  previous: Session | null
  /** When `previous` stops being accepted. */
  previousUntil: number
  hs: Handshake
}

export function emptySessionSet (): SessionSet {
  return { pending: null, current: null, previous: null, previousUntil: 0, hs: { state: 'idle' } }
}

/** Every session of a set (for lookups and teardown). */
export function sessionsOf (s: SessionSet): Session[] {
  const out: Session[] = []
  if (s.pending) out.push(s.pending)
  if (s.current) out.push(s.current)
  if (s.previous) out.push(s.previous)
  return out
}

/** A set as status shows it: 'established' | 'handshaking' | 'none'. */
export function describeSessions (s: SessionSet): 'established' | 'handshaking' | 'none' {
  return s.current ? 'established' : (s.hs.state === 'initSent' ? 'handshaking' : 'none')
}

// ── rotation and expiry ──────────────────────────────────────────────────────

/** Make `s` the current session of a set; the old current becomes previous (receive-only until now + PREVIOUS_SESSION_GRACE). */
export function installCurrent (ss: SessionSet, s: Session, now: number, drop: (s: Session) => void): void {
  if (ss.current !== null && ss.current !== s) {
    if (ss.previous !== null) drop(ss.previous)
    ss.previous = ss.current
    ss.previousUntil = now + PREVIOUS_SESSION_GRACE
  }
  ss.current = s
}

/** The initiator confirmed our pending session: it becomes current. */
export function confirmPending (ss: SessionSet, s: Session, now: number, drop: (s: Session) => void): void {
  installCurrent(ss, s, now, drop)
  ss.pending = null
}

/**
 * Drop what has aged out: previous after its grace, pending after
 * PENDING_SESSION_TIMEOUT, and with `rejectOld` current after REJECT_AFTER,
 * calling `clearSend` then (the dataplane must stop sending with its key).
 * Both controllers pass rejectOld = true: a session is never used past
 * REJECT_AFTER, whoever initiated it. Returns whether a pending session expired.
 */
export function expireSessions (ss: SessionSet, now: number, drop: (s: Session) => void, rejectOld: boolean, clearSend?: () => void): boolean {
  if (ss.previous !== null && now > ss.previousUntil) { drop(ss.previous); ss.previous = null }
  let pendingExpired = false
  if (ss.pending !== null && now - ss.pending.createdAt > PENDING_SESSION_TIMEOUT) { drop(ss.pending); ss.pending = null; pendingExpired = true }
  if (rejectOld && ss.current !== null && isExpired(ss.current, now)) {
    drop(ss.current)
    ss.current = null
    clearSend?.()
  }
  return pendingExpired
}

/** Older than REJECT_AFTER: nothing is sent or accepted on it any more. */
export function isExpired (s: Session, now: number): boolean {
  return now - s.createdAt > REJECT_AFTER
}

/**
 * Overwrite a dropped session's key material with zeros (its four keys and
 * its control channel's copies). Only these Uint8Arrays: the dataplane has
 * its own copies (wiped when the index or key is removed), and what the
 * garbage collector may have copied before cannot be reached.
 */
export function wipeSession (s: Session): void {
  s.keys.dataSend.fill(0)
  s.keys.dataRecv.fill(0)
  s.keys.ctlSend.fill(0)
  s.keys.ctlRecv.fill(0)
  s.ctl.wipe()
}

// ── receiver indexes and sealed control messages ─────────────────────────────

/**
 * Receiver indexes: random 32-bit, unique among live sessions of this daemon,
 * never 0. Random (not sequential) so an off-path sender cannot guess them.
 */
export class IndexTable<T> {
  readonly #map = new Map<number, T>()
  readonly #random: Random
  constructor (random: Random) { this.#random = random }

  allocate (owner: T): number {
    for (;;) {
      const b = this.#random.bytes(4)
      const idx = (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0
      if (idx !== 0 && !this.#map.has(idx)) {
        this.#map.set(idx, owner)
        return idx
      }
    }
  }

  get (idx: number): T | undefined { return this.#map.get(idx) }
  /** Hands an allocated index to another owner (a confirmed registration takes over its pending entry's session). */
  reassign (idx: number, owner: T): void { if (this.#map.has(idx)) this.#map.set(idx, owner) }
  delete (idx: number): void { this.#map.delete(idx) }
  get size (): number { return this.#map.size }
}

/** Why a sealed control message was not accepted (the caller counts, rejects or ignores). */
export type SealedReject =
  | 'malformed' // shorter than a sealed header + tag, or not wire type 3
  | 'unknown-index' // no session of ours has that receiver index
  | 'refused' // the index belongs to an owner the caller does not accept here
  | 'no-session' // the owner no longer holds a session with that index
  | 'expired' // the session is older than REJECT_AFTER (refused before any decryption)
  | 'unauthenticated' // the tag fails, or the counter is a replay (ControlChannel.rejected says which)
  | 'undecodable' // authentic, but not a control message we can decode
  | 'unexpected-kind' // decoded, but not one of the kinds asked for

export type SealedControl<T> =
  | { ok: true, owner: T, session: Session, msg: ControlMessage }
  | { ok: false, why: SealedReject, index: number }

/** Smallest sealed control message: 16-byte header + 16-byte tag. */
const SEALED_MIN = 32

/**
 * Open a sealed control message (wire type 3), the one way both controllers
 * do it: receiver index (bytes 4..8) → owner → its session with that index →
 * ControlChannel.open (tag, replay window) → decodeControl. `accept` vets the
 * owner before anything is decrypted (a relayed message must come from the
 * peer the envelope names, a NAT check from an active client); `kinds`
 * restricts the message kinds. With `now`, a session older than
 * REJECT_AFTER is refused ('expired') even before the tick drops it.
 */
export function openSealedControl<T extends { sessions: SessionSet }> (
  bytes: Uint8Array, indexes: IndexTable<T>, accept?: (owner: T) => boolean, kinds?: readonly ControlKind[], now?: number
): SealedControl<T> {
  if (bytes.length < SEALED_MIN || bytes[0] !== MSG_CONTROL) return { ok: false, why: 'malformed', index: 0 }
  const index = new DataView(bytes.buffer, bytes.byteOffset).getUint32(4, true)
  const owner = indexes.get(index)
  if (owner === undefined) return { ok: false, why: 'unknown-index', index }
  if (accept !== undefined && !accept(owner)) return { ok: false, why: 'refused', index }
  const session = sessionsOf(owner.sessions).find(x => x.localIndex === index)
  if (session === undefined) return { ok: false, why: 'no-session', index }
  if (now !== undefined && isExpired(session, now)) return { ok: false, why: 'expired', index }
  const plain = session.ctl.open(bytes)
  if (plain === null) return { ok: false, why: 'unauthenticated', index }
  let msg: ControlMessage
  try { msg = decodeControl(plain) } catch { return { ok: false, why: 'undecodable', index } }
  if (kinds !== undefined && !kinds.includes(msg.kind)) return { ok: false, why: 'unexpected-kind', index }
  return { ok: true, owner, session, msg }
}

// ── small helpers ────────────────────────────────────────────────────────────

/** Next retry delay: `base` doubling every 3 tries, capped at `cap`, plus a uniform jitter in [0, jitter). */
export function retryDelay (tries: number, base: number, cap: number, jitter: number, random: Random): number {
  const d = Math.min(cap, base * 2 ** Math.floor(tries / 3))
  return d + random.float() * jitter
}

export function sameBytes (a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}
