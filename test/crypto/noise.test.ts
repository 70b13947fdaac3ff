/**
 * crypto/noise.ts (Noise_IXpsk0_25519_ChaChaPoly_BLAKE2s, protocol v2):
 * cross-checked byte for byte against a second, independent implementation
 * (helpers/noise-conformance.ts, on @noble, driven by the token list),
 * which is itself checked against the published cacophony vector for
 * NNpsk0; golden vectors of our wire-framed handshake (fixed static keys
 * and ephemerals); key agreement, static-key learning, failure modes, and
 * fuzzing of both consume functions.
 */
import t from 'tap'
import { seededRandom } from '../../src/random.js'
import { chacha20poly1305 } from '@noble/ciphers/chacha.js'
import { VpnError, WireError } from '../../src/errors.js'
import { consumeInit, consumeResponse, createInit, createResponse, generateStaticKey, staticKey, type SessionKeys } from '../../src/crypto/noise.js'
import { runConformance } from '../helpers/noise-conformance.js'
import { decodeHandshakeInit, decodeHandshakeResp, HANDSHAKE_INIT_MIN } from '../../src/wire/messages.js'
import { NOISE_PROLOGUE, NOISE_PROTOCOL_NAME } from '../../src/wire/constants.js'

const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/[\s|]/g, ''), 'hex'))
const toHex = (u: Uint8Array): string => Buffer.from(u).toString('hex')

// Deterministic (mulberry32, src/random.ts) so fuzz failures reproduce.
const rnd = seededRandom(0xc0ffee).float
const rint = (n: number): number => Math.floor(rnd() * n)
const rbytes = (n: number): Uint8Array => { const b = new Uint8Array(n); for (let i = 0; i < n; i++) b[i] = rint(256); return b }

// Ephemerals and psk of the cacophony vectors (reused for our golden vector).
const INIT_E = hex('893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a')
const RESP_E = hex('bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b')
// Static keys of the cacophony vectors (init_static, resp_static).
const INIT_S = hex('e61ef9919cde45dd5f82166404bd08e38bceb5dfdfded0a34c8df7ed542214d1')
const RESP_S = hex('4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893')

t.test('the independent implementation reproduces cacophony Noise_NNpsk0_25519_ChaChaPoly_BLAKE2s', async t => {
  // From mcginty/snow tests/vectors/cacophony.txt. The messages and the
  // first transport message in each direction (which exercise Split()) must
  // match byte for byte. (The file's handshake_hash field follows another
  // convention, so it is not checked.)
  const r = runConformance({
    pattern: 'NNpsk0',
    protocolName: 'Noise_NNpsk0_25519_ChaChaPoly_BLAKE2s',
    prologue: hex('4a6f686e2047616c74'), // "John Galt"
    psk: hex('54686973206973206d7920417573747269616e20706572737065637469766521'),
    initEphemeral: INIT_E,
    respEphemeral: RESP_E,
    payload1: hex('4c756477696720766f6e204d69736573'),
    payload2: hex('4d757272617920526f746862617264')
  })
  t.equal(toHex(r.message1), 'ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c7944fda936bec35a8adfdff198386f7d5475880897edaaf7495314c99095a2e4d66a')
  t.equal(toHex(r.message2), '95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f1448088434cd2a371993ba41ea11448024fca32766b169183c9e691a7a433279da7e729')
  t.equal(toHex(r.payload1), '4c756477696720766f6e204d69736573')
  t.equal(toHex(r.payload2), '4d757272617920526f746862617264')
  const n0 = new Uint8Array(12)
  t.equal(toHex(chacha20poly1305(r.i2r, n0).encrypt(hex('462e20412e20486179656b'))), 'bc44da303ae0beb08075fc4eb4e58235c67c2d1f53a4f2fff0bca7', 'transport i->r')
  t.equal(toHex(chacha20poly1305(r.r2i, n0).encrypt(hex('4361726c204d656e676572'))), '416d1af83e9fa6966ce4e871156b131aa9bd7e9a1d6f8794f4872a', 'transport r->i')
})

