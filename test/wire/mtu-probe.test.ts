/**
 * Control kinds 8 and 9 (MtuProbe, MtuAck; PROTOCOL §6.4): golden bytes,
 * round trips, and the malformed inputs decodeControl must refuse.
 */
import t from 'tap'
import { CTL_MTU_ACK, CTL_MTU_PROBE, MTU_PROBE_MAX_LEN, decodeControl, encodeControl } from '../../src/wire/control.js'
import { WireError } from '../../src/errors.js'

t.test('golden bytes', async t => {
  t.equal(Buffer.from(encodeControl({ kind: CTL_MTU_PROBE, txid: 0x04030201, pathMtu: 1280, length: 16 })).toString('hex'), '08000000010203040005000000000000')
  t.equal(Buffer.from(encodeControl({ kind: CTL_MTU_ACK, txid: 0x04030201, length: 1400 })).toString('hex'), '090000000102030478050000')
})

t.test('round trips, the padding included in the length', async t => {
  for (const length of [12, 13, 1408, MTU_PROBE_MAX_LEN]) {
    const m = { kind: CTL_MTU_PROBE, txid: 7, pathMtu: 1468, length } as const
    const b = encodeControl(m)
    t.equal(b.length, length)
    t.same(decodeControl(b), m)
  }
  t.same(decodeControl(encodeControl({ kind: CTL_MTU_ACK, txid: 9, length: 1408 })), { kind: CTL_MTU_ACK, txid: 9, length: 1408 })
})

t.test('malformed probes and acks are refused', async t => {
  const probe = encodeControl({ kind: CTL_MTU_PROBE, txid: 1, pathMtu: 0, length: 100 })
  const rows: Array<[string, Uint8Array]> = [
    ['probe shorter than its header', probe.subarray(0, 11)],
    ['probe longer than the largest', new Uint8Array(MTU_PROBE_MAX_LEN + 1).fill(0).map((v, i) => i === 0 ? CTL_MTU_PROBE : v)],
    ['non-zero padding', Uint8Array.from(probe).map((v, i) => i === 50 ? 1 : v)],
    ['non-zero reserved byte 1', Uint8Array.from(probe).map((v, i) => i === 1 ? 1 : v)],
    ['non-zero reserved byte 10', Uint8Array.from(probe).map((v, i) => i === 10 ? 1 : v)],
    ['ack of 11 bytes', encodeControl({ kind: CTL_MTU_ACK, txid: 1, length: 1 }).subarray(0, 11)],
    ['ack of 13 bytes', Uint8Array.from([...encodeControl({ kind: CTL_MTU_ACK, txid: 1, length: 1 }), 0])],
    ['ack with a reserved byte set', Uint8Array.from(encodeControl({ kind: CTL_MTU_ACK, txid: 1, length: 1 })).map((v, i) => i === 11 ? 1 : v)]
  ]
  for (const [name, b] of rows) t.test(name, async t => { t.throws(() => decodeControl(b), WireError) })
  t.throws(() => encodeControl({ kind: CTL_MTU_PROBE, txid: 1, pathMtu: 0, length: 11 }), WireError)
  t.throws(() => encodeControl({ kind: CTL_MTU_PROBE, txid: 1, pathMtu: 70000, length: 20 }), WireError)
})
