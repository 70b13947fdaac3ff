/**
 * Entry point of a dataplane worker thread (placements 'split' and 'fused').
 * Entry only: the body is dataplane/pipelines.ts, which the 'inline'
 * placement runs on the main thread instead. A crash is reported as
 * { code: 'ERROR' } before the thread exits with code 1.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { loadNative } from '../dataplane/native.js'
import { errorMessage, runPipelines } from '../dataplane/pipelines.js'
import type { WorkerInit } from './layout.js'

const port = parentPort
if (port === null) throw new Error('dataplane-worker must run as a worker thread')

process.on('uncaughtException', (err) => {
  port.postMessage(errorMessage(err))
  process.exit(1)
})

try {
  runPipelines(workerData as WorkerInit, loadNative(), port, () => { process.exit(1) })
} catch (err) {
  port.postMessage(errorMessage(err))
  process.exit(1)
}
