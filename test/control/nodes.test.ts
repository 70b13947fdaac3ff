/**
 * control/nodes.ts: the operator's nodes commands over a FileRegistry and a
 * stand-in server (which nodes are live, what was disconnected): selectors
 * (address, key, fingerprint), remove = unbind + revoke + disconnect, allow
 * lifts, and the errors that name what to do.
 */
import t from 'tap'
import { answerNodes, parseSelector, type NodesAdmin } from '../../src/control/nodes.js'
import { FileRegistry } from '../../src/state/registry-file.js'
import { fingerprint, keyToText } from '../../src/identity/key-text.js'
import { parseAuthorizedNodes } from '../../src/state/authorized-nodes.js'
import { intToIp, ipToInt } from '../../src/wire/addr.js'

const key = (n: number): Uint8Array => new Uint8Array(32).fill(n)
const A = ipToInt('10.0.0.2') >>> 0
const B = ipToInt('10.0.0.3') >>> 0
const T0 = 1_767_225_600_000

function admin (live: number[]) {
  const registry = new FileRegistry(null)
  const disconnected: string[] = []
  const a: NodesAdmin = {
    registry,
    liveEndpoint: (address) => live.includes(address) ? `198.51.100.${address & 0xff}:4000` : null,
    disconnect: (address, why) => { disconnected.push(`${intToIp(address)}: ${why}`); const was = live.includes(address); live.splice(live.indexOf(address), was ? 1 : 0); return was },
    authorized: () => registry.authorized,
    wallNow: () => T0
  }
  registry.bind(key(1), A, T0)
  registry.bind(key(2), B, T0 + 1000)
  return { a, registry, disconnected }
}

t.test('selectors: address, key, fingerprint (with or without SHA256:), anything else refused', async t => {
  t.same(parseSelector('10.0.0.2'), { address: A })
  t.same(parseSelector(keyToText(key(1))), { key: key(1) })
  const fp = fingerprint(key(1))
  t.same(parseSelector(fp), { fingerprint: fp })
  t.same(parseSelector(fp.slice(7)), { fingerprint: fp })
  for (const bad of ['', 'node1', '10.0.0', keyToText(key(1)).slice(1), 'SHA256:abc', 7]) {
    t.throws(() => parseSelector(bad), { code: 'ERR_USAGE' }, `refused: ${JSON.stringify(bad)}`)
  }
})

t.test('nodes lists bindings with fingerprint, key, address, live, times; and revocations', async t => {
  const { a, registry } = admin([A])
  registry.remove({ key: key(9) }, T0 + 5)
  const r = answerNodes({ cmd: 'nodes' }, a)
  t.match(r, {
    nodes: [
      { address: '10.0.0.2', fingerprint: fingerprint(key(1)), key: keyToText(key(1)), live: true, endpoint: '198.51.100.2:4000', firstSeen: '2026-01-01T00:00:00.000Z', authorized: null },
      { address: '10.0.0.3', live: false, endpoint: null, firstSeen: '2026-01-01T00:00:01.000Z' }
    ],
    revoked: [{ fingerprint: fingerprint(key(9)), at: '2026-01-01T00:00:00.005Z' }],
    authorizedNodes: null
  })
})

t.test('nodes remove ADDR: unbinds, revokes, disconnects the live node', async t => {
  const { a, registry, disconnected } = admin([A])
  const c = answerNodes({ cmd: 'nodes-remove', node: '10.0.0.2' }, a)
  t.match(c, { nodes: [{ address: '10.0.0.2', live: false }], revoked: [{ fingerprint: fingerprint(key(1)) }], disconnected: 1 })
  t.match(disconnected, [/^10\.0\.0\.2: its key SHA256:\S+ was revoked by the operator/])
  t.same(registry.check(key(1), A), { ok: false, reason: 'key-revoked' })
  t.same(registry.check(key(5), A), { ok: true }, 'the address is free for another key')
})

t.test('nodes remove FINGERPRINT and KEY; a key never seen is revoked ahead', async t => {
  const { a, registry } = admin([])
  t.match(answerNodes({ cmd: 'nodes-remove', node: fingerprint(key(2)) }, a), { nodes: [{ address: '10.0.0.3' }], disconnected: 0 })
  t.match(answerNodes({ cmd: 'nodes-remove', node: keyToText(key(7)) }, a), { nodes: [], revoked: [{ key: keyToText(key(7)) }] })
  t.equal(registry.isRevoked(key(7)), true)
  t.match(answerNodes({ cmd: 'nodes-remove', node: keyToText(key(7)) }, a), { nodes: [], revoked: [] }, 'twice: nothing new')
})

t.test('nodes remove: an address nobody holds, an unknown fingerprint: errors saying so', async t => {
  const { a } = admin([])
  t.throws(() => answerNodes({ cmd: 'nodes-remove', node: '10.0.0.99' }, a), { code: 'ERR_USAGE', message: /no node holds 10\.0\.0\.99/ })
  t.throws(() => answerNodes({ cmd: 'nodes-remove', node: fingerprint(key(42)) }, a), { code: 'ERR_USAGE', message: /no node with the fingerprint/ })
})

t.test('nodes allow KEY|FINGERPRINT lifts a revocation; an address or a key not revoked is an error', async t => {
  const { a, registry } = admin([])
  answerNodes({ cmd: 'nodes-remove', node: '10.0.0.2' }, a)
  t.throws(() => answerNodes({ cmd: 'nodes-allow', node: '10.0.0.2' }, a), { code: 'ERR_USAGE', message: /not an address/ })
  t.match(answerNodes({ cmd: 'nodes-allow', node: fingerprint(key(1)) }, a), { allowed: [{ key: keyToText(key(1)) }] })
  t.same(registry.check(key(1), A), { ok: true })
  t.throws(() => answerNodes({ cmd: 'nodes-allow', node: keyToText(key(1)) }, a), { code: 'ERR_USAGE', message: /is not revoked/ })
})

t.test('strict mode shows whether each node is listed', async t => {
  const { a, registry } = admin([])
  registry.setAuthorized(parseAuthorizedNodes(`${keyToText(key(1))} 10.0.0.2\n`, '/etc/lwt/nodes'))
  t.match(answerNodes({ cmd: 'nodes' }, a), { nodes: [{ authorized: true }, { authorized: false }], authorizedNodes: '/etc/lwt/nodes' })
})

t.test('a client daemon answers with a clear error', async t => {
  t.throws(() => answerNodes({ cmd: 'nodes' }, null), { code: 'ERR_USAGE', message: /nodes is a server command: this daemon is a client/ })
  t.throws(() => answerNodes({ cmd: 'nodes-remove', node: '10.0.0.2' }, null), { message: /nodes remove is a server command/ })
})
