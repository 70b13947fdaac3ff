/**
 * The native lone-packet fast path (native/fastpath.c) and its tables
 * (src/dataplane/fast-path.ts), run for real: the pipelines of
 * dataplane/pipelines.ts with the real addon, over a UDP socket on loopback
 * and an AF_UNIX datagram pair standing in for the TUN fd (one read, one
 * packet; a zero vnet header in front, as a tunOpenVnet fd has). The far
 * peer is this test, sealing and opening with @noble/ciphers, an
 * implementation independent of the addon's.
 */
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { loadNative } from '../../src/dataplane/native.js'
import { loadTestingNative } from '../helpers/native-testing.js'
import { ipv4 as ipv4Packet, openData, relayEnvelope, sealData } from '../helpers/packets.js'
import { a6, checksumOk6, ipv6, udp6 } from '../helpers/packets6.js'
import { parsePrefix } from '../../src/wire/prefix.js'
import { runPipelines } from '../../src/dataplane/pipelines.js'
import { createStatsBuffer, StatsReader } from '../../src/dataplane/stats.js'
import { SpscRing } from '../../src/dataplane/ring.js'
import { FAST_CFG, FP_WORDS, FR_WORDS, FS_WORDS, IntHash } from '../../src/dataplane/fast-path.js'
import { ReplayWindow } from '../../src/crypto/replay.js'
import { BATCH, CTRL_RING_SLOTS, CTRL_SLOT_SIZE, RX_BUF_SIZE, RX_BUFS, SLOT_SIZE, type CounterName, type FromWorker, type ToWorker, type WorkerInit } from '../../src/workers/layout.js'

const native = loadNative()
/** The test build's socketPairDgram: the stand-in TUN fd. */
const { socketPairDgram } = loadTestingNative()
const LOOPBACK = 0x7f000001
const OWN = 0x0a4d0001 // 10.77.0.1
const PEER_IP = 0x0a4d0002 // 10.77.0.2
const OTHER_IP = 0x0a4d0009
const MAX_PEERS = 4
const REMOTE_INDEX = 0x11223344
const LOCAL_INDEX = 0xabcdef01
const VNET = 10

/** An ICMP (unless told) IPv4 packet with `payload` random bytes. */
function ipv4 (src: number, dst: number, payload: number, proto = 1): Uint8Array {
  return ipv4Packet(src, dst, new Uint8Array(randomBytes(payload)), proto)
}

interface Rig {
  sendKey: Uint8Array
  recvKey: Uint8Array
  posted: FromWorker[]
  failures: unknown[]
  udpPort: number
  /** Deliver a control event to the pipelines. */
  control: (m: ToWorker) => void
  /** Write packets into the stand-in TUN (as the kernel would: vnet header first). */
  tunWrite: (...pkts: Uint8Array[]) => void
  /** Write one buffer as is (its own vnet header first). */
  tunWriteRaw: (buf: Uint8Array) => void
  /** Packets the pipelines wrote to the TUN (vnet header stripped), waiting up to ms for at least `min`. */
  tunRead: (min: number, ms?: number) => Promise<Uint8Array[]>
  /** Send datagrams to the pipelines' socket from a loopback socket (`from`: 0 = the peer's usual one). */
  udpSend: (from: number, ...dgrams: Uint8Array[]) => void
  /** Datagrams the pipelines sent to far socket `at` (0: the peer's), waiting up to ms for at least `min`. */
  udpRead: (min: number, ms?: number, at?: number) => Promise<Uint8Array[]>
  farPorts: number[]
  counter: (name: CounterName) => number
}

