/**
 * IPv6 tunnel addresses on the control plane (issue 11 item 1), over the
 * FakeNet: a client's TUNNEL6 in its registration, the server's checks
 * (outside the network, reserved, bound to another key, in use, a server
 * without IPv6), the answer naming which address was refused on both sides,
 * the routes both ends give the dataplane (PeerRoute.prefixes and
 * setLocalPrefixes), the peer list, peer handshakes claiming another
 * address, and status.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { ManualClock } from '../../src/clock.js'
import { seededRandom } from '../../src/random.js'
import { Logger } from '../../src/log.js'
import { ServerController } from '../../src/control/server.js'
import { ClientController, type ClientOptions } from '../../src/control/client.js'
import { decideInit, type InitView } from '../../src/control/server-registration.js'
import { generateStaticKey } from '../../src/crypto/noise.js'
import { ipToInt } from '../../src/wire/addr.js'
import { formatPrefix, parsePrefix, type IpPrefix } from '../../src/wire/prefix.js'
import { RESP_ADDRESS_IN_USE, RESP_ADDRESS_OUTSIDE_NETWORK } from '../../src/wire/payloads.js'
import { FileRegistry } from '../../src/state/registry-file.js'
import { answerNodes } from '../../src/control/nodes.js'
import { FakeNet, type FakeDataplane } from '../helpers/fake-dataplane.js'
import type { ClientRecord } from '../../src/control/server-context.js'
import { decodeCache, encodeCache } from '../../src/control/peer-cache.js'

const SERVER_IP = ipToInt('198.18.0.1')
const SERVER_PORT = 9000
const p6 = (s: string): IpPrefix => parsePrefix(s, { keepHostBits: true })
const show = (ps: readonly IpPrefix[] | undefined): string[] => (ps ?? []).map(formatPrefix)

function logSink (): { log: Logger, lines: string[] } {
  const lines: string[] = []
  return { log: new Logger({ level: 'debug', sink: { write: (l) => { lines.push(l) } } }), lines }
}

function lab (server6: string | null) {
  const net = new FakeNet()
  const clock = new ManualClock()
  const random = seededRandom(11)
  const psk = new Uint8Array(randomBytes(32))
  const serverDp = net.add(SERVER_IP, SERVER_PORT, 'server')
  const { log, lines: serverLog } = logSink()
  const registry = new FileRegistry(null)
  const server = new ServerController({
    psk, nodeKey: generateStaticKey(), tunnelIp: ipToInt('10.0.0.1'), prefix: 24, tunnel6: server6 === null ? null : p6(server6), mtu: 1400, maxClients: 10, keepaliveSec: 10, registry
  }, { port: serverDp, clock, random, log }, 16)
  serverDp.handler = server
  const clients: ClientController[] = []
  const L = {
    net, clock, server, serverDp, serverLog, registry,
    addClient (n: number, tunnel6: string | null, tunnelIp = `10.0.0.${n + 1}`): { c: ClientController, dp: FakeDataplane, lines: string[], opt: ClientOptions } {
      const dp = net.add(ipToInt(`198.18.1.${n}`), 40000 + n, 'client')
      const { log: clog, lines } = logSink()
      const opt: ClientOptions = {
        psk, nodeKey: generateStaticKey(), tunnelIp: ipToInt(tunnelIp), prefix: 24, tunnel6: tunnel6 === null ? null : p6(tunnel6), mtu: 1400, serverIp: SERVER_IP, serverPort: SERVER_PORT, keepaliveSec: 10, serverName: '198.18.0.1:9000', p2p: false
      }
      const c = new ClientController(opt, { port: dp, clock, random, log: clog }, 64)
      dp.handler = c
      clients.push(c)
      return { c, dp, lines, opt }
    },
    run (ms: number): void {
      for (let el = 0; el < ms; el += 250) {
        clock.advance(250)
        server.tick()
        for (const c of clients) c.tick()
        net.flush()
      }
    }
  }
  return L
}

/** The route a dataplane holds for a tunnel address. */
function routeTo (dp: FakeDataplane, tunnelIp: string): { prefixes?: readonly IpPrefix[] } | undefined {
  return [...dp.routes.values()].find(r => r.tunnelIp === ipToInt(tunnelIp))
}

