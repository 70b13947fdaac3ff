/**
 * Entry point of a dataplane worker thread (entry only: the pipelines live in
 * dataplane/outbound.ts and dataplane/inbound.ts).
 *
 * Role 'outbound' runs the TUN → UDP pipeline, 'inbound' the UDP → TUN one,
 * and 'both' (placement 'fused') runs both on this thread, each with its own
 * packet memory and stats region. Each pipeline watches its fd with a uv_poll
 * on this thread's event loop (native pollStart), so the worker sleeps in the
 * kernel when idle, wakes per readable batch, and still receives postMessage
 * control events between batches. A crash is reported as { code: 'ERROR' }
 * before the thread exits.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { isNativeErrnoError, loadNative, type PollHandle } from '../dataplane/native.js'
import { Outbound } from '../dataplane/outbound.js'
import { Inbound } from '../dataplane/inbound.js'
import type { FromWorker, ToWorker, WorkerInit } from './layout.js'

const port = parentPort
if (port === null) throw new Error('dataplane-worker must run as a worker thread')
const init = workerData as WorkerInit
const post = (m: FromWorker): void => { port.postMessage(m) }

/** Errors of a TUN read or write that mean the device is gone (deleted, or its queue detached). */
const TUN_GONE = new Set(['EBADFD', 'ENODEV', 'ENXIO', 'EBADF'])

function fail (err: unknown): void {
  const e = err instanceof Error ? err : new Error(String(err))
  if (isNativeErrnoError(e) && TUN_GONE.has(e.code) && /^tun/.test(e.message)) {
    post({ code: 'ERROR', message: e.code, tunGone: true, stack: e.stack })
  } else {
    post({ code: 'ERROR', message: e.message, stack: e.stack })
  }
  process.exit(1)
}
process.on('uncaughtException', fail)

try {
  const native = loadNative()
  const fused = init.role === 'both'
  const out = init.role === 'inbound' ? null : new Outbound(fused ? { ...init, role: 'outbound' } : init, native, post)
  const inb = init.role === 'outbound'
    ? null
    : new Inbound(fused ? { ...init, role: 'inbound', statsIndex: init.statsIndex + 1, packetMem: init.packetMemIn! } : init, native, post)
  const polls: PollHandle[] = []
  if (out !== null) polls.push(native.pollStart(init.tunFd, () => { out.onReadable() }))
  if (inb !== null) polls.push(native.pollStart(init.udpFd, () => { inb.onReadable() }))
  port.on('message', (m: ToWorker) => {
    switch (m.code) {
      case 'STOP':
        for (const p of polls) native.pollStop(p)
        post({ code: 'STOPPED' })
        port.close()
        return
      case 'PEER': out?.peers.upsert(m); inb?.handle(m); return
      case 'PEER_REMOVE': out?.removePeer(m.slot); inb?.handle(m); return
      case 'SEND_KEY': out?.setSendKey(m.slot, m.key, m.remoteIndex); return
      // An adopted birthday-search socket: its datagrams enter the inbound pipeline.
      case 'ADD_SOCKET': if (inb !== null) polls.push(native.pollStart(m.fd, () => { inb.onReadable(m.fd, m.sock) })); return
      default: inb?.handle(m)
    }
  })
  post({ code: 'READY' })
} catch (err) {
  fail(err)
}
