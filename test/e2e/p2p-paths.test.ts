/**
 * A direct path's life, in network namespaces: two clients behind
 * port-restricted NATs whose UDP mappings expire after 30 s of silence.
 *  - failover: the direct path is cut mid-transfer (nftables drop between
 *    the two NATs' WAN addresses): traffic is back on the relay within 3 s
 *    and the TCP transfer completes intact;
 *  - heal: the cut is removed: direct again within 10 s, without flapping;
 *  - roaming: alice's router changes its WAN address (her public endpoint
 *    changes, every mapping is lost): traffic within 2 s, direct within 5 s;
 *  - NAT rebinding: alice's router flushes its mappings and moves to a new
 *    port range while bob pings her: traffic within 2 s, direct within 5 s;
 *  - keepalives hold the idle direct path through the 30-s mapping timeout
 *    at one probe per 25 s.
 * Each direct phase is checked against the packets counted on the server's link.
 */
import t from 'tap'
import { createTopology, type Topology } from '../../src/lab/topology.js'
import { linkStats } from '../../src/lab/netns.js'
import { applyNat, blockBetween, flushConntrack, unblock } from '../../src/lab/nat.js'
import { runIn, sleep, waitFor } from '../../src/lab/exec.js'
import type { PeerStatus } from '../../src/control/status.js'
import { ping, startClient, startServer, status, tcpTransfer, waitPing, waitReady, type Daemon } from '../helpers/daemon.js'

const A_IP = '10.77.0.2'
const B_IP = '10.77.0.3'
let topo: Topology
let alice: Daemon
let bob: Daemon

t.before(async () => {
  topo = await createTopology({ udpTimeoutSec: 30, clients: [{ name: 'alice', nat: 'port-restricted' }, { name: 'bob', nat: 'port-restricted' }] })
  startServer(topo.serverNs, topo.id)
  alice = startClient(topo.client('alice').ns, topo.id, 'alice', `${A_IP}/24`, topo.serverWanIp)
  bob = startClient(topo.client('bob').ns, topo.id, 'bob', `${B_IP}/24`, topo.serverWanIp)
})
t.teardown(async () => { await topo?.destroy() })

async function views (): Promise<[PeerStatus, PeerStatus]> {
  const [sa, sb] = await Promise.all([status(alice), status(bob)])
  return [sa.peers.find(p => p.tunnelIp === B_IP)!, sb.peers.find(p => p.tunnelIp === A_IP)!]
}

/** Poll until both sides report `path`; returns when (ms since epoch) the later side changed, from pathAgeSec. */
async function waitPath (path: 'direct' | 'relay', timeoutMs: number): Promise<number> {
  let at = 0
  await waitFor(async () => {
    const [a, b] = await views()
    const now = Date.now() // after the status reads (each takes a while): `at` is an upper bound
    if (a.path !== path || b.path !== path) return false
    at = now - 1000 * Math.min(a.p2p!.pathAgeSec, b.p2p!.pathAgeSec)
    return true
  }, { timeoutMs, intervalMs: 100, what: `both sides ${path}` })
  return at
}

/** Bytes through the server's link (bytes, not packets: a GSO send or a coalesced datagram is one link packet). */
async function serverBytes (): Promise<number> {
  const s = await linkStats(topo.serverNs, topo.serverLink)
  return s.rxBytes + s.txBytes
}
/** The server link may move this much for keepalives while 200 tunnel packets go direct (relayed, they alone would be ~33 KB). */
const KEEPALIVE_BYTES = 6000

/** Pings across the tunnel; returns the bytes the server's link moved meanwhile. */
async function pingDelta (count = 100): Promise<{ received: number, delta: number }> {
  const before = await serverBytes()
  const r = await ping(topo.client('alice').ns, B_IP, count, 0.005)
  return { received: r.received, delta: (await serverBytes()) - before }
}

t.test('direct path comes up', async t => {
  await waitReady(alice, 1)
  await waitReady(bob, 1)
  await waitPath('direct', 10_000)
  await waitPing(topo.client('alice').ns, B_IP)
  const r = await pingDelta()
  t.ok(r.received >= 99, `${r.received} of 100 answered (ping may give up on a late last reply)`)
  t.ok(r.delta < KEEPALIVE_BYTES, `server link: ${r.delta} bytes for 200 tunnel packets`)
})

