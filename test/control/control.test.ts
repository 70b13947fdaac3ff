/**
 * Control plane in process: a server and clients over FakeNet on a manual
 * clock. Registration, peer lists, end-to-end sessions through the relay,
 * wrong keys, address conflicts, capacity, expiry, server restart.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { ManualClock } from '../../src/clock.js'
import { seededRandom, type Random } from '../../src/random.js'
import { Logger } from '../../src/log.js'
import { ServerController } from '../../src/control/server.js'
import { ClientController } from '../../src/control/client.js'
import { consumeInit, createInit, createResponse, generateStaticKey, type StaticKey } from '../../src/crypto/noise.js'
import { encodeInitPayload, encodeRespPayload, RESP_OK } from '../../src/wire/payloads.js'
import { fingerprint } from '../../src/identity/key-text.js'
import { FilePin, GivenPin, type ServerPin } from '../../src/identity/server-pin.js'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ipToInt } from '../../src/wire/addr.js'
import { FakeNet, type FakeDataplane } from '../helpers/fake-dataplane.js'
import { InitGuard, LOAD_RING_OCCUPANCY } from '../../src/dataplane/init-guard.js'
import { CookieChecker, CookieGenerator, macKeys } from '../../src/crypto/cookie.js'
import { stripMacs } from '../../src/wire/cookie.js'
import { HandshakePool, poolSize } from '../../src/control/handshake-pool.js'

const SERVER_IP = ipToInt('198.18.0.1')
const SERVER_PORT = 9000

function logSink (): { log: Logger, lines: string[] } {
  const lines: string[] = []
  return { log: new Logger({ level: 'debug', sink: { write: (l) => { lines.push(l) } } }), lines }
}

interface Lab {
  net: FakeNet
  clock: ManualClock
  psk: Uint8Array
  serverKey: StaticKey
  server: ServerController
  serverDp: FakeDataplane
  serverLog: string[]
  addClient(n: number, opts?: { tunnelIp?: string, psk?: Uint8Array, nodeKey?: StaticKey, serverPin?: ServerPin, fec?: { data: number, parity: number } | null }): { c: ClientController, dp: FakeDataplane, lines: string[] }
  /** Advance time in ticks, delivering everything in between. */
  run(ms: number): void
}

function lab (opts: { maxClients?: number } = {}): Lab {
  const net = new FakeNet()
  const clock = new ManualClock()
  // Every random choice (indexes, jitter) pinned: a run is the same every time.
  const random: Random = seededRandom(1)
  const psk = new Uint8Array(randomBytes(32))
  const serverKey = generateStaticKey()
  const serverDp = net.add(SERVER_IP, SERVER_PORT, 'server')
  const { log, lines: serverLog } = logSink()
  const server = new ServerController({ psk, nodeKey: serverKey, tunnelIp: ipToInt('10.0.0.1'), prefix: 24, mtu: 1400, maxClients: opts.maxClients ?? 10, keepaliveSec: 10 }, { port: serverDp, clock, random, log }, 16)
  serverDp.handler = server
  const clients: ClientController[] = []
  const l: Lab = {
    net, clock, psk, serverKey, server, serverDp, serverLog,
    addClient (n, o = {}) {
      const dp = net.add(ipToInt(`198.18.1.${n}`), 40000 + n, 'client')
      const { log: clog, lines } = logSink()
      const c = new ClientController({
        psk: o.psk ?? psk,
        nodeKey: o.nodeKey ?? generateStaticKey(),
        serverPin: o.serverPin,
        tunnelIp: ipToInt(o.tunnelIp ?? `10.0.0.${n + 1}`),
        prefix: 24,
        mtu: 1400,
        serverIp: SERVER_IP,
        serverPort: SERVER_PORT,
        keepaliveSec: 10,
        serverName: '198.18.0.1:9000',
        fec: o.fec ?? null
      }, { port: dp, clock, random, log: clog }, 64)
      dp.handler = c
      clients.push(c)
      return { c, dp, lines }
    },
    run (ms) {
      for (let el = 0; el < ms; el += 250) {
        clock.advance(250)
        l.server.tick()
        for (const c of clients) c.tick()
        net.flush()
      }
    }
  }
  return l
}

function sameKey (a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  return a !== undefined && b !== undefined && Buffer.from(a).equals(Buffer.from(b))
}

