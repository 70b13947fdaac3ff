/**
 * A second, independent Noise implementation (test only), to cross-check
 * src/crypto/noise-steps.ts and noise.ts. It shares no code with them: the
 * primitives are @noble's (X25519, BLAKE2s, HMAC, ChaCha20-Poly1305), and
 * the handshake is driven by the pattern's token list, as the Noise spec
 * (rev 34 §5.3) writes it, instead of hand-written steps. Both sides of a
 * handshake run here, one after the other:
 *
 *   initiator: writeMessage(msg 1) ──▶ responder: readMessage(msg 1)
 *   responder: writeMessage(msg 2) ──▶ initiator: readMessage(msg 2)
 *   both: Split() → (i2r, r2i), checked equal on both sides
 *
 * test/crypto/noise.test.ts checks it against the published cacophony
 * vector for NNpsk0 (so the implementation itself is right), then compares
 * the daemon's IXpsk0 messages and keys with it byte for byte.
 */
import { x25519 } from '@noble/curves/ed25519.js'
import { blake2s } from '@noble/hashes/blake2.js'
import { hmac } from '@noble/hashes/hmac.js'
import { chacha20poly1305 } from '@noble/ciphers/chacha.js'

type Token = 'psk' | 'e' | 's' | 'ee' | 'es' | 'se' | 'ss'
/** Pattern name → its two messages' tokens (the only two patterns this project uses). */
export const PATTERNS: Record<string, [Token[], Token[]]> = {
  NNpsk0: [['psk', 'e'], ['e', 'ee']],
  IXpsk0: [['psk', 'e', 's'], ['e', 'ee', 'se', 's', 'es']]
}

const concat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let o = 0
  for (const p of parts) { out.set(p, o); o += p.length }
  return out
}
const hmacB2s = (k: Uint8Array, d: Uint8Array): Uint8Array => hmac(blake2s, k, d)
function hkdf (ck: Uint8Array, ikm: Uint8Array, n: 2 | 3): Uint8Array[] {
  const temp = hmacB2s(ck, ikm)
  const out = [hmacB2s(temp, Uint8Array.of(1))]
  for (let i = 2; i <= n; i++) out.push(hmacB2s(temp, concat(out[i - 2], Uint8Array.of(i))))
  return out
}
const nonce = (n: number): Uint8Array => { const b = new Uint8Array(12); new DataView(b.buffer).setBigUint64(4, BigInt(n), true); return b }

interface Keys { priv: Uint8Array, pub: Uint8Array }
const pair = (priv: Uint8Array): Keys => ({ priv, pub: x25519.getPublicKey(priv) })

class HandshakeState {
  ck: Uint8Array
  h: Uint8Array
  k: Uint8Array | null = null
  n = 0
  e: Keys | null = null
  re: Uint8Array | null = null
  rs: Uint8Array | null = null

  constructor (readonly name: string, prologue: Uint8Array, readonly initiator: boolean, readonly psk: Uint8Array,
    readonly s: Keys | null, readonly ephemeral: Uint8Array) {
    const nb = new TextEncoder().encode(name)
    this.h = nb.length <= 32 ? concat(nb, new Uint8Array(32 - nb.length)) : blake2s(nb)
    this.ck = this.h.slice()
    this.mixHash(prologue)
  }

  mixHash (d: Uint8Array): void { this.h = blake2s(concat(this.h, d)) }
  mixKey (ikm: Uint8Array): void { [this.ck, this.k] = hkdf(this.ck, ikm, 2); this.n = 0 }
  mixKeyAndHash (ikm: Uint8Array): void {
    const [ck, th, tk] = hkdf(this.ck, ikm, 3)
    this.ck = ck; this.mixHash(th); this.k = tk; this.n = 0
  }

  encryptAndHash (p: Uint8Array): Uint8Array {
    const c = this.k === null ? p : chacha20poly1305(this.k, nonce(this.n++), this.h).encrypt(p)
    this.mixHash(c)
    return c
  }

