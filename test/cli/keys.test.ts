/**
 * genkey / pubkey (cli/keys.ts) through main(), as `wg genkey | wg pubkey`:
 * the public key printed belongs to the private key (checked with @noble),
 * bad input is a clear error with exit 1, extra arguments are usage errors.
 */
import t from 'tap'
import { x25519 } from '@noble/curves/ed25519.js'
import { main } from '../../src/cli/main.js'

function io (stdin = ''): { out: string[], err: string[], io: Parameters<typeof main>[1] } {
  const out: string[] = []
  const err: string[] = []
  return { out, err, io: { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => err.push(s) }, stdin: async () => stdin } }
}

t.test('genkey prints a fresh private key; pubkey prints its public key', async t => {
  const a = io()
  t.equal(await main(['genkey'], a.io), 0)
  const priv = a.out.join('')
  t.match(priv, /^[A-Za-z0-9+/]{43}=\n$/)
  const b = io()
  t.equal(await main(['genkey'], b.io), 0)
  t.not(b.out.join(''), priv, 'a new key each time')
  const c = io(priv)
  t.equal(await main(['pubkey'], c.io), 0)
  const expected = Buffer.from(x25519.getPublicKey(new Uint8Array(Buffer.from(priv.trim(), 'base64')))).toString('base64') + '\n'
  t.equal(c.out.join(''), expected)
})

t.test('pubkey of the RFC 7748 vector', async t => {
  const c = io(Buffer.from('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a', 'hex').toString('base64'))
  t.equal(await main(['pubkey'], c.io), 0)
  t.equal(Buffer.from(c.out.join('').trim(), 'base64').toString('hex'), '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a')
})

t.test('pubkey with junk on stdin: exit 1, a sentence saying what is expected', async t => {
  const c = io('hello\n')
  t.equal(await main(['pubkey'], c.io), 1)
  t.match(c.err.join(''), /standard input is not a private key: expected one line of base64/)
  t.equal(c.out.join(''), '')
})

t.test('extra arguments are usage errors', async t => {
  const c = io()
  t.equal(await main(['genkey', 'extra'], c.io), 2)
  t.match(c.err.join(''), /genkey: unexpected argument/)
})
