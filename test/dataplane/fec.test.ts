/**
 * FEC: the parity message layout (wire/fec.ts: golden bytes, round trip,
 * malformed input) and the group encoder/decoder (dataplane/fec.ts) over a
 * lossy channel on a manual clock: recovery, partial groups, bounds under a
 * flood of half groups, forged parity.
 */
import t from 'tap'
import { WireError } from '../../src/errors.js'
import { FEC_MAX_DATA, MSG_FEC, decodeFecParity, encodeFecParity } from '../../src/wire/fec.js'
import { FEC_GROUP_TIMEOUT, FEC_MAX_GROUPS, FEC_WINDOW, FecDecoder, FecEncoder, parseFec } from '../../src/dataplane/fec.js'
import { writeU32, writeU64 } from '../../src/wire/messages.js'

/** A sealed-looking data message: type 4, receiver index, counter, `len` bytes in all. */
function sealed (index: number, counter: number, len: number, seed: number): Uint8Array {
  const b = new Uint8Array(len)
  b[0] = 4
  writeU32(b, 4, index)
  writeU64(b, 8, counter)
  for (let i = 16; i < len; i++) b[i] = (seed * 31 + i * 7) & 0xff
  return b
}

t.test('parity message: golden bytes and round trip', async t => {
  const m = { data: 2, parity: 3, index: 1, receiverIndex: 0x01020304, first: 0x0000000500000006, lengths: [32, 33], shard: Uint8Array.from({ length: 33 }, (_, i) => i) }
  const b = encodeFecParity(m)
  t.equal(Buffer.from(b.subarray(0, 20)).toString('hex'), '08020301' + '04030201' + '0600000005000000' + '2000' + '2100')
  t.equal(b.length, 16 + 4 + 33)
  const d = decodeFecParity(b)
  t.same({ ...d, shard: [...d.shard] }, { ...m, shard: [...m.shard] })
})

t.test('parity message: malformed input is a WireError, never anything else', async t => {
  const good = encodeFecParity({ data: 2, parity: 3, index: 1, receiverIndex: 7, first: 9, lengths: [40, 48], shard: new Uint8Array(48) })
  const bad: Array<[string, (b: Uint8Array) => Uint8Array]> = [
    ['type', b => { b[0] = 4; return b }],
    ['no data', b => { b[1] = 0; return b }],
    ['too much data', b => { b[1] = FEC_MAX_DATA + 1; return b }],
    ['no parity', b => { b[2] = 0; return b }],
    ['index out of range', b => { b[3] = 3; return b }],
    ['a length below a data message', b => { b[16] = 10; return b }],
    ['lengths that do not add up (one byte short)', b => b.subarray(0, b.length - 1)],
    ['lengths that do not add up (one byte more)', b => Uint8Array.of(...b, 0)],
    ['truncated', b => b.subarray(0, 17)]
  ]
  for (const [name, f] of bad) t.throws(() => decodeFecParity(f(good.slice())), WireError, name)
  let other = 0
  for (let i = 0; i < 5000; i++) {
    const b = Uint8Array.from({ length: Math.floor(Math.random() * 120) }, () => Math.floor(Math.random() * 256))
    if (b.length > 0 && i % 2 === 0) b[0] = MSG_FEC
    try { decodeFecParity(b) } catch (err) { if (!(err instanceof WireError)) other++ }
  }
  t.equal(other, 0, 'random input: only WireError')
})

t.test('--fec DATA,PARITY', async t => {
  t.same(parseFec('10,3'), { data: 10, parity: 3 })
  t.same(parseFec(' 5 , 1 '), { data: 5, parity: 1 })
  t.match(parseFec('10'), /expected DATA,PARITY/)
  t.match(parseFec('0,3'), /DATA must be 1-32/)
  t.match(parseFec('10,0'), /PARITY must be 1-16/)
  t.match(parseFec('33,3'), /DATA must be/)
})

/** Sends `n` messages through encoder → lossy channel → decoder; returns what arrived (received + rebuilt) by counter. */
function run (n: number, lossPct: number, seed: number, cfg = { data: 10, parity: 3 }, spacingMs = 0.1) {
  let s = seed
  const rnd = (): number => { s = (s * 1103515245 + 12345) >>> 0; return (s >>> 8) / 0x1000000 }
  const enc = new FecEncoder(cfg)
  const dec = new FecDecoder(42)
  const got = new Map<number, Uint8Array>()
  const sent = new Map<number, Uint8Array>()
  let now = 0
  const deliver = (m: Uint8Array, parity: boolean): void => {
    if (rnd() * 100 < lossPct) return
    const out = parity ? dec.addParity(m, now) : (got.set(Number(new DataView(m.buffer, m.byteOffset).getBigUint64(8, true)), m), dec.addData(m, now))
    for (const r of out) got.set(Number(new DataView(r.buffer, r.byteOffset).getBigUint64(8, true)), r)
  }
  for (let c = 0; c < n; c++) {
    now += spacingMs
    for (const p of enc.flush(now) ?? []) deliver(p, true) // the flush timer fired in between
    const m = sealed(42, c, 32 + Math.floor(rnd() * 1400), c)
    sent.set(c, m)
    deliver(m, false)
    for (const p of enc.add(m, now) ?? []) deliver(p, true)
    for (const p of enc.flush(now) ?? []) deliver(p, true)
  }
  now += 10
  for (const p of enc.flush(now) ?? []) deliver(p, true)
  let wrong = 0
  for (const [c, m] of got) if (Buffer.compare(Buffer.from(m), Buffer.from(sent.get(c)!)) !== 0) wrong++
  return { delivered: got.size, wrong, dec, enc }
}

