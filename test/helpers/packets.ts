/**
 * Packets as a far peer builds and reads them, for dataplane tests: IPv4
 * packets, and data messages (wire type 4, PROTOCOL.md) sealed and opened
 * with @noble/ciphers, an implementation independent of the addon's.
 *
 *   data message: [type 4, 0, 0, 0][receiver index LE32][counter LE64] ‖ ChaCha20-Poly1305(inner), AAD = the 16-byte header,
 *                 nonce = 4 zero bytes ‖ counter LE64
 *   relay envelope: [type 5, 0, 0, 0][peer id LE32] ‖ message
 */
import { chacha20poly1305 } from '@noble/ciphers/chacha.js'

/** An IPv4 packet of 20 + payload.length bytes (protocol 17 unless told), header checksum filled in. */
export function ipv4 (src: number, dst: number, payload: Uint8Array = new Uint8Array(8), proto = 17): Uint8Array {
  const p = new Uint8Array(20 + payload.length)
  const v = new DataView(p.buffer)
  p[0] = 0x45
  v.setUint16(2, p.length)
  p[8] = 64
  p[9] = proto
  v.setUint32(12, src)
  v.setUint32(16, dst)
  p.set(payload, 20)
  let sum = 0
  for (let i = 0; i < 20; i += 2) sum += v.getUint16(i)
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16)
  v.setUint16(10, ~sum & 0xffff)
  return p
}

/** A payload carrying a sequence number (u32 BE) in its first bytes, to check order. */
export function seqPayload (seq: number, size = 16): Uint8Array {
  const b = new Uint8Array(Math.max(4, size))
  new DataView(b.buffer).setUint32(0, seq)
  return b
}

/** The sequence number of a packet built with seqPayload. */
export function seqOf (packet: Uint8Array): number {
  return new DataView(packet.buffer, packet.byteOffset).getUint32(20)
}

function header (index: number, counter: number): Uint8Array {
  const h = new Uint8Array(16)
  const v = new DataView(h.buffer)
  h[0] = 4
  v.setUint32(4, index, true)
  v.setUint32(8, counter >>> 0, true)
  v.setUint32(12, Math.floor(counter / 2 ** 32), true)
  return h
}

function nonceOf (h: Uint8Array): Uint8Array {
  const n = new Uint8Array(12)
  n.set(h.subarray(8, 16), 4)
  return n
}

/** A data message to receiver `index` with this counter. */
export function sealData (key: Uint8Array, index: number, counter: number, inner: Uint8Array): Uint8Array {
  const h = header(index, counter)
  const ct = chacha20poly1305(key, nonceOf(h), h).encrypt(inner)
  const out = new Uint8Array(16 + ct.length)
  out.set(h)
  out.set(ct, 16)
  return out
}

export interface OpenedData { type: number, index: number, counter: number, inner: Uint8Array }

/** Open a data message (throws when the tag does not verify). */
export function openData (key: Uint8Array, d: Uint8Array): OpenedData {
  const h = d.subarray(0, 16)
  const v = new DataView(d.buffer, d.byteOffset)
  const inner = chacha20poly1305(key, nonceOf(h), h).decrypt(d.subarray(16))
  return { type: d[0]!, index: v.getUint32(4, true), counter: v.getUint32(8, true) + v.getUint32(12, true) * 2 ** 32, inner }
}

/** A relay envelope around `msg`, addressed to (client → server) or from (server → client) `peerId`. */
export function relayEnvelope (peerId: number, msg: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + msg.length)
  const v = new DataView(out.buffer)
  v.setUint32(0, 5, true)
  v.setUint32(4, peerId, true)
  out.set(msg, 8)
  return out
}
