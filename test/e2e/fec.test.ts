/**
 * FEC end to end (issue 13 item 3): four clients on the lab's WAN (no NAT,
 * so each pair finds its direct path), 5 % random loss on every client's
 * link (nft numgen on ingress, with GSO/TSO/GRO off on the lab veths so
 * each datagram is one packet). alice↔bob run without FEC, carol↔dave with
 * `--fec 10,3`. 300 pings at 10 ms each way: without FEC a round trip sees
 * ~10 % loss; with FEC a lone ping is its own group of 1 with 3 parity, so
 * it is lost only when all four copies are (~0). Asserted loosely (without
 * ≥ 2 %, with ≤ 2 %, groups recovered > 0) so a loaded machine cannot flip it.
 */
import t from 'tap'
import { createTopology, type Topology } from '../../src/lab/topology.js'
import { setLoss } from '../../src/lab/nat.js'
import { runIn, waitFor } from '../../src/lab/exec.js'
import { ping, startClient, startServer, status, waitPing, waitReady, type Daemon } from '../helpers/daemon.js'

let topo: Topology
const d: Record<string, Daemon> = {}
const TUN: Record<string, string> = { alice: '10.77.0.2', bob: '10.77.0.3', carol: '10.77.0.4', dave: '10.77.0.5' }

t.before(async () => {
  topo = await createTopology({ clients: ['alice', 'bob', 'carol', 'dave'].map((name) => ({ name, nat: 'none' as const })) })
  d.server = startServer(topo.serverNs, topo.id)
  for (const name of ['alice', 'bob', 'carol', 'dave']) {
    d[name] = startClient(topo.client(name).ns, topo.id, name, `${TUN[name]}/24`, topo.serverWanIp, { extra: name === 'carol' || name === 'dave' ? ['--fec', '10,3'] : [] })
  }
})
t.teardown(async () => { await topo?.destroy() })

async function direct (from: string, to: string): Promise<void> {
  await waitPing(topo.client(from).ns, TUN[to]!, 15_000)
  await waitFor(async () => (await status(d[from]!)).peers.find((p) => p.tunnelIp === TUN[to])?.path === 'direct',
    { timeoutMs: 20_000, intervalMs: 250, what: `${from} to reach ${to} directly` })
}

t.test('with --fec 10,3 on both ends ping loss stays far below the same link without', async t => {
  for (const name of ['alice', 'bob', 'carol', 'dave']) await waitReady(d[name]!, 3, 30_000)
  await direct('alice', 'bob')
  await direct('carol', 'dave')
  const fecPeer = (await status(d.carol!)).peers.find((p) => p.tunnelIp === TUN.dave)
  t.same(fecPeer?.fec, { data: 10, parity: 3 }, 'carol↔dave negotiated FEC')
  t.equal((await status(d.alice!)).peers.find((p) => p.tunnelIp === TUN.bob)?.fec, undefined, 'alice has no --fec')
  for (const name of ['alice', 'bob', 'carol', 'dave']) {
    const c = topo.client(name)
    for (const [ns, dev] of [[c.ns, c.dev], [topo.internetNs, c.internetPort]] as const) {
      await runIn(ns, 'ethtool', ['-K', dev, 'gso', 'off', 'tso', 'off', 'gro', 'off', 'tx-udp-segmentation', 'off'])
    }
    await setLoss(c.ns, c.dev, 5, 'ingress')
  }
  const without = await ping(topo.client('alice').ns, TUN.bob!, 300, 0.01)
  const withFec = await ping(topo.client('carol').ns, TUN.dave!, 300, 0.01)
  const lost = (r: { sent: number, received: number }): number => (r.sent - r.received) / r.sent
  t.comment(`ping loss without FEC ${(lost(without) * 100).toFixed(1)} %, with --fec 10,3 ${(lost(withFec) * 100).toFixed(1)} %`)
  t.ok(lost(without) >= 0.02, `without FEC the link loses pings (${without.sent - without.received}/${without.sent})`)
  t.ok(lost(withFec) <= 0.02, `with FEC at most 2 % (${withFec.sent - withFec.received}/${withFec.sent})`)
  t.ok(lost(withFec) < lost(without), 'with FEC below without')
  const sc = await status(d.carol!)
  const sd = await status(d.dave!)
  t.ok(sc.counters.fecGroupsRecovered + sd.counters.fecGroupsRecovered > 0, `groups recovered (carol ${sc.counters.fecGroupsRecovered}, dave ${sd.counters.fecGroupsRecovered})`)
  t.ok(sc.counters.fecParitySent > 0 && sd.counters.fecParitySent > 0, 'both ends send parity')
  t.equal((await status(d.alice!)).counters.fecParitySent ?? 0, 0, 'no parity without --fec')
})
