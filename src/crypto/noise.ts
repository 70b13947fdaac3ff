/**
 * The v1 handshake: Noise_NNpsk0_25519_ChaChaPoly_BLAKE2s (Noise Protocol
 * Framework revision 34), sans-IO. Takes and returns bytes; no sockets, no
 * clock, no timers, no retries (the caller owns those: HANDSHAKE_RETRY
 * etc. in control/constants.ts).
 *
 *   NNpsk0:
 *     -> psk, e          message 1 = HandshakeInit (wire type 1)
 *     <- e, ee           message 2 = HandshakeResp (wire type 2)
 *
 * Both sides hold the same 32-byte psk (crypto/kdf.ts derivePsk) and no
 * static keys: knowing the network key is the whole authentication; the
 * ephemeral-ephemeral DH gives forward secrecy. Because the psk is mixed in
 * before message 1's payload is encrypted, a responder detects a wrong
 * network key at message 1 (consumeInit throws ERR_AUTH_FAILED) and an
 * initiator detects a wrong or tampered response at message 2.
 *
 * Spec steps (Noise rev 34 §5, with HASH = BLAKE2s, HASHLEN = 32,
 * HKDF = the §4.3 HMAC-BLAKE2s construction, ENCRYPT = ChaCha20-Poly1305 with
 * nonce 00000000 || LE64(n), associated data = h):
 *   Initialize:  h = HASH(protocol_name) (name is 37 bytes > HASHLEN), ck = h,
 *                MixHash(prologue = "lightweight-tunnel v1")
 *   msg 1 write: psk -> MixKeyAndHash(psk)
 *                e   -> generate e; write e.pub; MixHash(e.pub); MixKey(e.pub)  (psk modifier, §9.2)
 *                payload -> EncryptAndHash(payload)
 *   msg 2 write: e   -> generate e; write e.pub; MixHash(e.pub); MixKey(e.pub)
 *                ee  -> MixKey(DH(e, re))
 *                payload -> EncryptAndHash(payload)
 *   Split:       (i2r, r2i) = HKDF(ck, empty)           data keys (wire type 4)
 *   Control:     (ci2r, cr2i) = HKDF(ck, "control")      control keys (wire type 3)
 *
 * The wire header fields (type, version, indices) are outside the Noise
 * transcript, as in WireGuard; consumeResponse checks the receiverIndex
 * against the init it answers.
 *
 * The primitives (HKDF, SymmetricState) and the four pattern steps live in
 * crypto/noise-steps.ts; this module frames, validates and keeps the states.
 *
 * Threading: everything here runs on the main thread, per handshake; states
 * are single-use (spent after success, untouched by failures, so a forged
 * response never kills the genuine one in flight).
 */
import type { KeyPair } from './x25519.js'
import { VpnError } from '../errors.js'
import { CONTROL_KEY_INFO, KEY_LEN, NOISE_PROLOGUE, NOISE_PROTOCOL_NAME } from '../wire/constants.js'
import { EMPTY, Symmetric, ephemeralKeyPair, readMessage1, readMessage2, writeMessage1, writeMessage2 } from './noise-steps.js'
import { decodeHandshakeInit, decodeHandshakeResp, encodeHandshakeInit, encodeHandshakeResp } from '../wire/messages.js'

/** The four session keys, from this side's point of view. Each 32 bytes. */
export interface SessionKeys {
  /** Seals this side's data (type 4) messages. */
  dataSend: Uint8Array
  /** Opens the peer's data messages. */
  dataRecv: Uint8Array
  /** Seals this side's control (type 3) messages. */
  ctlSend: Uint8Array
  /** Opens the peer's control messages. */
  ctlRecv: Uint8Array
}

declare const initiatorBrand: unique symbol
declare const responderBrand: unique symbol
/** Opaque: what the initiator keeps between createInit and consumeResponse. Single use. */
export interface InitiatorState { readonly [initiatorBrand]: true }
/** Opaque: what the responder keeps between consumeInit and createResponse. Single use. */
export interface ResponderState { readonly [responderBrand]: true }

