/**
 * The server's registration decisions on the in-process control plane
 * (FakeNet, ManualClock): a registration takes a client slot and its address
 * only on Confirm; unconfirmed ones are capped per source IP and age out; the
 * operator's nodes commands (control/nodes.ts) list, revoke and re-admit.
 * A "member" here is a FakeNet node that holds the network key and sends
 * handshake inits it never confirms.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { ManualClock } from '../../src/clock.js'
import { seededRandom } from '../../src/random.js'
import { Logger } from '../../src/log.js'
import { ServerController } from '../../src/control/server.js'
import { ClientController } from '../../src/control/client.js'
import { createInit, generateStaticKey, type StaticKey } from '../../src/crypto/noise.js'
import { CookieGenerator, macKeys } from '../../src/crypto/cookie.js'
import { encodeInitPayload } from '../../src/wire/payloads.js'
import { ipToInt } from '../../src/wire/addr.js'
import { FileRegistry } from '../../src/state/registry-file.js'
import { PENDING_PER_SOURCE, PENDING_REGISTRATION_TTL } from '../../src/control/constants.js'
import { FakeNet, type FakeDataplane } from '../helpers/fake-dataplane.js'
import { answerNodes, type NodesChange } from '../../src/control/nodes.js'
import { fingerprint } from '../../src/identity/key-text.js'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const SERVER_IP = ipToInt('198.18.0.1')
const SERVER_PORT = 9000
const MEMBER_IP = ipToInt('198.18.9.9')
/** The member's own node key (it holds the network key, so its inits are valid). */
const memberKey = generateStaticKey()
/** Each of its inits carries a newer timestamp (the server keeps the newest per key: replays are ignored). */
let memberInits = 0

function logSink (): { log: Logger, lines: string[] } {
  const lines: string[] = []
  return { log: new Logger({ level: 'debug', sink: { write: (l) => { lines.push(l) } } }), lines }
}

