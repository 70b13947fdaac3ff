/**
 * IPv6 inside the tunnel (issue 11 items 1 and 6), in network namespaces
 * with real TUN devices and nftables NATs. The server has fd00:77::1/64;
 * alice and bob sit behind port-restricted NATs (they punch a direct path),
 * carol runs --no-p2p (everything to her is relayed by the server).
 *  - IPv6 ping and a byte-exact 20 MB TCP transfer (sha256 on both ends)
 *    alice → bob over the direct path, and alice → carol through the relay;
 *  - client ↔ server over IPv6 (both directions);
 *  - status shows both addresses for the node, the server and each peer.
 */
import t from 'tap'
import { createTopology, type Topology } from '../../src/lab/topology.js'
import { runIn, waitFor } from '../../src/lab/exec.js'
import { sysctls } from '../../src/lab/netns.js'
import { startClient, startServer, status, tcpTransfer, waitReady, type Daemon } from '../helpers/daemon.js'

const NET6 = 'fd00:77::'
const A6 = `${NET6}2`
const B6 = `${NET6}3`
const C6 = `${NET6}4`
const S6 = `${NET6}1`
const MB20 = 20 * 1024 * 1024
let topo: Topology
let server: Daemon
let alice: Daemon
let bob: Daemon
let carol: Daemon

t.before(async () => {
  topo = await createTopology({ clients: [{ name: 'alice', nat: 'port-restricted' }, { name: 'bob', nat: 'port-restricted' }, { name: 'carol', nat: 'port-restricted' }] })
  // The lab turns IPv6 off in its namespaces (no neighbour-discovery chatter on its links); the nodes need it for their TUN devices.
  for (const ns of [topo.serverNs, ...topo.clients.map(c => c.ns)]) await sysctls(ns, { 'net.ipv6.conf.all.disable_ipv6': 0, 'net.ipv6.conf.default.disable_ipv6': 0 })
  server = startServer(topo.serverNs, topo.id, { tun: `10.77.0.1/24,${S6}/64` })
  alice = startClient(topo.client('alice').ns, topo.id, 'alice', `10.77.0.2/24,${A6}/64`, topo.serverWanIp)
  bob = startClient(topo.client('bob').ns, topo.id, 'bob', `10.77.0.3/24,${B6}/64`, topo.serverWanIp)
  carol = startClient(topo.client('carol').ns, topo.id, 'carol', `10.77.0.4/24,${C6}/64`, topo.serverWanIp, { extra: ['--no-p2p'] })
})
t.teardown(async () => { await topo?.destroy() })

async function ping6 (ns: string, ip: string, count = 5): Promise<number> {
  const r = await runIn(ns, 'ping', ['-6', '-n', '-q', '-c', String(count), '-i', '0.05', '-W', '2', ip]).catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? '' }))
  const m = /(\d+) packets transmitted, (\d+) received/.exec(r.stdout)
  return m === null ? 0 : Number(m[2])
}

async function waitPing6 (ns: string, ip: string): Promise<void> {
  await waitFor(async () => (await ping6(ns, ip, 1)) === 1, { timeoutMs: 15_000, intervalMs: 100, what: `an IPv6 ping reply from ${ip} in ${ns}` })
}

async function pathTo (d: Daemon, tunnelIp: string): Promise<string | undefined> {
  return (await status(d)).peers.find(p => p.tunnelIp === tunnelIp)?.path
}

t.test('registration: everyone up, status shows both addresses', async t => {
  await waitReady(server, 3)
  const s = await waitReady(alice, 2)
  t.equal(s.tunnel6, `${A6}/64`, 'the node\'s own')
  t.same(s.peers.map(p => [p.tunnelIp, p.tunnel6]).sort(), [['10.77.0.1', S6], ['10.77.0.3', B6], ['10.77.0.4', C6]], 'the server and each peer')
  const ss = await status(server)
  t.same(ss.peers.map(p => [p.tunnelIp, p.tunnel6]), [['10.77.0.2', A6], ['10.77.0.3', B6], ['10.77.0.4', C6]], 'the server: each client')
  const addr = await runIn(topo.client('alice').ns, 'ip', ['-6', 'addr', 'show', 'dev', alice.dev])
  t.match(addr.stdout, `inet6 ${A6}/64`, 'the device carries the IPv6 address')
})

t.test('client ↔ server over IPv6', async t => {
  await waitPing6(topo.client('alice').ns, S6)
  t.equal(await ping6(topo.client('alice').ns, S6), 5, 'alice → server')
  t.equal(await ping6(topo.serverNs, A6), 5, 'server → alice')
})

t.test('alice → bob over the direct path: IPv6 ping and 20 MB byte-exact', async t => {
  await waitFor(async () => (await pathTo(alice, '10.77.0.3')) === 'direct', { timeoutMs: 15_000, intervalMs: 200, what: 'a direct path alice → bob' })
  await waitPing6(topo.client('alice').ns, B6)
  t.equal(await ping6(topo.client('alice').ns, B6), 5)
  const r = await tcpTransfer(topo.client('alice').ns, topo.client('bob').ns, B6, MB20)
  t.equal(r.received.bytes, MB20, 'every byte arrived')
  t.equal(r.received.sha256, r.sent.sha256, 'the same bytes')
  t.equal(await pathTo(alice, '10.77.0.3'), 'direct', 'still direct')
})

t.test('alice → carol through the relay: IPv6 ping and 20 MB byte-exact', async t => {
  await waitPing6(topo.client('alice').ns, C6)
  t.equal(await pathTo(alice, '10.77.0.4'), 'relay', 'carol runs --no-p2p: relayed')
  t.equal(await ping6(topo.client('alice').ns, C6), 5)
  const r = await tcpTransfer(topo.client('alice').ns, topo.client('carol').ns, C6, MB20, 5202)
  t.equal(r.received.bytes, MB20, 'every byte arrived')
  t.equal(r.received.sha256, r.sent.sha256, 'the same bytes')
  const st = await status(alice)
  t.equal(st.counters?.dropNotIp ?? 0, 0, 'no packet dropped as not IP')
})
