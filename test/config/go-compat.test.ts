/**
 * config/go-compat.ts: a config file written with the Go project's key names
 * loads into the same Config as the equivalent Go-style flags; Go's quirks
 * (empty strings for unset keys, 0 for "the default") are understood; every
 * Go key we ignore gives exactly its warning, from a file or as a flag; and
 * readConfigFile's own answers (settings, conflicts, unknown keys) per case.
 */
import t, { type Test } from 'tap'
import { chmodSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseCommand } from '../../src/cli/args.js'
import { SPECS } from '../../src/cli/options.js'
import { GO_IGNORED_KEYS, GO_KEYS, describeJsonError, fileNamesOf, goBlank, ignoredWarning, readConfigFile, zeroMeantDefault } from '../../src/config/go-compat.js'
import type { Config } from '../../src/config/schema.js'
import type { Raw } from '../../src/config/validate.js'

const ENV = { netnsId: '4026531840', cwd: '/srv/lwt', lwtKey: null }

function writer (t: Test): (name: string, content: unknown) => string {
  const dir = t.testdir({})
  return (name, content) => {
    const p = join(dir, name)
    writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content))
    chmodSync(p, 0o600)
    return p
  }
}

function run (argv: string[]): { config: Config, warnings: string[] } {
  const cmd = parseCommand(argv, ENV)
  if (cmd.kind !== 'run') throw new Error(`expected run, got ${cmd.kind}`)
  // -k's "visible in ps" hint is tested in test/cli/args.test.ts; the Go forms here are about the rest.
  return { ...cmd, warnings: cmd.warnings.filter(w => !w.includes('a key on the command line is visible to every local user')) }
}

t.test('a Go file loads into the same Config as the equivalent Go flags', async t => {
  const file = writer(t)
  const cases: Array<{ name: string, json: Record<string, unknown>, argv: string[] }> = [
    {
      name: 'server',
      json: { mode: 'server', local_addr: '0.0.0.0:9500', remote_addr: '', tunnel_addr: '10.8.0.1/24', key: 'go-key-1234', mtu: 1350, tun_name: 'tun0', max_clients: 7, keepalive: 15 },
      argv: ['-m', 'server', '-l', '0.0.0.0:9500', '-t', '10.8.0.1/24', '-k', 'go-key-1234', '-mtu', '1350', '-tun-name', 'tun0', '-max-clients', '7', '-keepalive', '15']
    },
    {
      name: 'client',
      json: { mode: 'client', remote_addr: 'vpn.example.com:9000', tunnel_addr: '10.8.0.2/24', key: 'go-key-1234', mtu: 1300, tun_name: 'tun1', p2p_enabled: false, keepalive: 20 },
      argv: ['-m', 'client', '-r', 'vpn.example.com:9000', '-t', '10.8.0.2/24', '-k', 'go-key-1234', '-mtu', '1300', '-tun-name', 'tun1', '-p2p=false', '-keepalive', '20']
    },
    {
      name: 'client, Go generator blanks (empty tun_name is the default device)',
      json: { mode: 'client', remote_addr: '203.0.113.5:9000', tunnel_addr: '10.0.0.2/24', key: 'abcdefgh', tun_name: '' },
      argv: ['-m', 'client', '-r', '203.0.113.5:9000', '-t', '10.0.0.2/24', '-k', 'abcdefgh']
    },
    {
      name: 'server, Go zeros are the defaults',
      json: { mode: 'server', tunnel_addr: '10.0.0.1/24', key: 'abcdefgh', mtu: 0, max_clients: 0, keepalive: 0 },
      argv: ['-m', 'server', '-t', '10.0.0.1/24', '-k', 'abcdefgh']
    }
  ]
  for (const c of cases) {
    t.test(c.name, async t => {
      const f = file(`${c.name.split(',')[0]!}-${cases.indexOf(c)}.json`, c.json)
      const fromFile = run(['-c', f])
      const fromFlags = run(c.argv)
      t.same(fromFile.config, fromFlags.config)
      t.same(fromFlags.warnings, [])
    })
  }
  t.test('the zeros say so, one warning each', async t => {
    const f = file('zeros.json', cases[3]!.json)
    t.same(run(['-c', f]).warnings, [
      `${f}: "mtu": 0 meant "the default" in the Go program; using 1400 (write "auto" or leave the key out to say so)`,
      `${f}: "max_clients": 0 meant "the default" in the Go program; using 100`,
      `${f}: "keepalive": 0 meant "the default" in the Go program; using 10`
    ])
  })
})

