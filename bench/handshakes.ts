/**
 * bench:handshakes — honest registration handshakes a second at the server's
 * responder, with the handshake crypto on the main thread and on the piscina
 * pool (control/handshake-pool.ts). N inits are built beforehand (the
 * clients' work is not counted); the timed part is what the server does per
 * registration: consumeInit, decode the payload, createResponse (inline, or
 * on the pool with the main thread waiting on nothing but the answers).
 * Prints handshakes/s per setting. Run: npm run build && npm run bench:handshakes [-- --n 6000]
 */
import { parseArgs } from 'node:util'
import { randomBytes } from 'node:crypto'
import { availableParallelism } from 'node:os'
import { consumeInit, createInit, generateStaticKey } from '../src/crypto/noise.js'
import { decodeInitPayload, encodeInitPayload, encodeRespPayload, RESP_OK } from '../src/wire/payloads.js'
import { HandshakePool, respondInline } from '../src/control/handshake-pool.js'

const { values } = parseArgs({ options: { n: { type: 'string', default: '1000' }, rounds: { type: 'string', default: '3' }, threads: { type: 'string', default: '0,1,2' } } })
// --threads 0,1,2: 0 = the main thread alone; each pool size once (a pool per run: run one size per process for clean figures).
const N = Number(values.n)
const psk = new Uint8Array(randomBytes(32))
const serverKey = generateStaticKey()
const inits: Uint8Array[] = []
for (let i = 0; i < N; i++) {
  const payload = encodeInitPayload({ role: 1, prefixLen: 16, mtu: 1400, tunnelIp: 0x0a000002 + i, timestamp: Date.now(), lan: [] })
  inits.push(createInit(psk, generateStaticKey(), i + 1, payload).message)
}
const resp = encodeRespPayload({ status: RESP_OK, prefixLen: 16, mtu: 1400, tunnelIp: 0x0a000001, peerId: 1, observedIp: 1, observedPort: 1 })

function decide (m: Uint8Array): ReturnType<typeof consumeInit> {
  const hs = consumeInit(psk, serverKey, m)
  decodeInitPayload(hs.payload)
  return hs
}

async function inline (): Promise<number> {
  const t0 = performance.now()
  for (let i = 0; i < N; i++) { const hs = decide(inits[i]); respondInline(hs.state, i + 1, resp) }
  return N / ((performance.now() - t0) / 1000)
}

async function pooled (pool: HandshakePool): Promise<number> {
  const t0 = performance.now()
  const pending: Promise<unknown>[] = []
  // Arrivals in bursts of 64 (one drain turn), the main thread deciding between them.
  for (let i = 0; i < N; i++) {
    const hs = decide(inits[i])
    pending.push(pool.run(hs.state, i + 1, resp))
    if ((i & 63) === 63) await new Promise(resolve => setImmediate(resolve))
  }
  await Promise.all(pending)
  return N / ((performance.now() - t0) / 1000)
}

console.log(`cores: ${availableParallelism()}, ${N} handshakes a run, best of ${values.rounds}`)
const results: [string, number][] = []
for (const threads of values.threads.split(',').map(Number)) {
  let best = 0
  if (threads === 0) {
    for (let r = 0; r < Number(values.rounds); r++) best = Math.max(best, await inline())
    results.push(['main thread (--handshake-workers 0)', best])
    continue
  }
  const pool = await HandshakePool.create(threads)
  await pooled(pool) // warm-up: threads started, modules loaded
  for (let r = 0; r < Number(values.rounds); r++) best = Math.max(best, await pooled(pool))
  results.push([`pool, ${threads} thread${threads > 1 ? 's' : ''}`, best])
  await pool.close()
}
for (const [k, v] of results) console.log(`${k.padEnd(38)} ${Math.round(v)} handshakes/s`)
process.exit(0)
