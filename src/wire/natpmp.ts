/**
 * NAT-PMP (RFC 6886) messages a client sends to its gateway's port 5351 and
 * the answers it reads: the external-address request (opcode 0) and the UDP
 * mapping request (opcode 1). Pure encode/decode, no I/O; the state machine
 * (control/port-mapping.ts) decides what to send and what an answer means.
 *
 *   External address request (2 bytes)      MAP UDP request (12 bytes)
 *    0      1                                0      1      2      4      6      8          12
 *   +------+------+                         +------+------+------+------+------+----------+
 *   | vers | op=0 |                         | vers | op=1 | rsvd | int  | sugg | lifetime |
 *   +------+------+                         |  0   |      |  0   | port | ext  |  (s)     |
 *                                           +------+------+------+------+------+----------+
 *   External address response (12)           MAP UDP response (16)
 *   | vers | 128 | result | epoch(4) | ext ip(4) |
 *   | vers | 129 | result | epoch(4) | int port | mapped ext port | lifetime(4) |
 *
 * All numbers big-endian. `epoch` = seconds since the gateway started (its
 * mapping table's age): the client compares it with its own clock to notice
 * a reboot (§3.6). A non-zero result is an error answer; the body after the
 * epoch may then be absent (a short error answer is accepted, §3.5).
 */
import { readIp } from './addr.js'

export const NATPMP_PORT = 5351
export const NATPMP_VERSION = 0
export const NATPMP_OP_EXTERNAL = 0
export const NATPMP_OP_MAP_UDP = 1
/** An answer's opcode is the request's + 128. */
export const NATPMP_OP_REPLY = 128

/** Result codes (§3.5). */
export const NATPMP_RESULT: Readonly<Record<number, string>> = {
  0: 'success',
  1: 'unsupported version',
  2: 'not authorized (NAT-PMP turned off on the gateway)',
  3: 'network failure (the gateway has no external address)',
  4: 'out of resources',
  5: 'unsupported opcode'
}

export function describeNatpmpResult (r: number): string { return NATPMP_RESULT[r] ?? `result code ${r}` }

export function encodeNatpmpExternal (): Uint8Array { return Uint8Array.of(NATPMP_VERSION, NATPMP_OP_EXTERNAL) }

/** A UDP mapping request for `internalPort`; lifetime 0 with suggested port 0 deletes it (§3.4). */
export function encodeNatpmpMap (internalPort: number, suggestedPort: number, lifetimeSec: number): Uint8Array {
  const b = new Uint8Array(12)
  const v = new DataView(b.buffer)
  b[0] = NATPMP_VERSION
  b[1] = NATPMP_OP_MAP_UDP
  v.setUint16(4, internalPort)
  v.setUint16(6, suggestedPort)
  v.setUint32(8, lifetimeSec >>> 0)
  return b
}

export type NatpmpAnswer =
  | { op: 'external', result: number, epoch: number, externalIp: number }
  | { op: 'map', result: number, epoch: number, internalPort: number, externalPort: number, lifetimeSec: number }

/** Decodes a NAT-PMP answer; a string says why it is not one (counted as malformed by the caller). */
export function decodeNatpmp (b: Uint8Array): NatpmpAnswer | string {
  if (b.length < 8) return `too short for NAT-PMP (${b.length} bytes)`
  if (b[0] !== NATPMP_VERSION) return `not NAT-PMP (version ${b[0]!})`
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength)
  const result = v.getUint16(2)
  const epoch = v.getUint32(4)
  if (b[1] === NATPMP_OP_REPLY + NATPMP_OP_EXTERNAL) {
    if (result !== 0) return { op: 'external', result, epoch, externalIp: 0 }
    if (b.length < 12) return `external-address answer too short (${b.length} bytes)`
    return { op: 'external', result, epoch, externalIp: readIp(b, 8) }
  }
  if (b[1] === NATPMP_OP_REPLY + NATPMP_OP_MAP_UDP) {
    if (result !== 0) return { op: 'map', result, epoch, internalPort: b.length >= 16 ? v.getUint16(8) : 0, externalPort: 0, lifetimeSec: 0 }
    if (b.length < 16) return `mapping answer too short (${b.length} bytes)`
    return { op: 'map', result, epoch, internalPort: v.getUint16(8), externalPort: v.getUint16(10), lifetimeSec: v.getUint32(12) }
  }
  return `not a NAT-PMP answer we asked for (opcode ${b[1]!})`
}
