import t from 'tap'
import { spawnSync, execFileSync } from 'node:child_process'
import { randomBytes, randomInt } from 'node:crypto'
import * as dgram from 'node:dgram'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { chacha20poly1305 } from '@noble/ciphers/chacha.js'
import { loadNative, openTun, openUdp, tunOpenError, udpOpenError, type Native } from '../../src/dataplane/native.js'
import { VpnError } from '../../src/errors.js'
import { loadTestingNative } from '../helpers/native-testing.js'

const ADDON = fileURLToPath(new URL('../../build/Release/lwt_native.node', import.meta.url))
const LOOPBACK = 0x7f000001
const isRoot = process.getuid?.() === 0
const haveTun = existsSync('/dev/net/tun')

const native: Native = loadNative()
/** The test build (native/testing.c): poly1305Blocks. */
const testing = loadTestingNative()

/** Runs a CommonJS snippet in a fresh node process with `n` bound to the addon. */
function runChild (body: string, timeoutMs = 15000): { status: number | null, stdout: string, stderr: string, signal: NodeJS.Signals | null } {
  const src = `const n = require(${JSON.stringify(ADDON)});\n${body}`
  const r = spawnSync(process.execPath, ['-e', src], { encoding: 'utf8', timeout: timeoutMs })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, signal: r.signal }
}

function nonceOf (mem: Uint8Array, off: number): Uint8Array {
  const nonce = new Uint8Array(12)
  nonce.set(mem.subarray(off + 8, off + 16), 4)
  return nonce
}

t.test('loadNative is cached and exposes the whole API', async t => {
  t.equal(loadNative(), native)
  for (const f of ['tunOpen', 'ifIndex', 'udpOpen', 'close', 'pollStart', 'pollStop', 'tunReadBatch', 'tunWriteBatch',
    'udpRecvBatch', 'udpSendBatch', 'udpSendBatchGso', 'udpSendTo', 'aeadSealBatch', 'aeadOpenBatch', 'aeadForget']) {
    t.type((native as unknown as Record<string, unknown>)[f], 'function', f)
  }
})

t.test('the test-only exports are in the test build only', async t => {
  for (const f of ['socketPairDgram', 'vnetSplit', 'vnetCoalesce', 'poly1305Blocks', 'aeadCachedKeys', 'ftcpRunPlan']) {
    t.equal((native as unknown as Record<string, unknown>)[f], undefined, `${f}: not in lwt_native.node`)
    t.type((testing as unknown as Record<string, unknown>)[f], 'function', `${f}: in lwt_native_testing.node`)
  }
  t.same(Object.keys(testing).filter(k => !(k in native)).sort(), ['aeadCachedKeys', 'ftcpRunPlan', 'poly1305Blocks', 'socketPairDgram', 'vnetCoalesce', 'vnetSplit'],
    'the test build is the production API plus those six')
})

