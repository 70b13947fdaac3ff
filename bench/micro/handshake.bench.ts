/**
 * Handshakes per second, in process, on the main thread (what bounds a
 * server's registrations): the v2 handshake (Noise_IXpsk0, crypto/noise.ts)
 * as a whole and the responder's share of it (consumeInit + createResponse,
 * 3 DH on the responder: ee, se, es), and the cost of refusing an init made
 * with another network key (no DH). With LWT_V1_NOISE=path/to/noise.js (the
 * v1 module compiled from an older commit), the v1 handshake (NNpsk0, 1 DH
 * per side) is timed the same way beside it, for comparison.
 */
import { randomBytes } from 'node:crypto'
import { pathToFileURL } from 'node:url'
import { consumeInit, consumeResponse, createInit, createResponse, generateStaticKey } from '../../src/crypto/noise.js'
import { time, type BenchResult, type TimerOptions } from './timer.js'

const PAYLOAD1 = new Uint8Array(17)
const PAYLOAD2 = new Uint8Array(18)

interface V1 {
  createInit(psk: Uint8Array, idx: number, p: Uint8Array): { message: Uint8Array, state: unknown }
  consumeInit(psk: Uint8Array, m: Uint8Array): { state: unknown }
  createResponse(st: unknown, idx: number, p: Uint8Array): { message: Uint8Array }
  consumeResponse(st: unknown, m: Uint8Array): unknown
}

export async function run (opts: TimerOptions): Promise<BenchResult[]> {
  const out: BenchResult[] = []
  const psk = new Uint8Array(randomBytes(32))
  const i = generateStaticKey()
  const r = generateStaticKey()
  out.push(time('handshake', 'v2 IXpsk0: full handshake (both sides)', 1, () => {
    const a = createInit(psk, i, 1, PAYLOAD1)
    const b = consumeInit(psk, r, a.message)
    consumeResponse(a.state, createResponse(b.state, 2, PAYLOAD2).message)
  }, opts))
  const inits = Array.from({ length: 256 }, () => createInit(psk, i, 1, PAYLOAD1).message)
  let k = 0
  out.push(time('handshake', 'v2 IXpsk0: responder (consumeInit + createResponse)', 1, () => {
    createResponse(consumeInit(psk, r, inits[k++ & 255]).state, 2, PAYLOAD2)
  }, opts))
  const wrong = createInit(new Uint8Array(randomBytes(32)), i, 1, PAYLOAD1).message
  out.push(time('handshake', 'v2 IXpsk0: refuse an init with another network key', 1, () => {
    try { consumeInit(psk, r, wrong) } catch {}
  }, opts))
  const v1Path = process.env.LWT_V1_NOISE
  if (v1Path !== undefined && v1Path !== '') {
    const v1 = await import(pathToFileURL(v1Path).href) as V1
    const p1 = new Uint8Array(33)
    out.push(time('handshake', 'v1 NNpsk0: full handshake (both sides)', 1, () => {
      const a = v1.createInit(psk, 1, p1)
      const b = v1.consumeInit(psk, a.message)
      v1.consumeResponse(a.state, v1.createResponse(b.state, 2, PAYLOAD2).message)
    }, opts))
    const inits1 = Array.from({ length: 256 }, () => v1.createInit(psk, 1, p1).message)
    out.push(time('handshake', 'v1 NNpsk0: responder (consumeInit + createResponse)', 1, () => {
      v1.createResponse(v1.consumeInit(psk, inits1[k++ & 255]).state, 2, PAYLOAD2)
    }, opts))
  }
  return out
}
