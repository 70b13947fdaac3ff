/**
 * The whole tunnel in network namespaces with real TUN devices and nftables
 * NATs: a server on the "internet" and two clients, each behind its own
 * port-restricted cone NAT that drops unsolicited inbound traffic.
 * Relay ping, a TCP transfer with verified bytes, status, server restart
 * with automatic recovery, and clean shutdown.
 */
import t from 'tap'
import { existsSync } from 'node:fs'
import { createTopology, type Topology } from '../../src/lab/topology.js'
import { linkStats } from '../../src/lab/netns.js'
import { sleep } from '../../src/lab/exec.js'
import { deviceExists, ping, startClient, startServer, status, tcpTransfer, waitPing, waitReady, type Daemon } from '../helpers/daemon.js'

let topo: Topology
let server: Daemon
let alice: Daemon
let bob: Daemon

t.before(async () => {
  topo = await createTopology({ clients: [{ name: 'alice', nat: 'port-restricted' }, { name: 'bob', nat: 'port-restricted' }] })
  server = startServer(topo.serverNs, topo.id)
  // --no-p2p: this file tests the relay path (test/e2e/p2p.test.ts tests direct paths).
  alice = startClient(topo.client('alice').ns, topo.id, 'alice', '10.77.0.2/24', topo.serverWanIp, { extra: ['--no-p2p'] })
  bob = startClient(topo.client('bob').ns, topo.id, 'bob', '10.77.0.3/24', topo.serverWanIp, { extra: ['--no-p2p'] })
})
t.teardown(async () => { await topo?.destroy() })

t.test('clients register and see each other; status has the contract fields', async t => {
  const sa = await waitReady(alice, 1)
  await waitReady(bob, 1)
  const ss = await waitReady(server, 2)
  t.equal(sa.mode, 'client')
  t.equal(sa.tunnelIp, '10.77.0.2')
  const toServer = sa.peers.find(p => p.tunnelIp === '10.77.0.1')
  const toBob = sa.peers.find(p => p.tunnelIp === '10.77.0.3')
  t.equal(toServer?.path, 'direct')
  t.equal(toServer?.endpoint, `${topo.serverWanIp}:9000`)
  t.equal(toBob?.path, 'relay')
  for (const p of sa.peers) {
    t.type(p.txBytes, 'number')
    t.type(p.rxBytes, 'number')
    t.ok(p.rttMs === null || typeof p.rttMs === 'number')
  }
  t.same(ss.peers.map(p => p.tunnelIp).sort(), ['10.77.0.2', '10.77.0.3'])
  t.ok(ss.peers.every(p => p.path === 'direct' && typeof p.endpoint === 'string'))
  // The server sees each client at its NAT's public address.
  t.ok(ss.peers.every(p => p.endpoint!.startsWith('100.64.')), 'endpoints are the routers\' WAN addresses')
})

t.test('ping: client → server, server → client, client → client through the relay', async t => {
  const aliceNs = topo.client('alice').ns
  t.equal((await ping(aliceNs, '10.77.0.1', 3)).received, 3, 'alice → server')
  t.equal((await ping(topo.serverNs, '10.77.0.3', 3)).received, 3, 'server → bob')
  await waitPing(aliceNs, '10.77.0.3') // the first packets wait for the end-to-end session
  const r = await ping(aliceNs, '10.77.0.3', 5)
  t.equal(r.received, 5, 'alice → bob through the relay')
  const sb = await status(bob)
  const fromAlice = sb.peers.find(p => p.tunnelIp === '10.77.0.2')!
  t.equal(fromAlice.path, 'relay')
  t.equal(fromAlice.session, 'established')
  t.ok(fromAlice.rxBytes > 0 && fromAlice.txBytes > 0, 'per-peer byte counters move')
})

t.test('TCP transfer client → client through the relay arrives intact', async t => {
  const before = await status(server)
  const size = 4 * 1024 * 1024
  const r = await tcpTransfer(topo.client('alice').ns, topo.client('bob').ns, '10.77.0.3', size)
  t.equal(r.received.bytes, size)
  t.equal(r.received.sha256, r.sent.sha256, 'same bytes')
  const after = await status(server)
  t.ok(after.counters.relayedPackets - before.counters.relayedPackets > size / 1500, 'the server relayed the transfer')
})

t.test('TCP transfer client → server arrives intact', async t => {
  const size = 2 * 1024 * 1024
  const r = await tcpTransfer(topo.client('bob').ns, topo.serverNs, '10.77.0.1', size, 5202)
  t.equal(r.received.bytes, size)
  t.equal(r.received.sha256, r.sent.sha256)
})

t.test('server restart: the tunnel comes back by itself', async t => {
  const code = await server.proc.stop('SIGTERM', 5000)
  t.equal(code, 0, 'server exits cleanly')
  t.notOk(await deviceExists(topo.serverNs, 'lwt0'), 'server device removed')
  await sleep(1000)
  server = startServer(topo.serverNs, topo.id, { stateDir: server.stateDir }) // the same node key
  await waitReady(server, 2, 20_000)
  await waitPing(topo.client('alice').ns, '10.77.0.1', 10_000)
  await waitPing(topo.client('alice').ns, '10.77.0.3', 10_000)
  t.equal(alice.proc.exitInfo, null, 'the clients were not restarted')
  t.equal(bob.proc.exitInfo, null)
})

t.test('the server link carries the relayed traffic (counted on the server interface)', async t => {
  const before = await linkStats(topo.serverNs, topo.serverLink)
  t.equal((await ping(topo.client('alice').ns, '10.77.0.3', 10, 0.05)).received, 10)
  const after = await linkStats(topo.serverNs, topo.serverLink)
  // Bytes, not packets (a GSO send is one link packet): 10 requests and 10 replies of 84 bytes came in, sealed and wrapped.
  t.ok(after.rxBytes - before.rxBytes >= 20 * 84, `requests and replies both crossed the server link (${after.rxBytes - before.rxBytes} bytes in)`)
})

t.test('SIGTERM: clean shutdown removes the device and the control socket', async t => {
  const code = await bob.proc.stop('SIGTERM', 5000)
  t.equal(code, 0)
  t.notOk(await deviceExists(topo.client('bob').ns, 'lwt0'), 'device gone')
  t.notOk(existsSync(bob.control), 'control socket gone')
  // The server forgets bob at once (bye), so alice does too.
  const { waitFor } = await import('../../src/lab/exec.js')
  await waitFor(async () => (await status(alice)).peers.every(p => p.tunnelIp !== '10.77.0.3'), { timeoutMs: 5000, what: 'alice to forget bob' })
  t.pass('alice forgot bob')
})