function lab (opts: { maxClients?: number, registryFile?: string, registry?: FileRegistry } = {}) {
  const net = new FakeNet()
  const clock = new ManualClock()
  const random = seededRandom(7)
  const psk = new Uint8Array(randomBytes(32))
  const serverDp = net.add(SERVER_IP, SERVER_PORT, 'server')
  const { log, lines: serverLog } = logSink()
  const registry = opts.registry ?? new FileRegistry(opts.registryFile ?? null)
  const serverKey = generateStaticKey()
  const server = new ServerController({ psk, nodeKey: serverKey, tunnelIp: ipToInt('10.0.0.1'), prefix: 24, mtu: 1400, maxClients: opts.maxClients ?? 10, keepaliveSec: 10, registry }, { port: serverDp, clock, random, log }, 16)
  serverDp.handler = server
  const clients: ClientController[] = []
  const L = {
    net, clock, psk, server, serverDp, serverLog, registry,
    addClient (n: number, o: { tunnelIp?: string, nodeKey?: StaticKey } = {}): { c: ClientController, dp: FakeDataplane, lines: string[] } {
      const dp = net.add(ipToInt(`198.18.1.${n}`), 40000 + n, 'client')
      const { log: clog, lines } = logSink()
      const c = new ClientController({
        psk, nodeKey: o.nodeKey ?? generateStaticKey(), tunnelIp: ipToInt(o.tunnelIp ?? `10.0.0.${n + 1}`), prefix: 24, mtu: 1400, serverIp: SERVER_IP, serverPort: SERVER_PORT, keepaliveSec: 10, serverName: '198.18.0.1:9000'
      }, { port: dp, clock, random, log: clog }, 64)
      dp.handler = c
      clients.push(c)
      return { c, dp, lines }
    },
    /** A member's init for `tunnelIp` from MEMBER_IP:port, never confirmed; returns its source dataplane (which records the answers). */
    memberInit (port: number, tunnelIp: string): FakeDataplane {
      const dp = L.net.nodes.get(`${MEMBER_IP}:${port}`) ?? net.add(MEMBER_IP, port, 'client')
      const payload = encodeInitPayload({ role: 1, prefixLen: 24, mtu: 1400, tunnelIp: ipToInt(tunnelIp), timestamp: clock.wallNow() + (++memberInits), lan: [] })
      dp.sendControl(new CookieGenerator(macKeys(psk)).addMacs(createInit(psk, memberKey, 1 + port, payload).message, clock.now()), SERVER_IP, SERVER_PORT) // a member makes a valid mac1
      return dp
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

t.test('an unconfirmed registration holds no client slot and no address', async t => {
  const L = lab({ maxClients: 2 })
  // A member fills --max-clients (2) many times over with inits it never confirms.
  for (let i = 0; i < 3; i++) L.memberInit(5000 + i, `10.0.0.${20 + i}`)
  L.memberInit(5100, '10.0.0.2')
  L.net.flush()
  t.equal(L.server.handshakeCounters.handshakesAccepted, 4, 'each init was answered OK')
  t.equal(L.server.clientCount, 0, 'no client counted')
  t.equal(L.serverDp.routes.size, 0, 'no slot holds a route')
  t.equal(L.serverDp.recvKeys.size, 0, 'no receive key installed')
  const a = L.addClient(1) // asks for 10.0.0.2, which the member also asked for
  const b = L.addClient(2)
  L.run(1000)
  t.equal(a.c.state, 'registered', 'an honest client registers despite the pending inits (and gets the address they asked for)')
  t.equal(b.c.state, 'registered', 'so does a second: the slots were free')
  t.equal(L.server.clientCount, 2)
  t.same(L.server.status().peers.map(p => p.tunnelIp), ['10.0.0.2', '10.0.0.3'])
})

t.test('pending registrations are capped per source IP; the oldest is evicted', async t => {
  const L = lab()
  for (let i = 0; i < 10; i++) L.memberInit(6000 + i, `10.0.0.${30 + i}`)
  L.net.flush()
  t.equal(L.server.handshakeCounters.handshakesAccepted, 10)
  t.equal(L.server.registrationCounters.dropRegistrationEvicted, 10 - PENDING_PER_SOURCE, 'all but the newest 4 evicted')
  // Another source is not affected by that one's cap.
  const a = L.addClient(1)
  L.run(500)
  t.equal(a.c.state, 'registered')
  t.equal(L.server.registrationCounters.dropRegistrationEvicted, 10 - PENDING_PER_SOURCE)
})

t.test('a lost Confirm: the pending registration ages out, and the client registers again', async t => {
  const L = lab()
  const a = L.addClient(1)
  // Lose everything the client sends after the init (its Confirm).
  let seen = 0
  L.net.filter = (d) => !(d.from.ip === a.dp.ip && d.to.ip === SERVER_IP && seen++ >= 1)
  L.run(250)
  t.equal(L.server.clientCount, 0, 'no Confirm arrived: not registered')
  L.run(PENDING_REGISTRATION_TTL + 500)
  t.equal(L.server.clientCount, 0)
  L.net.filter = () => true
  L.run(30_000)
  t.equal(a.c.state, 'registered', 'the client recovers: the server rejected its session, it registered again')
  t.equal(L.server.clientCount, 1)
})

t.test('disconnect (revocation): the node is told Bye, and every peer drops it and its session within a second', async t => {
  const L = lab()
  const a = L.addClient(1)
  const b = L.addClient(2)
  L.run(1000)
  const A = ipToInt('10.0.0.2')
  const slotA = b.dp.routeByTunnelIp(A)!.slot
  b.c.onNeedSession(slotA)
  L.net.flush()
  const keysOfA = (): number => [...b.dp.recvKeys.values()].filter(k => k.slot === slotA).length
  t.ok(b.dp.sendKeys.get(slotA), 'b has a session with a')
  t.ok(keysOfA() > 0, 'b can receive from a')
  t.equal(L.server.disconnect(A, 'revoked by the operator (test)'), true)
  t.equal(L.server.clientCount, 1, 'removed at once on the server')
  let ms = 0
  while (b.dp.routeByTunnelIp(A) !== undefined && ms < 5000) { L.run(250); ms += 250 }
  t.ok(ms <= 1000, `b dropped a after ${ms} ms`)
  t.equal(b.dp.routeByTunnelIp(A), undefined, 'no route to a at b')
  t.equal(b.dp.sendKeys.get(slotA), undefined, 'no send key')
  t.equal(keysOfA(), 0, 'no receive key: whatever a still sends is dropped')
  t.match(L.serverLog.join('\n'), /disconnected 10\.0\.0\.2: revoked by the operator \(test\)/)
  t.equal(L.server.disconnect(ipToInt('10.0.0.77'), 'nobody'), false, 'an address nobody holds: nothing to do')
  void a
})

t.test('nodes remove on a live node: cut off, peers told, its key refused (KEY_REVOKED) with a clear error; nodes allow lifts it', async t => {
  const L = lab()
  const aKey = generateStaticKey()
  const a = L.addClient(1, { nodeKey: aKey })
  const b = L.addClient(2)
  L.run(1000)
  const A = ipToInt('10.0.0.2')
  t.equal(L.registry.list().length, 2, 'both bound on Confirm')
  const change = answerNodes({ cmd: 'nodes-remove', node: '10.0.0.2' }, L.server.nodesAdmin) as NodesChange
  t.equal(change.disconnected, 1)
  L.run(1000)
  t.equal(b.dp.routeByTunnelIp(A), undefined, 'b dropped a')
  t.equal(a.c.state, 'rejected', 'a re-registered and was refused')
  t.match(a.c.problem ?? '', /the server's operator revoked this node's key SHA256:\S+/)
  t.match(L.serverLog.join('\n'), /refused a client: its key SHA256:\S+ was revoked/)
  t.equal(L.server.clientCount, 1)
  // An impostor key takes the freed address; a's key stays refused even for another address.
  const c = L.addClient(3, { tunnelIp: '10.0.0.2' })
  L.run(1000)
  t.equal(c.c.state, 'registered', 'the freed address goes to another key')
  answerNodes({ cmd: 'nodes-allow', node: fingerprint(aKey.pub) }, L.server.nodesAdmin)
  L.run(35_000)
  t.equal(a.c.state, 'rejected', 'allowed again, but its old address now belongs to the new key')
  t.match(a.c.problem ?? '', /it belongs to another node key/)
})

t.test('the registry is the file: a new server on the same registry refuses the impostor, live holder or not', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'lwt-regsrv-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const L = lab({ registryFile: join(dir, 'registry.json') })
  const a = L.addClient(1)
  L.run(1000)
  t.equal(a.c.state, 'registered')
  const again = new FileRegistry(join(dir, 'registry.json'))
  t.same(again.list().map(r => r.address), [ipToInt('10.0.0.2') >>> 0], 'the binding is on disk after the Confirm')
  const L2 = lab({ registry: again })
  const m = L2.addClient(9, { tunnelIp: '10.0.0.2' })
  L2.run(1000)
  t.equal(m.c.state, 'rejected', 'another key for a bound address, its holder not even connected to this server')
  t.match(m.c.problem ?? '', /the server refused 10\.0\.0\.2: it belongs to another node key/)
})
