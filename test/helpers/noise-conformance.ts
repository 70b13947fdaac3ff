/**
 * The Noise conformance runner (test only): a whole NNpsk0 handshake with an
 * arbitrary prologue and no wire framing, through the same pattern steps the
 * daemon uses (src/crypto/noise-steps.ts), so test/crypto/noise.test.ts can
 * compare them with the published Noise test vectors (cacophony, prologue
 * "John Galt"). Both sides run here, one after the other:
 *
 *   initiator: writeMessage1 ──▶ responder: readMessage1
 *   responder: writeMessage2 ──▶ initiator: readMessage2
 *   both: Split() → (i2r, r2i), checked equal on both sides
 */
import { NOISE_PROTOCOL_NAME } from '../../src/wire/constants.js'
import { EMPTY, Symmetric, ephemeralKeyPair, readMessage1, readMessage2, writeMessage1, writeMessage2 } from '../../src/crypto/noise-steps.js'

export interface ConformanceResult {
  /** e.pub || ciphertext, as the vectors write message 1. */
  message1: Uint8Array
  /** e.pub || ciphertext of message 2. */
  message2: Uint8Array
  handshakeHash: Uint8Array
  i2r: Uint8Array
  r2i: Uint8Array
  /** The payloads as the receiving side decrypted them. */
  payload1: Uint8Array
  payload2: Uint8Array
}

function cat (a: Uint8Array, b: Uint8Array): Uint8Array {
  const o = new Uint8Array(a.length + b.length)
  o.set(a)
  o.set(b, a.length)
  return o
}

export function runConformance (prologue: Uint8Array, psk: Uint8Array, initEphemeral: Uint8Array, respEphemeral: Uint8Array,
  payload1: Uint8Array, payload2: Uint8Array): ConformanceResult {
  const ie = ephemeralKeyPair(initEphemeral)
  const re = ephemeralKeyPair(respEphemeral)
  const si = Symmetric.initialize(NOISE_PROTOCOL_NAME, prologue)
  const sr = si.clone()
  const c1 = writeMessage1(si, psk, ie, payload1)
  const p1 = readMessage1(sr, psk, ie.pub, c1)
  const c2 = writeMessage2(sr, re, ie.pub, payload2)
  const p2 = readMessage2(si, ie, re.pub, c2)
  const [i2r, r2i] = si.derive(EMPTY)
  const [i2rR] = sr.derive(EMPTY)
  if (Buffer.compare(i2r, i2rR) !== 0) throw new Error('conformance: the two sides disagree')
  return { message1: cat(ie.pub, c1), message2: cat(re.pub, c2), handshakeHash: si.h, i2r, r2i, payload1: p1, payload2: p2 }
}
