/**
 * Transport-message AEAD (wire types 3 and 4) through node:crypto (crypto/aead.ts),
 * and ControlChannel, the control-message endpoint of one session.
 *
 * Sealing a transport message (layout in wire/messages.ts):
 *
 *   header = type | 0 0 0 | receiverIndex u32 LE | counter u64 LE      (16 bytes)
 *   nonce  = 00 00 00 00 | counter u64 LE  (= header[8..16])            (12 bytes)
 *   body   = ChaCha20-Poly1305(key, nonce, aad = header, payload)       (payload + 16-byte tag)
 *   message = header | body
 *
 * Keys and counters: each session has four keys (crypto/noise.ts
 * SessionKeys). Data keys (type 4) belong to the data path in the worker
 * threads, which keep their own counters and replay windows; control keys
 * (type 3) belong to the ControlChannel on the main thread, with a separate
 * counter starting at 0. Because the keys differ, the two counter spaces may
 * overlap without ever reusing a (key, nonce) pair.
 *
 * sealTransport/openTransport are the reference implementation of the data
 * path's AEAD too (the native/worker code must match them byte for byte, and
 * falls back to them).
 */
import { aeadOpen, aeadSeal } from './aead.js'
import { VpnError, WireError } from '../errors.js'
import { KEY_LEN, REJECT_AFTER_MESSAGES } from '../wire/constants.js'
import {
  MAX_COUNTER, MSG_CONTROL, MSG_DATA, TAG_LEN, TRANSPORT_COUNTER_OFFSET, TRANSPORT_HEADER_LEN, TRANSPORT_MIN,
  type TransportType, readU32, readU64, writeTransportHeader
} from '../wire/messages.js'
import { ReplayWindow } from './replay.js'

function transportNonce (header: Uint8Array, off: number): Uint8Array {
  const n = new Uint8Array(12)
  n.set(header.subarray(off + TRANSPORT_COUNTER_OFFSET, off + TRANSPORT_HEADER_LEN), 4)
  return n
}

/**
 * Seals `payload` into a complete transport message at out[offset]; returns
 * the bytes written (16 + payload.length + 16). Throws WireError on invalid
 * header fields or when `out` is too small, VpnError for a wrong key size.
 * `counter` must never repeat for the same key (the caller's contract).
 */
export function sealTransportInto (type: TransportType, key: Uint8Array, receiverIndex: number, counter: number, payload: Uint8Array,
  out: Uint8Array, offset: number): number {
  if (key.length !== KEY_LEN) throw new VpnError('ERR_HANDSHAKE', `transport key must be ${KEY_LEN} bytes`)
  const len = TRANSPORT_HEADER_LEN + payload.length + TAG_LEN
  writeTransportHeader(out, offset, type, receiverIndex, counter) // validates type, index, counter, room for the header
  if (out.length - offset < len) throw new WireError(`buffer too small for a ${len}-byte transport message`)
  const header = out.subarray(offset, offset + TRANSPORT_HEADER_LEN)
  out.set(aeadSeal(key, transportNonce(out, offset), header, payload), offset + TRANSPORT_HEADER_LEN)
  return len
}

/** Allocating form of sealTransportInto: returns the complete type-3/4 message. */
export function sealTransport (type: TransportType, key: Uint8Array, receiverIndex: number, counter: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(TRANSPORT_HEADER_LEN + payload.length + TAG_LEN)
  sealTransportInto(type, key, receiverIndex, counter, payload, out, 0)
  return out
}

/**
 * Opens a type-3/4 message with `key`. Returns the plaintext, or null when
 * the message is malformed (length, type, reserved bytes, counter >= 2^53)
 * or the tag does not verify. Never throws for any `message`.
 * It does NOT check for replays: after a non-null result, the caller passes
 * the header's counter to the ReplayWindow of this key.
 */
export function openTransport (key: Uint8Array, message: Uint8Array): Uint8Array | null {
  if (message.length < TRANSPORT_MIN) return null
  const t = message[0]
  if ((t !== MSG_CONTROL && t !== MSG_DATA) || message[1] !== 0 || message[2] !== 0 || message[3] !== 0) return null
  if (readU64(message, TRANSPORT_COUNTER_OFFSET) < 0) return null
  return aeadOpen(key, transportNonce(message, 0), message.subarray(0, TRANSPORT_HEADER_LEN), message.subarray(TRANSPORT_HEADER_LEN))
}