t.test('two clients register, learn of each other, and keys match both ways', async t => {
  const L = lab()
  const a = L.addClient(1)
  const b = L.addClient(2)
  L.run(1000)
  t.equal(a.c.state, 'registered')
  t.equal(b.c.state, 'registered')
  t.equal(L.server.clientCount, 2)
  // Client → server keys: the client's send key opens at the server's receive index.
  const aSend = a.dp.sendKeys.get(0)!
  const srvRecv = L.serverDp.recvKeys.get(aSend.remoteIndex)
  t.ok(sameKey(aSend.key, srvRecv?.key), 'client send key = server receive key')
  const srvRouteA = L.serverDp.routeByTunnelIp(ipToInt('10.0.0.2'))!
  const srvSendA = L.serverDp.sendKeys.get(srvRouteA.slot)!
  t.ok(sameKey(srvSendA.key, a.dp.recvKeys.get(srvSendA.remoteIndex)?.key), 'server send key = client receive key')
  t.equal(srvRouteA.endpointIp, a.dp.ip)
  t.equal(srvRouteA.endpointPort, a.dp.port)
  // Peer lists: a knows b as a relayed peer via the server's endpoint.
  const aToB = a.dp.routeByTunnelIp(ipToInt('10.0.0.3'))
  t.ok(aToB, 'a has a route to b')
  t.equal(aToB!.relayVia, true)
  t.equal(aToB!.endpointIp, SERVER_IP)
  t.ok(b.dp.routeByTunnelIp(ipToInt('10.0.0.2')), 'b has a route to a')
  const st = a.c.status()
  t.same(st.peers.map(p => [p.tunnelIp, p.path]), [['10.0.0.1', 'direct'], ['10.0.0.3', 'relay']])
})

t.test('end-to-end session through the relay: the server never holds the keys', async t => {
  const L = lab()
  const a = L.addClient(1)
  const b = L.addClient(2)
  L.run(1000)
  const slotB = a.dp.routeByTunnelIp(ipToInt('10.0.0.3'))!.slot
  const slotA = b.dp.routeByTunnelIp(ipToInt('10.0.0.2'))!.slot
  a.c.onNeedSession(slotB)
  L.net.flush()
  const aSend = a.dp.sendKeys.get(slotB)
  t.ok(aSend, 'initiator can send after one relayed round trip')
  t.ok(sameKey(aSend!.key, b.dp.recvKeys.get(aSend!.remoteIndex)?.key), 'a→b key matches at b')
  const bSend = b.dp.sendKeys.get(slotA)
  t.ok(bSend, 'responder sends after the confirm')
  t.ok(sameKey(bSend!.key, a.dp.recvKeys.get(bSend!.remoteIndex)?.key), 'b→a key matches at a')
  for (const k of L.serverDp.recvKeys.values()) t.notOk(sameKey(k.key, aSend!.key), 'server has no a→b key')
  t.equal(a.c.status().peers[1].session, 'established')
})

t.test('FEC is negotiated per peer session: on only when both offer it, each side sending with its own parameters', async t => {
  const L = lab()
  const a = L.addClient(1, { fec: { data: 10, parity: 3 } })
  const b = L.addClient(2, { fec: { data: 4, parity: 2 } })
  const c = L.addClient(3)
  L.run(1000)
  const slot = (x: typeof a, ip: string): number => x.dp.routeByTunnelIp(ipToInt(ip))!.slot
  a.c.onNeedSession(slot(a, '10.0.0.3'))
  a.c.onNeedSession(slot(a, '10.0.0.4'))
  L.run(500)
  const aToB = a.dp.sendKeys.get(slot(a, '10.0.0.3'))!
  const bToA = b.dp.sendKeys.get(slot(b, '10.0.0.2'))!
  t.same(aToB.fec, { data: 10, parity: 3 }, 'a (initiator) sends with its own 10,3')
  t.same(bToA.fec, { data: 4, parity: 2 }, 'b (responder) sends with its own 4,2')
  t.equal(b.dp.recvKeys.get(aToB.remoteIndex)!.fec, true, 'b decodes a\'s parity')
  t.equal(a.dp.recvKeys.get(bToA.remoteIndex)!.fec, true, 'a decodes b\'s parity')
  const aToC = a.dp.sendKeys.get(slot(a, '10.0.0.4'))!
  const cToA = c.dp.sendKeys.get(slot(c, '10.0.0.2'))!
  t.equal(aToC.fec, null, 'c did not offer FEC: a sends none')
  t.equal(cToA.fec, null)
  t.equal(c.dp.recvKeys.get(aToC.remoteIndex)!.fec, false)
  t.equal(a.dp.recvKeys.get(cToA.remoteIndex)!.fec, false, 'a expects no parity from c')
  const st = a.c.status().peers
  t.same(st.map((p) => [p.tunnelIp, p.fec]), [['10.0.0.1', undefined], ['10.0.0.3', { data: 10, parity: 3 }], ['10.0.0.4', null]])
  t.equal(c.c.status().peers.every((p) => p.fec === undefined), true, 'no FEC field without --fec')
})

