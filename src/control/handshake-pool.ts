/**
 * The server's handshake pool (`--handshake-workers`): createResponse (the
 * responder's X25519 key generation and DH) on piscina worker threads, so a
 * burst of registrations does not hold the main thread. The main thread keeps
 * every decision: it authenticates the init (consumeInit), checks the claim,
 * allocates the index, and on the answer installs the keys and sends the
 * response (control/server-registration.ts). Tasks are bounded: at most MAX_QUEUED wait;
 * beyond that run() answers null and the caller drops the init (the client
 * retries in 1 s), counted as handshakesShed.
 *
 *   main: consumeInit → decide → pool.run(state, a plain object) ─▶ worker: createResponse
 *   main: ◀─ { message, keys } → install keys, send the response
 */
import { availableParallelism } from 'node:os'
import { fileURLToPath } from 'node:url'
import type { Piscina } from 'piscina'
import { createResponse, type ResponderState, type SessionKeys } from '../crypto/noise.js'
import type { HandshakeResult, HandshakeTask } from '../workers/handshake-worker.js'

/** Handshakes waiting for a worker at most (~0.5 s of work at ~4,000/s). */
export const MAX_QUEUED = 2048

/**
 * 'auto' = 0 (no pool) for now. Measured on 2 cores (bench/handshakes.ts, v2
 * IXpsk0 responder, 1000 handshakes, best of 3): the main thread alone
 * ~3,300-3,800 handshakes/s, a pool of 1 thread ~2,000-2,200/s, 2 threads
 * ~2,000-2,800/s, 3 threads ~1,900/s: the hand-off and the competition for the
 * 2 cores cost more than the step saves. Some bench runs also stalled (not
 * diagnosed), so the pool stays opt-in until a machine with more cores
 * measures a gain and the stall is understood.
 */
export function poolSize (setting: number | 'auto', _cores = availableParallelism()): number {
  if (setting === 'auto') return 0
  return setting
}

export class HandshakePool {
  readonly #pool: Piscina<HandshakeTask, HandshakeResult>
  /** Answers shed because the queue was full. */
  shed = 0

  private constructor (pool: Piscina<HandshakeTask, HandshakeResult>) { this.#pool = pool }

  /** A pool of `threads` threads (piscina is loaded only here: a daemon without a pool never loads it). */
  static async create (threads: number): Promise<HandshakePool> {
    const { Piscina } = await import('piscina')
    const self = fileURLToPath(import.meta.url)
    // Under the test runner this module is the .ts source; the worker entry is beside it either way.
    const ext = self.endsWith('.ts') ? '.ts' : '.js'
    return new HandshakePool(new Piscina<HandshakeTask, HandshakeResult>({
      filename: fileURLToPath(new URL(`../workers/handshake-worker${ext}`, import.meta.url)),
      minThreads: threads,
      maxThreads: threads,
      idleTimeout: 60_000
    }))
  }

  get threads (): number { return this.#pool.threads.length }
  get queued (): number { return this.#pool.queueSize }

  /** createResponse on a worker; null when the queue is full (shed). Rejects as createResponse throws. */
  async run (state: ResponderState, senderIndex: number, payload: Uint8Array): Promise<{ message: Uint8Array, keys: SessionKeys } | null> {
    if (this.#pool.queueSize >= MAX_QUEUED) { this.shed++; return null }
    return await this.#pool.run({ state, senderIndex, payload })
  }

  /** Stop the threads; gives up waiting after 2 s (piscina's destroy was seen to hang once in bench runs). */
  async close (): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    await Promise.race([this.#pool.destroy(), new Promise<void>((resolve) => { timer = setTimeout(resolve, 2000); timer.unref() })])
    clearTimeout(timer)
  }
}

/** The same step on the calling thread (no pool): what the server does with --handshake-workers 0. */
export function respondInline (state: ResponderState, senderIndex: number, payload: Uint8Array): { message: Uint8Array, keys: SessionKeys } {
  return createResponse(state, senderIndex, payload)
}
