/**
 * The TCP transport (issue 12 item 1), in network namespaces: UDP to the
 * server's port is dropped at alice's router (nftables), so alice (--transport
 * auto) falls back to TCP; ping and a byte-exact transfer to the server and,
 * relayed, to bob (on UDP) work; a garbage connection and an oversized frame
 * are counted and closed while the tunnel keeps working; then UDP is let
 * through again and alice is back on UDP (status says so).
 */
import t from 'tap'
import { createTopology, type Topology } from '../../src/lab/topology.js'
import { runIn, waitFor } from '../../src/lab/exec.js'
import { status, startClient, startServer, tcpTransfer, waitPing, waitReady, ping, type Daemon } from '../helpers/daemon.js'

const S_IP = '10.77.0.1'
const A_IP = '10.77.0.2'
const B_IP = '10.77.0.3'
let topo: Topology
let server: Daemon
let alice: Daemon
let bob: Daemon

async function blockUdp (on: boolean): Promise<void> {
  const ns = topo.client('alice').routerNs!
  if (on) {
    await runIn(ns, 'nft', ['-f', '-'], { input: 'table inet lwtblock {\n chain block {\n  type filter hook forward priority -10; policy accept;\n  udp dport 9000 drop\n }\n}\n' })
  } else {
    await runIn(ns, 'nft', ['delete', 'table', 'inet', 'lwtblock'])
  }
}

t.before(async () => {
  topo = await createTopology({ clients: [{ name: 'alice', nat: 'port-restricted' }, { name: 'bob', nat: 'port-restricted' }] })
  server = startServer(topo.serverNs, topo.id)
  bob = startClient(topo.client('bob').ns, topo.id, 'bob', `${B_IP}/24`, topo.serverWanIp, { extra: ['--no-p2p'] })
  await waitReady(bob, 0)
  await blockUdp(true)
})
t.teardown(async () => {
  for (const d of [alice, bob, server]) await d?.proc.stop('SIGKILL', 1000).catch(() => {})
  await topo?.destroy()
})

t.test('UDP blocked: the client comes up over TCP; ping, transfer and relay work', async t => {
  const t0 = Date.now()
  alice = startClient(topo.client('alice').ns, topo.id, 'alice', `${A_IP}/24`, topo.serverWanIp, { extra: ['--no-p2p'] })
  await waitReady(alice, 1, 20_000)
  t.pass(`registered ${Date.now() - t0} ms after start`)
  const sa = await status(alice)
  const srv = sa.peers.find(p => p.role === 'server')!
  t.equal(srv.transport, 'tcp', 'the server path is on TCP')
  t.match(sa.transport?.client?.reason ?? '', /no UDP answer from the server in 2 s/, 'status says why')
  t.equal(sa.counters.transportFallbacks, 1, 'one fallback counted')
  const ss = await status(server)
  t.equal(ss.peers.find(p => p.tunnelIp === A_IP)?.transport, 'tcp', 'the server lists alice on TCP')
  t.equal(ss.peers.find(p => p.tunnelIp === B_IP)?.transport, 'udp', 'and bob on UDP')
  await waitPing(topo.client('alice').ns, S_IP)
  const r = await ping(topo.client('alice').ns, S_IP, 10, 0.05)
  t.ok(r.received >= 9, `alice → server over TCP: ${r.received} of 10`)
  const x = await tcpTransfer(topo.client('alice').ns, topo.serverNs, S_IP, 4 * 1024 * 1024)
  t.same(x.received, x.sent, 'a 4 MiB transfer arrives byte-exact')
  await waitPing(topo.client('alice').ns, B_IP)
  const rb = await ping(topo.client('alice').ns, B_IP, 10, 0.05)
  t.ok(rb.received >= 9, `alice → bob relayed by the server: ${rb.received} of 10`)
  const y = await tcpTransfer(topo.client('bob').ns, topo.client('alice').ns, A_IP, 2 * 1024 * 1024, 5202)
  t.same(y.received, y.sent, 'bob → alice (relayed) byte-exact')
})

