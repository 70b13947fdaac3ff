/**
 * AEAD seal/open per packet at 64 and 1400 bytes, head to head:
 * the addon's batch ChaCha20-Poly1305 (in place in a SharedArrayBuffer,
 * batch 64, the dataplane's path), @noble/ciphers (the pure-JS reference and
 * fallback) and node:crypto (createCipheriv per packet).
 * Open is timed as a seal+open pair minus the seal (an opened slot holds
 * plaintext, so it cannot be opened again without re-sealing).
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { chacha20poly1305 } from '@noble/ciphers/chacha.js'
import { loadNative } from '../../src/dataplane/native.js'
import { time, type BenchResult, type TimerOptions, DEFAULT_TIMER } from './timer.js'

export const SIZES = [64, 256, 512, 1400] as const
const BATCH = 64
const SLOT = 2048
const HDR = 16
const TAG = 16

export function addonCases (size: number): { seal: () => void, pair: () => void } {
  const native = loadNative()
  const mem = new Uint8Array(new SharedArrayBuffer(BATCH * SLOT))
  const keys = new Uint8Array(32)
  keys.set(randomBytes(32))
  const sealDesc = new Int32Array(BATCH * 4)
  const openDesc = new Int32Array(BATCH * 4)
  const results = new Int32Array(BATCH)
  for (let i = 0; i < BATCH; i++) {
    mem.set(randomBytes(HDR + size), i * SLOT)
    sealDesc.set([i * SLOT, HDR, size, 0], i * 4)
    openDesc.set([i * SLOT, HDR, size + TAG, 0], i * 4)
  }
  const seal = (): void => { native.aeadSealBatch(mem, sealDesc, BATCH, keys) }
  const pair = (): void => {
    native.aeadSealBatch(mem, sealDesc, BATCH, keys)
    if (native.aeadOpenBatch(mem, openDesc, BATCH, keys, results) !== BATCH) throw new Error('addon open failed')
  }
  return { seal, pair }
}

export function run (opts: TimerOptions = DEFAULT_TIMER): BenchResult[] {
  const out: BenchResult[] = []
  for (const size of SIZES) {
    const g = `aead-${size}`
    const a = addonCases(size)
    const seal = time(g, 'addon seal (batch 64)', BATCH, a.seal, opts, size)
    const pair = time(g, 'addon seal+open (batch 64)', BATCH, a.pair, opts, size)
    out.push(seal, pair, derivedOpen(g, 'addon open (batch 64, derived)', seal, pair, size))

    const key = randomBytes(32)
    const nonce = new Uint8Array(12)
    const aad = randomBytes(HDR)
    const pt = randomBytes(size)
    const buf = new Uint8Array(size + TAG)
    let ctr = 0
    const nSeal = time(g, '@noble/ciphers seal', 1, () => {
      nonce[4] = ctr++ & 0xff
      chacha20poly1305(key, nonce, aad).encrypt(pt, buf)
    }, opts, size)
    const sealed = chacha20poly1305(key, nonce, aad).encrypt(pt)
    const ptOut = new Uint8Array(size)
    const nOpen = time(g, '@noble/ciphers open', 1, () => { chacha20poly1305(key, nonce, aad).decrypt(sealed, ptOut) }, opts, size)
    out.push(nSeal, nOpen)

    const cSeal = time(g, 'node:crypto seal', 1, () => {
      nonce[4] = ctr++ & 0xff
      const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG })
      c.setAAD(aad, { plaintextLength: size })
      c.update(pt)
      c.final()
      c.getAuthTag()
    }, opts, size)
    const c0 = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG })
    c0.setAAD(aad, { plaintextLength: size })
    const ct = Buffer.concat([c0.update(pt), c0.final()])
    const tag = c0.getAuthTag()
    const cOpen = time(g, 'node:crypto open', 1, () => {
      const d = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG })
      d.setAAD(aad, { plaintextLength: size })
      d.setAuthTag(tag)
      d.update(ct)
      d.final()
    }, opts, size)
    out.push(cSeal, cOpen)
  }
  return out
}

function derivedOpen (group: string, name: string, seal: BenchResult, pair: BenchResult, bytes: number): BenchResult {
  const ns = Math.max(1, pair.nsPerOp - seal.nsPerOp)
  const medianNs = Math.max(1, 1e9 / pair.medianOpsPerSec - 1e9 / seal.medianOpsPerSec)
  return { id: `${group}/${name}`, group, name, nsPerOp: ns, opsPerSec: 1e9 / ns, medianOpsPerSec: 1e9 / medianNs, bytesPerOp: bytes }
}
