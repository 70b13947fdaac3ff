/**
 * Entry of a handshake pool thread (control/handshake-pool.ts, piscina): runs
 * the responder's heavy step, createResponse (ephemeral key generation and the
 * DH), on a state the main thread already authenticated and decided on.
 * Nothing here decides anything; the main thread installs the keys and sends
 * the message.
 */
import { createResponse, type ResponderState, type SessionKeys } from '../crypto/noise.js'

/** The state is a plain object (crypto/noise.ts ResponderState): it crosses postMessage as a structured clone. */
export interface HandshakeTask { state: ResponderState, senderIndex: number, payload: Uint8Array }
export interface HandshakeResult { message: Uint8Array, keys: SessionKeys }

export default function respond (t: HandshakeTask): HandshakeResult {
  return createResponse(t.state, t.senderIndex, t.payload)
}