function rig (t: Test, opts: { mode?: 'client' | 'server', fastPath?: boolean, sendKey?: boolean, limits?: Pick<WorkerInit, 'rekeyAfterMessages' | 'rejectAfterMessages'>, clientIsolation?: boolean, mssClamp?: boolean } = {}): Rig {
  const [tunFd, tunPeer] = socketPairDgram()
  const udp = native.udpOpen('127.0.0.1', 0, 0)
  const fars = [native.udpOpen('127.0.0.1', 0, 0), native.udpOpen('127.0.0.1', 0, 0), native.udpOpen('127.0.0.1', 0, 0)]
  const statsSab = createStatsBuffer(MAX_PEERS)
  const stats = new StatsReader(statsSab, MAX_PEERS)
  const init: WorkerInit = {
    role: 'both', statsIndex: 0, mode: opts.mode ?? 'client', tunFd, tunVnet: true, udpFd: udp.fd, tunnelIp: OWN, mtu: 1400,
    maxPeers: MAX_PEERS, packetMem: new SharedArrayBuffer(BATCH * SLOT_SIZE), packetMemIn: new SharedArrayBuffer(RX_BUFS * RX_BUF_SIZE),
    stats: statsSab, ctrlRing: SpscRing.create(CTRL_RING_SLOTS, CTRL_SLOT_SIZE), fastPath: opts.fastPath ?? true, ...opts.limits,
    ...(opts.clientIsolation === true ? { clientIsolation: true } : {}),
    ...(opts.mssClamp === true ? { mssClamp: true } : {})
  }
  const posted: FromWorker[] = []
  const failures: unknown[] = []
  let handler: ((m: ToWorker) => void) | undefined
  const running = runPipelines(init, native, {
    postMessage: (m) => { posted.push(m) },
    on: (_ev, fn) => { handler = fn },
    close: () => {}
  }, (err) => { failures.push(err) })
  t.teardown(() => {
    running.stop()
    for (const fd of [tunFd, tunPeer, udp.fd, ...fars.map(f => f.fd)]) native.close(fd)
  })
  const sendKey = new Uint8Array(randomBytes(32))
  const recvKey = new Uint8Array(randomBytes(32))
  const control = (m: ToWorker): void => { handler!(m) }
  control({ code: 'PEER', slot: 1, peerId: 7, tunnelIp: PEER_IP, endpointIp: LOOPBACK, endpointPort: fars[0].port, relayVia: false, fd: -1 })
  if (opts.sendKey ?? true) control({ code: 'SEND_KEY', slot: 1, key: sendKey, remoteIndex: REMOTE_INDEX })
  control({ code: 'RECV_KEY', slot: 1, localIndex: LOCAL_INDEX, key: recvKey })

  const mem = new Uint8Array(1 << 16)
  const readAll = (fd: number, udpSock: boolean): Uint8Array[] => {
    const out: Uint8Array[] = []
    for (;;) {
      const offsets = Int32Array.from({ length: 16 }, (_, i) => i * 4096)
      const lens = new Int32Array(16)
      const n = udpSock
        ? native.udpRecvBatch(fd, mem, offsets, lens, new Uint32Array(32), 16, 4096)
        : native.tunReadBatch(fd, mem, offsets, lens, 16, 4096)
      for (let i = 0; i < n; i++) out.push(mem.slice(offsets[i] + (udpSock ? 0 : VNET), offsets[i] + lens[i]))
      if (n < 16) return out
    }
  }
  const waitFor = async (fd: number, udpSock: boolean, min: number, ms: number): Promise<Uint8Array[]> => {
    const got: Uint8Array[] = []
    const end = Date.now() + ms
    for (;;) {
      got.push(...readAll(fd, udpSock))
      if (got.length >= min && (min > 0 || Date.now() >= end)) return got
      if (Date.now() >= end) return got
      await sleep(5)
    }
  }
  return {
    sendKey,
    recvKey,
    posted,
    failures,
    udpPort: udp.port,
    farPorts: fars.map(f => f.port),
    control,
    tunWrite: (...pkts) => {
      const buf = new Uint8Array(pkts.length * 4096)
      const offsets = new Int32Array(pkts.length)
      const lens = new Int32Array(pkts.length)
      pkts.forEach((p, i) => {
        offsets[i] = i * 4096
        lens[i] = VNET + p.length
        buf.set(p, i * 4096 + VNET) // a zero vnet header: a plain packet
      })
      t.equal(native.tunWriteBatch(tunPeer, buf, offsets, lens, pkts.length), pkts.length, 'written to the stand-in TUN')
    },
    tunWriteRaw: (buf) => {
      t.equal(native.tunWriteBatch(tunPeer, buf, new Int32Array([0]), new Int32Array([buf.length]), 1), 1, 'written to the stand-in TUN')
    },
    tunRead: async (min, ms = 2000) => await waitFor(tunPeer, false, min, min === 0 ? 60 : ms),
    udpSend: (from, ...dgrams) => {
      for (const d of dgrams) t.equal(native.udpSendTo(fars[from].fd, d, LOOPBACK, udp.port), d.length, 'sent to the pipelines')
    },
    udpRead: async (min, ms = 2000, at = 0) => await waitFor(fars[at].fd, true, min, min === 0 ? 60 : ms),
    counter: (name) => stats.counters()[name]
  }
}

t.test('the addon and fast-path.ts agree on the table layout', async t => {
  const l = native.fastLayout()
  t.same(l.cfg, [...FAST_CFG])
  t.equal(l.peerWords, FP_WORDS)
  t.equal(l.sessWords, FS_WORDS)
  t.equal(l.ringWords, FR_WORDS)
})

t.test('IntHash behaves as a Map through inserts, updates and deletes (clusters included)', async t => {
  const h = new IntHash(64)
  const model = new Map<number, number>()
  let seed = 7
  const rnd = (): number => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return seed }
  // Keys that share low bits and random ones: long probe clusters and wrap-around.
  const keys = [...Array.from({ length: 40 }, (_, i) => (i * 0x10000) >>> 0), ...Array.from({ length: 40 }, () => rnd())]
  let bad = 0
  for (let step = 0; step < 20000; step++) {
    const k = keys[rnd() % keys.length]
    if (rnd() % 3 === 0) { h.delete(k); model.delete(k) } else if (model.size < 64 || model.has(k)) { const v = rnd() % 1000; h.set(k, v); model.set(k, v) }
    if (step % 97 === 0) for (const key of keys) if (h.get(key) !== (model.get(key) ?? -1)) bad++
  }
  t.equal(bad, 0, 'every lookup agreed with the model')
  t.equal(h.size, model.size)
  t.equal(h.bits, 7, 'room for 64 keys at half load')
  const full = new IntHash(2)
  full.set(1, 1); full.set(2, 2)
  t.throws(() => { full.set(3, 3) }, RangeError, 'refuses to fill past half')
})

t.test('a ReplayWindow over shared storage is the same window, and windows at other indices are independent', async t => {
  const ring = new Uint32Array(3 * FR_WORDS)
  const last = new Float64Array(3)
  const a = new ReplayWindow(ring.subarray(FR_WORDS, 2 * FR_WORDS), last, 1)
  const b = new ReplayWindow(ring.subarray(2 * FR_WORDS), last, 2)
  const own = new ReplayWindow()
  let seed = 3
  let differ = 0
  for (let i = 0; i < 5000; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
    const c = Math.max(0, own.highest + (seed % 4000) - 2100)
    if (a.accept(c) !== own.accept(c)) differ++
  }
  t.equal(differ, 0)
  t.equal(last[1], own.highest)
  t.ok(b.accept(0), 'the neighbour window is untouched')
  t.equal(last[0], 0)
  t.same(ring.subarray(0, FR_WORDS), new Uint32Array(FR_WORDS))
})

