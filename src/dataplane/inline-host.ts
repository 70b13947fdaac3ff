/**
 * Placement 'inline': the dataplane pipelines on the main thread's event
 * loop, behind the same interface as a worker thread (postMessage, and the
 * 'message' and 'exit' events), so dataplane.ts drives both alike. Control
 * events still travel through a MessageChannel, so they arrive between
 * packet batches exactly as they do in a worker; only the thread (and its
 * V8 isolate, ~12 MB) is saved.
 */
import { EventEmitter } from 'node:events'
import { MessageChannel, type MessagePort } from 'node:worker_threads'
import type { Native } from './native.js'
import { errorMessage, runPipelines, type PipelinePort, type RunningPipelines } from './pipelines.js'
import type { FromWorker, ToWorker, WorkerInit } from '../workers/layout.js'

export class InlineHost extends EventEmitter {
  readonly #main: MessagePort
  readonly #side: MessagePort
  #run: RunningPipelines | null = null
  #exitCode: number | null = null

  constructor (init: WorkerInit, native: Native) {
    super()
    const { port1, port2 } = new MessageChannel()
    this.#main = port1
    this.#side = port2
    port1.on('message', (m: FromWorker) => {
      this.emit('message', m)
      // A worker exits after STOPPED (0) or after reporting a failure (1).
      if (m.code === 'STOPPED') this.#exit(0)
      else if (m.code === 'ERROR') this.#exit(1)
    })
    // Start on a later turn, as a worker does, so the caller's listeners are attached first.
    setImmediate(() => {
      if (this.#exitCode !== null) return
      try {
        this.#run = runPipelines(init, native, port2 as unknown as PipelinePort, () => {})
      } catch (err) {
        port2.postMessage(errorMessage(err))
      }
    })
  }

  postMessage (m: ToWorker): void {
    if (this.#exitCode === null) this.#main.postMessage(m)
  }

  /** Stop at once (the pipelines' polls stop; no STOPPED is posted). Resolves with exit code 1, like Worker.terminate. */
  async terminate (): Promise<number> {
    this.#exit(1)
    return 1
  }

  #exit (code: number): void {
    if (this.#exitCode !== null) return
    this.#exitCode = code
    this.#run?.stop()
    this.#main.close()
    this.#side.close()
    this.emit('exit', code)
  }
}
