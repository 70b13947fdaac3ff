/**
 * config/routes.ts through the command line and files: --advertise-routes
 * (Go -routes / "routes"), --approve-routes in each of its forms,
 * --accept-routes / --no-accept-routes, --client-isolation; every bad value
 * gives one problem naming the flag or key, the value and the fix.
 */
import t from 'tap'
import { chmodSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseCommand, UsageError } from '../../src/cli/args.js'
import { approvedFor } from '../../src/config/routes.js'
import type { Config } from '../../src/config/schema.js'
import { ipToInt } from '../../src/wire/addr.js'
import { formatPrefix } from '../../src/wire/prefix.js'

const ENV = { netnsId: '4026531840', cwd: '/srv/lwt', lwtKey: 'abcdefghijklmnop' }
const SERVER = ['server', '-t', '10.0.0.1/24']
const CLIENT = ['client', '-r', '192.0.2.1:9000', '-t', '10.0.0.2/24']

function load (argv: string[]): Config {
  const cmd = parseCommand(argv, ENV)
  if (cmd.kind !== 'run') throw new Error(`expected run, got ${cmd.kind}`)
  return cmd.config
}

function problemsOf (argv: string[]): string[] {
  try {
    parseCommand(argv, ENV)
  } catch (err) {
    if (err instanceof UsageError) return [...err.problems]
    throw err
  }
  return []
}

t.test('defaults: nothing advertised, nothing approved, routes accepted, no isolation', async t => {
  const c = load(CLIENT)
  t.same(c.advertiseRoutes, [])
  t.equal(c.acceptRoutes, true)
  const s = load(SERVER)
  t.same(s.approveRoutes, {})
  t.equal(s.clientIsolation, false)
})

t.test('--advertise-routes and Go -routes: canonical text, both families', async t => {
  t.same(load([...CLIENT, '--advertise-routes', '192.168.50.0/24, FD50:0::/64']).advertiseRoutes, ['192.168.50.0/24', 'fd50::/64'])
  t.same(load([...CLIENT, '-routes', '192.168.50.0/24']).advertiseRoutes, ['192.168.50.0/24'])
  t.same(load([...SERVER, '--advertise-routes', '172.16.0.0/12']).advertiseRoutes, ['172.16.0.0/12'])
  t.equal(load([...CLIENT, '--no-accept-routes']).acceptRoutes, false)
  t.equal(load([...SERVER, '--client-isolation']).clientIsolation, true)
  t.equal(load([...SERVER, '-client-isolation=false']).clientIsolation, false)
})

t.test('bad routes: one problem each, naming the value and the fix', async t => {
  const cases: Array<[string, RegExp]> = [
    ['192.168.50.0', /--advertise-routes: invalid prefix: "192\.168\.50\.0"; write address and prefix length/],
    ['192.168.50.1/24', /--advertise-routes: 192\.168\.50\.1\/24 has host bits set; the network is 192\.168\.50\.0\/24/],
    ['192.168.50.0/33', /invalid prefix length/],
    ['10.0.0.0/16', /the route 10\.0\.0\.0\/16 covers the tunnel network 10\.0\.0\.0\/24/],
    ['10.0.0.128/25', /the route 10\.0\.0\.128\/25 lies inside the tunnel network 10\.0\.0\.0\/24/],
    ['192.168.50.0/24,192.168.50.0/24', /the route 192\.168\.50\.0\/24 is given twice; give it once/],
    ['192.168.0.0/16,192.168.50.0/24', /the routes 192\.168\.0\.0\/16 and 192\.168\.50\.0\/24 overlap/],
    ['fd50::1/64', /fd50::1\/64 has host bits set; the network is fd50::\/64/]
  ]
  for (const [value, re] of cases) {
    const p = problemsOf([...CLIENT, '--advertise-routes', value])
    t.equal(p.length, 1, value)
    t.match(p[0], re, value)
  }
  const many = Array.from({ length: 17 }, (_, i) => `192.168.${i}.0/24`).join(',')
  t.match(problemsOf([...CLIENT, '--advertise-routes', many]), [/17 routes, at most 16/])
})

t.test('--approve-routes: all, NODE=CIDR+CIDR, NODE=all, and the file forms', async t => {
  t.equal(load([...SERVER, '--approve-routes', 'all']).approveRoutes, 'all')
  const a = load([...SERVER, '--approve-routes', '10.0.0.2=192.168.50.0/24+fd50::/64,10.0.0.3=all']).approveRoutes
  t.same(a, { '10.0.0.2': ['192.168.50.0/24', 'fd50::/64'], '10.0.0.3': 'all' })
  t.same((approvedFor(a, ipToInt('10.0.0.2')) as Array<Parameters<typeof formatPrefix>[0]>).map(formatPrefix), ['192.168.50.0/24', 'fd50::/64'])
  t.equal(approvedFor(a, ipToInt('10.0.0.3')), 'all')
  t.same(approvedFor(a, ipToInt('10.0.0.4')), [])
  const dir = t.testdir({})
  const file = (name: string, o: unknown): string => { const p = join(dir, name); writeFileSync(p, JSON.stringify(o)); chmodSync(p, 0o600); return p }
  const base = { mode: 'server', tun: '10.0.0.1/24', key: 'abcdefghijklmnop' }
  t.same(load(['-c', file('obj.json', { ...base, approve_routes: { '10.0.0.2': ['192.168.50.0/24'], '10.0.0.3': 'all' } })]).approveRoutes,
    { '10.0.0.2': ['192.168.50.0/24'], '10.0.0.3': 'all' })
  t.same(load(['-c', file('list.json', { ...base, approveRoutes: ['10.0.0.2=192.168.50.0/24+192.168.51.0/24'] })]).approveRoutes,
    { '10.0.0.2': ['192.168.50.0/24', '192.168.51.0/24'] })
  t.same(load(['-c', file('adv.json', { ...base, advertise_routes: ['172.16.0.0/12'] })]).advertiseRoutes, ['172.16.0.0/12'])
})

t.test('bad --approve-routes and settings of the other mode', async t => {
  const cases: Array<[string[], RegExp]> = [
    [[...SERVER, '--approve-routes', '192.168.50.0/24'], /"192\.168\.50\.0\/24" names no node; expected "all", or NODE=CIDR/],
    [[...SERVER, '--approve-routes', 'node1=192.168.50.0/24'], /"node1" is not a node's tunnel address/],
    [[...SERVER, '--approve-routes', '10.0.1.2=192.168.50.0/24'], /10\.0\.1\.2 is not a client address of the tunnel network 10\.0\.0\.0\/24/],
    [[...SERVER, '--approve-routes', '10.0.0.1=192.168.50.0/24'], /10\.0\.0\.1 is not a client address/],
    [[...SERVER, '--approve-routes', '10.0.0.2=192.168.50.0/24,10.0.0.2=192.168.51.0/24'], /the node 10\.0\.0\.2 is named twice/],
    [[...SERVER, '--approve-routes', '10.0.0.2=192.168.50.7/24'], /\(node 10\.0\.0\.2\): 192\.168\.50\.7\/24 has host bits set/],
    [[...CLIENT, '--approve-routes', 'all'], /--approve-routes: only for server mode/],
    [[...CLIENT, '--client-isolation'], /--client-isolation: only for server mode/],
    [[...SERVER, '--no-accept-routes'], /--no-accept-routes: only for client mode/]
  ]
  for (const [argv, re] of cases) {
    const p = problemsOf(argv)
    t.equal(p.length, 1, argv.join(' '))
    t.match(p[0], re, argv.join(' '))
  }
})
