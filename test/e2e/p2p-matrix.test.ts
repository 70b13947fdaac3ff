/**
 * Direct paths across the NAT matrix, in network namespaces with nftables
 * NATs that drop unsolicited inbound traffic (src/lab/nat.ts). One topology
 * holds two clients of every NAT kind plus two clients sharing one LAN, so
 * every cell of the matrix punches at the same time (and under the load of
 * 12 daemons on this small machine). For each cell: the path each side
 * reports, why a relayed one is relayed, the time to direct, and — the proof
 * that direct traffic bypasses the server — the packets counted on the
 * server's link while pinging across the tunnel.
 */
import t from 'tap'
import { createTopology, type Topology } from '../../src/lab/topology.js'
import { linkStats } from '../../src/lab/netns.js'
import type { NatKind } from '../../src/lab/nat.js'
import type { PeerStatus, StatusReport } from '../../src/control/status.js'
import { waitFor } from '../../src/lab/exec.js'
import { IDLE_KEEPALIVE_PASSIVE } from '../../src/control/constants.js'
import { ping, startClient, startServer, status, waitPing, waitReady, type Daemon } from '../helpers/daemon.js'

const KINDS: Array<[string, NatKind]> = [['n', 'none'], ['f', 'full-cone'], ['a', 'address-restricted'], ['p', 'port-restricted'], ['s', 'symmetric']]
const clients: Array<{ name: string, nat: NatKind, lan?: string }> = []
for (const [p, nat] of KINDS) clients.push({ name: `${p}1`, nat }, { name: `${p}2`, nat })
clients.push({ name: 'l1', nat: 'port-restricted', lan: 'home' }, { name: 'l2', nat: 'port-restricted', lan: 'home' })
const tunIp = (name: string): string => `10.77.0.${10 + clients.findIndex(c => c.name === name)}`

let topo: Topology
const daemons = new Map<string, Daemon>()

t.before(async () => {
  topo = await createTopology({ clients })
  startServer(topo.serverNs, topo.id)
  for (const c of clients) daemons.set(c.name, startClient(topo.client(c.name).ns, topo.id, c.name, `${tunIp(c.name)}/24`, topo.serverWanIp))
})
t.teardown(async () => { await topo?.destroy() })

/** A cell: two clients, and what must happen between them. */
interface Cell { a: string, b: string, expect: 'direct' | 'relay', reason?: string, lan?: boolean, birthday?: boolean }
const cells: Cell[] = []
for (let i = 0; i < KINDS.length; i++) {
  for (let j = i; j < KINDS.length; j++) {
    const [pa, ka] = KINDS[i]!
    const [pb, kb] = KINDS[j]!
    const a = `${pa}1`
    const b = i === j ? `${pb}2` : `${pb}1`
    const sym = [ka, kb].filter(k => k === 'symmetric').length
    const other = ka === 'symmetric' ? kb : ka
    if (sym === 2) cells.push({ a, b, expect: 'relay', reason: 'DOUBLE_SYMMETRIC' })
    else cells.push({ a, b, expect: 'direct', birthday: sym === 1 && other === 'port-restricted' })
  }
}
cells.push({ a: 'l1', b: 'l2', expect: 'direct', lan: true })

function peerOf (s: StatusReport, name: string): PeerStatus {
  const p = s.peers.find(x => x.tunnelIp === tunIp(name))
  if (p === undefined) throw new Error(`no peer ${name} in ${JSON.stringify(s.peers.map(x => x.tunnelIp))}`)
  return p
}

let statuses = new Map<string, StatusReport>()
async function readAll (): Promise<void> {
  const next = new Map<string, StatusReport>()
  for (const [name, d] of daemons) next.set(name, await status(d))
  statuses = next
}

t.test('all clients register and see each other', async t => {
  for (const d of daemons.values()) await waitReady(d, clients.length - 1, 40_000)
  t.pass(`${clients.length} clients registered`)
})

