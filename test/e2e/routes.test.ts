/**
 * Subnet routes and client isolation with real daemons, TUN devices and
 * kernel routes (issue 11 items 3, 4, 6). A LAN namespace (192.168.50.0/24,
 * host .10) hangs behind client bob, who forwards and advertises it:
 *
 *   alice ── tunnel ── server ── tunnel ── bob ── veth ── lan host 192.168.50.10
 *
 * bob also serves fd50::/64 on that LAN, and alice fd77::/64 (its own IPv6
 * address on lwt0: an IPv6 network behind a node, both ways).
 * Not approved: pending on the server, no route on alice. Approved by a
 * SIGHUP: alice installs it, pings the LAN host (IPv4 and IPv6) and moves
 * TCP bytes to it;
 * SIGTERM removes the route; kill -9 then a restart installs it cleanly.
 * Then the server restarts with --client-isolation: alice and bob reach the
 * server's tunnel address, never each other.
 */
import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { createTopology, type Topology } from '../../src/lab/topology.js'
import { addAddress, addVeth, createNs, deleteNs, enableForwarding, setDefaultRoute, sysctl, sysctls, LAB_PREFIX } from '../../src/lab/netns.js'
import { runIn, waitFor } from '../../src/lab/exec.js'
import { ping, startClient, startServer, status, tcpTransfer, waitPing, waitReady, type Daemon } from '../helpers/daemon.js'

let topo: Topology
let lanNs = ''
let server: Daemon
let alice: Daemon
let bob: Daemon
const dir = mkdtempSync(join(tmpdir(), 'lwt-routes-'))
const serverConfig = join(dir, 'server.json')
const ALICE = ['--no-p2p', '--advertise-routes', 'fd77::/64']
const writeServerConfig = (approve: unknown): void => { writeFileSync(serverConfig, JSON.stringify({ approve_routes: approve }), { mode: 0o600 }) }

t.before(async () => {
  topo = await createTopology({ clients: [{ name: 'alice', nat: 'none' }, { name: 'bob', nat: 'none' }] })
  lanNs = await createNs(`${LAB_PREFIX}${topo.id}-lan`)
  const bobNs = topo.client('bob').ns
  // The lab turns IPv6 off in its namespaces; these three carry it (devices created from here on inherit "default").
  for (const ns of [bobNs, topo.client('alice').ns, lanNs]) await sysctls(ns, { 'net.ipv6.conf.all.disable_ipv6': 0, 'net.ipv6.conf.default.disable_ipv6': 0 })
  await addVeth(bobNs, `lw${topo.id}l0`, lanNs, `lw${topo.id}l1`)
  await addAddress(bobNs, `lw${topo.id}l0`, '192.168.50.1/24')
  await addAddress(lanNs, `lw${topo.id}l1`, '192.168.50.10/24')
  await setDefaultRoute(lanNs, '192.168.50.1')
  await runIn(bobNs, 'ip', ['-6', 'addr', 'add', 'fd50::1/64', 'dev', `lw${topo.id}l0`, 'nodad'])
  await runIn(lanNs, 'ip', ['-6', 'addr', 'add', 'fd50::10/64', 'dev', `lw${topo.id}l1`, 'nodad'])
  await runIn(lanNs, 'ip', ['-6', 'route', 'add', 'default', 'via', 'fd50::1'])
  await enableForwarding(bobNs)
  await sysctl(bobNs, 'net.ipv6.conf.all.forwarding', 1)
  writeServerConfig({})
  server = startServer(topo.serverNs, topo.id, { extra: ['-c', serverConfig] })
  alice = startClient(topo.client('alice').ns, topo.id, 'alice', '10.77.0.2/24', topo.serverWanIp, { extra: ALICE })
  bob = startClient(bobNs, topo.id, 'bob', '10.77.0.3/24', topo.serverWanIp, { extra: ['--no-p2p', '--advertise-routes', '192.168.50.0/24,fd50::/64'] })
})
t.teardown(async () => {
  await topo?.destroy()
  if (lanNs !== '') await deleteNs(lanNs).catch(() => {})
  rmSync(dir, { recursive: true, force: true })
})

/** alice's kernel route to the LAN ('' when none). */
async function lanRoute (ns: string): Promise<string> {
  return (await runIn(ns, 'ip', ['-4', 'route', 'show', 'exact', '192.168.50.0/24'])).stdout.trim()
}

t.test('not approved: pending on the server (with the reason), no route on alice', async t => {
  await waitReady(alice, 1)
  await waitReady(bob, 1)
  await waitReady(server, 2)
  const ss = await status(server)
  const b = ss.peers.find(p => p.tunnelIp === '10.77.0.3')!
  t.same(b.routes, [
    { prefix: '192.168.50.0/24', state: 'pending', reason: 'not approved: add 10.77.0.3=192.168.50.0/24 to the server\'s --approve-routes (or "all")' },
    { prefix: 'fd50::/64', state: 'pending', reason: 'not approved: add 10.77.0.3=fd50::/64 to the server\'s --approve-routes (or "all")' }
  ])
  t.equal(ss.counters.routesPending, 3)
  t.same((await status(bob)).routes?.advertised, ['192.168.50.0/24', 'fd50::/64'])
  t.equal(await lanRoute(topo.client('alice').ns), '', 'no route installed')
  t.same((await status(alice)).routes?.kernel, [])
  t.equal((await ping(topo.client('alice').ns, '192.168.50.10', 1)).received, 0)
  t.match(alice.proc.output(), /advertises IPv6 routes but IPv6 forwarding is off.*sysctl -w net\.ipv6\.conf\.all\.forwarding=1/, 'alice (not forwarding) is warned at start')
  t.notMatch(bob.proc.output(), /forwarding is off/, 'bob (forwarding) is not')
})