t.test('two clients with IPv6 addresses: routes, local prefixes, peer list, registry, status', async t => {
  const L = lab('fd00:77::1/64')
  const a = L.addClient(1, 'fd00:77::2/64')
  const b = L.addClient(2, 'fd00:77::3/64')
  L.run(2000)
  t.equal(a.c.state, 'registered')
  t.equal(b.c.state, 'registered')
  t.same(show(L.serverDp.localPrefixes), ['fd00:77::1/128'], 'the server: its own IPv6 address is local')
  t.same(show(routeTo(L.serverDp, '10.0.0.2')?.prefixes), ['fd00:77::2/128'], 'the server routes each client\'s /128 to it')
  t.same(show(routeTo(L.serverDp, '10.0.0.3')?.prefixes), ['fd00:77::3/128'])
  t.same(show(a.dp.localPrefixes), ['fd00:77::2/128'], 'a client: its own IPv6 address is local')
  t.same(show(routeTo(a.dp, '10.0.0.1')?.prefixes), ['fd00:77::1/128'], 'the client routes the server\'s IPv6 address to the server')
  t.same(show(routeTo(a.dp, '10.0.0.3')?.prefixes), ['fd00:77::3/128'], 'and each peer\'s, from the peer list')
  t.same(show(routeTo(b.dp, '10.0.0.2')?.prefixes), ['fd00:77::2/128'])
  const rec = L.registry.list().find(r => r.address === ipToInt('10.0.0.2'))
  t.ok(rec?.address6 !== undefined && formatPrefix({ family: 6, addr: rec.address6, len: 128 }) === 'fd00:77::2/128', 'the registry binds the IPv6 address with the IPv4 one')
  t.same(L.server.status().peers.map(p => [p.tunnelIp, p.tunnel6]), [['10.0.0.2', 'fd00:77::2'], ['10.0.0.3', 'fd00:77::3']], 'server status shows both addresses')
  const st = a.c.status().peers
  t.same(st.map(p => [p.tunnelIp, p.tunnel6]).sort(), [['10.0.0.1', 'fd00:77::1'], ['10.0.0.3', 'fd00:77::3']], 'client status: the server and the peer with both')
  const nodes = answerNodes({ cmd: 'nodes' }, L.server.nodesAdmin) as { nodes: Array<{ address: string, address6: string | null }> }
  t.same(nodes.nodes.map(n => [n.address, n.address6]), [['10.0.0.2', 'fd00:77::2'], ['10.0.0.3', 'fd00:77::3']], 'nodes lists both')
})

t.test('a server with IPv6 and a client without: IPv4 only for that client', async t => {
  const L = lab('fd00:77::1/64')
  const a = L.addClient(1, null)
  const b = L.addClient(2, 'fd00:77::3/64')
  L.run(2000)
  t.equal(a.c.state, 'registered')
  t.same(show(routeTo(L.serverDp, '10.0.0.2')?.prefixes), [], 'no IPv6 route for it')
  t.same(show(a.dp.localPrefixes), [])
  t.same(show(routeTo(a.dp, '10.0.0.3')?.prefixes), ['fd00:77::3/128'], 'it still learns the others\' IPv6 addresses')
  t.equal(L.server.status().peers[0]!.tunnel6, null)
  t.equal(b.c.state, 'registered')
})

t.test('refusals name the IPv6 address on both sides', async t => {
  const cases: Array<{ name: string, server6: string | null, client6: string, client: RegExp, server: RegExp }> = [
    {
      name: 'outside the network',
      server6: 'fd00:77::1/64',
      client6: 'fd00:78::2/64',
      client: /the IPv6 tunnel address fd00:78::2 is outside the server's IPv6 network/,
      server: /refused a client: its IPv6 address fd00:78::2 is outside the network fd00:77::\/64/
    },
    {
      name: 'the server\'s own',
      server6: 'fd00:77::1/64',
      client6: 'fd00:77::1/64',
      client: /the IPv6 tunnel address fd00:77::1 is reserved/,
      server: /its IPv6 address fd00:77::1 is the server's own or the network's all-zero/
    },
    {
      name: 'a server without IPv6',
      server6: null,
      client6: 'fd00:77::2/64',
      client: /this node has the IPv6 tunnel address fd00:77::2, but the server has no IPv6 network/,
      server: /it has the IPv6 address fd00:77::2 but this server has no IPv6 network/
    }
  ]
  for (const c of cases) {
    t.test(c.name, async t => {
      const L = lab(c.server6)
      const a = L.addClient(1, c.client6)
      L.run(1000)
      t.equal(a.c.state, 'rejected')
      t.match(a.c.problem, c.client)
      t.match(L.serverLog.join(''), c.server)
      t.equal(L.server.clientCount, 0)
    })
  }
})

t.test('an IPv6 address bound to another key is refused; nodes remove ADDR6 frees it', async t => {
  const L = lab('fd00:77::1/64')
  const a = L.addClient(1, 'fd00:77::2/64')
  L.run(1000)
  t.equal(a.c.state, 'registered')
  const b = L.addClient(2, 'fd00:77::2/64')
  L.run(1000)
  t.equal(b.c.state, 'rejected')
  t.match(b.c.problem, /the server refused the IPv6 address fd00:77::2: it belongs to another node key/)
  t.match(L.serverLog.join(''), /the IPv6 address fd00:77::2 belongs to another node key .*nodes remove fd00:77::2/)
  const change = answerNodes({ cmd: 'nodes-remove', node: 'fd00:77::2' }, L.server.nodesAdmin) as { nodes: Array<{ address: string }>, disconnected: number }
  t.same(change.nodes.map(n => n.address), ['10.0.0.2'], 'the IPv6 address selects its node')
  t.equal(change.disconnected, 1)
  L.run(35_000)
  t.equal(b.c.state, 'registered', 'the address is free: the other node registers')
  t.equal(L.server.status().peers.find(p => p.tunnelIp === '10.0.0.3')?.tunnel6, 'fd00:77::2')
})

