// The FEC node attribute (wire/attrs.ts type 4) and its negotiation
// (control/fec-negotiation.ts): golden bytes, round trips through the
// InitPayload and RespPayload, strict decoding, and who wins.
import t from 'tap'
import { ATTR_FEC, NO_ATTRS, decodeAttrs, encodeAttrs, attrsLength, isEmptyAttrs } from '../../src/wire/attrs.js'
import { decodeInitPayload, decodeRespPayload, encodeInitPayload, encodeRespPayload, RESP_OK } from '../../src/wire/payloads.js'
import { agreedFec, fecAttrs } from '../../src/control/fec-negotiation.js'

t.test('FEC attribute: golden bytes, round trip, after TUNNEL6 and routes', async t => {
  const a = { tunnel6: null, routes: [], fec: { data: 10, parity: 3 } }
  const buf = new Uint8Array(attrsLength(a))
  t.equal(encodeAttrs(a, buf, 0), 6)
  t.same([...buf], [4, 0, ATTR_FEC, 2, 10, 3])
  t.same(decodeAttrs(buf, 0, 'x').attrs, a)
  t.notOk(isEmptyAttrs(a))
  t.ok(isEmptyAttrs({ ...NO_ATTRS, fec: null }))
  const r = { tunnel6: null, routes: [{ family: 4 as const, addr: new Uint8Array([10, 1, 0, 0]), len: 16 }], fec: { data: 1, parity: 1 } }
  const b = new Uint8Array(attrsLength(r))
  encodeAttrs(r, b, 0)
  t.same(decodeAttrs(b, 0, 'x').attrs, r)
})

t.test('FEC attribute: wrong length, out of range, twice: WireError; an older decoder would skip type 4 as unknown', async t => {
  const bad = (bytes: number[]): unknown => decodeAttrs(new Uint8Array([bytes.length, 0, ...bytes]), 0, 'x')
  t.throws(() => bad([ATTR_FEC, 3, 10, 3, 0]), /FEC of 3 bytes/)
  t.throws(() => bad([ATTR_FEC, 2, 0, 3]), /FEC 0,3 out of range/)
  t.throws(() => bad([ATTR_FEC, 2, 33, 3]), /FEC 33,3 out of range/)
  t.throws(() => bad([ATTR_FEC, 2, 10, 17]), /FEC 10,17 out of range/)
  t.throws(() => bad([ATTR_FEC, 2, 10, 3, ATTR_FEC, 2, 10, 3]), /two FEC attributes/)
  t.throws(() => encodeAttrs({ ...NO_ATTRS, fec: { data: 0, parity: 1 } }, new Uint8Array(16), 0), /out of range/)
  // Unknown types are skipped (the rule FEC relies on with a node that predates it): type 99 here.
  t.same(decodeAttrs(new Uint8Array([4, 0, 99, 2, 10, 3]), 0, 'x').attrs, NO_ATTRS)
})

t.test('InitPayload and RespPayload carry the offer', async t => {
  const init = { role: 2 as const, prefixLen: 24, mtu: 1400, tunnelIp: 0x0a000002, timestamp: 1_700_000_000_000, lan: [], attrs: fecAttrs({ data: 10, parity: 3 }) }
  t.same(decodeInitPayload(encodeInitPayload(init)).attrs, { tunnel6: null, routes: [], fec: { data: 10, parity: 3 } })
  t.equal(decodeInitPayload(encodeInitPayload({ ...init, attrs: fecAttrs(null) })).attrs, undefined, 'no offer: no block content')
  const resp = { status: RESP_OK as typeof RESP_OK, prefixLen: 24, mtu: 1400, tunnelIp: 0x0a000003, peerId: 0, observedIp: 0, observedPort: 0, attrs: fecAttrs({ data: 4, parity: 2 }) }
  t.same(decodeRespPayload(encodeRespPayload(resp)).attrs?.fec, { data: 4, parity: 2 })
})

t.test('agreedFec: on only when both offer; our own parameters win for what we send', async t => {
  const theirs = fecAttrs({ data: 4, parity: 2 })
  t.same(agreedFec({ data: 10, parity: 3 }, theirs), { data: 10, parity: 3 })
  t.equal(agreedFec(null, theirs), null)
  t.equal(agreedFec(undefined, theirs), null)
  t.equal(agreedFec({ data: 10, parity: 3 }, undefined), null)
  t.equal(agreedFec({ data: 10, parity: 3 }, NO_ATTRS), null)
})
