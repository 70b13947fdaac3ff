/**
 * Server outages in process (issue 10 item 5): a server and two clients over
 * a FakeNet on a manual clock; the server is "killed" by dropping every
 * datagram to or from it. Direct peers must rekey over their direct path and
 * keep working across several session lifetimes (REJECT_AFTER).
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { ManualClock } from '../../src/clock.js'
import { Logger } from '../../src/log.js'
import { ServerController } from '../../src/control/server.js'
import { ClientController } from '../../src/control/client.js'
import { seededRandom } from '../../src/random.js'
import { generateStaticKey } from '../../src/crypto/noise.js'
import { ipToInt } from '../../src/wire/addr.js'
import { FakeNat, FakeNet, type FakeDataplane } from '../helpers/fake-dataplane.js'
import { REJECT_AFTER, UNLISTED_GRACE } from '../../src/control/constants.js'
import { PeerCache, decodeCache, type CacheStore } from '../../src/control/peer-cache.js'
import type { ClientOptions } from '../../src/control/client-context.js'

const ip = ipToInt
const SERVER_IP = ip('198.18.0.1')
const SERVER_PORT = 9000

export interface OutageWorld {
  net: FakeNet
  clock: ManualClock
  server: ServerController
  serverDp: FakeDataplane
  clients: Array<{ c: ClientController, dp: FakeDataplane, tunnelIp: number, opt: ClientOptions }>
  /** Drop every datagram to or from the server (true), or let them through again. */
  serverDown: boolean
  run(ms: number, step?: number): void
  /** Stop client i and start a new process in its place (same address, port, options; a new instance). */
  restart(i: number): void
  /** A new server process in place of the old one (no state: every client must register again). */
  restartServer(): void
}

/** Two (or more) clients, each behind a port-restricted NAT (eim/apdf) unless `nat` is false. */
export function outageWorld (n = 2, nat = true, seed = 7, caches: Array<PeerCache | null> = []): OutageWorld {
  const net = new FakeNet()
  const clock = new ManualClock()
  const random = seededRandom(seed)
  const psk = new Uint8Array(randomBytes(32))
  const quiet = new Logger({ level: 'error', sink: { write: () => {} } })
  const serverDp = net.add(SERVER_IP, SERVER_PORT, 'server')
  const serverKey = generateStaticKey()
  let server = new ServerController({ psk, nodeKey: serverKey, tunnelIp: ip('10.0.0.1'), prefix: 24, mtu: 1400, maxClients: 10, keepaliveSec: 10 }, { port: serverDp, clock, random, log: quiet }, 16)
  serverDp.handler = server
  const clients: OutageWorld['clients'] = []
  for (let i = 0; i < n; i++) {
    const inside = nat ? ip(`192.168.${i + 1}.2`) : ip(`198.18.2.${i + 1}`)
    if (nat) net.addNat(inside, new FakeNat(ip(`198.18.1.${i + 1}`), 'eim', 'apdf', random))
    const port = 41000 + i
    const dp = net.add(inside, port, 'client')
    const tunnelIp = ip(`10.0.0.${i + 2}`)
    const opt: ClientOptions = {
      psk, nodeKey: generateStaticKey(), tunnelIp, prefix: 24, mtu: 1400, serverIp: SERVER_IP, serverPort: SERVER_PORT,
      keepaliveSec: 10, serverName: 'server', p2p: true, localEndpoints: () => [{ ip: inside, port }], peerCache: caches[i] ?? null
    }
    const c = new ClientController({ ...opt }, { port: dp, clock, random, log: quiet }, 16)
    dp.handler = c
    clients.push({ c, dp, tunnelIp, opt })
  }
  const w: OutageWorld = {
    net, clock, server, serverDp, clients, serverDown: false,
    run (ms, step = 50) {
      for (let el = 0; el < ms; el += step) {
        clock.advance(step)
        if (!w.serverDown) server.tick()
        for (const x of clients) x.c.tick()
        net.flush()
      }
    },
    restartServer () {
      server = new ServerController({ psk, nodeKey: serverKey, tunnelIp: ip('10.0.0.1'), prefix: 24, mtu: 1400, maxClients: 10, keepaliveSec: 10 }, { port: serverDp, clock, random, log: quiet }, 16)
      serverDp.routes.clear(); serverDp.sendKeys.clear(); serverDp.recvKeys.clear()
      serverDp.handler = server
      w.server = server
    },
    restart (i) {
      const x = clients[i]!
      x.c.shutdown()
      x.dp.routes.clear(); x.dp.sendKeys.clear(); x.dp.recvKeys.clear()
      x.c = new ClientController({ ...x.opt }, { port: x.dp, clock, random, log: quiet }, 16)
      x.dp.handler = x.c
    }
  }
  net.filter = (d) => !w.serverDown || (d.from.ip !== SERVER_IP && d.to.ip !== SERVER_IP)
  return w
}