t.test('every ignored Go key gives exactly its warning', async t => {
  const file = writer(t)
  const base = { mode: 'server', tunnel_addr: '10.0.0.1/24', key: 'abcdefgh' }
  for (const [k, why] of Object.entries(GO_IGNORED_KEYS)) {
    t.test(k, async t => {
      const f = file(`${k}.json`, { ...base, [k]: 1 })
      const { config, warnings } = run(['-c', f])
      t.same(warnings, [`${f}: "${k}" is a Go lightweight-tunnel setting that is ignored: ${why}`])
      t.same(config, run(['-c', file(`${k}-without.json`, base)]).config, 'and changes nothing')
    })
  }
  t.test('multi_client: false says what it asked for; client_isolation and routes are real now', async t => {
    const f = file('asked.json', { ...base, client_isolation: true, multi_client: false, routes: ['192.168.50.0/24'] })
    const r = run(['-c', f])
    t.same(r.warnings, [
      `${f}: "multi_client" is a Go lightweight-tunnel setting that is ignored: it is set to false, but ${GO_IGNORED_KEYS.multi_client}`
    ])
    t.equal(r.config.clientIsolation, true)
    t.same(r.config.advertiseRoutes, ['192.168.50.0/24'])
  })
  t.test('the Go flags for the same features warn with the same reason', async t => {
    const SERVER = ['server', '-t', '10.0.0.1/24', '-k', 'abcdefgh']
    for (const spec of SPECS.filter(s => s.key === 'goIgnored')) {
      const argv = spec.type === 'bool' ? [`-${spec.names[0]!}`] : [`-${spec.names[0]!}`, '1']
      const why = GO_IGNORED_KEYS[spec.goKey!] ?? 'FEC is one flag here: --fec DATA,PARITY (e.g. --fec 10,3)'
      t.same(run([...SERVER, ...argv]).warnings, [`-${spec.names[0]!} is a Go lightweight-tunnel setting that is ignored: ${why}`], spec.names[0]!)
    }
  })
})

t.test('Go-named settings the mode does not use are warnings, ours are errors', async t => {
  const file = writer(t)
  const go = file('go.json', { mode: 'client', local_addr: '0.0.0.0:9000', remote_addr: '203.0.113.5:9000', tunnel_addr: '10.0.0.2/24', key: 'abcdefgh', max_clients: 5 })
  t.same(run(['-c', go]).warnings, [
    `${go}: "max_clients" is ignored in client mode: it limits clients on a server`,
    `${go}: "local_addr" is ignored in client mode, as in the Go program; use "listen" to choose the client's local address`
  ])
  const server = file('go-server.json', { mode: 'server', tunnel_addr: '10.0.0.1/24', key: 'abcdefgh', p2p_enabled: true })
  t.same(run(['-c', server]).warnings, [`${server}: "p2p_enabled" is ignored in server mode: direct paths are a client setting`])
})

t.test('readConfigFile', async t => {
  const file = writer(t)
  const read = (content: unknown): { settings: Record<string, unknown>, problems: string[], warnings: string[], path: string } => {
    const path = file('c.json', content)
    const problems: string[] = []
    const warnings: string[] = []
    const settings = Object.fromEntries(readConfigFile(path, '-c', problems, warnings) ?? [])
    return { settings, problems, warnings, path }
  }
  t.test('our names and Go names map to the same settings', async t => {
    const r = read({ tun: '10.0.0.1/24', local_addr: ':1' })
    t.same(r.settings, {
      tun: { value: '10.0.0.1/24', source: `${r.path}: "tun"`, from: 'file', goName: false },
      listen: { value: ':1', source: `${r.path}: "local_addr"`, from: 'file', goName: true }
    })
    t.same([r.problems, r.warnings], [[], []])
  })
  t.test('both names with one value is fine, with two values a conflict', async t => {
    t.same(read({ tun: '10.0.0.1/24', tunnel_addr: '10.0.0.1/24' }).problems, [])
    const r = read({ tun: '10.0.0.1/24', tunnel_addr: '10.0.0.5/24' })
    t.same(r.problems, [`${r.path}: "tun" and ${r.path}: "tunnel_addr" conflict: both set the same thing, to "10.0.0.1/24" and "10.0.0.5/24"; keep one`])
  })
  t.test('unknown keys: one problem each, with a suggestion when one is close', async t => {
    const r = read({ tunel_addr: 'x', colour: 'blue', fec_dat: 1 })
    const valid = 'mode, listen, remote, tun, key, keyFile, networkName, dev, control, mtu, fec, maxClients, p2p, portMapping, keepalive, logLevel, logFormat, placement, fastPath, mssClamp, metrics, handshakeWorkers, stateDir, nodeKey, serverKey, authorizedNodes, advertiseRoutes, approveRoutes, acceptRoutes, clientIsolation, transport, tcp, tcpListen, faketcp, faketcpOffload, key_file, network_name, advertise_routes, approve_routes, accept_routes, port_mapping, tcp_listen, faketcp_offload, local_addr, remote_addr, tunnel_addr, tun_name, max_clients, p2p_enabled, routes, client_isolation, fec_data, fec_parity'
    t.same(r.problems, [
      `${r.path}: unknown key "tunel_addr" (did you mean "tunnel_addr"?); expected one of ${valid}`,
      `${r.path}: unknown key "colour"; expected one of ${valid}`,
      `${r.path}: unknown key "fec_dat" (did you mean "fec_data"?); expected one of ${valid}`
    ])
    t.same(r.settings, {})
  })
  t.test('a world-readable file holding the key', async t => {
    const r = read({ key: 'abcdefgh' })
    chmodSync(r.path, 0o644)
    const warnings: string[] = []
    readConfigFile(r.path, '-c', [], warnings)
    t.same(warnings, [`${r.path} is readable by every user and holds the key; run: chmod 600 ${r.path}`])
  })
  t.test('not JSON, not an object, not there', async t => {
    const bad = read('{ "mode": ')
    t.same(bad.problems, [`${bad.path}: expected JSON, got a syntax error at line 1, column 11 (the end of the file: a closing } or " is probably missing): Unexpected end of JSON input`])
    const arr = read('[1]')
    t.same(arr.problems, [`${arr.path}: expected a JSON object ({ "mode": ..., ... }), got an array`])
    const num = read('5')
    t.same(num.problems, [`${num.path}: expected a JSON object ({ "mode": ..., ... }), got 5`])
    const problems: string[] = []
    t.equal(readConfigFile('/nonexistent/lwt.json', '--config', problems, []), null, 'no settings: unknown, not absent')
    t.same(problems, ['--config: expected a readable JSON config file, got "/nonexistent/lwt.json" (no such file)'])
  })
})

