/**
 * A user-space UDP delay line for the lab (this kernel has no netem, no qdiscs
 * at all). It owns one listening UDP socket and one upstream socket per client
 * address it has seen; data flows:
 *
 *   client --> listen socket --[queue, +delayMs]--> that client's upstream socket --> upstream
 *   upstream --> client's upstream socket --[queue, +delayMs]--> listen socket --> client
 *
 * so each datagram leaves delayMs after it arrived, in both directions, and the
 * upstream sees one distinct source port per client (like a NAT).
 *
 * Fast path (the daemon's addon, as src/transport/bridge.ts uses it): the
 * sockets are native (udpOpen), each polled on this thread's loop (pollStart);
 * a wake-up reads with recvmmsg (udpRecvBatch, BATCH per call) straight into
 * the queue, and everything due leaves with sendmmsg (udpSendBatch, BATCH per
 * call, one run per destination socket) straight from the queue: no copy and
 * no object per datagram.
 *
 * The queue: one ring of `maxQueued` slots of SLOT bytes, shared by both
 * directions (the delay is constant, so due times are in arrival order), with
 * per slot its due time, length and destination (socket, IPv4, port). It is
 * drained at every wake-up and by one timer set for its head. Memory is
 * bounded: at most `maxQueued` datagrams wait (more are dropped and counted),
 * at most `maxClients` upstream sockets exist (datagrams of further clients
 * are dropped and counted), a datagram longer than SLOT is dropped and
 * counted, and a datagram the kernel does not take on send (EAGAIN, ENOBUFS)
 * is dropped and counted.
 *
 * Used by bench/fec-loss.ts `--delay` in the server's namespace as a child
 * process: `node dist/src/lab/delay-line.js --listen IP:PORT --upstream
 * IP:PORT --delay MS`; it prints "ready" once listening and its counters (and
 * its CPU time) as one JSON line on SIGTERM/SIGINT, then exits.
 */
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import { loadNative, openUdp, type Native, type PollHandle } from '../dataplane/native.js'
import { ipToInt } from '../wire/addr.js'

export interface DelayLineOptions {
  listenHost: string
  listenPort: number
  upstreamHost: string
  upstreamPort: number
  delayMs: number
  /** Datagrams waiting at most (default 20 000; SLOT bytes of memory each). */
  maxQueued?: number
  /** Upstream sockets at most, one per client address (default 64). */
  maxClients?: number
}

export interface DelayLineStats {
  /** Datagrams client → upstream queued. */
  forwarded: number
  /** Datagrams upstream → client queued. */
  returned: number
  droppedQueueFull: number
  /** Datagrams of a client over maxClients, or whose upstream socket could not be opened. */
  droppedTooManyClients: number
  /** Longer than SLOT (recvmmsg truncated them). */
  droppedTooLong: number
  /** Not taken by the kernel on send (or the send failed). */
  sendErrors: number
  /** recvmmsg calls that failed (a pending socket error; the poll comes back). */
  recvErrors: number
  /** The most datagrams that waited at once. */
  maxQueued: number
  /** recvmmsg and sendmmsg calls (datagrams per call = (forwarded + returned) / calls). */
  recvCalls: number
  sendCalls: number
}

export interface DelayLine {
  readonly stats: DelayLineStats
  close: () => void
}

/** Bytes per queue slot: the lab's links are 1500 bytes, so a datagram is at most 1472. */
const SLOT = 1536
/** Datagrams per recvmmsg / sendmmsg (the kernel's UIO_MAXIOV is 1024; 64 amortizes the call). */
const BATCH = 64
/** recvmmsg calls per socket per wake-up at most (the poll is level-triggered: the loop comes back). */
const RX_ROUNDS = 8
/** Socket buffers (SO_RCVBUF/SO_SNDBUF), as the dgram version had. */
const SOCK_BUF = 4 << 20

interface Sock { fd: number, poll: PollHandle | null, /** listen: null; upstream: the client's address */ client: { ip: number, port: number } | null }