t.test('wrong key: the client says so plainly, keeps retrying quietly; the server logs once a minute', async t => {
  const L = lab()
  const bad = L.addClient(1, { psk: new Uint8Array(randomBytes(32)) })
  L.run(500)
  t.equal(bad.c.state, 'rejected')
  t.match(bad.c.problem ?? '', /key/)
  const errors = bad.lines.filter(l => /key/.test(l) && /ERROR/.test(l))
  L.run(40_000)
  t.equal(bad.lines.filter(l => /key/.test(l) && /ERROR/.test(l)).length, errors.length, 'no repeated error lines while retrying')
  const sentBefore = L.net.sent
  L.run(20_000)
  t.ok(L.net.sent > sentBefore, 'still retrying')
  t.ok(L.net.sent - sentBefore < 20, 'retries are backed off')
  const serverLines = L.serverLog.filter(l => /wrong network key/.test(l))
  t.ok(serverLines.length >= 1 && serverLines.length <= 2, `server logged ${serverLines.length} times in 60 s`)
  t.equal(L.server.clientCount, 0)
})

t.test('a server under load answers with a cookie: the client resends at once with mac2 and registers', async t => {
  const L = lab()
  // The server's inbound worker, as the FakeNet sees it: an InitGuard that is always under load.
  const guard = new InitGuard(new CookieChecker(macKeys(L.psk), (b) => { b.set(randomBytes(b.length)) }), 0)
  const verdicts: string[] = []
  L.net.filter = (d) => {
    if (d.to.ip !== SERVER_IP || d.bytes[0] !== 1) return true
    const v = guard.check(d.bytes, 0, d.bytes.length, d.from.ip, d.from.port, L.clock.now(), LOAD_RING_OCCUPANCY)
    verdicts.push(v)
    if (v === 'cookie') L.net.queue.push({ from: d.to, to: d.from, bytes: guard.checker.createReply(d.bytes, 0, d.bytes.length, d.from.ip, d.from.port, L.clock.now(), new Uint8Array(64)) })
    return v === 'pass'
  }
  const a = L.addClient(1)
  L.run(250)
  t.equal(a.c.state, 'registered', 'registered within the first tick (no retry timer waited for)')
  t.same(verdicts, ['cookie', 'pass'], 'the first init got a cookie, the immediate resend passed')
  L.run(130_000)
  t.equal(a.c.state, 'registered', 'rekeys keep working under load (a new cookie after the secret rotates)')
  t.ok(verdicts.filter(v => v === 'pass').length >= 2)
  t.notOk(verdicts.includes('bad-mac1'), 'every init carried a valid mac1')
})

t.test('with a handshake pool, createResponse runs on a worker and clients register as before', async t => {
  const L = lab()
  const pool = await HandshakePool.create(1)
  t.teardown(() => pool.close())
  L.server.handshakePool = pool
  // Warm up: the first task starts the thread (seconds under the TypeScript test loader).
  const psk = new Uint8Array(randomBytes(32))
  const k = generateStaticKey()
  t.ok(await pool.run(consumeInit(psk, k, createInit(psk, generateStaticKey(), 1, new Uint8Array(33)).message).state, 2, new Uint8Array(18)), 'the pool answers')
  const a = L.addClient(1)
  const b = L.addClient(2)
  for (let i = 0; i < 300 && (a.c.state !== 'registered' || b.c.state !== 'registered'); i++) {
    await new Promise(resolve => setTimeout(resolve, 20)) // the pool answers in real time
    L.run(250)
  }
  t.equal(a.c.state, 'registered')
  t.equal(b.c.state, 'registered')
  t.ok(L.server.handshakeCounters.handshakesAccepted >= 2)
  t.equal(L.server.clientCount, 2)
  t.equal(poolSize('auto', 2), 0, 'auto on 2 cores: no pool (bench:handshakes)')
  t.equal(poolSize('auto', 8), 0, 'auto stays 0 until measured on more cores')
  t.equal(poolSize(3, 2), 3)
})

t.test('an address bound to another node key is refused, live or not, until the registry frees it', async t => {
  const L = lab()
  const a = L.addClient(1, { tunnelIp: '10.0.0.9' })
  L.run(1000)
  const b = L.addClient(2, { tunnelIp: '10.0.0.9' })
  L.run(1000)
  t.equal(a.c.state, 'registered')
  t.equal(b.c.state, 'rejected')
  t.match(b.c.problem ?? '', /belongs to another node key/)
  t.ok(L.serverLog.some(l => /belongs to another node key \(SHA256:\S+, registered now from [^)]+\); this one presented SHA256:/.test(l)), 'the server names the holder key, where it is, and the key presented')
  t.equal(L.server.handshakeCounters.handshakesKeyRefused > 0, true, 'counted')
  // The holder leaves cleanly: the address stays bound to its key.
  a.c.shutdown()
  L.net.flush()
  // a's daemon has stopped: nothing more from it (the lab would otherwise keep ticking it).
  L.net.filter = (d) => d.from.ip !== a.dp.ip
  L.run(20_000)
  t.equal(b.c.state, 'rejected', 'still refused after the holder said bye')
  t.equal(L.server.registry.remove({ address: ipToInt('10.0.0.9') }).length, 1, 'the operator frees it')
  L.run(20_000)
  t.equal(b.c.state, 'registered', 'the second client gets the address once freed')
})