t.test('outbound: a lone packet is sealed and sent by the addon; a burst goes to the batch path with the same counters', async t => {
  const r = rig(t)
  const one = ipv4(OWN, PEER_IP, 56)
  r.tunWrite(one)
  const [d0] = await r.udpRead(1)
  const m0 = openData(r.sendKey, d0)
  t.same({ type: m0.type, index: m0.index, counter: m0.counter }, { type: 4, index: REMOTE_INDEX, counter: 0 })
  t.same(m0.inner, one, 'the peer opens exactly the packet')
  t.equal(r.counter('fastPathPackets'), 1, 'carried by the fast path')
  t.equal(r.counter('tunRxPackets'), 1)
  t.equal(r.counter('udpTxPackets'), 1)
  t.equal(r.counter('udpTxBytes'), d0.length)

  const burst = Array.from({ length: 6 }, (_, i) => ipv4(OWN, PEER_IP, 100 + i * 50))
  r.tunWrite(...burst)
  const ds = await r.udpRead(6)
  const ms = ds.map(d => openData(r.sendKey, d))
  t.same(ms.map(m => m.counter), [1, 2, 3, 4, 5, 6], 'one counter sequence across both paths, in order')
  t.same(ms.map(m => m.inner), burst, 'every packet, in order')
  // The burst's first packet takes the fast path; the loop finds the fd readable again at once and the rest go
  // to the batch path (on a loaded machine a second one may still come late enough to look lone).
  const fastBurst = r.counter('fastPathPackets') - 1
  t.ok(fastBurst >= 1 && fastBurst < 6, `the burst's first packet took the fast path, not all of them (${fastBurst} of 6)`)
  t.equal(r.counter('tunRxPackets'), 7)
  t.equal(r.counter('udpTxPackets'), 7)

  await sleep(20) // past the hold-off after a burst
  r.tunWrite(one)
  const [d7] = await r.udpRead(1)
  t.equal(openData(r.sendKey, d7).counter, 7)
  t.equal(r.counter('fastPathPackets'), 2 + fastBurst, 'lone again: fast again')
  t.same(r.failures, [])
})

t.test('outbound: past REKEY_AFTER_MESSAGES (2 here) the addon leaves the packet to the batch path, which asks for a rekey and retires the key at REJECT_AFTER_MESSAGES (4)', async t => {
  const r = rig(t, { limits: { rekeyAfterMessages: 2, rejectAfterMessages: 4 } })
  const counters: number[] = []
  for (let i = 0; i < 5; i++) {
    r.tunWrite(ipv4(OWN, PEER_IP, 60 + i))
    const got = await r.udpRead(i < 4 ? 1 : 0)
    counters.push(...got.map(d => openData(r.sendKey, d).counter))
    await sleep(20) // lone packets, past the hold-off
  }
  t.same(counters, [0, 1, 2, 3], 'nothing sent at or past REJECT_AFTER_MESSAGES')
  t.equal(r.counter('fastPathPackets'), 2, 'counters 0 and 1 by the addon; from 2 on, the batch path')
  t.same(r.posted.filter(m => m.code === 'SEND_LIMIT'), [{ code: 'SEND_LIMIT', slot: 1 }], 'a rekey asked once')
  t.ok(r.posted.some(m => m.code === 'NEED_SESSION'), 'then a new session')
  t.equal(r.counter('sendKeyExhausted'), 1)
  t.same(r.failures, [])
})

t.test('outbound: a partial checksum (NEEDS_CSUM) is completed before sealing', async t => {
  const r = rig(t)
  // UDP 10.77.0.1:5000 → 10.77.0.2:6000, 32 payload bytes; the checksum field holds the pseudo-header sum only.
  const p = ipv4(OWN, PEER_IP, 8 + 32, 17)
  const v = new DataView(p.buffer)
  v.setUint16(20, 5000); v.setUint16(22, 6000); v.setUint16(24, 8 + 32)
  let pseudo = (OWN >>> 16) + (OWN & 0xffff) + (PEER_IP >>> 16) + (PEER_IP & 0xffff) + 17 + 40
  while (pseudo > 0xffff) pseudo = (pseudo & 0xffff) + (pseudo >>> 16)
  v.setUint16(26, pseudo)
  const withHdr = new Uint8Array(VNET + p.length)
  withHdr[0] = 1 // VIRTIO_NET_HDR_F_NEEDS_CSUM
  new DataView(withHdr.buffer).setUint16(6, 20, true) // csum_start
  new DataView(withHdr.buffer).setUint16(8, 6, true) // csum_offset
  withHdr.set(p, VNET)
  r.tunWriteRaw(withHdr)
  const [d] = await r.udpRead(1)
  const inner = openData(r.sendKey, d).inner
  let sum = (OWN >>> 16) + (OWN & 0xffff) + (PEER_IP >>> 16) + (PEER_IP & 0xffff) + 17 + 40
  const iv = new DataView(inner.buffer, inner.byteOffset)
  for (let i = 20; i < inner.length; i += 2) sum += iv.getUint16(i)
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16)
  t.equal(sum, 0xffff, 'the UDP checksum verifies')
  t.equal(r.counter('fastPathPackets'), 1)
})

t.test('outbound: no route and no session go to the batch path, which counts and queues as always', async t => {
  const r = rig(t, { sendKey: false })
  r.tunWrite(ipv4(OWN, OTHER_IP, 40))
  await sleep(50)
  t.equal(r.counter('dropNoRoute'), 1, 'no route: counted by the batch path')
  const queued = ipv4(OWN, PEER_IP, 40)
  r.tunWrite(queued)
  await sleep(50)
  t.ok(r.posted.some(m => m.code === 'NEED_SESSION' && m.slot === 1), 'no session yet: asked for one')
  t.same(await r.udpRead(0), [], 'nothing sent without a key')
  r.control({ code: 'SEND_KEY', slot: 1, key: r.sendKey, remoteIndex: REMOTE_INDEX })
  const [d] = await r.udpRead(1)
  const m = openData(r.sendKey, d)
  t.equal(m.counter, 0)
  t.same(m.inner, queued, 'the queued packet leaves once the key is there')
  t.equal(r.counter('fastPathPackets'), 0)
  await sleep(20)
  r.tunWrite(ipv4(OWN, PEER_IP, 40))
  const [d1] = await r.udpRead(1)
  t.equal(openData(r.sendKey, d1).counter, 1, 'the fast path continues the counter the batch path started')
  t.equal(r.counter('fastPathPackets'), 1)
})

