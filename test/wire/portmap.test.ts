/**
 * NAT-PMP (wire/natpmp.ts) and PCP (wire/pcp.ts): golden bytes laid out by
 * hand from RFC 6886 §3.2–3.3 and RFC 6887 §7, §11, round trips, and random
 * input that decodes to an answer or a reason, never a throw.
 */
import t from 'tap'
import { decodeNatpmp, encodeNatpmpExternal, encodeNatpmpMap } from '../../src/wire/natpmp.js'
import { decodePcp, encodePcpMap, PCP_MSG_LEN } from '../../src/wire/pcp.js'
import { seededRandom } from '../../src/random.js'

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const bytes = (h: string): Uint8Array => new Uint8Array(Buffer.from(h.replace(/\s+/g, ''), 'hex'))

t.test('NAT-PMP requests: golden bytes', async t => {
  t.equal(hex(encodeNatpmpExternal()), '0000')
  // vers 0, op 1, reserved, internal 9000 (0x2328), suggested 9000, lifetime 7200 (0x1c20)
  t.equal(hex(encodeNatpmpMap(9000, 9000, 7200)), '0001' + '0000' + '2328' + '2328' + '00001c20')
  // delete: lifetime 0, suggested 0
  t.equal(hex(encodeNatpmpMap(9000, 0, 0)), '000100002328000000000000')
})

t.test('NAT-PMP answers decode; short, foreign and wrong-opcode ones give a reason', async t => {
  t.same(decodeNatpmp(bytes('0080 0000 0000012c 64400102')), { op: 'external', result: 0, epoch: 300, externalIp: 0x64400102 })
  t.same(decodeNatpmp(bytes('0081 0000 0000012c 2328 9c40 00000e10')), { op: 'map', result: 0, epoch: 300, internalPort: 9000, externalPort: 40000, lifetimeSec: 3600 })
  t.same(decodeNatpmp(bytes('0081 0002 00000005')), { op: 'map', result: 2, epoch: 5, internalPort: 0, externalPort: 0, lifetimeSec: 0 }, 'a short error answer')
  for (const bad of ['00', '0080 0000 0000012c', '0081 0000 0000012c 2328', '0082 0000 00000000 00000000', '0180 0000 00000000 00000000']) {
    t.type(decodeNatpmp(bytes(bad)), 'string', bad)
  }
})

const NONCE = bytes('0102030405060708090a0b0c')

t.test('PCP MAP request: golden bytes', async t => {
  const b = encodePcpMap({ lifetimeSec: 7200, clientIp: 0xc0a80102, nonce: NONCE, internalPort: 9000, suggestedPort: 9000, suggestedIp: 0 })
  t.equal(b.length, PCP_MSG_LEN)
  t.equal(hex(b),
    '02' + '01' + '0000' + '00001c20' +
    '00000000000000000000ffff' + 'c0a80102' +
    '0102030405060708090a0b0c' + '11' + '000000' + '2328' + '2328' +
    '00000000000000000000ffff' + '00000000')
  t.throws(() => encodePcpMap({ lifetimeSec: 1, clientIp: 1, nonce: new Uint8Array(4), internalPort: 1, suggestedPort: 1, suggestedIp: 0 }), RangeError)
})

t.test('PCP answers decode; a short error answer has no nonce; others give a reason', async t => {
  const ok = bytes(
    '02' + '81' + '00' + '00' + '00000e10' + '0000012c' + '000000000000000000000000' +
    '0102030405060708090a0b0c' + '11' + '000000' + '2328' + '9c40' + '00000000000000000000ffff' + '64400102')
  t.same(decodePcp(ok), { result: 0, lifetimeSec: 3600, epoch: 300, nonce: NONCE, protocol: 17, internalPort: 9000, externalPort: 40000, externalIp: 0x64400102 })
  const err = decodePcp(bytes('02' + '81' + '00' + '02' + '00000000' + '00000007' + '000000000000000000000000'))
  t.same(err, { result: 2, lifetimeSec: 0, epoch: 7, nonce: new Uint8Array(0), protocol: 0, internalPort: 0, externalPort: 0, externalIp: 0 })
  t.type(decodePcp(ok.slice(0, 30)), 'string', 'a short success answer')
  const notMapped = ok.slice()
  notMapped[54] = 0 // not ::ffff:a.b.c.d
  t.equal((decodePcp(notMapped) as { externalIp: number }).externalIp, 0, 'an IPv6 external address reads as none')
  const request = ok.slice()
  request[1] = 0x01
  t.type(decodePcp(request), 'string', 'a request is not an answer')
})

t.test('random input never throws', async t => {
  const r = seededRandom(12)
  for (let i = 0; i < 5000; i++) {
    const b = r.bytes(r.int(70))
    if (i % 2 === 0 && b.length > 1) b[0] = i % 4 === 0 ? 0 : 2
    if (i % 3 === 0 && b.length > 1) b[1] = [0x80, 0x81, 0x82][i % 3]!
    decodeNatpmp(b)
    decodePcp(b)
  }
  t.pass('5000 random datagrams decoded or refused')
})