t.test('a restarted client (same node key) takes its address back at once', async t => {
  const L = lab()
  const key = generateStaticKey()
  const a = L.addClient(1, { nodeKey: key })
  L.run(1000)
  t.equal(a.c.state, 'registered')
  // The process dies without a Bye; a new one with the same key (and a new port) registers.
  L.net.filter = (d) => d.from.ip !== a.dp.ip
  const a2 = L.addClient(3, { tunnelIp: '10.0.0.2', nodeKey: key })
  L.run(1000)
  t.equal(a2.c.state, 'registered')
  t.equal(L.server.clientCount, 1)
})

t.test('addresses outside the network or reserved are refused', async t => {
  const L = lab()
  const out = L.addClient(1, { tunnelIp: '10.9.0.5' })
  const own = L.addClient(2, { tunnelIp: '10.0.0.1' })
  L.run(1000)
  t.match(out.c.problem ?? '', /outside/)
  t.match(own.c.problem ?? '', /reserved/)
})

t.test('max-clients is enforced', async t => {
  const L = lab({ maxClients: 1 })
  const a = L.addClient(1)
  L.run(1000)
  const b = L.addClient(2)
  L.run(1000)
  t.equal(a.c.state, 'registered')
  t.match(b.c.problem ?? '', /full/)
})

t.test('a silent client expires and the others forget it', async t => {
  const L = lab()
  const a = L.addClient(1)
  const b = L.addClient(2)
  L.run(1000)
  L.net.filter = (d) => !(d.from.ip === b.dp.ip)
  L.run(60_000)
  t.equal(L.server.clientCount, 1)
  t.notOk(a.dp.routeByTunnelIp(ipToInt('10.0.0.3')), 'a forgot b')
})

t.test('server restart: clients re-register by themselves', async t => {
  const L = lab()
  const a = L.addClient(1)
  L.run(1000)
  t.equal(a.c.state, 'registered')
  // A new server process on the same address: no sessions.
  const { log } = logSink()
  const fresh = new ServerController({ psk: L.psk, nodeKey: L.serverKey, tunnelIp: ipToInt('10.0.0.1'), prefix: 24, mtu: 1400, maxClients: 10, keepaliveSec: 10 }, { port: L.serverDp, clock: L.clock, random: seededRandom(2), log }, 16)
  L.serverDp.handler = fresh
  L.server = fresh
  L.serverDp.recvKeys.clear()
  L.run(12_000) // the next keepalive meets an unknown session → reject → re-register
  t.equal(fresh.clientCount, 1)
  t.equal(a.c.state, 'registered')
})

/** Two registered clients (10.0.0.2, 10.0.0.3) with an end-to-end session a → b set up through the relay. */
function peersWithSession (): { L: Lab, a: ReturnType<Lab['addClient']>, b: ReturnType<Lab['addClient']>, slotB: number } {
  const L = lab()
  const a = L.addClient(1)
  const b = L.addClient(2)
  L.run(1000)
  const slotB = a.dp.routeByTunnelIp(ipToInt('10.0.0.3'))!.slot
  a.c.onNeedSession(slotB)
  L.run(500)
  return { L, a, b, slotB }
}

t.test('a peer that forgot us gets a new session when our data reaches it (server-restart race)', async t => {
  const { L, a, b, slotB } = peersWithSession()
  t.equal(b.c.status().peers[1].session, 'established')
  // The server restarts; b re-registers first (a's packets are held back), so b's fresh
  // list lacks a and b forgets it; a re-registers later and keeps its session with b.
  const fresh = new ServerController({ psk: L.psk, nodeKey: L.serverKey, tunnelIp: ipToInt('10.0.0.1'), prefix: 24, mtu: 1400, maxClients: 10, keepaliveSec: 10 }, { port: L.serverDp, clock: L.clock, random: seededRandom(2), log: logSink().log }, 16)
  L.serverDp.handler = fresh
  L.server = fresh
  L.serverDp.recvKeys.clear()
  L.net.filter = (d) => d.from.ip !== a.dp.ip
  L.run(12_000)
  L.net.filter = () => true
  L.run(12_000)
  const bView = b.c.status().peers.find(p => p.tunnelIp === '10.0.0.2')!
  const aView = a.c.status().peers.find(p => p.tunnelIp === '10.0.0.3')!
  t.equal(bView.session, 'none', 'b forgot the session')
  t.equal(aView.session, 'established', 'a still has it')
  // a's data on the old session reaches b through the relay: b's inbound worker reports an unknown index with the source id.
  const hdr = new Uint8Array(16); hdr[0] = 4
  const sent0 = L.net.sent
  b.c.onControl({ kind: 'unknown-index', bytes: hdr, ip: SERVER_IP, port: SERVER_PORT, via: bView.peerId })
  t.equal(L.net.sent, sent0 + 1, 'b starts a handshake with a at once')
  L.run(1000)
  const slotA = b.dp.routeByTunnelIp(ipToInt('10.0.0.2'))!.slot
  const bSend = b.dp.sendKeys.get(slotA)
  const aSend = a.dp.sendKeys.get(a.dp.routeByTunnelIp(ipToInt('10.0.0.3'))!.slot)
  t.ok(bSend && aSend, 'both can send again')
  t.ok(sameKey(aSend!.key, b.dp.recvKeys.get(aSend!.remoteIndex)?.key), 'a→b key matches at b')
  t.ok(sameKey(bSend!.key, a.dp.recvKeys.get(bSend!.remoteIndex)?.key), 'b→a key matches at a')
  const s1 = L.net.sent
  for (let i = 0; i < 100; i++) b.c.onControl({ kind: 'unknown-index', bytes: hdr, ip: SERVER_IP, port: SERVER_PORT, via: bView.peerId })
  t.equal(L.net.sent, s1, 'no handshake while a session exists')
})

