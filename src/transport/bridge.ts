/**
 * One connection's loopback "bridge" socket (conn-table.ts): a native UDP
 * socket on a 127/8 address of its own, polled on the main thread's loop, so each wake-up
 * moves a batch in one syscall each way instead of one per message.
 *
 *   link ─▶ send(msg): copied (packed) into the shared staging area; flushed with
 *           one udpSendBatchGso to the daemon's socket at the end of the current
 *           callback (a microtask), or when the area is full: a run of equal-size
 *           messages is one skb through loopback, and the daemon's socket (UDP_GRO
 *           on) reads it as one datagram
 *   daemon ─▶ udpRecvGro (UDP_GRO on the bridge socket: the pipeline's GSO send
 *           arrives as one datagram, not cut into skbs on the way in) ─▶
 *           onMessage(view, source port) for each message; the view lies in
 *           the shared receive area and is valid only during the call
 *
 * The staging and receive areas are shared by every bridge (one thread).
 * A batch the daemon's socket does not take (EAGAIN) is dropped and counted
 * by the caller (send returns false only for a message that cannot fit).
 */
import type { Native, PollHandle } from '../dataplane/native.js'
import { MAX_FRAME } from './framing.js'

/** Receive buffers per recvmmsg and their size (a coalesced datagram is at most 64 KiB). */
const RX_BUFS = 8
const RX_BUF = 65536
/** Messages per receive call at most (the kernel coalesces at most 64 segments per datagram; 128 leaves room). */
const RX_MAX = RX_BUFS * 128
/** Messages staged at most before a send. */
const TX_MAX = 64
/** Bytes staged at most (messages packed back to back). */
const TX_BYTES = 128 * 1024
/** recvmmsg calls per wake-up at most (the loop comes back while data waits). */
const RX_ROUNDS = 8

const rx = {
  mem: new Uint8Array(RX_BUFS * RX_BUF),
  bufOffsets: Int32Array.from({ length: RX_BUFS }, (_, i) => i * RX_BUF),
  offsets: new Int32Array(RX_MAX),
  lens: new Int32Array(RX_MAX),
  addrs: new Uint32Array(2 * RX_MAX),
  info: new Int32Array(4)
}
const tx = { mem: new Uint8Array(TX_BYTES), offsets: new Int32Array(TX_MAX), lens: new Int32Array(TX_MAX), addrs: new Uint32Array(2 * TX_MAX) }
/** The bridge whose messages are staged in `tx`, how many, and the bytes used. */
let staged: { bridge: Bridge, n: number, bytes: number } | null = null

function flushStaged (): number {
  const s = staged
  staged = null
  if (s === null || s.bridge.closed) return 0
  let sent = 0
  try { sent = s.bridge.native.udpSendBatchGso(s.bridge.fd, tx.mem, tx.offsets, tx.lens, tx.addrs, s.n) } catch { sent = 0 }
  const lost = s.n - sent
  if (lost > 0) s.bridge.onLost(lost)
  return lost
}

export class Bridge {
  readonly native: Native
  readonly fd: number
  readonly port: number
  readonly #poll: PollHandle
  readonly #daemon: () => { ip: number, port: number }
  readonly #onMessage: (msg: Uint8Array, fromPort: number) => void
  closed = false
  /** Messages the daemon's socket did not take. */
  onLost: (n: number) => void = () => {}

  constructor (native: Native, host: string, daemon: () => { ip: number, port: number }, onMessage: (msg: Uint8Array, fromPort: number) => void) {
    this.native = native
    this.#daemon = daemon
    const s = native.udpOpen(host, 0, 1 << 20)
    this.fd = s.fd
    this.port = s.port
    native.udpSetGro(s.fd, true) // where the kernel has no UDP_GRO, each message arrives alone: the same reads
    this.#onMessage = onMessage
    this.#poll = native.pollStart(this.fd, () => { this.pump() })
  }

  /** Hand what the daemon's socket sent to onMessage (the poll's callback; at shutdown, once more by hand). */
  pump (): void {
    const info = rx.info
    for (let round = 0; round < RX_ROUNDS && !this.closed; round++) {
      let n = 0
      try { n = this.native.udpRecvGro(this.fd, rx.mem, rx.bufOffsets, RX_BUFS, RX_BUF, rx.offsets, rx.lens, rx.addrs, RX_MAX, info) } catch { return }
      for (let i = 0; i < n && !this.closed; i++) {
        const len = rx.lens[i]!
        if (len <= 0) continue
        const off = rx.offsets[i]!
        this.#onMessage(rx.mem.subarray(off, off + len), rx.addrs[2 * i + 1]!)
      }
      if (info[0]! < RX_BUFS) return
    }
  }

  /** Queue msg for the daemon's socket (sent at the end of this callback). false: it cannot be carried (too long). */
  send (msg: Uint8Array): boolean {
    if (this.closed || msg.length > MAX_FRAME) return false
    if (staged !== null && (staged.bridge !== this || staged.n === TX_MAX || staged.bytes + msg.length > TX_BYTES)) flushStaged()
    if (staged === null) {
      staged = { bridge: this, n: 0, bytes: 0 }
      queueMicrotask(flushStaged)
      const d = this.#daemon()
      tx.addrs[0] = d.ip
      tx.addrs[1] = d.port
    }
    const i = staged.n++
    tx.mem.set(msg, staged.bytes)
    tx.offsets[i] = staged.bytes
    tx.lens[i] = msg.length
    staged.bytes += msg.length
    if (i > 0) {
      tx.addrs[2 * i] = tx.addrs[0]!
      tx.addrs[2 * i + 1] = tx.addrs[1]!
    }
    return true
  }

  close (): void {
    if (this.closed) return
    if (staged?.bridge === this) flushStaged()
    this.closed = true
    this.native.pollStop(this.#poll)
    this.native.close(this.fd)
  }
}
