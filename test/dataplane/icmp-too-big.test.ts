/**
 * icmp-too-big.ts vectors (checksums verified by an independent sum, the
 * fields by offset), the packets it must not answer, and the outbound
 * pipeline's use of it (PATH_MTU): oversized packets dropped, counted and
 * answered once per batch on the TUN; packets that fit, and relayed peers.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { buildTooBig } from '../../src/dataplane/icmp-too-big.js'
import { ipv4 } from '../helpers/packets.js'
import { ipv6, l4Checksum6 } from '../helpers/packets6.js'
import { CLIENT_IP, OTHER_EP, OTHER_IP, SERVER_IP, nonZero, rig, withServer } from '../helpers/pipeline-rig.js'
import { NO_PATH_LIMIT, RELAY_PATH } from '../../src/workers/layout.js'

/** Ones' complement sum over b (a correct checksum region sums to 0xffff). */
function onesSum (b: Uint8Array, from = 0, to = b.length): number {
  let s = 0
  for (let i = from; i < to; i += 2) s += (b[i]! << 8) | (i + 1 < to ? b[i + 1]! : 0)
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16)
  return s
}
function build (pkt: Uint8Array, mtu: number): Uint8Array {
  const out = new Uint8Array(16 + 1280)
  const n = buildTooBig(pkt, 0, pkt.length, mtu, out, 16)
  return out.slice(16, 16 + n)
}
const v6a = Uint8Array.from(Buffer.from('fd000077000000000000000000000002', 'hex'))
const v6b = Uint8Array.from(Buffer.from('fd000077000000000000000000000001', 'hex'))

t.test('IPv4 fragmentation needed: fields, quote, both checksums', async t => {
  const pkt = ipv4(CLIENT_IP, SERVER_IP, randomBytes(1280), 6)
  pkt[6] = 0x40 // DF
  const a = build(pkt, 1220)
  const v = new DataView(a.buffer)
  t.equal(a.length, 576, 'RFC 1812: at most 576 bytes')
  t.equal(a[0], 0x45)
  t.equal(v.getUint16(2), 576, 'total length')
  t.equal(a[9], 1, 'ICMP')
  t.equal(v.getUint32(12), SERVER_IP, 'from the packet\'s destination')
  t.equal(v.getUint32(16), CLIENT_IP, 'to its source')
  t.equal(onesSum(a, 0, 20), 0xffff, 'IPv4 header checksum')
  t.same([a[20], a[21]], [3, 4], 'type 3 code 4')
  t.equal(v.getUint16(26), 1220, 'next-hop MTU')
  t.equal(onesSum(a, 20), 0xffff, 'ICMP checksum')
  t.same(a.subarray(28), pkt.subarray(0, 548), 'the original, quoted from its first byte')
})

t.test('IPv4 golden vector: a 28-byte UDP packet, quoted whole (checksums computed independently)', async t => {
  const pkt = Uint8Array.from(Buffer.from('4500001c00004000401100000a4d00020a4d00011f9023280008abcd', 'hex'))
  t.equal(Buffer.from(build(pkt, 1000)).toString('hex'),
    '45c0003800000000400165690a4d00010a4d0002' + '030430bb000003e8' + '4500001c00004000401100000a4d00020a4d00011f9023280008abcd')
})

t.test('IPv6 Packet Too Big: fields, quote up to 1280, checksum over the pseudo-header', async t => {
  const pkt = ipv6(v6a, v6b, randomBytes(1400), 17)
  const a = build(pkt, 1220)
  const v = new DataView(a.buffer)
  t.equal(a.length, 1280, 'the IPv6 minimum MTU at most')
  t.equal(a[0] >> 4, 6)
  t.equal(v.getUint16(4), 1240, 'payload length')
  t.equal(a[6], 58, 'ICMPv6')
  t.same(a.subarray(8, 24), v6b, 'from the destination')
  t.same(a.subarray(24, 40), v6a, 'to the source')
  t.same([a[40], a[41]], [2, 0], 'type 2 code 0')
  t.equal(v.getUint32(44), 1280, 'a path below 1280 is announced as 1280 (RFC 8200 minimum)')
  t.equal(l4Checksum6(a, 58), 0xffff, 'ICMPv6 checksum')
  t.same(a.subarray(48), pkt.subarray(0, 1232))
  t.equal(new DataView(build(ipv6(v6a, v6b, randomBytes(1600), 17), 1400).buffer).getUint32(44), 1400)
})

