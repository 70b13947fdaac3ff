/**
 * parseCommand: table tests with named cases for every flag form, the Go
 * project's forms, -c with overrides, file key handling, every usage error
 * (all problems listed), defaults, the frozen result and the per-namespace
 * control socket path. Also main()'s exit codes and output for usage errors.
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseCommand, UsageError, type Command } from '../../src/cli/args.js'
import { CONTROL_DIR, controlPathFor, currentNetnsId } from '../../src/config/defaults.js'
import type { Config } from '../../src/config/schema.js'
import { isVpnError } from '../../src/errors.js'
import { main } from '../../src/cli/main.js'
import { helpText } from '../../src/cli/help.js'

const ENV = { netnsId: '4026531840', cwd: '/srv/lwt', lwtKey: null }
const SOCK = (dev: string): string => `${CONTROL_DIR}/${dev}.4026531840.sock`
const SERVER = ['server', '--tun', '10.0.0.1/24', '--key', 'correct horse battery']
const CLIENT = ['client', '--remote', '203.0.113.5:9000', '--tun', '10.0.0.2/24', '--key', 'correct horse battery']

/** The one-line hint every run with -k/--key gets (tested on its own below; left out of `run`'s warnings). */
const ARGV_KEY_HINT = /a key on the command line is visible to every local user \(ps, \/proc\/PID\/cmdline\); use --key-file FILE \(mode 0600\) or the LWT_KEY environment variable instead$/

function run (argv: string[]): { config: Config, warnings: string[] } {
  const cmd = parseCommand(argv, ENV)
  if (cmd.kind !== 'run') throw new Error(`expected run, got ${cmd.kind}`)
  return { ...cmd, warnings: cmd.warnings.filter(w => !ARGV_KEY_HINT.test(w)) }
}

function problemsOf (argv: string[]): string[] {
  try {
    parseCommand(argv, ENV)
  } catch (err) {
    if (err instanceof UsageError && isVpnError(err, 'ERR_USAGE')) return [...err.problems]
    throw err
  }
  throw new Error(`expected a usage error for ${JSON.stringify(argv)}`)
}

t.test('defaults', async t => {
  const s = run(SERVER).config
  t.same(s, {
    mode: 'server',
    listen: { host: '::', port: 9000 },
    remote: null,
    tun: { ip: '10.0.0.1', ipInt: 0x0a000001, prefix: 24 },
    tun6: null,
    key: 'correct horse battery',
    keyFile: null,
    networkName: null,
    dev: 'lwt0',
    control: SOCK('lwt0'),
    mtu: 1400,
    fec: null,
    maxClients: 100,
    p2p: true,
    portMapping: true,
    keepalive: 10,
    logLevel: 'info',
    logFormat: 'text',
    placement: 'fused',
    fastPath: true,
    mssClamp: false,
    metrics: null,
    authorizedNodes: null,
    handshakeWorkers: 'auto',
    stateDir: '/var/lib/lightweight-tunnel/lwt0',
    nodeKey: null,
    serverKey: null,
    advertiseRoutes: [],
    approveRoutes: {},
    acceptRoutes: true,
    clientIsolation: false,
    transport: 'auto',
    tcp: true,
    tcpListen: null,
    faketcp: false,
    faketcpOffload: true
  })
  t.equal(run([...CLIENT, '--no-faketcp-offload']).config.faketcpOffload, false, '--no-faketcp-offload')
  t.equal(run([...CLIENT, '--faketcp-offload=false']).config.faketcpOffload, false, '--faketcp-offload=false')
  const c = run(CLIENT).config
  t.same(c.listen, { host: '::', port: 0 })
  t.same(c.remote, { host: '203.0.113.5', port: 9000 })
  t.equal(c.placement, 'inline', 'a client runs its pipelines on the main thread by default')
  t.equal(c.p2p, true)
  t.equal(c.mode, 'client')
  t.same(run(SERVER).warnings, [])
})

t.test('--handshake-workers: auto, a count, or a clear error', async t => {
  t.equal(run([...SERVER, '--handshake-workers', '3']).config.handshakeWorkers, 3)
  t.equal(run([...SERVER, '--handshake-workers', 'auto']).config.handshakeWorkers, 'auto')
  t.equal(run([...SERVER, '--handshake-workers', '0']).config.handshakeWorkers, 0)
  t.throws(() => run([...SERVER, '--handshake-workers', 'many']), /handshake pool/)
})

t.test('the result is deep-frozen', async t => {
  const { config } = run(CLIENT)
  t.ok(Object.isFrozen(config))
  t.ok(Object.isFrozen(config.listen))
  t.ok(Object.isFrozen(config.remote))
  t.ok(Object.isFrozen(config.tun))
  t.throws(() => { (config as { mtu: number }).mtu = 1 }, TypeError)
  t.throws(() => { (config.tun as { prefix: number }).prefix = 8 }, TypeError)
})

interface OkCase { name: string, argv: string[], expect: Partial<Record<keyof Config, unknown>>, warn?: RegExp[] }