export async function createDelayLine (o: DelayLineOptions): Promise<DelayLine> {
  const native: Native = loadNative()
  const cap = o.maxQueued ?? 20_000
  const maxClients = o.maxClients ?? 64
  if (!(Number.isInteger(cap) && cap >= 1 && cap <= 1_000_000)) throw new RangeError(`maxQueued must be 1-1000000 (got ${cap})`)
  const stats: DelayLineStats = { forwarded: 0, returned: 0, droppedQueueFull: 0, droppedTooManyClients: 0, droppedTooLong: 0, sendErrors: 0, recvErrors: 0, maxQueued: 0, recvCalls: 0, sendCalls: 0 }
  const upstreamIp = ipToInt(o.upstreamHost)
  const delay = o.delayMs

  // The ring: slot i at mem[i * SLOT]; head = oldest, count = waiting (dropped ones included until due).
  const mem = new Uint8Array(cap * SLOT)
  const slotOff = Int32Array.from({ length: cap }, (_, i) => i * SLOT)
  const due = new Float64Array(cap)
  const lens = new Int32Array(cap)
  /** Destination socket fd per slot; -1: dropped after it was read (too long, too many clients). */
  const dstFd = new Int32Array(cap)
  const dstAddr = new Uint32Array(2 * cap)
  let head = 0
  let count = 0

  const rxOffs = new Int32Array(BATCH)
  const rxLens = new Int32Array(BATCH)
  const rxAddrs = new Uint32Array(2 * BATCH)
  /** Where a batch goes when the ring is full (read to drop, so the socket drains). */
  const scratch = new Uint8Array(BATCH * SLOT)
  const scratchOffs = Int32Array.from({ length: BATCH }, (_, i) => i * SLOT)
  const txOffs = new Int32Array(BATCH)
  const txLens = new Int32Array(BATCH)
  const txAddrs = new Uint32Array(2 * BATCH)
  /** Slots of the due run already sent (one mark per slot, reset per flush). */
  const sentMark = new Uint8Array(cap)

  let timer: NodeJS.Timeout | null = null
  let closed = false
  const socks: Sock[] = []
  const clients = new Map<number, Sock>()

  function open (host: string, port: number, client: Sock['client']): Sock {
    const { fd } = openUdp(native, host, port, SOCK_BUF)
    const s: Sock = { fd, poll: null, client }
    socks.push(s)
    s.poll = native.pollStart(fd, () => { onReadable(s) })
    return s
  }

  const listen = open(o.listenHost, o.listenPort, null)

  /** The upstream socket of the client at ip:port (opened on its first datagram); null: too many clients. */
  function upstreamFor (ip: number, port: number): Sock | null {
    const key = ip * 65536 + port
    const known = clients.get(key)
    if (known !== undefined) return known
    if (clients.size >= maxClients) return null
    let s: Sock
    try { s = open(o.listenHost, 0, { ip, port }) } catch { return null }
    clients.set(key, s)
    return s
  }

  function onReadable (s: Sock): void {
    if (closed) return
    const now = performance.now()
    for (let round = 0; round < RX_ROUNDS; round++) {
      const room = cap - count
      const max = room > 0 ? Math.min(BATCH, room) : BATCH
      const tail = (head + count) % cap
      const toRing = room > 0
      if (toRing) for (let j = 0; j < max; j++) rxOffs[j] = slotOff[(tail + j) % cap]!
      let n = 0
      try { n = native.udpRecvBatch(s.fd, toRing ? mem : scratch, toRing ? rxOffs : scratchOffs, rxLens, rxAddrs, max, SLOT) } catch { stats.recvErrors++; break }
      stats.recvCalls++
      if (!toRing) {
        stats.droppedQueueFull += n
      } else {
        for (let j = 0; j < n; j++) {
          const i = (tail + j) % cap
          due[i] = now + delay
          lens[i] = rxLens[j]!
          dstFd[i] = -1
          if (rxLens[j]! < 0) { stats.droppedTooLong++; continue }
          if (s.client === null) {
            const up = upstreamFor(rxAddrs[2 * j]!, rxAddrs[2 * j + 1]!)
            if (up === null) { stats.droppedTooManyClients++; continue }
            dstFd[i] = up.fd
            dstAddr[2 * i] = upstreamIp
            dstAddr[2 * i + 1] = o.upstreamPort
            stats.forwarded++
          } else {
            dstFd[i] = listen.fd
            dstAddr[2 * i] = s.client.ip
            dstAddr[2 * i + 1] = s.client.port
            stats.returned++
          }
        }
        count += n
        if (count > stats.maxQueued) stats.maxQueued = count
      }
      if (n < max) break
    }
    flush()
  }

  /** Send everything due, one sendmmsg run per destination socket (in order within each), then re-arm the timer. */
  function flush (): void {
    if (closed) return
    const now = performance.now()
    let k = 0
    while (k < count && due[(head + k) % cap]! <= now) k++
    for (let a = 0; a < k; a++) {
      const ia = (head + a) % cap
      if (sentMark[ia] === 1 || dstFd[ia] === -1) continue
      const fd = dstFd[ia]!
      let n = 0
      for (let b = a; b < k; b++) {
        const ib = (head + b) % cap
        if (sentMark[ib] === 1 || dstFd[ib] !== fd) continue
        sentMark[ib] = 1
        txOffs[n] = slotOff[ib]!
        txLens[n] = lens[ib]!
        txAddrs[2 * n] = dstAddr[2 * ib]!
        txAddrs[2 * n + 1] = dstAddr[2 * ib + 1]!
        if (++n === BATCH) { send(fd, n); n = 0 }
      }
      if (n > 0) send(fd, n)
    }
    for (let a = 0; a < k; a++) sentMark[(head + a) % cap] = 0
    head = (head + k) % cap
    count -= k
    arm(now)
  }

  function send (fd: number, n: number): void {
    let sent = 0
    try { sent = native.udpSendBatch(fd, mem, txOffs, txLens, txAddrs, n) } catch { sent = 0 }
    stats.sendCalls++
    stats.sendErrors += n - sent
  }

  function onTimer (): void {
    timer = null
    flush()
  }

  function arm (now: number): void {
    if (timer !== null || closed || count === 0) return
    timer = setTimeout(onTimer, Math.max(0, due[head]! - now))
  }

  return {
    stats,
    close () {
      if (closed) return
      closed = true
      if (timer !== null) clearTimeout(timer)
      count = 0
      for (const s of socks) {
        if (s.poll !== null) native.pollStop(s.poll)
        native.close(s.fd)
      }
      socks.length = 0
      clients.clear()
    }
  }
}