// Our protocol: prologue "lightweight-tunnel v3", psk = the fixed 32 bytes below (scrypt('correct horse') with v1's constant salt),
// wire framing, payloads = the wire.test.ts InitPayload / RespPayload vectors.
const GOLDEN = {
  psk: hex('f1ea94614366201026b6c3daa2a8a26c29ba8a971d8bc8693a6abeedb7d617fc'),
  initPayload: hex('011878050a0000020068e5cf8b01000001c0a8010aa9a20000'),
  respPayload: hex('001878050a00000107000000cb007105409c0000'),
  msg1: '0103000044332211' +
    'ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c79448ba08853202fc93b6c4187d9ddd251d91b34baa06f18b9767c78f76fa787da5ecc1c112725007144e39ccd66d8385ca6' +
    '27f00b4c48878ce58deceafd36683c325b349ca2050d6d389d256960b80ed9639719b61f566cef2f37',
  msg2: '020300008877665544332211' +
    '95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f144808843d1c2b9d71c6987866fe3c204c172014838ee79c68594f0d1de2dcbbbaa37f8671d48ac8a1f4b3d6858c99c7f73dd77eb' +
    'a39aa7af159255d2adabad587ce349f76876e9842cec64cb10b39a49e0f486fe8e2c9b83',
  i2r: '4309f4aea28924db629d862cda1fb9d924458ebd90ea557a030e50895172a5d0',
  r2i: 'fcae5eac24aa8d2dd9b4f0adeac0173e828d054a32db63c0702802342b9df219',
  ci2r: '5cbee2c93da35d2127fc7364688bcaf5c66766de8d336367ccb10fb5361c4f9e',
  cr2i: 'e55b987023f163c396569762af06cb22b4b596a5f9679fc7f2979d27f2d7312b'
}

function keysHex (k: SessionKeys): Record<keyof SessionKeys, string> {
  return { dataSend: toHex(k.dataSend), dataRecv: toHex(k.dataRecv), ctlSend: toHex(k.ctlSend), ctlRecv: toHex(k.ctlRecv) }
}

t.test('cross-check: noise.ts and the independent implementation agree byte for byte (IXpsk0, our name and prologue)', async t => {
  for (let i = 0; i < 8; i++) {
    const psk = rbytes(32)
    const is = rbytes(32)
    const rs = rbytes(32)
    const ie = rbytes(32)
    const re = rbytes(32)
    const p1 = rbytes(rint(70))
    const p2 = rbytes(rint(30))
    const ref = runConformance({ pattern: 'IXpsk0', protocolName: NOISE_PROTOCOL_NAME, prologue: new TextEncoder().encode(NOISE_PROLOGUE), psk, initEphemeral: ie, respEphemeral: re, initStatic: is, respStatic: rs, payload1: p1, payload2: p2 })
    const iKey = staticKey(is)
    const rKey = staticKey(rs)
    const { message: m1, state } = createInit(psk, iKey, 7, p1, ie)
    t.equal(toHex(m1.subarray(8)), toHex(ref.message1), `message 1 (after the 8-byte header), run ${i}`)
    const ci = consumeInit(psk, rKey, m1)
    t.equal(toHex(ci.remoteStatic), toHex(iKey.pub), 'responder learns the initiator static key')
    t.equal(toHex(ref.responderLearned!), toHex(iKey.pub))
    const { message: m2, keys: rk } = createResponse(ci.state, 9, p2, re)
    t.equal(toHex(m2.subarray(12)), toHex(ref.message2), `message 2 (after the 12-byte header), run ${i}`)
    const cr = consumeResponse(state, m2)
    t.equal(toHex(cr.remoteStatic), toHex(rKey.pub), 'initiator learns the responder static key')
    t.strictSame(keysHex(cr.keys), { dataSend: toHex(ref.i2r), dataRecv: toHex(ref.r2i), ctlSend: toHex(ref.ci2r), ctlRecv: toHex(ref.cr2i) }, 'initiator keys')
    t.equal(toHex(rk.dataSend), toHex(ref.r2i), 'responder keys')
  }
})