const okCases: OkCase[] = [
  { name: 'server, every long flag', argv: ['server', '--listen', '192.0.2.1:7000', '--tun', '10.9.0.1/16', '--key', 'k'.repeat(12), '--dev', 'vpn0', '--control', '/tmp/x.sock', '--mtu', '1280', '--max-clients', '5', '--keepalive', '30', '--log-level', 'warn'], expect: { listen: { host: '192.0.2.1', port: 7000 }, tun: { ip: '10.9.0.1', ipInt: 0x0a090001, prefix: 16 }, dev: 'vpn0', control: '/tmp/x.sock', mtu: 1280, maxClients: 5, keepalive: 30, logLevel: 'warn' } },
  { name: 'client, every long flag', argv: ['client', '--remote', 'vpn.example.com:443', '--tun', '172.16.5.9/24', '--key', 'k'.repeat(12), '--no-p2p', '--no-port-mapping', '--dev', 'wg-x', '--control', '/tmp/c.sock', '--mtu', '576', '--listen', '0.0.0.0:5555'], expect: { remote: { host: 'vpn.example.com', port: 443 }, p2p: false, portMapping: false, dev: 'wg-x', mtu: 576, listen: { host: '0.0.0.0', port: 5555 } } },
  { name: '--flag=value forms', argv: ['client', '--remote=198.51.100.7:9000', '--tun=10.0.0.7/24', '--key=a=b=c=d=e', '--mtu=1900', '--keepalive=1', '--log-level=debug', '--dev=x'], expect: { remote: { host: '198.51.100.7', port: 9000 }, key: 'a=b=c=d=e', mtu: 1900, keepalive: 1, logLevel: 'debug', dev: 'x', control: SOCK('x') } },
  { name: '--p2p explicitly', argv: [...CLIENT, '--p2p'], expect: { p2p: true } },
  { name: '--p2p=false', argv: [...CLIENT, '--p2p=false'], expect: { p2p: false } },
  { name: 'Go -p2p=false', argv: [...CLIENT, '-p2p=false'], expect: { p2p: false } },
  { name: 'Go -p2p=0', argv: [...CLIENT, '-p2p=0'], expect: { p2p: false } },
  { name: '--log-format json', argv: [...SERVER, '--log-format', 'json'], expect: { logFormat: 'json' } },
  { name: '--log-format=text', argv: [...SERVER, '--log-format=text'], expect: { logFormat: 'text' } },
  { name: '-q is log level error', argv: [...SERVER, '-q'], expect: { logLevel: 'error' } },
  { name: '--quiet is log level error', argv: [...SERVER, '--quiet'], expect: { logLevel: 'error' } },
  { name: '--verbose is log level debug', argv: [...SERVER, '--verbose'], expect: { logLevel: 'debug' } },
  { name: '-q with --log-level error agrees', argv: [...SERVER, '-q', '--log-level', 'error'], expect: { logLevel: 'error' } },
  { name: '--placement fused', argv: [...SERVER, '--placement', 'fused'], expect: { placement: 'fused' } },
  { name: '--placement split', argv: [...SERVER, '--placement=split'], expect: { placement: 'split' } },
  { name: '--placement inline (server)', argv: [...SERVER, '--placement', 'inline'], expect: { placement: 'inline' } },
  { name: '--placement fused (client)', argv: [...CLIENT, '--placement', 'fused'], expect: { placement: 'fused' } },
  { name: '--no-fast-path', argv: [...SERVER, '--no-fast-path'], expect: { fastPath: false } },
  { name: '--fast-path=false (client)', argv: [...CLIENT, '--fast-path=false'], expect: { fastPath: false } },
  { name: '--fast-path explicitly', argv: [...CLIENT, '--fast-path'], expect: { fastPath: true } },
  { name: '--mss-clamp (client)', argv: [...CLIENT, '--mss-clamp'], expect: { mssClamp: true } },
  { name: '--mss-clamp (server)', argv: [...SERVER, '--mss-clamp'], expect: { mssClamp: true } },
  { name: '--mss-clamp=false', argv: [...CLIENT, '--mss-clamp=false'], expect: { mssClamp: false } },
  { name: '--mtu auto', argv: [...SERVER, '--mtu', 'auto'], expect: { mtu: 1400 } },
  { name: '--metrics PORT binds loopback', argv: [...SERVER, '--metrics', '9100'], expect: { metrics: { host: '127.0.0.1', port: 9100 } } },
  { name: '--metrics localhost:PORT', argv: [...CLIENT, '--metrics=localhost:9101'], expect: { metrics: { host: '127.0.0.1', port: 9101 } } },
  { name: '--metrics with an explicit host', argv: [...SERVER, '--metrics', '0.0.0.0:9100'], expect: { metrics: { host: '0.0.0.0', port: 9100 } } },
  { name: '--metrics off', argv: [...SERVER, '--metrics', 'off'], expect: { metrics: null } },
  { name: 'options before the command', argv: ['--tun', '10.0.0.1/24', '--key', 'abcdefgh', 'server'], expect: { mode: 'server', key: 'abcdefgh' } },
  { name: 'same flag twice, same value', argv: [...SERVER, '--mtu', '1300', '--mtu', '1300'], expect: { mtu: 1300 } },
  { name: '--dev changes the default control path', argv: [...SERVER, '--dev', 'lwt7'], expect: { dev: 'lwt7', control: SOCK('lwt7') } },
  { name: 'relative --control resolves against cwd', argv: [...SERVER, '--control', 'run/ctl.sock'], expect: { control: '/srv/lwt/run/ctl.sock' } },
  { name: 'listen :PORT means all addresses', argv: ['server', '-l', ':9100', '-t', '10.0.0.1/24', '-k', 'abcdefgh'], expect: { listen: { host: '::', port: 9100 } } },
  { name: 'remote IPv6 in brackets', argv: ['client', '-r', '[2001:db8::1]:9000', '-t', '10.0.0.2/24', '-k', 'abcdefgh'], expect: { remote: { host: '2001:db8::1', port: 9000 } } },
  { name: 'max prefix /30 and min /8', argv: ['server', '-t', '10.0.0.1/30', '-k', 'abcdefgh'], expect: { tun: { ip: '10.0.0.1', ipInt: 0x0a000001, prefix: 30 } } },
  { name: 'prefix /8', argv: ['server', '-t', '10.1.2.3/8', '-k', 'abcdefgh'], expect: { tun: { ip: '10.1.2.3', ipInt: 0x0a010203, prefix: 8 } } },
  { name: 'max-clients 1', argv: [...SERVER, '--max-clients', '1'], expect: { maxClients: 1 } },
  // Go forms
  { name: 'Go server line', argv: ['-m', 'server', '-l', '0.0.0.0:9000', '-t', '10.0.0.1/24', '-k', 'secret-key', '-mtu', '1300', '-max-clients', '10', '-tun-name', 'tun9'], expect: { mode: 'server', mtu: 1300, maxClients: 10, dev: 'tun9', control: SOCK('tun9') } },
  { name: 'Go client line', argv: ['-m', 'client', '-r', '203.0.113.5:9000', '-t', '10.0.0.2/24', '-k', 'secret-key', '-p2p=false'], expect: { mode: 'client', remote: { host: '203.0.113.5', port: 9000 }, p2p: false } },
  { name: 'Go flags with two dashes', argv: ['--m', 'client', '--r', '203.0.113.5:9000', '--t', '10.0.0.2/24', '--k', 'secret-key'], expect: { mode: 'client' } },
  { name: 'Go -m=client form', argv: ['-m=client', '-r=203.0.113.5:9000', '-t=10.0.0.2/24', '-k=secret-key'], expect: { mode: 'client' } },
  { name: 'command and -m agree', argv: [...SERVER, '-m', 'server'], expect: { mode: 'server' } },
  { name: 'Go ignored flags warn', argv: [...SERVER, '-fec-data', '3', '-fec-parity=2', '-multi-client=false', '-xdp'], expect: { mode: 'server' }, warn: [/-fec-data .*ignored.*FEC/, /-fec-parity .*ignored/, /-multi-client .*ignored.*max_clients to 1/, /-xdp .*ignored.*encrypted/] },
  { name: 'Go -routes and -client-isolation are real', argv: [...SERVER, '-routes', '192.168.1.0/24', '-client-isolation'], expect: { advertiseRoutes: ['192.168.1.0/24'], clientIsolation: true } },
  { name: 'short key warns', argv: ['server', '-t', '10.0.0.1/24', '-k', 'abc'], expect: { key: 'abc' }, warn: [/-k: the key is only 3 characters long/] },
  { name: 'Go placeholder key warns', argv: ['server', '-t', '10.0.0.1/24', '-k', 'CHANGE-THIS-TO-YOUR-SECRET-KEY'], expect: {}, warn: [/placeholder/] }
]