t.test('every punchable cell goes direct; the others stay on the relay', async t => {
  // Wait until every expected-direct cell is direct on both sides (or time out and report).
  await waitFor(async () => {
    await readAll()
    return cells.every(c => c.expect === 'relay' || (peerOf(statuses.get(c.a)!, c.b).path === 'direct' && peerOf(statuses.get(c.b)!, c.a).path === 'direct'))
  }, { timeoutMs: 20_000, intervalMs: 500, what: 'all punchable cells direct' }).catch(() => {})
  // Give the relayed cells their full first punch burst (5 s), then look again.
  await new Promise(resolve => setTimeout(resolve, 3000))
  await readAll()
  for (const c of cells) {
    t.test(`${topo.client(c.a).nat} ↔ ${topo.client(c.b).nat} (${c.a} ↔ ${c.b})`, async t => {
      const pa = peerOf(statuses.get(c.a)!, c.b)
      const pb = peerOf(statuses.get(c.b)!, c.a)
      t.equal(pa.path, c.expect, `${c.a} sees ${c.b} ${c.expect}: ${pa.note}`)
      t.equal(pb.path, c.expect, `${c.b} sees ${c.a} ${c.expect}: ${pb.note}`)
      t.ok(pa.p2p && pb.p2p, 'p2p status present')
      t.ok(pa.p2p!.candidatesTried >= 1 && pb.p2p!.candidatesTried >= 1, 'candidates were tried')
      if (c.expect === 'direct') {
        for (const p of [pa, pb]) {
          t.equal(p.p2p!.relayReason, null)
          // An idle direct path: the controlling side pings every IDLE_KEEPALIVE, the other every
          // IDLE_KEEPALIVE_PASSIVE, so a pong may be that old on the passive side (seen: 30-33 s on a loaded machine).
          t.ok(p.p2p!.lastPongSec !== null && p.p2p!.lastPongSec < IDLE_KEEPALIVE_PASSIVE / 1000 + 5, `recent pong (${p.p2p!.lastPongSec} s)`)
          // Goal: ≤ 3 s worst, ≤ 5 s with a birthday search (docs/NAT-TRAVERSAL.md has the measured matrix); margin for 12 daemons on 2 cores.
          t.ok(p.p2p!.timeToDirectMs !== null && p.p2p!.timeToDirectMs < (c.birthday === true ? 8000 : 5000), `time to direct ${p.p2p!.timeToDirectMs} ms`)
        }
        if (c.lan === true) {
          t.match(pa.endpoint, /^192\.168\./, 'same LAN: the LAN address is used')
          t.match(pb.endpoint, /^192\.168\./, 'same LAN: the LAN address is used')
        }
      } else {
        t.equal(pa.p2p!.relayReason, c.reason, `why: ${pa.note}`)
        t.equal(pb.p2p!.relayReason, c.reason, `why: ${pb.note}`)
        t.match(pa.note, /relay: /)
      }
      // NAT kinds as learned: the symmetric side knows it is symmetric (server NAT check), the peer learns it.
      const ka = topo.client(c.a).nat
      if (ka === 'symmetric') {
        t.equal(pa.p2p!.localNat, 'symmetric')
        t.equal(pb.p2p!.peerNat, 'symmetric')
      } else if (ka === 'none') {
        t.equal(pa.p2p!.localNat, 'none')
      } else {
        t.equal(pa.p2p!.localNat, 'cone')
      }
    })
  }
})

t.test('direct traffic bypasses the server; relayed traffic crosses it', async t => {
  // Bytes, not packets: a GSO send or a GRO-coalesced datagram carries several tunnel packets as one link packet.
  const link = async (): Promise<number> => {
    const s = await linkStats(topo.serverNs, topo.serverLink)
    return s.rxBytes + s.txBytes
  }
  const COUNT = 100
  const ICMP = 84 // bytes of one echo request or reply; sealed and relayed it is bigger still
  for (const c of cells) {
    t.test(`${c.a} → ${c.b} (${c.expect})`, async t => {
      const ns = topo.client(c.a).ns
      await waitPing(ns, tunIp(c.b))
      const before = await link()
      const r = await ping(ns, tunIp(c.b), COUNT, 0.005)
      const delta = (await link()) - before
      // At most one short: ping (-c) stops waiting two round trips after its last request, so on a busy
      // machine the last reply can come too late to count (seen once in CI: 99 of 100).
      t.ok(r.received >= COUNT - 1, `${r.received} of ${COUNT} pings answered`)
      // Noise: 12 clients' keepalives to the server (one ping and pong each per 10 s, often in step).
      if (c.expect === 'direct') t.ok(delta < COUNT * ICMP, `server link moved ${delta} bytes for ${2 * COUNT} tunnel packets (keepalives only)`)
      else t.ok(delta >= 4 * COUNT * ICMP, `server link moved ${delta} bytes: the relay carried the ${2 * COUNT} tunnel packets in and out`)
    })
  }
})