t.test('golden: v3 handshake with fixed static keys and ephemerals', async t => {
  const iKey = staticKey(INIT_S)
  const rKey = staticKey(RESP_S)
  const { message: m1, state: is } = createInit(GOLDEN.psk, iKey, 0x11223344, GOLDEN.initPayload, INIT_E)
  t.equal(toHex(m1), toHex(hex(GOLDEN.msg1)), 'message 1')
  t.equal(m1.length, 88 + GOLDEN.initPayload.length + 16)
  const ci = consumeInit(GOLDEN.psk, rKey, m1)
  t.equal(ci.senderIndex, 0x11223344)
  t.equal(toHex(ci.payload), toHex(GOLDEN.initPayload))
  t.equal(toHex(ci.ephemeral), toHex(m1.subarray(8, 40)))
  t.equal(toHex(ci.remoteStatic), toHex(iKey.pub))
  const { message: m2, keys: rk } = createResponse(ci.state, 0x55667788, GOLDEN.respPayload, RESP_E)
  t.equal(toHex(m2), toHex(hex(GOLDEN.msg2)), 'message 2')
  const cr = consumeResponse(is, m2)
  t.equal(cr.senderIndex, 0x55667788)
  t.equal(cr.receiverIndex, 0x11223344)
  t.equal(toHex(cr.remoteStatic), toHex(rKey.pub))
  t.equal(toHex(cr.payload), toHex(GOLDEN.respPayload))
  t.strictSame(keysHex(cr.keys), { dataSend: GOLDEN.i2r, dataRecv: GOLDEN.r2i, ctlSend: GOLDEN.ci2r, ctlRecv: GOLDEN.cr2i }, 'initiator keys')
  t.strictSame(keysHex(rk), { dataSend: GOLDEN.r2i, dataRecv: GOLDEN.i2r, ctlSend: GOLDEN.cr2i, ctlRecv: GOLDEN.ci2r }, 'responder keys')
  t.equal(toHex(iKey.pub), '6bc3822a2aa7f4e6981d6538692b3cdf3e6df9eea6ed269eb41d93c22757b75a', 'cacophony init_static public key')
  t.equal(toHex(rKey.pub), '31e0303fd6418d2f8c0e78b91f22e8caed0fbe48656dcf4767e4834f701b8f62', 'cacophony resp_static public key')
  const ref = runConformance({ pattern: 'IXpsk0', protocolName: NOISE_PROTOCOL_NAME, prologue: new TextEncoder().encode(NOISE_PROLOGUE), psk: GOLDEN.psk, initEphemeral: INIT_E, respEphemeral: RESP_E, initStatic: INIT_S, respStatic: RESP_S, payload1: GOLDEN.initPayload, payload2: GOLDEN.respPayload })
  t.equal(toHex(ref.message1), toHex(m1.subarray(8)), 'the independent implementation agrees on message 1')
  t.equal(toHex(ref.message2), toHex(m2.subarray(12)), 'and on message 2')
})

t.test('the responder state is structured-cloneable (a worker can run createResponse)', async t => {
  const psk = rbytes(32)
  const a = generateStaticKey()
  const b = generateStaticKey()
  const { message, state } = createInit(psk, a, 1, new Uint8Array(17))
  const ci = consumeInit(psk, b, message)
  const copy = structuredClone(ci.state)
  const { message: m2, keys } = createResponse(copy, 2, new Uint8Array(18))
  t.strictSame(consumeResponse(state, m2).keys.dataSend, keys.dataRecv)
  t.throws(() => createResponse(copy, 2, new Uint8Array(18)), { code: 'ERR_HANDSHAKE' }, 'the copy is spent')
})

t.test('a response is bound to the responder static key; an impostor static key gives other keys', async t => {
  const psk = rbytes(32)
  const a = generateStaticKey()
  const b = generateStaticKey()
  const mallory = generateStaticKey()
  const { message, state } = createInit(psk, a, 1, new Uint8Array(17))
  // Mallory (who has the psk) answers as herself: the initiator sees her key, not b's.
  const { message: m2 } = createResponse(consumeInit(psk, mallory, message).state, 3, new Uint8Array(18))
  t.equal(toHex(consumeResponse(state, m2).remoteStatic), toHex(mallory.pub))
  t.not(toHex(mallory.pub), toHex(b.pub))
})