function checkPsk (psk: Uint8Array): void {
  if (!(psk instanceof Uint8Array) || psk.length !== KEY_LEN) {
    throw new VpnError('ERR_CONFIG_INVALID', `psk must be ${KEY_LEN} bytes`, { hint: 'derive it with crypto/kdf.ts derivePsk()' })
  }
}

function checkIndex (name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new VpnError('ERR_HANDSHAKE', `${name} must be a u32: ${v}`)
}

const encoder = new TextEncoder()
const CONTROL_INFO = encoder.encode(CONTROL_KEY_INFO)

function sessionKeys (ss: Symmetric, initiator: boolean): SessionKeys {
  const [i2r, r2i] = ss.derive(EMPTY)
  const [ci2r, cr2i] = ss.derive(CONTROL_INFO)
  return initiator
    ? { dataSend: i2r, dataRecv: r2i, ctlSend: ci2r, ctlRecv: cr2i }
    : { dataSend: r2i, dataRecv: i2r, ctlSend: cr2i, ctlRecv: ci2r }
}

/** State after Initialize + MixHash(prologue) for our fixed name and prologue; cloned per handshake. */
const INITIAL = Symmetric.initialize(NOISE_PROTOCOL_NAME, encoder.encode(NOISE_PROLOGUE))

// ---------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------

class InitiatorImpl {
  spent = false
  constructor (readonly ss: Symmetric, readonly e: KeyPair, readonly senderIndex: number) {}
}

class ResponderImpl {
  spent = false
  constructor (readonly ss: Symmetric, readonly re: Uint8Array, readonly remoteIndex: number) {}
}

/**
 * Initiator, step 1: builds the complete HandshakeInit (wire type 1) carrying
 * `payload` (an encoded InitPayload) encrypted under the psk-derived key.
 * `senderIndex` is this side's u32 index for the new session.
 * `ephemeralPrivate` is for golden-vector tests only; omit it in real use.
 * Throws VpnError: ERR_CONFIG_INVALID for a psk that is not 32 bytes,
 * ERR_HANDSHAKE for a bad index or ephemeral, ERR_WIRE_DECODE (WireError)
 * when the payload would exceed HANDSHAKE_MAX_LEN.
 */
export function createInit (psk: Uint8Array, senderIndex: number, payload: Uint8Array, ephemeralPrivate?: Uint8Array): { message: Uint8Array, state: InitiatorState } {
  checkPsk(psk)
  checkIndex('senderIndex', senderIndex)
  const e = ephemeralKeyPair(ephemeralPrivate)
  const ss = INITIAL.clone()
  const ciphertext = writeMessage1(ss, psk, e, payload)
  const message = encodeHandshakeInit({ senderIndex, ephemeral: e.pub, ciphertext })
  return { message, state: new InitiatorImpl(ss, e, senderIndex) as unknown as InitiatorState }
}

/**
 * Responder, step 1: authenticates and opens a HandshakeInit.
 * Throws WireError when the message is malformed (type, version, length),
 * VpnError('ERR_AUTH_FAILED') when it does not authenticate under `psk`
 * (the sender uses another network key, or the message was altered).
 * `ephemeral` is a copy of the initiator's ephemeral public key (usable to
 * recognise a retransmitted init). The caller decodes and vets `payload`
 * (e.g. the InitPayload timestamp) before calling createResponse.
 */
export function consumeInit (psk: Uint8Array, message: Uint8Array): { senderIndex: number, ephemeral: Uint8Array, payload: Uint8Array, state: ResponderState } {
  checkPsk(psk)
  const m = decodeHandshakeInit(message)
  const re = m.ephemeral.slice()
  const ss = INITIAL.clone()
  let payload: Uint8Array
  try {
    payload = readMessage1(ss, psk, re, m.ciphertext)
  } catch (err) {
    throw new VpnError('ERR_AUTH_FAILED', 'handshake init did not authenticate (different network key?)', {
      cause: err,
      hint: 'every member of the network must use the same key'
    })
  }
  return { senderIndex: m.senderIndex, ephemeral: re.slice(), payload, state: new ResponderImpl(ss, re, m.senderIndex) as unknown as ResponderState }
}