  decryptAndHash (c: Uint8Array): Uint8Array {
    const p = this.k === null ? c : chacha20poly1305(this.k, nonce(this.n++), this.h).decrypt(c)
    this.mixHash(c)
    return p
  }

  /** The DH a token names, from this side's point of view (Noise §5.3: "es" = initiator's e with responder's s). */
  dh (t: 'ee' | 'es' | 'se' | 'ss'): Uint8Array {
    const mine = t[this.initiator ? 0 : 1] === 'e' ? this.e! : this.s!
    const theirs = t[this.initiator ? 1 : 0] === 'e' ? this.re! : this.rs!
    return x25519.getSharedSecret(mine.priv, theirs)
  }

  write (tokens: Token[], payload: Uint8Array): Uint8Array {
    const out: Uint8Array[] = []
    for (const t of tokens) {
      if (t === 'psk') this.mixKeyAndHash(this.psk)
      else if (t === 'e') { this.e = pair(this.ephemeral); out.push(this.e.pub); this.mixHash(this.e.pub); this.mixKey(this.e.pub) } else if (t === 's') out.push(this.encryptAndHash(this.s!.pub))
      else this.mixKey(this.dh(t))
    }
    out.push(this.encryptAndHash(payload))
    return concat(...out)
  }

  read (tokens: Token[], msg: Uint8Array): Uint8Array {
    let o = 0
    for (const t of tokens) {
      if (t === 'psk') this.mixKeyAndHash(this.psk)
      else if (t === 'e') { this.re = msg.slice(o, o + 32); o += 32; this.mixHash(this.re); this.mixKey(this.re) } else if (t === 's') {
        const len = this.k === null ? 32 : 48
        this.rs = this.decryptAndHash(msg.slice(o, o + len)); o += len
      } else this.mixKey(this.dh(t))
    }
    return this.decryptAndHash(msg.slice(o))
  }
}

export interface ConformanceResult {
  /** Message 1 as the spec writes it: e.pub || [encrypted s] || encrypted payload. */
  message1: Uint8Array
  message2: Uint8Array
  handshakeHash: Uint8Array
  i2r: Uint8Array
  r2i: Uint8Array
  /** Noise-HKDF(ck, "control", 2): the control keys, as noise.ts derives them. */
  ci2r: Uint8Array
  cr2i: Uint8Array
  payload1: Uint8Array
  payload2: Uint8Array
  /** The static keys each side learned (IX: the other's; NN: null). */
  initiatorLearned: Uint8Array | null
  responderLearned: Uint8Array | null
}

export interface ConformanceInput {
  pattern: keyof typeof PATTERNS
  protocolName: string
  prologue: Uint8Array
  psk: Uint8Array
  initEphemeral: Uint8Array
  respEphemeral: Uint8Array
  /** Raw static private keys (IX only). */
  initStatic?: Uint8Array
  respStatic?: Uint8Array
  payload1: Uint8Array
  payload2: Uint8Array
}

export function runConformance (c: ConformanceInput): ConformanceResult {
  const [m1, m2] = PATTERNS[c.pattern]
  const i = new HandshakeState(c.protocolName, c.prologue, true, c.psk, c.initStatic ? pair(c.initStatic) : null, c.initEphemeral)
  const r = new HandshakeState(c.protocolName, c.prologue, false, c.psk, c.respStatic ? pair(c.respStatic) : null, c.respEphemeral)
  const message1 = i.write(m1, c.payload1)
  const payload1 = r.read(m1, message1)
  const message2 = r.write(m2, c.payload2)
  const payload2 = i.read(m2, message2)
  const [i2r, r2i] = hkdf(i.ck, new Uint8Array(0), 2)
  const [i2rR] = hkdf(r.ck, new Uint8Array(0), 2)
  if (Buffer.compare(i2r, i2rR) !== 0) throw new Error('conformance: the two sides disagree')
  const [ci2r, cr2i] = hkdf(i.ck, new TextEncoder().encode('control'), 2)
  return { message1, message2, handshakeHash: i.h, i2r, r2i, ci2r, cr2i, payload1, payload2, initiatorLearned: i.rs, responderLearned: r.rs }
}