/**
 * The control (type-3) endpoint of one session, main thread only.
 *
 * seal() numbers messages 0, 1, 2, ... and addresses them to `remoteIndex`
 * (the peer's local index, i.e. its senderIndex from the handshake).
 * open() authenticates, then runs the counter through a ReplayWindow, and
 * counts every rejection in `rejected` instead of throwing (per-packet
 * rejects are counters). It does not look at the receiverIndex: routing a
 * message to the right channel by index is the caller's job.
 */
export class ControlChannel {
  /** The peer's index; every sealed message carries it as receiverIndex. */
  readonly remoteIndex: number
  /** Rejections by open(), by cause. Mutated only by open(). */
  readonly rejected = { malformed: 0, auth: 0, replay: 0 }
  readonly #send: Uint8Array
  readonly #recv: Uint8Array
  #counter = 0
  #wiped = false
  readonly #replay = new ReplayWindow()

  constructor (keys: { send: Uint8Array, recv: Uint8Array }, remoteIndex: number) {
    if (keys.send.length !== KEY_LEN || keys.recv.length !== KEY_LEN) throw new VpnError('ERR_HANDSHAKE', `control keys must be ${KEY_LEN} bytes`)
    if (!Number.isInteger(remoteIndex) || remoteIndex < 0 || remoteIndex > 0xffffffff) throw new VpnError('ERR_HANDSHAKE', `remote index must be a u32: ${remoteIndex}`)
    this.#send = keys.send.slice()
    this.#recv = keys.recv.slice()
    this.remoteIndex = remoteIndex
  }

  /**
   * Overwrite both keys with zeros (the session is gone). From then on open()
   * refuses everything and seal() throws like an exhausted counter: nothing
   * is ever sealed or accepted under an all-zero key.
   */
  wipe (): void {
    this.#send.fill(0)
    this.#recv.fill(0)
    this.#counter = REJECT_AFTER_MESSAGES
    this.#wiped = true
  }

  get wiped (): boolean { return this.#wiped }

  /** Counter the next seal() will use (= messages sealed so far). */
  get sendCounter (): number { return this.#counter }

  /** Highest counter accepted by open() (0 when none). */
  get highestReceived (): number { return this.#replay.highest }

  /**
   * Seals a control payload (wire/control.ts encodeControl output) into a
   * complete type-3 message. Throws VpnError('ERR_HANDSHAKE') once the
   * counter reaches REJECT_AFTER_MESSAGES (the session must be replaced).
   */
  seal (payload: Uint8Array): Uint8Array {
    if (this.#counter >= REJECT_AFTER_MESSAGES || this.#counter > MAX_COUNTER) {
      throw new VpnError('ERR_HANDSHAKE', 'control counter exhausted; the session must be rekeyed')
    }
    return sealTransport(MSG_CONTROL, this.#send, this.remoteIndex, this.#counter++, payload)
  }

  /**
   * Opens a type-3 message received on this session. Returns the control
   * payload, or null (counted in `rejected`) when it is not a well-formed
   * type-3 message, the tag fails, or its counter was seen or is too old.
   */
  open (message: Uint8Array): Uint8Array | null {
    if (message.length < TRANSPORT_MIN || message[0] !== MSG_CONTROL) {
      this.rejected.malformed++
      return null
    }
    const counter = readU64(message, TRANSPORT_COUNTER_OFFSET)
    if (counter < 0 || message[1] !== 0 || message[2] !== 0 || message[3] !== 0) {
      this.rejected.malformed++
      return null
    }
    const payload = this.#wiped ? null : openTransport(this.#recv, message)
    if (payload === null) {
      this.rejected.auth++
      return null
    }
    if (!this.#replay.accept(counter)) {
      this.rejected.replay++
      return null
    }
    return payload
  }
}

/** The receiverIndex of a transport message, or -1 when shorter than a header (routing helper; no validation). */
export function transportReceiverIndex (message: Uint8Array): number {
  return message.length < TRANSPORT_HEADER_LEN ? -1 : readU32(message, 4)
}