/**
 * Responder, step 2: builds the complete HandshakeResp (wire type 2)
 * addressed to the init's senderIndex, carrying `payload` (an encoded
 * RespPayload), and derives the session keys. `senderIndex` is this side's
 * u32 index for the session. Throws VpnError('ERR_HANDSHAKE') when the state
 * was already used or the initiator's ephemeral is a low-order point.
 */
export function createResponse (state: ResponderState, senderIndex: number, payload: Uint8Array, ephemeralPrivate?: Uint8Array): { message: Uint8Array, keys: SessionKeys } {
  const st = state as unknown
  if (!(st instanceof ResponderImpl) || st.spent) throw new VpnError('ERR_HANDSHAKE', 'responder state is invalid or already used')
  checkIndex('senderIndex', senderIndex)
  const e = ephemeralKeyPair(ephemeralPrivate)
  const ss = st.ss.clone()
  let ciphertext: Uint8Array
  try {
    ciphertext = writeMessage2(ss, e, st.re, payload)
  } catch (err) {
    throw new VpnError('ERR_HANDSHAKE', 'cannot complete the handshake: invalid initiator ephemeral key', { cause: err })
  }
  // The ephemeral private key is an OpenSSL key object: cleared when freed (src/crypto/x25519.ts).
  const message = encodeHandshakeResp({ senderIndex, receiverIndex: st.remoteIndex, ephemeral: e.pub, ciphertext })
  st.spent = true
  return { message, keys: sessionKeys(ss, false) }
}

/**
 * Initiator, step 2: authenticates and opens the HandshakeResp and derives
 * the session keys. Throws VpnError('ERR_HANDSHAKE') for every failure:
 * malformed message (cause: WireError), receiverIndex not this init's
 * senderIndex, tag mismatch (wrong key or tampering), low-order ephemeral,
 * or a state already used. A failure leaves the state usable for the
 * genuine response.
 */
export function consumeResponse (state: InitiatorState, message: Uint8Array): { senderIndex: number, receiverIndex: number, payload: Uint8Array, keys: SessionKeys } {
  const st = state as unknown
  if (!(st instanceof InitiatorImpl) || st.spent) throw new VpnError('ERR_HANDSHAKE', 'initiator state is invalid or already used')
  let m
  try {
    m = decodeHandshakeResp(message)
  } catch (err) {
    throw new VpnError('ERR_HANDSHAKE', `malformed handshake response: ${(err as Error).message}`, { cause: err })
  }
  if (m.receiverIndex !== st.senderIndex) {
    throw new VpnError('ERR_HANDSHAKE', `handshake response for index ${m.receiverIndex}, expected ${st.senderIndex}`)
  }
  const ss = st.ss.clone()
  let payload: Uint8Array
  try {
    payload = readMessage2(ss, st.e, m.ephemeral, m.ciphertext)
  } catch (err) {
    throw new VpnError('ERR_HANDSHAKE', 'handshake response did not authenticate', { cause: err })
  }
  st.spent = true
  return { senderIndex: m.senderIndex, receiverIndex: m.receiverIndex, payload, keys: sessionKeys(ss, true) }
}

// ---------------------------------------------------------------------------
// Responder state as plain data, for the handshake pool (control/handshake-pool.ts):
// createResponse (the DH) runs in a worker, so the state crosses postMessage.
// ---------------------------------------------------------------------------

/** A ResponderState as plain, structured-cloneable data. */
export interface PlainResponderState { ck: Uint8Array, h: Uint8Array, k: Uint8Array | null, n: number, re: Uint8Array, remoteIndex: number }

/** The plain form of an unused ResponderState (the state itself stays usable). */
export function responderToPlain (state: ResponderState): PlainResponderState {
  const st = state as unknown
  if (!(st instanceof ResponderImpl) || st.spent) throw new VpnError('ERR_HANDSHAKE', 'responder state is invalid or already used')
  return { ck: st.ss.ck.slice(), h: st.ss.h.slice(), k: st.ss.k === null ? null : st.ss.k.slice(), n: st.ss.n, re: st.re.slice(), remoteIndex: st.remoteIndex }
}

/** A ResponderState from its plain form (in the worker). */
export function responderFromPlain (p: PlainResponderState): ResponderState {
  return new ResponderImpl(new Symmetric(p.ck, p.h, p.k, p.n), p.re, p.remoteIndex) as unknown as ResponderState
}
