// Cryptokey routing and IPv6 inner packets in the real pipelines over the
// in-memory twin (helpers/pipeline-rig.ts): PEER `prefixes` route outbound
// packets by longest prefix and are the only inner sources accepted from
// that peer besides its tunnel address; LOCAL lists the inner destinations
// we accept besides our own tunnel address. IPv6 packets (version 6,
// source at +8, destination at +24) travel exactly like IPv4 ones, direct
// and relayed, on a client and on a server.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { ipv4, openData, relayEnvelope, sealData, seqPayload } from '../helpers/packets.js'
import { a6, ipv6 } from '../helpers/packets6.js'
import { CLIENT_IP, LOCAL_INDEX, OTHER_IP, SERVER_EP, SERVER_IP, rig, withServer, type Rig } from '../helpers/pipeline-rig.js'
import { parsePrefix, type IpPrefix } from '../../src/wire/prefix.js'
import { ipToInt } from '../../src/wire/addr.js'

const P = (s: string): IpPrefix => parsePrefix(s, { keepHostBits: true })
const SERVER6 = 'fd00:77::1'
const CLIENT6 = 'fd00:77::2'
const OTHER6 = 'fd00:77::3'
const OTHER_ID = 42
const OTHER_INDEX = 77 // our receiver index for the other client's data
const OTHER_REMOTE = 0x0abc // its receiver index for ours

/** A client: the server (slot 1, direct, its IPv6 address) and another client (slot 2, relayed, IPv6 + routes); LOCAL = our IPv6 /128 and a route we serve. */
function clientRig (t: Parameters<typeof rig>[0], placement: 'fused' | 'split' = 'fused'): Rig & { keys: { sendKey: Uint8Array, recvKey: Uint8Array, otherSend: Uint8Array, otherRecv: Uint8Array } } {
  const r = rig(t, 'client', placement)
  const k = withServer(r)
  r.post({ code: 'PEER', slot: 1, peerId: 0, tunnelIp: SERVER_IP, endpointIp: SERVER_EP.ip, endpointPort: SERVER_EP.port, relayVia: false, fd: -1, prefixes: [P(`${SERVER6}/128`)] })
  const otherSend = new Uint8Array(randomBytes(32))
  const otherRecv = new Uint8Array(randomBytes(32))
  r.post({ code: 'PEER', slot: 2, peerId: OTHER_ID, tunnelIp: OTHER_IP, endpointIp: SERVER_EP.ip, endpointPort: SERVER_EP.port, relayVia: true, fd: -1, prefixes: [P(`${OTHER6}/128`), P('192.168.50.0/24'), P('fd00:50::/64')] })
  r.post({ code: 'SEND_KEY', slot: 2, key: otherSend, remoteIndex: OTHER_REMOTE })
  r.post({ code: 'RECV_KEY', slot: 2, localIndex: OTHER_INDEX, key: otherRecv })
  r.post({ code: 'LOCAL', prefixes: [P(`${CLIENT6}/128`), P('192.168.60.0/24')] })
  return Object.assign(r, { keys: { ...k, otherSend, otherRecv } })
}

const ip4 = (s: string): number => ipToInt(s)

