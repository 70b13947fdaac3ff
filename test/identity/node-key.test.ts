/**
 * identity/: the key text form and fingerprint, the node key file (created
 * 0600 in a 0700 state directory on first start, read back the same;
 * --node-key files refused when group/other may read them or when
 * malformed, naming the file and the expected form), and state directory
 * errors naming the path and --state-dir.
 */
import t from 'tap'
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { x25519 } from '@noble/curves/ed25519.js'
import { fingerprint, keyFromText, keyToText } from '../../src/identity/key-text.js'
import { loadNodeKey, readKeyFile } from '../../src/identity/node-key.js'
import { ensureStateDir, defaultStateDir } from '../../src/identity/state-dir.js'
import { generateStaticKey } from '../../src/crypto/noise.js'

const dir = mkdtempSync(join(tmpdir(), 'lwt-identity-'))
t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })

t.test('key text: standard base64 of 32 bytes, as wg genkey', async t => {
  const k = new Uint8Array(32).map((_, i) => i)
  const s = keyToText(k)
  t.equal(s, 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=')
  t.strictSame(keyFromText(`  ${s}\n`), k, 'surrounding whitespace ignored')
  for (const bad of ['', 'abc', s.slice(0, 43), s + 'A', s.replace('=', ''), '_' + s.slice(1), Buffer.alloc(33).toString('base64')]) {
    t.equal(keyFromText(bad), null, `refused: ${JSON.stringify(bad)}`)
  }
})

t.test('fingerprint: SHA256: + 16 base64 characters, stable', async t => {
  const f = fingerprint(new Uint8Array(32))
  t.equal(f, 'SHA256:Zmh6rfhivXdsj8GL') // sha256 of 32 zero bytes = 66687aad…, base64 "Zmh6rfhivXdsj8GL…"
  t.match(fingerprint(generateStaticKey().pub), /^SHA256:[A-Za-z0-9+/]{16}$/)
})

t.test('first start creates node.key (0600) in a new state dir (0700); the next start reads the same key', async t => {
  const state = join(dir, 'a', 'lwt0')
  ensureStateDir(state)
  t.equal(statSync(state).mode & 0o777, 0o700, 'state dir 0700')
  const first = loadNodeKey(state, null)
  t.equal(first.created, true)
  t.equal(first.path, join(state, 'node.key'))
  t.equal(statSync(first.path).mode & 0o777, 0o600, 'key file 0600')
  const text = readFileSync(first.path, 'utf8')
  t.match(text, /^[A-Za-z0-9+/]{43}=\n$/)
  t.strictSame(new Uint8Array(x25519.getPublicKey(keyFromText(text)!)), first.key.pub, 'the public key belongs to the stored private key')
  const second = loadNodeKey(state, null)
  t.equal(second.created, false)
  t.strictSame(second.key.pub, first.key.pub, 'same key after a restart')
})

t.test('--node-key FILE: used as given; refused when readable by others or malformed', async t => {
  const good = join(dir, 'good.key')
  const k = generateStaticKey()
  writeFileSync(good, keyToText(k.secret) + '\n', { mode: 0o600 })
  t.strictSame(loadNodeKey(join(dir, 'unused'), good).key.pub, k.pub)
  const open = join(dir, 'open.key')
  writeFileSync(open, keyToText(k.secret) + '\n', { mode: 0o644 })
  chmodSync(open, 0o644)
  t.throws(() => readKeyFile(open), { code: 'ERR_NODE_KEY', message: /open\.key is readable by other users \(mode 0644\)/ })
  try { readKeyFile(open) } catch (err) { t.match((err as { hint: string }).hint, /chmod 600 .*open\.key/) }
  const groupOnly = join(dir, 'group.key')
  writeFileSync(groupOnly, keyToText(k.secret), { mode: 0o640 })
  chmodSync(groupOnly, 0o640)
  t.throws(() => readKeyFile(groupOnly), { code: 'ERR_NODE_KEY' }, 'group-readable refused too')
  const junk = join(dir, 'junk.key')
  writeFileSync(junk, 'not a key\n', { mode: 0o600 })
  t.throws(() => readKeyFile(junk), { code: 'ERR_NODE_KEY', message: /junk\.key is malformed: expected one line with a base64 X25519 private key/ })
  t.throws(() => readKeyFile(join(dir, 'missing.key')), { code: 'ERR_NODE_KEY', message: /cannot read the node key .*missing\.key/ })
  t.throws(() => readKeyFile(dir), { code: 'ERR_NODE_KEY', message: /not a regular file/ })
})

t.test('a state dir that cannot be created: ERR_STATE_DIR naming the path and --state-dir', async t => {
  const file = join(dir, 'plain-file')
  writeFileSync(file, 'x')
  t.throws(() => ensureStateDir(join(file, 'sub')), { code: 'ERR_STATE_DIR', message: new RegExp(`cannot create the state directory ${file}/sub`) })
  try { ensureStateDir(join(file, 'sub')) } catch (err) { t.match((err as { hint: string }).hint, /--state-dir DIR/) }
  t.throws(() => ensureStateDir(file), { code: 'ERR_STATE_DIR' }, 'a file is not a state dir')
  t.equal(defaultStateDir('lwt3'), '/var/lib/lightweight-tunnel/lwt3')
})
