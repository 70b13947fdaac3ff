/**
 * The address cache (src/control/peer-cache.ts): the file format, expiry,
 * bounds, a corrupt file, and the atomic 0600 file store.
 */
import t from 'tap'
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CACHE_MAX_AGE, CACHE_MAX_PEERS, CACHE_SAVE_INTERVAL, PeerCache, decodeCache, encodeCache, fileStore, type CacheStore } from '../../src/control/peer-cache.js'
import { ipToInt, setHandleText } from '../../src/wire/addr.js'
import { V6Table } from '../../src/dataplane/v6-table.js'

const ip = ipToInt
const T0 = Date.parse('2026-12-05T10:00:00Z')
const KEY = new Uint8Array(32).fill(7)

function memStore (text: string | null = null): CacheStore & { text: string | null, writes: number } {
  const s = {
    text, writes: 0, where: 'mem:peers.json',
    read: () => s.text,
    write: (x: string) => { s.text = x; s.writes++ }
  }
  return s
}

t.test('encode → decode round trip, newest first', async t => {
  const text = encodeCache([
    { tunnelIp: ip('10.0.0.3'), key: KEY, endpoints: [{ ip: ip('198.18.1.2'), port: 20000 }, { ip: ip('192.168.2.2'), port: 41001 }], confirmedAt: T0 - 1000 },
    { tunnelIp: ip('10.0.0.4'), key: null, endpoints: [{ ip: ip('198.18.1.3'), port: 20001 }], confirmedAt: T0 }
  ])
  const r = decodeCache(text, T0)
  t.equal(r.problem, null)
  t.equal(r.skipped, 0)
  t.same(r.peers.map(p => p.tunnelIp), [ip('10.0.0.4'), ip('10.0.0.3')])
  t.same([...r.peers[1]!.key!], [...KEY])
  t.equal(r.peers[0]!.key, null)
  t.same(r.peers[1]!.endpoints, [{ ip: ip('198.18.1.2'), port: 20000 }, { ip: ip('192.168.2.2'), port: 41001 }])
  t.equal(r.peers[1]!.confirmedAt, T0 - 1000)
})

t.test('IPv6 endpoints: written as [v6]:port, read back through the table; without one the entry is skipped', async t => {
  const tab = V6Table.create(16)
  setHandleText((h) => tab.text(h))
  t.teardown(() => { setHandleText(null) })
  const h = tab.intern('2001:db8:6::3', true)!
  const text = encodeCache([{ tunnelIp: ip('10.0.0.3'), key: KEY, endpoints: [{ ip: h, port: 41000 }, { ip: ip('198.18.1.2'), port: 20000 }], confirmedAt: T0 }])
  t.match(text, '"[2001:db8:6::3]:41000"')
  const fresh = V6Table.create(16) // a restarted daemon: another table, other indexes
  fresh.intern('2001:db8:ffff::9', true)
  const r = decodeCache(text, T0, (x) => fresh.intern(x, true))
  t.equal(r.skipped, 0)
  const ep = r.peers[0]!.endpoints[0]!
  t.equal(fresh.text(ep.ip), '2001:db8:6::3', 'the handle of the new table names the same address')
  t.equal(ep.port, 41000)
  t.equal(decodeCache(text, T0).skipped, 1, 'no table: not read as anything else')
})

t.test('entries older than CACHE_MAX_AGE, malformed entries and duplicates are dropped, the rest kept', async t => {
  const good = { tunnelIp: '10.0.0.3', key: Buffer.from(KEY).toString('base64'), endpoints: ['198.18.1.2:20000'], confirmedAt: new Date(T0).toISOString() }
  const text = JSON.stringify({
    version: 1,
    peers: [
      good,
      { ...good, tunnelIp: '10.0.0.5', confirmedAt: new Date(T0 - CACHE_MAX_AGE - 1).toISOString() }, // too old
      { ...good, tunnelIp: '10.0.0.6', key: 'c2hvcnQ=' }, // not 32 bytes
      { ...good, tunnelIp: '10.0.0.7', endpoints: ['198.18.1.2:0'] }, // port 0
      { ...good, tunnelIp: '10.0.0.8', endpoints: [] }, // nowhere to go
      { ...good, tunnelIp: 'nonsense' },
      { ...good, confirmedAt: 'yesterday' },
      good, // duplicate
      42
    ]
  })
  const r = decodeCache(text, T0)
  t.equal(r.problem, null)
  t.same(r.peers.map(p => p.tunnelIp), [ip('10.0.0.3')])
  t.equal(r.skipped, 8)
})