for (const placement of ['fused', 'split'] as const) {
  t.test(`${placement}: outbound by longest prefix, IPv4 and IPv6, direct and relayed`, async t => {
    const r = clientRig(t, placement)
    const { sendKey, otherSend } = r.keys
    const toServer6 = ipv6(a6(CLIENT6), a6(SERVER6), randomBytes(60))
    const toOther6 = ipv6(a6(CLIENT6), a6(OTHER6), randomBytes(61))
    const toRoute6 = ipv6(a6(CLIENT6), a6('fd00:50::99'), randomBytes(62))
    const toRoute4 = ipv4(CLIENT_IP, ip4('192.168.50.7'), randomBytes(63))
    for (const p of [toServer6, toOther6, toRoute6, toRoute4]) r.tun.inject(p)
    r.tun.inject(ipv4(CLIENT_IP, ip4('192.168.51.1'))) // outside every route
    r.tun.inject(ipv6(a6(CLIENT6), a6('fd00:51::1'))) // likewise
    r.tun.inject(ipv6(a6(CLIENT6), a6('fd00:77::9'))) // the tunnel network, but nobody's address
    await r.io.settle()
    const sent = r.udp.takeSent()
    t.equal(sent.length, 4, 'four sent, three without a route')
    t.same(openData(sendKey, sent[0]!.bytes).inner, toServer6, 'IPv6 to the server: sealed with its key, direct')
    t.same({ ip: sent[0]!.ip, port: sent[0]!.port }, SERVER_EP)
    for (const [i, pkt] of [[1, toOther6], [2, toRoute6], [3, toRoute4]] as const) {
      const d = sent[i]!.bytes
      t.same([d[0], new DataView(d.buffer, d.byteOffset).getUint32(4, true)], [5, OTHER_ID], `packet ${i}: in a relay envelope to the other client`)
      const m = openData(otherSend, d.subarray(8))
      t.same(m.inner, pkt, `packet ${i}: intact`)
      t.equal(m.counter, i - 1, 'counters in order')
    }
    t.match(r.counters(), { tunRxPackets: 7, dropNoRoute: 3, udpTxPackets: 4, dropNotIp: 0 })
  })

  t.test(`${placement}: inbound accepts a peer's own prefixes as source and LOCAL ones as destination, nothing else`, async t => {
    const r = clientRig(t, placement)
    const { recvKey, otherRecv } = r.keys
    let c1 = 0
    let c2 = 0
    const fromServer = (inner: Uint8Array): void => { r.udp.inject(sealData(recvKey, LOCAL_INDEX, c1++, inner), SERVER_EP.ip, SERVER_EP.port) }
    const fromOther = (inner: Uint8Array): void => { r.udp.inject(relayEnvelope(OTHER_ID, sealData(otherRecv, OTHER_INDEX, c2++, inner)), SERVER_EP.ip, SERVER_EP.port) }
    const good = [
      ipv6(a6(SERVER6), a6(CLIENT6), seqPayload(1)),
      ipv4(SERVER_IP, ip4('192.168.60.5'), seqPayload(2)), // to a route we serve
      ipv6(a6('fd00:50::7'), a6(CLIENT6), seqPayload(3)), // from the other client's route
      ipv4(ip4('192.168.50.9'), CLIENT_IP, seqPayload(4)),
      ipv6(a6(OTHER6), a6(CLIENT6), seqPayload(5))
    ]
    fromServer(good[0]!)
    fromServer(good[1]!)
    fromOther(good[2]!)
    fromOther(good[3]!)
    fromOther(good[4]!)
    fromServer(ipv6(a6(OTHER6), a6(CLIENT6))) // the other client's address, on the server's session: spoofed
    fromServer(ipv4(ip4('192.168.50.9'), CLIENT_IP)) // the other client's route, on the server's session
    fromOther(ipv6(a6('fd00:51::7'), a6(CLIENT6))) // outside the other client's prefixes
    fromOther(ipv6(a6(OTHER6), a6('fd00:77::9'))) // not our address
    fromServer(ipv4(SERVER_IP, ip4('192.168.61.5'))) // outside LOCAL
    fromServer(ipv6(a6(SERVER6), a6(CLIENT6)).subarray(0, 39)) // cut short of its header
    await r.io.settle()
    t.same(r.tun.take(), good, 'the genuine ones, in order')
    t.match(r.counters(), { tunTxPackets: 5, dropSpoofedSource: 3, dropNotForUs: 2, dropNotIp: 1 })
  })
}

