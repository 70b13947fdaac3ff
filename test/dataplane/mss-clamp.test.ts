/**
 * mss-clamp.ts: vectors whose TCP checksums were computed independently
 * (a full RFC 793 sum by a separate script, before and after: the clamped
 * packet must equal the vector built with the smaller MSS byte for byte),
 * the MSS option at an even and an odd offset, IPv4 and IPv6, SYN and
 * SYN-ACK; the packets it must leave alone (not SYN, malformed options,
 * already small); and the pipelines' use of it (--mss-clamp): outbound to a
 * peer with that peer's limit, inbound from it likewise, the TUN MTU without a
 * limit, off by default, counted.
 */
import t from 'tap'
import { MSS_CLAMPED, MSS_MALFORMED, MSS_NOT_SYN, MSS_UNCHANGED, clampMss } from '../../src/dataplane/mss-clamp.js'
import { openData, relayEnvelope, sealData } from '../helpers/packets.js'
import { CLIENT_IP, LOCAL_INDEX, OTHER_IP, SERVER_EP, nonZero, rig, withServer } from '../helpers/pipeline-rig.js'
import { NO_PATH_LIMIT, RELAY_PATH } from '../../src/workers/layout.js'

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'))
/** 10.77.0.2:40000 → 10.77.0.1:22 SYN, Linux's options (MSS, SACK-permitted, timestamps, NOP, window scale). */
const V4_1460 = hex('4500003c000140004006261f0a4d00020a4d00019c4000160102030400000000a002faf053b00000020405b40402080a112233440000000001030307')
const V4_1240 = hex('4500003c000140004006261f0a4d00020a4d00019c4000160102030400000000a002faf0548c0000020404d80402080a112233440000000001030307')
/** The MSS option behind a NOP: its value at an odd offset from the TCP header. */
const V4ODD_1460 = hex('45000030000140004006262b0a4d00020a4d00019c40001601020304000000007002faf025e7000001020405b4010101')
const V4ODD_1240 = hex('45000030000140004006262b0a4d00020a4d00019c40001601020304000000007002faf001e8000001020404d8010101')
/** fd00:77::2 → fd00:77::1, SYN and SYN-ACK. */
const V6_1440 = hex('6000000000280640fd000077000000000000000000000002fd0000770000000000000000000000019c4000160102030400000000a002faf06d6e0000020405a00402080a112233440000000001030307')
const V6_1220 = hex('6000000000280640fd000077000000000000000000000002fd0000770000000000000000000000019c4000160102030400000000a002faf06e4a0000020404c40402080a112233440000000001030307')
const V6SA_1440 = hex('6000000000280640fd000077000000000000000000000002fd0000770000000000000000000000019c4000160102030400000000a012faf06d5e0000020405a00402080a112233440000000001030307')
const V6SA_1220 = hex('6000000000280640fd000077000000000000000000000002fd0000770000000000000000000000019c4000160102030400000000a012faf06e3a0000020404c40402080a112233440000000001030307')

/** Ones' complement sum over b (a correct checksum region sums to 0xffff). */
function onesSum (b: Uint8Array, init = 0): number {
  let s = init
  for (let i = 0; i < b.length; i += 2) s += (b[i]! << 8) | (i + 1 < b.length ? b[i + 1]! : 0)
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16)
  return s
}
/** The IPv4 TCP checksum verified from scratch: pseudo-header + segment sums to 0xffff. */
function tcp4Ok (p: Uint8Array): boolean {
  const ihl = (p[0]! & 15) * 4
  const seg = p.subarray(ihl)
  return onesSum(seg, onesSum(p.subarray(12, 20)) + 6 + seg.length) === 0xffff
}
/** A copy of an IPv4 TCP packet with other addresses, its TCP checksum recomputed from scratch. */
function withAddrs (pkt: Uint8Array, src: number, dst: number, flags = pkt[33]!): Uint8Array {
  const p = Uint8Array.from(pkt)
  const v = new DataView(p.buffer)
  v.setUint32(12, src); v.setUint32(16, dst)
  p[33] = flags
  v.setUint16(36, 0)
  v.setUint16(36, ~onesSum(p.subarray(20), onesSum(p.subarray(12, 20)) + 6 + p.length - 20) & 0xffff)
  return p
}
/** Move the packet into a bigger buffer at an odd-free offset, as the pipelines hold it. */
function at (pkt: Uint8Array, off = 48): Uint8Array {
  const b = new Uint8Array(off + pkt.length + 16)
  b.set(pkt, off)
  return b
}

