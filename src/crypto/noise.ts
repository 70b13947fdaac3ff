/**
 * The v2 handshake: Noise_IXpsk0_25519_ChaChaPoly_BLAKE2s (Noise Protocol
 * Framework revision 34), sans-IO. Takes and returns bytes; no sockets, no
 * clock, no timers, no retries (the caller owns those: HANDSHAKE_RETRY
 * etc. in control/constants.ts).
 *
 *   IXpsk0:
 *     -> psk, e, s             message 1 = HandshakeInit (wire type 1)
 *     <- e, ee, se, s, es      message 2 = HandshakeResp (wire type 2)
 *
 * Every node has a static X25519 key pair (identity/node-key.ts); both
 * sides also hold the network's 32-byte psk (crypto/kdf.ts derivePsk).
 * Knowing the psk admits a machine to the network; the static keys say
 * which node it is: the responder learns the initiator's static key from
 * message 1, the initiator the responder's from message 2, and each side's
 * DH with its static private key (se, es) is what makes the session keys,
 * so only the holder of that private key completes the handshake (the
 * initiator proves it with its first control message, Confirm). The psk is
 * mixed in before message 1's static key is encrypted, so a responder
 * detects a wrong network key at message 1 with no Diffie-Hellman at all
 * (consumeInit throws ERR_AUTH_FAILED), and learns the initiator's static
 * key before any DH (to vet it against its registry first). The
 * ephemeral-ephemeral DH gives forward secrecy.
 *
 * Spec steps (Noise rev 34 §5, with HASH = BLAKE2s, HASHLEN = 32,
 * HKDF = the §4.3 HMAC-BLAKE2s construction, ENCRYPT = ChaCha20-Poly1305 with
 * nonce 00000000 || LE64(n), associated data = h):
 *   Initialize:  h = HASH(protocol_name) (name is 37 bytes > HASHLEN), ck = h,
 *                MixHash(prologue = "lightweight-tunnel v3")
 *   msg 1 write: psk -> MixKeyAndHash(psk)
 *                e   -> generate e; write e.pub; MixHash(e.pub); MixKey(e.pub)  (psk modifier, §9.2)
 *                s   -> write EncryptAndHash(s.pub)  (48 bytes)
 *                payload -> EncryptAndHash(payload)
 *   msg 2 write: e   -> generate e; write e.pub; MixHash(e.pub); MixKey(e.pub)
 *                ee  -> MixKey(DH(e, re));  se -> MixKey(DH(e, rs))
 *                s   -> write EncryptAndHash(s.pub)
 *                es  -> MixKey(DH(s, re))
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
 * Threading: main thread, per handshake; createResponse may also run in a
 * worker: a ResponderState is a plain object of Uint8Arrays and numbers
 * (structured-cloneable), holding the responder's raw static private key.
 * States are single-use (spent after success, untouched by failures, so a
 * forged response never kills the genuine one in flight).
 */
import { type KeyObject } from 'node:crypto'
import { generateKeyPair, type KeyPair } from './x25519.js'
import { VpnError } from '../errors.js'
import { CONTROL_KEY_INFO, KEY_LEN, NOISE_PROLOGUE, NOISE_PROTOCOL_NAME } from '../wire/constants.js'
import { EMPTY, Symmetric, ephemeralKeyPair, readMessage1, readMessage2, writeMessage1, writeMessage2, type StaticPair } from './noise-steps.js'
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

/**
 * A node's static key pair. `priv` is the OpenSSL key object (the DHs use
 * it), `secret` the same private key raw (32 bytes; goes into a
 * ResponderState, which must be cloneable to a worker), `pub` the raw
 * public key. Make one with staticKey() or generateStaticKey().
 */
export interface StaticKey {
  readonly priv: KeyObject
  readonly secret: Uint8Array
  readonly pub: Uint8Array
}

/** The static key pair of a raw 32-byte X25519 private key. Throws VpnError('ERR_CONFIG_INVALID') for another length. */
export function staticKey (secret: Uint8Array): StaticKey {
  if (!(secret instanceof Uint8Array) || secret.length !== KEY_LEN) {
    throw new VpnError('ERR_CONFIG_INVALID', `a node private key must be ${KEY_LEN} bytes`)
  }
  const kp = generateKeyPair(secret)
  return { priv: kp.priv, secret: new Uint8Array(secret), pub: kp.pub }
}

/** A fresh random static key pair. */
export function generateStaticKey (): StaticKey {
  const kp = generateKeyPair()
  const d = kp.priv.export({ format: 'jwk' }).d
  if (typeof d !== 'string') throw new Error('X25519: no private key in JWK export')
  return { priv: kp.priv, secret: new Uint8Array(Buffer.from(d, 'base64url')), pub: kp.pub }
}