const A = generateStaticKey()
const B = generateStaticKey()

function handshake (psk: Uint8Array, payload1 = new Uint8Array(17), payload2 = new Uint8Array(18)): { ik: SessionKeys, rk: SessionKeys } {
  const { message, state } = createInit(psk, A, 1, payload1)
  const ci = consumeInit(psk, B, message)
  const { message: m2, keys: rk } = createResponse(ci.state, 2, payload2)
  const { keys: ik } = consumeResponse(state, m2)
  return { ik, rk }
}

t.test('both sides derive matching keys (random ephemerals)', async t => {
  const psk = rbytes(32)
  for (let i = 0; i < 5; i++) {
    const { ik, rk } = handshake(psk)
    t.strictSame(ik.dataSend, rk.dataRecv, 'data i->r')
    t.strictSame(ik.dataRecv, rk.dataSend, 'data r->i')
    t.strictSame(ik.ctlSend, rk.ctlRecv, 'control i->r')
    t.strictSame(ik.ctlRecv, rk.ctlSend, 'control r->i')
    const all = [ik.dataSend, ik.dataRecv, ik.ctlSend, ik.ctlRecv].map(toHex)
    t.equal(new Set(all).size, 4, 'four distinct keys')
    t.ok(all.every(k => k.length === 64))
  }
  const a = handshake(psk)
  const b = handshake(psk)
  t.not(toHex(a.ik.dataSend), toHex(b.ik.dataSend), 'fresh keys per handshake')
})

t.test('payloads of any size up to the message cap, including empty', async t => {
  const psk = rbytes(32)
  for (const n of [0, 1, 33, 81, 1024 - HANDSHAKE_INIT_MIN - 4]) {
    const p = rbytes(n)
    const { message, state } = createInit(psk, A, 9, p)
    const ci = consumeInit(psk, B, message)
    t.equal(toHex(ci.payload), toHex(p), `init payload of ${n} bytes`)
    const { message: m2 } = createResponse(ci.state, 10, p)
    t.equal(toHex(consumeResponse(state, m2).payload), toHex(p), `resp payload of ${n} bytes`)
  }
})

t.test('wrong psk: ERR_AUTH_FAILED at consumeInit', async t => {
  const { message } = createInit(rbytes(32), A, 1, new Uint8Array(33))
  t.throws(() => consumeInit(rbytes(32), B, message), { name: 'VpnError', code: 'ERR_AUTH_FAILED' })
})

t.test('malformed init: WireError', async t => {
  const psk = rbytes(32)
  const { message } = createInit(psk, A, 1, new Uint8Array(33))
  const cases: Array<[string, Uint8Array]> = [
    ['truncated below minimum', message.subarray(0, HANDSHAKE_INIT_MIN - 1)],
    ['wrong version', (() => { const b = message.slice(); b[1] = 9; return b })()],
    ['version 1', (() => { const b = message.slice(); b[1] = 1; return b })()],
    ['wrong type', (() => { const b = message.slice(); b[0] = 2; return b })()]
  ]
  for (const [name, m] of cases) {
    t.test(name, async t => {
      try { consumeInit(psk, B, m); t.fail('accepted') } catch (err) { t.ok(err instanceof WireError, (err as Error).message) }
    })
  }
  t.test('altered ephemeral, encrypted static or payload is an auth failure', async t => {
    for (const i of [8, 39, 40, 87, 88, message.length - 1]) {
      const b = message.slice(); b[i] ^= 0x40
      t.throws(() => consumeInit(psk, B, b), { code: 'ERR_AUTH_FAILED' }, `byte ${i}`)
    }
  })
})

