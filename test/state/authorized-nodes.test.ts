// state/authorized-nodes.ts: the `--authorized-nodes` file (one "PUBKEY
// ADDRESS" per line, # comments, blank lines), every malformed line named as
// FILE:LINE with the expected form, and what a reload changes.
import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { authorizedChanges, loadAuthorizedNodes, parseAuthorizedNodes } from '../../src/state/authorized-nodes.js'
import { keyToText } from '../../src/identity/key-text.js'
import { ipToInt } from '../../src/wire/addr.js'
import { isVpnError } from '../../src/errors.js'

const key = (n: number): Uint8Array => new Uint8Array(32).fill(n)
const K1 = keyToText(key(1))
const K2 = keyToText(key(2))

t.test('lines, comments, blank lines, tabs, CRLF', async t => {
  const a = parseAuthorizedNodes(`# office\n\n${K1} 10.0.0.2\r\n  ${K2}\t10.0.0.3   # build box\n#${keyToText(key(3))} 10.0.0.4\n`, 'f')
  t.equal(a.size, 2)
  t.equal(a.addressOf(key(1)), ipToInt('10.0.0.2') >>> 0)
  t.equal(a.admits(key(2), ipToInt('10.0.0.3')), true)
  t.equal(a.admits(key(2), ipToInt('10.0.0.2')), false, 'listed key, other address')
  t.equal(a.admits(key(3), ipToInt('10.0.0.4')), false, 'commented out')
  t.same(a.nodes().map(n => n.line), [3, 4], 'line numbers kept')
  t.equal(parseAuthorizedNodes('', 'f').size, 0, 'an empty file admits nobody')
})

const bad: Array<[string, string, RegExp]> = [
  ['one field', `${K1}\n`, /f:1: expected "PUBKEY ADDRESS".*got 1 field/],
  ['three fields', `${K1} 10.0.0.2 extra\n`, /f:1: expected "PUBKEY ADDRESS".*got 3 fields/],
  ['a short key', 'abcd 10.0.0.2\n', /f:1: "abcd" is not a public key/],
  ['a key of 33 bytes', `${Buffer.alloc(33).toString('base64')} 10.0.0.2\n`, /is not a public key/],
  ['a bad address', `${K1} 10.0.0.256\n`, /f:1: "10.0.0.256" is not an IPv4 address/],
  ['a CIDR', `${K1} 10.0.0.2/32\n`, /is not an IPv4 address/],
  ['a key twice', `${K1} 10.0.0.2\n\n${K1} 10.0.0.3\n`, /f:3: this key is already listed on line 1/],
  ['an address twice', `${K1} 10.0.0.2\n${K2} 10.0.0.2\n`, /f:2: 10.0.0.2 is already listed on line 1/]
]
for (const [name, text, re] of bad) {
  t.test(`refused: ${name}`, async t => {
    t.throws(() => parseAuthorizedNodes(text, 'f'), { code: 'ERR_CONFIG_INVALID', message: re })
  })
}

t.test('every bad line is listed, not only the first', async t => {
  try {
    parseAuthorizedNodes(`x 1\n${K1} 10.0.0.2\ny 2\n`, 'f')
    t.fail('accepted')
  } catch (err) {
    t.match((err as Error).message, /f:1:[^]*f:3:/)
  }
})

t.test('loadAuthorizedNodes: a missing file is an error naming it and the remedy', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'lwt-auth-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'authorized')
  try {
    loadAuthorizedNodes(file)
    t.fail('loaded')
  } catch (err) {
    t.ok(isVpnError(err, 'ERR_CONFIG_INVALID'))
    t.match((err as Error).message, file)
    t.match((err as { hint?: string }).hint ?? '', /authorized-nodes/)
  }
  writeFileSync(file, `${K1} 10.0.0.2\n`)
  t.equal(loadAuthorizedNodes(file).size, 1)
})

t.test('authorizedChanges: keys that disappeared and keys that came', async t => {
  const old = parseAuthorizedNodes(`${K1} 10.0.0.2\n${K2} 10.0.0.3\n`, 'f')
  const next = parseAuthorizedNodes(`${K2} 10.0.0.5\n${keyToText(key(3))} 10.0.0.4\n`, 'f')
  const c = authorizedChanges(old, next)
  t.same(c.gone, [key(1)])
  t.same(c.added, [key(3)], 'key 2 moved address: neither gone nor new')
  t.same(authorizedChanges(null, next), { gone: [], added: [] }, 'turning strict mode on revokes nobody')
  t.same(authorizedChanges(old, null), { gone: [], added: [] }, 'turning it off admits, revokes nobody')
})
