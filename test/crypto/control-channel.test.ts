/**
 * crypto/control-channel.ts: golden sealed messages (computed independently
 * with Python `cryptography` ChaCha20Poly1305 from the noise.test.ts golden
 * keys), sealing/opening between the two ends of a real handshake, and every
 * rejection path of open(); openTransport never throws.
 */
import t from 'tap'
import { ControlChannel, openTransport, sealTransport, sealTransportInto, transportReceiverIndex } from '../../src/crypto/control-channel.js'
import { consumeInit, consumeResponse, createInit, createResponse, generateStaticKey } from '../../src/crypto/noise.js'
import { MSG_CONTROL, MSG_DATA, readTransportHeader } from '../../src/wire/messages.js'
import { CTL_CONFIRM, CTL_PING, decodeControl, encodeControl } from '../../src/wire/control.js'

const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/[\s|]/g, ''), 'hex'))
const toHex = (u: Uint8Array): string => Buffer.from(u).toString('hex')

// Keys of the noise.test.ts golden handshake.
const R2I = hex('7ead0f3aba1cfce7af22b7ce46f626fd060733b96f364de740ec94860a7fc5ef')
const CI2R = hex('f73885ae3b9e171d38de45134bc8371592ec2a041fea06d0b4ae58434e37b301')
const CR2I = hex('a8370f57a79747cfa88d96707d62df572f46e31bfb11117054a4a0f1299a523f')

// Confirm (05 000000) sealed by the initiator with the control i->r key, counter 0, to index 0x55667788.
const CONFIRM_MSG = '03 000000 | 88776655 | 0000000000000000 | e7bd38e4 | d8134e8ff46a010b9132765654998af3'
// "hello" sealed by the responder with the data r->i key, counter 0x0102030405, to index 0x11223344.
const DATA_MSG = '04 000000 | 44332211 | 0504030201000000 | 684740aa7e | caa204585331339ace616ba242b56cd3'

t.test('golden: sealTransport', async t => {
  t.equal(toHex(sealTransport(MSG_CONTROL, CI2R, 0x55667788, 0, encodeControl({ kind: CTL_CONFIRM }))), toHex(hex(CONFIRM_MSG)))
  t.equal(toHex(sealTransport(MSG_DATA, R2I, 0x11223344, 0x0102030405, new TextEncoder().encode('hello'))), toHex(hex(DATA_MSG)))
  t.equal(toHex(openTransport(CI2R, hex(CONFIRM_MSG))!), '05000000')
  t.equal(Buffer.from(openTransport(R2I, hex(DATA_MSG))!).toString(), 'hello')
})

t.test('golden: ControlChannel numbers from 0 and addresses remoteIndex', async t => {
  const initiator = new ControlChannel({ send: CI2R, recv: CR2I }, 0x55667788)
  t.equal(initiator.sendCounter, 0)
  t.equal(toHex(initiator.seal(hex('05000000'))), toHex(hex(CONFIRM_MSG)))
  t.equal(initiator.sendCounter, 1)
  const second = initiator.seal(hex('05000000'))
  t.strictSame(readTransportHeader(second), { type: 3, receiverIndex: 0x55667788, counter: 1 })
  const responder = new ControlChannel({ send: CR2I, recv: CI2R }, 0x11223344)
  t.equal(toHex(responder.open(hex(CONFIRM_MSG))!), '05000000')
  t.equal(toHex(responder.open(second)!), '05000000')
  t.equal(responder.highestReceived, 1)
})

function pair (): { a: ControlChannel, b: ControlChannel, dataKeys: { aSend: Uint8Array, bRecv: Uint8Array } } {
  const psk = new Uint8Array(32).fill(3)
  const { message, state } = createInit(psk, generateStaticKey(), 100, new Uint8Array(33))
  const ci = consumeInit(psk, generateStaticKey(), message)
  const { message: m2, keys: rk } = createResponse(ci.state, 200, new Uint8Array(18))
  const { keys: ik } = consumeResponse(state, m2)
  return {
    a: new ControlChannel({ send: ik.ctlSend, recv: ik.ctlRecv }, 200),
    b: new ControlChannel({ send: rk.ctlSend, recv: rk.ctlRecv }, 100),
    dataKeys: { aSend: ik.dataSend, bRecv: rk.dataRecv }
  }
}

t.test('two ends of a handshake talk both ways', async t => {
  const { a, b } = pair()
  for (let i = 0; i < 10; i++) {
    const ping = encodeControl({ kind: CTL_PING, txid: i, peerListVersion: 0 })
    const m = a.seal(ping)
    t.equal(transportReceiverIndex(m), 200)
    t.strictSame(decodeControl(b.open(m)!), { kind: CTL_PING, txid: i, peerListVersion: 0 })
    const back = b.seal(ping)
    t.equal(transportReceiverIndex(back), 100)
    t.ok(a.open(back) !== null)
  }
  t.strictSame(a.rejected, { malformed: 0, auth: 0, replay: 0 })
})

