/**
 * PCP (RFC 6887) MAP requests and answers for one UDP port, IPv4 only: the
 * request a client sends to its gateway's port 5351 and the answer it reads.
 * Pure encode/decode, no I/O (control/port-mapping.ts decides).
 *
 *   Request (60 bytes)                          Answer (60 bytes)
 *    0     1        2     4          8            0     1        2     3      4          8       12           24
 *   +-----+--------+-----+----------+           +-----+--------+-----+------+----------+-------+------------+
 *   | 2   | 0|op=1 | 0 0 | lifetime |           | 2   | 1|op=1 | 0   |result| lifetime | epoch | reserved   |
 *   +-----+--------+-----+----------+           +-----+--------+-----+------+----------+-------+------------+
 *   | client IP (16: ::ffff:a.b.c.d)  | 8..24      MAP body as in the request (24..60), with the
 *   +---------------------------------+           assigned external port and address
 *   | nonce (12) | proto=17 | 0 0 0 | int port | sugg ext port | sugg ext IP (16) |  24..60
 *
 * Big-endian. The nonce (12 random bytes, kept for the mapping's life) ties an
 * answer to our request: an answer with another nonce is not ours. Lifetime 0
 * deletes the mapping (§15). `epoch` works as in NAT-PMP (§8.5).
 */
import { readIp, writeIp } from './addr.js'

export const PCP_VERSION = 2
export const PCP_OP_MAP = 1
export const PCP_PROTO_UDP = 17
export const PCP_MSG_LEN = 60
export const PCP_NONCE_LEN = 12

/** Result codes (§7.4). */
export const PCP_RESULT: Readonly<Record<number, string>> = {
  0: 'success',
  1: 'unsupported version',
  2: 'not authorized',
  3: 'malformed request',
  4: 'unsupported opcode',
  5: 'unsupported option',
  6: 'malformed option',
  7: 'network failure',
  8: 'no resources',
  9: 'unsupported protocol',
  10: 'user exceeded quota',
  11: 'cannot provide the external port',
  12: 'address mismatch (a NAT between us and the gateway)',
  13: 'excessive remote peers'
}

export function describePcpResult (r: number): string { return PCP_RESULT[r] ?? `result code ${r}` }

function writeMappedV4 (b: Uint8Array, off: number, ip: number): void {
  b[off + 10] = 0xff
  b[off + 11] = 0xff
  writeIp(b, off + 12, ip)
}

/** Is b[off..off+16] an IPv4-mapped IPv6 address (::ffff:a.b.c.d)? Its IPv4 address, else null. */
function readMappedV4 (b: Uint8Array, off: number): number | null {
  for (let i = 0; i < 10; i++) if (b[off + i] !== 0) return null
  if (b[off + 10] !== 0xff || b[off + 11] !== 0xff) return null
  return readIp(b, off + 12)
}

export interface PcpMapRequest {
  lifetimeSec: number
  clientIp: number
  nonce: Uint8Array
  internalPort: number
  suggestedPort: number
  /** 0 = no preference. */
  suggestedIp: number
}

export function encodePcpMap (r: PcpMapRequest): Uint8Array {
  if (r.nonce.length !== PCP_NONCE_LEN) throw new RangeError(`PCP nonce must be ${PCP_NONCE_LEN} bytes`)
  const b = new Uint8Array(PCP_MSG_LEN)
  const v = new DataView(b.buffer)
  b[0] = PCP_VERSION
  b[1] = PCP_OP_MAP
  v.setUint32(4, r.lifetimeSec >>> 0)
  writeMappedV4(b, 8, r.clientIp)
  b.set(r.nonce, 24)
  b[36] = PCP_PROTO_UDP
  v.setUint16(40, r.internalPort)
  v.setUint16(42, r.suggestedPort)
  writeMappedV4(b, 44, r.suggestedIp)
  return b
}

export interface PcpMapAnswer {
  result: number
  lifetimeSec: number
  epoch: number
  nonce: Uint8Array
  protocol: number
  internalPort: number
  externalPort: number
  /** The assigned external IPv4 address (0 in an error answer or when not IPv4). */
  externalIp: number
}

/** Decodes a PCP MAP answer; a string says why it is not one. */
export function decodePcp (b: Uint8Array): PcpMapAnswer | string {
  if (b.length < 24) return `too short for PCP (${b.length} bytes)`
  if (b[0] !== PCP_VERSION) return `not PCP (version ${b[0]!})`
  if (b[1] !== (0x80 | PCP_OP_MAP)) return `not a PCP MAP answer (opcode byte ${b[1]!})`
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength)
  const result = b[3]!
  const lifetimeSec = v.getUint32(4)
  const epoch = v.getUint32(8)
  if (b.length < PCP_MSG_LEN) {
    // An error answer may come without the MAP body (e.g. unsupported version).
    if (result !== 0) return { result, lifetimeSec, epoch, nonce: new Uint8Array(0), protocol: 0, internalPort: 0, externalPort: 0, externalIp: 0 }
    return `PCP MAP answer too short (${b.length} bytes)`
  }
  return {
    result,
    lifetimeSec,
    epoch,
    nonce: b.slice(24, 36),
    protocol: b[36]!,
    internalPort: v.getUint16(40),
    externalPort: v.getUint16(42),
    externalIp: readMappedV4(b, 44) ?? 0
  }
}