t.test('a lost server is detected and the client reconnects with backoff', async t => {
  const L = lab()
  const a = L.addClient(1)
  L.run(1000)
  L.net.filter = () => false
  L.run(40_000)
  t.equal(a.c.state, 'reconnecting')
  L.net.filter = () => true
  L.run(20_000)
  t.equal(a.c.state, 'registered')
})

t.test('rekey: client–server and peer sessions are replaced after REKEY_AFTER, the old one lingers for in-flight packets', async t => {
  const { L, a, b, slotB } = peersWithSession()
  const srv0 = a.dp.sendKeys.get(0)!
  const peer0 = a.dp.sendKeys.get(slotB)!
  L.run(125_000)
  const srv1 = a.dp.sendKeys.get(0)!
  const peer1 = a.dp.sendKeys.get(slotB)!
  t.not(srv1.remoteIndex, srv0.remoteIndex, 'new client→server session')
  t.notOk(sameKey(srv1.key, srv0.key), 'new key')
  t.ok(sameKey(srv1.key, L.serverDp.recvKeys.get(srv1.remoteIndex)?.key), 'server can open the new session')
  t.not(peer1.remoteIndex, peer0.remoteIndex, 'new a→b session')
  t.ok(sameKey(peer1.key, b.dp.recvKeys.get(peer1.remoteIndex)?.key), 'b can open the new a→b session')
  t.ok(L.serverDp.recvKeys.get(srv0.remoteIndex), 'the old session still opens in-flight packets')
  L.run(35_000)
  t.notOk(L.serverDp.recvKeys.get(srv0.remoteIndex), 'and is dropped after the grace period')
  t.equal(a.c.state, 'registered')
  t.equal(L.server.clientCount, 2)
})

t.test('REJECT_AFTER: with every rekey handshake lost, no session sends with its key past 180 s, on either side of either session', async t => {
  const { L, a, b, slotB } = peersWithSession()
  const aSlotOnServer = L.serverDp.routeByTunnelIp(ipToInt('10.0.0.2'))!.slot
  const srvKey = a.dp.sendKeys.get(0)!.key
  const abKey = a.dp.sendKeys.get(slotB)!.key
  t.ok(L.serverDp.sendKeys.has(aSlotOnServer) && b.dp.sendKeys.size === 2, 'every side has its send keys')
  // Every handshake init from now on is lost (to the server, and relayed between peers): no rekey can succeed.
  const isInit = (d: { bytes: Uint8Array }): boolean => d.bytes[0] === 1 || (d.bytes[0] === 5 && d.bytes[8] === 1)
  L.net.filter = (d) => !isInit(d)
  L.run(170_000)
  t.ok(sameKey(a.dp.sendKeys.get(0)?.key, srvKey), 'at ~171 s the old client→server key is still in use (rekeys failing)')
  t.same(a.dp.clearedSendKeys, [], 'nothing cleared before REJECT_AFTER')
  L.run(11_000)
  t.notOk(a.dp.sendKeys.has(0), 'client: the send key to the server is gone past REJECT_AFTER')
  t.notOk(a.dp.sendKeys.has(slotB), 'client a: the send key to b is gone')
  t.notOk(b.dp.sendKeys.has(b.dp.routeByTunnelIp(ipToInt('10.0.0.2'))!.slot), 'client b (the responder): its send key to a is gone too')
  t.notOk(L.serverDp.sendKeys.has(aSlotOnServer), 'server: its send key to a is gone (it used to keep it until the client replaced it)')
  t.ok(a.dp.clearedSendKeys.includes(0) && a.dp.clearedSendKeys.includes(slotB), 'cleared through DataplanePort.clearSendKey')
  t.equal([...a.dp.recvKeys.values()].filter(k => sameKey(k.key, abKey)).length, 0, 'and nothing opens with the old keys')
  t.notOk(a.c.status().peers.some(p => p.tunnelIp === '10.0.0.3' && p.session === 'established'), 'a shows no session with b')
  // The handshakes get through again: new sessions, new keys.
  L.net.filter = () => true
  L.run(20_000)
  t.ok(a.dp.sendKeys.has(0) && !sameKey(a.dp.sendKeys.get(0)!.key, srvKey), 'a registered again with a new key')
  t.equal(a.c.state, 'registered')
})