t.test('inbound: a lone data message is opened and written by the addon; everything doubtful is judged by the batch path', async t => {
  const r = rig(t)
  const inner0 = ipv4(PEER_IP, OWN, 56)
  const d0 = sealData(r.recvKey, LOCAL_INDEX, 0, inner0)
  r.udpSend(0, d0)
  t.same(await r.tunRead(1), [inner0], 'delivered to the TUN')
  t.equal(r.counter('fastPathPackets'), 1)
  t.equal(r.counter('udpRxPackets'), 1)
  t.equal(r.counter('udpRxBytes'), d0.length)
  t.equal(r.counter('tunTxPackets'), 1)
  t.equal(r.counter('tunTxBytes'), inner0.length)

  r.udpSend(0, d0)
  t.same(await r.tunRead(0), [], 'a replay is not delivered')
  t.equal(r.counter('dropReplay'), 1, 'counted by the batch path')

  const tampered = sealData(r.recvKey, LOCAL_INDEX, 1, ipv4(PEER_IP, OWN, 56))
  tampered[40] ^= 1
  r.udpSend(0, tampered)
  t.same(await r.tunRead(0), [], 'a forgery is not delivered')
  t.equal(r.counter('dropAuthFailed'), 1)

  r.udpSend(0, sealData(r.recvKey, LOCAL_INDEX, 2, ipv4(OTHER_IP, OWN, 56)))
  t.same(await r.tunRead(0), [], 'an inner source that is not the peer\'s address is not delivered')
  t.equal(r.counter('dropSpoofedSource'), 1)
  r.udpSend(0, sealData(r.recvKey, LOCAL_INDEX, 3, ipv4(PEER_IP, OTHER_IP, 56)))
  t.same(await r.tunRead(0), [], 'nor one for another destination')
  t.equal(r.counter('dropNotForUs'), 1)
  r.udpSend(0, sealData(r.recvKey, LOCAL_INDEX ^ 1, 4, ipv4(PEER_IP, OWN, 56)))
  await sleep(50)
  t.equal(r.counter('dropUnknownIndex'), 1, 'an unknown index goes to the control plane')

  // Counter 1 failed authentication: the window did not move for it, so the genuine 1 still passes, fast.
  const inner1 = ipv4(PEER_IP, OWN, 300)
  r.udpSend(0, sealData(r.recvKey, LOCAL_INDEX, 1, inner1))
  t.same(await r.tunRead(1), [inner1])
  t.equal(r.counter('fastPathPackets'), 2)

  // A burst (batch path) whose third datagram replays counter 0, accepted by the fast path: one window between them.
  const burst = [10, 11, 0, 12].map(c => ({ c, inner: ipv4(PEER_IP, OWN, 64 + c) }))
  r.udpSend(0, ...burst.map(b => sealData(r.recvKey, LOCAL_INDEX, b.c, b.inner)))
  const got = await r.tunRead(3)
  t.same(got, burst.filter(b => b.c !== 0).map(b => b.inner), 'the burst minus the replay, in order')
  t.equal(r.counter('dropReplay'), 2)
  await sleep(20)
  // And the other way round: the batch path accepted 11; a lone replay of it is refused.
  r.udpSend(0, sealData(r.recvKey, LOCAL_INDEX, 11, ipv4(PEER_IP, OWN, 64)))
  t.same(await r.tunRead(0), [])
  t.equal(r.counter('dropReplay'), 3)
  const fast = r.counter('fastPathPackets')
  const inner13 = ipv4(PEER_IP, OWN, 64)
  r.udpSend(0, sealData(r.recvKey, LOCAL_INDEX, 13, inner13))
  t.same(await r.tunRead(1), [inner13])
  t.equal(r.counter('fastPathPackets'), fast + 1)
  t.same(r.failures, [])
})

/** An IPv6 UDP packet with only the pseudo-header sum in its checksum field, behind a NEEDS_CSUM vnet header (as the kernel hands it over with CSUM offload), and the checksum a sender would write. */
function partialUdp6 (): { raw: Uint8Array, full: number } {
  const u = udp6(a6('fd00:77::1'), a6('fd00:77::2'), 5000, 6000, new Uint8Array(randomBytes(33)))
  const dv = new DataView(u.buffer)
  const full = dv.getUint16(46)
  dv.setUint16(46, 0)
  let pseudo = 0
  for (let i = 8; i < 40; i += 2) pseudo += dv.getUint16(i)
  pseudo += 17 + (u.length - 40)
  while (pseudo > 0xffff) pseudo = (pseudo & 0xffff) + (pseudo >>> 16)
  dv.setUint16(46, pseudo)
  const raw = new Uint8Array(VNET + u.length)
  raw[0] = 1 // VIRTIO_NET_HDR_F_NEEDS_CSUM
  new DataView(raw.buffer).setUint16(6, 40, true) // csum_start
  new DataView(raw.buffer).setUint16(8, 6, true) // csum_offset
  raw.set(u, VNET)
  return { raw, full }
}

