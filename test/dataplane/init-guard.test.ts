/**
 * The server's gate for HandshakeInits (src/dataplane/init-guard.ts) on a
 * fake clock: mac1, the per-source and global buckets, "under load" and the
 * cookie round trip, the reply cap, the bounded source table.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { BAD_MAC1_REPORTS_PER_SEC, InitGuard, LOAD_HOLD_MS, type InitVerdict } from '../../src/dataplane/init-guard.js'
import { CookieChecker, CookieGenerator, macKeys } from '../../src/crypto/cookie.js'
import { createInit, generateStaticKey } from '../../src/crypto/noise.js'

const psk = new Uint8Array(randomBytes(32))
const keys = macKeys(psk)
const noise = createInit(psk, generateStaticKey(), 5, new Uint8Array(33)).message
const random = (b: Uint8Array): void => { b.set(randomBytes(b.length)) }
const IP = 0x0a000001

function guard (limits = {}): InitGuard { return new InitGuard(new CookieChecker(keys, random), 0, limits) }
function init (gen = new CookieGenerator(keys), now = 0): Uint8Array { return gen.addMacs(noise, now) }
function run (g: InitGuard, n: number, f: (i: number) => [Uint8Array, number, number, number, number]): Record<string, number> {
  const out: Record<string, number> = {}
  for (let i = 0; i < n; i++) {
    const [b, ip, port, now, occ] = f(i)
    const v: InitVerdict = g.check(b, 0, b.length, ip, port, now, occ)
    out[v] = (out[v] ?? 0) + 1
  }
  return out
}

t.test('mac1: junk, another network key and a missing trailer are dropped; a member passes', async t => {
  const g = guard()
  const junk = new Uint8Array(randomBytes(150)); junk[0] = 1
  const other = new CookieGenerator(macKeys(new Uint8Array(randomBytes(32)))).addMacs(noise, 0)
  t.equal(g.check(junk, 0, junk.length, IP, 1, 0, 0), 'report', 'the first of a source in a second goes to the main thread (wrong-key Reject)')
  t.equal(g.check(junk, 0, junk.length, IP, 1, 0, 0), 'bad-mac1')
  t.equal(g.check(other, 0, other.length, IP, 1, 0, 0), 'bad-mac1', 'wrong network key')
  t.equal(g.check(other, 0, other.length, IP, 1, 1000, 0), 'report', 'a second later: reported again')
  t.equal(g.check(noise, 0, noise.length, IP, 1, 0, 0), 'bad-mac1', 'a v1 init without the trailer')
  const ok = init()
  t.equal(g.check(ok, 0, ok.length, IP, 1, 0, 0), 'pass')
  t.equal(g.sources, 1, 'only inits with a valid mac1 get a bucket')
})

t.test('bad-mac1 reports: one a second per source, BAD_MAC1_REPORTS_PER_SEC in all', async t => {
  const g = guard()
  const junk = new Uint8Array(randomBytes(150)); junk[0] = 1
  t.same(run(g, 1000, (i) => [junk, IP + i, 1, 0, 0]), { report: BAD_MAC1_REPORTS_PER_SEC, 'bad-mac1': 1000 - BAD_MAC1_REPORTS_PER_SEC })
})

t.test('per-source bucket: burst 40, then 20/s; other sources unaffected', async t => {
  const g = guard()
  const b = init()
  t.same(run(g, 100, () => [b, IP, 1, 0, 0]), { pass: 40, 'rate-source': 60 }, 'a burst of 100 at one instant')
  t.same(run(g, 10, () => [b, IP + 1, 1, 0, 0]), { pass: 10 }, 'another source has its own bucket')
  t.same(run(g, 100, () => [b, IP, 1, 1000, 0]), { pass: 20, 'rate-source': 80 }, 'one second later: 20 tokens again')
  t.same(run(g, 200, (i) => [b, IP, 1, 1000 + i * 10, 0]), { pass: 39, 'rate-source': 161 }, 'then 100/s for 2 s: 20/s pass')
})

t.test('global cap: many sources together get at most globalRate a second into the ring', async t => {
  const g = guard({ globalRate: 100, loadInitsPerSec: 1e9 })
  const b = init()
  t.same(run(g, 500, (i) => [b, IP + i, 1, 0, 0]), { pass: 100, 'rate-global': 400 })
  t.same(run(g, 500, (i) => [b, IP + 1000 + i, 1, 500, 0]), { pass: 50, 'rate-global': 450 }, 'half a second refills half')
})

t.test('under load (ring occupancy): no mac2 → cookie; with the cookie → pass; the load ends LOAD_HOLD_MS later', async t => {
  const g = guard()
  const gen = new CookieGenerator(keys)
  const first = init(gen, 0)
  t.equal(g.check(first, 0, first.length, IP, 4000, 0, 10), 'pass', 'not under load')
  t.notOk(g.underLoad(0, 255))
  t.equal(g.check(first, 0, first.length, IP, 4000, 0, 256), 'cookie', 'ring 1/8 full: a cookie instead')
  const reply = g.checker.createReply(first, 0, first.length, IP, 4000, 0, new Uint8Array(64))
  t.ok(gen.consumeReply(reply, 0))
  const second = gen.addMacs(noise, 0)
  t.equal(g.check(second, 0, second.length, IP, 4000, 10, 300), 'pass', 'mac2 proves the source: through')
  t.equal(g.check(second, 0, second.length, IP, 4001, 10, 300), 'cookie', 'the same cookie from another port: not valid')
  t.equal(g.check(first, 0, first.length, IP, 4000, LOAD_HOLD_MS - 1, 0), 'cookie', 'still under load within the hold')
  t.equal(g.check(first, 0, first.length, IP, 4000, LOAD_HOLD_MS + 300, 0), 'pass', 'load over')
})

t.test('under load (init rate): more than loadInitsPerSec passing inits turn cookies on', async t => {
  const g = guard({ loadInitsPerSec: 50, sourceBurst: 1000, sourceRate: 1000 })
  const b = init()
  t.same(run(g, 100, () => [b, IP, 1, 0, 0]), { pass: 51, cookie: 49 })
})

t.test('cookie replies are capped; beyond the cap the init is dropped without an answer', async t => {
  const g = guard({ repliesPerSec: 10 })
  const b = init()
  t.same(run(g, 30, (i) => [b, IP + i, 1, 0, 1000]), { cookie: 10, 'cookie-limited': 20 })
})

t.test('the source table stays bounded (oldest evicted)', async t => {
  const g = guard({ sourceTable: 64, globalRate: 1e9, loadInitsPerSec: 1e9 })
  const b = init()
  run(g, 1000, (i) => [b, IP + i, 1, 0, 0])
  t.equal(g.sources, 64)
})