/** A's authenticated Ping to B over the current session (direct or relayed) is answered. */
export function pingAnswered (w: OutageWorld, from: number, to: number): { answered: boolean, path: string } {
  let answered = false
  const r = w.clients[from]!.c.ping(w.clients[to]!.tunnelIp, () => { answered = true })
  if (typeof r === 'string') return { answered: false, path: r }
  for (let i = 0; i < 10 && !answered; i++) { w.clock.advance(1); w.net.flush() }
  r.cancel?.()
  return { answered, path: r.path }
}

/** The data keys agree: what A seals for B, B can open (A's send index is one of B's receive indexes, same key). */
export function dataKeysAgree (w: OutageWorld, a: number, b: number): boolean {
  const A = w.clients[a]!
  const B = w.clients[b]!
  const slotA = [...A.dp.routes.values()].find(r => r.tunnelIp === B.tunnelIp)?.slot
  if (slotA === undefined) return false
  const send = A.dp.sendKeys.get(slotA)
  if (send === undefined) return false
  const recv = B.dp.recvKeys.get(send.remoteIndex)
  return recv !== undefined && Buffer.from(recv.key).equals(Buffer.from(send.key))
}

function peerStatus (w: OutageWorld, i: number) {
  return w.clients[i]!.c.status().peers.find(p => p.role === 'client')!
}

t.test('direct peers rekey over their direct path while the server is down, across several session lifetimes', async t => {
  const w = outageWorld()
  w.run(6000)
  t.equal(peerStatus(w, 0).path, 'direct', 'A reaches B directly before the outage')
  t.equal(peerStatus(w, 1).path, 'direct', 'B reaches A directly before the outage')
  w.serverDown = true
  const lifetimes = 4
  const step = REJECT_AFTER / 4
  let pings = 0
  let lost = 0
  for (let el = 0; el < lifetimes * REJECT_AFTER; el += step) {
    w.run(step)
    for (const [a, b] of [[0, 1], [1, 0]] as const) {
      const r = pingAnswered(w, a, b)
      pings++
      if (!r.answered) { lost++; t.fail(`ping ${a}→${b} at +${(el + step) / 1000} s not answered (${r.path})`) }
      else t.equal(r.path, 'direct', 'over the direct path')
    }
    t.ok(dataKeysAgree(w, 0, 1) && dataKeysAgree(w, 1, 0), `data keys agree at +${(el + step) / 1000} s`)
  }
  t.equal(lost, 0, `${pings} pings over ${lifetimes} session lifetimes without the server, none lost`)
  t.equal(w.clients[0]!.c.state === 'registered', false, 'the client did notice the server is gone')
  t.equal(peerStatus(w, 0).path, 'direct', 'still direct at the end')
})

t.test('a session that expired during the outage is set up again over the last confirmed endpoints', async t => {
  const w = outageWorld()
  w.run(6000)
  t.equal(peerStatus(w, 0).path, 'direct')
  w.serverDown = true
  // Cut the direct path too, long enough for the sessions to expire, then heal it.
  const filter = w.net.filter
  w.net.filter = () => false
  w.run(REJECT_AFTER + 5000)
  t.not(peerStatus(w, 0).session, 'established', 'the session expired while nothing got through')
  w.net.filter = filter
  w.run(15_000)
  const r = pingAnswered(w, 0, 1)
  t.ok(r.answered, `a new session without the server (${r.path})`)
  t.equal(peerStatus(w, 0).path, 'direct')
})

function memStore (): CacheStore & { text: string | null } {
  const s = { text: null as string | null, where: 'mem', read: () => s.text, write: (x: string) => { s.text = x } }
  return s
}

