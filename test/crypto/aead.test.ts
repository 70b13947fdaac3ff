// crypto/aead.ts (node:crypto) against @noble: the control plane's AEAD and hash must match the reference byte for byte.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { chacha20poly1305 } from '@noble/ciphers/chacha.js'
import { blake2s as nobleBlake2s } from '@noble/hashes/blake2.js'
import { aeadOpen, aeadSeal, blake2s } from '../../src/crypto/aead.js'

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

t.test('RFC 8439 §2.8.2 test vector', async t => {
  const key = Buffer.from('808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f', 'hex')
  const nonce = Buffer.from('070000004041424344454647', 'hex')
  const ad = Buffer.from('50515253c0c1c2c3c4c5c6c7', 'hex')
  const pt = Buffer.from("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.")
  const sealed = aeadSeal(key, nonce, ad, pt)
  t.equal(hex(sealed.subarray(pt.length)), '1ae10b594f09e26a7e902ecbd0600691', 'tag')
  t.equal(hex(sealed.subarray(0, 16)), 'd31a8d34648e60db7b86afbc53ef7ec2', 'first ciphertext block')
  t.same(aeadOpen(key, nonce, ad, sealed), new Uint8Array(pt))
})

t.test('matches @noble/ciphers for random inputs, and rejects every tampering', async t => {
  for (let i = 0; i < 300; i++) {
    const key = randomBytes(32); const nonce = randomBytes(12); const ad = randomBytes(i % 40); const pt = randomBytes(i * 7 % 1500)
    const ours = aeadSeal(key, nonce, ad, pt)
    const ref = chacha20poly1305(key, nonce, ad).encrypt(pt)
    if (hex(ours) !== hex(ref)) { t.fail(`seal differs at case ${i}`); return }
    const back = aeadOpen(key, nonce, ad, ref)
    if (back === null || hex(back) !== hex(pt)) { t.fail(`open failed at case ${i}`); return }
    const bad = ref.slice(); bad[(i * 13) % bad.length]! ^= 1 << (i % 8)
    if (aeadOpen(key, nonce, ad, bad) !== null) { t.fail(`a flipped bit was accepted at case ${i}`); return }
  }
  t.pass('300 cases')
})

t.test('open never throws: short input, wrong key or nonce size, wrong ad', async t => {
  const key = randomBytes(32); const nonce = randomBytes(12)
  const sealed = aeadSeal(key, nonce, Buffer.from('ad'), Buffer.from('hello'))
  t.equal(aeadOpen(key, nonce, Buffer.from('ad'), sealed.subarray(0, 15)), null, 'shorter than a tag')
  t.equal(aeadOpen(key.subarray(0, 31), nonce, Buffer.from('ad'), sealed), null, '31-byte key')
  t.equal(aeadOpen(key, nonce.subarray(0, 8), Buffer.from('ad'), sealed), null, '8-byte nonce')
  t.equal(aeadOpen(key, nonce, Buffer.from('AD'), sealed), null, 'other associated data')
  t.throws(() => aeadSeal(key.subarray(0, 16), nonce, Buffer.alloc(0), Buffer.alloc(1)), 'seal with a 16-byte key throws')
})

t.test('blake2s matches @noble/hashes (one part or several)', async t => {
  t.equal(hex(blake2s(Buffer.from('abc'))), '508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982', 'RFC 7693 "abc"')
  for (let i = 0; i < 100; i++) {
    const a = randomBytes(i); const b = randomBytes(100 - i)
    if (hex(blake2s(a, b)) !== hex(nobleBlake2s(Buffer.concat([a, b])))) { t.fail(`differs at ${i}`); return }
  }
  t.pass('100 cases')
})
