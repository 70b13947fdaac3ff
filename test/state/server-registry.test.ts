// state/server-registry.ts: the daemon's registry setup. openServerRegistry
// loads registry.json and the strict-mode list (errors name the file);
// reloadAuthorized (SIGHUP) revokes keys no longer listed, re-admits keys
// listed anew, drops live nodes the list does not admit, and keeps the
// running list when the file is broken.
import t from 'tap'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Logger } from '../../src/log.js'
import { openServerRegistry, reloadAuthorized } from '../../src/state/server-registry.js'
import { keyToText } from '../../src/identity/key-text.js'
import { ipToInt } from '../../src/wire/addr.js'
import type { NodesAdmin } from '../../src/control/nodes.js'
import type { FileRegistry } from '../../src/state/registry-file.js'

const key = (n: number): Uint8Array => new Uint8Array(32).fill(n)
const T0 = 1_767_225_600_000

function setup (t: { teardown(fn: () => void): void }) {
  const dir = mkdtempSync(join(tmpdir(), 'lwt-sreg-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const lines: string[] = []
  const log = new Logger({ level: 'debug', sink: { write: (l) => { lines.push(l) } } })
  const list = join(dir, 'nodes')
  return { dir, list, lines, log }
}

function target (registry: FileRegistry) {
  const dropped: string[] = []
  const disconnected: number[] = []
  const nodesAdmin: NodesAdmin = {
    registry,
    liveEndpoint: () => null,
    disconnect: (address) => { disconnected.push(address); return true },
    authorized: () => registry.authorized,
    wallNow: () => T0
  }
  return { nodesAdmin, dropUnadmitted: (why: string) => { dropped.push(why); return 0 }, dropped, disconnected }
}

t.test('open: empty state dir, strict list loaded; a bad list names FILE:LINE', async t => {
  const s = setup(t)
  writeFileSync(s.list, `${keyToText(key(1))} 10.0.0.2\n`)
  const r = openServerRegistry(join(s.dir, 'state'), s.list, s.log)
  t.same(r.check(key(2), ipToInt('10.0.0.3')), { ok: false, reason: 'not-authorized' })
  t.match(s.lines.join('\n'), /strict mode: 1 node admitted by/)
  writeFileSync(s.list, 'junk\n')
  t.throws(() => openServerRegistry(join(s.dir, 'state'), s.list, s.log), { code: 'ERR_CONFIG_INVALID', message: new RegExp(`${s.list}:1:`) })
  mkdirSync(join(s.dir, 'state'))
  writeFileSync(join(s.dir, 'state', 'registry.json'), '{')
  t.throws(() => openServerRegistry(join(s.dir, 'state'), null, s.log), { code: 'ERR_STATE', message: /registry\.json is damaged/ })
})

t.test('SIGHUP: gone keys revoked and disconnected, new keys re-admitted, live nodes re-checked', async t => {
  const s = setup(t)
  writeFileSync(s.list, `${keyToText(key(1))} 10.0.0.2\n${keyToText(key(2))} 10.0.0.3\n`)
  const r = openServerRegistry(join(s.dir, 'state'), s.list, s.log)
  r.bind(key(1), ipToInt('10.0.0.2'), T0)
  r.remove({ key: key(3) })
  const tg = target(r)
  writeFileSync(s.list, `${keyToText(key(2))} 10.0.0.3\n${keyToText(key(3))} 10.0.0.4\n`)
  t.equal(reloadAuthorized(r, s.list, tg, s.log), true)
  t.same(r.check(key(1), ipToInt('10.0.0.2')), { ok: false, reason: 'key-revoked' }, 'key 1 disappeared: revoked')
  t.same(tg.disconnected, [ipToInt('10.0.0.2') >>> 0], 'and its live session cut')
  t.same(r.check(key(3), ipToInt('10.0.0.4')), { ok: true }, 'key 3 listed anew: its revocation is lifted')
  t.equal(tg.dropped.length, 1, 'live nodes are checked against the new list')
  t.match(s.lines.join('\n'), /is no longer listed in .*: revoked, 10\.0\.0\.2 freed, disconnected/)
})

t.test('SIGHUP with a broken list keeps the running one', async t => {
  const s = setup(t)
  writeFileSync(s.list, `${keyToText(key(1))} 10.0.0.2\n`)
  const r = openServerRegistry(join(s.dir, 'state'), s.list, s.log)
  writeFileSync(s.list, `${keyToText(key(1))} 10.0.0.2\nbroken\n`)
  t.equal(reloadAuthorized(r, s.list, target(r), s.log), false)
  t.same(r.check(key(1), ipToInt('10.0.0.2')), { ok: true }, 'still admitted')
  t.match(s.lines.join('\n'), /SIGHUP: the running list of admitted nodes is kept: .*nodes:2: expected/)
  t.equal(reloadAuthorized(r, null, target(r), s.log), true, 'strict mode off')
  t.same(r.check(key(9), ipToInt('10.0.0.9')), { ok: true })
})
