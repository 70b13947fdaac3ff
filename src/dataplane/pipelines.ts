/**
 * The body of a dataplane thread, wherever it runs: in a worker thread
 * (workers/dataplane-worker.ts, placements 'split' and 'fused') or on the
 * main thread's own event loop (placement 'inline', dataplane/inline-host.ts).
 *
 * Role 'outbound' runs the TUN → UDP pipeline, 'inbound' the UDP → TUN one,
 * and 'both' runs both, each with its own packet memory and stats region.
 * Each pipeline watches its fd with a uv_poll on the current thread's event
 * loop (native pollStart), so the thread sleeps in the kernel when idle,
 * wakes per readable batch, and still receives control events between
 * batches. Control events arrive on `port` (a MessagePort either way), so the
 * two hosts see the same ordering and the same asynchrony.
 */
import { isNativeErrnoError, type Native, type PollHandle } from './native.js'
import { Outbound } from './outbound.js'
import { Inbound } from './inbound.js'
import type { FromWorker, ToWorker, WorkerInit } from '../workers/layout.js'

/** The subset of MessagePort the pipelines use. */
export interface PipelinePort {
  postMessage: (m: FromWorker) => void
  on: (ev: 'message', fn: (m: ToWorker) => void) => unknown
  close: () => void
}

/** Errors of a TUN read or write that mean the device is gone (deleted, or its queue detached). */
const TUN_GONE = new Set(['EBADFD', 'ENODEV', 'ENXIO', 'EBADF'])

/** The ERROR message for a failure of the pipelines. */
export function errorMessage (err: unknown): FromWorker {
  const e = err instanceof Error ? err : new Error(String(err))
  if (isNativeErrnoError(e) && TUN_GONE.has(e.code) && /^tun/.test(e.message)) {
    return { code: 'ERROR', message: e.code, tunGone: true, stack: e.stack }
  }
  return { code: 'ERROR', message: e.message, stack: e.stack }
}

export interface RunningPipelines {
  /** Stop watching every fd (idempotent). */
  stop: () => void
}

/**
 * Start the pipelines of `init.role` on this thread and answer control events
 * from `port`. A throw from a pipeline stops the polls, posts ERROR and calls
 * `onFail` (the host decides what "exit" means). Posts READY when running;
 * STOP stops the polls, posts STOPPED and closes the port.
 */
export function runPipelines (init: WorkerInit, native: Native, port: PipelinePort, onFail: (err: unknown) => void): RunningPipelines {
  const post = (m: FromWorker): void => { port.postMessage(m) }
  const fused = init.role === 'both'
  const out = init.role === 'inbound' ? null : new Outbound(fused ? { ...init, role: 'outbound' } : init, native, post)
  const inb = init.role === 'outbound'
    ? null
    : new Inbound(fused ? { ...init, role: 'inbound', statsIndex: init.statsIndex + 1, packetMem: init.packetMemIn! } : init, native, post)
  const polls: PollHandle[] = []
  let stopped = false
  const stop = (): void => {
    if (stopped) return
    stopped = true
    for (const p of polls) native.pollStop(p)
    polls.length = 0
    out?.fec.stop()
  }
  const fail = (err: unknown): void => {
    if (stopped) return
    stop()
    post(errorMessage(err))
    onFail(err)
  }
  const watch = (fd: number, fn: () => void): PollHandle => {
    const h = native.pollStart(fd, () => {
      try { fn() } catch (err) { fail(err) }
    })
    polls.push(h)
    return h
  }
  let fastOut: PollHandle | null = null
  if (out !== null) {
    const h = watch(init.tunFd, () => { out.onReadable() })
    const args = init.fastPath ? out.fastPathArgs() : null
    if (args !== null) { native.fastPathOut(h, ...args); fastOut = h }
  }
  if (inb !== null) {
    const h = watch(init.udpFd, () => { inb.onReadable() })
    const args = init.fastPath ? inb.fastPathArgs() : null
    if (args !== null) {
      native.fastPathIn(h, ...args)
      // One thread runs both (fused, inline): a delivery's immediate answer leaves without waiting a loop turn.
      if (fastOut !== null) native.fastPathLink(h, fastOut)
    }
  }
  // Fake TCP (dataplane/faketcp-link.ts): its data segments enter the inbound pipeline like datagrams.
  const ftcpFd = init.ftcpFd ?? -1
  if (inb !== null && ftcpFd >= 0) watch(ftcpFd, () => { inb.onReadable(ftcpFd, 0, true) })
  port.on('message', (m: ToWorker) => {
    try {
      switch (m.code) {
        case 'STOP':
          stop()
          post({ code: 'STOPPED' })
          port.close()
          return
        case 'PEER': out?.upsertPeer(m); inb?.handle(m); return
        case 'PEER_REMOVE': out?.removePeer(m.slot); inb?.handle(m); return
        case 'SEND_KEY': out?.setSendKey(m.slot, m.key, m.remoteIndex, m.fec ?? null); return
        case 'SEND_KEY_CLEAR': out?.clearSendKey(m.slot); return
        case 'PATH_MTU': out?.setPathMtu(m.slot, m.inner); inb?.handle(m); return
        // An adopted birthday-search socket: its datagrams enter the inbound pipeline.
        case 'ADD_SOCKET': if (inb !== null && !stopped) watch(m.fd, () => { inb.onReadable(m.fd, m.sock) }); return
        default: inb?.handle(m)
      }
    } catch (err) { fail(err) }
  })
  post({ code: 'READY' })
  return { stop }
}