t.test('decideInit: a live client holding the IPv6 address (no registry binding) → ADDRESS_IN_USE about the IPv6 address', async t => {
  const holder = { tunnelIp: ipToInt('10.0.0.2'), tunnel6: p6('fd00:77::2/64'), key: new Uint8Array(32).fill(1), active: true, lastSeen: 0, endpointIp: 1, endpointPort: 2 } as unknown as ClientRecord
  const view: InitView = {
    serverIp: ipToInt('10.0.0.1'), network: ipToInt('10.0.0.0'), prefix: 24, broadcast: ipToInt('10.0.0.255'), tunnel6: p6('fd00:77::1/64'), maxClients: 10,
    registry: { check: () => ({ ok: true }) }, lastInitTs: new Map(), byIp: new Map([[holder.tunnelIp, holder]]), clientCount: () => 1, freeSlots: 5, now: 1000, expiry: 60_000
  }
  const d = decideInit({ tunnelIp: ipToInt('10.0.0.3'), tunnel6: p6('fd00:77::2/64'), key: new Uint8Array(32).fill(2), timestamp: 1 }, view)
  t.match(d, { kind: 'refuse', status: RESP_ADDRESS_IN_USE, family: 6 })
  const ok = decideInit({ tunnelIp: ipToInt('10.0.0.3'), tunnel6: p6('fd00:77::3/64'), key: new Uint8Array(32).fill(2), timestamp: 1 }, view)
  t.match(ok, { kind: 'new' })
  const own = decideInit({ tunnelIp: holder.tunnelIp, tunnel6: p6('fd00:77::5/64'), key: holder.key, timestamp: 1 }, { ...view, maxClients: 1, freeSlots: 0 })
  t.match(own, { kind: 'new' }, 'its own record asking for another IPv6 address: registered afresh, even on a full server')
  t.match(decideInit({ tunnelIp: holder.tunnelIp, tunnel6: p6('fd00:77::2/64'), key: holder.key, timestamp: 1 }, view), { kind: 'rekey' }, 'the same one: a rekey')
  const none = decideInit({ tunnelIp: ipToInt('10.0.0.3'), tunnel6: p6('fd00:77::3/64'), key: new Uint8Array(32).fill(2), timestamp: 1 }, { ...view, tunnel6: null })
  t.match(none, { kind: 'refuse', status: RESP_ADDRESS_OUTSIDE_NETWORK, family: 6 })
})

t.test('a peer whose handshake claims another IPv6 address than the peer list is refused', async t => {
  const L = lab('fd00:77::1/64')
  const a = L.addClient(1, 'fd00:77::2/64')
  const b = L.addClient(2, 'fd00:77::3/64')
  L.run(2000)
  // b now claims another IPv6 address in its peer handshakes than the server listed for it.
  b.opt.tunnel6 = p6('fd00:77::99/64')
  a.c.onNeedSession(1)
  b.c.onNeedSession(1)
  L.run(3000)
  t.ok(a.c.counters.peerKeyMismatch + b.c.counters.peerKeyMismatch > 0, 'refused like a key mismatch (counted)')
  t.match(a.lines.join('') + b.lines.join(''), /claims the IPv6 address fd00:77::99, but the server lists fd00:77::3/)
  t.equal(a.c.status().peers.find(p => p.tunnelIp === '10.0.0.3')?.session, 'none', 'no session with it')
})

t.test('registry.json and peers.json keep the IPv6 address', async t => {
  const dir = t.testdir({})
  const file = `${dir}/registry.json`
  const key = new Uint8Array(32).fill(7)
  const r1 = new FileRegistry(file)
  r1.bind(key, ipToInt('10.0.0.2'), 1000, p6('fd00:77::2/64').addr)
  const r2 = new FileRegistry(file)
  t.match(r2.check(new Uint8Array(32).fill(8), ipToInt('10.0.0.9'), p6('fd00:77::2/64').addr), { ok: false, reason: 'address-bound-to-other-key', family: 6 }, 'bound after a restart')
  t.same(r2.check(key, ipToInt('10.0.0.2'), p6('fd00:77::2/64').addr), { ok: true }, 'its own key')
  t.same(r2.remove({ address: ipToInt('10.0.0.2') }).length, 1)
  t.same(r2.check(new Uint8Array(32).fill(8), ipToInt('10.0.0.9'), p6('fd00:77::2/64').addr), { ok: true }, 'freed with the node')

  const text = encodeCache([{ tunnelIp: ipToInt('10.0.0.3'), key, endpoints: [{ ip: 1, port: 2 }], confirmedAt: 5000, tunnel6: p6('fd00:77::3/64') }])
  t.match(text, /"tunnel6": "fd00:77::3\/64"/)
  const back = decodeCache(text, 6000)
  t.equal(formatPrefix(back.peers[0]!.tunnel6!), 'fd00:77::3/64')
  t.equal(decodeCache(text.replace('fd00:77::3/64', 'nonsense'), 6000).skipped, 1, 'a malformed one: the entry is skipped')
})