t.test('open() rejections are counted, never thrown', async t => {
  const { a, b, dataKeys } = pair()
  const msgs = Array.from({ length: 5 }, (_, i) => a.seal(new Uint8Array([CTL_PING, 0, 0, 0, i, 0, 0, 0, 0, 0, 0, 0])))
  t.test('out of order within the window is accepted', async t => {
    t.ok(b.open(msgs[3]) !== null)
    t.ok(b.open(msgs[1]) !== null)
    t.ok(b.open(msgs[4]) !== null)
  })
  t.test('replay', async t => {
    t.equal(b.open(msgs[3]), null)
    t.equal(b.rejected.replay, 1)
  })
  t.test('tampered ciphertext, tag, header (AAD) and counter (nonce)', async t => {
    for (const i of [0 + 4, 8, 16, msgs[0].length - 1]) {
      const m = msgs[0].slice(); m[i] ^= 1
      t.equal(b.open(m), null, `byte ${i}`)
    }
    t.equal(b.rejected.auth, 4)
  })
  t.test('tampering is detected before the replay window moves', async t => {
    const m = a.seal(new Uint8Array(0))
    const forged = m.slice(); forged[8] = 0xff; forged[9] = 0xff // counter ~65535, bad tag
    t.equal(b.open(forged), null)
    t.equal(b.highestReceived, 4, 'window did not move')
    t.ok(b.open(m) !== null)
  })
  t.test('a data message (type 4) is not a control message', async t => {
    const d = sealTransport(MSG_DATA, dataKeys.aSend, 200, 0, new Uint8Array(4))
    t.equal(b.open(d), null)
    t.ok(openTransport(dataKeys.bRecv, d) !== null, 'but opens with the data key')
  })
  t.test('malformed input', async t => {
    const before = b.rejected.malformed
    for (const m of [new Uint8Array(0), new Uint8Array(31).fill(3), hex('05000000' + '00'.repeat(40))]) t.equal(b.open(m), null)
    const reserved = msgs[0].slice(); reserved[1] = 1
    t.equal(b.open(reserved), null)
    const bigCounter = msgs[0].slice(); bigCounter.set([0, 0, 0, 0, 0, 0, 0x20, 0], 8)
    t.equal(b.open(bigCounter), null)
    t.equal(b.rejected.malformed - before, 5)
  })
  t.test('wrong key', async t => {
    const { a: other } = pair()
    t.equal(b.open(other.seal(new Uint8Array(3))), null)
  })
})

t.test('sealTransportInto writes at an offset; checks room', async t => {
  const out = new Uint8Array(100).fill(0xee)
  const n = sealTransportInto(MSG_DATA, R2I, 0x11223344, 0x0102030405, new TextEncoder().encode('hello'), out, 7)
  t.equal(n, 37)
  t.equal(out[6], 0xee)
  t.equal(out[44], 0xee)
  t.equal(toHex(out.subarray(7, 44)), toHex(hex(DATA_MSG)))
  t.throws(() => sealTransportInto(MSG_DATA, R2I, 1, 0, new Uint8Array(10), new Uint8Array(41), 0), { code: 'ERR_WIRE_DECODE' })
  t.throws(() => sealTransport(MSG_DATA, new Uint8Array(16), 1, 0, new Uint8Array(1)), { code: 'ERR_HANDSHAKE' })
  t.throws(() => sealTransport(MSG_DATA, R2I, 1, 2 ** 53, new Uint8Array(1)), { code: 'ERR_WIRE_DECODE' })
})

t.test('constructor validates keys and index', async t => {
  t.throws(() => new ControlChannel({ send: new Uint8Array(31), recv: CI2R }, 1), { code: 'ERR_HANDSHAKE' })
  t.throws(() => new ControlChannel({ send: CI2R, recv: CI2R }, -1), { code: 'ERR_HANDSHAKE' })
})

t.test('fuzz openTransport / open: random and mutated input never throws', async t => {
  let seed = 99
  const rnd = (): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648 }
  const ch = new ControlChannel({ send: CR2I, recv: CI2R }, 1)
  const base = hex(CONFIRM_MSG)
  let opened = 0
  for (let i = 0; i < 20_000; i++) {
    let m: Uint8Array
    if (i % 2 === 0) {
      m = new Uint8Array(Math.floor(rnd() * 80))
      for (let k = 0; k < m.length; k++) m[k] = Math.floor(rnd() * 256)
    } else {
      m = base.slice()
      m[Math.floor(rnd() * m.length)] ^= 1 << Math.floor(rnd() * 8)
      if (rnd() < 0.2) m = m.subarray(0, Math.floor(rnd() * m.length))
    }
    if (openTransport(CI2R, m) !== null) opened++
    if (ch.open(m) !== null) opened++
  }
  t.equal(opened, 0, 'no forgery opened')
  t.equal(toHex(ch.open(base)!), '05000000', 'the genuine message still opens')
})