t.test('a client restarted during the outage reaches its cached peer at its last confirmed endpoint', async t => {
  const store = memStore()
  const w = outageWorld(2, true, 7, [new PeerCache(store, (m) => { t.fail(m) }), null])
  w.run(6000)
  t.equal(peerStatus(w, 0).path, 'direct')
  w.run(31_000) // a cache save is due
  const saved = decodeCache(store.text ?? '', w.clock.wallNow())
  t.same(saved.peers.map(p => p.tunnelIp), [w.clients[1]!.tunnelIp], 'B is in A\'s cache')
  t.same(saved.peers[0]!.endpoints[0], { ip: ip('198.18.1.2'), port: saved.peers[0]!.endpoints[0]!.port }, 'at its public (NAT) endpoint')
  w.serverDown = true
  w.run(20_000)
  w.restart(0)
  w.run(50)
  t.equal(peerStatus(w, 0).tunnelIp, '10.0.0.3', 'the restarted A knows B from its cache alone (from its first tick)')
  w.run(5000)
  t.equal(w.clients[0]!.c.state, 'registering', 'the server is still down')
  const ab = pingAnswered(w, 0, 1)
  const ba = pingAnswered(w, 1, 0)
  t.ok(ab.answered, `A → B answered (${ab.path})`)
  t.ok(ba.answered, `B → A answered (${ba.path})`)
  t.equal(peerStatus(w, 0).path, 'direct', 'A is direct to B again')
  t.ok(dataKeysAgree(w, 0, 1) && dataKeysAgree(w, 1, 0), 'data keys agree both ways')
  // Without a cache the same restart stays alone until the server is back.
  const w2 = outageWorld(2, true, 7)
  w2.run(6000)
  w2.serverDown = true
  w2.restart(0)
  w2.run(5000)
  t.equal(w2.clients[0]!.c.status().peers.length, 1, 'no cache: no peers (only the server entry)')
})

t.test('when the server answers again, its peer list is authoritative: a cached peer it does not list is dropped from the table and the cache', async t => {
  const store = memStore()
  const cache = new PeerCache(store, () => {})
  const w = outageWorld(2, true, 7, [cache, null])
  w.run(6000)
  w.run(31_000)
  t.ok(cache.get(w.clients[1]!.tunnelIp), 'B cached')
  // B leaves for good (Bye), A restarts while the server is down, then the server comes back.
  w.clients[1]!.c.shutdown()
  w.clients[1]!.dp.handler = null
  w.net.flush()
  w.serverDown = true
  w.restart(0)
  w.run(2000)
  t.equal(peerStatus(w, 0)?.tunnelIp, '10.0.0.3', 'B from the cache')
  w.run(45_000) // long enough for the server to forget A's old instance (it never saw its Bye)
  w.serverDown = false
  w.run(20_000) // the registration backoff reaches 16 s
  t.equal(w.clients[0]!.c.state, 'registered')
  t.equal(w.clients[0]!.c.status().peers.length, 1, 'the server does not list B: gone from the table')
  t.equal(cache.get(w.clients[1]!.tunnelIp), undefined, 'and from the cache')
  w.run(31_000)
  t.same(decodeCache(store.text!, w.clock.wallNow()).peers, [], 'and from the file')
})

// ── return routability (issue 10 item 4) ─────────────────────────────────────

const VICTIM = { ip: ip('203.0.113.9'), port: 5555 }