t.test('IPv6 between the peers\' own addresses goes fast; routed prefixes (PEER routes, LOCAL routes) go to the batch path, which routes, checks and carries them', async t => {
  const r = rig(t)
  const P = (x: string): ReturnType<typeof parsePrefix> => parsePrefix(x, { keepHostBits: true })
  r.control({ code: 'PEER', slot: 1, peerId: 7, tunnelIp: PEER_IP, endpointIp: LOOPBACK, endpointPort: r.farPorts[0]!, relayVia: false, fd: -1, prefixes: [P('fd00:77::2/128'), P('192.168.50.0/24'), P('fd00:50::/64')] })
  r.control({ code: 'LOCAL', prefixes: [P('fd00:77::1/128'), P('192.168.60.0/24')] })
  const one = async (what: string, fast: boolean, send: () => Promise<void>): Promise<void> => {
    const before = r.counter('fastPathPackets')
    await send()
    t.equal(r.counter('fastPathPackets') - before, fast ? 1 : 0, `${what}: ${fast ? 'by the addon' : 'by the batch path'}`)
    await sleep(5) // lone packets, not a burst
  }
  const out = async (p: Uint8Array): Promise<void> => {
    r.tunWrite(p)
    const [d] = await r.udpRead(1)
    t.same(openData(r.sendKey, d!).inner, p, 'sent intact')
  }
  await one('IPv6 to the peer\'s address', true, async () => { await out(ipv6(a6('fd00:77::1'), a6('fd00:77::2'), new Uint8Array(randomBytes(40)))) })
  await one('IPv6 into the peer\'s routed prefix', false, async () => { await out(ipv6(a6('fd00:77::1'), a6('fd00:50::9'), new Uint8Array(randomBytes(40)))) })
  await one('IPv4 into the peer\'s route', false, async () => { await out(ipv4(OWN, 0xc0a83207, 40)) })
  await one('IPv6 with a partial checksum', true, async () => {
    const { raw, full } = partialUdp6()
    r.tunWriteRaw(raw)
    const [d] = await r.udpRead(1)
    const inner = openData(r.sendKey, d!).inner
    t.ok(checksumOk6(inner), 'its UDP checksum completed over the IPv6 pseudo-header')
    t.equal(new DataView(inner.buffer, inner.byteOffset).getUint16(46), full, 'the checksum the sender would have written')
  })
  let c = 0
  const inb = async (p: Uint8Array): Promise<void> => {
    r.udpSend(0, sealData(r.recvKey, LOCAL_INDEX, c++, p))
    t.same(await r.tunRead(1), [p], 'delivered')
  }
  await one('IPv6 from the peer\'s address to ours', true, async () => { await inb(ipv6(a6('fd00:77::2'), a6('fd00:77::1'), new Uint8Array(randomBytes(56)))) })
  await one('IPv6 from the peer\'s routed prefix', false, async () => { await inb(ipv6(a6('fd00:50::7'), a6('fd00:77::1'), new Uint8Array(randomBytes(56)))) })
  await one('IPv4 from the peer\'s route', false, async () => { await inb(ipv4(0xc0a83209, OWN, 56)) })
  await one('IPv4 to our route', false, async () => { await inb(ipv4(PEER_IP, 0xc0a83c05, 56)) })
  // What neither path accepts, the batch path counts.
  await one('IPv6 from another address', false, async () => {
    r.udpSend(0, sealData(r.recvKey, LOCAL_INDEX, c++, ipv6(a6('fd00:77::9'), a6('fd00:77::1'))))
    t.same(await r.tunRead(0), [])
  })
  await one('IPv6 to another address', false, async () => {
    r.udpSend(0, sealData(r.recvKey, LOCAL_INDEX, c++, ipv6(a6('fd00:77::2'), a6('fd00:77::9'))))
    t.same(await r.tunRead(0), [])
  })
  const drops = (): Record<string, number> => Object.fromEntries((['dropSpoofedSource', 'dropNotForUs', 'dropNoRoute', 'dropNotIp'] as const).map((k) => [k, r.counter(k)]))
  t.same(drops(), { dropSpoofedSource: 1, dropNotForUs: 1, dropNoRoute: 0, dropNotIp: 0 })
  // LOCAL without an IPv6 address, and a PEER without one: the addon leaves IPv6 alone, the batch path drops it.
  r.control({ code: 'LOCAL', prefixes: [] })
  await one('IPv6 to us once LOCAL no longer has it', false, async () => {
    r.udpSend(0, sealData(r.recvKey, LOCAL_INDEX, c++, ipv6(a6('fd00:77::2'), a6('fd00:77::1'))))
    t.same(await r.tunRead(0), [])
  })
  r.control({ code: 'PEER', slot: 1, peerId: 7, tunnelIp: PEER_IP, endpointIp: LOOPBACK, endpointPort: r.farPorts[0]!, relayVia: false, fd: -1, prefixes: [] })
  await one('IPv6 to the peer once it has no IPv6 address', false, async () => {
    r.tunWrite(ipv6(a6('fd00:77::1'), a6('fd00:77::2')))
    t.same(await r.udpRead(0), [])
  })
  t.same(drops(), { dropSpoofedSource: 1, dropNotForUs: 2, dropNoRoute: 1, dropNotIp: 0 })
  t.same(r.failures, [])
})

