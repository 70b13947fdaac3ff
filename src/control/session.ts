/**
 * Sessions and handshakes of one remote (the server, a client, or a peer),
 * as explicit state on the main thread. The keys of a confirmed session are
 * handed to the dataplane; the control keys stay here (ControlChannel).
 *
 *   Handshake (initiator side):
 *
 *     idle ──start()──▶ initSent ──response──▶ idle   (session becomes current)
 *                         │  ▲
 *                         └──┘ retry every HANDSHAKE_RETRY (+ jitter)
 *
 *   Session slots per remote:
 *     pending  – responder side, waiting for the initiator's Confirm;
 *     current  – used for sending; receives too;
 *     previous – still receives for PREVIOUS_SESSION_GRACE after a rekey.
 */
import { ControlChannel } from '../crypto/control-channel.js'
import type { InitiatorState, SessionKeys } from '../crypto/noise.js'
import { randomBytes } from 'node:crypto'

export type Handshake =
  | { state: 'idle' }
  | { state: 'initSent', localIndex: number, initiator: InitiatorState, message: Uint8Array, startedAt: number, sentAt: number, tries: number }

export interface Session {
  readonly localIndex: number
  readonly remoteIndex: number
  readonly keys: SessionKeys
  readonly ctl: ControlChannel
  readonly createdAt: number
  readonly initiator: boolean
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

/**
 * Receiver indexes: random 32-bit, unique among live sessions of this daemon,
 * never 0. Random (not sequential) so an off-path sender cannot guess them.
 */
export class IndexTable<T> {
  readonly #map = new Map<number, T>()
  allocate (owner: T): number {
    for (;;) {
      const idx = randomBytes(4).readUInt32LE(0)
      if (idx !== 0 && !this.#map.has(idx)) {
        this.#map.set(idx, owner)
        return idx
      }
    }
  }

  get (idx: number): T | undefined { return this.#map.get(idx) }
  delete (idx: number): void { this.#map.delete(idx) }
  get size (): number { return this.#map.size }
}

/** Next retry delay: HANDSHAKE_RETRY doubling every 3 tries, capped, plus jitter. */
export function retryDelay (tries: number, base: number, cap: number, jitter: number): number {
  const d = Math.min(cap, base * 2 ** Math.floor(tries / 3))
  return d + Math.random() * jitter
}

export function randomInstanceId (): Uint8Array {
  return new Uint8Array(randomBytes(16))
}

export function sameBytes (a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}
