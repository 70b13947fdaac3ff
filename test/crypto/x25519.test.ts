import t from 'tap'
import { x25519 } from '@noble/curves/ed25519.js'
import { generateKeyPair, sharedSecret } from '../../src/crypto/x25519.js'

const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'))

t.test('public keys and shared secrets agree with @noble/curves', async t => {
  for (let i = 0; i < 100; i++) {
    const a = x25519.utils.randomSecretKey()
    const pa = generateKeyPair(a)
    t.same(pa.pub, x25519.getPublicKey(a), 'public key from a given private key')
    const fresh = generateKeyPair()
    t.same(sharedSecret(pa.priv, fresh.pub), x25519.getSharedSecret(a, fresh.pub), 'shared secret')
    t.same(sharedSecret(fresh.priv, pa.pub), sharedSecret(pa.priv, fresh.pub), 'both sides agree')
  }
})

t.test('RFC 7748 §6.1 test vector', async t => {
  const alice = generateKeyPair(hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a'))
  const bobPub = hex('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f')
  t.equal(Buffer.from(alice.pub).toString('hex'), '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a')
  t.equal(Buffer.from(sharedSecret(alice.priv, bobPub)).toString('hex'), '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742')
})

t.test('low-order and malformed public keys are refused', async t => {
  const k = generateKeyPair()
  t.throws(() => sharedSecret(k.priv, new Uint8Array(32)), RangeError)
  t.throws(() => sharedSecret(k.priv, hex('0100000000000000000000000000000000000000000000000000000000000000')), RangeError)
  t.throws(() => sharedSecret(k.priv, new Uint8Array(31)), RangeError)
})
