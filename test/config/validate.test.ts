/**
 * config/validate.ts: one table per value check, one t.test per named case.
 * Good values give the parsed value and no problem; each kind of bad value
 * gives null and exactly one problem (two where two parts are wrong), whose
 * full text is compared: it names the flag or file key, what was expected
 * and what was received.
 */
import t from 'tap'
import { LOG_LEVELS } from '../../src/config/defaults.js'
import { PLACEMENTS } from '../../src/config/schema.js'
import { checkBool, checkCidr, checkControl, checkDev, checkHostPort, formatHostPort, checkInt, checkOneOf, expectString, type Raw } from '../../src/config/validate.js'

const FILE = '/etc/lwt.json'
const flag = (value: unknown, source: string): Raw => ({ value, source, from: 'flag', goName: false })
const file = (value: unknown, key: string): Raw => ({ value, source: `${FILE}: "${key}"`, from: 'file', goName: false })

interface Case<I, O> {
  name: string
  input: I
  /** The parsed value; null when the input is refused. */
  value: O | null
  /** Exactly the problems pushed (none for a good value). */
  problems?: string[]
}

/** One t.test per case: `check` gets the input and a fresh problems array. */
function table<I, O> (title: string, cases: Array<Case<I, O>>, check: (input: I, problems: string[]) => O | null): void {
  t.test(title, async t => {
    for (const c of cases) {
      t.test(c.name, async t => {
        const problems: string[] = []
        t.same(check(c.input, problems), c.value, 'value')
        t.same(problems, c.problems ?? [], 'problems')
      })
    }
  })
}

const MTU = 'an MTU in bytes'
table<Raw, number>('checkInt (576..1900)', [
  { name: 'flag: a number in range', input: flag('1400', '--mtu'), value: 1400 },
  { name: 'flag: the minimum', input: flag('576', '--mtu'), value: 576 },
  { name: 'flag: the maximum', input: flag('1900', '-mtu'), value: 1900 },
  { name: 'file: a JSON integer', input: file(1400, 'mtu'), value: 1400 },
  { name: 'flag: below the minimum', input: flag('575', '--mtu'), value: null, problems: [`--mtu: expected ${MTU}, got "575"`] },
  { name: 'flag: above the maximum', input: flag('1901', '-mtu'), value: null, problems: [`-mtu: expected ${MTU}, got "1901"`] },
  { name: 'flag: not a number', input: flag('14x0', '--mtu'), value: null, problems: [`--mtu: expected ${MTU}, got "14x0"`] },
  { name: 'flag: a sign', input: flag('+1400', '--mtu'), value: null, problems: [`--mtu: expected ${MTU}, got "+1400"`] },
  { name: 'flag: an exponent', input: flag('1e3', '--mtu'), value: null, problems: [`--mtu: expected ${MTU}, got "1e3"`] },
  { name: 'flag: ten digits', input: flag('0000001400', '--mtu'), value: null, problems: [`--mtu: expected ${MTU}, got "0000001400"`] },
  { name: 'file: a quoted number says it must be a number, without quotes', input: file('1400', 'mtu'), value: null, problems: [`${FILE}: "mtu": must be a number, not the string "1400": write 1400 without quotes`] },
  { name: 'file: a quoted number out of range is still a type problem first', input: file('9000', 'mtu'), value: null, problems: [`${FILE}: "mtu": must be a number, not the string "9000": write 9000 without quotes`] },
  { name: 'file: a word', input: file('auto-ish', 'mtu'), value: null, problems: [`${FILE}: "mtu": must be a number, got the string "auto-ish"; expected ${MTU}`] },
  { name: 'file: a fraction', input: file(1400.5, 'mtu'), value: null, problems: [`${FILE}: "mtu": expected ${MTU}, got 1400.5`] },
  { name: 'file: out of range', input: file(9000, 'mtu'), value: null, problems: [`${FILE}: "mtu": expected ${MTU}, got 9000`] },
  { name: 'file: null', input: file(null, 'mtu'), value: null, problems: [`${FILE}: "mtu": must be a number, got null; expected ${MTU}`] },
  { name: 'file: a boolean', input: file(true, 'mtu'), value: null, problems: [`${FILE}: "mtu": must be a number, got true; expected ${MTU}`] }
], (raw, problems) => checkInt(raw, 576, 1900, MTU, problems))

table<Raw, boolean>('checkBool', [
  { name: 'flag: true', input: flag(true, '--p2p'), value: true },
  { name: 'file: false', input: file(false, 'p2p'), value: false },
  { name: 'file: a string', input: file('yes', 'p2p'), value: null, problems: [`${FILE}: "p2p": expected true or false, got "yes"`] },
  { name: 'file: a number', input: file(1, 'fastPath'), value: null, problems: [`${FILE}: "fastPath": expected true or false, got 1`] }
], (raw, problems) => checkBool(raw, problems))

