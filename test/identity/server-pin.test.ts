/**
 * identity/server-pin.ts: trust on first use in STATE_DIR/server.pub, a
 * mismatch message naming both fingerprints, the file and the date, and
 * --server-key given as base64 or as a file.
 */
import t from 'tap'
import { mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FilePin, serverPin } from '../../src/identity/server-pin.js'
import { fingerprint, keyToText } from '../../src/identity/key-text.js'

const dir = mkdtempSync(join(tmpdir(), 'lwt-pin-'))
t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
const K1 = new Uint8Array(32).fill(1)
const K2 = new Uint8Array(32).fill(2)

t.test('first contact pins the key in server.pub; the same key passes; another is refused with a clear message', async t => {
  const state = mkdtempSync(join(dir, 's-'))
  const pin = serverPin(state, null)
  t.equal(pin.pinned, null)
  t.same(pin.check(K1, '192.0.2.1:9000'), { ok: true, pinnedNow: true })
  const file = join(state, 'server.pub')
  t.equal(readFileSync(file, 'utf8'), keyToText(K1) + '\n')
  t.equal(statSync(file).mode & 0o777, 0o600)
  t.same(pin.check(K1, '192.0.2.1:9000'), { ok: true, pinnedNow: false })
  // A restart reads the pin back (and its date from the file).
  utimesSync(file, new Date('2026-11-30T12:00:00Z'), new Date('2026-11-30T12:00:00Z'))
  const again = new FilePin(state)
  t.strictSame(again.pinned, K1)
  const r = again.check(K2, '192.0.2.1:9000')
  t.equal(r.ok, false)
  if (!r.ok) {
    t.equal(r.message, `the server at 192.0.2.1:9000 presented key ${fingerprint(K2)}, but this client pinned ${fingerprint(K1)} in ${file} on 2026-11-30; refusing to register. If the server's key was changed on purpose, delete ${file} or pass --server-key`)
  }
  t.equal(readFileSync(file, 'utf8'), keyToText(K1) + '\n', 'the pin is not replaced')
})

t.test('--server-key as base64 or as a file; server.pub is then not used', async t => {
  const state = mkdtempSync(join(dir, 'g-'))
  const given = serverPin(state, keyToText(K2))
  t.strictSame(given.pinned, K2)
  t.same(given.check(K2, 's'), { ok: true, pinnedNow: false })
  const r = given.check(K1, 's')
  t.match(r.ok ? '' : r.message, /presented key SHA256:\S+, but this client was given SHA256:\S+ \(--server-key\)/)
  const f = join(dir, 'server.key.pub')
  writeFileSync(f, keyToText(K1) + '\n')
  t.strictSame(serverPin(state, f).pinned, K1)
  t.throws(() => serverPin(state, join(dir, 'nope')), { code: 'ERR_NODE_KEY', message: /cannot read the server key/ })
  writeFileSync(f, 'junk')
  t.throws(() => serverPin(state, f), { code: 'ERR_NODE_KEY', message: /malformed/ })
  t.throws(() => statSync(join(state, 'server.pub')), 'server.pub never written')
})

t.test('a malformed server.pub is an error naming it', async t => {
  const state = mkdtempSync(join(dir, 'm-'))
  writeFileSync(join(state, 'server.pub'), 'garbage\n')
  t.throws(() => new FilePin(state), { code: 'ERR_NODE_KEY', message: /server\.pub is malformed/ })
})