/** Opaque: what the initiator keeps between createInit and consumeResponse. Single use. */
declare const initiatorBrand: unique symbol
export interface InitiatorState { readonly [initiatorBrand]: true }

/**
 * What the responder keeps between consumeInit and createResponse. Single
 * use. A plain object (structured-cloneable: createResponse may run in a
 * worker on a copy); treat it as opaque. Holds the responder's raw static
 * private key: do not log it, drop it when done.
 */
export interface ResponderState {
  readonly kind: 'lwt-responder-v2'
  readonly ck: Uint8Array
  readonly h: Uint8Array
  readonly k: Uint8Array
  readonly n: number
  /** The initiator's ephemeral and static public keys. */
  readonly re: Uint8Array
  readonly rs: Uint8Array
  /** The init's senderIndex (the response's receiverIndex). */
  readonly remoteIndex: number
  /** The responder's static key: raw private, raw public. */
  readonly localSecret: Uint8Array
  readonly localPub: Uint8Array
  spent: boolean
}

function checkPsk (psk: Uint8Array): void {
  if (!(psk instanceof Uint8Array) || psk.length !== KEY_LEN) {
    throw new VpnError('ERR_CONFIG_INVALID', `psk must be ${KEY_LEN} bytes`, { hint: 'derive it with crypto/kdf.ts derivePsk()' })
  }
}