t.test('vectors: clamped packets equal the independently built ones', async t => {
  const rows: Array<[string, Uint8Array, Uint8Array]> = [
    ['IPv4 SYN', V4_1460, V4_1240],
    ['IPv4 SYN, MSS at an odd offset', V4ODD_1460, V4ODD_1240],
    ['IPv6 SYN', V6_1440, V6_1220],
    ['IPv6 SYN-ACK', V6SA_1440, V6SA_1220]
  ]
  for (const [name, big, small] of rows) {
    const b = at(big)
    t.equal(clampMss(b, 48, big.length, 1280), MSS_CLAMPED, name)
    t.same(Buffer.from(b.subarray(48, 48 + big.length)).toString('hex'), Buffer.from(small).toString('hex'), `${name}: bytes and checksum`)
    t.equal(clampMss(b, 48, big.length, 1280), MSS_UNCHANGED, `${name}: already fits the second time`)
  }
  t.ok(tcp4Ok(V4_1240) && tcp4Ok(V4ODD_1240), 'the vectors themselves check out')
})

t.test('an MSS below the limit, and a large limit, leave the packet alone', async t => {
  const b = at(V4_1240)
  t.equal(clampMss(b, 48, V4_1240.length, 1400), MSS_UNCHANGED)
  t.equal(clampMss(b, 48, V4_1240.length, NO_PATH_LIMIT), MSS_UNCHANGED)
  t.same(b.subarray(48, 48 + V4_1240.length), V4_1240)
})

t.test('random MSS values and limits: the incremental checksum equals a full one', async t => {
  for (let i = 0; i < 200; i++) {
    const p = Uint8Array.from(i % 2 === 0 ? V4_1460 : V4ODD_1460)
    const o = i % 2 === 0 ? 22 : 23 // the MSS value's offset from the TCP header
    const mss = 600 + ((i * 7919) % 60000)
    // Set the MSS and recompute the checksum from scratch, then clamp and verify from scratch.
    p[20 + o] = mss >> 8; p[20 + o + 1] = mss & 0xff
    p[36] = 0; p[37] = 0
    const c = ~onesSum(p.subarray(20), onesSum(p.subarray(12, 20)) + 6 + p.length - 20) & 0xffff
    p[36] = c >> 8; p[37] = c & 0xff
    const limit = 600 + ((i * 104729) % 9000)
    const v = clampMss(p, 0, p.length, limit)
    t.equal(v, mss > limit - 40 ? MSS_CLAMPED : MSS_UNCHANGED)
    t.equal((p[20 + o]! << 8) | p[20 + o + 1]!, Math.min(mss, limit - 40))
    if (!tcp4Ok(p)) { t.fail(`checksum wrong for mss ${mss} limit ${limit}`); return }
  }
})

t.test('packets that are not SYNs, or whose options are malformed', async t => {
  const mod = (f: (p: Uint8Array) => void, src = V4_1460): Uint8Array => { const p = Uint8Array.from(src); f(p); return p }
  const rows: Array<[string, Uint8Array, number]> = [
    ['an ACK', mod(p => { p[33] = 0x10 }), MSS_NOT_SYN],
    ['UDP', mod(p => { p[9] = 17 }), MSS_NOT_SYN],
    ['a later fragment', mod(p => { p[6] = 0x20; p[7] = 0x10 }), MSS_NOT_SYN],
    ['IPv6 behind an extension header', mod(p => { p[6] = 0 }, V6_1440), MSS_NOT_SYN],
    ['not IP', new Uint8Array(60), MSS_NOT_SYN],
    ['truncated', V4_1460.subarray(0, 38), MSS_NOT_SYN],
    ['data offset past the packet', mod(p => { p[32] = 0xf0 }), MSS_MALFORMED],
    ['data offset below 5', mod(p => { p[32] = 0x40 }), MSS_MALFORMED],
    ['option length 0', mod(p => { p[45] = 0 }), MSS_MALFORMED],
    ['option length past the header', mod(p => { p[47] = 30 }), MSS_MALFORMED],
    ['MSS option of length 3', mod(p => { p[41] = 3 }), MSS_MALFORMED],
    ['a second MSS option', mod(p => { p[56] = 2; p[57] = 4; p[58] = 5; p[59] = 0xb4 }), MSS_MALFORMED],
    ['no MSS option (end of list first)', mod(p => { p[40] = 0 }), MSS_UNCHANGED]
  ]
  for (const [name, pkt, want] of rows) {
    const before = Uint8Array.from(pkt)
    t.equal(clampMss(pkt, 0, pkt.length, 1280), want, name)
    t.same(pkt, before, `${name}: untouched`)
  }
})