t.test('routes withdrawn by a later PEER, addresses gone with PEER_REMOVE; LOCAL replaced', async t => {
  const r = clientRig(t)
  const { otherRecv } = r.keys
  r.post({ code: 'PEER', slot: 2, peerId: OTHER_ID, tunnelIp: OTHER_IP, endpointIp: SERVER_EP.ip, endpointPort: SERVER_EP.port, relayVia: true, fd: -1, prefixes: [P(`${OTHER6}/128`)] })
  r.post({ code: 'LOCAL', prefixes: [P(`${CLIENT6}/128`)] })
  r.tun.inject(ipv4(CLIENT_IP, ip4('192.168.50.7')))
  r.tun.inject(ipv6(a6(CLIENT6), a6(OTHER6)))
  let c = 0
  const fromOther = (inner: Uint8Array): void => { r.udp.inject(relayEnvelope(OTHER_ID, sealData(otherRecv, OTHER_INDEX, c++, inner)), SERVER_EP.ip, SERVER_EP.port) }
  fromOther(ipv4(ip4('192.168.50.9'), CLIENT_IP)) // the route is no longer the peer's
  fromOther(ipv4(OTHER_IP, ip4('192.168.60.5'))) // nor ours
  fromOther(ipv6(a6(OTHER6), a6(CLIENT6)))
  await r.io.settle()
  t.equal(r.udp.takeSent().length, 1, 'only the IPv6 packet to the peer leaves')
  t.equal(r.tun.take().length, 1, 'only the IPv6 packet from the peer arrives')
  t.match(r.counters(), { dropNoRoute: 1, dropSpoofedSource: 1, dropNotForUs: 1 })
  r.post({ code: 'PEER_REMOVE', slot: 2 })
  r.tun.inject(ipv6(a6(CLIENT6), a6(OTHER6)))
  await r.io.settle()
  t.same(r.udp.takeSent(), [])
  t.match(r.counters(), { dropNoRoute: 2 })
})

t.test('server: packets to a client\'s IPv6 address and approved routes go to it; its packets from them are accepted, to us only', async t => {
  const r = rig(t, 'server')
  const sendKey = new Uint8Array(randomBytes(32))
  const recvKey = new Uint8Array(randomBytes(32))
  const CLIENT_EP = { ip: 0x64400102, port: 40001 }
  r.post({ code: 'PEER', slot: 3, peerId: 7, tunnelIp: CLIENT_IP, endpointIp: CLIENT_EP.ip, endpointPort: CLIENT_EP.port, relayVia: false, fd: -1, prefixes: [P(`${CLIENT6}/128`), P('10.200.0.0/16')] })
  r.post({ code: 'SEND_KEY', slot: 3, key: sendKey, remoteIndex: 99 })
  r.post({ code: 'RECV_KEY', slot: 3, localIndex: 1234, key: recvKey })
  r.post({ code: 'LOCAL', prefixes: [P(`${SERVER6}/128`)] })
  const out6 = ipv6(a6(SERVER6), a6(CLIENT6), randomBytes(30))
  const out4 = ipv4(SERVER_IP, ip4('10.200.3.4'), randomBytes(30))
  r.tun.inject(out6)
  r.tun.inject(out4)
  const in6 = ipv6(a6(CLIENT6), a6(SERVER6), seqPayload(1))
  const in4 = ipv4(ip4('10.200.9.9'), SERVER_IP, seqPayload(2))
  let c = 0
  for (const p of [in6, in4, ipv6(a6(OTHER6), a6(SERVER6)), ipv6(a6(CLIENT6), a6(OTHER6))]) r.udp.inject(sealData(recvKey, 1234, c++, p), CLIENT_EP.ip, CLIENT_EP.port)
  await r.io.settle()
  const sent = r.udp.takeSent()
  t.same(sent.map((s) => openData(sendKey, s.bytes).inner), [out6, out4])
  t.ok(sent.every((s) => s.ip === CLIENT_EP.ip && s.port === CLIENT_EP.port), 'to the client\'s endpoint')
  t.same(r.tun.take(), [in6, in4])
  t.match(r.counters(), { dropSpoofedSource: 1, dropNotForUs: 1 })
})