t.test('failover: a cut direct path falls back to the relay within 3 s; a running TCP transfer survives', async t => {
  const wa = topo.client('alice').routerWanIp!
  const wb = topo.client('bob').routerWanIp!
  const before = await serverBytes()
  const sent0 = (await views())[0].txBytes
  const transfer = tcpTransfer(topo.client('alice').ns, topo.client('bob').ns, B_IP, 256 * 1024 * 1024)
  // Cut once the transfer is under way on the direct path (8 MiB gone; ~1 Gbit/s here, so most of it is still to come).
  await waitFor(async () => (await views())[0].txBytes - sent0 > 8 * 1024 * 1024, { timeoutMs: 30_000, intervalMs: 50, what: 'the transfer to start' })
  const cutAt = Date.now()
  await blockBetween(topo.internetNs, wa, wb)
  const relayAt = await waitPath('relay', 10_000)
  t.ok(relayAt - cutAt <= 3000, `back on the relay ${relayAt - cutAt} ms after the cut`)
  const r = await transfer
  t.equal(r.received.bytes, r.sent.bytes, 'every byte arrived')
  t.equal(r.received.sha256, r.sent.sha256, 'the same bytes')
  t.ok((await serverBytes()) - before > 64 * 1024 * 1024, 'the relay carried the rest of the transfer')
  const [a, b] = await views()
  t.equal(a.p2p!.relayReason, 'PATH_LOST', a.note ?? '')
  t.equal(b.p2p!.relayReason, 'PATH_LOST', b.note ?? '')
  t.equal((await ping(topo.client('alice').ns, B_IP, 5, 0.05)).received, 5, 'traffic flows on the relay')
})

t.test('heal: direct again within 10 s, no flapping', async t => {
  const wa = topo.client('alice').routerWanIp!
  const wb = topo.client('bob').routerWanIp!
  const healAt = Date.now()
  await unblock(topo.internetNs, wa, wb)
  const directAt = await waitPath('direct', 15_000)
  t.ok(directAt - healAt <= 10_000, `direct again ${directAt - healAt} ms after the heal`)
  const [a0] = await views()
  await sleep(3000)
  const [a1] = await views()
  t.equal(a1.path, 'direct')
  t.equal(a1.p2p!.pathChanges, a0.p2p!.pathChanges, 'no flapping after the heal')
  const r = await pingDelta()
  t.ok(r.received >= 99, `${r.received} of 100 answered (ping may give up on a late last reply)`)
  t.ok(r.delta < KEEPALIVE_BYTES, `direct: server link moved ${r.delta} bytes`)
})

t.test('roaming: the public address changes; traffic within 2 s, direct within 5 s', async t => {
  const c = topo.client('alice')
  const oldIp = c.routerWanIp!
  const newIp = '100.64.1.101'
  // A ping every 50 ms across the move; -D stamps each reply, so the gap is measured to ~50 ms.
  const pinger = runIn(c.ns, 'ping', ['-n', '-D', '-i', '0.05', '-c', '160', '-W', '1', B_IP], { timeoutMs: 20_000 })
    .catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? '' }))
  await sleep(500)
  const movedAt = Date.now()
  // Delete first: deleting a primary address also deletes its secondaries.
  await runIn(c.routerNs!, 'ip', ['addr', 'del', `${oldIp}/16`, 'dev', c.routerWan!])
  await runIn(c.routerNs!, 'ip', ['addr', 'add', `${newIp}/16`, 'dev', c.routerWan!])
  await flushConntrack(c.routerNs!)
  const out = (await pinger).stdout
  const replies = [...out.matchAll(/^\[(\d+\.\d+)\] \d+ bytes from/gm)].map(m => Number(m[1]) * 1000)
  const flowsAt = replies.find(ts => ts > movedAt + 50)
  t.ok(flowsAt !== undefined, 'pings are answered again after the move')
  t.ok(flowsAt! - movedAt <= 2000, `traffic flows again ${Math.round(flowsAt! - movedAt)} ms after the move`)
  const directAt = await waitPath('direct', 10_000)
  t.ok(directAt - movedAt <= 5000, `direct again ${directAt - movedAt} ms after the move`)
  const [, b] = await views()
  t.match(b.endpoint, new RegExp(`^${newIp.replace(/\./g, '\\.')}:`), 'bob reaches alice at her new address')
  const r = await pingDelta()
  t.ok(r.received >= 99, `${r.received} of 100 answered (ping may give up on a late last reply)`)
  t.ok(r.delta < KEEPALIVE_BYTES, `direct: server link moved ${r.delta} bytes`)
})