t.test('a member\'s authenticated Ping from a spoofed source does not move its endpoint on the server; a real move does, after one round trip', async t => {
  const w = outageWorld(2, false)
  w.run(6000)
  const a = w.clients[0]!
  const realA = { ip: a.dp.ip, port: a.dp.port }
  const routeA = () => [...w.serverDp.routes.values()].find(r => r.tunnelIp === a.tunnelIp)!
  const seenByB = () => w.clients[1]!.c.status().peers.find(p => p.tunnelIp === '10.0.0.2')!.publicEndpoint
  t.same({ ip: routeA().endpointIp, port: routeA().endpointPort }, realA)
  // A spoofs the source of its sealed control messages to the server (its keepalive Ping): the victim's address.
  let toVictim = 0
  w.net.filter = (d) => {
    if (d.from.ip === realA.ip && d.from.port === realA.port && d.to.ip === SERVER_IP && d.bytes[0] === 3) d.from = { ...VICTIM }
    if (d.to.ip === VICTIM.ip) toVictim++
    return true
  }
  w.run(25_000)
  t.same({ ip: routeA().endpointIp, port: routeA().endpointPort }, realA, 'the server still sends A\'s traffic to A')
  t.equal(seenByB(), '198.18.2.1:41000', 'B is still told A\'s real endpoint')
  t.ok(w.server.roamCounters.endpointChecks >= 1, 'the new source was checked')
  t.equal(w.server.roamCounters.endpointMoves, 0, 'and never moved to')
  t.ok(toVictim <= 2 * (w.server.roamCounters.endpointChecks + 3), `the victim got only Pongs and checks (${toVictim} datagrams)`)
  // The same source change for real (A's address changes): moved after the check's round trip.
  const moved = { ip: ip('198.18.2.77'), port: 41000 }
  w.net.filter = (d) => {
    if (d.from.ip === realA.ip && d.from.port === realA.port) d.from = { ...moved }
    if (d.to.ip === moved.ip && d.to.port === moved.port) d.to = { ...realA }
    return true
  }
  w.run(11_000) // the next keepalive Ping
  t.same({ ip: routeA().endpointIp, port: routeA().endpointPort }, moved, 'a real move is followed')
  t.equal(w.server.roamCounters.endpointMoves, 1)
})

t.test('the server\'s dataplane reporting data from a new source (ENDPOINT) goes through the same check', async t => {
  const w = outageWorld(2, false)
  w.run(6000)
  const a = w.clients[0]!
  const slot = [...w.serverDp.routes.values()].find(r => r.tunnelIp === a.tunnelIp)!.slot
  const sent0 = w.net.queue.length
  w.server.onEndpoint(slot, VICTIM.ip, VICTIM.port)
  const check = w.net.queue.slice(sent0).find(d => d.to.ip === VICTIM.ip)
  t.ok(check, 'a Ping goes to the new source')
  t.equal(w.server.roamCounters.endpointChecks, 1)
  w.server.onEndpoint(slot, VICTIM.ip, VICTIM.port)
  t.equal(w.server.roamCounters.endpointChecks, 1, 'at most one check per endpoint per ROAM_CHECK_GAP')
  w.run(1000)
  t.equal([...w.serverDp.routes.values()].find(r => r.tunnelIp === a.tunnelIp)!.endpointIp, a.dp.ip, 'no Pong from there: not moved')
  t.equal(w.server.roamCounters.endpointMoves, 0)
})

t.test('a peer\'s authenticated Pings and Pongs from a spoofed source do not move its direct path', async t => {
  const w = outageWorld(2, false)
  w.run(6000)
  const a = w.clients[0]!
  const peerA = () => w.clients[1]!.c.status().peers.find(p => p.tunnelIp === '10.0.0.2')!
  t.equal(peerA().path, 'direct')
  const before = peerA().endpoint
  // A's direct Pings and Pongs to B leave with the victim's address as source.
  w.net.filter = (d) => {
    if (d.from.ip === a.dp.ip && d.from.port === a.dp.port && d.to.ip === w.clients[1]!.dp.ip && d.bytes[0] === 3) d.from = { ...VICTIM }
    return true
  }
  a.dp.trafficTick = true // heartbeats every 400 ms
  w.run(3000)
  w.net.filter = () => true
  // (A's real answers never arrive either, so B may fall back to the relay; it must never pick the victim.)
  t.not(peerA().endpoint, '203.0.113.9:5555', `B never sends A's traffic to the spoofed source (${before} → ${peerA().endpoint})`)
  const v = peerA().p2p!.candidates.find(c => c.endpoint === '203.0.113.9:5555')
  t.not(v?.state, 'confirmed', 'the spoofed source is never confirmed (no Pong from it)')
})

