/**
 * What status, ping and netcheck report, on a manual clock over FakeNet:
 * RTT windows, last seen counting data, the dead server shown within three
 * keepalives, the server's RTT to its clients, and user pings (to the server,
 * to a client from the server, to a peer through the relay).
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { ManualClock } from '../../src/clock.js'
import { seededRandom } from '../../src/random.js'
import { Logger } from '../../src/log.js'
import { ServerController } from '../../src/control/server.js'
import { ClientController } from '../../src/control/client.js'
import { generateStaticKey } from '../../src/crypto/noise.js'
import { RttWindow, RTT_WINDOW, lastSeen } from '../../src/control/rtt.js'
import { notAnsweringAfter } from '../../src/control/server-link.js'
import { ipToInt } from '../../src/wire/addr.js'
import { FakeNet, type FakeDataplane } from '../helpers/fake-dataplane.js'

const SERVER_IP = ipToInt('198.18.0.1')
const KEEPALIVE = 10

function quiet (): Logger { return new Logger({ level: 'error', sink: { write: () => {} } }) }

function lab (opts: { p2p?: boolean } = {}) {
  const net = new FakeNet()
  const clock = new ManualClock()
  const random = seededRandom(7)
  const psk = new Uint8Array(randomBytes(32))
  const serverDp = net.add(SERVER_IP, 9000, 'server')
  const server = new ServerController({ psk, nodeKey: generateStaticKey(), tunnelIp: ipToInt('10.0.0.1'), prefix: 24, mtu: 1400, maxClients: 10, keepaliveSec: KEEPALIVE }, { port: serverDp, clock, random, log: quiet() }, 16)
  serverDp.handler = server
  const clients: Array<{ c: ClientController, dp: FakeDataplane }> = []
  const addClient = (n: number): { c: ClientController, dp: FakeDataplane } => {
    const dp = net.add(ipToInt(`198.18.1.${n}`), 40000 + n, 'client')
    const c = new ClientController({
      psk, nodeKey: generateStaticKey(), tunnelIp: ipToInt(`10.0.0.${n + 1}`), prefix: 24, mtu: 1400, serverIp: SERVER_IP, serverPort: 9000,
      keepaliveSec: KEEPALIVE, serverName: '198.18.0.1:9000', p2p: opts.p2p ?? false
    }, { port: dp, clock, random, log: quiet() }, 64)
    dp.handler = c
    clients.push({ c, dp })
    return { c, dp }
  }
  const run = (ms: number): void => {
    for (let el = 0; el < ms; el += 250) {
      clock.advance(250)
      server.tick()
      for (const x of clients) x.c.tick()
      net.flush()
    }
  }
  return { net, clock, server, serverDp, addClient, run }
}

t.test('RttWindow keeps the last RTT_WINDOW samples and reports the lowest', async t => {
  const w = new RttWindow()
  t.equal(w.min, null)
  w.add(40); w.add(1.234); w.add(NaN); w.add(-1)
  t.equal(w.count, 2, 'bad samples are ignored')
  t.equal(w.min, 1.23)
  t.equal(w.last, 1.234)
  for (let i = 0; i < RTT_WINDOW; i++) w.add(3)
  t.equal(w.min, 3, 'the cold 40 ms and the 1.2 ms sample aged out')
  w.clear()
  t.equal(w.min, null)
})

t.test('lastSeen: the newer of a control answer and a data packet', async t => {
  const rows: Array<[string, number | null, number | null, number | null]> = [
    ['neither', null, null, null],
    ['control only', 4200, null, 4.2],
    ['data only', null, 300, 0.3],
    ['data newer', 9000, 120, 0.1],
    ['control newer', 50, 7000, 0.1],
    ['clock skew never goes negative', null, -20, 0]
  ]
  for (const [name, c, d, want] of rows) t.equal(lastSeen(c, d), want, name)
})

t.test('a dead server is shown as not answering within three keepalives', async t => {
  const L = lab()
  const a = L.addClient(1)
  L.run(3000)
  t.equal(a.c.state, 'registered')
  t.equal(a.c.problem, null)
  t.ok(notAnsweringAfter(KEEPALIVE) <= 3 * KEEPALIVE * 1000, 'the threshold is within three keepalives')
  // The server goes silent (it still receives; nothing comes back).
  L.net.filter = (d) => d.from.ip !== SERVER_IP
  const diedAt = L.clock.now()
  let shownAt = -1
  let seenReconnecting = false
  for (let el = 0; el < 40_000; el += 250) {
    L.run(250)
    const s = a.c.status()
    if (shownAt < 0 && a.c.state === 'unresponsive') {
      shownAt = L.clock.now() - diedAt
      t.match(a.c.problem, /the server 198\.18\.0\.1:9000 has not answered since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(\d+ s; keepalive Pings every 10 s go unanswered\); reconnecting in \d+ s unless it answers/)
      t.equal(s.peers[0]!.note, a.c.problem, 'the server row says so too')
    }
    if (a.c.state === 'reconnecting') seenReconnecting = true
  }
  t.ok(shownAt > 0 && shownAt <= 3 * KEEPALIVE * 1000, `shown as not answering ${shownAt} ms after it went silent`)
  t.ok(shownAt > KEEPALIVE * 1000, 'not before a keepalive went unanswered')
  t.ok(seenReconnecting, 'then it reconnects')
  t.match(a.c.problem, /has not answered since .*; trying to reconnect|no answer from the server/)
  L.net.filter = () => true
  L.run(10_000)
  t.equal(a.c.state, 'registered')
  t.equal(a.c.problem, null, 'the problem clears when the server is back')
})

t.test('one lost keepalive is not reported', async t => {
  const L = lab()
  const a = L.addClient(1)
  L.run(15_000)
  // Drop the server's datagrams for one keepalive interval only.
  L.net.filter = (d) => d.from.ip !== SERVER_IP
  L.run(KEEPALIVE * 1000)
  L.net.filter = () => true
  for (let el = 0; el < 30_000; el += 250) {
    L.run(250)
    t.not(a.c.state, 'unresponsive')
    if (a.c.state === 'unresponsive') break
  }
  t.equal(a.c.state, 'registered')
})

t.test('RTT on both ends, measured from send to the Pong being read', async t => {
  const L = lab()
  const a = L.addClient(1)
  L.run(5000)
  const sa = a.c.status().peers[0]!
  t.equal(sa.rttMs, 0, 'FakeNet delivers at once: the client measured 0 ms to the server')
  t.equal(L.server.status().peers[0]!.rttMs, 0, 'and the server has an RTT for its client')
  t.equal(a.c.counters.handshakesCompleted, 1, 'one registration handshake, counted')
  t.same(L.server.handshakeCounters, { handshakesAccepted: 1, handshakesRefused: 0, handshakesAuthFailed: 0, handshakesKeyRefused: 0, handshakesReplayed: 0, handshakesWrongVersion: 0, handshakesShed: 0 })
  // A user ping with 3 ms of "network": sent now, delivered after the clock moved.
  let got: number | null = null
  const sent = a.c.ping(ipToInt('10.0.0.1'), (ms) => { got = ms })
  t.type(sent, 'object')
  t.same(typeof sent === 'object' ? [sent.path, sent.endpoint] : sent, ['direct', '198.18.0.1:9000'])
  L.clock.advance(3)
  L.net.flush()
  t.equal(got, 3, 'ping to the server: 3 ms')
  // The server pings its client the same way.
  let back: number | null = null
  const s = L.server.ping(ipToInt('10.0.0.2'), (ms) => { back = ms })
  t.same(typeof s === 'object' ? [s.path, s.endpoint] : s, ['direct', '198.18.1.1:40001'])
  L.clock.advance(2)
  L.net.flush()
  t.equal(back, 2, 'ping from the server: 2 ms')
  t.match(L.server.ping(ipToInt('10.0.0.9'), () => {}), /10\.0\.0\.9 is not a registered client/)
  t.match(a.c.ping(ipToInt('10.0.0.2'), () => {}), /this node's own tunnel address/)
  t.match(a.c.ping(ipToInt('10.0.0.77'), () => {}), /not a peer of this node/)
})

t.test('ping to a peer goes through the relay when there is no direct path; cancel forgets it', async t => {
  const L = lab()
  const a = L.addClient(1)
  const b = L.addClient(2)
  L.run(2000)
  const ipB = ipToInt('10.0.0.3')
  t.match(a.c.ping(ipB, () => {}), /no session with 10\.0\.0\.3 yet; one is being set up now/)
  L.net.flush()
  L.run(500)
  let got: number | null = null
  const sent = a.c.ping(ipB, (ms) => { got = ms })
  t.same(typeof sent === 'object' ? [sent.path, sent.endpoint] : sent, ['relay', '198.18.0.1:9000'])
  L.clock.advance(4)
  L.net.flush()
  t.equal(got, 4)
  // A cancelled ping (timed out) ignores a late Pong.
  let late = false
  const s2 = a.c.ping(ipB, () => { late = true })
  if (typeof s2 === 'object') s2.cancel()
  L.net.flush()
  t.equal(late, false)
  t.ok(b.c.status().peers.length === 2)
})

t.test('last seen counts data packets (the dataplane\'s receive stamp)', async t => {
  const L = lab()
  L.addClient(1)
  L.run(2000)
  L.net.filter = () => false // no control traffic from now on
  L.run(8000)
  t.ok(L.server.status().peers[0]!.lastSeenSec! >= 7.5, 'control only: silent for 8 s')
  const dp = L.serverDp
  dp.peerCounters = () => ({ txPackets: 1, txBytes: 100, rxPackets: 1, rxBytes: 100, lastRxMs: L.clock.wallNow() - 300 })
  t.equal(L.server.status().peers[0]!.lastSeenSec, 0.3, 'a data packet 0.3 s ago counts')
})

t.test('netcheck facts of a client', async t => {
  const L = lab({ p2p: true })
  const a = L.addClient(1)
  L.run(3000)
  const f = a.c.netcheck()
  t.equal(f.registered, true)
  t.equal(f.publicEndpoint, '198.18.1.1:40001')
  t.equal(f.nat, 'unknown', 'FakeNet has no NAT-check port: no second view')
  t.match(f.natHow, /no second view yet/)
  let answered = false
  const cancel = a.c.probeNatCheckPort(() => { answered = true })
  t.type(cancel, 'function')
  L.net.flush()
  t.equal(answered, false, 'nobody answers on port 9001 here')
})