t.test('packets never answered', async t => {
  const icmpErr = ipv4(CLIENT_IP, SERVER_IP, Uint8Array.from([3, 1, 0, 0, 0, 0, 0, 0, ...randomBytes(1300)]), 1)
  const echo = ipv4(CLIENT_IP, SERVER_IP, Uint8Array.from([8, 0, 0, 0, 0, 0, 0, 0, ...randomBytes(1300)]), 1)
  const frag = ipv4(CLIENT_IP, SERVER_IP, randomBytes(1300))
  frag[7] = 100 // fragment offset 800
  const fromZero = ipv4(0, SERVER_IP, randomBytes(1300))
  const fromMulticast = ipv4(0xe0000001, SERVER_IP, randomBytes(1300))
  const icmp6Err = ipv6(v6a, v6b, Uint8Array.from([1, 0, 0, 0, ...randomBytes(1400)]), 58)
  const icmp6Echo = ipv6(v6a, v6b, Uint8Array.from([128, 0, 0, 0, ...randomBytes(1400)]), 58)
  const rows: Array<[string, Uint8Array, boolean]> = [
    ['an ICMP error', icmpErr, false],
    ['an ICMP echo request (a query: answered)', echo, true],
    ['a non-first fragment', frag, false],
    ['source 0.0.0.0', fromZero, false],
    ['a multicast source', fromMulticast, false],
    ['an ICMPv6 error', icmp6Err, false],
    ['an ICMPv6 echo request (answered)', icmp6Echo, true],
    ['a truncated header', Uint8Array.from([0x45, 0, 0]), false],
    ['not IP', new Uint8Array(100), false]
  ]
  for (const [name, pkt, answered] of rows) t.test(name, async t => { t.equal(build(pkt, 1000).length > 0, answered) })
})

for (const placement of ['fused', 'split'] as const) {
  t.test(`${placement}: a packet above the path's limit is dropped and answered on the TUN, once per batch`, async t => {
    const r = rig(t, 'client', placement)
    withServer(r)
    r.post({ code: 'PATH_MTU', slot: 1, inner: 1000 })
    const big = ipv4(CLIENT_IP, SERVER_IP, randomBytes(1100), 6)
    r.tun.inject(big, 3)
    r.tun.inject(ipv4(CLIENT_IP, SERVER_IP, randomBytes(980 - 20)))
    await r.io.settle()
    t.equal(r.udp.takeSent().length, 1, 'only the packet that fits left')
    const w = r.tun.take()
    t.equal(w.length, 1, 'one answer for the three')
    const a = w[0]!
    t.same([a[20], a[21]], [3, 4])
    t.equal((a[26]! << 8) | a[27]!, 1000, 'the limit as next-hop MTU')
    t.equal(onesSum(a, 0, 20), 0xffff)
    t.equal(onesSum(a, 20), 0xffff)
    t.match(nonZero(r.counters()), { dropPathMtu: 3, icmpTooBigSent: 1, udpTxPackets: 1 })
    r.post({ code: 'PATH_MTU', slot: 1, inner: NO_PATH_LIMIT })
    r.tun.inject(big)
    await r.io.settle()
    t.equal(r.udp.takeSent().length, 1, 'no limit: the big packet leaves')
  })

  t.test(`${placement}: relayed peers take the relay limit, direct ones their own`, async t => {
    const r = rig(t, 'client', placement)
    withServer(r)
    r.post({ code: 'PEER', slot: 2, peerId: 7, tunnelIp: OTHER_IP, endpointIp: 0x64400001, endpointPort: 9000, relayVia: true, fd: -1 })
    r.post({ code: 'SEND_KEY', slot: 2, key: new Uint8Array(randomBytes(32)), remoteIndex: 9 })
    r.post({ code: 'PATH_MTU', slot: RELAY_PATH, inner: 1212 })
    r.tun.inject(ipv4(CLIENT_IP, OTHER_IP, randomBytes(1250)))
    r.tun.inject(ipv4(CLIENT_IP, SERVER_IP, randomBytes(1250)))
    await r.io.settle()
    t.equal(r.udp.takeSent().length, 1, 'the server (direct, no limit) got its packet; the relayed peer\'s was too big')
    t.equal(r.counters().dropPathMtu, 1)
    // Now direct: its own (unlimited) path.
    r.post({ code: 'PEER', slot: 2, peerId: 7, tunnelIp: OTHER_IP, endpointIp: OTHER_EP.ip, endpointPort: OTHER_EP.port, relayVia: false, fd: -1 })
    r.tun.inject(ipv4(CLIENT_IP, OTHER_IP, randomBytes(1250)))
    await r.io.settle()
    t.equal(r.udp.takeSent().length, 1)
  })
}