table<Raw, string>('checkOneOf', [
  { name: 'a log level', input: flag('warn', '--log-level'), value: 'warn' },
  { name: 'a log level from the file', input: file('debug', 'logLevel'), value: 'debug' },
  { name: 'an unknown word', input: flag('loud', '--log-level'), value: null, problems: ['--log-level: expected one of error, warn, info, debug, got "loud"'] },
  { name: 'case matters', input: flag('WARN', '--log-level'), value: null, problems: ['--log-level: expected one of error, warn, info, debug, got "WARN"'] },
  { name: 'file: not a string', input: file(3, 'logLevel'), value: null, problems: [`${FILE}: "logLevel": expected one of error, warn, info, debug, got 3`] }
], (raw, problems) => checkOneOf(raw, LOG_LEVELS, problems))

table<Raw, string>('checkOneOf (placements)', [
  { name: 'fused', input: flag('fused', '--placement'), value: 'fused' },
  { name: 'split from the file', input: file('split', 'placement'), value: 'split' },
  { name: 'an unknown placement', input: flag('pipeline', '--placement'), value: null, problems: ['--placement: expected one of split, fused, inline, got "pipeline"'] }
], (raw, problems) => checkOneOf(raw, PLACEMENTS, problems))

table<Raw, boolean>('expectString', [
  { name: 'a string', input: file('lwt0', 'dev'), value: true },
  { name: 'an empty string is a string', input: file('', 'dev'), value: true },
  { name: 'a number', input: file(5, 'dev'), value: false, problems: [`${FILE}: "dev": expected a network device name, got 5`] },
  { name: 'an object', input: file({ a: 1 }, 'dev'), value: false, problems: [`${FILE}: "dev": expected a network device name, got {"a":1}`] }
], (raw, problems) => expectString(raw, 'a network device name', problems))

const CIDR = 'e.g. 10.0.0.2/24'
table<string, unknown>('checkCidr', [
  { name: 'a /24 host', input: '10.0.0.2/24', value: { ip: '10.0.0.2', ipInt: 0x0a000002, prefix: 24 } },
  { name: 'the largest network, /8', input: '10.1.2.3/8', value: { ip: '10.1.2.3', ipInt: 0x0a010203, prefix: 8 } },
  { name: 'the smallest network, /30', input: '192.168.1.254/30', value: { ip: '192.168.1.254', ipInt: 0xc0a801fe, prefix: 30 } },
  { name: 'no prefix', input: '10.0.0.1', value: null, problems: [`--tun: expected an address with its network prefix length, ${CIDR}, got "10.0.0.1" (no /prefix)`] },
  { name: 'not an address at all', input: 'vpn', value: null, problems: [`--tun: expected an IPv4 address with prefix length, ${CIDR}, got "vpn"`] },
  { name: 'an octet above 255', input: '10.0.0.256/24', value: null, problems: [`--tun: expected an IPv4 address with prefix length, ${CIDR}, got "10.0.0.256/24" ("10.0.0.256" is not an IPv4 address)`] },
  { name: 'a leading zero (octal in some parsers)', input: '10.0.0.01/24', value: null, problems: [`--tun: expected an IPv4 address with prefix length, ${CIDR}, got "10.0.0.01/24" ("10.0.0.01" is not an IPv4 address)`] },
  { name: 'three octets', input: '10.0.1/24', value: null, problems: [`--tun: expected an IPv4 address with prefix length, ${CIDR}, got "10.0.1/24" ("10.0.1" is not an IPv4 address)`] },
  { name: 'a prefix that is not a number', input: '10.0.0.1/x', value: null, problems: [`--tun: expected a prefix length 8..30 after "/", ${CIDR}, got "10.0.0.1/x"`] },
  { name: 'an empty prefix', input: '10.0.0.1/', value: null, problems: [`--tun: expected a prefix length 8..30 after "/", ${CIDR}, got "10.0.0.1/"`] },
  { name: 'a prefix of three digits', input: '10.0.0.1/024', value: null, problems: [`--tun: expected a prefix length 8..30 after "/", ${CIDR}, got "10.0.0.1/024"`] },
  { name: 'prefix /31', input: '10.0.0.1/31', value: null, problems: ['--tun: expected a prefix length 8..30, got /31 in "10.0.0.1/31" (a /31 or /32 network has no room for a server and its clients)'] },
  { name: 'prefix /7', input: '10.0.0.1/7', value: null, problems: ['--tun: expected a prefix length 8..30, got /7 in "10.0.0.1/7" (a network larger than /8 would swallow routes to unrelated addresses)'] },
  { name: 'loopback', input: '127.0.0.2/8', value: null, problems: ['--tun: expected a unicast address usable on a tunnel, got "127.0.0.2/8" (loopback); private ranges such as 10.0.0.0/8 are the usual choice'] },
  { name: '"this network"', input: '0.1.2.3/8', value: null, problems: ['--tun: expected a unicast address usable on a tunnel, got "0.1.2.3/8" (0.0.0.0/8 is "this network"); private ranges such as 10.0.0.0/8 are the usual choice'] },
  { name: 'multicast', input: '224.0.0.1/8', value: null, problems: ['--tun: expected a unicast address usable on a tunnel, got "224.0.0.1/8" (multicast or reserved); private ranges such as 10.0.0.0/8 are the usual choice'] },
  { name: 'the network address', input: '10.0.0.0/24', value: null, problems: ['--tun: expected a host address, got the network address 10.0.0.0 of 10.0.0.0/24; use e.g. 10.0.0.1/24'] },
  { name: 'the broadcast address', input: '10.0.3.255/22', value: null, problems: ['--tun: expected a host address, got the broadcast address 10.0.3.255 of 10.0.0.0/22; use e.g. 10.0.3.254/22'] }
], (value, problems) => checkCidr(value, '--tun', problems))