t.test('birthday Punches: a spray is never restarted, and at most BIRTHDAY_SPRAY_MAX probes per peer per BIRTHDAY_RETRY', async t => {
  const { BirthdaySearch } = await import('../../src/control/birthday.js')
  const { BIRTHDAY_RETRY, BIRTHDAY_SPRAY_MAX, BIRTHDAY_TIMEOUT, CLIENT_TICK } = await import('../../src/control/constants.js')
  let probes = 0
  const b = new BirthdaySearch({
    probe: () => { probes++ }, punch: () => {}, openSockets: () => [], closeSockets: () => {}, log: () => {}
  }, seededRandom(1))
  const view = { direct: false, publicEp: VICTIM, localNat: 'eim' as const, peerNat: 'edm' as const, burstAt: null }
  // A member sends a birthday Punch every 100 ms for a whole window.
  let now = 0
  for (; now < BIRTHDAY_RETRY; now += CLIENT_TICK) {
    if (now % 100 === 0) b.spray(VICTIM, now)
    b.tick(now, view)
  }
  t.ok(probes <= BIRTHDAY_SPRAY_MAX, `${probes} probes in one window (budget ${BIRTHDAY_SPRAY_MAX})`)
  t.ok(b.punchesIgnored >= BIRTHDAY_RETRY / 100 - 2 * BIRTHDAY_TIMEOUT / 100, `${b.punchesIgnored} Punches ignored`)
  // Before: every Punch reset the count, so the spray never stopped (~500/s: 30,000 a minute).
  const inWindow = probes
  for (; now < 2 * BIRTHDAY_RETRY; now += CLIENT_TICK) {
    if (now % 100 === 0) b.spray(VICTIM, now)
    b.tick(now, view)
  }
  t.ok(probes - inWindow <= BIRTHDAY_SPRAY_MAX, 'the next window has the same budget')
  t.ok(probes - inWindow > 0, 'and a legitimate search can spray again')
})

t.test('a server restarted after the outage: the first clients back get a list without the others; their direct peers are kept meanwhile', async t => {
  const w = outageWorld()
  w.run(6000)
  t.equal(peerStatus(w, 0).path, 'direct')
  w.serverDown = true
  w.run(60_000)
  w.restartServer()
  // B's way to the server stays blocked for a while: A registers first and gets a full list without B.
  const b = ip('198.18.1.2') // B's NAT
  let blockB = true
  w.serverDown = false
  w.net.filter = (d) => !(blockB && ((d.from.ip === b && d.to.ip === SERVER_IP) || (d.to.ip === b && d.from.ip === SERVER_IP)))
  let lost = 0
  for (let i = 0; i < 20; i++) {
    w.run(1000)
    if (!pingAnswered(w, 0, 1).answered) lost++
  }
  t.equal(w.clients[0]!.c.state, 'registered', 'A is registered with the new server')
  t.equal(w.server.status().peers.length, 1, 'B is not (yet)')
  t.equal(lost, 0, 'A ↔ B pings all answered while the list lacked B')
  t.equal(peerStatus(w, 0).path, 'direct')
  blockB = false
  w.run(20_000)
  t.equal(w.server.status().peers.length, 2, 'B registered too')
  w.run(UNLISTED_GRACE)
  t.equal(peerStatus(w, 0)?.tunnelIp, '10.0.0.3', 'relisted in time: kept for good')
  t.ok(pingAnswered(w, 0, 1).answered)
  // A peer the server keeps leaving out is dropped after the grace period.
  w.restartServer()
  blockB = true
  w.run(UNLISTED_GRACE + 25_000)
  t.equal(peerStatus(w, 0), undefined, 'never relisted: dropped')
})

t.test('a cached peer whose static key does not match the cache is refused (the cache pins keys like the peer list)', async t => {
  const store = memStore()
  const w = outageWorld(2, true, 7, [new PeerCache(store, () => {}), null])
  w.run(6000)
  w.run(31_000)
  // Someone edits the cache: another key for B.
  const doc = JSON.parse(store.text!) as { peers: Array<{ key: string }> }
  doc.peers[0]!.key = Buffer.alloc(32, 9).toString('base64')
  store.text = JSON.stringify(doc)
  store.write = () => {} // (the old process's save at exit would put the real key back)
  w.serverDown = true
  w.restart(0)
  w.run(5000)
  t.not(peerStatus(w, 0).session, 'established', 'no session with a B that does not hold the cached key')
  t.ok(w.clients[0]!.c.counters.peerKeyMismatch > 0, `B's response refused (peerKeyMismatch ${w.clients[0]!.c.counters.peerKeyMismatch})`)
})