t.test('one IPv6 address claimed by two peers: both paths send to the latest claim, and a key change of the other does not take it back', async t => {
  const r = rig(t)
  const A = parsePrefix('fd00:77::2/128')
  const key2 = new Uint8Array(randomBytes(32))
  r.control({ code: 'PEER', slot: 1, peerId: 7, tunnelIp: PEER_IP, endpointIp: LOOPBACK, endpointPort: r.farPorts[0]!, relayVia: false, fd: -1, prefixes: [A] })
  r.control({ code: 'PEER', slot: 2, peerId: 8, tunnelIp: OTHER_IP, endpointIp: LOOPBACK, endpointPort: r.farPorts[1]!, relayVia: false, fd: -1, prefixes: [A] })
  r.control({ code: 'SEND_KEY', slot: 2, key: key2, remoteIndex: 99 })
  r.control({ code: 'SEND_KEY', slot: 1, key: r.sendKey, remoteIndex: REMOTE_INDEX }) // slot 1's record is rewritten after slot 2's claim
  const pkt = ipv6(a6('fd00:77::1'), a6('fd00:77::2'))
  for (const [what, burst] of [['lone (fast path)', false], ['burst (batch path)', true]] as const) {
    if (burst) r.tunWrite(pkt, pkt, pkt)
    else r.tunWrite(pkt)
    const got = await r.udpRead(burst ? 3 : 1, 2000, 1)
    t.ok(got.length >= 1 && got.every((d) => openData(key2, d).inner.length === pkt.length), `${what}: to the latest claimant, with its key`)
    t.same(await r.udpRead(0, 60, 0), [], `${what}: nothing to the other`)
    await sleep(5)
  }
  t.ok(r.counter('fastPathPackets') >= 1, 'the lone one went fast')
  t.same(r.failures, [])
})

t.test('--no-fast-path: an IPv6 packet with a partial checksum is completed by the batch path (tunReadSplit)', async t => {
  const r = rig(t, { fastPath: false })
  r.control({ code: 'PEER', slot: 1, peerId: 7, tunnelIp: PEER_IP, endpointIp: LOOPBACK, endpointPort: r.farPorts[0]!, relayVia: false, fd: -1, prefixes: [parsePrefix('fd00:77::2/128')] })
  const { raw, full } = partialUdp6()
  r.tunWriteRaw(raw)
  const [d] = await r.udpRead(1)
  const inner = openData(r.sendKey, d!).inner
  t.ok(checksumOk6(inner), 'completed over the IPv6 pseudo-header')
  t.equal(new DataView(inner.buffer, inner.byteOffset).getUint16(46), full)
  t.equal(r.counter('fastPathPackets'), 0)
})

t.test('inbound on a server: a peer at a new address is reported by the batch path, and taken by the fast path there once the control plane moved it', async t => {
  const r = rig(t, { mode: 'server' })
  const a = ipv4(PEER_IP, OWN, 40)
  r.udpSend(1, sealData(r.recvKey, LOCAL_INDEX, 0, a))
  t.same(await r.tunRead(1), [a])
  t.equal(r.counter('fastPathPackets'), 0, 'a new source address is the batch path\'s to judge')
  t.ok(r.posted.some(m => m.code === 'ENDPOINT' && m.slot === 1 && m.port === r.farPorts[1]), 'reported')
  await sleep(20)
  const b = ipv4(PEER_IP, OWN, 40)
  r.udpSend(1, sealData(r.recvKey, LOCAL_INDEX, 1, b))
  t.same(await r.tunRead(1), [b])
  t.equal(r.counter('fastPathPackets'), 0, 'not moved yet (return routability: the control plane checks the address first): still the batch path')
  r.control({ code: 'PEER', slot: 1, peerId: 7, tunnelIp: PEER_IP, endpointIp: LOOPBACK, endpointPort: r.farPorts[1]!, relayVia: false, fd: -1 })
  await sleep(20)
  const c = ipv4(PEER_IP, OWN, 40)
  r.udpSend(1, sealData(r.recvKey, LOCAL_INDEX, 2, c))
  t.same(await r.tunRead(1), [c])
  t.equal(r.counter('fastPathPackets'), 1, 'moved by the control plane: fast from the new address')
})

t.test('--no-fast-path: the same traffic, all through the batch path', async t => {
  const r = rig(t, { fastPath: false })
  const out = ipv4(OWN, PEER_IP, 56)
  r.tunWrite(out)
  const [d] = await r.udpRead(1)
  t.same(openData(r.sendKey, d).inner, out)
  const inner = ipv4(PEER_IP, OWN, 56)
  r.udpSend(0, sealData(r.recvKey, LOCAL_INDEX, 0, inner))
  t.same(await r.tunRead(1), [inner])
  t.equal(r.counter('fastPathPackets'), 0)
})

t.test('fastPathOut/fastPathIn refuse bad arguments with a clear error', async t => {
  const [a, b] = socketPairDgram()
  t.teardown(() => { native.close(a); native.close(b) })
  const h = native.pollStart(a, () => {})
  t.teardown(() => { native.pollStop(h) })
  const cfg = new Float64Array(FAST_CFG.length)
  const i32 = (n: number): Int32Array => new Int32Array(new SharedArrayBuffer(n * 4))
  const f64 = (n: number): Float64Array => new Float64Array(new SharedArrayBuffer(n * 8))
  const PEERS = 2 * FP_WORDS // maxPeers 1, and the record of our own IPv6 address
  t.throws(() => { native.fastPathOut({} as never, cfg, new Uint8Array(65600), i32(4), i32(PEERS), f64(1), new Uint8Array(32), i32(4), f64(100)) }, { name: 'TypeError', message: /pollStart/ })
  t.throws(() => { native.fastPathOut(h, cfg, new Uint8Array(65600), i32(4), i32(PEERS), f64(1), new Uint8Array(32), i32(4), f64(100)) }, { name: 'RangeError', message: /cfg/ }, 'maxPeers 0')
  cfg[FAST_CFG.indexOf('maxPeers')] = 1
  cfg[FAST_CFG.indexOf('routeBits')] = 1
  cfg[FAST_CFG.indexOf('sessBits')] = 1
  cfg[FAST_CFG.indexOf('peerFields')] = 5
  cfg[FAST_CFG.indexOf('peerBase')] = 40
  cfg[FAST_CFG.indexOf('tunFd')] = -1
  t.throws(() => { native.fastPathOut(h, cfg, new Uint8Array(65600), i32(4), i32(PEERS), f64(1), new Uint8Array(32), i32(4), f64(100)) }, { name: 'RangeError', message: /non-negative integer/ })
  cfg[FAST_CFG.indexOf('tunFd')] = a
  t.throws(() => { native.fastPathOut(h, cfg, new Uint8Array(100), i32(4), i32(PEERS), f64(1), new Uint8Array(32), i32(4), f64(100)) }, { name: 'RangeError', message: /sbuf/ })
  t.throws(() => { native.fastPathOut(h, cfg, new Uint8Array(65600), i32(4), i32(2), f64(1), new Uint8Array(32), i32(4), f64(100)) }, { name: 'RangeError', message: /peers/ })
  t.throws(() => { native.fastPathOut(h, cfg, new Uint8Array(65600), i32(4), i32(PEERS), f64(1), new Uint8Array(32), i32(4), f64(10)) }, { name: 'RangeError', message: /stats/ })
  t.doesNotThrow(() => { native.fastPathOut(h, cfg, new Uint8Array(65600), i32(4), i32(PEERS), f64(1), new Uint8Array(32), i32(4), f64(100)) })
  cfg[FAST_CFG.indexOf('maxSessions')] = 2
  t.throws(() => { native.fastPathIn(h, cfg, i32(PEERS), i32(4), i32(0), new Uint32Array(128), f64(2), new Uint8Array(64), f64(100), i32(4), i32(4)) }, { name: 'RangeError', message: /sess/ })
  t.throws(() => { native.fastPathIn(h, cfg, i32(PEERS), i32(4), i32(4), new Uint32Array(128), f64(2), new Uint8Array(64), f64(100), i32(4), i32(1)) }, { name: 'RangeError', message: /peerIds/ })
})