t.test('AEAD', async t => {
  const KEYS = 5
  const keys = new Uint8Array(randomBytes(KEYS * 32 + 7))
  const keyOffs = Array.from({ length: KEYS }, (_, i) => 7 + i * 32)
  const special = [0, 1, 2, 15, 16, 17, 63, 64, 65, 255, 1024, 1499, 1500]
  const N = 160
  const SLOT = 1600

  interface Pkt { off: number, aadLen: number, ptLen: number, keyOff: number }
  function layout (): Pkt[] {
    const pkts: Pkt[] = []
    for (let i = 0; i < N; i++) {
      const ptLen = i < special.length ? special[i] : randomInt(0, 1501)
      const aadLen = i % 3 === 0 ? 16 : randomInt(16, 48)
      pkts.push({ off: i * SLOT + randomInt(0, 8), aadLen, ptLen, keyOff: keyOffs[randomInt(0, KEYS)] })
    }
    return pkts
  }
  function descOf (pkts: Pkt[], ctLen: boolean): Int32Array {
    const d = new Int32Array(pkts.length * 4)
    pkts.forEach((p, i) => d.set([p.off, p.aadLen, ctLen ? p.ptLen + 16 : p.ptLen, p.keyOff], i * 4))
    return d
  }
  // A SharedArrayBuffer-backed view with a nonzero byteOffset, as the dataplane uses.
  function sharedMem (size: number): Uint8Array {
    const mem = new Uint8Array(new SharedArrayBuffer(size + 64), 40, size)
    mem.set(randomBytes(size))
    return mem
  }

  t.test('seal matches @noble/ciphers byte for byte; open restores; nothing else is touched', async t => {
    for (const shared of [true, false]) {
      const pkts = layout()
      const size = N * SLOT + 64
      const mem = shared ? sharedMem(size) : new Uint8Array(randomBytes(size))
      const before = mem.slice()
      const expected = pkts.map(p => {
        const key = keys.subarray(p.keyOff, p.keyOff + 32)
        const aad = mem.slice(p.off, p.off + p.aadLen)
        const pt = mem.slice(p.off + p.aadLen, p.off + p.aadLen + p.ptLen)
        return chacha20poly1305(key, nonceOf(mem, p.off), aad).encrypt(pt)
      })
      native.aeadSealBatch(mem, descOf(pkts, false), N, keys)
      const inPacket = new Uint8Array(size)
      let bad = 0
      pkts.forEach((p, i) => {
        const got = mem.subarray(p.off + p.aadLen, p.off + p.aadLen + p.ptLen + 16)
        if (Buffer.compare(got, expected[i]) !== 0) bad++
        if (Buffer.compare(mem.subarray(p.off, p.off + p.aadLen), before.subarray(p.off, p.off + p.aadLen)) !== 0) bad++
        inPacket.fill(1, p.off, p.off + p.aadLen + p.ptLen + 16)
      })
      t.equal(bad, 0, `all ${N} sealed packets equal noble's output, AAD untouched (shared=${shared})`)
      let outside = 0
      for (let i = 0; i < size; i++) if (inPacket[i] === 0 && mem[i] !== before[i]) outside++
      t.equal(outside, 0, 'no byte outside the packets changed')

      const results = new Int32Array(N).fill(7)
      t.equal(native.aeadOpenBatch(mem, descOf(pkts, true), N, keys, results), N)
      t.ok(results.every(r => r === 1), 'every tag verifies')
      let restored = 0
      pkts.forEach(p => {
        const end = p.off + p.aadLen + p.ptLen
        if (Buffer.compare(mem.subarray(p.off, end), before.subarray(p.off, end)) === 0) restored++
      })
      t.equal(restored, N, 'plaintext restored in place')
    }
  })

  t.test('noble-sealed packets open natively', async t => {
    const mem = sharedMem(4096)
    const key = keys.subarray(keyOffs[2], keyOffs[2] + 32)
    const aad = mem.slice(100, 116)
    const pt = mem.slice(116, 116 + 777)
    mem.set(chacha20poly1305(key, nonceOf(mem, 100), aad).encrypt(pt), 116)
    const results = new Int32Array(1)
    t.equal(native.aeadOpenBatch(mem, new Int32Array([100, 16, 777 + 16, keyOffs[2]]), 1, keys, results), 1)
    t.same(mem.slice(116, 116 + 777), pt)
  })

  t.test('a flipped bit in AAD, ciphertext or tag fails only that packet', async t => {
    const pkts = layout()
    const size = N * SLOT + 64
    const mem = sharedMem(size)
    native.aeadSealBatch(mem, descOf(pkts, false), N, keys)
    const sealed = mem.slice()
    const flipped = new Set<number>()
    const where: string[] = []
    pkts.forEach((p, i) => {
      if (i % 2 === 1) return
      const region = (i / 2) % 3
      let pos: number
      if (region === 0) pos = p.off + randomInt(0, p.aadLen)
      else if (region === 1 && p.ptLen > 0) pos = p.off + p.aadLen + randomInt(0, p.ptLen)
      else pos = p.off + p.aadLen + p.ptLen + randomInt(0, 16)
      mem[pos] ^= 1 << randomInt(0, 8)
      flipped.add(i)
      where.push(region === 0 ? 'aad' : region === 1 && p.ptLen > 0 ? 'ct' : 'tag')
    })
    const results = new Int32Array(N)
    const ok = native.aeadOpenBatch(mem, descOf(pkts, true), N, keys, results)
    t.equal(ok, N - flipped.size)
    let wrong = 0
    for (let i = 0; i < N; i++) if (results[i] !== (flipped.has(i) ? 0 : 1)) wrong++
    t.equal(wrong, 0, `tampered packets fail (${new Set(where).size} kinds of region), intact ones verify`)
    // The untampered ones decrypted correctly even with failures interleaved.
    const again = sealed.slice()
    const good = pkts.filter((_, i) => !flipped.has(i))
    native.aeadOpenBatch(again, descOf(good, true), good.length, keys, new Int32Array(good.length))
    let same = 0
    for (const p of good) {
      const a = p.off + p.aadLen
      if (Buffer.compare(mem.subarray(a, a + p.ptLen), again.subarray(a, a + p.ptLen)) === 0) same++
    }
    t.equal(same, good.length)
  })

  t.test('a wrong key or a wrong counter fails', async t => {
    const mem = sharedMem(256)
    native.aeadSealBatch(mem, new Int32Array([0, 16, 100, keyOffs[0]]), 1, keys)
    const copy = mem.slice()
    const r = new Int32Array(1)
    t.equal(native.aeadOpenBatch(mem, new Int32Array([0, 16, 116, keyOffs[1]]), 1, keys, r), 0)
    mem.set(copy)
    mem[8] ^= 0x80
    t.equal(native.aeadOpenBatch(mem, new Int32Array([0, 16, 116, keyOffs[0]]), 1, keys, r), 0)
    mem.set(copy)
    t.equal(native.aeadOpenBatch(mem, new Int32Array([0, 16, 116, keyOffs[0]]), 1, keys, r), 1)
  })

  t.test('ctLen below the tag size is a failed verification, not an exception', async t => {
    const mem = sharedMem(64)
    const r = new Int32Array([5])
    t.equal(native.aeadOpenBatch(mem, new Int32Array([0, 16, 15, keyOffs[0]]), 1, keys, r), 0)
    t.equal(r[0], 0)
  })

  t.test('n = 0 is a no-op', async t => {
    const mem = sharedMem(64)
    const copy = mem.slice()
    native.aeadSealBatch(mem, new Int32Array(0), 0, keys)
    t.equal(native.aeadOpenBatch(mem, new Int32Array(0), 0, keys, new Int32Array(0)), 0)
    t.same(mem, copy)
  })

  t.test('misuse throws before touching memory', async t => {
    const mem = sharedMem(1024)
    const copy = mem.slice()
    const k0 = keyOffs[0]
    const r = new Int32Array(4)
    const cases: Array<[string, () => unknown, ErrorConstructor | RangeErrorConstructor | TypeErrorConstructor]> = [
      ['desc shorter than 4n', () => native.aeadSealBatch(mem, new Int32Array([0, 16, 10, k0]), 2, keys), RangeError],
      ['second packet past the end', () => native.aeadSealBatch(mem, new Int32Array([0, 16, 10, k0, 900, 16, 100, k0]), 2, keys), RangeError],
      ['tag past the end', () => native.aeadSealBatch(mem, new Int32Array([0, 16, 1024 - 16 - 15, k0]), 1, keys), RangeError],
      ['negative offset', () => native.aeadSealBatch(mem, new Int32Array([-1, 16, 10, k0]), 1, keys), RangeError],
      ['negative length', () => native.aeadSealBatch(mem, new Int32Array([0, 16, -1, k0]), 1, keys), RangeError],
      ['aadLen below 16 (nonce inside the AAD)', () => native.aeadSealBatch(mem, new Int32Array([0, 8, 10, k0]), 1, keys), RangeError],
      ['keyOff + 32 past keys', () => native.aeadSealBatch(mem, new Int32Array([0, 16, 10, keys.length - 31]), 1, keys), RangeError],
      ['negative keyOff', () => native.aeadSealBatch(mem, new Int32Array([0, 16, 10, -1]), 1, keys), RangeError],
      ['results too short', () => native.aeadOpenBatch(mem, new Int32Array([0, 16, 26, k0, 0, 16, 26, k0]), 2, keys, new Int32Array(1)), RangeError],
      ['open past the end', () => native.aeadOpenBatch(mem, new Int32Array([0, 16, 1024, k0]), 1, keys, r), RangeError],
      ['n not an integer', () => native.aeadSealBatch(mem, new Int32Array([0, 16, 10, k0]), 0.5, keys), RangeError],
      ['n negative', () => native.aeadSealBatch(mem, new Int32Array([0, 16, 10, k0]), -1, keys), RangeError],
      ['desc as Uint32Array', () => native.aeadSealBatch(mem, new Uint32Array([0, 16, 10, k0]) as unknown as Int32Array, 1, keys), TypeError],
      ['mem as ArrayBuffer', () => native.aeadSealBatch(mem.buffer as unknown as Uint8Array, new Int32Array([0, 16, 10, k0]), 1, keys), TypeError],
      ['keys as string', () => native.aeadSealBatch(mem, new Int32Array([0, 16, 10, k0]), 1, 'k' as unknown as Uint8Array), TypeError],
      ['n as string', () => native.aeadSealBatch(mem, new Int32Array([0, 16, 10, k0]), '1' as unknown as number, keys), TypeError]
    ]
    for (const [name, fn, type] of cases) t.throws(fn, type, name)
    t.same(mem, copy, 'memory unchanged')
  })
})

