/**
 * IPv6 outside the tunnel (issue 11 item 2), in network namespaces with real TUN devices. The lab
 * (src/lab/topology6.ts) is one bridge without NAT: the server listens on [::]:9000 with an IPv6
 * and an IPv4 address on its link; alice, bob and dave have only IPv6 on theirs (an IPv6-only
 * underlay), carol has only IPv4.
 *  - everyone registers: alice/bob/dave over IPv6 to [2001:db8:6::1]:9000, carol over IPv4 to the
 *    same dual-stack socket; status names the server by [v6]:port and the listen address by family;
 *  - alice ↔ bob: the IPv6 direct path comes up (their endpoints, from ENDPOINT6 in the peer list,
 *    are [2001:db8:6::N]:port), ping both ways and a byte-exact TCP transfer over it; bob's second
 *    global address reaches alice as a CANDIDATE6;
 *  - alice → dave (--no-p2p) through the relay over IPv6: ping and a byte-exact TCP transfer;
 *  - carol (IPv4) ↔ alice (IPv6): ping both ways, relayed by the server between the families.
 */
import t from 'tap'
import { createV6Lab, SERVER4, SERVER6, V6_NET, type V6Lab } from '../../src/lab/topology6.js'
import { waitFor } from '../../src/lab/exec.js'
import { addAddress } from '../../src/lab/netns.js'
import { ping, startClient, startServer, status, tcpTransfer, waitPing, waitReady, type Daemon } from '../helpers/daemon.js'

const MB8 = 8 * 1024 * 1024
const BOB_SECOND = `${V6_NET}33`
let lab: V6Lab
let server: Daemon
let alice: Daemon
let bob: Daemon
let carol: Daemon
let dave: Daemon

t.before(async () => {
  lab = await createV6Lab({ clients: [{ name: 'alice', family: 6 }, { name: 'bob', family: 6 }, { name: 'carol', family: 4 }, { name: 'dave', family: 6 }], serverV4: true })
  // A second global address on bob's link: not the one it reaches the server from, so only its CANDIDATE6 tells alice of it.
  await addAddress(lab.client('bob').ns, lab.client('bob').dev, `${BOB_SECOND}/64`)
  server = startServer(lab.serverNs, lab.id, { listen: '[::]:9000' })
  alice = startClient(lab.client('alice').ns, lab.id, 'alice', '10.77.0.2/24', `[${SERVER6}]`)
  bob = startClient(lab.client('bob').ns, lab.id, 'bob', '10.77.0.3/24', `[${SERVER6}]`)
  carol = startClient(lab.client('carol').ns, lab.id, 'carol', '10.77.0.4/24', SERVER4)
  dave = startClient(lab.client('dave').ns, lab.id, 'dave', '10.77.0.5/24', `[${SERVER6}]`, { extra: ['--no-p2p'] })
})
t.teardown(async () => { await lab?.destroy() })

async function peer (d: Daemon, tunnelIp: string): Promise<{ path: string, endpoint: string | null, p2p?: { candidates: Array<{ endpoint: string }> } | null } | undefined> {
  return (await status(d)).peers.find(p => p.tunnelIp === tunnelIp)
}

t.test('registration over both families on one dual-stack socket', async t => {
  const ss = await waitReady(server, 4, 20_000)
  t.match(ss.listen, /^\[::\]:9000 \(IPv4 and IPv6\)$/, 'the server says it listens on both families')
  const byIp = new Map(ss.peers.map(p => [p.tunnelIp, p.endpoint]))
  t.match(byIp.get('10.77.0.2'), new RegExp(`^\\[${V6_NET}2\\]:\\d+$`), 'alice came over IPv6')
  t.match(byIp.get('10.77.0.4'), /^100\.64\.6\.4:\d+$/, 'carol came over IPv4, shown as a plain IPv4 endpoint')
  t.ok((ss.counters?.v6SourcesAdded ?? 0) >= 3, `the server's IPv6 table took the IPv6 clients (${ss.counters?.v6SourcesAdded})`)
  t.equal(ss.counters?.v6SourcesMissed, 0, 'and missed none')
  const sa = await waitReady(alice, 3, 20_000)
  t.equal(sa.server, `[${SERVER6}]:9000`, 'alice names the server by its IPv6 endpoint')
  await waitReady(bob, 3)
  await waitReady(carol, 3)
  await waitReady(dave, 3)
})

t.test('IPv6-only underlay, direct: alice ↔ bob ping and a byte-exact TCP transfer', async t => {
  await waitFor(async () => (await peer(alice, '10.77.0.3'))?.path === 'direct', { timeoutMs: 15_000, intervalMs: 200, what: 'a direct path alice → bob' })
  t.match((await peer(alice, '10.77.0.3'))?.endpoint, new RegExp(`^\\[${V6_NET}(3|33)\\]:\\d+$`), 'the direct endpoint is one of bob\'s IPv6 addresses')
  await waitPing(lab.client('alice').ns, '10.77.0.3')
  t.equal((await ping(lab.client('alice').ns, '10.77.0.3', 5, 0.05)).received, 5, 'alice → bob')
  t.equal((await ping(lab.client('bob').ns, '10.77.0.2', 5, 0.05)).received, 5, 'bob → alice')
  const r = await tcpTransfer(lab.client('alice').ns, lab.client('bob').ns, '10.77.0.3', MB8)
  t.equal(r.received.bytes, MB8, 'every byte arrived')
  t.equal(r.received.sha256, r.sent.sha256, 'the same bytes')
  const b = await peer(alice, '10.77.0.3')
  t.equal(b?.path, 'direct', 'still direct')
  t.ok(b?.p2p?.candidates.some(c => c.endpoint.startsWith(`[${BOB_SECOND}]:`)), `bob's second address came as a CANDIDATE6 (${JSON.stringify(b?.p2p?.candidates.map(c => c.endpoint))})`)
})

t.test('IPv6-only underlay, relayed: alice → dave ping and a byte-exact TCP transfer', async t => {
  await waitPing(lab.client('alice').ns, '10.77.0.5')
  t.equal((await peer(alice, '10.77.0.5'))?.path, 'relay', 'dave runs --no-p2p: relayed')
  t.equal((await ping(lab.client('alice').ns, '10.77.0.5', 5, 0.05)).received, 5)
  const r = await tcpTransfer(lab.client('alice').ns, lab.client('dave').ns, '10.77.0.5', MB8, 5202)
  t.equal(r.received.bytes, MB8, 'every byte arrived')
  t.equal(r.received.sha256, r.sent.sha256, 'the same bytes')
})

t.test('between the families: carol (IPv4) ↔ alice (IPv6) through the server', async t => {
  await waitPing(lab.client('carol').ns, '10.77.0.2')
  t.equal((await ping(lab.client('carol').ns, '10.77.0.2', 5, 0.05)).received, 5, 'carol → alice')
  t.equal((await ping(lab.client('alice').ns, '10.77.0.4', 5, 0.05)).received, 5, 'alice → carol')
  t.equal((await peer(carol, '10.77.0.2'))?.path, 'relay', 'no common family: relayed')
  t.equal((await ping(lab.serverNs, '10.77.0.2', 3, 0.05)).received, 3, 'server → alice over the tunnel')
})