t.test('relayed: a client takes a lone relayed data message fast, and refuses one whose envelope names another peer', async t => {
  const r = rig(t)
  const a = ipv4(PEER_IP, OWN, 80)
  r.udpSend(0, relayEnvelope(7, sealData(r.recvKey, LOCAL_INDEX, 0, a)))
  t.same(await r.tunRead(1), [a])
  t.equal(r.counter('fastPathPackets'), 1, 'unwrapped and delivered in the addon')
  r.udpSend(0, relayEnvelope(8, sealData(r.recvKey, LOCAL_INDEX, 1, ipv4(PEER_IP, OWN, 80))))
  t.same(await r.tunRead(0), [], 'a session of peer 7 relayed as if from peer 8 is not delivered')
  t.equal(r.counter('dropSpoofedSource'), 1, 'the batch path counted it')
})

t.test('relay: a server forwards a lone envelope in the addon, rewritten to name its source; strangers go to the batch path', async t => {
  const r = rig(t, { mode: 'server' })
  r.control({ code: 'PEER', slot: 2, peerId: 8, tunnelIp: OTHER_IP, endpointIp: LOOPBACK, endpointPort: r.farPorts[1], relayVia: false, fd: -1 })
  const body = new Uint8Array(randomBytes(120))
  body[0] = 4 // a data message: only inner types 1-4 are relayed
  const env = (to: number): Uint8Array => {
    const e = new Uint8Array(8 + body.length)
    new DataView(e.buffer).setUint32(0, 5, true)
    new DataView(e.buffer).setUint32(4, to, true)
    e.set(body, 8)
    return e
  }
  r.udpSend(0, env(8))
  const [fwd] = await r.udpRead(1, 2000, 1)
  const want = env(7)
  t.same(fwd, want, 'peer 8 got the envelope from peer 7, body untouched')
  t.equal(r.counter('fastPathPackets'), 1)
  t.equal(r.counter('relayedPackets'), 1)
  t.equal(r.counter('relayedBytes'), want.length)
  await sleep(20)
  r.udpSend(2, env(8))
  t.same(await r.udpRead(0, 60, 1), [], 'from an endpoint that is no peer\'s: not forwarded')
  t.equal(r.counter('dropRelayUnknownSource'), 1, 'counted by the batch path')
  r.udpSend(0, env(9))
  r.udpSend(0, env(7))
  await sleep(60)
  t.equal(r.counter('dropRelayUnknownPeer'), 2, 'to nobody, or back to the sender: dropped by the batch path')
  t.equal(r.counter('fastPathPackets'), 1)
  // PROTOCOL §4.4: a Relay or a Reject inside an envelope is never forwarded, neither by the addon nor by the batch path.
  for (const type of [5, 6]) {
    const bad = env(8)
    bad[8] = type
    r.udpSend(0, bad)
  }
  t.same(await r.udpRead(1, 60, 1), [], 'an envelope holding a Relay or a Reject is not forwarded')
  t.equal(r.counter('dropRelayInnerType'), 2, 'the addon left both to the batch path, which counted them')
  t.equal(r.counter('fastPathPackets'), 1)
  // The peer leaves: its lookups go with it.
  r.control({ code: 'PEER_REMOVE', slot: 2 })
  await sleep(20)
  r.udpSend(0, env(8))
  t.same(await r.udpRead(0, 60, 1), [], 'a removed peer is not relayed to')
  t.equal(r.counter('dropRelayUnknownPeer'), 3)
})

t.test('relay with --client-isolation: neither the addon nor the batch path forwards an envelope between clients', async t => {
  const r = rig(t, { mode: 'server', clientIsolation: true })
  r.control({ code: 'PEER', slot: 2, peerId: 8, tunnelIp: OTHER_IP, endpointIp: LOOPBACK, endpointPort: r.farPorts[1], relayVia: false, fd: -1 })
  const e = new Uint8Array(8 + 120)
  new DataView(e.buffer).setUint32(0, 5, true)
  new DataView(e.buffer).setUint32(4, 8, true)
  e[8] = 4
  await sleep(20)
  r.udpSend(0, e)
  r.udpSend(0, e)
  t.same(await r.udpRead(1, 100, 1), [], 'peer 8 got nothing')
  t.equal(r.counter('dropIsolated'), 2, 'both dropped and counted by the batch path')
  t.equal(r.counter('relayedPackets'), 0)
  t.equal(r.counter('fastPathPackets'), 0, 'the addon left them alone (no peer-id lookups)')
})