t.test('UDP', async t => {
  const a = native.udpOpen('127.0.0.1', 0, 1 << 20)
  const b = native.udpOpen('127.0.0.1', 0, 1 << 20)
  t.teardown(() => { native.close(a.fd); native.close(b.fd) })
  t.ok(a.port > 0 && b.port > 0 && a.port !== b.port, 'bound to ephemeral ports')

  t.test('a batch of 64 datagrams: content, length and source verified', async t => {
    const N = 64
    const SLOT = 2048
    const tx = new Uint8Array(new SharedArrayBuffer(N * SLOT + 32), 16, N * SLOT)
    const offsets = new Int32Array(N)
    const lens = new Int32Array(N)
    const addrs = new Uint32Array(N * 2)
    const payloads: Buffer[] = []
    for (let i = 0; i < N; i++) {
      const len = i === 0 ? 0 : i === 1 ? 1 : randomInt(2, 1473)
      const p = randomBytes(len)
      if (len > 0) p[0] = i
      payloads.push(p)
      offsets[i] = i * SLOT + (i % 5)
      tx.set(p, offsets[i])
      lens[i] = len
      addrs[2 * i] = LOOPBACK
      addrs[2 * i + 1] = b.port
    }
    t.equal(native.udpSendBatch(a.fd, tx, offsets, lens, addrs, N), N, 'all sent')

    const rx = new Uint8Array(new SharedArrayBuffer(N * SLOT + 32), 8, N * SLOT)
    const rOff = new Int32Array(N).map((_, i) => i * SLOT + 3)
    const rLens = new Int32Array(N).fill(-2)
    const rAddrs = new Uint32Array(N * 2)
    let got = 0
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { native.pollStop(h); reject(new Error(`only ${got} of ${N} received`)) }, 5000)
      const h = native.pollStart(b.fd, () => {
        // Receive into the remaining slots: views starting at slot `got`.
        const n = native.udpRecvBatch(b.fd, rx, rOff.subarray(got), rLens.subarray(got), rAddrs.subarray(got * 2), N - got, 1500)
        got += n
        if (got === N) { clearTimeout(timer); native.pollStop(h); resolve() }
      })
    })
    let bad = 0
    for (let i = 0; i < N; i++) {
      if (rLens[i] !== payloads[i].length) bad++
      else if (Buffer.compare(rx.subarray(rOff[i], rOff[i] + rLens[i]), payloads[i]) !== 0) bad++
      if (rAddrs[2 * i] !== LOOPBACK || rAddrs[2 * i + 1] !== a.port) bad++
    }
    t.equal(bad, 0, 'every datagram arrived intact, in order, from 127.0.0.1:a.port')
    t.equal(native.udpRecvBatch(b.fd, rx, rOff, rLens, rAddrs, N, 1500), 0, 'nothing left: 0, no throw')
  })

  t.test('udpSendBatchGso: runs go out as UDP_SEGMENT sends and arrive as the same datagrams, in order', async t => {
    const c = native.udpOpen('127.0.0.1', 0, 1 << 20)
    t.teardown(() => { native.close(c.fd) })
    // Runs of equal lengths to one address (GSO), a shorter last datagram, a longer one after it,
    // interleaved destinations, an empty datagram, a run longer than 64 segments.
    const plan: Array<[number, number]> = [] // [length, destination port]
    for (let i = 0; i < 10; i++) plan.push([1400, b.port])
    plan.push([700, b.port], [1400, b.port], [1401, b.port], [0, b.port])
    for (let i = 0; i < 5; i++) plan.push([1300, c.port], [1300, b.port])
    for (let i = 0; i < 70; i++) plan.push([900, c.port])
    plan.push([899, c.port], [900, c.port], [1, b.port])
    const N = plan.length
    const SLOT = 2048
    const tx = new Uint8Array(new SharedArrayBuffer(N * SLOT))
    const offsets = new Int32Array(N)
    const lens = new Int32Array(N)
    const addrs = new Uint32Array(N * 2)
    const want = new Map<number, Buffer[]>([[b.port, []], [c.port, []]])
    for (let i = 0; i < N; i++) {
      const [len, port] = plan[i]
      const p = randomBytes(len)
      offsets[i] = i * SLOT + (i % 7)
      tx.set(p, offsets[i])
      lens[i] = len
      addrs[2 * i] = LOOPBACK
      addrs[2 * i + 1] = port
      want.get(port)!.push(p)
    }
    t.equal(native.udpSendBatchGso(a.fd, tx, offsets, lens, addrs, N), N, 'all sent')
    for (const [fd, port] of [[b.fd, b.port], [c.fd, c.port]]) {
      const exp = want.get(port)!
      const M = exp.length
      const rx = new Uint8Array(M * SLOT)
      const rOff = new Int32Array(M).map((_, i) => i * SLOT)
      const rLens = new Int32Array(M)
      const rAddrs = new Uint32Array(M * 2)
      let got = 0
      for (let tries = 0; tries < 200 && got < M; tries++) {
        got += native.udpRecvBatch(fd, rx, rOff.subarray(got), rLens.subarray(got), rAddrs.subarray(got * 2), M - got, 2000)
        if (got < M) await new Promise(resolve => setTimeout(resolve, 10))
      }
      t.equal(got, M, `port ${port}: every datagram arrived`)
      let bad = 0
      for (let i = 0; i < M; i++) {
        if (rLens[i] !== exp[i].length || Buffer.compare(rx.subarray(rOff[i], rOff[i] + rLens[i]), exp[i]) !== 0) bad++
        if (rAddrs[2 * i + 1] !== a.port) bad++
      }
      t.equal(bad, 0, `port ${port}: same lengths, same bytes, same order`)
      t.equal(native.udpRecvBatch(fd, rx, rOff, rLens, rAddrs, M, 2000), 0, 'nothing extra')
    }
    t.equal(native.udpSendBatchGso(a.fd, tx, offsets, lens, addrs, 0), 0, 'empty batch')
    t.throws(() => native.udpSendBatchGso(a.fd, tx, new Int32Array([N * SLOT - 5]), new Int32Array([10]), new Uint32Array([LOOPBACK, 1]), 1), RangeError, 'slot past the end')
  })

  t.test('truncated datagram gives len -1; udpSendTo returns bytes or -errno', async t => {
    t.equal(native.udpSendTo(a.fd, new Uint8Array(100).fill(9), LOOPBACK, b.port), 100)
    t.equal(native.udpSendTo(a.fd, new Uint8Array(0), LOOPBACK, b.port), 0)
    t.equal(native.udpSendTo(a.fd, new Uint8Array(10), LOOPBACK, 0), -22, 'port 0: -EINVAL, no throw')
    const rx = new Uint8Array(256)
    const lens = new Int32Array(2)
    const addrs = new Uint32Array(4)
    let n = 0
    for (let tries = 0; tries < 100 && n < 2; tries++) {
      n += native.udpRecvBatch(b.fd, rx, new Int32Array([0, 128]).subarray(n), lens.subarray(n), addrs.subarray(2 * n), 2 - n, 50)
      if (n < 2) await new Promise(resolve => setTimeout(resolve, 10))
    }
    t.equal(n, 2)
    t.equal(lens[0], -1, 'MSG_TRUNC')
    t.equal(rx[49], 9, 'first cap bytes delivered')
    t.equal(lens[1], 0, 'empty datagram')
  })

  t.test('a failing datagram in a batch is skipped, the rest is sent', async t => {
    const mem = new Uint8Array(300).fill(3)
    const offsets = new Int32Array([0, 100, 200])
    const lens = new Int32Array([10, 10, 10])
    const addrs = new Uint32Array([LOOPBACK, b.port, LOOPBACK, 0, LOOPBACK, b.port])
    t.equal(native.udpSendBatch(a.fd, mem, offsets, lens, addrs, 3), 2)
    const rl = new Int32Array(4)
    let n = 0
    for (let tries = 0; tries < 100 && n < 2; tries++) {
      n += native.udpRecvBatch(b.fd, new Uint8Array(400), new Int32Array([0, 100, 200, 300]), rl, new Uint32Array(8), 4, 100)
      if (n < 2) await new Promise(resolve => setTimeout(resolve, 10))
    }
    t.equal(n, 2)
  })

  t.test('argument validation', async t => {
    const mem = new Uint8Array(100)
    t.throws(() => native.udpSendBatch(a.fd, mem, new Int32Array([95]), new Int32Array([10]), new Uint32Array([LOOPBACK, 1]), 1), RangeError, 'slot past the end')
    t.throws(() => native.udpSendBatch(a.fd, mem, new Int32Array([0]), new Int32Array([10]), new Uint32Array([LOOPBACK]), 1), RangeError, 'addrs too short')
    t.throws(() => native.udpSendBatch(a.fd, mem, new Int32Array([0]), new Int32Array([10]), new Uint32Array([LOOPBACK, 70000]), 1), RangeError, 'port above 65535')
    t.throws(() => native.udpRecvBatch(b.fd, mem, new Int32Array([0, 60]), new Int32Array(2), new Uint32Array(4), 2, 50), RangeError, 'cap past the end')
    t.throws(() => native.udpRecvBatch(b.fd, mem, new Int32Array([0]), new Int32Array(1), new Uint32Array(2), 2, 50), RangeError, 'max above offsets length')
    t.throws(() => native.udpSendTo(a.fd, [1, 2] as unknown as Uint8Array, LOOPBACK, 1), TypeError)
    t.throws(() => native.udpSendTo(a.fd, mem, 2 ** 32, 1), RangeError)
    t.throws(() => native.udpSendTo(-1, mem, LOOPBACK, 1), RangeError)
    t.throws(() => native.udpOpen('localhost', 0, 0), RangeError, 'host must be a dotted quad')
    t.throws(() => native.udpOpen('127.0.0.1', 65536, 0), RangeError)
    t.throws(() => native.close(-5), RangeError)
    t.throws(() => native.pollStop({}), TypeError, 'pollStop rejects foreign objects')
  })

  t.test('udpOpen on a port in use: EADDRINUSE → ERR_ADDRESS_IN_USE', async t => {
    let caught: unknown
    try { native.udpOpen('127.0.0.1', a.port, 0) } catch (err) { caught = err }
    t.match(caught, { code: 'EADDRINUSE', syscall: 'bind', errno: -98 })
    const mapped = udpOpenError(caught, '127.0.0.1', a.port)
    t.ok(mapped instanceof VpnError)
    t.equal(mapped.code, 'ERR_ADDRESS_IN_USE')
    t.equal(mapped.message, `UDP port 127.0.0.1:${a.port} is already in use`)
    t.ok(mapped.hint)
    t.throws(() => openUdp(native, '127.0.0.1', a.port, 0), { code: 'ERR_ADDRESS_IN_USE' })
    t.throws(() => openUdp(native, '192.0.2.77', 0, 0), { code: 'ERR_SOCKET', message: /EADDRNOTAVAIL/ })
  })
})

