/**
 * config/tun-address.ts: the `tun` setting with an optional IPv6 address.
 * One t.test per named case (the parsed addresses, or exactly the problems
 * pushed), then the whole path through parseCommand: a flag, a file string,
 * a file list under our key and under the Go key "tunnel_addr".
 */
import t from 'tap'
import { chmodSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { readTunAddresses } from '../../src/config/tun-address.js'
import { formatPrefix } from '../../src/wire/prefix.js'
import { parseCommand } from '../../src/cli/args.js'
import type { Raw } from '../../src/config/validate.js'
import type { Mode } from '../../src/config/schema.js'

const flag = (value: unknown): Raw => ({ value, source: '--tun', from: 'flag', goName: false })

interface Case { name: string, value: unknown, mode?: Mode, tun?: string, tun6?: string | null, problems?: string[] }

const cases: Case[] = [
  { name: 'IPv4 only', value: '10.0.0.2/24', tun: '10.0.0.2/24', tun6: null },
  { name: 'IPv4 and IPv6', value: '10.0.0.2/24,fd00:77::2/64', tun: '10.0.0.2/24', tun6: 'fd00:77::2/64' },
  { name: 'IPv6 first, spaces around the comma', value: 'fd00:77::2/64 , 10.0.0.2/24', tun: '10.0.0.2/24', tun6: 'fd00:77::2/64' },
  { name: 'a JSON list', value: ['10.0.0.1/24', 'fd00:77::1/64'], mode: 'server', tun: '10.0.0.1/24', tun6: 'fd00:77::1/64' },
  { name: 'a client may have a /128', value: '10.0.0.2/24,fd00:77::2/128', tun: '10.0.0.2/24', tun6: 'fd00:77::2/128' },
  {
    name: 'two IPv6 addresses',
    value: '10.0.0.2/24,fd00:77::2/64,fd00:78::2/64',
    problems: ['--tun: two IPv6 addresses (fd00:77::2/64, fd00:78::2/64): a node has at most one IPv6 tunnel address; keep one']
  },
  {
    name: 'two IPv4 addresses',
    value: '10.0.0.2/24,10.0.1.2/24',
    problems: ['--tun: two IPv4 addresses (10.0.0.2/24, 10.0.1.2/24): a node has one IPv4 tunnel address; keep one']
  },
  {
    name: 'IPv6 only',
    value: 'fd00:77::2/64',
    problems: ['--tun: no IPv4 address in "fd00:77::2/64": every node needs an IPv4 tunnel address (IPv6-only nodes are not supported yet); add one, e.g. 10.0.0.2/24,fd00:77::2/64']
  },
  {
    name: 'link-local',
    value: '10.0.0.2/24,fe80::2/64',
    problems: ['--tun: "fe80::2/64" cannot be a tunnel address: it is link-local (fe80::/10): the kernel gives every device one of its own; use a unique local address such as fd00:77::2/64']
  },
  {
    name: 'multicast',
    value: '10.0.0.2/24,ff02::2/64',
    problems: ['--tun: "ff02::2/64" cannot be a tunnel address: it is multicast (ff00::/8); use a unique local address such as fd00:77::2/64']
  },
  {
    name: 'the unspecified address',
    value: '10.0.0.2/24,::/128',
    problems: ['--tun: "::/128" cannot be a tunnel address: it is the unspecified address ::; use a unique local address such as fd00:77::2/64']
  },
  {
    name: 'a server with /128',
    value: '10.0.0.1/24,fd00:77::1/128',
    mode: 'server',
    problems: ['--tun: the server\'s IPv6 address "fd00:77::1/128" has prefix /128, which leaves no room for clients; give the network\'s prefix length, e.g. fd00:77::1/64']
  },
  {
    name: 'the subnet-router anycast address',
    value: '10.0.0.2/24,fd00:77::/64',
    problems: ['--tun: expected a host address, got "fd00:77::/64", the subnet-router anycast address of fd00:77::/64 (all host bits zero); use e.g. fd00:77::1/64']
  },
  {
    name: 'a malformed IPv6 address',
    value: '10.0.0.2/24,fd00:77:::2/64',
    problems: ['--tun: expected an IPv6 address with prefix length, e.g. fd00:77::2/64, got "fd00:77:::2/64" (invalid IPv6 address: "fd00:77:::2"; write it as hex groups separated by colons, e.g. fd00:77::2)']
  },
  {
    name: 'no IPv6 prefix length',
    value: '10.0.0.2/24,fd00:77::2',
    problems: ['--tun: expected an IPv6 address with prefix length, e.g. fd00:77::2/64, got "fd00:77::2" (invalid prefix: "fd00:77::2"; write address and prefix length, e.g. 192.168.50.0/24 or fd50::/64)']
  },
  {
    name: 'too wide a network',
    value: '10.0.0.2/24,fd00:77::2/8',
    problems: ['--tun: expected an IPv6 prefix length 16..128, got /8 in "fd00:77::2/8" (a network larger than /16 would swallow routes to unrelated addresses); /64 is the usual choice']
  },
  {
    name: 'an empty part',
    value: '10.0.0.2/24,',
    problems: ['--tun: an empty address in "10.0.0.2/24,"; write one IPv4 CIDR and optionally one IPv6 CIDR separated by a comma, e.g. 10.0.0.2/24,fd00:77::2/64']
  },
  {
    name: 'not a string or a list',
    value: 42,
    problems: ['--tun: expected the tunnel address as CIDR, e.g. 10.0.0.2/24,fd00:77::2/64 (or a list of one IPv4 and one IPv6 CIDR), got 42']
  }
]

for (const c of cases) {
  t.test(c.name, async t => {
    const problems: string[] = []
    const r = readTunAddresses(flag(c.value), c.mode ?? 'client', problems)
    t.same(problems, c.problems ?? [], 'problems')
    if (c.problems !== undefined) { t.equal(r.tun6, null); return }
    t.equal(r.tun === null ? null : `${r.tun.ip}/${r.tun.prefix}`, c.tun)
    t.equal(r.tun6 === null ? null : formatPrefix(r.tun6), c.tun6)
  })
}

t.test('through parseCommand: flag, file string, file list, Go key', async t => {
  const dir = t.testdir({})
  const ENV = { netnsId: '4026531840', cwd: dir, lwtKey: 'a-long-enough-network-key' }
  const tun6Of = (argv: string[]): string | null => {
    const cmd = parseCommand(argv, ENV)
    if (cmd.kind !== 'run') throw new Error(`expected run, got ${cmd.kind}: ${JSON.stringify(cmd)}`)
    return cmd.config.tun6 === null ? null : formatPrefix(cmd.config.tun6)
  }
  t.equal(tun6Of(['client', '-r', '203.0.113.5:9000', '--tun', '10.0.0.2/24,fd00:77::2/64']), 'fd00:77::2/64', 'flag')
  t.equal(tun6Of(['client', '-r', '203.0.113.5:9000', '--tun', '10.0.0.2/24']), null, 'IPv4 only')
  const file = (name: string, json: unknown): string => {
    const p = join(dir, name)
    writeFileSync(p, JSON.stringify(json))
    chmodSync(p, 0o600)
    return p
  }
  t.equal(tun6Of(['-c', file('a.json', { mode: 'server', tun: '10.0.0.1/24,fd00:77::1/64' })]), 'fd00:77::1/64', 'file string')
  t.equal(tun6Of(['-c', file('b.json', { mode: 'server', tun: ['10.0.0.1/24', 'fd00:77::1/64'] })]), 'fd00:77::1/64', 'file list')
  t.equal(tun6Of(['-c', file('c.json', { mode: 'client', remote_addr: '203.0.113.5:9000', tunnel_addr: ['10.0.0.2/24', 'fd00:77::2/64'] })]), 'fd00:77::2/64', 'Go key')
  t.throws(() => parseCommand(['server', '--tun', '10.0.0.1/24,fd00:77::1/128'], ENV), /leaves no room for clients/, 'a problem is a usage error')
})

t.test('an IPv6 address needs an MTU of 1280 or more', async t => {
  const ENV = { netnsId: '1', cwd: '/', lwtKey: 'a-long-enough-network-key' }
  t.throws(() => parseCommand(['client', '-r', '203.0.113.5:9000', '--tun', '10.0.0.2/24,fd00:77::2/64', '--mtu', '1200'], ENV), /the MTU 1200 is below 1280, the least IPv6 allows/)
  const ok = parseCommand(['client', '-r', '203.0.113.5:9000', '--tun', '10.0.0.2/24', '--mtu', '1200'], ENV)
  t.equal(ok.kind, 'run', 'IPv4 only: 1200 is fine')
})
