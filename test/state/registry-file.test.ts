// state/registry-file.ts FileRegistry: the address→key rules (check, bind,
// re-bind moves, remove revokes, allow lifts), strict mode, persistence
// (every change written at once, touch lazily, reload equals what was
// written), refusal of a damaged file, atomic replacement and the bounds.
import t from 'tap'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FileRegistry, REGISTRY_FILE, REGISTRY_TOUCH_FLUSH } from '../../src/state/registry-file.js'
import { parseAuthorizedNodes } from '../../src/state/authorized-nodes.js'
import { keyToText } from '../../src/identity/key-text.js'
import { ipToInt } from '../../src/wire/addr.js'
import { isVpnError } from '../../src/errors.js'

const key = (n: number): Uint8Array => new Uint8Array(32).fill(n)
const A = ipToInt('10.0.0.2') >>> 0
const B = ipToInt('10.0.0.3') >>> 0
const T0 = 1_767_225_600_000

function tmpState (t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'lwt-reg-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return join(dir, REGISTRY_FILE)
}

t.test('an address belongs to the first key bound to it', async t => {
  const r = new FileRegistry(null)
  t.same(r.check(key(1), A), { ok: true }, 'a free address')
  r.bind(key(1), A, T0)
  t.same(r.check(key(1), A), { ok: true }, 'its own key again')
  const other = r.check(key(2), A)
  t.equal(other.ok, false)
  if (!other.ok) {
    t.equal(other.reason, 'address-bound-to-other-key')
    t.same(other.holder?.key, key(1), 'the holder is named')
    t.equal(other.holder?.address, A)
  }
  r.bind(key(2), A, T0)
  t.same(r.list().map(x => x.key[0]), [1], 'bind never takes an address from its holder')
  t.same(r.check(key(2), B), { ok: true }, 'another address is free')
})

t.test('re-binding a key moves it: one address per key', async t => {
  const r = new FileRegistry(null)
  r.bind(key(1), A, T0)
  r.bind(key(1), B, T0 + 5)
  t.same(r.list().map(x => x.address), [B])
  t.equal(r.list()[0]!.firstSeen, T0, 'first seen kept across the move')
  t.same(r.check(key(2), A), { ok: true }, 'the old address is free again')
})

t.test('remove frees the address and revokes the key; allow lifts it', async t => {
  const r = new FileRegistry(null)
  r.bind(key(1), A, T0)
  r.bind(key(2), B, T0)
  const gone = r.remove({ address: A }, T0 + 1)
  t.same(gone.map(x => x.address), [A])
  t.same(r.check(key(3), A), { ok: true }, 'the address is free')
  t.same(r.check(key(1), A), { ok: false, reason: 'key-revoked' }, 'the key is refused, for its old address')
  t.same(r.check(key(1), ipToInt('10.0.0.9')), { ok: false, reason: 'key-revoked' }, 'and for any other')
  r.bind(key(1), A, T0)
  t.notOk(r.list().some(x => x.key[0] === 1), 'bind never binds a revoked key')
  t.same(r.revoked().map(x => x.at), [T0 + 1])
  t.same(r.remove({ key: key(2) }, T0 + 2).map(x => x.address), [B], 'by key')
  t.same(r.remove({ key: key(9) }, T0 + 3), [], 'a key never bound')
  t.equal(r.isRevoked(key(9)), true, 'is revoked all the same')
  t.equal(r.allow(key(1)), true)
  t.equal(r.allow(key(1)), false, 'twice: nothing to lift')
  t.same(r.check(key(1), A), { ok: true }, 'allowed again')
})

t.test('strict mode: only listed key/address pairs', async t => {
  const r = new FileRegistry(null)
  r.setAuthorized(parseAuthorizedNodes(`${keyToText(key(1))} 10.0.0.2\n`, 'auth'))
  t.same(r.check(key(1), A), { ok: true })
  t.same(r.check(key(1), B), { ok: false, reason: 'not-authorized' }, 'listed key, other address')
  t.same(r.check(key(2), B), { ok: false, reason: 'not-authorized' }, 'unlisted key')
  r.remove({ key: key(1) })
  t.same(r.check(key(1), A), { ok: false, reason: 'key-revoked' }, 'revocation wins over the list')
  r.setAuthorized(null)
  t.same(r.check(key(2), B), { ok: true }, 'strict mode off')
})

t.test('persisted: every change is in the file at once, and reloads identically', async t => {
  const path = tmpState(t)
  const r = new FileRegistry(path)
  t.equal(existsSync(path), false, 'nothing written before a change')
  r.bind(key(1), A, T0)
  r.bind(key(2), B, T0 + 1)
  r.remove({ address: B }, T0 + 2)
  t.equal(statSync(path).mode & 0o777, 0o600, 'the file is 0600')
  const again = new FileRegistry(path)
  t.same(again.list(), r.list())
  t.same(again.revoked(), r.revoked())
  t.same(again.check(key(3), A).ok, false, 'the binding survived')
  t.same(again.check(key(2), B), { ok: false, reason: 'key-revoked' }, 'and the revocation')
  const doc = JSON.parse(readFileSync(path, 'utf8'))
  t.equal(doc.nodes[0].address, '10.0.0.2', 'addresses as text')
  t.equal(doc.nodes[0].key, keyToText(key(1)), 'keys as base64')
})