t.test('--mss-clamp: the addon leaves TCP SYNs both ways to the batch path, which clamps them; other packets stay fast', async t => {
  const r = rig(t, { mssClamp: true }) // TUN MTU 1400: MSS at most 1360
  // 10.77.0.2:40000 → 10.77.0.1:22 SYN, MSS 1460 (checksum computed independently; see mss-clamp.test.ts).
  const synIn = Uint8Array.from(Buffer.from('4500003c000140004006261f0a4d00020a4d00019c4000160102030400000000a002faf053b00000020405b40402080a112233440000000001030307', 'hex'))
  const synOut = Uint8Array.from(synIn)
  synOut.set(synIn.subarray(16, 20), 12); synOut.set(synIn.subarray(12, 16), 16) // swapped: same checksum
  const mss = (p: Uint8Array): number => (p[42]! << 8) | p[43]!
  r.tunWrite(synOut)
  const [d] = await r.udpRead(1)
  t.equal(mss(openData(r.sendKey, d!).inner), 1360, 'outbound SYN clamped')
  await sleep(20)
  r.udpSend(0, sealData(r.recvKey, LOCAL_INDEX, 0, synIn))
  const [w] = await r.tunRead(1)
  t.equal(mss(w!), 1360, 'inbound SYN clamped')
  t.equal(r.counter('fastPathPackets'), 0, 'neither SYN took the fast path')
  t.equal(r.counter('mssClamped'), 2)
  await sleep(20)
  r.tunWrite(ipv4(OWN, PEER_IP, 56))
  await r.udpRead(1)
  await sleep(20)
  r.udpSend(0, sealData(r.recvKey, LOCAL_INDEX, 1, ipv4(PEER_IP, OWN, 56)))
  await r.tunRead(1)
  t.equal(r.counter('fastPathPackets'), 2, 'other packets still go fast both ways')
  t.same(r.failures, [])
})

t.test('fastPathLink: checks its arguments, and a delivery after the TUN poll stopped neither touches it nor fails', async t => {
  const { Outbound } = await import('../../src/dataplane/outbound.js')
  const { Inbound } = await import('../../src/dataplane/inbound.js')
  const [tunFd, tunPeer] = socketPairDgram()
  const udp = native.udpOpen('127.0.0.1', 0, 0)
  const far = native.udpOpen('127.0.0.1', 0, 0)
  const polls: ReturnType<typeof native.pollStart>[] = []
  t.teardown(() => {
    for (const p of polls) native.pollStop(p)
    for (const fd of [tunFd, tunPeer, udp.fd, far.fd]) native.close(fd)
  })
  const statsSab = createStatsBuffer(MAX_PEERS)
  const base: WorkerInit = {
    role: 'outbound', statsIndex: 0, mode: 'client', tunFd, tunVnet: true, udpFd: udp.fd, tunnelIp: OWN, mtu: 1400, maxPeers: MAX_PEERS,
    packetMem: new SharedArrayBuffer(BATCH * SLOT_SIZE), packetMemIn: null, stats: statsSab, ctrlRing: SpscRing.create(CTRL_RING_SLOTS, CTRL_SLOT_SIZE), fastPath: true
  }
  const out = new Outbound(base, native, () => {})
  const inb = new Inbound({ ...base, role: 'inbound', statsIndex: 1, packetMem: new SharedArrayBuffer(RX_BUFS * RX_BUF_SIZE) }, native, () => {})
  const peer: ToWorker = { code: 'PEER', slot: 1, peerId: 7, tunnelIp: PEER_IP, endpointIp: LOOPBACK, endpointPort: far.port, relayVia: false, fd: -1 }
  out.upsertPeer(peer as Extract<ToWorker, { code: 'PEER' }>)
  inb.handle(peer)
  const recvKey = new Uint8Array(randomBytes(32))
  inb.handle({ code: 'RECV_KEY', slot: 1, localIndex: LOCAL_INDEX, key: recvKey })
  let outCalls = 0
  const ho = native.pollStart(tunFd, () => { outCalls++; out.onReadable() })
  const hi = native.pollStart(udp.fd, () => { inb.onReadable() })
  polls.push(ho, hi)
  t.throws(() => { native.fastPathLink(hi, ho) }, { name: 'TypeError', message: /fastPathIn/ }, 'no fast paths attached yet')
  native.fastPathOut(ho, ...out.fastPathArgs()!)
  native.fastPathIn(hi, ...inb.fastPathArgs()!)
  t.throws(() => { native.fastPathLink(ho, hi) }, { name: 'TypeError' }, 'the wrong way round')
  native.fastPathLink(hi, ho)
  t.throws(() => { native.fastPathLink(hi, ho) }, { name: 'RangeError', message: /linked already/ })

  native.pollStop(ho)
  const inner = ipv4(PEER_IP, OWN, 48)
  const d = sealData(recvKey, LOCAL_INDEX, 0, inner)
  t.equal(native.udpSendTo(far.fd, d, LOOPBACK, udp.port), d.length)
  const mem = new Uint8Array(4096)
  let n = 0
  const lens = new Int32Array(1)
  for (let i = 0; i < 200 && n === 0; i++) {
    await sleep(5)
    n = native.tunReadBatch(tunPeer, mem, new Int32Array([0]), lens, 1, 4096)
  }
  t.equal(n, 1, 'delivered by the inbound fast path')
  t.same(mem.subarray(VNET, lens[0]), inner)
  t.equal(outCalls, 0, 'the stopped TUN poll was not serviced')
  t.equal(new StatsReader(statsSab, MAX_PEERS).counters().fastPathPackets, 1)
})