const LISTEN = 'e.g. 0.0.0.0:9000 or [::]:9000'
const REMOTE = 'e.g. 203.0.113.5:9000, [2001:db8::1]:9000 or vpn.example.com:9000'
type HostPortInput = { raw: Raw, role: 'listen' | 'remote', minPort: number }
const listen = (value: unknown, minPort = 1): HostPortInput => ({ raw: flag(value, '--listen'), role: 'listen', minPort })
const remote = (value: unknown): HostPortInput => ({ raw: flag(value, '-r'), role: 'remote', minPort: 1 })
table<HostPortInput, unknown>('checkHostPort', [
  { name: 'listen: address and port', input: listen('192.0.2.1:7000'), value: { host: '192.0.2.1', port: 7000 } },
  { name: 'listen: :PORT means all addresses (both families)', input: listen(':9100'), value: { host: '::', port: 9100 } },
  { name: 'listen: [::]:PORT', input: listen('[::]:9000'), value: { host: '::', port: 9000 } },
  { name: 'listen: one IPv6 address', input: listen('[2001:db8::5]:9000'), value: { host: '2001:db8::5', port: 9000 } },
  { name: 'remote: an IPv6 address in brackets', input: remote('[2001:db8::1]:9000'), value: { host: '2001:db8::1', port: 9000 } },
  { name: 'remote: the unspecified IPv6 address', input: remote('[::]:9000'), value: null, problems: [`-r: expected the server's unicast IPv6 address, ${REMOTE}, got "::" in "[::]:9000"`] },
  { name: 'remote: IPv6 multicast', input: remote('[ff02::1]:9000'), value: null, problems: [`-r: expected the server's unicast IPv6 address, ${REMOTE}, got "ff02::1" in "[ff02::1]:9000"`] },
  { name: 'remote: brackets without an IPv6 address', input: remote('[vpn.example.com]:9000'), value: null, problems: [`-r: expected [IPV6]:PORT, ${REMOTE}, got "[vpn.example.com]:9000"`] },
  { name: 'remote: brackets without a port', input: remote('[2001:db8::1]'), value: null, problems: [`-r: expected [IPV6]:PORT, ${REMOTE}, got "[2001:db8::1]"`] },
  { name: 'remote: a zone index', input: remote('[fe80::1%eth0]:9000'), value: null, problems: [`-r: expected [IPV6]:PORT, ${REMOTE}, got "[fe80::1%eth0]:9000"`] },
  { name: 'remote: 240.0.0.0/4 (endpoint handles)', input: remote('254.0.0.1:9000'), value: null, problems: [`-r: "254.0.0.1" is in 240.0.0.0/4, which is never a unicast address, ${REMOTE}`] },
  { name: 'listen: a client may take port 0', input: listen('0.0.0.0:0', 0), value: { host: '0.0.0.0', port: 0 } },
  { name: 'remote: an address', input: remote('203.0.113.5:9000'), value: { host: '203.0.113.5', port: 9000 } },
  { name: 'remote: a host name', input: remote('vpn.example.com:443'), value: { host: 'vpn.example.com', port: 443 } },
  { name: 'remote: a fully qualified name with its dot', input: remote('vpn.example.com.:65535'), value: { host: 'vpn.example.com.', port: 65535 } },
  { name: 'not a string', input: { raw: file(9000, 'remote'), role: 'remote', minPort: 1 }, value: null, problems: [`${FILE}: "remote": expected HOST:PORT as a string, ${REMOTE}, got 9000`] },
  { name: 'IPv6 without brackets', input: listen('::1:9000'), value: null, problems: [`--listen: expected HOST:PORT with an IPv6 address in brackets, ${LISTEN}, got "::1:9000"`] },
  { name: 'no port', input: remote('1.2.3.4'), value: null, problems: [`-r: expected HOST:PORT, ${REMOTE}, got "1.2.3.4" (no port)`] },
  { name: 'remote: no host', input: remote(':9000'), value: null, problems: [`-r: expected HOST:PORT with a host, ${REMOTE}, got ":9000"`] },
  { name: 'listen: a host name', input: listen('localhost:9000'), value: null, problems: [`--listen: expected a local IPv4 address or a bracketed IPv6 one to bind (0.0.0.0 or [::] for all), ${LISTEN}, got "localhost" in "localhost:9000"`] },
  { name: 'remote: a bad host name', input: remote('bad_host!:9000'), value: null, problems: [`-r: expected an IPv4 address or host name, ${REMOTE}, got "bad_host!" in "bad_host!:9000"`] },
  { name: 'remote: digits that are no address', input: remote('999.1.1.1:5'), value: null, problems: [`-r: expected an IPv4 address or host name, ${REMOTE}, got "999.1.1.1" in "999.1.1.1:5"`] },
  { name: 'port out of range', input: listen('0.0.0.0:70000'), value: null, problems: [`--listen: expected a port 1..65535, got "70000" in "0.0.0.0:70000"`] },
  { name: 'server port 0', input: listen('0.0.0.0:0'), value: null, problems: [`--listen: expected a port 1..65535, got "0" in "0.0.0.0:0"`] },
  { name: 'client port not a number', input: listen('0.0.0.0:x', 0), value: null, problems: [`--listen: expected a port 0..65535 (0: any free port), got "x" in "0.0.0.0:x"`] },
  { name: 'an empty port', input: remote('1.2.3.4:'), value: null, problems: [`-r: expected a port 1..65535, got "" in "1.2.3.4:"`] },
  {
    name: 'bad host and bad port: both reported',
    input: remote('bad_host!:0'),
    value: null,
    problems: [`-r: expected an IPv4 address or host name, ${REMOTE}, got "bad_host!" in "bad_host!:0"`, '-r: expected a port 1..65535, got "0" in "bad_host!:0"']
  }
], ({ raw, role, minPort }, problems) => checkHostPort(raw, { role, minPort }, problems))

