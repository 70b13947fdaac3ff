/**
 * UPnP IGD port mapping in network namespaces: two clients, each behind its
 * own symmetric NAT. dave's router speaks only UPnP IGD
 * (test/helpers/upnp-responder.mjs: SSDP on its LAN side, a description and
 * a SOAP control URL over HTTP, real nftables DNAT elements); bob's router
 * speaks nothing.
 *  - dave maps his port with UPnP (after PCP/NAT-PMP's head start) and offers
 *    it: dave ↔ bob goes direct; bob's status gives both protocols' reasons;
 *  - SIGTERM on dave deletes the mapping (DeletePortMapping): the DNAT element is gone;
 *  - kill -9 leaves it; the next start deletes it (portmap.json) before mapping again;
 *  - a router that grants only permanent leases (725): mapped with lease 0, deleted on SIGTERM.
 */
import t from 'tap'
import { createTopology, type Topology } from '../../src/lab/topology.js'
import { waitFor, type LabProcess } from '../../src/lab/exec.js'
import type { PeerStatus, StatusReport } from '../../src/control/status.js'
import { gatewayMappings, startPortMappingGateway } from '../../src/lab/port-mapping-gateway.js'
import { ping, startClient, startServer, status, waitReady, type Daemon } from '../helpers/daemon.js'

const IP = { dave: '10.77.0.2', bob: '10.77.0.3' } as const
let topo: Topology
const d: Record<string, Daemon> = {}
let igd: LabProcess

t.before(async () => {
  topo = await createTopology({ clients: [{ name: 'dave', nat: 'symmetric' }, { name: 'bob', nat: 'symmetric' }] })
  igd = await startPortMappingGateway(topo.client('dave'), { proto: 'upnp' })
  startServer(topo.serverNs, topo.id)
  for (const name of ['dave', 'bob'] as const) d[name] = startClient(topo.client(name).ns, topo.id, name, `${IP[name]}/24`, topo.serverWanIp)
})
t.teardown(async () => { await topo?.destroy() })

function peer (s: StatusReport, ip: string): PeerStatus | undefined { return s.peers.find(p => p.tunnelIp === ip) }

const waitMapped = async (dd: Daemon): Promise<StatusReport> => {
  let s: StatusReport | null = null
  await waitFor(async () => {
    if (dd.proc.exitInfo !== null) throw new Error(`dave exited:\n${dd.proc.tail(20)}`)
    s = await status(dd).catch(() => null)
    return s?.portMapping?.state === 'mapped'
  }, { timeoutMs: 15_000, intervalMs: 100, what: 'dave mapped' })
  return s!
}

t.test('a UPnP-only router maps: symmetric ↔ symmetric goes direct', async t => {
  await waitReady(d.dave!, 1)
  await waitReady(d.bob!, 1)
  const s = await waitMapped(d.dave!)
  const m = s.portMapping!
  t.equal(m.protocol, 'upnp')
  const wan = topo.client('dave').routerWanIp!
  t.match(m.external, new RegExp(`^${wan.replace(/\./g, '\\.')}:\\d+$`), 'the router\'s WAN address (GetExternalIPAddress)')
  t.ok(m.lifetimeLeftSec! > 7000, `lifetime left ${m.lifetimeLeftSec} s`)
  t.equal(s.counters.upnpFailures, 0)
  const routerMaps = [...(await gatewayMappings(topo.client('dave').routerNs!)).values()]
  t.same(routerMaps, [`${topo.client('dave').lanIp}:${m.internalPort}`], 'one DNAT element for dave\'s LAN address and port')
  await ping(topo.client('dave').ns, IP.bob, 2)
  let last = ''
  await waitFor(async () => {
    const [a, b] = await Promise.all([status(d.dave!), status(d.bob!)])
    last = `dave→bob ${peer(a, IP.bob)?.path}, bob→dave ${peer(b, IP.dave)?.path}`
    return peer(a, IP.bob)?.path === 'direct' && peer(b, IP.dave)?.path === 'direct'
  }, { timeoutMs: 15_000, intervalMs: 200, what: 'dave ↔ bob direct' }).catch((err: Error) => { throw new Error(`${err.message} (${last})`) })
  const b = await status(d.bob!)
  t.equal(peer(b, IP.dave)!.endpoint, m.external, 'bob reaches dave at his UPnP-mapped endpoint')
  t.equal(peer(b, IP.dave)!.p2p!.candidates.find(c => c.endpoint === m.external)?.kind, 'mapped')
  // bob's own asking ends ~2.3 s after his start (PCP/NAT-PMP 1.75 s; UPnP: 250 ms head start + 2 SSDP tries of 1 s): it may still run.
  let bm = b.portMapping!
  await waitFor(async () => { bm = (await status(d.bob!)).portMapping!; return bm.state === 'failed' }, { timeoutMs: 10_000, intervalMs: 100, what: 'bob\'s port mapping to fail' })
  t.equal(bm.note, `no NAT-PMP/PCP answer from ${topo.client('bob').routerLanIp!} in 3 tries; UPnP: no IGD answered SSDP in 2 tries`)
  t.equal((await ping(topo.client('dave').ns, IP.bob, 3, 0.05)).received, 3, 'traffic flows')
})