t.test('approved by SIGHUP: alice installs the route, reaches the LAN host (ping, TCP), and bob', async t => {
  writeServerConfig({ '10.77.0.3': ['192.168.50.0/24', 'fd50::/64'], '10.77.0.2': 'all' })
  process.kill(server.proc.pid!, 'SIGHUP')
  const aliceNs = topo.client('alice').ns
  await runIn(aliceNs, 'ip', ['-6', 'addr', 'add', 'fd77::2/64', 'dev', 'lwt0', 'nodad'])
  await waitFor(async () => (await lanRoute(aliceNs)).includes('dev lwt0'), { timeoutMs: 10_000, intervalMs: 200, what: 'the LAN route on alice' })
  await waitFor(async () => (await status(bob)).routes?.kernel.length === 1, { timeoutMs: 10_000, intervalMs: 200, what: 'alice\'s route on bob' })
  const sa = await status(alice)
  t.same(sa.routes?.kernel, [{ prefix: '192.168.50.0/24', via: '10.77.0.3', state: 'installed', reason: null }, { prefix: 'fd50::/64', via: '10.77.0.3', state: 'installed', reason: null }])
  t.same((await status(bob)).routes?.kernel, [{ prefix: 'fd77::/64', via: '10.77.0.2', state: 'installed', reason: null }])
  t.match((await runIn(aliceNs, 'ip', ['-6', 'route', 'show', 'exact', 'fd50::/64'])).stdout, /fd50::\/64 dev lwt0/)
  t.match((await status(server)).counters, { routesApproved: 3, routesPending: 0 })
  await waitPing(aliceNs, '192.168.50.10')
  t.equal((await ping(aliceNs, '192.168.50.10', 3)).received, 3, 'alice → the LAN host behind bob')
  const r = await tcpTransfer(aliceNs, lanNs, '192.168.50.10', 1024 * 1024, 5301)
  t.equal(r.received.bytes, 1024 * 1024)
  t.equal(r.received.sha256, r.sent.sha256, 'same bytes')
  t.equal((await ping(aliceNs, '10.77.0.3', 2)).received, 2, 'isolation off: alice reaches bob')
  await waitPing(aliceNs, 'fd50::10')
  t.equal((await ping(aliceNs, 'fd50::10', 3)).received, 3, 'IPv6: alice (fd77::2, its own route) → the LAN host fd50::10 behind bob, and back')
})

t.test('kill -9 then a restart installs cleanly; SIGTERM removes the route', async t => {
  const aliceNs = topo.client('alice').ns
  await alice.proc.stop('SIGKILL')
  await waitFor(async () => (await lanRoute(aliceNs)) === '', { timeoutMs: 5000, intervalMs: 100, what: 'the route to go with the device' })
  alice = startClient(aliceNs, topo.id, 'alice', '10.77.0.2/24', topo.serverWanIp, { extra: ALICE, stateDir: alice.stateDir })
  await waitFor(async () => (await lanRoute(aliceNs)).includes('dev lwt0'), { timeoutMs: 15_000, intervalMs: 200, what: 'the LAN route after the restart' })
  await waitPing(aliceNs, '192.168.50.10')
  t.notMatch(alice.proc.output(), /File exists|could not be installed|not installed/, 'no error installing it')
  await alice.proc.stop('SIGTERM')
  t.match(alice.proc.output(), /route 192\.168\.50\.0\/24 via 10\.77\.0\.3 removed from lwt0/)
  t.match(alice.proc.output(), /route fd50::\/64 via 10\.77\.0\.3 removed from lwt0/)
  t.equal(await lanRoute(aliceNs), '', 'gone')
})

t.test('--client-isolation: both reach the server, never each other', async t => {
  if (alice.proc.exitInfo === null) await alice.proc.stop('SIGTERM')
  await server.proc.stop('SIGTERM')
  server = startServer(topo.serverNs, topo.id, { extra: ['-c', serverConfig, '--client-isolation'], stateDir: server.stateDir })
  const aliceNs = topo.client('alice').ns
  alice = startClient(aliceNs, topo.id, 'alice', '10.77.0.2/24', topo.serverWanIp, { extra: ALICE, stateDir: alice.stateDir })
  await waitReady(server, 2, 30_000)
  await waitReady(alice, 0)
  const ss = await status(server)
  t.equal(ss.routes?.clientIsolation, true)
  t.equal((await ping(aliceNs, '10.77.0.1', 2)).received, 2, 'alice → server')
  t.equal((await ping(topo.client('bob').ns, '10.77.0.1', 2)).received, 2, 'bob → server')
  t.equal((await ping(topo.serverNs, '10.77.0.2', 2)).received, 2, 'server → alice')
  t.equal((await ping(aliceNs, '10.77.0.3', 2)).received, 0, 'alice cannot reach bob')
  const sa = await status(alice)
  t.same(sa.peers.map(p => p.tunnelIp), ['10.77.0.1'], 'alice knows only the server')
  t.same(sa.routes?.kernel, [], 'and no route behind bob')
  t.equal(await lanRoute(aliceNs), '')
})