t.test('a corrupt or foreign file: one warning, no peers, replaced at the next save', async t => {
  for (const bad of ['{"version":1,"peers":[', '[]', '{"version":2,"peers":[]}', '']) {
    const store = memStore(bad)
    const warnings: string[] = []
    const c = new PeerCache(store, (m) => warnings.push(m))
    t.same(c.load(T0), [], `no peers from ${JSON.stringify(bad)}`)
    t.equal(warnings.length, 1)
    t.match(warnings[0], /ignoring the address cache mem:peers.json: .*rewritten/)
    c.note(ip('10.0.0.3'), KEY, [{ ip: ip('198.18.1.2'), port: 20000 }], T0)
    t.ok(c.saveIfDue(0, T0), 'saved')
    t.equal(decodeCache(store.text!, T0).peers.length, 1, 'the file is a valid cache again')
  }
})

t.test('an unreadable file is a warning, not a crash', async t => {
  const warnings: string[] = []
  const c = new PeerCache({ where: 'x', read: () => { throw new Error('EACCES: permission denied') }, write: () => {} }, (m) => warnings.push(m))
  t.same(c.load(T0), [])
  t.match(warnings[0], /cannot read the address cache x: EACCES.*starting without it/)
})

t.test('saves: only on change, at most every CACHE_SAVE_INTERVAL; forget; write errors retried', async t => {
  const store = memStore()
  const warnings: string[] = []
  const c = new PeerCache(store, (m) => warnings.push(m))
  t.same(c.load(T0), [], 'no file yet')
  t.notOk(c.saveIfDue(0, T0), 'nothing to save')
  const ep = [{ ip: ip('198.18.1.2'), port: 20000 }]
  c.note(ip('10.0.0.3'), KEY, ep, T0)
  t.ok(c.saveIfDue(0, T0))
  t.equal(store.writes, 1)
  c.note(ip('10.0.0.3'), KEY, ep, T0 + 5000)
  t.notOk(c.saveIfDue(CACHE_SAVE_INTERVAL, T0 + CACHE_SAVE_INTERVAL), 'same endpoints and key: no write')
  c.note(ip('10.0.0.3'), KEY, [{ ip: ip('198.18.1.2'), port: 20500 }], T0 + 6000)
  t.notOk(c.saveIfDue(CACHE_SAVE_INTERVAL - 1, T0), 'changed, but the last save was too recent')
  t.ok(c.saveIfDue(CACHE_SAVE_INTERVAL, T0 + CACHE_SAVE_INTERVAL))
  t.same(decodeCache(store.text!, T0 + CACHE_SAVE_INTERVAL).peers[0]!.endpoints, [{ ip: ip('198.18.1.2'), port: 20500 }])
  c.forget(ip('10.0.0.3'))
  t.ok(c.saveIfDue(0, T0, true), 'forced at shutdown')
  t.same(decodeCache(store.text!, T0).peers, [], 'forgotten peers leave the file')
  const failing = new PeerCache({ where: 'y', read: () => null, write: () => { throw new Error('ENOSPC') } }, (m) => warnings.push(m))
  failing.note(ip('10.0.0.3'), KEY, ep, T0)
  t.notOk(failing.saveIfDue(0, T0))
  t.match(warnings.at(-1), /cannot write the address cache y: ENOSPC; retrying/)
})

t.test('bounded: at most CACHE_MAX_PEERS, the most recently confirmed kept', async t => {
  const store = memStore()
  const c = new PeerCache(store, () => {})
  for (let i = 0; i < CACHE_MAX_PEERS + 10; i++) c.note(ip('10.1.0.0') + i, null, [{ ip: ip('198.18.1.2'), port: 1000 + i }], T0 + i)
  t.equal(c.size, CACHE_MAX_PEERS)
  t.equal(c.get(ip('10.1.0.0')), undefined, 'the oldest went')
  t.ok(c.get(ip('10.1.0.0') + CACHE_MAX_PEERS + 9), 'the newest stayed')
  c.saveIfDue(0, T0 + 1000)
  t.equal(decodeCache(store.text!, T0 + 1000).peers.length, CACHE_MAX_PEERS)
})

t.test('fileStore: atomic write, mode 0600, no temp file left; a missing file reads as null', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'lwt-cache-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'peers.json')
  const s = fileStore(path)
  t.equal(s.read(), null)
  writeFileSync(path, 'old', { mode: 0o644 })
  s.write('new\n')
  t.equal(readFileSync(path, 'utf8'), 'new\n')
  t.equal(statSync(path).mode & 0o777, 0o600, 'replaced by a 0600 file')
  t.same(readdirSync(dir), ['peers.json'], 'no temp file left')
  const c = new PeerCache(s, () => {})
  c.note(ip('10.0.0.3'), KEY, [{ ip: ip('198.18.1.2'), port: 20000 }], T0)
  c.saveIfDue(0, T0)
  const again = new PeerCache(fileStore(path), () => {})
  t.same(again.load(T0 + 1000).map(p => p.tunnelIp), [ip('10.0.0.3')], 'a new process reads what the last one wrote')
  t.throws(() => fileStore(join(dir, 'missing-dir', 'peers.json')).write('x'), /ENOENT/)
})