t.test('garbage and oversized frames are counted and closed; the tunnel keeps working', async t => {
  const bobNs = topo.client('bob').ns
  const script = (payload: string): string => `
const s = require('node:net').connect(9000, ${JSON.stringify(topo.serverWanIp)}, () => { s.write(Buffer.from(${JSON.stringify(payload)}, 'hex')) });
s.on('close', () => { console.log('closed'); process.exit(0) }); s.on('error', () => {}); setTimeout(() => process.exit(1), 8000)`
  const before = (await status(server)).counters
  // A frame whose first message is not a handshake, then one longer than any message.
  const a = await runIn(bobNs, 'env', ['-u', 'NODE_OPTIONS', process.execPath, '-e', script('0004deadbeef')])
  t.match(a.stdout, /closed/, 'garbage: the server closes the connection')
  const b = await runIn(bobNs, 'env', ['-u', 'NODE_OPTIONS', process.execPath, '-e', script('ffff00')])
  t.match(b.stdout, /closed/, 'a 65535-byte frame: the server closes the connection')
  const after = (await status(server)).counters
  t.equal(after.tcpBadFirstFrame - before.tcpBadFirstFrame, 1, 'the garbage frame is counted')
  t.equal(after.tcpBadFrames - before.tcpBadFrames, 1, 'the oversized frame is counted')
  const r = await ping(topo.client('alice').ns, S_IP, 5, 0.05)
  t.ok(r.received >= 4, `alice over TCP still answered: ${r.received} of 5`)
})

t.test('UDP unblocked: the client is back on UDP', async t => {
  await blockUdp(false)
  const t0 = Date.now()
  await waitFor(async () => {
    const s = await status(alice)
    return s.peers.find(p => p.role === 'server')?.transport === 'udp' && s.state === 'registered'
  }, { timeoutMs: 15_000, intervalMs: 200, what: 'alice back on UDP' })
  t.pass(`back on UDP ${Date.now() - t0} ms after the unblock`)
  const s = await status(alice)
  t.equal(s.counters.transportReturns, 1, 'one return counted')
  t.equal(s.transport?.client?.reason, null, 'no fallback reason any more')
  const ss = await status(server)
  t.equal(ss.peers.find(p => p.tunnelIp === A_IP)?.transport, 'udp', 'the server lists alice on UDP')
  await waitPing(topo.client('alice').ns, B_IP)
  const r = await ping(topo.client('alice').ns, S_IP, 10, 0.05)
  t.ok(r.received >= 9, `alice → server over UDP: ${r.received} of 10`)
})

t.test('SIGTERM of a client on TCP: its Bye reaches the server through the bridge, which forgets it at once', async t => {
  // carol shares bob's namespace (UDP open there) with its own device and TCP pinned. Before the fix, the
  // transport closed its connections before the controller sent its Bye: the server kept carol until expiry.
  const carol = startClient(topo.client('bob').ns, topo.id, 'carol', '10.77.0.4/24', topo.serverWanIp, { dev: 'lwt1', extra: ['--no-p2p', '--transport', 'tcp'] })
  try {
    await waitReady(carol, 0, 20_000)
    await waitFor(async () => (await status(server)).peers.some(p => p.tunnelIp === '10.77.0.4' && p.transport === 'tcp'), { timeoutMs: 5000, what: 'the server to list carol on TCP' })
    t.equal(await carol.proc.stop('SIGTERM', 5000), 0, 'carol stops cleanly')
    const t0 = Date.now()
    await waitFor(async () => !(await status(server)).peers.some(p => p.tunnelIp === '10.77.0.4'), { timeoutMs: 3000, intervalMs: 100, what: 'the server to forget carol' })
    t.pass(`the server forgot carol ${Date.now() - t0} ms after she exited (a Bye, not the expiry)`)
  } finally {
    await carol.proc.stop('SIGKILL', 1000).catch(() => {})
  }
})