t.test('tampered response: ERR_HANDSHAKE, and the state survives for the genuine one', async t => {
  const psk = rbytes(32)
  const { message, state } = createInit(psk, A, 0xabcdef01, new Uint8Array(33))
  const ci = consumeInit(psk, B, message)
  const { message: m2, keys: rk } = createResponse(ci.state, 77, new Uint8Array(18))
  for (let i = 0; i < m2.length; i++) {
    if (i >= 4 && i < 8) continue // senderIndex is outside the transcript (as in WireGuard): not detectable here
    const b = m2.slice(); b[i] ^= 0x01
    t.throws(() => consumeResponse(state, b), { name: 'VpnError', code: 'ERR_HANDSHAKE' }, `flip byte ${i}`)
  }
  t.throws(() => consumeResponse(state, m2.subarray(0, 107)), { code: 'ERR_HANDSHAKE' }, 'truncated')
  t.throws(() => consumeResponse(state, new Uint8Array(0)), { code: 'ERR_HANDSHAKE' }, 'empty')
  const zeroE = m2.slice(); zeroE.fill(0, 12, 44)
  t.throws(() => consumeResponse(state, zeroE), { code: 'ERR_HANDSHAKE' }, 'low-order (zero) ephemeral')
  const ok = consumeResponse(state, m2)
  t.strictSame(ok.keys.dataSend, rk.dataRecv, 'genuine response still accepted')
  t.throws(() => consumeResponse(state, m2), { code: 'ERR_HANDSHAKE' }, 'state is single use')
})

t.test('response from another handshake or another psk', async t => {
  const psk = rbytes(32)
  const a = createInit(psk, A, 1, new Uint8Array(33))
  const b = createInit(psk, A, 1, new Uint8Array(33))
  const rb = createResponse(consumeInit(psk, B, b.message).state, 5, new Uint8Array(18))
  t.throws(() => consumeResponse(a.state, rb.message), { code: 'ERR_HANDSHAKE' }, 'same index, other handshake')
  const c = createInit(psk, A, 2, new Uint8Array(33))
  const rc = createResponse(consumeInit(psk, B, c.message).state, 5, new Uint8Array(18))
  t.throws(() => consumeResponse(a.state, rc.message), { code: 'ERR_HANDSHAKE' }, 'receiverIndex mismatch')
  const psk2 = rbytes(32)
  const d = createInit(psk2, A, 3, new Uint8Array(33))
  const rd = createResponse(consumeInit(psk2, B, d.message).state, 5, new Uint8Array(18))
  const forged = rd.message.slice(); forged.set([1, 0, 0, 0], 8)
  t.throws(() => consumeResponse(a.state, forged), { code: 'ERR_HANDSHAKE' }, 'response made with another psk')
})

t.test('responder state is single use; bad arguments are typed errors', async t => {
  const psk = rbytes(32)
  const ci = consumeInit(psk, B, createInit(psk, A, 1, new Uint8Array(0)).message)
  createResponse(ci.state, 2, new Uint8Array(0))
  t.throws(() => createResponse(ci.state, 2, new Uint8Array(0)), { code: 'ERR_HANDSHAKE' })
  t.throws(() => createResponse({} as never, 2, new Uint8Array(0)), { code: 'ERR_HANDSHAKE' })
  t.throws(() => consumeResponse({} as never, new Uint8Array(60)), { code: 'ERR_HANDSHAKE' })
  t.throws(() => createInit(new Uint8Array(31), A, 1, new Uint8Array(0)), { code: 'ERR_CONFIG_INVALID' })
  t.throws(() => createInit(psk, A, 2 ** 32, new Uint8Array(0)), { code: 'ERR_HANDSHAKE' })
  t.throws(() => createInit(psk, A, 1, new Uint8Array(0), new Uint8Array(31)), { code: 'ERR_HANDSHAKE' })
  t.throws(() => createInit(psk, A, 1, new Uint8Array(2000)), { code: 'ERR_WIRE_DECODE' }, 'payload over the message cap')
  t.throws(() => consumeInit(new Uint8Array(0), B, new Uint8Array(120)), { code: 'ERR_CONFIG_INVALID' })
})

function isTyped (err: unknown): boolean {
  return err instanceof VpnError // WireError is a VpnError subclass
}