for (const placement of ['fused', 'split'] as const) {
  t.test(`${placement}: --mss-clamp clamps SYNs both ways to the peer's limit, the TUN MTU without one`, async t => {
    const r = rig(t, 'client', placement, undefined, { mssClamp: true }) // TUN MTU 1400
    const { sendKey, recvKey } = withServer(r)
    r.post({ code: 'PATH_MTU', slot: 1, inner: 1280 })
    await r.io.settle()
    r.tun.inject(V4_1460)
    r.tun.inject(V4_1240)
    await r.io.settle()
    const sent = r.udp.takeSent().map(s => openData(sendKey, s.bytes).inner)
    t.same(sent.map(p => Buffer.from(p).toString('hex')), [V4_1240, V4_1240].map(p => Buffer.from(p).toString('hex')), 'outbound: clamped to 1280 − 40')
    // Inbound: the peer's SYN-ACK to us (addresses swapped: the checksum does not change).
    const synAck = Uint8Array.from(V4_1460)
    synAck.set(V4_1460.subarray(16, 20), 12); synAck.set(V4_1460.subarray(12, 16), 16)
    synAck[33] = 0x12
    synAck[36] = 0x53; synAck[37] = 0xa0 // flags +0x10: the checksum −0x10
    r.udp.inject(sealData(recvKey, LOCAL_INDEX, 0, synAck), SERVER_EP.ip, SERVER_EP.port)
    await r.io.settle()
    const got = r.tun.take()
    t.equal(got.length, 1)
    t.equal((got[0]![42]! << 8) | got[0]![43]!, 1240, 'inbound: clamped to the same limit')
    t.ok(tcp4Ok(got[0]!), 'its checksum holds')
    t.match(nonZero(r.counters()), { mssClamped: 2 })
    // No limit: the TUN MTU's.
    r.post({ code: 'PATH_MTU', slot: 1, inner: NO_PATH_LIMIT })
    r.tun.inject(V4_1460)
    await r.io.settle()
    const p = openData(sendKey, r.udp.takeSent()[0]!.bytes).inner
    t.equal((p[42]! << 8) | p[43]!, 1360, 'TUN MTU 1400 − 40')
    t.ok(tcp4Ok(p))
    // Malformed options: passed on, counted.
    const bad = Uint8Array.from(V4_1460); bad[45] = 0
    r.tun.inject(bad)
    await r.io.settle()
    t.same(openData(sendKey, r.udp.takeSent()[0]!.bytes).inner, bad, 'passed on untouched')
    t.match(nonZero(r.counters()), { mssClamped: 3, mssMalformed: 1 })
  })
}

t.test('off by default: SYNs pass unchanged', async t => {
  const r = rig(t, 'client', 'fused')
  const { sendKey } = withServer(r)
  r.post({ code: 'PATH_MTU', slot: 1, inner: 1280 })
  r.tun.inject(V4_1460)
  await r.io.settle()
  t.same(openData(sendKey, r.udp.takeSent()[0]!.bytes).inner, V4_1460)
  t.equal(r.counters().mssClamped, 0)
})

t.test('a relayed peer: its SYNs both ways take the relay limit (PATH_MTU RELAY_PATH)', async t => {
  const r = rig(t, 'client', 'fused', undefined, { mssClamp: true })
  const sendKey = new Uint8Array(32).fill(3)
  const recvKey = new Uint8Array(32).fill(4)
  r.post({ code: 'PEER', slot: 2, peerId: 42, tunnelIp: OTHER_IP, endpointIp: SERVER_EP.ip, endpointPort: SERVER_EP.port, relayVia: true, fd: -1 })
  r.post({ code: 'SEND_KEY', slot: 2, key: sendKey, remoteIndex: 9 })
  r.post({ code: 'RECV_KEY', slot: 2, localIndex: 77, key: recvKey })
  r.post({ code: 'PATH_MTU', slot: RELAY_PATH, inner: 1212 })
  r.post({ code: 'PATH_MTU', slot: 2, inner: 1400 }) // its own (direct) limit does not apply while relayed
  r.tun.inject(withAddrs(V4_1460, CLIENT_IP, OTHER_IP))
  await r.io.settle()
  const sent = r.udp.takeSent()[0]!.bytes
  const out = openData(sendKey, sent.subarray(8)).inner
  t.equal((out[42]! << 8) | out[43]!, 1172, 'outbound: 1212 − 40')
  t.ok(tcp4Ok(out))
  r.udp.inject(relayEnvelope(42, sealData(recvKey, 77, 0, withAddrs(V4_1460, OTHER_IP, CLIENT_IP, 0x12))), SERVER_EP.ip, SERVER_EP.port)
  await r.io.settle()
  const got = r.tun.take()[0]!
  t.equal((got[42]! << 8) | got[43]!, 1172, 'inbound: the same')
  t.ok(tcp4Ok(got))
  t.equal(r.counters().mssClamped, 2)
})
