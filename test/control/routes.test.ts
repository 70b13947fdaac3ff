/**
 * Subnet routes and client isolation in the control plane (issue 11 items
 * 3-4): the pure decisions (route-approval.ts decideRoutes, kernel-route-plan.ts
 * planRoutes / diffRoutes), then a server and clients over FakeNet on a
 * manual clock: only approved routes leave the server, the first holder
 * keeps a network and loses it when it leaves, a reload re-decides, and
 * --client-isolation gives every client an empty peer list.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { ManualClock } from '../../src/clock.js'
import { seededRandom } from '../../src/random.js'
import { Logger } from '../../src/log.js'
import { ServerController } from '../../src/control/server.js'
import { ClientController } from '../../src/control/client.js'
import { generateStaticKey } from '../../src/crypto/noise.js'
import { intToIp, ipToInt } from '../../src/wire/addr.js'
import { formatPrefix, parsePrefix, type IpPrefix } from '../../src/wire/prefix.js'
import { decideRoutes } from '../../src/control/route-approval.js'
import { diffRoutes, planRoutes, type RouteOffer } from '../../src/control/kernel-route-plan.js'
import { peerPrefixes } from '../../src/control/peer-prefixes.js'
import type { ApproveRoutes } from '../../src/config/schema.js'
import { FakeNet, type FakeDataplane } from '../helpers/fake-dataplane.js'

const P = (s: string): IpPrefix => parsePrefix(s)
const texts = (ps: readonly IpPrefix[] | undefined): string[] => (ps ?? []).map(formatPrefix)
const TUNNET = P('10.0.0.0/24')
const B = ipToInt('10.0.0.3')
const C = ipToInt('10.0.0.4')

t.test('decideRoutes: refused, pending and approved, each with its reason', async t => {
  const v = { policy: [P('192.168.0.0/16')], tunnelNets: [TUNNET], serverRoutes: [P('172.16.0.0/16')], held: [{ node: C, prefix: P('192.168.70.0/24') }] }
  const ds = decideRoutes(B, [P('10.0.0.0/16'), P('172.16.5.0/24'), P('192.168.70.128/25'), P('192.168.50.0/24'), P('192.168.50.0/25'), P('fd50::/64'), P('192.168.60.0/24')], v)
  t.same(ds.map(d => [formatPrefix(d.prefix), d.state, d.reason]), [
    ['10.0.0.0/16', 'refused', '10.0.0.0/16 covers the tunnel network 10.0.0.0/24'],
    ['172.16.5.0/24', 'refused', '172.16.5.0/24 overlaps the server\'s own route 172.16.0.0/16'],
    ['192.168.70.128/25', 'refused', '192.168.70.128/25 overlaps 10.0.0.4\'s approved route 192.168.70.0/24 (the first holder keeps it)'],
    ['192.168.50.0/24', 'approved', null],
    ['192.168.50.0/25', 'refused', '192.168.50.0/25 overlaps its own route 192.168.50.0/24 (the first holder keeps it)'],
    ['fd50::/64', 'pending', 'not approved: add 10.0.0.3=fd50::/64 to the server\'s --approve-routes (or "all")'],
    ['192.168.60.0/24', 'approved', null]
  ])
  t.same(decideRoutes(B, [P('fd50::/64'), P('10.0.0.128/25')], { ...v, policy: 'all' }).map(d => d.state), ['approved', 'refused'], '"all" approves, but never inside the tunnel network')
  t.same(decideRoutes(B, [P('192.168.0.0/15')], { ...v, held: [] }).map(d => d.state), ['pending'], 'a network larger than the approved one is not approved')
})

t.test('planRoutes and diffRoutes: what the kernel table gets', async t => {
  const server = ipToInt('198.18.0.1')
  const offers: RouteOffer[] = [
    { via: B, prefix: P('192.168.50.0/24') },
    { via: B, prefix: P('198.18.0.0/16') },
    { via: C, prefix: P('192.168.50.0/25') },
    { via: C, prefix: P('192.168.99.0/24') },
    { via: C, prefix: P('fd50::/64') }
  ]
  const plan = planRoutes(offers, { serverUnderlay: server, tunnelNets: [TUNNET], own: [P('192.168.99.0/24')] })
  t.same(plan.install.map(o => `${intToIp(o.via)} ${formatPrefix(o.prefix)}`), ['10.0.0.3 192.168.50.0/24', '10.0.0.4 fd50::/64'])
  t.same(plan.skipped.map(s => s.reason), [
    '198.18.0.0/16 from 10.0.0.3 holds the server\'s address 198.18.0.1: routed into the tunnel it would cut the tunnel\'s own path',
    '192.168.50.0/25 from 10.0.0.4 overlaps 192.168.50.0/24 from 10.0.0.3',
    '192.168.99.0/24 from 10.0.0.4 overlaps our own network 192.168.99.0/24'
  ])
  const installed = new Map<string, RouteOffer>([['192.168.50.0/24', { via: B, prefix: P('192.168.50.0/24') }], ['192.168.60.0/24', { via: B, prefix: P('192.168.60.0/24') }]])
  const d = diffRoutes(installed, [{ via: C, prefix: P('192.168.50.0/24') }, { via: C, prefix: P('192.168.70.0/24') }])
  t.same(d.add.map(o => `${intToIp(o.via)} ${formatPrefix(o.prefix)}`), ['10.0.0.4 192.168.50.0/24', '10.0.0.4 192.168.70.0/24'], 'a new network, and one now served by another node')
  t.same(d.remove.map(o => formatPrefix(o.prefix)), ['192.168.60.0/24'], 'withdrawn')
  t.same(diffRoutes(installed, [...installed.values()]), { add: [], remove: [] }, 'nothing changed: no commands')
})

t.test('peerPrefixes: the IPv6 tunnel address as a /128, then the routes', async t => {
  const six = { family: 6 as const, addr: P('fd00:77::/64').addr.slice(), len: 64 }
  six.addr[15] = 2
  t.same(texts(peerPrefixes({ tunnel6: six, routes: [P('192.168.50.0/24')] })), ['fd00:77::2/128', '192.168.50.0/24'])
  t.same(peerPrefixes({ tunnel6: null, routes: [] }), [])
})

interface Node { c: ClientController, dp: FakeDataplane, opt: { advertiseRoutes: IpPrefix[] } }

function lab (opts: { approve: ApproveRoutes, isolation?: boolean, serverRoutes?: string[] }) {
  const net = new FakeNet()
  const clock = new ManualClock()
  const random = seededRandom(7)
  const psk = new Uint8Array(randomBytes(32))
  const serverDp = net.add(ipToInt('198.18.0.1'), 9000, 'server')
  const lines: string[] = []
  const log = new Logger({ level: 'debug', sink: { write: (l) => { lines.push(l) } } })
  const server = new ServerController({
    psk, nodeKey: generateStaticKey(), tunnelIp: ipToInt('10.0.0.1'), prefix: 24, mtu: 1400, maxClients: 10, keepaliveSec: 10,
    advertiseRoutes: (opts.serverRoutes ?? []).map(P), approveRoutes: opts.approve, clientIsolation: opts.isolation === true
  }, { port: serverDp, clock, random, log }, 16)
  serverDp.handler = server
  const clients: ClientController[] = []
  const add = (n: number, routes: string[] = []): Node => {
    const dp = net.add(ipToInt(`198.18.1.${n}`), 40000 + n, 'client')
    const opt = {
      psk, nodeKey: generateStaticKey(), tunnelIp: ipToInt(`10.0.0.${n + 1}`), prefix: 24, mtu: 1400, serverIp: ipToInt('198.18.0.1'), serverPort: 9000,
      keepaliveSec: 10, serverName: '198.18.0.1:9000', advertiseRoutes: routes.map(P)
    }
    const c = new ClientController(opt, { port: dp, clock, random, log: new Logger({ level: 'error', sink: { write: () => {} } }) }, 16)
    dp.handler = c
    clients.push(c)
    return { c, dp, opt }
  }
  const run = (ms: number): void => {
    for (let el = 0; el < ms; el += 250) {
      clock.advance(250)
      server.tick()
      for (const c of clients) if (!gone.has(c)) c.tick()
      net.flush()
    }
  }
  const gone = new Set<ClientController>()
  return { server, serverDp, add, run, lines, gone }
}

const offers = (c: ClientController): string[] => c.routeOffers().map(o => `${intToIp(o.via)} ${formatPrefix(o.prefix)}`)

t.test('only approved routes leave the server; the first holder keeps a network until it leaves; a reload re-decides', async t => {
  const L = lab({ approve: { '10.0.0.3': 'all', '10.0.0.4': ['192.168.50.0/24'] }, serverRoutes: ['172.16.0.0/16'] })
  const a = L.add(1)
  const b = L.add(2, ['192.168.50.0/24', 'fd50::/64'])
  L.run(1000)
  const c = L.add(3, ['192.168.50.0/25', '192.168.80.0/24'])
  L.run(1500)
  t.same(offers(a.c), ['10.0.0.1 172.16.0.0/16', '10.0.0.3 192.168.50.0/24', '10.0.0.3 fd50::/64'], 'a learns the server\'s route and b\'s approved ones, none of c\'s')
  t.same(texts(a.dp.routeByTunnelIp(B)?.prefixes), ['192.168.50.0/24', 'fd50::/64'], 'a sends b\'s networks to b')
  t.same(texts(a.dp.routes.get(0)?.prefixes), ['172.16.0.0/16'], 'and the server\'s to the server')
  t.same(texts(L.serverDp.routeByTunnelIp(B)?.prefixes), ['192.168.50.0/24', 'fd50::/64'], 'the server routes to b\'s networks too')
  t.same(texts(L.serverDp.routeByTunnelIp(C)?.prefixes), [])
  const st = L.server.status().peers.find(p => p.tunnelIp === '10.0.0.4')!
  t.same(st.routes, [
    { prefix: '192.168.50.0/25', state: 'refused', reason: '192.168.50.0/25 overlaps 10.0.0.3\'s approved route 192.168.50.0/24 (the first holder keeps it)' },
    { prefix: '192.168.80.0/24', state: 'pending', reason: 'not approved: add 10.0.0.4=192.168.80.0/24 to the server\'s --approve-routes (or "all")' }
  ])
  t.match(L.server.routeCounters(), { routesApproved: 2, routesPending: 1, routesRefused: 1 })
  t.equal(L.lines.filter(l => l.includes('route 192.168.80.0/24 of 10.0.0.4 is pending')).length, 1, 'pending: logged once, not at every decision')
  t.ok(L.lines.some(l => l.includes('route 192.168.50.0/25 of 10.0.0.4 refused: 192.168.50.0/25 overlaps 10.0.0.3')), 'refused: the log names both nodes and both prefixes')

  // b leaves: its networks are withdrawn, and c (next in line) gets 192.168.50.0/25.
  L.gone.add(b.c)
  L.server.disconnect(B, 'test')
  L.run(1500)
  t.same(offers(a.c), ['10.0.0.1 172.16.0.0/16', '10.0.0.4 192.168.50.0/25'])
  t.same(texts(a.dp.routeByTunnelIp(C)?.prefixes), ['192.168.50.0/25'])

  // SIGHUP: nothing approved any more.
  L.server.setApproveRoutes({})
  L.run(1000)
  t.same(offers(a.c), ['10.0.0.1 172.16.0.0/16'], 'withdrawn from every peer')
  t.same(texts(L.serverDp.routeByTunnelIp(C)?.prefixes), [])
  t.match(L.server.routeCounters(), { routesApproved: 0, routesPending: 2 })
})

t.test('a client that starts advertising a network another client holds does not take it; changed routes reach the peers', async t => {
  const L = lab({ approve: 'all' })
  const a = L.add(1, ['192.168.60.0/24'])
  const b = L.add(2, ['192.168.50.0/24'])
  const c = L.add(3)
  L.run(1500)
  t.same(offers(c.c), ['10.0.0.2 192.168.60.0/24', '10.0.0.3 192.168.50.0/24'])
  // a (registered first) now advertises b's network too, and drops its own: a rekey carries the new list.
  a.opt.advertiseRoutes = [P('192.168.50.0/25'), P('192.168.70.0/24')]
  a.c.onSendLimit(0)
  L.run(1500)
  t.same(L.server.status().peers.find(p => p.tunnelIp === '10.0.0.2')?.routes?.map(r => `${r.prefix} ${r.state}`), ['192.168.50.0/25 refused', '192.168.70.0/24 approved'],
    'b held 192.168.50.0/24 first: it keeps it, although a comes first in registration order')
  t.same(offers(c.c), ['10.0.0.2 192.168.70.0/24', '10.0.0.3 192.168.50.0/24'], 'c: a\'s old network withdrawn, its new one added')
  t.same(texts(c.dp.routeByTunnelIp(ipToInt('10.0.0.2'))?.prefixes), ['192.168.70.0/24'])
})

t.test('--client-isolation: clients get empty peer lists, and still the server\'s routes', async t => {
  const L = lab({ approve: 'all', isolation: true, serverRoutes: ['172.16.0.0/16'] })
  const a = L.add(1)
  const b = L.add(2, ['192.168.50.0/24'])
  L.run(2000)
  t.equal(a.c.state, 'registered')
  t.equal(b.c.state, 'registered')
  t.equal(a.dp.routeByTunnelIp(B), undefined, 'a has no route to b')
  t.equal(b.dp.routeByTunnelIp(ipToInt('10.0.0.2')), undefined, 'b has no route to a')
  t.same(offers(a.c), ['10.0.0.1 172.16.0.0/16'], 'b\'s approved network does not reach a')
  t.same(texts(L.serverDp.routeByTunnelIp(B)?.prefixes), ['192.168.50.0/24'], 'the server itself still routes to it')
  t.equal(a.c.status().peers.length, 1, 'a sees only the server')
  L.run(30_000)
  t.equal(a.dp.routeByTunnelIp(B), undefined, 'and keeps it so (no full list asked for again and again)')
})