t.test('rekey before the limits: over 10 minutes of normal operation no send key is ever cleared, every session is replaced in time', async t => {
  const { L, a, b, slotB } = peersWithSession()
  const seen = new Set<string>()
  for (let i = 0; i < 20; i++) {
    L.run(30_000)
    seen.add(Buffer.from(a.dp.sendKeys.get(slotB)!.key).toString('hex'))
  }
  t.same(a.dp.clearedSendKeys, [], 'client a: never')
  t.same(b.dp.clearedSendKeys, [], 'client b: never')
  t.same(L.serverDp.clearedSendKeys, [], 'server: never')
  t.ok(seen.size >= 5, `the a→b key changed every ~2 minutes (${seen.size} keys in 10 minutes)`)
})

t.test('SEND_LIMIT (REKEY_AFTER_MESSAGES reached): the client starts a new session at once, with the server and with a peer', async t => {
  const { L, a, slotB } = peersWithSession()
  L.run(10_000)
  const srv0 = a.dp.sendKeys.get(0)!
  const peer0 = a.dp.sendKeys.get(slotB)!
  a.c.onSendLimit(0)
  a.c.onSendLimit(slotB)
  L.run(500)
  t.not(a.dp.sendKeys.get(0)!.remoteIndex, srv0.remoteIndex, 'a new client→server session, 110 s before REKEY_AFTER')
  t.not(a.dp.sendKeys.get(slotB)!.remoteIndex, peer0.remoteIndex, 'a new a→b session')
  t.equal(a.c.state, 'registered')
})

t.test('the server moves to a new address (dynamic DNS): setServerEndpoint moves slot 0 and the relay routes, and re-registers', async t => {
  const L = lab()
  const a = L.addClient(1)
  const b = L.addClient(2)
  L.run(1000)
  t.equal(a.c.state, 'registered')
  t.equal(a.dp.routeByTunnelIp(ipToInt('10.0.0.3'))?.endpointIp, SERVER_IP, 'b is relayed through the old address')
  t.equal(a.c.setServerEndpoint(SERVER_IP, SERVER_PORT), false, 'the same address: nothing to do')
  // The old address goes dark; the server comes back on another address.
  const NEW_IP = ipToInt('198.18.0.77')
  L.net.filter = (d) => d.to.ip !== SERVER_IP && d.from.ip !== SERVER_IP
  const newDp = L.net.add(NEW_IP, SERVER_PORT, 'server')
  const { log } = logSink()
  const moved = new ServerController({ psk: L.psk, nodeKey: L.serverKey, tunnelIp: ipToInt('10.0.0.1'), prefix: 24, mtu: 1400, maxClients: 10, keepaliveSec: 10 }, { port: newDp, clock: L.clock, random: seededRandom(3), log }, 16)
  newDp.handler = moved
  L.server = moved
  L.run(40_000)
  t.equal(a.c.state, 'reconnecting', 'no answer on the old address: reconnecting')
  t.equal(moved.clientCount, 0)
  const sentBefore = L.net.sent
  t.equal(a.c.setServerEndpoint(NEW_IP, SERVER_PORT), true)
  t.ok(L.net.sent > sentBefore, 'an init goes out at once, not at the next retry')
  t.equal(a.dp.routes.get(0)?.endpointIp, NEW_IP, 'slot 0 (the server) now points at the new address')
  t.equal(a.dp.routeByTunnelIp(ipToInt('10.0.0.3'))?.endpointIp, NEW_IP, 'the relayed peer b now goes through the new address')
  t.equal(a.dp.routeByTunnelIp(ipToInt('10.0.0.3'))?.relayVia, true)
  b.c.setServerEndpoint(NEW_IP, SERVER_PORT)
  L.run(2000)
  t.equal(a.c.state, 'registered', 'a registered at the new address')
  t.equal(b.c.state, 'registered', 'b too')
  t.equal(moved.clientCount, 2)
  const st = a.c.status()
  t.equal(st.peers[0]!.endpoint, '198.18.0.77:9000', 'status shows the new server endpoint')
  t.ok(a.dp.routeByTunnelIp(ipToInt('10.0.0.3')), 'a still knows b after the move')
})