t.test('helpers', async t => {
  t.test('fileNamesOf: ours first, then Go\'s', async t => {
    t.same(fileNamesOf('tun'), ['tun', 'tunnel_addr'])
    t.same(fileNamesOf('key'), ['key'])
    for (const [goKey, setting] of Object.entries(GO_KEYS)) t.ok(fileNamesOf(setting).includes(goKey), goKey)
  })
  const raw = (value: unknown, goName: boolean, from: 'file' | 'flag' = 'file'): Raw => ({ value, source: 'f: "k"', from, goName })
  t.test('goBlank: only an empty Go-named file key', async t => {
    t.equal(goBlank(raw('', true)), true)
    t.equal(goBlank(raw('', false)), false)
    t.equal(goBlank(raw('', false, 'flag')), false)
    t.equal(goBlank(raw('x', true)), false)
  })
  t.test('zeroMeantDefault and ignoredWarning', async t => {
    t.equal(zeroMeantDefault(raw(0, true), 100), 'f: "k": 0 meant "the default" in the Go program; using 100')
    t.equal(ignoredWarning('-x', 'no_such_key', 1), '-x is a Go lightweight-tunnel setting that is ignored: it has no equivalent here')
  })
})

t.test('a JSON syntax error gives line and column, and no knock-on "missing" problems', async t => {
  const file = writer(t)
  t.test('a missing comma on line 3', async t => {
    const path = file('comma.json', '{\n  "mode": "client",\n  "tun": "10.0.0.2/24"\n  "key": "abcdefgh"\n}\n')
    let problems: readonly string[] = []
    try { parseCommand(['-c', path], ENV) } catch (err) { problems = (err as { problems: string[] }).problems }
    t.same(problems, [`${path}: expected JSON, got a syntax error at line 4, column 3: Expected ',' or '}' after property value`],
      'one problem, none of "no mode", "missing --remote", "missing --tun", "missing --key"')
  })
  t.test('an unreadable file: no knock-on problems either, but flag problems stay', async t => {
    let problems: readonly string[] = []
    try { parseCommand(['-c', '/nonexistent/lwt.json', '--mtu', '12'], ENV) } catch (err) { problems = (err as { problems: string[] }).problems }
    t.same(problems, [
      '-c: expected a readable JSON config file, got "/nonexistent/lwt.json" (no such file)',
      '--mtu: expected an MTU in bytes, 576..1900 (576 is the IPv4 minimum; 1900 the largest packet the dataplane carries), or "auto" for 1400, got "12"'
    ])
  })
  t.test('a good file with a key missing still says so', async t => {
    const path = file('ok.json', { mode: 'client', remote: '203.0.113.5:9000', key: 'abcdefgh' })
    let problems: readonly string[] = []
    try { parseCommand(['-c', path], ENV) } catch (err) { problems = (err as { problems: string[] }).problems }
    t.match(problems, [/^missing --tun \(-t\)/])
  })
  t.test('describeJsonError', async t => {
    t.equal(describeJsonError('{"a":1,\n"b" 2}', 'Unexpected number in JSON at position 12'), 'at line 2, column 5: Unexpected number')
    t.equal(describeJsonError('{"a":1,}', 'Expected double-quoted property name in JSON at position 7'), 'at line 1, column 8: Expected double-quoted property name')
    t.equal(describeJsonError('{"a":1,}', 'Expected double-quoted property name in JSON at position 7 (line 1 column 8)'), 'at line 1, column 8: Expected double-quoted property name', 'newer V8 wording')
    t.equal(describeJsonError('', 'Unexpected end of JSON input'), 'at line 1, column 1 (the end of the file: a closing } or " is probably missing): Unexpected end of JSON input')
  })
})