t.test('touch reaches the file lazily: at most every 30 s, and on a forced flush', async t => {
  const path = tmpState(t)
  const r = new FileRegistry(path)
  r.bind(key(1), A, T0)
  const lastSeenOnDisk = (): number => new FileRegistry(path).list()[0]!.lastSeen
  r.touch(key(1), T0 + 1000)
  t.equal(lastSeenOnDisk(), T0, 'a touch right after a write stays in memory')
  t.equal(r.list()[0]!.lastSeen, T0 + 1000, 'memory has it')
  r.flush(T0 + 2000)
  t.equal(lastSeenOnDisk(), T0, 'flush without force waits for the interval')
  r.touch(key(1), T0 + REGISTRY_TOUCH_FLUSH)
  t.equal(lastSeenOnDisk(), T0 + REGISTRY_TOUCH_FLUSH, 'written once the interval passed')
  r.touch(key(1), T0 + REGISTRY_TOUCH_FLUSH + 5)
  r.flush(T0 + REGISTRY_TOUCH_FLUSH + 6, true)
  t.equal(lastSeenOnDisk(), T0 + REGISTRY_TOUCH_FLUSH + 5, 'shutdown flush writes it')
  r.touch(key(7), T0 + 10 * REGISTRY_TOUCH_FLUSH)
  t.equal(r.list().length, 1, 'touching an unknown key binds nothing')
})

t.test('a damaged file stops the start with an error naming it; never an empty registry', async t => {
  const path = tmpState(t)
  const cases: Array<[string, string, RegExp]> = [
    ['not JSON', '{"format":', /not JSON/],
    ['another format', '{"nodes":[]}', /"format"/],
    ['a newer version', '{"format":"lightweight-tunnel registry","version":2,"nodes":[],"revoked":[]}', /version 2/],
    ['a bad key', `{"format":"lightweight-tunnel registry","version":1,"nodes":[{"key":"abc","address":"10.0.0.2","firstSeen":1,"lastSeen":1}],"revoked":[]}`, /nodes\[0\]/],
    ['a bad address', `{"format":"lightweight-tunnel registry","version":1,"nodes":[{"key":"${keyToText(key(1))}","address":"10.0.0","firstSeen":1,"lastSeen":1}],"revoked":[]}`, /nodes\[0\]/],
    ['a repeated address', `{"format":"lightweight-tunnel registry","version":1,"nodes":[{"key":"${keyToText(key(1))}","address":"10.0.0.2","firstSeen":1,"lastSeen":1},{"key":"${keyToText(key(2))}","address":"10.0.0.2","firstSeen":1,"lastSeen":1}],"revoked":[]}`, /repeats/],
    ['a bad revocation', '{"format":"lightweight-tunnel registry","version":1,"nodes":[],"revoked":[{"key":"x"}]}', /revoked\[0\]/],
    ['empty', '', /not JSON/]
  ]
  for (const [name, text, re] of cases) {
    writeFileSync(path, text)
    try {
      const r = new FileRegistry(path)
      t.fail(`${name}: loaded ${r.list().length} records`)
    } catch (err) {
      t.ok(isVpnError(err, 'ERR_STATE'), `${name}: ERR_STATE`)
      t.match((err as Error).message, re, `${name}: says what is wrong`)
      t.match((err as Error).message, path, `${name}: names the file`)
      t.match((err as { hint?: string }).hint ?? '', /move it away/, `${name}: says what to do`)
    }
  }
  // An unreadable file (root reads any mode, so a directory stands in its place).
  rmSync(path)
  mkdirSync(path)
  t.throws(() => new FileRegistry(path), { code: 'ERR_STATE', message: /cannot read the node registry/ })
})

t.test('writes are atomic: the file is replaced by rename, no temp file stays, a failed write keeps memory', async t => {
  const path = tmpState(t)
  const errors: Error[] = []
  const r = new FileRegistry(path, { onWriteError: (e) => errors.push(e) })
  r.bind(key(1), A, T0)
  const inoBefore = statSync(path).ino
  r.bind(key(2), B, T0)
  t.not(statSync(path).ino, inoBefore, 'a new inode: the old file was replaced whole, never rewritten in place')
  t.same(readdirSync(join(path, '..')), [REGISTRY_FILE], 'no temp file left')
  // A directory where the temp file goes makes the next write fail.
  mkdirSync(`${path}.tmp-${process.pid}`)
  r.bind(key(3), ipToInt('10.0.0.4'), T0)
  r.remove({ address: A }, T0)
  t.equal(errors.length, 1, 'a run of failures is reported once')
  t.equal(new FileRegistry(path).list().length, 2, 'the file still holds the last good state, whole')
  t.equal(r.list().length, 2, 'memory has the newest state (one bound, one removed)')
  rmSync(`${path}.tmp-${process.pid}`, { recursive: true })
  r.flush(T0, true)
  t.same(new FileRegistry(path).list().map(x => x.address), [B, ipToInt('10.0.0.4') >>> 0], 'retried at the next flush')
})

t.test('bounded: the least recently seen binding goes first; revocations keep the newest', async t => {
  const r = new FileRegistry(null, { maxRecords: 3, maxRevoked: 2 })
  for (let i = 1; i <= 3; i++) r.bind(key(i), A + i, T0 + i)
  r.touch(key(1), T0 + 100)
  r.bind(key(4), A + 4, T0 + 200)
  t.same(r.list().map(x => x.key[0]), [1, 3, 4], 'key 2 (seen longest ago) was forgotten; key 1 was touched')
  r.remove({ key: key(10) }, 1)
  r.remove({ key: key(11) }, 2)
  r.remove({ key: key(12) }, 3)
  t.same(r.revoked().map(x => x.key[0]), [11, 12])
})
