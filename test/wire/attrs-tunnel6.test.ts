/**
 * wire/attrs.ts as the IPv6 tunnel address uses it: TUNNEL6 round trips in
 * all three payloads, and REFUSED (which address a refusal is about) round
 * trips, stays absent unless set, and is checked on decode.
 */
import t from 'tap'
import { decodeAttrs, encodeAttrs, attrsLength, type NodeAttrs } from '../../src/wire/attrs.js'
import { decodeInitPayload, decodeRespPayload, encodeInitPayload, encodeRespPayload, RESP_ADDRESS_BOUND } from '../../src/wire/payloads.js'
import { decodeControl, encodePeerUpdates, CTL_PEER_UPDATE, PEER_OP_UPSERT } from '../../src/wire/control.js'
import { WireError } from '../../src/errors.js'
import { formatPrefix, parsePrefix } from '../../src/wire/prefix.js'

const T6 = parsePrefix('fd00:77::2/64', { keepHostBits: true })

function roundTrip (a: NodeAttrs): NodeAttrs {
  const buf = new Uint8Array(attrsLength(a))
  t.equal(encodeAttrs(a, buf, 0), buf.length, 'encodes exactly attrsLength bytes')
  return decodeAttrs(buf, 0, 'test').attrs
}

t.test('TUNNEL6 and REFUSED round trip', async t => {
  const a = roundTrip({ tunnel6: T6, routes: [], refused: 6 })
  t.equal(formatPrefix(a.tunnel6!), 'fd00:77::2/64')
  t.equal(a.refused, 6)
  t.notOk('refused' in roundTrip({ tunnel6: T6, routes: [] }), 'absent unless set')
  t.equal(roundTrip({ tunnel6: null, routes: [], refused: 4 }).refused, 4)
})

t.test('a REFUSED of the wrong length or family is a WireError', async t => {
  for (const bytes of [[0, 3, 3, 1, 5], [0, 4, 3, 2, 6, 0]]) {
    t.throws(() => decodeAttrs(Uint8Array.from(bytes), 0, 'test'), WireError)
  }
  t.throws(() => encodeAttrs({ tunnel6: null, routes: [], refused: 5 as 6 }, new Uint8Array(8), 0), WireError)
})

t.test('in the payloads: init (role 1), response (a refusal about the IPv6 address), peer entry', async t => {
  const init = decodeInitPayload(encodeInitPayload({ role: 1, prefixLen: 24, mtu: 1400, tunnelIp: 0x0a000002, timestamp: 5, lan: [], attrs: { tunnel6: T6, routes: [] } }))
  t.equal(formatPrefix(init.attrs!.tunnel6!), 'fd00:77::2/64')
  const resp = decodeRespPayload(encodeRespPayload({ status: RESP_ADDRESS_BOUND, prefixLen: 24, mtu: 1400, tunnelIp: 0x0a000001, peerId: 0, observedIp: 1, observedPort: 2, attrs: { tunnel6: null, routes: [], refused: 6 } }))
  t.equal(resp.attrs?.refused, 6)
  t.equal(resp.attrs?.tunnel6, null)
  const [msg] = encodePeerUpdates([{ op: PEER_OP_UPSERT, peerId: 3, tunnelIp: 0x0a000002, publicIp: 1, publicPort: 2, key: new Uint8Array(32), lan: [], attrs: { tunnel6: T6, routes: [] } }], 7, 1200, { reset: true })
  const upd = decodeControl(msg!)
  if (upd.kind !== CTL_PEER_UPDATE) throw new Error('expected a peer update')
  t.equal(formatPrefix(upd.entries[0]!.attrs!.tunnel6!), 'fd00:77::2/64')
})
