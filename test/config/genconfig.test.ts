/**
 * -g FILE: writes FILE (server) and FILE.client (client), both 0600, sharing
 * one fresh random key, as plain JSON that -c loads back without warnings.
 */
import t from 'tap'
import { readFileSync, statSync, writeFileSync, chmodSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { exampleConfigs, generateKey, writeExampleConfigs } from '../../src/config/genconfig.js'
import { parseCommand } from '../../src/cli/args.js'
import { isVpnError } from '../../src/errors.js'
import { main } from '../../src/cli/main.js'
import { formatPrefix } from '../../src/wire/prefix.js'

const ENV = { netnsId: '1' }

t.test('writes both files, mode 0600, shared random key, and -c loads them back', async t => {
  const dir = t.testdir({})
  const file = join(dir, 'lwt.json')
  const res = writeExampleConfigs(file)
  t.same(res, { serverFile: file, clientFile: `${file}.client` })
  for (const f of [res.serverFile, res.clientFile]) {
    t.equal(statSync(f).mode & 0o777, 0o600, `${f} is 0600`)
  }
  const server = JSON.parse(readFileSync(res.serverFile, 'utf8')) as Record<string, unknown>
  const client = JSON.parse(readFileSync(res.clientFile, 'utf8')) as Record<string, unknown>
  t.equal(server.key, client.key, 'one key shared by both')
  t.match(server.key, /^[A-Za-z0-9_-]{43}$/, '256-bit base64url key')
  t.equal(server.mode, 'server')
  t.equal(client.mode, 'client')

  const s = parseCommand(['-c', res.serverFile], ENV)
  const c = parseCommand(['-c', res.clientFile], ENV)
  if (s.kind !== 'run' || c.kind !== 'run') throw new Error('expected run commands')
  t.same(s.warnings, [], 'the server file loads without warnings')
  t.same(c.warnings, [], 'the client file loads without warnings')
  t.match(s.config, { mode: 'server', listen: { host: '::', port: 9000 }, tun: { ip: '10.0.0.1', prefix: 24 }, mtu: 1400, maxClients: 100 })
  t.match(c.config, { mode: 'client', remote: { host: 'vpn.example.com', port: 9000 }, tun: { ip: '10.0.0.2', prefix: 24 }, p2p: true })
  // Both in one random unique local /64 (fd00::/8), the server ::1, the client ::2.
  const s6 = formatPrefix(s.config.tun6!)
  t.match(s6, /^fd[0-9a-f]{2}:[0-9a-f]{1,4}:[0-9a-f]{1,4}::1\/64$/)
  t.equal(formatPrefix(c.config.tun6!), s6.replace('::1/64', '::2/64'))
  t.equal(s.config.key, c.config.key)
})

t.test('every run makes a new key', async t => {
  t.not(generateKey(), generateKey())
  const dir = t.testdir({})
  writeExampleConfigs(join(dir, 'a.json'))
  writeExampleConfigs(join(dir, 'b.json'))
  const a = JSON.parse(readFileSync(join(dir, 'a.json'), 'utf8')) as { key: string }
  const b = JSON.parse(readFileSync(join(dir, 'b.json'), 'utf8')) as { key: string }
  t.not(a.key, b.key)
})

t.test('the JSON is comment-free and parses', async t => {
  const { server, client } = exampleConfigs('k')
  t.same(JSON.parse(JSON.stringify(server)), server)
  t.same(JSON.parse(JSON.stringify(client)), client)
})

t.test('refuses to overwrite a non-empty file, replaces an empty one (mktemp)', async t => {
  const dir = t.testdir({ 'used.json.client': '{"key":"in use"}', 'empty.json': '' })
  try {
    writeExampleConfigs(join(dir, 'used.json'))
    t.fail('should refuse')
  } catch (err) {
    t.ok(isVpnError(err, 'ERR_CONFIG_INVALID'))
    t.match((err as Error).message, /not overwriting .*used\.json\.client/)
  }
  t.notOk(existsSync(join(dir, 'used.json')), 'nothing written when refusing')
  const empty = join(dir, 'empty.json')
  chmodSync(empty, 0o644)
  writeExampleConfigs(empty)
  t.equal(statSync(empty).mode & 0o777, 0o600, 'an existing empty file is tightened to 0600')
  t.match(JSON.parse(readFileSync(empty, 'utf8')), { mode: 'server' })
})

t.test('main -g prints what it wrote and exits 0; refusing exits 1', async t => {
  const dir = t.testdir({})
  const file = join(dir, 'cfg.json')
  const out: string[] = []
  const err: string[] = []
  const io = { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => err.push(s) } }
  t.equal(await main(['-g', file], io), 0)
  t.match(out.join(''), new RegExp(`wrote the server config ${file} and the client config ${file}\\.client`))
  t.ok(existsSync(`${file}.client`))
  writeFileSync(join(dir, 'x'), '')
  t.equal(await main(['-g', file], io), 1)
  t.match(err.join(''), /lightweight-tunnel: not overwriting .*cfg\.json: it already exists/)
})

t.test('-g into a missing folder names the folder and the fix (not a raw ENOENT); nothing is written', async t => {
  const dir = t.testdir({ 'a-file': 'x' })
  const err: string[] = []
  const io = { stdout: { write: () => true }, stderr: { write: (s: string) => err.push(s) } }
  const missing = join(dir, 'no', 'such')
  t.equal(await main(['-g', join(missing, 'cfg.json')], io), 1)
  t.equal(err.join(''), `lightweight-tunnel: cannot write the example configs: the folder ${missing} does not exist\n  hint: create it first (mkdir -p ${missing}) or give -g a path in an existing folder\n`)
  t.notOk(existsSync(missing))
  err.length = 0
  t.equal(await main(['-g', join(dir, 'a-file', 'cfg.json')], io), 1)
  t.match(err.join(''), /cannot write the example configs: .*a-file is not a folder/)
  t.notMatch(err.join(''), /ENOENT:|ENOTDIR:/)
})
