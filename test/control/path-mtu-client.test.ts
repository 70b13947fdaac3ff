/**
 * Path MTU discovery through the real controllers (path-mtu-client.ts,
 * path-mtu-server.ts) over FakeNet on a manual clock: a client's uplink
 * drops datagrams above its MTU (no ICMP, as DF packets on a filtered
 * path); the client finds the size, the dataplane limits are set on both
 * ends, a mid-session drop is found again, bad probes are counted.
 */
import t from 'tap'
import { ManualClock } from '../../src/clock.js'
import { seededRandom } from '../../src/random.js'
import { Logger } from '../../src/log.js'
import { ServerController } from '../../src/control/server.js'
import { ClientController } from '../../src/control/client.js'
import { generateStaticKey } from '../../src/crypto/noise.js'
import { ipToInt } from '../../src/wire/addr.js'
import { CTL_MTU_PROBE, encodeControl } from '../../src/wire/control.js'
import { NO_PATH_LIMIT, RELAY_PATH } from '../../src/workers/layout.js'
import { FakeNet, type Datagram } from '../helpers/fake-dataplane.js'
import { randomBytes } from 'node:crypto'

const SERVER_IP = ipToInt('198.18.0.1')
const CLIENT_IP = ipToInt('198.18.1.1')
const quiet = new Logger({ level: 'error', sink: { write: () => {} } })

/** One server, one client whose uplink carries IP packets up to `mtu.value` bytes (UDP payload + 28). */
function lab (uplink: number, fec: { data: number, parity: number } | null = null) {
  const net = new FakeNet()
  const clock = new ManualClock()
  const random = seededRandom(7)
  const psk = new Uint8Array(randomBytes(32))
  const mtu = { value: uplink }
  net.filter = (d: Datagram) => (d.from.ip !== CLIENT_IP && d.to.ip !== CLIENT_IP) || d.bytes.length + 28 <= mtu.value
  const serverDp = net.add(SERVER_IP, 9000, 'server')
  const server = new ServerController({ psk, nodeKey: generateStaticKey(), tunnelIp: ipToInt('10.0.0.1'), prefix: 24, mtu: 1400, maxClients: 4, keepaliveSec: 10 }, { port: serverDp, clock, random, log: quiet }, 8)
  serverDp.handler = server
  const dp = net.add(CLIENT_IP, 40001, 'client')
  const c = new ClientController({
    psk, nodeKey: generateStaticKey(), tunnelIp: ipToInt('10.0.0.2'), prefix: 24, mtu: 1400,
    serverIp: SERVER_IP, serverPort: 9000, keepaliveSec: 10, serverName: '198.18.0.1:9000', fec
  }, { port: dp, clock, random, log: quiet }, 8)
  dp.handler = c
  const run = (ms: number): void => {
    for (let el = 0; el < ms; el += 50) {
      clock.advance(50)
      server.tick()
      c.tick()
      net.flush()
    }
  }
  return { net, clock, server, serverDp, c, dp, mtu, run }
}

t.test('a 1280-byte uplink: found within 5 s; limits set on both ends', async t => {
  const L = lab(1280)
  L.run(5000)
  const me = L.c.status().peers[0]
  t.equal(me.role, 'server')
  t.equal(me.pmtu?.mtu, 1280)
  t.equal(me.pmtu?.state, 'confirmed')
  t.equal(me.pmtu?.innerMax, 1220, '1280 − IPv4 20 − UDP 8 − header 16 − tag 16')
  t.ok((me.pmtu?.foundInMs ?? Infinity) <= 5000, `found in ${me.pmtu?.foundInMs} ms after registration`)
  t.equal(L.dp.pathMtus.get(0), 1220, 'client → server limit')
  t.equal(L.dp.pathMtus.get(RELAY_PATH), 1212, 'relayed peers: 8 bytes of relay envelope less')
  // The server applies the client's confirmed size (carried in its next probe: the checks, while traffic flows).
  L.dp.trafficTick = true
  L.run(4000)
  t.same([...L.serverDp.pathMtus.values()], [1220])
  t.ok(L.server.pathMtu.counters.mtuProbesAnswered > 0)
})

t.test('a 1500-byte path: the full size at once, no limit anywhere', async t => {
  const L = lab(1500)
  L.run(2000)
  const me = L.c.status().peers[0]
  t.equal(me.pmtu?.mtu, 1468, 'TUN 1400 + 60 + 8 (relay room)')
  t.equal(me.pmtu?.innerMax, null)
  t.notOk([...L.dp.pathMtus.values()].some(v => v !== NO_PATH_LIMIT))
  t.equal(L.serverDp.pathMtus.size, 0)
})

t.test('--fec on a 1500-byte path: the limits of paths to peers leave room for a full-size packet parity', async t => {
  // Parity of 10 data messages: 16 + 2 × 10 bytes beyond the largest message (wire/fec.ts). Relayed, a
  // 1400-byte packet's parity would be 1504 bytes on a 1500-byte link: dropped at the send, FEC lost.
  const L = lab(1500, { data: 10, parity: 3 })
  L.run(3000)
  t.equal(L.c.status().peers[0].pmtu?.mtu, 1500, 'the search goes past 1500 (TUN 1400 + 60 + 8 + 36) and stops at the link')
  t.equal(L.dp.pathMtus.get(0) ?? NO_PATH_LIMIT, NO_PATH_LIMIT, 'client ↔ server sessions carry no parity: no limit')
  t.equal(L.dp.pathMtus.get(RELAY_PATH), 1500 - 60 - 8 - 36, 'relayed peers: envelope and parity room')
})

t.test('black hole: the uplink shrinks to 1300 mid-session, ICMP filtered; lowered within 10 s', async t => {
  const L = lab(1500)
  L.run(2000)
  L.dp.trafficTick = true
  L.mtu.value = 1300
  let at = -1
  for (let ms = 0; ms <= 15_000 && at < 0; ms += 50) {
    L.run(50)
    if (L.c.status().peers[0].pmtu?.mtu === 1300) at = ms
  }
  t.ok(at > 0 && at <= 10_000, `lowered after ${at} ms`)
  t.equal(L.dp.pathMtus.get(0), 1240)
  t.equal(L.c.counters.mtuBlackHoles, 1)
})

t.test('probes that come through the relay are dropped and counted; malformed ones never decode', async t => {
  const L = lab(1500)
  L.run(1000)
  t.throws(() => encodeControl({ kind: CTL_MTU_PROBE, txid: 1, pathMtu: 0, length: 5 }))
  const before = L.c.counters.p2pDropped
  // A forged probe (not sealed with any session of ours): counted with the other unauthenticated control messages.
  L.dp.deliver({ from: { ip: SERVER_IP, port: 9000 }, to: { ip: CLIENT_IP, port: 40001 }, bytes: new Uint8Array([3, 0, 0, 0, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0, ...new Array(40).fill(0)]) })
  t.equal(L.c.counters.p2pDropped, before + 1)
  // The server: a control message on the client's receiver index that does not authenticate (a forged probe).
  const index = L.dp.sendKeys.get(0)!.remoteIndex
  const forged = new Uint8Array(16 + 12 + 16)
  forged[0] = 3
  new DataView(forged.buffer).setUint32(4, index, true)
  forged[8] = 200 // a counter well ahead
  L.serverDp.deliver({ from: { ip: CLIENT_IP, port: 40001 }, to: { ip: SERVER_IP, port: 9000 }, bytes: forged })
  t.equal(L.server.pathMtu.counters.controlDropped, 1)
})
