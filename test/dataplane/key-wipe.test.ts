/**
 * Secrets leave the dataplane with their sessions: a send key's slot
 * (outbound) and a receive key's slot (inbound) read all zeros once the
 * control plane removes them (SEND_KEY_CLEAR, PEER_REMOVE, DROP_INDEX, a
 * key retired at REJECT_AFTER_MESSAGES), and the addon's cached copy of the
 * last key it used is wiped too (aeadForget; its state read through the
 * test build's aeadCachedKeys). The key tables are the same memory the
 * native fast path reads, so zero here is zero there.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { FakeIo } from '../helpers/fake-io.js'
import { loadTestingNative } from '../helpers/native-testing.js'
import { openTunVnet, openUdp } from '../../src/dataplane/native.js'
import { Outbound } from '../../src/dataplane/outbound.js'
import { Inbound } from '../../src/dataplane/inbound.js'
import { createStatsBuffer } from '../../src/dataplane/stats.js'
import { SpscRing } from '../../src/dataplane/ring.js'
import { BATCH, CTRL_RING_SLOTS, CTRL_SLOT_SIZE, RX_BUF_SIZE, RX_BUFS, SLOT_SIZE, type ToWorker, type WorkerInit } from '../../src/workers/layout.js'
import { KEY_LEN } from '../../src/wire/constants.js'

const MAX_PEERS = 4
const OWN = 0x0a000002
const PEER: Extract<ToWorker, { code: 'PEER' }> = { code: 'PEER', slot: 1, peerId: 7, tunnelIp: 0x0a000003, endpointIp: 0x7f000001, endpointPort: 40000, relayVia: false, fd: -1 }

function pipelines (): { io: FakeIo, out: Outbound, inb: Inbound, sendKeys: Uint8Array, recvKeys: Uint8Array } {
  const io = new FakeIo()
  const tunFd = openTunVnet(io, 'lwt0', true, true).fd
  const udp = openUdp(io, '0.0.0.0', 0, 1 << 20)
  const base: WorkerInit = {
    role: 'outbound', statsIndex: 0, mode: 'client', tunFd, tunVnet: true, udpFd: udp.fd, tunnelIp: OWN, mtu: 1400, maxPeers: MAX_PEERS,
    packetMem: new SharedArrayBuffer(BATCH * SLOT_SIZE), packetMemIn: null, stats: createStatsBuffer(MAX_PEERS), ctrlRing: SpscRing.create(CTRL_RING_SLOTS, CTRL_SLOT_SIZE), fastPath: true
  }
  const out = new Outbound(base, io, () => {})
  const inb = new Inbound({ ...base, role: 'inbound', statsIndex: 1, packetMem: new SharedArrayBuffer(RX_BUFS * RX_BUF_SIZE) }, io, () => {})
  out.upsertPeer(PEER)
  inb.handle(PEER)
  return { io, out, inb, sendKeys: out.fastPathArgs()![5], recvKeys: inb.fastPathArgs()![6] }
}

const key = (): Uint8Array => new Uint8Array(randomBytes(KEY_LEN))
const isZero = (u: Uint8Array): boolean => u.every(b => b === 0)
const has = (table: Uint8Array, k: Uint8Array): boolean => Buffer.from(table).includes(Buffer.from(k))

t.test('outbound: the send key slot is zero after SEND_KEY_CLEAR and after PEER_REMOVE', async t => {
  const p = pipelines()
  const k1 = key()
  p.out.setSendKey(1, k1, 5)
  t.ok(has(p.sendKeys, k1), 'installed in the shared key table')
  const forgets = p.io.aeadForgets
  p.out.clearSendKey(1)
  t.ok(isZero(p.sendKeys), 'zero after SEND_KEY_CLEAR')
  t.equal(p.io.aeadForgets, forgets + 1, 'and the addon told to forget its cached copy')
  const k2 = key()
  p.out.setSendKey(1, k2, 6)
  t.ok(has(p.sendKeys, k2))
  p.out.removePeer(1)
  t.ok(isZero(p.sendKeys), 'zero after PEER_REMOVE')
})

t.test('inbound: the receive key slot is zero after DROP_INDEX, a replacing RECV_KEY, and PEER_REMOVE', async t => {
  const p = pipelines()
  const k1 = key()
  p.inb.handle({ code: 'RECV_KEY', slot: 1, localIndex: 11, key: k1 })
  t.ok(has(p.recvKeys, k1))
  const forgets = p.io.aeadForgets
  p.inb.handle({ code: 'DROP_INDEX', localIndex: 11 })
  t.ok(isZero(p.recvKeys), 'zero after DROP_INDEX')
  t.equal(p.io.aeadForgets, forgets + 1, 'and the addon told to forget its cached copy')
  const k2 = key()
  const k3 = key()
  p.inb.handle({ code: 'RECV_KEY', slot: 1, localIndex: 12, key: k2 })
  p.inb.handle({ code: 'RECV_KEY', slot: 1, localIndex: 12, key: k3 })
  t.notOk(has(p.recvKeys, k2), 'a key replaced under the same index is gone')
  p.inb.handle({ code: 'PEER_REMOVE', slot: 1 })
  t.ok(isZero(p.recvKeys), 'zero after PEER_REMOVE')
})

t.test('the addon: aeadForget wipes this thread\'s cached seal and open keys (OpenSSL path, > 192 bytes)', async t => {
  const n = loadTestingNative()
  const k = key()
  const mem = new Uint8Array(16 + 400 + 16)
  mem[0] = 4
  const desc = new Int32Array([0, 16, 400, 0])
  n.aeadSealBatch(mem, desc, 1, k)
  t.ok(Buffer.from(n.aeadCachedKeys().subarray(0, KEY_LEN)).equals(Buffer.from(k)), 'the seal context caches the key')
  const results = new Int32Array(1)
  t.equal(n.aeadOpenBatch(mem, new Int32Array([0, 16, 416, 0]), 1, k, results), 1)
  t.ok(Buffer.from(n.aeadCachedKeys().subarray(KEY_LEN)).equals(Buffer.from(k)), 'so does the open context')
  n.aeadForget()
  t.ok(isZero(n.aeadCachedKeys()), 'both wiped')
  n.aeadSealBatch(mem, desc, 1, k)
  t.equal(n.aeadOpenBatch(mem, new Int32Array([0, 16, 416, 0]), 1, k, results), 1, 'and the next packet works as before')
})