t.test('a quoted number in the file says it must be a number', async t => {
  const file = writer(t)
  const path = file('q.json', { mode: 'server', tun: '10.0.0.1/24', key: 'abcdefgh', mtu: '1400', keepalive: '10', maxClients: '5' })
  let problems: readonly string[] = []
  try { parseCommand(['-c', path], ENV) } catch (err) { problems = (err as { problems: string[] }).problems }
  t.same(problems, [
    `${path}: "mtu": must be a number, not the string "1400": write 1400 without quotes`,
    `${path}: "maxClients": must be a number, not the string "5": write 5 without quotes`,
    `${path}: "keepalive": must be a number, not the string "10": write 10 without quotes`
  ])
})

t.test('FEC: --fec DATA,PARITY, the file key fec, and the Go keys fec_data + fec_parity give the same Config', async t => {
  const file = writer(t)
  const CLIENT = ['client', '-r', '203.0.113.5:9000', '-t', '10.0.0.2/24', '-k', 'abcdefgh']
  t.same(run([...CLIENT, '--fec', '10,3']).config.fec, { data: 10, parity: 3 })
  t.equal(run(CLIENT).config.fec, null, 'off by default')
  const base = { mode: 'client', remote_addr: '203.0.113.5:9000', tunnel_addr: '10.0.0.2/24', key: 'abcdefgh' }
  const go = run(['-c', file('go.json', { ...base, fec_data: 10, fec_parity: 3 })])
  t.same(go.config.fec, { data: 10, parity: 3 })
  t.same(go.warnings, [])
  t.same(run(['-c', file('ours.json', { ...base, fec: '8,2' })]).config.fec, { data: 8, parity: 2 })
  t.same(run(['-c', file('arr.json', { ...base, fec: [8, 2] })]).config.fec, { data: 8, parity: 2 })
  t.equal(run(['-c', file('zeros.json', { ...base, fec_data: 0, fec_parity: 0 })]).config.fec, null, 'Go zeros: off')
  t.equal(run(['-c', file('off.json', { ...base, fec: 'off' })]).config.fec, null)
})

t.test('FEC: wrong values are problems naming the value and the fix', async t => {
  const file = writer(t)
  const CLIENT = ['client', '-r', '203.0.113.5:9000', '-t', '10.0.0.2/24', '-k', 'abcdefgh']
  const problems = (argv: string[]): string[] => {
    try { parseCommand(argv, ENV) } catch (err) { return [...(err as { problems: string[] }).problems] }
    return []
  }
  const fix = 'give DATA,PARITY: DATA 1..32 data messages per group, PARITY 1..16 parity messages after them (e.g. 10,3), or "off"'
  t.same(problems([...CLIENT, '--fec', '10']), [`--fec: expected DATA,PARITY (e.g. 10,3), got "10"; ${fix}`])
  t.same(problems([...CLIENT, '--fec', '0,3']), [`--fec: DATA must be 1-32 (got 0); ${fix}`])
  t.same(problems([...CLIENT, '--fec', '10,17']), [`--fec: PARITY must be 1-16 (got 17); ${fix}`])
  const base = { mode: 'client', remote_addr: '203.0.113.5:9000', tunnel_addr: '10.0.0.2/24', key: 'abcdefgh' }
  const half = file('half.json', { ...base, fec_data: 10 })
  t.same(problems(['-c', half]), [`${half}: "fec_data" without "fec_parity"; give both (e.g. "fec_data": 10, "fec_parity": 3) or "fec": "10,3"`])
  const both = file('both.json', { ...base, fec_data: 10, fec_parity: 3, fec: '4,1' })
  t.same(problems(['-c', both]), [`${both}: "fec" and ${both}: "fec_data"/"fec_parity" conflict: both set FEC, to "4,1" and "10,3"; keep one`])
  const server = parseCommand(['server', '-t', '10.0.0.1/24', '-k', 'abcdefgh', '--fec', '10,3'], ENV)
  t.equal(server.kind, 'run')
  if (server.kind === 'run') {
    t.equal(server.config.fec, null)
    t.ok(server.warnings.includes('--fec: ignored on a server (it relays parity unopened); give it to the clients'))
  }
})