function checkLocal (local: StaticKey): void {
  if (local === null || typeof local !== 'object' || !(local.pub instanceof Uint8Array) || local.pub.length !== KEY_LEN ||
    !(local.secret instanceof Uint8Array) || local.secret.length !== KEY_LEN) {
    throw new VpnError('ERR_CONFIG_INVALID', 'the local static key is not a key pair; make it with staticKey()')
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

/**
 * The responder's static private key as a key object. A ResponderState
 * carries it raw; importing costs ~20 µs, so the last one is kept (a
 * daemon has one static key).
 */
let lastLocal: { secret: Uint8Array, pair: StaticPair } | null = null
function localPair (secret: Uint8Array, pub: Uint8Array): StaticPair {
  if (lastLocal !== null && Buffer.compare(lastLocal.secret, secret) === 0) return lastLocal.pair
  const kp = generateKeyPair(secret)
  if (Buffer.compare(kp.pub, pub) !== 0) throw new VpnError('ERR_HANDSHAKE', 'responder state: the static key pair does not match')
  lastLocal = { secret: new Uint8Array(secret), pair: kp }
  return kp
}

// ---------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------

class InitiatorImpl {
  spent = false
  constructor (readonly ss: Symmetric, readonly e: KeyPair, readonly s: StaticPair, readonly senderIndex: number) {}
}

/**
 * Initiator, step 1: builds the complete HandshakeInit (wire type 1) with our
 * static key and `payload` (an encoded InitPayload), both encrypted under the
 * psk-derived key. `senderIndex` is this side's u32 index for the new session.
 * `ephemeralPrivate` is for golden-vector tests only; omit it in real use.
 * Throws VpnError: ERR_CONFIG_INVALID for a psk that is not 32 bytes or a bad
 * local key, ERR_HANDSHAKE for a bad index or ephemeral, ERR_WIRE_DECODE
 * (WireError) when the payload would exceed HANDSHAKE_MAX_LEN.
 */
export function createInit (psk: Uint8Array, local: StaticKey, senderIndex: number, payload: Uint8Array, ephemeralPrivate?: Uint8Array): { message: Uint8Array, state: InitiatorState } {
  checkPsk(psk)
  checkLocal(local)
  checkIndex('senderIndex', senderIndex)
  const e = ephemeralKeyPair(ephemeralPrivate)
  const ss = INITIAL.clone()
  const m = writeMessage1(ss, psk, e, local, payload)
  const message = encodeHandshakeInit({ senderIndex, ephemeral: e.pub, encStatic: m.encStatic, ciphertext: m.ciphertext })
  return { message, state: new InitiatorImpl(ss, e, local, senderIndex) as unknown as InitiatorState }
}

/**
 * Responder, step 1: authenticates and opens a HandshakeInit, with no DH.
 * Throws WireError when the message is malformed (type, version, length),
 * VpnError('ERR_AUTH_FAILED') when it does not authenticate under `psk`
 * (the sender uses another network key, or the message was altered).
 * `ephemeral` is a copy of the initiator's ephemeral public key (usable to
 * recognise a retransmitted init), `remoteStatic` a copy of its static
 * public key: vet both it and `payload` (e.g. the InitPayload timestamp,
 * per static key) before calling createResponse.
 */
export function consumeInit (psk: Uint8Array, local: StaticKey, message: Uint8Array): { senderIndex: number, ephemeral: Uint8Array, remoteStatic: Uint8Array, payload: Uint8Array, state: ResponderState } {
  checkPsk(psk)
  checkLocal(local)
  const m = decodeHandshakeInit(message)
  const re = m.ephemeral.slice()
  const ss = INITIAL.clone()
  let r
  try {
    r = readMessage1(ss, psk, re, m)
  } catch (err) {
    throw new VpnError('ERR_AUTH_FAILED', 'handshake init did not authenticate (different network key?)', {
      cause: err,
      hint: 'every member of the network must use the same key'
    })
  }
  const state: ResponderState = {
    kind: 'lwt-responder-v2',
    ck: ss.ck,
    h: ss.h,
    k: ss.k ?? new Uint8Array(KEY_LEN),
    n: ss.n,
    re,
    rs: r.rs,
    remoteIndex: m.senderIndex,
    localSecret: local.secret,
    localPub: local.pub,
    spent: false
  }
  return { senderIndex: m.senderIndex, ephemeral: re.slice(), remoteStatic: r.rs.slice(), payload: r.payload, state }
}

function isBytes (v: unknown, len: number): boolean {
  return v instanceof Uint8Array && v.length === len
}

/**
 * Responder, step 2: builds the complete HandshakeResp (wire type 2)
 * addressed to the init's senderIndex, carrying our static key and `payload`
 * (an encoded RespPayload), and derives the session keys. `senderIndex` is
 * this side's u32 index for the session. Throws VpnError('ERR_HANDSHAKE')
 * when the state is malformed or was already used, or the initiator's
 * ephemeral or static key is a low-order point.
 */
export function createResponse (state: ResponderState, senderIndex: number, payload: Uint8Array, ephemeralPrivate?: Uint8Array): { message: Uint8Array, keys: SessionKeys } {
  const st = state as Partial<ResponderState> | null
  if (st === null || typeof st !== 'object' || st.kind !== 'lwt-responder-v2' || st.spent !== false ||
    !isBytes(st.ck, 32) || !isBytes(st.h, 32) || !isBytes(st.k, 32) || typeof st.n !== 'number' || !isBytes(st.re, 32) ||
    !isBytes(st.rs, 32) || !isBytes(st.localSecret, 32) || !isBytes(st.localPub, 32) || typeof st.remoteIndex !== 'number') {
    throw new VpnError('ERR_HANDSHAKE', 'responder state is invalid or already used')
  }
  checkIndex('senderIndex', senderIndex)
  const e = ephemeralKeyPair(ephemeralPrivate)
  const ss = new Symmetric(st.ck!.slice(), st.h!.slice(), st.k!.slice(), st.n)
  let m
  try {
    m = writeMessage2(ss, e, localPair(st.localSecret!, st.localPub!), st.re!, st.rs!, payload)
  } catch (err) {
    if (err instanceof VpnError) throw err
    throw new VpnError('ERR_HANDSHAKE', 'cannot complete the handshake: invalid initiator ephemeral or static key', { cause: err })
  }
  // The ephemeral private key is an OpenSSL key object: cleared when freed (src/crypto/x25519.ts).
  const message = encodeHandshakeResp({ senderIndex, receiverIndex: st.remoteIndex!, ephemeral: e.pub, encStatic: m.encStatic, ciphertext: m.ciphertext })
  st.spent = true
  return { message, keys: sessionKeys(ss, false) }
}

/**
 * Initiator, step 2: authenticates and opens the HandshakeResp and derives
 * the session keys; `remoteStatic` is the responder's static public key
 * (compare it with the key you expect: the pinned server key, the peer's
 * listed key). Throws VpnError('ERR_HANDSHAKE') for every failure:
 * malformed message (cause: WireError), receiverIndex not this init's
 * senderIndex, tag mismatch (wrong key or tampering), low-order keys, or a
 * state already used. A failure leaves the state usable for the genuine
 * response.
 */
export function consumeResponse (state: InitiatorState, message: Uint8Array): { senderIndex: number, receiverIndex: number, remoteStatic: Uint8Array, payload: Uint8Array, keys: SessionKeys } {
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
  let r
  try {
    r = readMessage2(ss, st.e, st.s, m.ephemeral, m)
  } catch (err) {
    throw new VpnError('ERR_HANDSHAKE', 'handshake response did not authenticate', { cause: err })
  }
  st.spent = true
  return { senderIndex: m.senderIndex, receiverIndex: m.receiverIndex, remoteStatic: r.rs.slice(), payload: r.payload, keys: sessionKeys(ss, true) }
}