t.test('setKeepalive (reload): the next keepalive uses the new interval', async t => {
  const L = lab()
  const a = L.addClient(1)
  // Past the RTT warm-up (3 Pings each way 1 s apart, control/rtt.ts): then the server pings every 30 s, so the
  // client's datagrams to the server in 10 s are its keepalives plus at most one Pong.
  L.run(5000)
  a.c.setKeepalive(2)
  let pings = 0
  L.net.filter = (d) => { if (d.from.ip === a.dp.ip && d.to.ip === SERVER_IP) pings++; return true }
  L.run(10_000)
  t.ok(pings >= 4 && pings <= 7, `about one keepalive every 2 s over 10 s (got ${pings}; at the old 10 s: at most 3)`)
})

t.test('setMaxClients (reload): lowering never evicts, it refuses new clients beyond it', async t => {
  const L = lab({ maxClients: 10 })
  const a = L.addClient(1)
  const b = L.addClient(2)
  L.run(1000)
  t.equal(L.server.clientCount, 2)
  L.server.setMaxClients(1)
  const c = L.addClient(3)
  L.run(60_000)
  t.equal(a.c.state, 'registered', 'a stays')
  t.equal(b.c.state, 'registered', 'b stays (over the new limit, but live)')
  t.equal(L.server.clientCount, 2)
  t.equal(c.c.state, 'rejected', 'a new client is refused')
  t.match(c.c.problem, /server is full/)
  L.server.setMaxClients(3)
  L.run(60_000)
  t.equal(c.c.state, 'registered', 'raised again: it gets in at its next try')
})

t.test('peer handshakes: an init or a response made with another node key than the server listed is dropped, counted, logged once', async t => {
  const L = lab()
  const a = L.addClient(1)
  const b = L.addClient(2)
  L.run(1000)
  const mallory = generateStaticKey()
  const peerB = a.c.status().peers.find(p => p.tunnelIp === '10.0.0.3')!
  t.match(peerB.key, /^SHA256:/, 'status shows the peer key fingerprint')
  // Mallory has the network key and poses as b (as a malicious server or an on-path member could).
  const payload = encodeInitPayload({ role: 2, prefixLen: 24, mtu: 1400, tunnelIp: ipToInt('10.0.0.3'), timestamp: Date.now() + 1e9, lan: [] })
  const forgedInit = new CookieGenerator(macKeys(L.psk)).addMacs(createInit(L.psk, mallory, 0x4242, payload).message, 0) // a member makes a valid mac1
  const sent = L.net.sent
  a.c.onControl({ kind: 'relayed', bytes: forgedInit, ip: SERVER_IP, port: SERVER_PORT, via: peerB.peerId })
  t.equal(L.net.sent, sent, 'no response to the impostor')
  t.equal(a.c.counters.peerKeyMismatch, 1, 'counted')
  t.equal(a.lines.filter(l => /dropped a peer handshake from 10\.0\.0\.3: it was made with node key SHA256:\S+, but the server lists SHA256:/.test(l)).length, 1, 'logged')
  // a starts a session with b; Mallory answers a's init instead of b.
  const held: Uint8Array[] = []
  L.net.filter = (d) => {
    if (d.from.ip === a.dp.ip && d.bytes[0] === 5 && d.bytes[8] === 1) { held.push(d.bytes.subarray(8)); return false }
    return true
  }
  const slotB = a.dp.routeByTunnelIp(ipToInt('10.0.0.3'))!.slot
  a.c.onNeedSession(slotB)
  L.net.flush()
  t.equal(held.length, 1, 'a sent its init')
  const hs = consumeInit(L.psk, mallory, stripMacs(held[0]))
  const forgedResp = createResponse(hs.state, 0x99, encodeRespPayload({ status: RESP_OK, prefixLen: 24, mtu: 1400, tunnelIp: ipToInt('10.0.0.3'), peerId: 0, observedIp: 0, observedPort: 0 })).message
  a.c.onControl({ kind: 'relayed', bytes: forgedResp, ip: SERVER_IP, port: SERVER_PORT, via: peerB.peerId })
  t.equal(a.c.counters.peerKeyMismatch, 2, 'the forged response is counted')
  t.not(a.c.status().peers.find(p => p.tunnelIp === '10.0.0.3')!.session, 'established', 'no session with the impostor')
  t.equal(a.lines.filter(l => /dropped a peer handshake/.test(l)).length, 1, 'the warning is rate-limited (once a minute per peer)')
  // The genuine peer still gets its session.
  L.net.filter = () => true
  L.run(3000)
  a.c.onNeedSession(slotB)
  L.run(1000)
  t.equal(a.c.status().peers.find(p => p.tunnelIp === '10.0.0.3')!.session, 'established')
  t.equal(b.c.status().peers.find(p => p.tunnelIp === '10.0.0.2')!.session, 'established')
})

