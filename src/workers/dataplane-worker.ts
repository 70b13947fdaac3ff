/**
 * Entry point of a dataplane worker thread (entry only: the pipelines live in
 * dataplane/outbound.ts and dataplane/inbound.ts).
 *
 * The worker watches its fd with a uv_poll on its own event loop (native
 * pollStart), so it sleeps in the kernel when idle, wakes per readable batch,
 * and still receives postMessage control events between batches. A crash is
 * reported as { code: 'ERROR' } before the thread exits.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { loadNative } from '../dataplane/native.js'
import { Outbound } from '../dataplane/outbound.js'
import { Inbound } from '../dataplane/inbound.js'
import type { FromWorker, ToWorker, WorkerInit } from './layout.js'

const port = parentPort
if (port === null) throw new Error('dataplane-worker must run as a worker thread')
const init = workerData as WorkerInit
const post = (m: FromWorker): void => { port.postMessage(m) }

function fail (err: unknown): void {
  const e = err instanceof Error ? err : new Error(String(err))
  post({ code: 'ERROR', message: e.message, stack: e.stack })
  process.exit(1)
}
process.on('uncaughtException', fail)

try {
  const native = loadNative()
  if (init.role === 'both') {
    // Placement 'fused': both pipelines on this thread, each with its own packet memory and stats region.
    const out = new Outbound({ ...init, role: 'outbound' }, native, post)
    const inb = new Inbound({ ...init, role: 'inbound', statsIndex: init.statsIndex + 1, packetMem: init.packetMemIn! }, native, post)
    const pollOut = native.pollStart(init.tunFd, () => { out.onReadable() })
    const pollIn = native.pollStart(init.udpFd, () => { inb.onReadable() })
    port.on('message', (m: ToWorker) => {
      switch (m.code) {
        case 'PEER': out.peers.upsert(m); inb.handle(m); break
        case 'PEER_REMOVE': out.removePeer(m.slot); inb.handle(m); break
        case 'SEND_KEY': out.setSendKey(m.slot, m.key, m.remoteIndex); break
        case 'STOP': native.pollStop(pollOut); native.pollStop(pollIn); post({ code: 'STOPPED' }); port.close(); break
        default: inb.handle(m); break
      }
    })
  } else if (init.role === 'outbound') {
    const out = new Outbound(init, native, post)
    const poll = native.pollStart(init.tunFd, () => { out.onReadable() })
    port.on('message', (m: ToWorker) => {
      switch (m.code) {
        case 'PEER': out.peers.upsert(m); break
        case 'PEER_REMOVE': out.removePeer(m.slot); break
        case 'SEND_KEY': out.setSendKey(m.slot, m.key, m.remoteIndex); break
        case 'STOP': native.pollStop(poll); post({ code: 'STOPPED' }); port.close(); break
        default: break
      }
    })
  } else {
    const inb = new Inbound(init, native, post)
    const poll = native.pollStart(init.udpFd, () => { inb.onReadable() })
    port.on('message', (m: ToWorker) => {
      if (m.code === 'STOP') { native.pollStop(poll); post({ code: 'STOPPED' }); port.close(); return }
      inb.handle(m)
    })
  }
  post({ code: 'READY' })
} catch (err) {
  fail(err)
}
