/**
 * FEC parity messages (type 8): the parity shards of a group of sealed data
 * messages (type 4) of one peer session, sent beside them. The data shards
 * are the data messages themselves, unchanged (systematic code: a receiver
 * that loses nothing ignores the parity); a group is `data` data messages
 * with consecutive counters on one receiver index, starting at `first`.
 * dataplane/fec.ts groups, encodes and rebuilds; dataplane/reed-solomon.ts
 * is the code. A rebuilt data message is opened like any other, so a forged
 * or damaged parity message can cost a failed AEAD open, never a packet.
 *
 *    0               1               2               3
 *   +---------------+---------------+---------------+---------------+
 *   | type = 8      | data (k)      | parity (m)    | index (< m)   |
 *   +---------------+---------------+---------------+---------------+
 *   | receiver index of the group's data messages (LE 32)          |
 *   +---------------------------------------------------------------+
 *   | first: the counter of the group's first data message (LE 64)  |
 *   |                                                               |
 *   +---------------------------------------------------------------+
 *   | length of data message 0 (LE 16) | … k lengths in all         |
 *   +---------------------------------------------------------------+
 *   | parity shard `index`: max(lengths) bytes (shorter data         |
 *   | messages count as zero-padded)                                |
 *
 * Decoding checks type, k and m in range, index < m, every length in
 * [TRANSPORT_MIN, FEC_MAX_SHARD], and that the message is exactly as long
 * as its lengths say; anything else is a WireError (the worker counts it).
 */
import { WireError } from '../errors.js'
import { TRANSPORT_MIN, readU16, readU32, readU64, writeU16, writeU32, writeU64 } from './messages.js'

export const MSG_FEC = 8
/** Data messages per group at most (Go's fec_data broke its wire format above 15; 32 keeps a group's buffers small). */
export const FEC_MAX_DATA = 32
/** Parity messages per group at most. */
export const FEC_MAX_PARITY = 16
/** The longest data message a group carries (a ring slot's packet, with room to spare). */
export const FEC_MAX_SHARD = 2048
/** Bytes before the lengths. */
export const FEC_HEADER_LEN = 16

export interface FecParity {
  data: number
  parity: number
  index: number
  receiverIndex: number
  first: number
  /** Length of each data message of the group (data entries). */
  lengths: readonly number[]
  /** The parity shard: max(lengths) bytes (a view into the input on decode). */
  shard: Uint8Array
}

export function fecParityLength (data: number, shardLen: number): number {
  return FEC_HEADER_LEN + 2 * data + shardLen
}

export function encodeFecParity (m: FecParity): Uint8Array {
  const shardLen = Math.max(...m.lengths)
  if (m.lengths.length !== m.data || m.shard.length !== shardLen) throw new RangeError('FEC parity: lengths and shard do not match')
  const out = new Uint8Array(fecParityLength(m.data, shardLen))
  out[0] = MSG_FEC
  out[1] = m.data
  out[2] = m.parity
  out[3] = m.index
  writeU32(out, 4, m.receiverIndex)
  writeU64(out, 8, m.first)
  m.lengths.forEach((l, i) => { writeU16(out, FEC_HEADER_LEN + 2 * i, l) })
  out.set(m.shard, FEC_HEADER_LEN + 2 * m.data)
  return out
}

export function decodeFecParity (b: Uint8Array): FecParity {
  if (b.length < FEC_HEADER_LEN + 2 + TRANSPORT_MIN) throw new WireError(`FEC parity: ${b.length} bytes is too short`)
  if (b[0] !== MSG_FEC) throw new WireError(`FEC parity: type ${b[0]}`)
  const data = b[1]!
  const parity = b[2]!
  const index = b[3]!
  if (data < 1 || data > FEC_MAX_DATA) throw new WireError(`FEC parity: ${data} data messages per group (1-${FEC_MAX_DATA})`)
  if (parity < 1 || parity > FEC_MAX_PARITY) throw new WireError(`FEC parity: ${parity} parity messages per group (1-${FEC_MAX_PARITY})`)
  if (index >= parity) throw new WireError(`FEC parity: index ${index} of ${parity}`)
  const lenAt = FEC_HEADER_LEN
  if (b.length < lenAt + 2 * data) throw new WireError('FEC parity: truncated lengths')
  const lengths: number[] = []
  let max = 0
  for (let i = 0; i < data; i++) {
    const l = readU16(b, lenAt + 2 * i)
    if (l < TRANSPORT_MIN || l > FEC_MAX_SHARD) throw new WireError(`FEC parity: data message length ${l}`)
    lengths.push(l)
    if (l > max) max = l
  }
  if (b.length !== fecParityLength(data, max)) throw new WireError(`FEC parity: ${b.length} bytes, its lengths say ${fecParityLength(data, max)}`)
  return {
    data, parity, index,
    receiverIndex: readU32(b, 4),
    first: readU64(b, 8),
    lengths,
    shard: b.subarray(lenAt + 2 * data)
  }
}
