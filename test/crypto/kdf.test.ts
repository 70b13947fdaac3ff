/**
 * crypto/kdf.ts: golden psk values (cross-checked with Python
 * hashlib.scrypt(n=2**15, r=8, p=1, salt=b'lightweight-tunnel/v2/psk/' +
 * CIDR [+ b'/' + name], dklen=32)), the per-network salt, input validation,
 * and the measured cost (logged as a comment).
 */
import t from 'tap'
import { derivePsk, pskSalt, type PskNetwork } from '../../src/crypto/kdf.js'
import { ipToInt } from '../../src/wire/addr.js'

const toHex = (u: Uint8Array): string => Buffer.from(u).toString('hex')
const net = (cidr: string, name: string | null = null): PskNetwork => {
  const [ip, prefix] = cidr.split('/')
  return { ip: ipToInt(ip!), prefix: Number(prefix), name }
}
const NET = net('10.0.0.1/24')

const GOLDEN: Array<[string, PskNetwork, string]> = [
  ['correct horse', net('10.0.0.1/24'), '61fd436eaea068eefe69ee331e905dfe5cc48edef7419b3a89bc45903877f9ff'],
  ['correct horse', net('10.0.0.1/24', 'office'), 'ccda0e8c27674c28cfc1284ea45e4866c055469ae2a920c824f346099c93acf1'],
  ['correct horse', net('10.1.2.3/16'), '3f15faa241f8c8f3d42e11d37cd2ac29e59cbd4929943c70a520d54bf4afa414'],
  ['pässwörd ✓', net('192.168.7.9/24', 'réseau'), 'bdbc1cfd5f8fa92341c0d381de65a45ac06d0e296bc968a08250ea74b16e1b34'] // UTF-8, not normalized
]

t.test('golden vectors', async t => {
  for (const [secret, n, expected] of GOLDEN) {
    t.test(`${JSON.stringify(secret)} ${Buffer.from(pskSalt(n)).toString()}`, async t => {
      const psk = await derivePsk(secret, n)
      t.equal(psk.length, 32)
      t.equal(psk.constructor, Uint8Array, 'a plain Uint8Array, not a pooled Buffer')
      t.equal(toHex(psk), expected)
    })
  }
})

t.test('the salt: the tunnel network (not the node\'s own address) and the optional name', async t => {
  t.equal(Buffer.from(pskSalt(net('10.0.0.1/24'))).toString(), 'lightweight-tunnel/v2/psk/10.0.0.0/24')
  t.equal(Buffer.from(pskSalt(net('10.0.0.77/24', 'office'))).toString(), 'lightweight-tunnel/v2/psk/10.0.0.0/24/office')
  t.equal(Buffer.from(pskSalt(net('0.0.0.0/0'))).toString(), 'lightweight-tunnel/v2/psk/0.0.0.0/0')
  t.throws(() => pskSalt({ ip: 0, prefix: 33, name: null }), { code: 'ERR_CONFIG_INVALID' })
})

t.test('same secret: the server and a client of one network derive the same psk; other networks another', async t => {
  const server = toHex(await derivePsk('shared secret', net('10.0.0.1/24')))
  t.equal(toHex(await derivePsk('shared secret', net('10.0.0.2/24'))), server, 'a client of 10.0.0.0/24')
  t.equal(toHex(await derivePsk('shared secret', net('10.0.0.254/24'))), server, 'another client')
  t.not(toHex(await derivePsk('shared secret', net('10.0.1.2/24'))), server, 'another network')
  t.not(toHex(await derivePsk('shared secret', net('10.0.0.2/16'))), server, 'another prefix')
  t.not(toHex(await derivePsk('shared secret', net('10.0.0.2/24', 'lab'))), server, 'same CIDR, named')
  t.equal(toHex(await derivePsk('shared secret', net('10.0.0.9/24', 'lab'))), toHex(await derivePsk('shared secret', net('10.0.0.1/24', 'lab'))), 'same CIDR and name')
})

t.test('secret is used byte-exactly (no trimming)', async t => {
  t.not(toHex(await derivePsk('a ', NET)), toHex(await derivePsk('a', NET)))
})

t.test('empty or non-string secret: ERR_CONFIG_INVALID', async t => {
  await t.rejects(derivePsk('', NET), { name: 'VpnError', code: 'ERR_CONFIG_INVALID' })
  await t.rejects(derivePsk(undefined as unknown as string, NET), { code: 'ERR_CONFIG_INVALID' })
})

t.test('cost: slow on purpose, off the event loop', async t => {
  const runs: number[] = []
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now()
    await derivePsk('measure me', NET)
    runs.push(performance.now() - t0)
  }
  t.comment(`derivePsk wall time: ${runs.map(ms => ms.toFixed(1)).join(', ')} ms`)
  t.ok(Math.min(...runs) > 5, 'not accidentally cheap')
  // The event loop keeps turning while scrypt runs on the thread pool.
  let ticks = 0
  const iv = setInterval(() => { ticks++ }, 1)
  await derivePsk('measure me', NET)
  clearInterval(iv)
  t.ok(ticks > 0, `event loop ran ${ticks} timer ticks during derivation`)
})
