// The fake-TCP segment codec (wire/tcp-segment.ts): golden bytes of a SYN with Linux's options,
// round trips through an IPv4 packet, RFC 1071 checksum vectors and a TCP checksum checked
// against an independent sum, strict decoding of malformed packets, and a fuzz loop.
import t from 'tap'
import { WireError } from '../../src/errors.js'
import { decodeIpv4Tcp, encodeSegment, internetChecksum, onesSum, tcpChecksum, TCP_ACK, TCP_PSH, TCP_SYN, type TcpSegment } from '../../src/wire/tcp-segment.js'
import { seededRandom } from '../../src/random.js'

const SRC = 0x0a000001 // 10.0.0.1
const DST = 0xc0a80102 // 192.168.1.2

/** An IPv4 header (20 bytes, protocol TCP) in front of `seg`, with its TCP checksum filled in. */
function ipv4 (seg: Uint8Array, src = SRC, dst = DST, frag = 0x4000): Uint8Array {
  const s = seg.slice()
  const c = tcpChecksum(src, dst, s)
  s[16] = c >> 8; s[17] = c & 0xff
  const p = new Uint8Array(20 + s.length)
  p.set([0x45, 0, (p.length >> 8) & 0xff, p.length & 0xff, 0x12, 0x34, frag >> 8, frag & 0xff, 64, 6, 0, 0,
    src >>> 24, (src >>> 16) & 0xff, (src >>> 8) & 0xff, src & 0xff, dst >>> 24, (dst >>> 16) & 0xff, (dst >>> 8) & 0xff, dst & 0xff])
  p.set(s, 20)
  return p
}

const SYN: TcpSegment = { srcPort: 40000, dstPort: 9000, seq: 0x01020304, ack: 0, flags: TCP_SYN, window: 64240, options: { mss: 1460, sackOk: true, ts: { val: 0x11223344, ecr: 0 }, wscale: 9 }, payload: new Uint8Array(0) }

t.test('a SYN: golden bytes in Linux\'s option order (MSS, SACK-permitted, timestamps, NOP, window scale)', async t => {
  const b = encodeSegment(SYN)
  t.same([...b], [
    0x9c, 0x40, 0x23, 0x28, 1, 2, 3, 4, 0, 0, 0, 0, 0xa0, 0x02, 0xfa, 0xf0, 0, 0, 0, 0,
    2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0x11, 0x22, 0x33, 0x44, 0, 0, 0, 0, 1, 3, 3, 9
  ])
  const d = decodeIpv4Tcp(ipv4(b))
  t.same(d.seg, SYN)
  t.equal(d.srcIp, SRC)
  t.equal(d.dstIp, DST)
  t.ok(d.checksumOk)
})

t.test('data segment round trip: NOP NOP timestamps, payload, checksum', async t => {
  const seg: TcpSegment = { srcPort: 9000, dstPort: 40000, seq: 0xfffffff0, ack: 77, flags: TCP_ACK | TCP_PSH, window: 0xffff, options: { ts: { val: 5, ecr: 6 } }, payload: Uint8Array.from({ length: 101 }, (_, i) => i * 7) }
  const b = encodeSegment(seg)
  t.equal(b.length, 32 + 101, 'a 32-byte header, as native/faketcp.c builds it')
  t.same([...b.subarray(20, 24)], [1, 1, 8, 10])
  const p = ipv4(b)
  t.same(decodeIpv4Tcp(p).seg, seg)
  p[p.length - 1] ^= 1
  t.notOk(decodeIpv4Tcp(p).checksumOk, 'a flipped payload bit fails the checksum')
})

t.test('RFC 1071 §3 example and an independent TCP checksum', async t => {
  t.equal(onesSum(Uint8Array.from([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7])), 0xddf2, 'the one\'s-complement sum of RFC 1071\'s example')
  t.equal(internetChecksum(Uint8Array.from([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7])), 0x220d)
  t.equal(internetChecksum(Uint8Array.from([0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7])), 0, 'a well-known IPv4 header with its checksum sums to 0')
  // The sum again, the naive way: pseudo-header bytes then the segment, 16-bit words, end-around carry.
  const seg = encodeSegment({ ...SYN, payload: Uint8Array.from([1, 2, 3]) })
  const pseudo = [SRC >>> 24, (SRC >>> 16) & 0xff, (SRC >>> 8) & 0xff, SRC & 0xff, DST >>> 24, (DST >>> 16) & 0xff, (DST >>> 8) & 0xff, DST & 0xff, 0, 6, 0, seg.length]
  const all = [...pseudo, ...seg, 0]
  let sum = 0
  for (let i = 0; i + 1 < all.length; i += 2) { sum += (all[i]! << 8) | all[i + 1]!; sum = (sum & 0xffff) + (sum >>> 16) }
  t.equal(tcpChecksum(SRC, DST, seg), ~sum & 0xffff)
})

t.test('malformed packets are WireErrors naming the fault', async t => {
  const good = ipv4(encodeSegment(SYN))
  const bad = (f: (b: Uint8Array) => Uint8Array | void, re: RegExp): void => {
    const b = good.slice()
    const r = f(b) ?? b
    t.throws(() => decodeIpv4Tcp(r), re)
  }
  bad(b => b.subarray(0, 19), /not an IPv4 packet/)
  bad(b => { b[0] = 0x65 }, /not an IPv4 packet/)
  bad(b => { b[9] = 17 }, /protocol 17 is not TCP/)
  bad(b => { b[2] = 0x10 }, /lengths/)
  bad(b => ipv4(encodeSegment(SYN), SRC, DST, 0x2001), /fragment/)
  bad(b => { b[32] = 0xf0 }, /data offset 60/)
  bad(b => { b[41] = 40 }, /option 2 of length 40 overruns/)
  bad(b => { b[41] = 3 }, /option 2 of length 3/)
})

t.test('fuzz: random bytes and mutations never throw anything but a WireError', async t => {
  const r = seededRandom(12)
  const good = ipv4(encodeSegment(SYN))
  let errs = 0
  for (let i = 0; i < 5000; i++) {
    const b = i % 2 === 0 ? r.bytes(r.int(80)) : good.slice()
    if (i % 2 === 1) for (let k = 0; k < 3; k++) b[r.int(b.length)] = r.int(256)
    try { decodeIpv4Tcp(b) } catch (e) { if (!(e instanceof WireError)) throw e; errs++ }
  }
  t.ok(errs > 0, `${errs} rejected, none with another error`)
})
