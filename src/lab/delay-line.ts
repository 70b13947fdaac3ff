/**
 * A user-space UDP delay line for the lab (this kernel has no netem, no qdiscs
 * at all). It owns one listening UDP socket and one upstream socket per client
 * address it has seen; data flows:
 *
 *   client --> listen socket --[queue, +delayMs]--> that client's upstream socket --> upstream
 *   upstream --> client's upstream socket --[queue, +delayMs]--> listen socket --> client
 *
 * so each datagram leaves delayMs after it arrived, in both directions, and the
 * upstream sees one distinct source port per client (like a NAT). One FIFO
 * queue serves both directions (the delay is constant, so due times are in
 * arrival order) with one timer set for its head. Memory is bounded: at most
 * `maxQueued` datagrams wait (more are dropped and counted) and at most
 * `maxClients` upstream sockets exist (datagrams of further clients are
 * dropped and counted).
 *
 * Used by bench/fec-loss.ts `--delay` in the server's namespace as a child
 * process: `node dist/src/lab/delay-line.js --listen IP:PORT --upstream
 * IP:PORT --delay MS`; it prints "ready" once listening and its counters as
 * one JSON line on SIGTERM/SIGINT, then exits.
 */
import { createSocket, type Socket } from 'node:dgram'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'

export interface DelayLineOptions {
  listenHost: string
  listenPort: number
  upstreamHost: string
  upstreamPort: number
  delayMs: number
  /** Datagrams waiting at most (default 20 000). */
  maxQueued?: number
  /** Upstream sockets at most, one per client address (default 64). */
  maxClients?: number
}

export interface DelayLineStats {
  forwarded: number
  returned: number
  droppedQueueFull: number
  droppedTooManyClients: number
  sendErrors: number
  maxQueued: number
}

interface Pending { due: number, data: Buffer, sock: Socket, port: number, host: string }

export interface DelayLine {
  readonly stats: DelayLineStats
  close: () => void
}

export async function createDelayLine (o: DelayLineOptions): Promise<DelayLine> {
  const maxQueued = o.maxQueued ?? 20_000
  const maxClients = o.maxClients ?? 64
  const stats: DelayLineStats = { forwarded: 0, returned: 0, droppedQueueFull: 0, droppedTooManyClients: 0, sendErrors: 0, maxQueued: 0 }
  // FIFO as a growable ring of head/tail indexes over an array (no shift()).
  const queue: Array<Pending | undefined> = []
  let head = 0
  let timer: NodeJS.Timeout | null = null
  const clients = new Map<string, Socket>()
  const listen = createSocket('udp4')
  let closed = false

  const onSendError = (err: Error | null): void => { if (err !== null) stats.sendErrors++ }

  function flush (): void {
    timer = null
    const now = performance.now()
    while (head < queue.length && queue[head]!.due <= now) {
      const p = queue[head]!
      queue[head++] = undefined
      p.sock.send(p.data, p.port, p.host, onSendError)
    }
    if (head === queue.length) { queue.length = 0; head = 0 } else if (head > 4096 && head * 2 > queue.length) { queue.splice(0, head); head = 0 }
    arm()
  }

  function arm (): void {
    if (timer !== null || closed || head >= queue.length) return
    timer = setTimeout(flush, Math.max(0, queue[head]!.due - performance.now()))
  }

  function enqueue (data: Buffer, sock: Socket, port: number, host: string): boolean {
    if (queue.length - head >= maxQueued) { stats.droppedQueueFull++; return false }
    queue.push({ due: performance.now() + o.delayMs, data, sock, port, host })
    stats.maxQueued = Math.max(stats.maxQueued, queue.length - head)
    arm()
    return true
  }

  async function upstreamFor (host: string, port: number): Promise<Socket | null> {
    const key = `${host}:${port}`
    const known = clients.get(key)
    if (known !== undefined) return known
    if (clients.size >= maxClients) return null
    const s = createSocket('udp4')
    clients.set(key, s)
    s.on('message', (msg) => { if (enqueue(msg, listen, port, host)) stats.returned++ })
    s.on('error', () => { stats.sendErrors++ })
    await new Promise<void>((resolve) => { s.bind(0, o.listenHost, resolve) })
    return s
  }

  listen.on('message', (msg, rinfo) => {
    const known = clients.get(`${rinfo.address}:${rinfo.port}`)
    if (known !== undefined) { if (enqueue(msg, known, o.upstreamPort, o.upstreamHost)) stats.forwarded++; return }
    void upstreamFor(rinfo.address, rinfo.port).then((s) => {
      if (s === null) { stats.droppedTooManyClients++; return }
      if (enqueue(msg, s, o.upstreamPort, o.upstreamHost)) stats.forwarded++
    })
  })
  listen.on('error', () => { stats.sendErrors++ })
  await new Promise<void>((resolve, reject) => {
    listen.once('error', reject)
    listen.bind(o.listenPort, o.listenHost, () => { listen.off('error', reject); resolve() })
  })
  for (const s of [listen]) { s.setRecvBufferSize(4 << 20); s.setSendBufferSize(4 << 20) }

  return {
    stats,
    close () {
      closed = true
      if (timer !== null) clearTimeout(timer)
      queue.length = 0
      listen.close()
      for (const s of clients.values()) s.close()
      clients.clear()
    }
  }
}

function hostPort (s: string | undefined, what: string): { host: string, port: number } {
  const m = /^(\d+\.\d+\.\d+\.\d+):(\d+)$/.exec(s ?? '')
  if (m === null) throw new Error(`delay-line: ${what} must be IPv4:PORT (got "${s ?? ''}")`)
  return { host: m[1]!, port: Number(m[2]) }
}

async function main (): Promise<void> {
  const { values } = parseArgs({ options: { listen: { type: 'string' }, upstream: { type: 'string' }, delay: { type: 'string' }, 'max-queued': { type: 'string' } } })
  const l = hostPort(values.listen, '--listen')
  const u = hostPort(values.upstream, '--upstream')
  const delayMs = Number(values.delay)
  if (!(delayMs >= 0 && delayMs <= 10_000)) throw new Error(`delay-line: --delay must be 0-10000 ms (got "${values.delay ?? ''}")`)
  const line = await createDelayLine({
    listenHost: l.host, listenPort: l.port, upstreamHost: u.host, upstreamPort: u.port, delayMs,
    ...(values['max-queued'] !== undefined ? { maxQueued: Number(values['max-queued']) } : {})
  })
  const stop = (): void => { line.close(); console.log(JSON.stringify(line.stats)); process.exit(0) }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  console.log('ready')
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => { console.error(err instanceof Error ? err.message : String(err)); process.exit(2) })
}