t.test('NAT rebinding: alice\'s NAT flushes its mappings and moves to a new port range; traffic within 2 s, direct within 5 s', async t => {
  const c = topo.client('alice')
  await waitPath('direct', 10_000)
  // bob pings, so alice only answers: the side whose traffic stops with the outage (issue 13 item 4).
  const pinger = runIn(topo.client('bob').ns, 'ping', ['-n', '-D', '-i', '0.05', '-c', '100', '-W', '1', A_IP], { timeoutMs: 20_000 })
    .catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? '' }))
  await sleep(500)
  // The new range applies to new flows only: the move is the flush.
  await applyNat(c.routerNs!, 'port-restricted', { wan: c.routerWan!, lan: c.routerLan!, wanIp: c.routerWanIp!, mappingTimeoutSec: 30, portRange: [40000, 40999] })
  const movedAt = Date.now()
  await flushConntrack(c.routerNs!)
  const out = (await pinger).stdout
  const replies = [...out.matchAll(/^\[(\d+\.\d+)\] \d+ bytes from/gm)].map(m => Number(m[1]) * 1000)
  // The outage: the longest silence between two replies that ends after the move (the replies come every
  // 50 ms while traffic flows). Its length is how long traffic stopped; measuring from movedAt instead would
  // count the time the NAT change itself took, and with no visible outage it picked whichever ~60 ms gap
  // was longest (a CI run reported "2900 ms after the move" with a longest gap of 68 ms).
  let gap = 0
  let repliesAfter = 0
  for (let i = 1; i < replies.length; i++) {
    if (replies[i]! <= movedAt) continue
    repliesAfter++
    gap = Math.max(gap, replies[i]! - replies[i - 1]!)
  }
  t.ok(repliesAfter >= 10 && gap <= 2000, `traffic stopped for at most ${Math.round(gap)} ms around the move (${repliesAfter} replies after it)`)
  const directAt = await waitPath('direct', 10_000)
  const [, b] = await views()
  const port = Number(/:(\d+)$/.exec(b.endpoint ?? '')?.[1])
  t.ok(port >= 40000 && port <= 40999, `bob reaches alice at her new port (${b.endpoint})`)
  t.ok(directAt - movedAt <= 5000, `direct again ${directAt - movedAt} ms after the move`)
})

t.test('keepalives hold an idle direct path through a 30-s mapping timeout, at one probe per 25 s', async t => {
  await sleep(2500) // let the path go idle
  const [a0, b0] = await views()
  // 2.5 + 32 s after the last packet: past the NAT's 30-s mapping timeout, so a missing keepalive shows as
  // lost pings or relayed traffic below.
  await sleep(32_000)
  const [a1, b1] = await views()
  t.equal(a1.path, 'direct')
  t.equal(b1.path, 'direct')
  t.equal(a1.p2p!.pathChanges, a0.p2p!.pathChanges, 'no path change while idle')
  const pa = a1.p2p!.probesSent - a0.p2p!.probesSent
  const pb = b1.p2p!.probesSent - b0.p2p!.probesSent
  t.ok(pa + pb >= 1 && pa + pb <= 2, `probes in 32 s idle: alice ${pa}, bob ${pb} (each answered by one pong)`)
  const r = await pingDelta()
  t.ok(r.received >= 99, `the path still works after 32 s idle (${r.received} of 100)`)
  t.ok(r.delta < KEEPALIVE_BYTES, `still direct: server link moved ${r.delta} bytes`)
})