t.test('SIGTERM deletes the UPnP mapping on the router', async t => {
  const routerNs = topo.client('dave').routerNs!
  t.equal((await gatewayMappings(routerNs)).size, 1)
  t.equal(await d.dave!.proc.stop('SIGTERM', 10_000), 0, 'dave exits cleanly')
  t.equal((await gatewayMappings(routerNs)).size, 0, 'the DNAT element is gone when the daemon has exited')
})

t.test('kill -9 leaves the UPnP mapping; the next start deletes it before mapping again', async t => {
  const c = topo.client('dave')
  const first = startClient(c.ns, topo.id, 'dave', `${IP.dave}/24`, topo.serverWanIp, { stateDir: d.dave!.stateDir })
  await waitMapped(first)
  const before = [...(await gatewayMappings(c.routerNs!)).values()]
  t.equal(before.length, 1)
  await first.proc.stop('SIGKILL', 5000)
  t.same([...(await gatewayMappings(c.routerNs!)).values()], before, 'still on the router after kill -9')
  const second = startClient(c.ns, topo.id, 'dave', `${IP.dave}/24`, topo.serverWanIp, { stateDir: d.dave!.stateDir })
  const s = await waitMapped(second)
  t.equal(s.portMapping!.protocol, 'upnp')
  let after: string[] = []
  await waitFor(async () => { after = [...(await gatewayMappings(c.routerNs!)).values()]; return after.length === 1 }, { timeoutMs: 3000, intervalMs: 100, what: 'one mapping' })
  t.not(after[0], before[0], 'the new run\'s own (another local port)')
  t.equal(s.counters.upnpStaleDeleted, 1)
  t.equal(await second.proc.stop('SIGTERM', 10_000), 0)
  t.equal((await gatewayMappings(c.routerNs!)).size, 0)
})

t.test('a router granting only permanent leases (725): a permanent mapping, deleted on SIGTERM', async t => {
  const c = topo.client('dave')
  await igd.stop('SIGTERM', 5000)
  igd = await startPortMappingGateway(c, { proto: 'upnp', onlyPermanent: true })
  const dd = startClient(c.ns, topo.id, 'dave', `${IP.dave}/24`, topo.serverWanIp, { stateDir: d.dave!.stateDir })
  const s = await waitMapped(dd)
  t.equal(s.portMapping!.protocol, 'upnp')
  t.equal(s.portMapping!.lifetimeSec, 0, 'lease 0: permanent')
  t.match(s.portMapping!.note, /permanent lease/)
  t.equal((await gatewayMappings(c.routerNs!)).size, 1)
  t.equal(await dd.proc.stop('SIGTERM', 10_000), 0)
  t.equal((await gatewayMappings(c.routerNs!)).size, 0, 'deleted at exit (a permanent mapping would otherwise stay forever)')
})
