/**
 * Stream framing of the TCP transport (docs/PROTOCOL.md §19): every outer
 * message (handshake, control, data, relay: exactly the bytes of one UDP
 * datagram) travels as a u16 big-endian length followed by that many bytes.
 *
 *   bytes in ─▶ Deframer.push(chunk) ─▶ onFrame(message) per whole frame
 *                                    └▶ 'too-long' | 'empty': the stream is
 *                                       unusable; the caller closes it
 *   message ─▶ frameHeader(len) + message ─▶ socket (one write, never split)
 *
 * Sans-IO: no sockets, no timers. The buffer holds at most one partial frame
 * (≤ 2 + MAX_FRAME bytes, a copy: the caller may reuse its chunk, as a socket
 * reading into one buffer does): a peer can never make it grow beyond that.
 * `partial` tells the owner a frame is half-read, for the stall timeout.
 */

/** The largest message a frame may carry: a full datagram of ours (TUN MTU ≤ 9000 plus headers) fits. */
export const MAX_FRAME = 9216
/** Bytes of the length prefix. */
export const FRAME_HEADER = 2

export type DeframeError = 'too-long' | 'empty'

/** The 2-byte prefix for a message of `len` bytes (1..MAX_FRAME). */
export function frameHeader (len: number): Uint8Array {
  if (!Number.isInteger(len) || len < 1 || len > MAX_FRAME) throw new RangeError(`frame length ${len} outside 1..${MAX_FRAME}`)
  return Uint8Array.of(len >>> 8, len & 0xff)
}

/** One message as a frame (header + bytes, one buffer). */
export function encodeFrame (msg: Uint8Array): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER + msg.length)
  out.set(frameHeader(msg.length), 0)
  out.set(msg, FRAME_HEADER)
  return out
}

export class Deframer {
  readonly #onFrame: (msg: Uint8Array) => void
  readonly #max: number
  /** The partial frame carried over from earlier chunks (header and body so far). */
  #held: Uint8Array = new Uint8Array(0)
  #error: DeframeError | null = null

  constructor (onFrame: (msg: Uint8Array) => void, max = MAX_FRAME) {
    this.#onFrame = onFrame
    this.#max = max
  }

  /** True while a frame is half-read (the caller times such a stall out). */
  get partial (): boolean { return this.#held.length > 0 }
  get error (): DeframeError | null { return this.#error }

  /**
   * Feed received bytes; whole frames go to onFrame (subarrays of `chunk`
   * where they lie in it whole, which the caller must not reuse). Returns
   * null, or the error that ends the stream (then nothing more is read).
   */
  push (chunk: Uint8Array): DeframeError | null {
    if (this.#error !== null) return this.#error
    let buf = chunk
    if (this.#held.length > 0) {
      const need = this.#held.length < FRAME_HEADER ? FRAME_HEADER : FRAME_HEADER + ((this.#held[0]! << 8) | this.#held[1]!)
      const take = Math.min(need - this.#held.length, chunk.length)
      const joined = new Uint8Array(this.#held.length + take)
      joined.set(this.#held, 0)
      joined.set(chunk.subarray(0, take), this.#held.length)
      this.#held = new Uint8Array(0)
      const rest = chunk.subarray(take)
      if (joined.length < need) { this.#held = joined; return null }
      if (joined.length === FRAME_HEADER && need === FRAME_HEADER) {
        // The header completed: go on with it in front of the rest.
        buf = new Uint8Array(FRAME_HEADER + rest.length)
        buf.set(joined, 0)
        buf.set(rest, FRAME_HEADER)
      } else {
        const e = this.#one(joined)
        if (e !== null) return e
        buf = rest
      }
    }
    let off = 0
    while (buf.length - off >= FRAME_HEADER) {
      const len = (buf[off]! << 8) | buf[off + 1]!
      if (len === 0) return (this.#error = 'empty')
      if (len > this.#max) return (this.#error = 'too-long')
      if (buf.length - off < FRAME_HEADER + len) break
      this.#onFrame(buf.subarray(off + FRAME_HEADER, off + FRAME_HEADER + len))
      off += FRAME_HEADER + len
    }
    if (off < buf.length) {
      if (buf.length - off >= FRAME_HEADER) {
        const len = (buf[off]! << 8) | buf[off + 1]!
        if (len === 0) return (this.#error = 'empty')
        if (len > this.#max) return (this.#error = 'too-long')
      }
      this.#held = Uint8Array.prototype.slice.call(buf, off) // a copy even of a Buffer (whose slice is a view): the caller may reuse chunk
    }
    return null
  }

  /** A frame completed from held bytes: check its length and deliver it. */
  #one (frame: Uint8Array): DeframeError | null {
    const len = (frame[0]! << 8) | frame[1]!
    if (len === 0) return (this.#error = 'empty')
    if (len > this.#max) return (this.#error = 'too-long')
    this.#onFrame(frame.subarray(FRAME_HEADER))
    return null
  }
}