function mutate (seed: Uint8Array): Uint8Array {
  let b = seed.slice()
  switch (rint(5)) {
    case 0: b[rint(b.length)] ^= 1 << rint(8); break
    case 1: b[rint(b.length)] = rint(256); break
    case 2: b = b.slice(0, rint(b.length + 1)); break
    case 3: { const e = new Uint8Array(b.length + 1 + rint(16)); e.set(b); e.set(rbytes(e.length - b.length), b.length); b = e; break }
    default: b.set(rbytes(32), 8 + rint(4) * 4) // replace a span in the ephemeral area
  }
  return b
}

t.test('fuzz consumeInit: random and mutated input throws only VpnError/WireError', async t => {
  const psk = rbytes(32)
  const seed = createInit(psk, A, 1, rbytes(39)).message
  let foreign: unknown = null
  const counts = { ok: 0, wire: 0, auth: 0 }
  for (let i = 0; i < 20_000 && foreign === null; i++) {
    let input: Uint8Array
    if (i % 2 === 0) {
      input = rbytes(rint(250))
      if (rnd() < 0.5 && input.length >= 4) input.set([1, 2, 0, 0]) // valid-looking header
    } else input = mutate(seed)
    try {
      consumeInit(psk, B, input)
      counts.ok++
    } catch (err) {
      if (!isTyped(err)) foreign = err
      else if (err instanceof WireError) counts.wire++
      else counts.auth++
    }
  }
  t.equal(foreign, null, `no foreign exception (${JSON.stringify(counts)})`)
  t.ok(counts.auth > 1000, 'many inputs reached the AEAD check')
})

t.test('fuzz consumeResponse: random and mutated input throws only ERR_HANDSHAKE', async t => {
  const psk = rbytes(32)
  const { message, state } = createInit(psk, A, 7, rbytes(33))
  const { message: seed, keys } = createResponse(consumeInit(psk, B, message).state, 8, rbytes(18))
  let foreign: unknown = null
  const counts = { ok: 0, rejected: 0, skipped: 0 }
  for (let i = 0; i < 4_000 && foreign === null; i++) {
    let input: Uint8Array
    if (i % 2 === 0) {
      input = rbytes(rint(200))
      if (rnd() < 0.5 && input.length >= 12) input.set([2, 2, 0, 0, 1, 0, 0, 0, 7, 0, 0, 0]) // valid-looking header
    } else input = mutate(seed)
    // Only the senderIndex (bytes 4..7) is outside the transcript: a change
    // confined to it would be accepted (and spend the state), so skip it.
    if (input.length === seed.length && Buffer.compare(input.subarray(0, 4), seed.subarray(0, 4)) === 0 &&
      Buffer.compare(input.subarray(8), seed.subarray(8)) === 0) { counts.skipped++; continue }
    try {
      consumeResponse(state, input)
      counts.ok++
      t.fail('accepted a forged response', { input: toHex(input) })
      break
    } catch (err) {
      if (isTyped(err) && (err as VpnError).code === 'ERR_HANDSHAKE') counts.rejected++
      else foreign = err
    }
  }
  t.equal(foreign, null, `no foreign exception (${JSON.stringify(counts)})`)
  t.ok(counts.rejected > 3_900, 'fuzzed ~4000 responses')
  t.strictSame(consumeResponse(state, seed).keys.dataSend, keys.dataRecv, 'genuine response still accepted after fuzzing')
})

t.test('decoded messages carry the framing the wire module expects', async t => {
  const psk = rbytes(32)
  const { message } = createInit(psk, A, 0xfeedbeef, new Uint8Array(33))
  const d = decodeHandshakeInit(message)
  t.equal(d.senderIndex, 0xfeedbeef)
  t.equal(d.ciphertext.length, 33 + 16)
  t.equal(d.encStatic.length, 48)
  const { message: m2 } = createResponse(consumeInit(psk, B, message).state, 0x12345678, new Uint8Array(18))
  const r = decodeHandshakeResp(m2)
  t.equal(r.receiverIndex, 0xfeedbeef)
  t.equal(r.senderIndex, 0x12345678)
  t.equal(r.encStatic.length, 48)
  t.equal(m2.length, 92 + 18 + 16)
})