t.test('poll', async t => {
  t.test('fires on data, runs microtasks, and pollStop lets the process exit', async t => {
    const r = runChild(`
      const a = n.udpOpen('127.0.0.1', 0, 0), b = n.udpOpen('127.0.0.1', 0, 0)
      let fired = 0
      const h = n.pollStart(b.fd, () => {
        fired++
        const lens = new Int32Array(1)
        n.udpRecvBatch(b.fd, new Uint8Array(64), new Int32Array(1), lens, new Uint32Array(2), 1, 64)
        Promise.resolve().then(() => console.log('microtask after cb'))
        n.pollStop(h)
        n.pollStop(h) // idempotent
        n.close(a.fd); n.close(b.fd)
        console.log('fired', fired, lens[0])
      })
      setTimeout(() => n.udpSendTo(a.fd, new Uint8Array(5), 0x7f000001, b.port), 20)
    `)
    t.equal(r.signal, null, 'exited on its own (no timeout kill)')
    t.equal(r.status, 0, r.stderr)
    t.match(r.stdout, /fired 1 5\nmicrotask after cb/)
  })

  t.test('an active poll keeps the loop alive until stopped from a timer', async t => {
    const r = runChild(`
      const b = n.udpOpen('127.0.0.1', 0, 0)
      const h = n.pollStart(b.fd, () => {})
      const start = Date.now()
      setTimeout(() => { n.pollStop(h); n.close(b.fd); console.log('stopped') }, 200)
      process.on('exit', () => console.log('exit after', Date.now() - start >= 190))
    `)
    t.equal(r.status, 0, r.stderr)
    t.match(r.stdout, /stopped\nexit after true/)
  })

  t.test('an exception thrown by cb is an uncaught exception', async t => {
    const r = runChild(`
      const b = n.udpOpen('127.0.0.1', 0, 0)
      n.pollStart(b.fd, () => { throw new Error('boom from poll cb') })
      n.udpSendTo(b.fd, new Uint8Array(1), 0x7f000001, b.port)
    `)
    t.equal(r.status, 1)
    t.match(r.stderr, /boom from poll cb/)
    const r2 = runChild(`
      process.on('uncaughtException', e => { console.log('handler got', e.message); process.exit(0) })
      const b = n.udpOpen('127.0.0.1', 0, 0)
      n.pollStart(b.fd, () => { throw new Error('boom2') })
      n.udpSendTo(b.fd, new Uint8Array(1), 0x7f000001, b.port)
    `)
    t.equal(r2.status, 0, r2.stderr)
    t.match(r2.stdout, /handler got boom2/)
  })

  t.test('workers: each loads the addon, polls on its own loop, and may be terminated with a poll active', async t => {
    const r = runChild(`
      const { Worker } = require('node:worker_threads')
      const src = 'const { parentPort } = require("node:worker_threads");' +
        'const n = require(' + JSON.stringify(${JSON.stringify(ADDON)}) + ');' +
        'const s = n.udpOpen("127.0.0.1", 0, 0);' +
        'n.aeadSealBatch(new Uint8Array(64), new Int32Array([0, 16, 8, 0]), 1, new Uint8Array(32));' +
        'n.pollStart(s.fd, () => { n.udpRecvBatch(s.fd, new Uint8Array(8), new Int32Array(1), new Int32Array(1), new Uint32Array(2), 1, 8); parentPort.postMessage("fired") });' +
        'parentPort.postMessage(s.port)'
      ;(async () => {
        const a = n.udpOpen('127.0.0.1', 0, 0)
        for (let i = 0; i < 6; i++) {
          const w = new Worker(src, { eval: true })
          const port = await new Promise(r => w.once('message', r))
          n.udpSendTo(a.fd, new Uint8Array(3), 0x7f000001, port)
          await new Promise(r => w.once('message', r))
          await w.terminate()
        }
        n.close(a.fd)
        console.log('ok')
      })()
    `)
    t.equal(r.status, 0, r.stderr)
    t.match(r.stdout, /ok/)
  })

  t.test('pollStart on an fd already watched by this thread fails with EEXIST', async t => {
    const b = native.udpOpen('127.0.0.1', 0, 0)
    const h = native.pollStart(b.fd, () => {})
    t.throws(() => native.pollStart(b.fd, () => {}), { code: 'EEXIST' })
    native.pollStop(h)
    native.close(b.fd)
  })
})