t.test('formatHostPort puts an IPv6 host in brackets', async t => {
  t.equal(formatHostPort('::', 9000), '[::]:9000')
  t.equal(formatHostPort('2001:db8::1', 443), '[2001:db8::1]:443')
  t.equal(formatHostPort('192.0.2.1', 9000), '192.0.2.1:9000')
  t.equal(formatHostPort('vpn.example.com', 9000), 'vpn.example.com:9000')
})

const DEV = '--dev: expected a network device name of 1..15 characters from A-Z a-z 0-9 _ - . (Linux limit), got'
table<string, string>('checkDev', [
  { name: 'a short name', input: 'lwt0', value: 'lwt0' },
  { name: 'dots, dashes, underscores', input: 'wg_x-1.2', value: 'wg_x-1.2' },
  { name: '15 characters (IFNAMSIZ - 1)', input: 'a'.repeat(15), value: 'a'.repeat(15) },
  { name: '16 characters', input: 'a'.repeat(16), value: null, problems: [`${DEV} "${'a'.repeat(16)}"`] },
  { name: 'a slash', input: 'a/b', value: null, problems: [`${DEV} "a/b"`] },
  { name: 'a leading dot', input: '.x', value: null, problems: [`${DEV} ".x"`] },
  { name: 'empty', input: '', value: null, problems: [`${DEV} ""`] }
], (value, problems) => checkDev(value, '--dev', problems))

const longAbs = '/' + 'x'.repeat(107)
table<string, string>('checkControl (cwd /srv/lwt)', [
  { name: 'an absolute path', input: '/tmp/x.sock', value: '/tmp/x.sock' },
  { name: 'a relative path resolves against cwd', input: 'run/ctl.sock', value: '/srv/lwt/run/ctl.sock' },
  { name: '107 bytes fit', input: '/' + 'x'.repeat(106), value: '/' + 'x'.repeat(106) },
  { name: 'empty', input: '', value: null, problems: ['--control: expected a unix socket path (default /run/lightweight-tunnel/<dev>.<netns>.sock), got an empty string'] },
  { name: '108 bytes do not', input: longAbs, value: null, problems: [`--control: expected a socket path of at most 107 bytes (the unix socket limit), got 108 bytes: "${longAbs}"`] },
  { name: 'the resolved length counts', input: 'x'.repeat(100), value: null, problems: [`--control: expected a socket path of at most 107 bytes (the unix socket limit), got 109 bytes: "/srv/lwt/${'x'.repeat(100)}"`] }
], (value, problems) => checkControl(value, '--control', '/srv/lwt', problems))
