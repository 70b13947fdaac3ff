/**
 * mac1/mac2, the cookie and the CookieReply (src/crypto/blake2s.ts,
 * src/crypto/cookie.ts, src/wire/cookie.ts). Reference values come from an
 * independent path: @noble/hashes' blake2s and @noble/ciphers'
 * xchacha20poly1305 called directly.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { blake2s } from '@noble/hashes/blake2.js'
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js'
import { blake2sInto, mac128 } from '../../src/crypto/blake2s.js'
import { COOKIE_SECRET_MS, COOKIE_VALID_MS, CookieChecker, CookieGenerator, checkMac1, macKeys } from '../../src/crypto/cookie.js'
import { COOKIE_REPLY_LEN, MAC_TRAILER_LEN, MSG_COOKIE_REPLY, decodeCookieReply, encodeCookieReply, stripMacs } from '../../src/wire/cookie.js'
import { createInit, generateStaticKey } from '../../src/crypto/noise.js'
import { WireError } from '../../src/errors.js'

const enc = new TextEncoder()
const rnd = (n: number): Uint8Array => new Uint8Array(randomBytes(n))
const cat = (...p: Uint8Array[]): Uint8Array => { const o = new Uint8Array(p.reduce((n, x) => n + x.length, 0)); let i = 0; for (const x of p) { o.set(x, i); i += x.length } return o }
const random = (b: Uint8Array): void => { b.set(randomBytes(b.length)) }

t.test('blake2s: every length 0..300, keys 0/1/16/32 bytes, digests 16/32 match @noble/hashes', async t => {
  let bad = 0
  let n = 0
  for (let len = 0; len <= 300; len++) {
    for (const kl of [0, 1, 16, 32]) {
      for (const ol of [16, 32]) {
        const d = rnd(len)
        const k = rnd(kl)
        const ref = blake2s(d, kl > 0 ? { key: k, dkLen: ol } : { dkLen: ol })
        if (!Buffer.from(ref).equals(blake2sInto(k, d, 0, len, ol, new Uint8Array(ol)))) bad++
        n++
      }
    }
  }
  t.equal(bad, 0, `${n} cases`)
  const buf = rnd(200)
  const k = rnd(32)
  t.same(mac128(k, buf, 10, 150), blake2s(buf.subarray(10, 150), { key: k, dkLen: 16 }), 'a range of a larger buffer')
  t.throws(() => blake2sInto(rnd(33), buf, 0, 1, 16, new Uint8Array(16)), RangeError)
})

t.test('mac1 and the keys are what the spec says (computed with noble directly)', async t => {
  const psk = rnd(32)
  const keys = macKeys(psk)
  t.same(keys.mac1, blake2s(cat(enc.encode('mac1----'), psk)))
  t.same(keys.cookie, blake2s(cat(enc.encode('cookie--'), psk)))
  const { message } = createInit(psk, generateStaticKey(), 0x01020304, rnd(33))
  const wire = new CookieGenerator(keys).addMacs(message, 0)
  t.equal(wire.length, message.length + MAC_TRAILER_LEN)
  t.same(wire.subarray(0, message.length), message, 'the Noise message is untouched')
  t.same(wire.subarray(message.length, message.length + 16), blake2s(message, { key: keys.mac1, dkLen: 16 }), 'mac1 = MAC(HASH("mac1----" || psk), msg)')
  t.same(wire.subarray(message.length + 16), new Uint8Array(16), 'mac2 is zero without a cookie')
  t.same(stripMacs(wire), message)
  t.ok(checkMac1(keys, wire))
  t.notOk(checkMac1(macKeys(rnd(32)), wire), 'another network key: mac1 fails')
  for (const i of [0, 5, message.length - 1, message.length, message.length + 15]) {
    const bad = wire.slice()
    bad[i] ^= 1
    t.notOk(checkMac1(keys, bad), `bit flipped at ${i}`)
  }
  t.notOk(checkMac1(keys, wire.subarray(0, 40)), 'too short')
})

t.test('cookie round trip: reply, mac2, secret rotation, cookie expiry', async t => {
  const psk = rnd(32)
  const keys = macKeys(psk)
  const checker = new CookieChecker(keys, random)
  const gen = new CookieGenerator(keys)
  const ip = 0xc6120105
  const port = 40001
  const { message } = createInit(psk, generateStaticKey(), 77, rnd(33))
  let now = 1000
  const first = gen.addMacs(message, now)
  t.ok(checker.checkMac1(first, 0, first.length))
  t.notOk(checker.checkMac2(first, 0, first.length, ip, port, now), 'no cookie: mac2 fails')
  const reply = checker.createReply(first, 0, first.length, ip, port, now, new Uint8Array(COOKIE_REPLY_LEN))
  t.equal(reply.length, 64, '64 bytes: smaller than any init')
  const r = decodeCookieReply(reply)
  t.equal(r.type, MSG_COOKIE_REPLY)
  t.equal(r.receiverIndex, 77, 'addressed to the init\'s senderIndex')
  // Independent open: XChaCha20-Poly1305 under HASH("cookie--" || psk), AD = the init's mac1.
  const cookie = xchacha20poly1305(keys.cookie, r.nonce, first.subarray(message.length, message.length + 16)).decrypt(r.sealed)
  t.equal(cookie.length, 16)
  t.notOk(new CookieGenerator(macKeys(rnd(32))).consumeReply(reply, now), 'another network key cannot open it')
  t.ok(gen.consumeReply(reply, now), 'the initiator takes the cookie')
  t.notOk(gen.consumeReply(reply, now), 'one reply per init')
  const second = gen.addMacs(message, now)
  t.same(second.subarray(message.length + 16), blake2s(second.subarray(0, message.length + 16), { key: cookie, dkLen: 16 }), 'mac2 = MAC(cookie, msg || mac1)')
  t.ok(checker.checkMac2(second, 0, second.length, ip, port, now), 'mac2 valid from the same source')
  t.notOk(checker.checkMac2(second, 0, second.length, ip, port + 1, now), 'another source port: invalid')
  t.notOk(checker.checkMac2(second, 0, second.length, ip + 1, port, now), 'another source address: invalid')
  now += COOKIE_SECRET_MS
  t.notOk(checker.checkMac2(second, 0, second.length, ip, port, now), 'the secret rotated: the old cookie fails')
  t.ok(gen.hasCookie(now - COOKIE_SECRET_MS + COOKIE_VALID_MS - 1))
  t.notOk(gen.hasCookie(now), 'the initiator forgets the cookie after COOKIE_VALID_MS')
  t.same(gen.addMacs(message, now).subarray(message.length + 16), new Uint8Array(16), 'expired cookie: mac2 zero again')
})

t.test('a reply that does not answer the last init is ignored', async t => {
  const psk = rnd(32)
  const keys = macKeys(psk)
  const checker = new CookieChecker(keys, random)
  const gen = new CookieGenerator(keys)
  t.notOk(gen.consumeReply(new Uint8Array(64), 0), 'nothing sent yet')
  const a = gen.addMacs(createInit(psk, generateStaticKey(), 1, rnd(33)).message, 0)
  const replyA = checker.createReply(a, 0, a.length, 1, 2, 0, new Uint8Array(64))
  gen.addMacs(createInit(psk, generateStaticKey(), 2, rnd(33)).message, 0)
  t.notOk(gen.consumeReply(replyA, 0), 'a reply to an earlier init (other index, other mac1)')
  t.notOk(gen.hasCookie(0))
})

t.test('decoders never throw anything but WireError; consumeReply never throws', async t => {
  const gen = new CookieGenerator(macKeys(rnd(32)))
  gen.addMacs(rnd(100), 0)
  let other = 0
  for (let i = 0; i < 5000; i++) {
    const b = rnd(Math.floor(Math.random() * 100))
    if (i % 3 === 0 && b.length > 0) b[0] = MSG_COOKIE_REPLY
    if (i % 5 === 0) { b.fill(0, 1, 4) }
    for (const f of [() => decodeCookieReply(b), () => stripMacs(b)]) {
      try { f() } catch (err) { if (!(err instanceof WireError)) other++ }
    }
    if (gen.consumeReply(b, 0)) other++
  }
  t.equal(other, 0)
  const m = { receiverIndex: 0xfedcba98, nonce: rnd(24), sealed: rnd(32) }
  const d = decodeCookieReply(encodeCookieReply(m))
  t.same({ receiverIndex: d.receiverIndex, nonce: d.nonce, sealed: d.sealed }, m, 'round trip')
  t.throws(() => encodeCookieReply({ ...m, nonce: rnd(12) }), WireError)
  const bad = encodeCookieReply(m)
  bad[2] = 1
  t.throws(() => decodeCookieReply(bad), WireError, 'reserved bytes must be zero')
})
