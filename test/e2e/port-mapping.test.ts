/**
 * Port mapping in network namespaces: three clients, each behind its own
 * symmetric NAT (a new port per destination: hole punching alone cannot
 * connect two of them). alice's and carol's routers run a NAT-PMP/PCP
 * responder (test/helpers/pcp-responder.mjs) that installs real nftables
 * DNAT mappings; bob's router has none.
 *  - alice maps her port (PCP) and offers it: alice ↔ bob goes direct;
 *  - carol runs with --no-port-mapping: carol ↔ bob stays relayed (both symmetric);
 *  - bob's status says why he has no mapping; alice's names protocol, endpoint, lifetime;
 *  - SIGTERM on alice deletes her mapping: the DNAT element is gone from her router.
 */
import t from 'tap'
import { createTopology, type Topology } from '../../src/lab/topology.js'
import { waitFor } from '../../src/lab/exec.js'
import type { PeerStatus, StatusReport } from '../../src/control/status.js'
import { gatewayMappings, startPortMappingGateway } from '../../src/lab/port-mapping-gateway.js'
import { ping, startClient, startServer, status, waitReady, type Daemon } from '../helpers/daemon.js'

const IP = { alice: '10.77.0.2', bob: '10.77.0.3', carol: '10.77.0.4' } as const
let topo: Topology
const d: Record<string, Daemon> = {}

t.before(async () => {
  topo = await createTopology({ clients: [{ name: 'alice', nat: 'symmetric' }, { name: 'bob', nat: 'symmetric' }, { name: 'carol', nat: 'symmetric' }] })
  await startPortMappingGateway(topo.client('alice'))
  await startPortMappingGateway(topo.client('carol'))
  startServer(topo.serverNs, topo.id)
  for (const name of ['alice', 'bob', 'carol'] as const) {
    d[name] = startClient(topo.client(name).ns, topo.id, name, `${IP[name]}/24`, topo.serverWanIp, { extra: name === 'carol' ? ['--no-port-mapping'] : [] })
  }
})
t.teardown(async () => { await topo?.destroy() })

function peer (s: StatusReport, ip: string): PeerStatus | undefined { return s.peers.find(p => p.tunnelIp === ip) }

t.test('the mapped side offers its mapping: symmetric ↔ symmetric goes direct', async t => {
  await waitReady(d.alice!, 2)
  await waitReady(d.bob!, 2)
  await waitReady(d.carol!, 2)
  // Traffic starts the end-to-end sessions (punching follows a session).
  await Promise.all([ping(topo.client('alice').ns, IP.bob, 2), ping(topo.client('carol').ns, IP.bob, 2)])
  let last = ''
  await waitFor(async () => {
    const [a, b] = await Promise.all([status(d.alice!), status(d.bob!)])
    last = `alice→bob ${peer(a, IP.bob)?.path}, bob→alice ${peer(b, IP.alice)?.path}`
    return peer(a, IP.bob)?.path === 'direct' && peer(b, IP.alice)?.path === 'direct'
  }, { timeoutMs: 15_000, intervalMs: 200, what: 'alice ↔ bob direct' }).catch((err: Error) => { throw new Error(`${err.message} (${last})`) })
  const a = await status(d.alice!)
  const m = a.portMapping!
  t.equal(m.state, 'mapped')
  t.equal(m.protocol, 'pcp', 'PCP preferred when the gateway speaks both')
  const wan = topo.client('alice').routerWanIp!
  t.match(m.external, new RegExp(`^${wan.replace(/\./g, '\\.')}:\\d+$`), 'the router\'s WAN address')
  t.ok(m.lifetimeLeftSec! > 7000, `lifetime left ${m.lifetimeLeftSec} s`)
  t.ok(a.counters.portMapAnswers! >= 1)
  const b = await status(d.bob!)
  t.equal(peer(b, IP.alice)!.endpoint, m.external, 'bob reaches alice at her mapped endpoint')
  const cand = peer(b, IP.alice)!.p2p!.candidates.find(c => c.endpoint === m.external)
  t.equal(cand?.kind, 'mapped', 'bob\'s status marks the candidate as alice\'s port mapping')
  t.equal(cand?.state, 'confirmed')
  t.equal((await ping(topo.client('alice').ns, IP.bob, 5, 0.05)).received, 5, 'traffic flows')
})