t.test('another protocol version: the server answers Reject VERSION and logs once a minute; a client told so says so', async t => {
  const L = lab()
  // A version-1 node's init: the v2 layout is enough, only byte 1 matters.
  const v1 = createInit(L.psk, generateStaticKey(), 0x0badcafe, encodeInitPayload({ role: 1, prefixLen: 24, mtu: 1400, tunnelIp: ipToInt('10.0.0.50'), timestamp: 1, lan: [] })).message
  v1[1] = 1
  const from = { ip: ipToInt('198.18.7.7'), port: 4444 }
  const replies: Uint8Array[] = []
  L.net.extra.set(`${from.ip}:${from.port}`, (d) => { replies.push(d.bytes) })
  L.server.onControl({ kind: 'packet', bytes: v1, ip: from.ip, port: from.port, via: 0 })
  L.net.flush()
  t.equal(replies.length, 1, 'one Reject')
  t.equal(Buffer.from(replies[0]).toString('hex'), '06030000' + 'fecaad0b', 'reason 3 (VERSION), index = the init\'s senderIndex')
  t.equal(L.server.handshakeCounters.handshakesWrongVersion, 1)
  t.ok(L.serverLog.some(l => /a node at 198\.18\.7\.7:4444 speaks protocol version 1; this node speaks 3: upgrade it/.test(l)))
  L.server.onControl({ kind: 'packet', bytes: v1, ip: from.ip, port: from.port + 1, via: 0 })
  t.equal(L.serverLog.filter(l => /speaks protocol version/.test(l)).length, 1, 'logged once a minute per address')
  // The client side: a Reject VERSION answering our init.
  let idx = -1
  L.net.filter = (d) => { if (d.bytes[0] === 1 && d.to.ip === SERVER_IP) { idx = Buffer.from(d.bytes).readUInt32LE(4); return false } return true }
  const c = L.addClient(1)
  L.run(100)
  t.not(idx, -1, 'the client sent an init')
  c.c.onControl({ kind: 'packet', bytes: Uint8Array.of(6, 3, 0, 0, idx & 0xff, (idx >>> 8) & 0xff, (idx >>> 16) & 0xff, idx >>> 24), ip: SERVER_IP, port: SERVER_PORT, via: 0 })
  t.match(c.c.problem ?? '', /speaks another protocol version; this node speaks 3: upgrade/)
  t.equal(c.c.counters.serverVersionRejects, 1)
  t.equal(c.c.state, 'rejected')
})

t.test('server key pinning: first contact pins; a server with another key is refused, counted and explained', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'lwt-pin-ctl-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const L = lab()
  const pin = new FilePin(dir)
  const a = L.addClient(1, { serverPin: pin })
  L.run(1000)
  t.equal(a.c.state, 'registered')
  t.strictSame(pin.pinned, L.serverKey.pub, 'pinned on first contact')
  t.ok(a.lines.some(l => /pinned the server's key SHA256:/.test(l)))
  t.equal(a.c.status().peers[0].key, fingerprint(L.serverKey.pub), 'status shows the server key fingerprint')
  // The server is replaced by one with another key (an impostor, or a reinstall): refused.
  const impostorKey = generateStaticKey()
  const fake = new ServerController({ psk: L.psk, nodeKey: impostorKey, tunnelIp: ipToInt('10.0.0.1'), prefix: 24, mtu: 1400, maxClients: 10, keepaliveSec: 10 }, { port: L.serverDp, clock: L.clock, random: seededRandom(5), log: logSink().log }, 16)
  L.serverDp.handler = fake
  L.server = fake
  L.serverDp.recvKeys.clear()
  L.run(30_000)
  t.equal(a.c.state, 'rejected')
  t.match(a.c.problem ?? '', new RegExp(`presented key ${fingerprint(impostorKey.pub).replace(/[+/]/g, '\\$&')}, but this client pinned ${fingerprint(L.serverKey.pub).replace(/[+/]/g, '\\$&')} in ${join(dir, 'server.pub')} on \\d{4}-\\d\\d-\\d\\d; refusing to register`))
  t.ok(a.c.counters.serverKeyMismatch >= 1, 'counted')
  t.equal(fake.clientCount, 0, 'never confirmed with the impostor')
  // --server-key given: a client pinned to the impostor's key registers with it; one given the old key does not.
  const b = L.addClient(2, { serverPin: new GivenPin(impostorKey.pub, '--server-key') })
  const c = L.addClient(3, { serverPin: new GivenPin(L.serverKey.pub, '--server-key') })
  L.run(2000)
  t.equal(b.c.state, 'registered')
  t.equal(c.c.state, 'rejected')
  t.match(c.c.problem ?? '', /but this client was given SHA256:\S+ \(--server-key\)/)
})
