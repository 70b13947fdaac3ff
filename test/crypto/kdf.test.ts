/**
 * crypto/kdf.ts: golden psk values (cross-checked with Python
 * hashlib.scrypt(n=2**15, r=8, p=1, salt=b'lightweight-tunnel/v1/psk',
 * dklen=32)), input validation, and the measured cost (logged as a comment).
 */
import t from 'tap'
import { derivePsk } from '../../src/crypto/kdf.js'

const toHex = (u: Uint8Array): string => Buffer.from(u).toString('hex')

const GOLDEN: Array<[string, string]> = [
  ['correct horse', 'f1ea94614366201026b6c3daa2a8a26c29ba8a971d8bc8693a6abeedb7d617fc'],
  ['a', '3d70e55b93021b66e01fe6acb837671f0e4a779b11ce0debeeecf97a610d501e'],
  ['pässwörd ✓', 'acefbd63abc501867c9746233738a54eaa8be13f7bfe8dbd7df35eeeb68fc9b5'] // UTF-8, not normalized
]

t.test('golden vectors', async t => {
  for (const [secret, expected] of GOLDEN) {
    t.test(JSON.stringify(secret), async t => {
      const psk = await derivePsk(secret)
      t.equal(psk.length, 32)
      t.equal(psk.constructor, Uint8Array, 'a plain Uint8Array, not a pooled Buffer')
      t.equal(toHex(psk), expected)
    })
  }
})

t.test('secret is used byte-exactly (no trimming)', async t => {
  t.not(toHex(await derivePsk('a ')), toHex(await derivePsk('a')))
})

t.test('empty or non-string secret: ERR_CONFIG_INVALID', async t => {
  await t.rejects(derivePsk(''), { name: 'VpnError', code: 'ERR_CONFIG_INVALID' })
  await t.rejects(derivePsk(undefined as unknown as string), { code: 'ERR_CONFIG_INVALID' })
})

t.test('cost: slow on purpose, off the event loop', async t => {
  const runs: number[] = []
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now()
    await derivePsk('measure me')
    runs.push(performance.now() - t0)
  }
  t.comment(`derivePsk wall time: ${runs.map(ms => ms.toFixed(1)).join(', ')} ms`)
  t.ok(Math.min(...runs) > 5, 'not accidentally cheap')
  // The event loop keeps turning while scrypt runs on the thread pool.
  let ticks = 0
  const iv = setInterval(() => { ticks++ }, 1)
  await derivePsk('measure me')
  clearInterval(iv)
  t.ok(ticks > 0, `event loop ran ${ticks} timer ticks during derivation`)
})