function hostPort (s: string | undefined, what: string): { host: string, port: number } {
  const m = /^(\d+\.\d+\.\d+\.\d+):(\d+)$/.exec(s ?? '')
  if (m === null) throw new Error(`${what} must be IPv4:PORT (got "${s ?? ''}")`)
  return { host: m[1]!, port: Number(m[2]) }
}

async function main (): Promise<void> {
  const { values } = parseArgs({ options: { listen: { type: 'string' }, upstream: { type: 'string' }, delay: { type: 'string' }, 'max-queued': { type: 'string' } } })
  const l = hostPort(values.listen, '--listen')
  const u = hostPort(values.upstream, '--upstream')
  const delayMs = Number(values.delay)
  if (!(delayMs >= 0 && delayMs <= 10_000)) throw new Error(`--delay must be 0-10000 ms (got "${values.delay ?? ''}")`)
  const line = await createDelayLine({
    listenHost: l.host, listenPort: l.port, upstreamHost: u.host, upstreamPort: u.port, delayMs,
    ...(values['max-queued'] !== undefined ? { maxQueued: Number(values['max-queued']) } : {})
  })
  const t0 = performance.now()
  // The counters plus this process's CPU time and lifetime (ms): cpuMs / wallMs near 1 means the line was busy all along.
  const stop = (): void => {
    line.close()
    const cpu = process.cpuUsage()
    console.log(JSON.stringify({ ...line.stats, cpuMs: Math.round((cpu.user + cpu.system) / 1000), wallMs: Math.round(performance.now() - t0) }))
    process.exit(0)
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  console.log('ready')
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    const hint = (err as { hint?: unknown }).hint
    console.error(`delay-line: ${err instanceof Error ? err.message : String(err)}${typeof hint === 'string' ? ` (${hint})` : ''}`)
    process.exit(2)
  })
}
