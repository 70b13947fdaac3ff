/**
 * The inbound pipeline's gate for HandshakeInits on a server
 * (src/dataplane/inbound.ts #gate, src/dataplane/init-guard.ts) with real
 * loopback UDP: junk and wrong-key inits are dropped and counted before the
 * control ring; a member's init reaches the ring; a flood from one source is
 * cut to its bucket; under load (ring 1/8 full) the sender gets a 64-byte
 * CookieReply and its resend with mac2 reaches the ring.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { loadNative } from '../../src/dataplane/native.js'
import { Inbound } from '../../src/dataplane/inbound.js'
import { createStatsBuffer, StatsReader } from '../../src/dataplane/stats.js'
import { SpscRing } from '../../src/dataplane/ring.js'
import { CookieGenerator, macKeys } from '../../src/crypto/cookie.js'
import { createInit, generateStaticKey } from '../../src/crypto/noise.js'
import { LOAD_RING_OCCUPANCY, SOURCE_BURST } from '../../src/dataplane/init-guard.js'
import { CTRL_RING_SLOTS, CTRL_SLOT_SIZE, META_KIND, META_LEN, META_WORDS, RX_BUF_SIZE, RX_BUFS, type CounterName } from '../../src/workers/layout.js'

const native = loadNative()
const LOOPBACK = 0x7f000001
const MAX_PEERS = 4

t.test('server inbound: mac1 drops, per-source bucket, cookie under load', async t => {
  const psk = new Uint8Array(randomBytes(32))
  const keys = macKeys(psk)
  const udp = native.udpOpen('127.0.0.1', 0, 0)
  const far = native.udpOpen('127.0.0.1', 0, 0)
  t.teardown(() => { native.close(udp.fd); native.close(far.fd) })
  const statsSab = createStatsBuffer(MAX_PEERS)
  const stats = new StatsReader(statsSab, MAX_PEERS)
  const ringSab = SpscRing.create(CTRL_RING_SLOTS, CTRL_SLOT_SIZE)
  const ring = new SpscRing(ringSab, CTRL_RING_SLOTS, CTRL_SLOT_SIZE)
  const inb = new Inbound({
    role: 'inbound', statsIndex: 1, mode: 'server', tunFd: -1, tunVnet: false, udpFd: udp.fd, tunnelIp: 0x0a000001, mtu: 1400, maxPeers: MAX_PEERS,
    packetMem: new SharedArrayBuffer(RX_BUFS * RX_BUF_SIZE), packetMemIn: null, stats: statsSab, ctrlRing: ringSab, fastPath: false, macKeys: keys
  }, native, () => {})
  const c = (k: CounterName): number => stats.counters()[k] ?? 0
  const send = (b: Uint8Array): void => { t.equal(native.udpSendTo(far.fd, b, LOOPBACK, udp.port), b.length) }
  const settle = async (): Promise<void> => { await new Promise(resolve => setTimeout(resolve, 20)); inb.onReadable() }
  const gen = new CookieGenerator(keys)
  const noise = createInit(psk, generateStaticKey(), 42, new Uint8Array(33)).message

  // Junk with the init type byte, and a well-formed init under another network key.
  for (let i = 0; i < 50; i++) { const b = new Uint8Array(randomBytes(150)); b[0] = 1; send(b) }
  send(new CookieGenerator(macKeys(new Uint8Array(randomBytes(32)))).addMacs(noise, 0))
  await settle()
  t.equal(c('dropInitMac1'), 50, 'junk and the wrong key dropped in the worker')
  t.equal(ring.available(), 1, 'but one a second per source reaches the main thread (its wrong-key Reject and log line)')
  ring.release(1)

  // A member: through. A flood from the same source: cut to its burst.
  const member = gen.addMacs(noise, 0)
  for (let i = 0; i < 100; i++) send(member)
  await settle()
  t.equal(ring.available(), SOURCE_BURST, `the first ${SOURCE_BURST} reached the ring`)
  t.equal(c('dropInitRateSource'), 100 - SOURCE_BURST)
  const m = ring.slotAt(0) * META_WORDS
  t.equal(ring.meta[m + META_LEN], member.length, 'the whole init, trailer included, is handed over')
  t.equal(ring.meta[m + META_KIND], 1, 'kind PACKET')
  ring.release(ring.available())

  // Under load: fill the ring to 1/8 from the consumer's side (as a slow main thread would leave it).
  const producer = ring
  for (let k = 0; k < LOAD_RING_OCCUPANCY; k++) producer.reserve(k)
  producer.publish(LOAD_RING_OCCUPANCY)
  // Another source address (127.0.0.2): 127.0.0.1's bucket was spent by the flood above.
  const other = native.udpOpen('127.0.0.2', 0, 0)
  t.teardown(() => { native.close(other.fd) })
  const gen2 = new CookieGenerator(keys)
  const first = gen2.addMacs(noise, 0)
  t.equal(native.udpSendTo(other.fd, first, LOOPBACK, udp.port), first.length)
  await settle()
  t.equal(c('cookieReplies'), 1, 'a cookie reply instead of the ring')
  t.equal(ring.available(), LOAD_RING_OCCUPANCY, 'nothing added to the ring')
  const rx = { mem: new Uint8Array(2048), offsets: Int32Array.of(0), lens: new Int32Array(1), addrs: new Uint32Array(2) }
  t.equal(native.udpRecvBatch(other.fd, rx.mem, rx.offsets, rx.lens, rx.addrs, 1, 2048), 1)
  t.equal(rx.lens[0], 64, 'the reply is 64 bytes (the init was ' + first.length + ')')
  t.ok(gen2.consumeReply(rx.mem.slice(0, 64), 0), 'the initiator opens it')
  const second = gen2.addMacs(noise, 0)
  t.equal(native.udpSendTo(other.fd, second, LOOPBACK, udp.port), second.length)
  await settle()
  t.equal(ring.available(), LOAD_RING_OCCUPANCY + 1, 'the resend with mac2 reached the ring')
  t.equal(c('cookieReplies'), 1)
})
