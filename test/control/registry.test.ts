/**
 * control/registry.ts MemoryRegistry: the NodeRegistry contract the server
 * codes against (check before any DH, bind on Confirm, one address per key,
 * remove frees and revokes).
 */
import t from 'tap'
import { MemoryRegistry } from '../../src/control/registry.js'

const K1 = new Uint8Array(32).fill(1)
const K2 = new Uint8Array(32).fill(2)
const A = 0x0a000002
const B = 0x0a000003

t.test('an unbound address is free for any key; a bound one only for its key', async t => {
  const r = new MemoryRegistry()
  t.same(r.check(K1, A), { ok: true })
  r.bind(K1, A, 1000)
  t.same(r.check(K1, A), { ok: true })
  const c = r.check(K2, A)
  t.equal(c.ok, false)
  if (!c.ok) { t.equal(c.reason, 'address-bound-to-other-key'); t.strictSame(c.holder?.key, K1) }
  t.same(r.check(K2, B), { ok: true })
})

t.test('a key holds one address: binding another moves it; touch updates lastSeen', async t => {
  const r = new MemoryRegistry()
  r.bind(K1, A, 1000)
  r.bind(K1, B, 2000)
  t.same(r.list().map(n => n.address), [B])
  t.same(r.check(K2, A), { ok: true }, 'the old address is free')
  t.equal(r.list()[0].firstSeen, 1000, 'firstSeen kept')
  r.touch(K1, 5000)
  t.equal(r.list()[0].lastSeen, 5000)
})

t.test('remove by address or key frees the address and revokes the key', async t => {
  const r = new MemoryRegistry()
  r.bind(K1, A, 1)
  r.bind(K2, B, 1)
  t.equal(r.remove({ address: A }).length, 1)
  t.same(r.check(K2, A), { ok: true }, 'address free')
  const c = r.check(K1, A)
  t.equal(c.ok ? 'ok' : c.reason, 'key-revoked')
  t.equal(r.remove({ key: K2 }).length, 1)
  t.equal(r.list().length, 0)
  t.equal(r.remove({ address: 0x0a000009 }).length, 0, 'nothing to remove')
})

t.test('list returns copies', async t => {
  const r = new MemoryRegistry()
  r.bind(K1, A, 1)
  r.list()[0].key[0] = 9
  t.equal(r.list()[0].key[0], 1)
})