// ---------------------------------------------------------------- TUN

function ipChecksum (buf: Uint8Array, start: number, end: number, init = 0): number {
  let sum = init
  for (let i = start; i < end; i += 2) sum += (buf[i] << 8) + (i + 1 < end ? buf[i + 1] : 0)
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16)
  return (~sum) & 0xffff
}

/** A complete IPv4/UDP packet with valid checksums. */
function ipv4Udp (src: number, dst: number, sport: number, dport: number, payload: Uint8Array): Uint8Array {
  const len = 28 + payload.length
  const p = new Uint8Array(len)
  const v = new DataView(p.buffer)
  v.setUint8(0, 0x45)
  v.setUint16(2, len)
  v.setUint16(4, 0x1234)
  v.setUint16(6, 0x4000) // DF
  v.setUint8(8, 64)
  v.setUint8(9, 17)
  v.setUint32(12, src)
  v.setUint32(16, dst)
  v.setUint16(10, ipChecksum(p, 0, 20))
  v.setUint16(20, sport)
  v.setUint16(22, dport)
  v.setUint16(24, 8 + payload.length)
  p.set(payload, 28)
  const pseudo = (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + 17 + 8 + payload.length
  const c = ipChecksum(p, 20, len, pseudo)
  v.setUint16(26, c === 0 ? 0xffff : c)
  return p
}

const dotted = (ip: number): string => [ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255].join('.')

t.test('TUN', { skip: !isRoot || !haveTun ? 'needs root and /dev/net/tun' : false }, async t => {
  const tag = process.pid % 10000
  const name = `lwtt${tag}`
  const mqName = `lwtm${tag}`
  const fds: number[] = []
  const polls: object[] = []
  t.teardown(() => {
    for (const h of polls) native.pollStop(h)
    for (const fd of fds) { try { native.close(fd) } catch {} }
  })
  const closeAll = (): void => {
    for (const h of polls.splice(0)) native.pollStop(h)
    for (const fd of fds.splice(0)) native.close(fd)
  }

  const tun = native.tunOpen(name, false, true)
  fds.push(tun.fd)
  t.equal(tun.name, name)
  t.ok(native.ifIndex(name) > 0, 'device exists')

  t.test('open errors map to VpnError codes', async t => {
    let err: unknown
    try { native.tunOpen(name, false, true) } catch (e) { err = e }
    t.match(err, { code: 'EBUSY', syscall: 'ioctl(TUNSETIFF)' })
    const mapped = tunOpenError(err, name)
    t.equal(mapped.code, 'ERR_TUN_NAME_TAKEN')
    t.equal(mapped.message, `the device name ${name} is already in use`)
    t.equal(mapped.hint, 'choose another --dev or stop the daemon that owns it')
    t.throws(() => openTun(native, name, false, false), { code: 'ERR_TUN_NAME_TAKEN' }, 'non-exclusive reopen of a single-queue device')
    t.throws(() => openTun(native, name, true, false), { code: 'ERR_TUN_NAME_TAKEN' }, 'queue-mode mismatch (EINVAL) on an existing name')
    t.throws(() => openTun(native, 'lo', false, false), { code: 'ERR_TUN_NAME_TAKEN' }, 'name of a non-TUN device')
    t.throws(() => openTun(native, 'bad name', false, false), { code: 'ERR_TUN_OPEN', message: /EINVAL/ })
  })

  t.test('multi-queue: a second queue on the same device', async t => {
    const q1 = native.tunOpen(mqName, true, false)
    fds.push(q1.fd)
    const q2 = native.tunOpen(mqName, true, false)
    fds.push(q2.fd)
    t.equal(q2.name, mqName)
    t.not(q1.fd, q2.fd)
    t.ok(native.ifIndex(mqName) > 0)
    t.throws(() => native.tunOpen(mqName, true, true), { code: 'EBUSY' }, 'exclusive open of an existing name')
  })

  t.test('read and write packets through the kernel', async t => {
    // A /30 in the benchmark range, unique per test process: host .1 on the device, peer .2 behind it.
    const base = (198 << 24 | 18 << 16) + (process.pid % 16384) * 4
    const hostIp = (base + 1) >>> 0
    const peerIp = (base + 2) >>> 0
    try { execFileSync('sysctl', ['-qw', `net.ipv6.conf.${name}.disable_ipv6=1`], { stdio: 'ignore' }) } catch {}
    execFileSync('ip', ['addr', 'add', `${dotted(hostIp)}/30`, 'dev', name])
    execFileSync('ip', ['link', 'set', 'dev', name, 'up'])

    const SLOT = 2048
    const BATCH = 8
    const mem = new Uint8Array(new SharedArrayBuffer(BATCH * SLOT + 64), 32, BATCH * SLOT)
    const offsets = new Int32Array(BATCH).map((_, i) => i * SLOT + 32)
    const lens = new Int32Array(BATCH)

    // Host → peer: the kernel routes it into the TUN device.
    const payload = randomBytes(300)
    const peerPort = 40000 + randomInt(0, 20000)
    const sock = dgram.createSocket('udp4')
    t.teardown(() => sock.close())
    await new Promise<void>(resolve => sock.bind(0, dotted(hostIp), resolve))
    const hostPort = sock.address().port

    const found = await new Promise<{ off: number, len: number } | null>((resolve) => {
      const timer = setTimeout(() => resolve(null), 5000)
      const h = native.pollStart(tun.fd, () => {
        const n = native.tunReadBatch(tun.fd, mem, offsets, lens, BATCH, 2000)
        for (let i = 0; i < n; i++) {
          const o = offsets[i]
          const v = new DataView(mem.buffer, mem.byteOffset + o, lens[i])
          if (lens[i] >= 28 && mem[o] === 0x45 && mem[o + 9] === 17 && v.getUint32(16) === peerIp && v.getUint16(22) === peerPort) {
            clearTimeout(timer)
            resolve({ off: o, len: lens[i] })
          }
        }
      })
      polls.push(h)
      sock.send(payload, peerPort, dotted(peerIp))
    })
    t.ok(found, 'tunReadBatch got the datagram as an IPv4 packet')
    if (found) {
      const v = new DataView(mem.buffer, mem.byteOffset + found.off, found.len)
      t.equal(found.len, 28 + payload.length)
      t.equal(v.getUint32(12), hostIp, 'source is the host address')
      t.equal(v.getUint16(20), hostPort)
      t.same(Buffer.from(mem.subarray(found.off + 28, found.off + found.len)), payload)
    }
    t.equal(native.tunReadBatch(tun.fd, mem, offsets, lens, BATCH, 2000), 0, 'drained: 0, no throw')

    // Peer → host: tunWriteBatch a hand-built packet, received by the bound dgram socket.
    const reply = randomBytes(200)
    const got = new Promise<[Buffer, dgram.RemoteInfo]>(resolve => sock.once('message', (m, r) => resolve([m, r])))
    const pkt = ipv4Udp(peerIp, hostIp, 5353, hostPort, reply)
    mem.set(pkt, offsets[1])
    mem.set(pkt, offsets[2])
    // Slot 0 is an empty packet: the kernel rejects it (EINVAL) and the batch skips it.
    const wl = new Int32Array([0, pkt.length, pkt.length])
    t.equal(native.tunWriteBatch(tun.fd, mem, offsets.subarray(0, 3), wl, 3), 2, 'the empty packet is skipped, the two others written')
    const [msg, rinfo] = await got
    t.same(msg, reply)
    t.equal(rinfo.address, dotted(peerIp))
    t.equal(rinfo.port, 5353)

    t.throws(() => native.tunWriteBatch(tun.fd, mem, new Int32Array([BATCH * SLOT - 10]), new Int32Array([20]), 1), RangeError)
    t.throws(() => native.tunReadBatch(tun.fd, mem, offsets, lens, BATCH, SLOT), RangeError, 'last slot + cap past the end')
  })

  t.test('closing every fd removes the devices', async t => {
    closeAll()
    t.equal(native.ifIndex(name), 0)
    t.equal(native.ifIndex(mqName), 0)
    t.throws(() => native.tunReadBatch(tun.fd, new Uint8Array(10), new Int32Array(1), new Int32Array(1), 1, 10), { code: 'EBADF' }, 'reading a closed fd throws')
  })
})

t.test('errors', async t => {
  t.test('a TUN name over 15 bytes is rejected clearly', async t => {
    const long = 'lwt-name-too-long0'
    t.throws(() => native.tunOpen(long, false, false), { name: 'RangeError', message: /15/ })
    t.throws(() => openTun(native, long, false, false), { code: 'ERR_TUN_OPEN', message: `invalid TUN device name "${long}": longer than 15 bytes` })
    t.equal(native.ifIndex(long), 0)
    t.equal(native.ifIndex(''), 0)
    t.equal(native.ifIndex('nonexistent0'), 0)
    t.ok(native.ifIndex('lo') > 0)
  })

  t.test('tunOpenError maps errno codes', async t => {
    const e = (code: string, syscall: string): Error => Object.assign(new Error(code), { code, syscall, errno: -1 })
    const m1 = tunOpenError(e('ENOENT', 'open'), 'x')
    t.equal(m1.code, 'ERR_TUN_UNAVAILABLE')
    t.equal(m1.message, '/dev/net/tun is missing: the tun kernel module is not loaded')
    t.equal(m1.hint, 'modprobe tun')
    t.equal(tunOpenError(e('EPERM', 'ioctl(TUNSETIFF)'), 'x').code, 'ERR_TUN_PERMISSION')
    // open() refused by the device node's mode (some containers make it 0600): named as such, with the chmod.
    const closed = tunOpenError(e('EACCES', 'open'), 'x')
    t.equal(closed.code, 'ERR_TUN_PERMISSION')
    t.match(closed.message, /^this user cannot open \/dev\/net\/tun \(mode (\d{4}|unknown), EACCES\): opening a TUN device needs root or CAP_NET_ADMIN, /)
    t.match(closed.hint, 'chmod 0666 /dev/net/tun')
    const noCap = tunOpenError(e('EPERM', 'ioctl(TUNSETIFF)'), 'x')
    t.equal(noCap.message, 'opening a TUN device needs root or CAP_NET_ADMIN')
    t.match(noCap.hint, 'AmbientCapabilities=')
    t.notMatch(noCap.hint, /grant the node binary/)
    t.equal(tunOpenError(e('EEXIST', 'ioctl(TUNSETIFF)'), 'x').code, 'ERR_TUN_NAME_TAKEN')
    const other = tunOpenError(e('EMFILE', 'open'), 'x')
    t.equal(other.code, 'ERR_TUN_OPEN')
    t.match(other.message, /EMFILE/)
    t.equal(udpOpenError(e('EMFILE', 'socket'), '0.0.0.0', 9000).code, 'ERR_SOCKET')
    // An IPv6 bind address reads as the user writes it: [::]:9000, not :::9000.
    t.match(udpOpenError(e('EADDRINUSE', 'bind'), '::', 9000).message, 'UDP port [::]:9000 is already in use')
    t.match(udpOpenError(e('EMFILE', 'socket'), '2001:db8::1', 9000).message, 'cannot open UDP socket [2001:db8::1]:9000')
  })

  t.test('tunOpen argument types', async t => {
    t.throws(() => native.tunOpen(5 as unknown as string, false, false), TypeError)
    t.throws(() => native.tunOpen('x', 1 as unknown as boolean, false), TypeError)
    t.throws(() => native.tunOpen('a\0b', false, false), RangeError)
  })
})

t.test('udpRecvGro', async t => {
  const RXB = 8
  const CAP = 65536
  function rxSetup (): { mem: Uint8Array, bufOffsets: Int32Array, offsets: Int32Array, lens: Int32Array, addrs: Uint32Array, info: Int32Array } {
    const max = RXB * 128
    return {
      mem: new Uint8Array(new SharedArrayBuffer(RXB * CAP)),
      bufOffsets: Int32Array.from({ length: RXB }, (_, i) => i * CAP),
      offsets: new Int32Array(max).fill(-9),
      lens: new Int32Array(max).fill(-9),
      addrs: new Uint32Array(max * 2),
      info: new Int32Array(4)
    }
  }
  /** Receive until `want` packets arrived (loopback delivers inside the send, but poll anyway). */
  async function recvAll (fd: number, r: ReturnType<typeof rxSetup>, want: number, max = RXB * 128): Promise<{ n: number, calls: number[] }> {
    const calls: number[] = []
    let n = 0
    const off = new Int32Array(want + max); const lens = new Int32Array(want + max); const addrs = new Uint32Array((want + max) * 2)
    const copies: Uint8Array[] = []
    for (let tries = 0; tries < 200 && n < want; tries++) {
      const got = native.udpRecvGro(fd, r.mem, r.bufOffsets, RXB, CAP, r.offsets, r.lens, r.addrs, max, r.info)
      if (got === 0) { await new Promise(resolve => setTimeout(resolve, 5)); continue }
      calls.push(r.info[0]!)
      for (let i = 0; i < got; i++) {
        off[n + i] = r.offsets[i]!; lens[n + i] = r.lens[i]!; addrs.set(r.addrs.subarray(2 * i, 2 * i + 2), 2 * (n + i))
        copies.push(r.mem.slice(r.offsets[i]!, r.offsets[i]! + Math.max(0, r.lens[i]!)))
      }
      n += got
    }
    r.offsets.set(off.subarray(0, n)); r.lens.set(lens.subarray(0, n)); r.addrs.set(addrs.subarray(0, 2 * n))
    ;(r as unknown as { copies: Uint8Array[] }).copies = copies
    return { n, calls }
  }
  const copiesOf = (r: ReturnType<typeof rxSetup>): Uint8Array[] => (r as unknown as { copies: Uint8Array[] }).copies

  /** n datagrams of `size` bytes (the last `last` bytes), distinct contents, sent as one udpSendBatchGso batch from a to b. */
  function sendGso (a: { fd: number }, b: { port: number }, n: number, size: number, last = size): Buffer[] {
    const pkts = Array.from({ length: n }, (_, i) => { const p = randomBytes(i === n - 1 ? last : size); p[0] = i; return p })
    const tx = new Uint8Array(n * 2048)
    const offsets = new Int32Array(n); const lens = new Int32Array(n); const addrs = new Uint32Array(2 * n)
    pkts.forEach((p, i) => { offsets[i] = i * 2048; tx.set(p, i * 2048); lens[i] = p.length; addrs[2 * i] = LOOPBACK; addrs[2 * i + 1] = b.port })
    t.equal(native.udpSendBatchGso(a.fd, tx, offsets, lens, addrs, n), n, `${n} datagrams sent`)
    return pkts
  }

  t.test('a GSO batch arrives as ONE coalesced datagram and is split in place into the same packets', async t => {
    const a = native.udpOpen('127.0.0.1', 0, 0); const b = native.udpOpen('127.0.0.1', 0, 1 << 20)
    t.teardown(() => { native.close(a.fd); native.close(b.fd) })
    t.equal(native.udpSetGro(b.fd, true), true, 'the kernel takes UDP_GRO')
    const r = rxSetup()
    const sent = sendGso(a, b, 40, 100, 37)
    const { n, calls } = await recvAll(b.fd, r, 40)
    t.equal(n, 40, 'every packet')
    t.same(calls, [1], 'one datagram, one call')
    t.equal(r.info[1], 1, 'counted as coalesced')
    let bad = 0
    for (let i = 0; i < 40; i++) {
      if (r.offsets[i] !== i * 100) bad++ // in place: packet k of buffer 0 at k * segment size
      if (Buffer.compare(copiesOf(r)[i]!, sent[i]!) !== 0) bad++
      if (r.addrs[2 * i] !== LOOPBACK || r.addrs[2 * i + 1] !== a.port) bad++
    }
    t.equal(bad, 0, 'offsets, bytes and source of every packet')
    t.equal(r.lens[39], 37, 'the short last packet keeps its length')
    t.equal(native.udpRecvGro(b.fd, r.mem, r.bufOffsets, RXB, CAP, r.offsets, r.lens, r.addrs, RXB * 128, r.info), 0, 'nothing left')
    t.equal(r.info[0], 0)
  })

  t.test('without UDP_GRO the same batch arrives datagram by datagram (nBufs per call)', async t => {
    const a = native.udpOpen('127.0.0.1', 0, 0); const b = native.udpOpen('127.0.0.1', 0, 1 << 20)
    t.teardown(() => { native.close(a.fd); native.close(b.fd) })
    const r = rxSetup()
    const sent = sendGso(a, b, 20, 200)
    const { n, calls } = await recvAll(b.fd, r, 20)
    t.equal(n, 20)
    t.same(calls, [8, 8, 4], 'nBufs datagrams per call; a full call means "call again"')
    t.equal(r.info[1], 0, 'nothing coalesced')
    t.ok(copiesOf(r).every((c, i) => Buffer.compare(c, sent[i]!) === 0), 'same packets, in order')
    t.same([...r.offsets.subarray(0, 8)], [...r.bufOffsets], 'each datagram at the start of its buffer')
  })

  t.test('plain datagrams of mixed sizes and senders, and a full receive', async t => {
    const a = native.udpOpen('127.0.0.1', 0, 0); const c = native.udpOpen('127.0.0.1', 0, 0); const b = native.udpOpen('127.0.0.1', 0, 1 << 20)
    t.teardown(() => { native.close(a.fd); native.close(b.fd); native.close(c.fd) })
    native.udpSetGro(b.fd, true)
    const sizes = [1, 1400, 65507, 0, 33]
    for (const [i, s] of sizes.entries()) native.udpSendTo(i % 2 === 0 ? a.fd : c.fd, new Uint8Array(s).fill(i + 1), LOOPBACK, b.port)
    const r = rxSetup()
    const { n } = await recvAll(b.fd, r, sizes.length)
    t.equal(n, sizes.length)
    t.same([...r.lens.subarray(0, n)], sizes, 'lengths (a 65,507-byte datagram fits its buffer; an empty one is length 0)')
    t.same([...r.addrs.subarray(0, 2 * n)].filter((_, k) => k % 2 === 1), sizes.map((_, i) => i % 2 === 0 ? a.port : c.port), 'sources')
    t.ok(copiesOf(r).every((x, i) => x.every(v => v === i + 1)), 'contents')
  })

  t.test('more packets than room: the rest are dropped and counted, never written past the arrays', async t => {
    const a = native.udpOpen('127.0.0.1', 0, 0); const b = native.udpOpen('127.0.0.1', 0, 1 << 20)
    t.teardown(() => { native.close(a.fd); native.close(b.fd) })
    native.udpSetGro(b.fd, true)
    const r = rxSetup()
    sendGso(a, b, 30, 64)
    const { n } = await recvAll(b.fd, r, 10, 10)
    t.equal(n, 10, 'max entries')
    t.equal(r.info[2], 20, '20 counted as dropped')
    t.equal(r.offsets[10], -9, 'entry 10 untouched')
  })

  t.test('argument checks', async t => {
    const b = native.udpOpen('127.0.0.1', 0, 0)
    t.teardown(() => { native.close(b.fd) })
    const r = rxSetup()
    t.throws(() => native.udpRecvGro(b.fd, r.mem, r.bufOffsets, 65, CAP, r.offsets, r.lens, r.addrs, 10, r.info), RangeError, 'nBufs above 64')
    t.throws(() => native.udpRecvGro(b.fd, r.mem, r.bufOffsets, RXB, CAP + 1, r.offsets, r.lens, r.addrs, 10, r.info), RangeError, 'last buffer past the end')
    t.throws(() => native.udpRecvGro(b.fd, r.mem, r.bufOffsets, RXB, CAP, r.offsets, r.lens, r.addrs, 10, new Int32Array(2)), RangeError, 'info too short')
    t.throws(() => native.udpRecvGro(b.fd, r.mem, r.bufOffsets, RXB, CAP, r.offsets.subarray(0, 5), r.lens, r.addrs, 10, r.info), RangeError, 'offsets shorter than max')
    t.throws(() => native.udpSetGro(-1, true), RangeError)
    t.equal(native.udpRecvGro(b.fd, r.mem, r.bufOffsets, RXB, CAP, r.offsets, r.lens, r.addrs, 10, r.info), 0, 'nothing waiting: 0')
  })
})

t.test('compact ChaCha20-Poly1305 (packets up to 192 bytes) and OpenSSL (larger) agree with @noble at every size around the switch', async t => {
  const key = new Uint8Array(randomBytes(32))
  const SLOT = 600
  const sizes = Array.from({ length: 301 }, (_, i) => i).concat([511, 512, 513, 1400, 1500])
  const mem = new Uint8Array(sizes.length * SLOT)
  const desc = new Int32Array(sizes.length * 4)
  const plains: Uint8Array[] = []
  sizes.forEach((n, i) => {
    const off = i * SLOT + (i % 7)
    const len = Math.min(n, SLOT - 48)
    const p = new Uint8Array(randomBytes(16 + len))
    p[0] = 4
    mem.set(p, off)
    plains.push(p)
    desc.set([off, 16, len, 0], i * 4)
  })
  const big = new Uint8Array(sizes.length * SLOT + 2000)
  big.set(mem)
  // 1400/1500 do not fit a 600-byte slot: put them at the end.
  native.aeadSealBatch(big, desc, sizes.length, key)
  let bad = 0
  sizes.forEach((_, i) => {
    const [off, , len] = [desc[i * 4], desc[i * 4 + 1], desc[i * 4 + 2]]
    const p = plains[i]
    const ref = chacha20poly1305(key, nonceOf(p, 0), p.subarray(0, 16)).encrypt(p.subarray(16))
    if (Buffer.compare(big.subarray(off + 16, off + 16 + len + 16), ref) !== 0) bad++
  })
  t.equal(bad, 0, 'seal matches noble at sizes 0..300, 511..513 (and the clamped large ones)')
  const openDesc = desc.slice()
  for (let i = 0; i < sizes.length; i++) openDesc[i * 4 + 2] += 16
  // Tamper with every third packet's tag: it must fail and stay as it was (compact path verifies first).
  const before: Uint8Array[] = []
  for (let i = 0; i < sizes.length; i += 3) { const off = openDesc[i * 4]; const end = off + 16 + openDesc[i * 4 + 2]; big[end - 1] ^= 0x80; before[i] = big.slice(off, end) }
  const results = new Int32Array(sizes.length)
  const ok = native.aeadOpenBatch(big, openDesc, sizes.length, key, results)
  t.equal(ok, sizes.length - Math.ceil(sizes.length / 3))
  let wrong = 0; let touched = 0
  sizes.forEach((_, i) => {
    const off = openDesc[i * 4]; const len = desc[i * 4 + 2]
    if (i % 3 === 0) {
      if (results[i] !== 0) wrong++
      if (sizes[i]! <= 192 && Buffer.compare(big.subarray(off, off + 16 + len + 16), before[i]!) !== 0) touched++
    } else if (results[i] !== 1 || Buffer.compare(big.subarray(off + 16, off + 16 + len), plains[i]!.subarray(16)) !== 0) wrong++
  })
  t.equal(wrong, 0, 'authentic packets open to their plaintext, forged ones fail')
  t.equal(touched, 0, 'a forged small packet is left untouched')
})

t.test('compact Poly1305: RFC 8439 appendix A.3 vectors (the carry and final-reduction edge cases) and noble', async t => {
  const h = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'))
  const z = (n: number): string => '00'.repeat(n)
  const vectors: Array<[string, string, string, string]> = [
    ['#1', z(32), z(64), z(16)],
    ['#5', '02' + z(31), 'ff'.repeat(16), '03' + z(15)],
    ['#6', '02' + z(15) + 'ff'.repeat(16), '02' + z(15), '03' + z(15)],
    ['#7', '01' + z(31), 'ff'.repeat(16) + 'f0' + 'ff'.repeat(15) + '11' + z(15), '05' + z(15)],
    ['#8', '01' + z(31), 'ff'.repeat(16) + 'fb' + 'fe'.repeat(15) + '01'.repeat(16), z(16)],
    ['#9', '02' + z(31), 'fd' + 'ff'.repeat(15), 'fa' + 'ff'.repeat(15)],
    ['#10', '01' + z(7) + '04' + z(7) + z(16), 'e33594d7505e43b9' + z(8) + '3394d7505e4379cd01' + z(7) + z(16) + '01' + z(15), '14' + z(7) + '55' + z(7)],
    ['#11', '01' + z(7) + '04' + z(7) + z(16), 'e33594d7505e43b9' + z(8) + '3394d7505e4379cd01' + z(7) + z(16), '13' + z(15)]
  ]
  for (const [name, key, msg, tag] of vectors) {
    t.equal(Buffer.from(testing.poly1305Blocks(h(key), h(msg))).toString('hex'), tag, `vector ${name}`)
  }
  const { poly1305 } = await import('@noble/ciphers/_poly1305.js')
  let bad = 0
  for (let i = 0; i < 500; i++) {
    const key = new Uint8Array(randomBytes(32)); const msg = new Uint8Array(randomBytes(16 * (i % 9)))
    if (i % 5 === 0) msg.fill(0xff) // all-ones blocks push h towards p
    if (Buffer.compare(testing.poly1305Blocks(key, msg), poly1305(msg, key)) !== 0) bad++
  }
  t.equal(bad, 0, '500 random keys and messages (a fifth all ones)')
  t.throws(() => testing.poly1305Blocks(new Uint8Array(31), new Uint8Array(16)), RangeError)
  t.throws(() => testing.poly1305Blocks(new Uint8Array(32), new Uint8Array(15)), RangeError)
})