t.test('without a mapping (--no-port-mapping) the symmetric pair stays relayed; status says why bob has none', async t => {
  let cb: PeerStatus | undefined
  await waitFor(async () => {
    cb = peer(await status(d.carol!), IP.bob)
    return cb?.p2p?.relayReason === 'DOUBLE_SYMMETRIC'
  }, { timeoutMs: 10_000, intervalMs: 200, what: 'carol → bob relayed as double symmetric' })
  t.equal(cb!.path, 'relay')
  const c = await status(d.carol!)
  t.equal(c.portMapping, null, 'carol does not ask')
  t.equal((await gatewayMappings(topo.client('carol').routerNs!)).size, 0, 'no mapping on carol\'s router')
  // bob's asking ends ~2.3 s after his start (PCP/NAT-PMP 1.75 s, then UPnP's second SSDP try): it may still run.
  let bm = (await status(d.bob!)).portMapping!
  await waitFor(async () => { bm = (await status(d.bob!)).portMapping!; return bm.state === 'failed' }, { timeoutMs: 10_000, intervalMs: 100, what: 'bob\'s port mapping to fail' })
  t.equal(bm.note, `no NAT-PMP/PCP answer from ${topo.client('bob').routerLanIp!} in 3 tries; UPnP: no IGD answered SSDP in 2 tries`)
})

t.test('SIGTERM deletes the mapping on the router', async t => {
  const routerNs = topo.client('alice').routerNs!
  const before = await gatewayMappings(routerNs)
  t.equal(before.size, 1, 'one DNAT mapping while alice runs')
  t.match([...before.values()][0], new RegExp(`^${topo.client('alice').lanIp.replace(/\./g, '\\.')}:\\d+$`))
  t.equal(await d.alice!.proc.stop('SIGTERM', 10_000), 0, 'alice exits cleanly')
  await waitFor(async () => (await gatewayMappings(routerNs)).size === 0, { timeoutMs: 3000, intervalMs: 100, what: 'the mapping to be deleted' })
  t.pass('the DNAT mapping is gone')
})

t.test('kill -9 leaves the mapping behind; the next start deletes it before mapping again', async t => {
  const c = topo.client('alice')
  const waitMapped = async (dd: Daemon): Promise<string> => {
    let ext = ''
    await waitFor(async () => {
      if (dd.proc.exitInfo !== null) throw new Error(`alice exited:\n${dd.proc.tail(20)}`)
      const s = await status(dd).catch(() => null)
      ext = s?.portMapping?.external ?? ''
      return s?.portMapping?.state === 'mapped'
    }, { timeoutMs: 15_000, intervalMs: 100, what: 'alice mapped' })
    return ext
  }
  const first = startClient(c.ns, topo.id, 'alice', `${IP.alice}/24`, topo.serverWanIp, { stateDir: d.alice!.stateDir })
  await waitMapped(first)
  const before = [...(await gatewayMappings(c.routerNs!)).values()]
  t.equal(before.length, 1)
  await first.proc.stop('SIGKILL', 5000)
  t.same([...(await gatewayMappings(c.routerNs!)).values()], before, 'still on the router after kill -9')
  const second = startClient(c.ns, topo.id, 'alice', `${IP.alice}/24`, topo.serverWanIp, { stateDir: d.alice!.stateDir })
  await waitMapped(second)
  const after = [...(await gatewayMappings(c.routerNs!)).values()]
  t.equal(after.length, 1, 'one mapping: the stale one was deleted')
  t.not(after[0], before[0], 'the new run\'s own (another local port)')
  t.equal((await status(second)).counters.portMapStaleDeleted, 1)
  t.equal(await second.proc.stop('SIGTERM', 10_000), 0)
})
