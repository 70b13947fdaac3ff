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
import { ipToInt } from '../../src/wire/addr.js'
import { FakeNat, FakeNet, type FakeDataplane } from '../helpers/fake-dataplane.js'
import { REJECT_AFTER } from '../../src/control/constants.js'
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
}

/** Two (or more) clients, each behind a port-restricted NAT (eim/apdf) unless `nat` is false. */
export function outageWorld (n = 2, nat = true, seed = 7, caches: Array<PeerCache | null> = []): OutageWorld {
  const net = new FakeNet()
  const clock = new ManualClock()
  const random = seededRandom(seed)
  const psk = new Uint8Array(randomBytes(32))
  const quiet = new Logger({ level: 'error', sink: { write: () => {} } })
  const serverDp = net.add(SERVER_IP, SERVER_PORT, 'server')
  const server = new ServerController({ psk, tunnelIp: ip('10.0.0.1'), prefix: 24, mtu: 1400, maxClients: 10, keepaliveSec: 10 }, { port: serverDp, clock, random, log: quiet }, 16)
  serverDp.handler = server
  const clients: OutageWorld['clients'] = []
  for (let i = 0; i < n; i++) {
    const inside = nat ? ip(`192.168.${i + 1}.2`) : ip(`198.18.2.${i + 1}`)
    if (nat) net.addNat(inside, new FakeNat(ip(`198.18.1.${i + 1}`), 'eim', 'apdf', random))
    const port = 41000 + i
    const dp = net.add(inside, port, 'client')
    const tunnelIp = ip(`10.0.0.${i + 2}`)
    const opt: ClientOptions = {
      psk, tunnelIp, prefix: 24, mtu: 1400, serverIp: SERVER_IP, serverPort: SERVER_PORT,
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
  t.equal(peerStatus(w, 0).tunnelIp, '10.0.0.3', 'the restarted A knows B from its cache alone')
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
