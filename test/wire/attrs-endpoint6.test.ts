// The IPv6 endpoint attributes (wire/attrs.ts types 5 ENDPOINT6 and 6 CANDIDATE6): golden bytes,
// round trips alone and after the other attributes, through a PeerUpdate entry, strict decoding,
// and the rule that lets an older node skip them.
import t from 'tap'
import { ATTR_CANDIDATE6, ATTR_ENDPOINT6, MAX_CANDIDATES6, NO_ATTRS, attrsLength, decodeAttrs, encodeAttrs, isEmptyAttrs, type NodeAttrs } from '../../src/wire/attrs.js'
import { decodeControl, encodeControl, CTL_PEER_UPDATE, PEER_OP_UPSERT, type PeerEntry } from '../../src/wire/control.js'
import { parseIp6 } from '../../src/wire/prefix.js'

const A = parseIp6('2001:db8::1')
const B = parseIp6('2001:db8:1::2')

t.test('ENDPOINT6: golden bytes and round trip', async t => {
  const a: NodeAttrs = { tunnel6: null, routes: [], endpoint6: { addr: A, port: 9000 } }
  const buf = new Uint8Array(attrsLength(a))
  t.equal(encodeAttrs(a, buf, 0), 22)
  t.same([...buf], [20, 0, ATTR_ENDPOINT6, 18, ...A, 0x28, 0x23], "the port little-endian, as every u16 of the protocol")
  t.same(decodeAttrs(buf, 0, 'x').attrs, a)
  t.notOk(isEmptyAttrs(a))
  t.ok(isEmptyAttrs({ ...NO_ATTRS, endpoint6: null, candidates6: [] }))
})

t.test('CANDIDATE6s after the other attributes, in order', async t => {
  const a: NodeAttrs = {
    tunnel6: { family: 6, addr: parseIp6('fd00::2'), len: 64 },
    routes: [{ family: 4, addr: new Uint8Array([10, 1, 0, 0]), len: 16 }],
    fec: { data: 10, parity: 3 },
    endpoint6: { addr: A, port: 1 },
    candidates6: [{ addr: A, port: 40000 }, { addr: B, port: 65535 }]
  }
  const buf = new Uint8Array(attrsLength(a))
  const end = encodeAttrs(a, buf, 0)
  t.equal(end, buf.length)
  t.same([...buf.subarray(end - 40, end - 38)], [ATTR_CANDIDATE6, 18], 'the candidates come last')
  t.same(decodeAttrs(buf, 0, 'x').attrs, a)
})

t.test('a PeerUpdate entry carries ENDPOINT6 with a 0:0 IPv4 endpoint', async t => {
  const entry: PeerEntry = { op: PEER_OP_UPSERT, peerId: 7, tunnelIp: 0x0a4d0002, publicIp: 0, publicPort: 0, key: new Uint8Array(32).fill(3), lan: [], attrs: { tunnel6: null, routes: [], endpoint6: { addr: A, port: 41000 } } }
  const m = decodeControl(encodeControl({ kind: CTL_PEER_UPDATE, reset: true, final: true, version: 3, entries: [entry] }))
  t.equal(m.kind, CTL_PEER_UPDATE)
  if (m.kind !== CTL_PEER_UPDATE) return
  t.same(m.entries[0]!.attrs?.endpoint6, { addr: A, port: 41000 })
  t.equal(m.entries[0]!.publicIp, 0)
})

t.test('strict decoding; unknown to an older node: skipped', async t => {
  const bad = (bytes: number[]): unknown => decodeAttrs(new Uint8Array([bytes.length, 0, ...bytes]), 0, 'x')
  const ep = (type: number, port: number): number[] => [type, 18, ...A, port & 0xff, port >> 8]
  t.throws(() => bad([ATTR_ENDPOINT6, 17, ...A, 0]), /ENDPOINT6 of 17 bytes/)
  t.throws(() => bad(ep(ATTR_ENDPOINT6, 0)), /ENDPOINT6 with port 0/)
  t.throws(() => bad([...ep(ATTR_ENDPOINT6, 1), ...ep(ATTR_ENDPOINT6, 2)]), /two ENDPOINT6/)
  const five = Array.from({ length: MAX_CANDIDATES6 + 1 }, (_, i) => ep(ATTR_CANDIDATE6, i + 1)).flat()
  t.throws(() => bad(five), /more than 4 CANDIDATE6/)
  t.throws(() => encodeAttrs({ ...NO_ATTRS, endpoint6: { addr: A.subarray(0, 4), port: 1 } }, new Uint8Array(64), 0), /16 bytes/)
  t.throws(() => encodeAttrs({ ...NO_ATTRS, candidates6: [{ addr: A, port: 70000 }] }, new Uint8Array(64), 0), /port 70000/)
  // How a node of before this change reads them: as unknown types, skipped (the same rule with types 97/98).
  const old = new Uint8Array([40, 0, ...ep(97, 9000), ...ep(98, 9001)])
  t.same(decodeAttrs(old, 0, 'x').attrs, NO_ATTRS)
})