t.test('10,3 over 5 % random loss: ≥ 99.5 % of the messages arrive, each exactly as sent', async t => {
  const r = run(20_000, 5, 1)
  t.equal(r.wrong, 0, 'every rebuilt message is byte-identical to the one sent')
  t.ok(r.delivered / 20_000 >= 0.995, `${(100 * r.delivered / 20_000).toFixed(2)} % delivered (without FEC ~95 %)`)
  t.ok(r.dec.counters.groupsRecovered > 500, `${r.dec.counters.groupsRecovered} groups recovered, ${r.dec.counters.packetsRecovered} messages`)
  t.ok(r.dec.counters.groupsUnrecoverable > 0 && r.dec.counters.groupsUnrecoverable < 40, `${r.dec.counters.groupsUnrecoverable} unrecoverable groups`)
  t.ok(r.dec.held.recent <= FEC_WINDOW && r.dec.held.groups <= FEC_MAX_GROUPS, 'bounded memory')
  const none = run(20_000, 0, 2)
  t.equal(none.delivered, 20_000)
  t.equal(none.dec.counters.groupsRecovered, 0)
  t.equal(none.dec.counters.groupsComplete, 2000, 'lossless: every group complete, its parity unused')
})

t.test('a slow sender: groups close after the flush interval, partial groups still recover', async t => {
  const r = run(2000, 5, 3, { data: 10, parity: 3 }, 20) // one message per 20 ms: every group is a partial one of 1
  t.equal(r.wrong, 0)
  t.ok(r.enc.counters.partialGroups > 1900, `${r.enc.counters.partialGroups} partial groups`)
  t.ok(r.delivered / 2000 >= 0.995, `${(100 * r.delivered / 2000).toFixed(2)} % delivered`)
})

t.test('a new key or a counter gap closes the group early', async t => {
  const enc = new FecEncoder({ data: 10, parity: 2 })
  t.equal(enc.add(sealed(1, 0, 64, 0), 0), null)
  t.equal(enc.add(sealed(1, 1, 64, 1), 0), null)
  const out = enc.add(sealed(2, 0, 64, 2), 0)
  t.equal(out?.length, 2, 'another receiver index: the open group of 2 is closed')
  t.equal(decodeFecParity(out![0]!).data, 2)
  t.equal(enc.add(sealed(2, 5, 64, 3), 0)?.length, 2, 'a counter gap closes it too')
  t.equal(enc.dueAt, 0 + enc.flushMs)
})

t.test('bad input: a flood of half groups and forged parity are counted, memory stays bounded', async t => {
  const dec = new FecDecoder(42)
  for (let c = 0; c < 1000; c++) dec.addData(sealed(42, c, 100, c), 0)
  t.equal(dec.held.recent, FEC_WINDOW, 'recent data: at most FEC_WINDOW')
  let now = 0
  for (let i = 0; i < 10_000; i++) {
    now += 0.01
    dec.addParity(encodeFecParity({ data: 10, parity: 3, index: 0, receiverIndex: 42, first: 1_000_000 + i * 10, lengths: new Array(10).fill(100), shard: new Uint8Array(100) }), now)
  }
  t.equal(dec.held.groups, FEC_MAX_GROUPS, 'groups awaiting shards: at most FEC_MAX_GROUPS')
  t.equal(dec.counters.groupsUnrecoverable, 10_000 - FEC_MAX_GROUPS, 'each evicted half group counted')
  dec.addParity(new Uint8Array(40).fill(MSG_FEC), now)
  t.equal(dec.counters.malformed, 1)
  dec.addParity(encodeFecParity({ data: 2, parity: 1, index: 0, receiverIndex: 7, first: 0, lengths: [100, 100], shard: new Uint8Array(100) }), now)
  t.equal(dec.counters.stale, 1, 'another session\'s index')
  // Forged parity for a real group with one message lost: something is rebuilt, and it is not the real message (the AEAD open will refuse it).
  const d2 = new FecDecoder(42)
  const real = [sealed(42, 0, 100, 0), sealed(42, 1, 100, 1)]
  d2.addData(real[0]!, 0)
  const out = d2.addParity(encodeFecParity({ data: 2, parity: 1, index: 0, receiverIndex: 42, first: 0, lengths: [100, 100], shard: new Uint8Array(100).fill(0x55) }), 0)
  t.equal(out.length, 1)
  t.not(Buffer.compare(Buffer.from(out[0]!), Buffer.from(real[1]!)), 0, 'forged parity rebuilds garbage, not a message')
  now += FEC_GROUP_TIMEOUT + 1
  dec.expire(now)
  t.equal(dec.held.groups, 0, 'old groups expire')
})