t.test('accepted command lines', async t => {
  for (const c of okCases) {
    t.test(c.name, async t => {
      const { config, warnings } = run(c.argv)
      for (const [k, v] of Object.entries(c.expect)) t.same(config[k as keyof Config], v, k)
      t.equal(warnings.length, c.warn?.length ?? 0, `warnings: ${JSON.stringify(warnings)}`)
      for (const re of c.warn ?? []) t.ok(warnings.some(w => re.test(w)), `a warning matches ${re}`)
    })
  }
})

interface BadCase { name: string, argv: string[], problems: RegExp[] }

const badCases: BadCase[] = [
  { name: '--p2p with --no-p2p', argv: [...CLIENT, '--p2p', '--no-p2p'], problems: [/--p2p and --no-p2p conflict/] },
  { name: '--fast-path with --no-fast-path', argv: [...SERVER, '--fast-path', '--no-fast-path'], problems: [/--fast-path and --no-fast-path conflict/] },
  { name: '-q with --verbose', argv: [...SERVER, '-q', '--verbose'], problems: [/-q and --verbose conflict: -q sets log level error, --verbose sets log level debug/] },
  { name: '--remote in server mode', argv: [...SERVER, '--remote', '1.2.3.4:9000'], problems: [/--remote: only for client mode/] },
  { name: '--p2p in server mode', argv: [...SERVER, '--no-p2p'], problems: [/--no-p2p: only for client mode/] },
  { name: '--no-port-mapping in server mode', argv: [...SERVER, '--no-port-mapping'], problems: [/--no-port-mapping: only for client mode, but this is a server \(a client asks its own router/] },
  { name: '--authorized-nodes in client mode', argv: [...CLIENT, '--authorized-nodes', '/etc/lwt/nodes'], problems: [/--authorized-nodes: only for server mode/] },
  { name: '--authorized-nodes names a file that is not there', argv: [...SERVER, '--authorized-nodes', '/nonexistent/lwt-nodes'], problems: [/--authorized-nodes: cannot read the authorized nodes file \/nonexistent\/lwt-nodes/] },
  { name: '--max-clients in client mode', argv: [...CLIENT, '--max-clients', '3'], problems: [/--max-clients: only for server mode/] },
  { name: '-m server with the client command', argv: [...CLIENT, '-m', 'server'], problems: [/the client command and -m server conflict/] },
  { name: '-m with a bad mode', argv: ['-m', 'relay', '-t', '10.0.0.1/24', '-k', 'abcdefgh'], problems: [/-m: expected server or client, got "relay"/] },
  { name: 'no mode at all', argv: ['-t', '10.0.0.1/24', '-k', 'abcdefgh'], problems: [/no mode: expected the command server or client/] },
  { name: 'missing --key', argv: ['server', '--tun', '10.0.0.1/24'], problems: [/missing --key-file FILE, LWT_KEY or --key \(-k\): expected the network's shared secret/] },
  { name: 'empty --key', argv: ['server', '--tun', '10.0.0.1/24', '--key', ''], problems: [/--key: expected a non-empty shared secret, got an empty string/] },
  { name: 'missing --tun', argv: ['server', '--key', 'abcdefgh'], problems: [/missing --tun \(-t\)/] },
  { name: 'missing --remote', argv: ['client', '--tun', '10.0.0.2/24', '--key', 'abcdefgh'], problems: [/missing --remote \(-r\)/] },
  { name: 'CIDR without prefix', argv: ['server', '--tun', '10.0.0.1', '--key', 'abcdefgh'], problems: [/--tun: expected an address with its network prefix length.*got "10.0.0.1" \(no \/prefix\)/] },
  { name: 'CIDR with a bad address', argv: ['server', '--tun', '10.0.0.256/24', '--key', 'abcdefgh'], problems: [/--tun: expected an IPv4 address with prefix length.*"10.0.0.256" is not an IPv4 address/] },
  { name: 'CIDR with leading zeros', argv: ['server', '--tun', '10.0.0.01/24', '--key', 'abcdefgh'], problems: [/--tun: expected an IPv4 address/] },
  { name: 'CIDR prefix /31', argv: ['server', '--tun', '10.0.0.1/31', '--key', 'abcdefgh'], problems: [/--tun: expected a prefix length 8\.\.30, got \/31 .*no room/] },
  { name: 'CIDR prefix /7', argv: ['server', '--tun', '10.0.0.1/7', '--key', 'abcdefgh'], problems: [/--tun: expected a prefix length 8\.\.30, got \/7/] },
  { name: 'CIDR prefix not a number', argv: ['server', '--tun', '10.0.0.1/x', '--key', 'abcdefgh'], problems: [/--tun: expected a prefix length 8\.\.30 after "\/"/] },
  { name: 'CIDR network address', argv: ['server', '--tun', '10.0.0.0/24', '--key', 'abcdefgh'], problems: [/--tun: expected a host address, got the network address 10.0.0.0 of 10.0.0.0\/24; use e.g. 10.0.0.1\/24/] },
  { name: 'CIDR broadcast address', argv: ['server', '--tun', '10.0.3.255/22', '--key', 'abcdefgh'], problems: [/--tun: expected a host address, got the broadcast address 10.0.3.255 of 10.0.0.0\/22/] },
  { name: 'CIDR loopback', argv: ['server', '--tun', '127.0.0.2/8', '--key', 'abcdefgh'], problems: [/--tun: expected a unicast address.*loopback/] },
  { name: 'listen port out of range', argv: [...SERVER, '--listen', '0.0.0.0:70000'], problems: [/--listen: expected a port 1\.\.65535, got "70000"/] },
  { name: 'server listen port 0', argv: [...SERVER, '--listen', '0.0.0.0:0'], problems: [/--listen: expected a port 1\.\.65535, got "0"/] },
  { name: 'listen on a host name', argv: [...SERVER, '-l', 'localhost:9000'], problems: [/-l: expected a local IPv4 address or a bracketed IPv6 one to bind/] },
  { name: 'remote port 0', argv: ['client', '-r', '1.2.3.4:0', '-t', '10.0.0.2/24', '-k', 'abcdefgh'], problems: [/-r: expected a port 1\.\.65535, got "0"/] },
  { name: 'remote without port', argv: ['client', '-r', '1.2.3.4', '-t', '10.0.0.2/24', '-k', 'abcdefgh'], problems: [/-r: expected HOST:PORT.*\(no port\)/] },
  { name: 'remote IPv6 from an IPv4 socket', argv: ['client', '-r', '[2001:db8::1]:9000', '-l', '0.0.0.0:0', '-t', '10.0.0.2/24', '-k', 'abcdefgh'], problems: [/--remote \[2001:db8::1\]:9000 is an IPv6 address, but --listen 0\.0\.0\.0:0 binds an IPv4 socket/] },
  { name: 'remote IPv6 without brackets', argv: ['client', '-r', '2001:db8::1:9000', '-t', '10.0.0.2/24', '-k', 'abcdefgh'], problems: [/an IPv6 address in brackets/] },
  { name: 'remote bad host', argv: ['client', '-r', 'bad_host!:9000', '-t', '10.0.0.2/24', '-k', 'abcdefgh'], problems: [/-r: expected an IPv4 address or host name/] },
  { name: '--mtu 575', argv: [...SERVER, '--mtu', '575'], problems: [/--mtu: expected an MTU in bytes, 576\.\.1900.*got "575"/] },
  { name: '--mtu 1901', argv: [...SERVER, '--mtu', '1901'], problems: [/--mtu: expected .*576\.\.1900.*got "1901"/] },
  { name: '--mtu 0', argv: [...SERVER, '--mtu', '0'], problems: [/--mtu: expected .*"auto".*got "0"/] },
  { name: 'Go -mtu with junk', argv: [...SERVER, '-mtu', '14x0'], problems: [/-mtu: expected .*got "14x0"/] },
  { name: '--max-clients 0', argv: [...SERVER, '--max-clients', '0'], problems: [/--max-clients: expected the number of clients .*1\.\.65535, got "0"/] },
  { name: '--keepalive 0', argv: [...SERVER, '--keepalive', '0'], problems: [/--keepalive: expected seconds between keepalives, 1\.\.300/] },
  { name: '--placement bogus', argv: [...SERVER, '--placement', 'pipeline'], problems: [/--placement: expected one of split, fused, inline, got "pipeline"/] },
  { name: '--log-level bogus', argv: [...SERVER, '--log-level', 'loud'], problems: [/--log-level: expected one of error, warn, info, debug, got "loud"/] },
  { name: '--log-format bogus', argv: [...SERVER, '--log-format', 'logfmt'], problems: [/^--log-format: expected one of text, json, got "logfmt"$/] },
  { name: '--dev too long', argv: [...SERVER, '--dev', 'a-very-long-device-name'], problems: [/--dev: expected a network device name of 1\.\.15 characters/] },
  { name: '--dev with a slash', argv: [...SERVER, '--dev', 'a/b'], problems: [/--dev: expected a network device name/] },
  { name: '--control too long', argv: [...SERVER, '--control', '/' + 'x'.repeat(120)], problems: [/--control: expected a socket path of at most 107 bytes/] },
  { name: 'unknown flag, with a suggestion', argv: [...SERVER, '--mtuu', '1300'], problems: [/unknown option "--mtuu" \(did you mean --mtu\?\)/] },
  { name: 'unknown command, with a did-you-mean', argv: ['serve', '--tun', '10.0.0.1/24'], problems: [/^unknown command "serve" \(did you mean "server"\?\): expected one of server, client, status, demo, help, version, ping, netcheck, nodes, check, install-service, completion, genkey, pubkey \(or Go-style flags such as -m server\)$/] },
  { name: 'a misspelled status', argv: ['statsu'], problems: [/^unknown command "statsu" \(did you mean "status"\?\): expected one of server, client, status, demo, help, version, ping, netcheck, nodes, check, install-service, completion, genkey, pubkey \(or Go-style flags such as -m server\)$/] },
  { name: 'a command far from every name: no guess', argv: ['reboot'], problems: [/^unknown command "reboot": expected one of server, client, status, demo, help, version, ping, netcheck, nodes, check, install-service, completion, genkey, pubkey \(or Go-style flags such as -m server\)$/] },
  { name: 'no command', argv: [], problems: [/no command given/] },
  { name: 'missing value at the end', argv: ['server', '--key', 'abcdefgh', '--tun'], problems: [/--tun: expected a value after it, got nothing/, /missing --tun/] },
  { name: 'a flag where a value should be', argv: ['server', '--tun', '--key', 'abcdefgh'], problems: [/--tun: expected a value after it, got the option "--key"/, /missing --tun/] },
  { name: 'flag twice with different values', argv: [...SERVER, '--mtu', '1300', '--mtu', '1400'], problems: [/--mtu: given twice with different values \("1300" and "1400"\)/] },
  { name: 'stray argument', argv: [...SERVER, 'extra'], problems: [/unexpected argument "extra"/] },
  { name: '--json is not a server option', argv: [...SERVER, '--json'], problems: [/--json: not an option of server or client/] },
  { name: 'bad boolean', argv: [...CLIENT, '--p2p=maybe'], problems: [/--p2p: expected true or false after "=", got "maybe"/] },
  { name: '--no-p2p takes no value', argv: [...CLIENT, '--no-p2p=x'], problems: [/--no-p2p: expected no value/] },
  { name: 'status with a daemon option', argv: ['status', '--mtu', '1400'], problems: [/--mtu: not an option of status/] },
  { name: 'status with --control and --dev', argv: ['status', '--control', '/tmp/a.sock', '--dev', 'lwt1'], problems: [/--control and --dev conflict/] },
  { name: 'status --all with --dev', argv: ['status', '--all', '--dev', 'lwt1'], problems: [/--dev and --all conflict: each chooses which daemon to ask/] },
  { name: 'status -c with a missing file', argv: ['status', '-c', '/nonexistent/x.json'], problems: [/-c: expected a readable JSON config file, got "\/nonexistent\/x\.json" \(no such file\)/] },
  { name: 'ping without a peer', argv: ['ping'], problems: [/ping: expected the peer's tunnel address, e\.g\. lightweight-tunnel ping 10\.0\.0\.3/] },
  { name: 'ping a host name', argv: ['ping', 'bob'], problems: [/ping: expected the peer's tunnel address as an IPv4 address such as 10\.0\.0\.3, got "bob"/] },
  { name: 'ping bad numbers', argv: ['ping', '10.0.0.3', '-c', '0', '-i', '0.01', '-W', 'x'], problems: [/-c: expected a number of pings, 1\.\.100000, got "0"/, /-i: expected seconds between pings \(0\.2 or more\), 0\.2\.\.3600, got "0\.01"/, /-W: expected seconds to wait for each answer, 0\.1\.\.8, got "x"/] },
  { name: 'ping with two peers', argv: ['ping', '10.0.0.3', '10.0.0.4'], problems: [/ping: unexpected argument "10\.0\.0\.4"/] },
  { name: 'netcheck with a daemon option', argv: ['netcheck', '--mtu', '1400'], problems: [/--mtu: not an option of netcheck/] },
  { name: 'check without a file', argv: ['check'], problems: [/check: expected the config file to check/] },
  { name: '--metrics not a port', argv: ['server', '--tun', '10.0.0.1/24', '--key', 'k'.repeat(16), '--metrics', 'http://x'], problems: [/--metrics: expected a local IPv4 address .*--metrics takes HOST:PORT or a PORT on 127\.0\.0\.1/, /--metrics: expected a port 1\.\.65535/] },
  { name: 'help with an unknown topic', argv: ['help', 'everything'], problems: [/help: unknown topic "everything": expected/] },
  { name: 'help with a misspelled topic', argv: ['help', 'confg'], problems: [/help: unknown topic "confg" \(did you mean "config"\?\): expected/] },
  {
    name: 'every problem is listed, not just the first',
    argv: ['client', '--p2p', '--no-p2p', '--tun', '10.0.0.0/24', '--mtu', '9000', '--max-clients', '0', '--bogus', '--keepalive', 'x'],
    problems: [/--p2p and --no-p2p conflict/, /unknown option "--bogus"/, /--max-clients: only for server mode/, /missing --remote/, /--tun: expected a host address/, /missing --key/, /--mtu: expected/, /--keepalive: expected/]
  }
]

t.test('usage errors', async t => {
  for (const c of badCases) {
    t.test(c.name, async t => {
      const problems = problemsOf(c.argv)
      t.equal(problems.length, c.problems.length, `problems: ${JSON.stringify(problems, null, 1)}`)
      for (const re of c.problems) t.ok(problems.some(p => re.test(p)), `a problem matches ${re}\n${problems.join('\n')}`)
    })
  }
  t.test('the error carries code, problems and hint', async t => {
    try {
      parseCommand(['server'], ENV)
      t.fail('should throw')
    } catch (err) {
      t.ok(isVpnError(err, 'ERR_USAGE'))
      const e = err as UsageError
      t.equal(e.problems.length, 2)
      t.equal(e.message, e.problems.join('\n'))
      t.match(e.hint, /lightweight-tunnel --help/)
    }
  })
})

t.test('other commands', async t => {
  const cases: Array<{ name: string, argv: string[], expect: Command }> = [
    { name: 'status (find the daemons)', argv: ['status'], expect: { kind: 'status', json: false, control: null, all: false } },
    { name: 'status --json', argv: ['status', '--json'], expect: { kind: 'status', json: true, control: null, all: false } },
    { name: 'status --dev', argv: ['status', '--dev', 'lwt3'], expect: { kind: 'status', json: false, control: SOCK('lwt3'), all: false } },
    { name: 'status --control', argv: ['status', '--control=/tmp/s.sock', '--json'], expect: { kind: 'status', json: true, control: '/tmp/s.sock', all: false } },
    { name: 'status --all', argv: ['status', '--all'], expect: { kind: 'status', json: false, control: null, all: true } },
    { name: 'status --verbose is tolerated', argv: ['status', '--verbose'], expect: { kind: 'status', json: false, control: null, all: false } },
    { name: 'ping with defaults', argv: ['ping', '10.0.0.3'], expect: { kind: 'ping', peer: '10.0.0.3', count: 4, intervalMs: 1000, timeoutMs: 2000, json: false, control: null } },
    { name: 'ping -c -i -W --dev', argv: ['ping', '-c', '10', '-i', '0.5', '-W', '1', '--dev', 'lwt3', '10.0.0.3'], expect: { kind: 'ping', peer: '10.0.0.3', count: 10, intervalMs: 500, timeoutMs: 1000, json: false, control: SOCK('lwt3') } },
    { name: 'ping --count --json', argv: ['ping', '10.0.0.1', '--count=2', '--json'], expect: { kind: 'ping', peer: '10.0.0.1', count: 2, intervalMs: 1000, timeoutMs: 2000, json: true, control: null } },
    { name: 'netcheck', argv: ['netcheck'], expect: { kind: 'netcheck', json: false, control: null } },
    { name: 'netcheck --json --control', argv: ['netcheck', '--json', '--control', '/tmp/n.sock'], expect: { kind: 'netcheck', json: true, control: '/tmp/n.sock' } },
    { name: 'help', argv: ['help'], expect: { kind: 'help' } },
    { name: 'help server', argv: ['help', 'server'], expect: { kind: 'help', topic: 'server' } },
    { name: '-h', argv: ['-h'], expect: { kind: 'help' } },
    { name: '--help', argv: ['--help'], expect: { kind: 'help' } },
    { name: 'client --help', argv: ['client', '--help'], expect: { kind: 'help', topic: 'client' } },
    { name: '--help wins over bad options', argv: ['server', '--mtu', '1', '--help'], expect: { kind: 'help', topic: 'server' } },
    { name: '-v', argv: ['-v'], expect: { kind: 'version' } },
    { name: '--version', argv: ['--version'], expect: { kind: 'version' } },
    { name: 'version', argv: ['version'], expect: { kind: 'version' } },
    { name: '-g FILE', argv: ['-g', 'lwt.json'], expect: { kind: 'genconfig', file: '/srv/lwt/lwt.json' } },
    { name: 'demo', argv: ['demo'], expect: { kind: 'demo' } }
  ]
  for (const c of cases) {
    t.test(c.name, async t => { t.same(parseCommand(c.argv, ENV), c.expect) })
  }
})

t.test('-c config files', async t => {
  const dir = t.testdir({})
  const file = (name: string, content: unknown, mode = 0o600): string => {
    const p = join(dir, name)
    writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content))
    chmodSync(p, mode)
    return p
  }
  const ours = file('ours.json', { mode: 'client', remote: 'vpn.example.com:9000', tun: '10.0.0.2/24', key: 'file-key-123', dev: 'lwt4', mtu: 1300, p2p: false, keepalive: 20, logLevel: 'warn', listen: '0.0.0.0:4000', fastPath: false, mssClamp: true })
  const goServer = file('go-server.json', { mode: 'server', local_addr: '0.0.0.0:9500', remote_addr: '', tunnel_addr: '10.8.0.1/24', key: 'go-key-1234', mtu: 1350, tun_name: 'tun0', max_clients: 7, p2p_enabled: true, keepalive: 15 })

  t.test('our key names', async t => {
    const { config, warnings } = run(['-c', ours])
    t.same(warnings, [])
    t.match(config, { mode: 'client', remote: { host: 'vpn.example.com', port: 9000 }, tun: { ip: '10.0.0.2', prefix: 24 }, key: 'file-key-123', dev: 'lwt4', control: SOCK('lwt4'), mtu: 1300, p2p: false, keepalive: 20, logLevel: 'warn', listen: { host: '0.0.0.0', port: 4000 }, fastPath: false, mssClamp: true })
  })
  t.test('Go key names', async t => {
    const { config, warnings } = run(['-c', goServer])
    t.match(config, { mode: 'server', listen: { host: '0.0.0.0', port: 9500 }, tun: { ip: '10.8.0.1' }, key: 'go-key-1234', mtu: 1350, dev: 'tun0', maxClients: 7, keepalive: 15 })
    t.equal(warnings.length, 1)
    t.match(warnings[0], /"p2p_enabled" is ignored in server mode/)
  })
  t.test('authorizedNodes: a readable file is kept as an absolute path; a bad line is a problem naming FILE:LINE', async t => {
    const good = file('nodes', `# admitted\n${Buffer.alloc(32, 1).toString('base64')} 10.8.0.2\n`)
    const srv = file('strict.json', { mode: 'server', tun: '10.8.0.1/24', key: 'go-key-1234', authorizedNodes: good })
    t.equal(run(['-c', srv]).config.authorizedNodes, good)
    const bad = file('bad-nodes', `${Buffer.alloc(32, 1).toString('base64')} 10.8.0.2\nnot-a-key 10.8.0.3\n`)
    const p = problemsOf([...SERVER, '--authorized-nodes', bad])
    t.equal(p.length, 1)
    t.match(p[0], new RegExp(`^--authorized-nodes: ${bad}:2: "not-a-key" is not a public key.*expected "PUBKEY ADDRESS"`))
  })
  t.test('flags beside -c override the file', async t => {
    const { config } = run(['-c', ours, '--mtu', '1400', '--p2p', '--key', 'flag-key-123', '--tun', '10.0.0.9/24', '--verbose'])
    t.match(config, { mtu: 1400, p2p: true, key: 'flag-key-123', tun: { ip: '10.0.0.9' }, logLevel: 'debug', dev: 'lwt4' })
  })
  t.test('Go -c with Go flags beside it', async t => {
    const { config } = run(['-c', goServer, '-mtu', '1200', '-max-clients', '50', '-tun-name', 'tunX'])
    t.match(config, { mtu: 1200, maxClients: 50, dev: 'tunX', control: SOCK('tunX') })
  })
  t.test('the command must agree with the file', async t => {
    t.match(problemsOf(['client', '-c', goServer]), [/the client command and .*"mode" "server" conflict/])
    t.equal(run(['server', '-c', goServer]).config.mode, 'server')
  })
  t.test('unknown keys are an error naming each', async t => {
    const f = file('unknown.json', { mode: 'server', tunnel_addr: '10.0.0.1/24', key: 'abcdefgh', colour: 'blue', mtuu: 1400 })
    const p = problemsOf(['-c', f])
    t.equal(p.length, 2)
    t.match(p[0], /unknown key "colour"/)
    t.match(p[1], /unknown key "mtuu" \(did you mean "mtu"\?\)/)
  })
  t.test('ignored Go keys give one warning each', async t => {
    const f = file('go-ignored.json', { mode: 'server', tunnel_addr: '10.0.0.1/24', key: 'abcdefgh', send_queue_size: 5000, recv_queue_size: 5000, multi_client: true, enable_mesh_routing: true, max_hops: 3, route_update_interval: 30, p2p_timeout: 5, enable_nat_detection: true, enable_xdp: true, enable_kernel_tune: true, route_advert_interval: 300, p2p_keepalive_interval: 25, p2p_port: 0, config_push_interval: 0, timeout: 30, transport: 'rawtcp' })
    const { warnings } = run(['-c', f])
    t.equal(warnings.length, 16)
    for (const k of ['send_queue_size', 'recv_queue_size', 'multi_client', 'enable_mesh_routing', 'max_hops', 'route_update_interval', 'p2p_timeout', 'enable_nat_detection', 'enable_xdp', 'enable_kernel_tune', 'route_advert_interval', 'p2p_keepalive_interval', 'p2p_port', 'config_push_interval', 'timeout', 'transport']) {
      t.equal(warnings.filter(w => w.includes(`"${k}" is a Go lightweight-tunnel setting that is ignored: `)).length, 1, k)
    }
  })
  t.test('Go zero means default, with a warning; our names reject 0', async t => {
    const go = file('go-zero.json', { mode: 'server', tunnel_addr: '10.0.0.1/24', key: 'abcdefgh', mtu: 0, max_clients: 0, keepalive: 0 })
    const { config, warnings } = run(['-c', go])
    t.match(config, { mtu: 1400, maxClients: 100, keepalive: 10 })
    t.equal(warnings.length, 3)
    for (const w of warnings) t.match(w, /0 meant "the default" in the Go program/)
    const oursZero = file('ours-zero.json', { mode: 'server', tun: '10.0.0.1/24', key: 'abcdefgh', maxClients: 0 })
    t.match(problemsOf(['-c', oursZero]), [/"maxClients": expected the number of clients .*got 0/])
  })
  t.test('"mtu": "auto"', async t => {
    const f = file('auto.json', { mode: 'server', tun: '10.0.0.1/24', key: 'abcdefgh', mtu: 'auto' })
    t.equal(run(['-c', f]).config.mtu, 1400)
  })
  t.test('wrong value types name the key', async t => {
    const f = file('types.json', { mode: 'client', remote: 9000, tun: '10.0.0.2/24', key: 12345678, mtu: '1400', p2p: 'yes', keepalive: 2.5 })
    const p = problemsOf(['-c', f])
    t.equal(p.length, 5, p.join('\n'))
    t.ok(p.some(x => /"remote": expected HOST:PORT as a string.*got 9000/.test(x)))
    t.ok(p.some(x => /"key": expected the shared secret as a string, got 12345678/.test(x)))
    t.ok(p.some(x => /"mtu": must be a number, not the string "1400": write 1400 without quotes$/.test(x)))
    t.ok(p.some(x => /"p2p": expected true or false, got "yes"/.test(x)))
    t.ok(p.some(x => /"keepalive": expected seconds.*got 2.5/.test(x)))
  })
  t.test('our name and the Go name disagreeing is a conflict', async t => {
    const f = file('both.json', { mode: 'server', tun: '10.0.0.1/24', tunnel_addr: '10.0.0.5/24', key: 'abcdefgh' })
    t.match(problemsOf(['-c', f]), [/"tun" and .*"tunnel_addr" conflict/])
  })
  t.test('Go client file: local_addr ignored with a warning, empty tun_name is the default', async t => {
    const f = file('go-client.json', { mode: 'client', local_addr: '0.0.0.0:9000', remote_addr: '203.0.113.5:9000', tunnel_addr: '10.0.0.2/24', key: 'abcdefgh', tun_name: '' })
    const { config, warnings } = run(['-c', f])
    t.same(config.listen, { host: '::', port: 0 })
    t.equal(config.dev, 'lwt0')
    t.equal(warnings.length, 1)
    t.match(warnings[0], /"local_addr" is ignored in client mode/)
  })
  t.test('a UTF-8 byte order mark is accepted', async t => {
    const f = file('bom.json', '\ufeff' + JSON.stringify({ mode: 'server', tun: '10.0.0.1/24', key: 'abcdefgh' }))
    t.equal(run(['-c', f]).config.mode, 'server')
  })
  t.test('a world-readable file with a key warns', async t => {
    const f = file('open.json', { mode: 'server', tun: '10.0.0.1/24', key: 'abcdefgh' }, 0o644)
    t.match(run(['-c', f]).warnings, [/readable by every user.*chmod 600/])
  })
  t.test('missing, malformed and non-object files', async t => {
    t.match(problemsOf(['-c', join(dir, 'nope.json')]), [/-c: expected a readable JSON config file, got ".*nope.json" \(no such file\)/], 'no knock-on "missing" problems for what the file may hold')
    t.equal(problemsOf(['-c', join(dir, 'nope.json')]).length, 1)
    t.match(problemsOf(['-c', file('bad.json', '{ "mode": ')]), [/bad.json: expected JSON, got a syntax error at line 1, column 11/])
    t.match(problemsOf(['-c', file('arr.json', '[1,2]')]), [/arr.json: expected a JSON object .* got an array/])
  })
  t.test('problems from the file and the flags are listed together', async t => {
    const f = file('mixed.json', { mode: 'server', tun: '10.0.0.0/24', key: 'abcdefgh', bogus: 1 })
    const p = problemsOf(['-c', f, '--mtu', '5', '--remote', '1.2.3.4:5'])
    t.equal(p.length, 4, p.join('\n'))
  })
})

t.test('control socket path is per device and per network namespace', async t => {
  t.equal(controlPathFor('lwt0', '111'), '/run/lightweight-tunnel/lwt0.111.sock')
  t.not(controlPathFor('lwt0', '111'), controlPathFor('lwt0', '222'))
  t.not(controlPathFor('lwt0', '111'), controlPathFor('lwt1', '111'))
  const own = currentNetnsId()
  t.ok(own !== null && /^[0-9]+$/.test(own), 'the netns id is an inode number')
  t.equal(controlPathFor('lwt0'), `/run/lightweight-tunnel/lwt0.${own}.sock`)
  t.equal((parseCommand(['status', '--dev', 'lwt0']) as { control: string }).control, controlPathFor('lwt0'))

  const ns = `lwtcfg${process.pid}`
  t.test('in another namespace (ip netns exec)', async t => {
    execFileSync('ip', ['netns', 'add', ns], { stdio: 'ignore' })
    t.teardown(() => { try { execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' }) } catch { /* gone */ } })
    // The compiled module (npm test compiles before tap runs), in a plain node: no loader needed.
    const defaults = fileURLToPath(new URL('../../dist/src/config/defaults.js', import.meta.url))
    const script = `import { controlPathFor } from ${JSON.stringify(defaults)}; console.log(controlPathFor('lwt0'))`
    const inside = execFileSync('ip', ['netns', 'exec', ns, process.execPath, '--input-type=module', '-e', script], { encoding: 'utf8' }).trim()
    t.match(inside, /^\/run\/lightweight-tunnel\/lwt0\.[0-9]+\.sock$/)
    t.not(inside, controlPathFor('lwt0'), 'same device, different namespace, different socket')
  })
})

t.test('main(): exit codes and messages', async t => {
  const io = (): { out: string[], err: string[], io: { stdout: { write(s: string): boolean }, stderr: { write(s: string): boolean } } } => {
    const out: string[] = []
    const err: string[] = []
    return { out, err, io: { stdout: { write: (s: string) => out.push(s) > 0 }, stderr: { write: (s: string) => err.push(s) > 0 } } }
  }
  t.test('usage error: exit 2, every problem, then the hint line', async t => {
    const c = io()
    t.equal(await main(['client', '--p2p', '--no-p2p', '--mtu', '1'], c.io), 2)
    const lines = c.err.join('').trimEnd().split('\n')
    t.ok(lines.length >= 5)
    for (const l of lines.slice(0, -1)) t.match(l, /^lightweight-tunnel: /)
    t.equal(lines.at(-1), 'see lightweight-tunnel --help')
    t.same(c.out, [])
  })
  t.test('help: exit 0 on stdout', async t => {
    const c = io()
    t.equal(await main(['--help'], c.io), 0)
    t.equal(c.out.join(''), helpText())
  })
  t.test('version from package.json', async t => {
    const c = io()
    t.equal(await main(['-v'], c.io), 0)
    t.match(c.out.join(''), /^lightweight-tunnel [0-9]+\.[0-9]+\.[0-9]+/)
  })
  t.test('status with no daemon: exit 3', async t => {
    const c = io()
    const dir = mkdtempSync(join(tmpdir(), 'lwt-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const path = join(dir, 'none.sock')
    t.equal(await main(['status', '--control', path], c.io), 3)
    t.equal(c.err.join(''), `lightweight-tunnel: no lightweight-tunnel daemon is listening on ${path} — is it running? pass --control or --dev if it uses another device\n`)
  })
})

t.test('help text is a manual page and matches the options', async t => {
  const h = helpText()
  for (const s of ['NAME', 'SYNOPSIS', 'DESCRIPTION', 'COMMANDS', 'OPTIONS', 'FILES', 'EXIT STATUS', 'EXAMPLES', 'SIGNALS', 'CONFIGURATION FILE']) {
    t.match(h, new RegExp(`^${s}$`, 'm'), s)
  }
  for (const o of ['--listen', '--remote', '--tun', '--key', '--dev', '--control', '--mtu', '--max-clients', '--p2p', '--no-p2p', '--keepalive', '--log-level', '--quiet', '--verbose', '--json', '-c', '-g', '-m server', '-tun-name', '-p2p=false', 'SIGTERM', 'SIGINT', '/run/lightweight-tunnel/<dev>.<netns-id>.sock']) {
    t.ok(h.includes(o), o)
  }
  for (const o of ['--metrics', '--all', 'ping PEER', 'netcheck', 'check', 'WITHOUT AUTHENTICATION']) t.ok(h.includes(o), o)
  for (const topic of ['server', 'client', 'status', 'demo', 'version', 'config', 'ping', 'netcheck', 'check', 'metrics']) t.ok(helpText(topic).length > 100, topic)
  for (const topic of [undefined, 'server', 'client', 'status', 'demo', 'version', 'config', 'ping', 'netcheck', 'check', 'metrics']) {
    const long = helpText(topic).split('\n').filter(l => l.length > 80)
    t.same(long, [], `every line of help ${topic ?? ''} fits 80 columns`)
  }
})

t.test('--state-dir, --node-key, --server-key', async t => {
  const c = parseCommand(['client', '--remote', '192.0.2.1:9000', '--tun', '10.0.0.2/24', '--key', 'correct horse battery', '--state-dir', 'st', '--node-key', 'n.key',
    '--server-key', 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8='], { netnsId: null, cwd: '/srv/lwt' })
  t.equal(c.kind, 'run')
  if (c.kind !== 'run') return
  t.equal(c.config.stateDir, '/srv/lwt/st')
  t.equal(c.config.nodeKey, '/srv/lwt/n.key')
  t.equal(c.config.serverKey, 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=', 'a key stays as given')
  const f = parseCommand(['client', '--remote', '192.0.2.1:9000', '--tun', '10.0.0.2/24', '--key', 'correct horse battery', '--server-key', 'srv.pub'], { netnsId: null, cwd: '/srv/lwt' })
  t.equal(f.kind === 'run' ? f.config.serverKey : null, '/srv/lwt/srv.pub', 'anything else is a file path')
  t.throws(() => parseCommand(['server', '--tun', '10.0.0.1/24', '--key', 'correct horse battery', '--server-key', 'x'], { netnsId: null }), { code: 'ERR_USAGE', message: /--server-key: only for client mode/ })
})

t.test('the network key: --key-file, LWT_KEY, -k and the config file, in that precedence', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'lwt-key-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const keyFile = (name: string, text: string, mode = 0o600): string => {
    const p = join(dir, name)
    writeFileSync(p, text)
    chmodSync(p, mode)
    return p
  }
  const BASE = ['server', '--tun', '10.0.0.1/24']
  const parse = (argv: string[], lwtKey: string | null = null): Command => parseCommand(argv, { ...ENV, lwtKey })
  const runWith = (argv: string[], lwtKey: string | null = null): { config: Config, warnings: string[] } => {
    const cmd = parse(argv, lwtKey)
    if (cmd.kind !== 'run') throw new Error(`expected run, got ${cmd.kind}`)
    return cmd
  }
  const problems = (argv: string[], lwtKey: string | null = null): string[] => {
    try { parse(argv, lwtKey) } catch (err) { if (err instanceof UsageError) return [...err.problems]; throw err }
    throw new Error('expected a usage error')
  }

  t.test('-k works, with one line saying it is visible in ps and what to use instead', async t => {
    const r = runWith([...BASE, '-k', 'correct horse battery'])
    t.equal(r.config.key, 'correct horse battery')
    t.equal(r.config.keyFile, null)
    t.same(r.warnings.filter(w => ARGV_KEY_HINT.test(w)), ['-k: a key on the command line is visible to every local user (ps, /proc/PID/cmdline); use --key-file FILE (mode 0600) or the LWT_KEY environment variable instead'])
  })
  t.test('--key-file: one trailing newline (LF or CRLF) is not part of the key; no ps hint', async t => {
    const lf = keyFile('lf.key', 'correct horse battery\n')
    const r = runWith([...BASE, '--key-file', lf])
    t.equal(r.config.key, 'correct horse battery')
    t.equal(r.config.keyFile, lf)
    t.same(r.warnings, [])
    t.equal(runWith([...BASE, '--key-file', keyFile('crlf.key', 'correct horse battery\r\n')]).config.key, 'correct horse battery')
    t.equal(runWith([...BASE, '--key-file', keyFile('raw.key', ' correct horse battery ')]).config.key, ' correct horse battery ', 'otherwise byte-exact')
  })
  t.test('a relative --key-file is resolved against the working directory', async t => {
    keyFile('rel.key', 'correct horse battery\n')
    const cmd = parseCommand([...BASE, '--key-file', 'rel.key'], { ...ENV, cwd: dir, lwtKey: null })
    t.equal(cmd.kind === 'run' ? cmd.config.keyFile : null, join(dir, 'rel.key'))
  })
  t.test('an empty key file (or one holding only a newline) is an error naming the file', async t => {
    for (const text of ['', '\n']) {
      const p = keyFile('empty.key', text)
      t.match(problems([...BASE, '--key-file', p]), [new RegExp(`^--key-file: the key file ${p} is empty; put the network's shared secret in it`)])
    }
  })
  t.test('a missing key file is an error naming it', async t => {
    t.match(problems([...BASE, '--key-file', join(dir, 'nope.key')]), [/^--key-file: expected a readable file holding the network key, got ".*nope\.key" \(no such file\)/])
  })
  t.test('readable by other users: an error (chmod 600); by its group only: a warning', async t => {
    const world = keyFile('world.key', 'correct horse battery\n', 0o644)
    t.match(problems([...BASE, '--key-file', world]), [new RegExp(`the key file ${world} is readable by every user \\(mode 644\\).*run: chmod 600 ${world}`)])
    const group = keyFile('group.key', 'correct horse battery\n', 0o640)
    const r = runWith([...BASE, '--key-file', group])
    t.equal(r.config.key, 'correct horse battery')
    t.match(r.warnings, [/readable by its group \(mode 640\)/])
  })
  t.test('LWT_KEY is used when the command line has no key, and yields to -k and --key-file', async t => {
    const env = runWith(BASE, 'from the environment')
    t.equal(env.config.key, 'from the environment')
    t.same(env.warnings, [], 'no ps hint for the environment')
    t.equal(runWith([...BASE, '-k', 'from argv xxxxxxxx'], 'from the environment').config.key, 'from argv xxxxxxxx')
    t.equal(runWith([...BASE, '--key-file', keyFile('f.key', 'from a file xxxxxx\n')], 'from the environment').config.key, 'from a file xxxxxx')
    t.match(problems(BASE, ''), [/^LWT_KEY \(environment\): expected a non-empty shared secret, got an empty string/])
  })
  t.test('the config file\'s "key" / "keyFile" / "key_file" come last; both in one file is an error', async t => {
    const kf = keyFile('cfg.key', 'from the config key file\n')
    const conf = (name: string, o: object): string => keyFile(name, JSON.stringify({ mode: 'server', tun: '10.0.0.1/24', ...o }))
    t.equal(runWith(['-c', conf('a.json', { key_file: kf })]).config.key, 'from the config key file')
    t.equal(runWith(['-c', conf('b.json', { keyFile: kf })]).config.keyFile, kf)
    t.equal(runWith(['-c', conf('c.json', { key: 'in the config itself' })], 'from the environment').config.key, 'from the environment', 'LWT_KEY beats the file')
    t.equal(runWith(['-c', conf('d.json', { key_file: kf }), '-k', 'from argv xxxxxxxx']).config.key, 'from argv xxxxxxxx', 'a flag beats the file')
    t.match(problems(['-c', conf('e.json', { key: 'x'.repeat(20), key_file: kf })]), [/"key" and .*"key_file" both give the network key: keep one/])
  })
  t.test('-k and --key-file together: an error', async t => {
    t.match(problems([...BASE, '-k', 'correct horse battery', '--key-file', keyFile('g.key', 'x\n')]), [/^-k and --key-file both give the network key: keep one/])
  })
  t.test('--network-name: any non-empty text; absent is null', async t => {
    t.equal(runWith([...BASE, '-k', 'correct horse battery', '--network-name', 'office']).config.networkName, 'office')
    t.equal(runWith([...BASE, '-k', 'correct horse battery']).config.networkName, null)
    t.match(problems([...BASE, '-k', 'correct horse battery', '--network-name', '']), [/^--network-name: expected a non-empty network name/])
  })
})
