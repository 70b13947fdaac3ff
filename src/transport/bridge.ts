/**
 * One connection's loopback "bridge" socket (conn-table.ts): a native UDP
 * socket on a 127/8 address of its own, polled on the main thread's loop, so each wake-up
 * moves a batch in one syscall each way instead of one per message.
 *
 *   link ─▶ send(msg): copied into the shared staging area; flushed with one
 *           sendmmsg to the daemon's socket at the end of the current callback
 *           (a microtask), or when the area is full
 *   daemon ─▶ recvmmsg (up to RX_MAX per call, a few calls per wake-up) ─▶
 *           onMessage(copy, source port) for each datagram
 *
 * The staging and receive areas are shared by every bridge (one thread).
 * A batch the daemon's socket does not take (EAGAIN) is dropped and counted
 * by the caller (send returns false only for a message that cannot fit).
 */
import type { Native, PollHandle } from '../dataplane/native.js'

const SLOT = 2048
const RX_MAX = 32
const TX_MAX = 32
/** recvmmsg calls per wake-up at most (the loop comes back while data waits). */
const RX_ROUNDS = 8

const rx = { mem: new Uint8Array(RX_MAX * SLOT), offsets: Int32Array.from({ length: RX_MAX }, (_, i) => i * SLOT), lens: new Int32Array(RX_MAX), addrs: new Uint32Array(2 * RX_MAX) }
const tx = { mem: new Uint8Array(TX_MAX * SLOT), offsets: Int32Array.from({ length: TX_MAX }, (_, i) => i * SLOT), lens: new Int32Array(TX_MAX), addrs: new Uint32Array(2 * TX_MAX) }
/** The bridge whose messages are staged in `tx`, and how many. */
let staged: { bridge: Bridge, n: number } | null = null

function flushStaged (): number {
  const s = staged
  staged = null
  if (s === null || s.bridge.closed) return 0
  let sent = 0
  try { sent = s.bridge.native.udpSendBatch(s.bridge.fd, tx.mem, tx.offsets, tx.lens, tx.addrs, s.n) } catch { sent = 0 }
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
    this.#onMessage = onMessage
    this.#poll = native.pollStart(this.fd, () => { this.pump() })
  }

  /** Hand what the daemon's socket sent to onMessage (the poll's callback; at shutdown, once more by hand). */
  pump (): void {
    for (let round = 0; round < RX_ROUNDS && !this.closed; round++) {
      let n = 0
      try { n = this.native.udpRecvBatch(this.fd, rx.mem, rx.offsets, rx.lens, rx.addrs, RX_MAX, SLOT) } catch { return }
      for (let i = 0; i < n; i++) {
        const len = rx.lens[i]!
        if (len <= 0) continue
        const off = rx.offsets[i]!
        this.#onMessage(rx.mem.slice(off, off + len), rx.addrs[2 * i + 1]!)
      }
      if (n < RX_MAX) return
    }
  }

  /** Queue msg for the daemon's socket (sent at the end of this callback). false: it cannot be carried (too long). */
  send (msg: Uint8Array): boolean {
    if (this.closed || msg.length > SLOT) return false
    if (staged !== null && (staged.bridge !== this || staged.n === TX_MAX)) flushStaged()
    if (staged === null) {
      staged = { bridge: this, n: 0 }
      queueMicrotask(flushStaged)
    }
    const i = staged.n++
    tx.mem.set(msg, tx.offsets[i]!)
    tx.lens[i] = msg.length
    const d = this.#daemon()
    tx.addrs[2 * i] = d.ip
    tx.addrs[2 * i + 1] = d.port
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
