// The real pipelines (dataplane/pipelines.ts runPipelines → outbound.ts,
// inbound.ts) over the in-memory twin of the addon's I/O
// (helpers/fake-io.ts), without root: WorkerInit and shared memory are built
// as dataplane.ts builds them, control events go in as ToWorker messages, and
// the far peer is this test, sealing and opening with @noble/ciphers. Drops
// are read from the stats SharedArrayBuffer, per reason.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { ipv4, openData, relayEnvelope, sealData, seqOf, seqPayload } from '../helpers/packets.js'
import { CLIENT_IP, LOCAL_INDEX, MAX_PEERS, MemPort, OTHER_EP, OTHER_IP, REMOTE_INDEX, SERVER_EP, SERVER_IP, nonZero, rig, withServer } from '../helpers/pipeline-rig.js'
import { FakeIo } from '../helpers/fake-io.js'
import { openTunVnet, openUdp } from '../../src/dataplane/native.js'
import { runPipelines } from '../../src/dataplane/pipelines.js'
import { QUEUE_MAX } from '../../src/dataplane/peers.js'
import { SpscRing } from '../../src/dataplane/ring.js'
import { createStatsBuffer } from '../../src/dataplane/stats.js'
import {
  BATCH, CTRL_KIND_PACKET, CTRL_KIND_UNKNOWN_INDEX, CTRL_RING_SLOTS, CTRL_SLOT_SIZE, META_KIND, META_LEN, META_WORDS,
  RX_BUF_SIZE, RX_BUFS, SLOT_SIZE, type WorkerInit
} from '../../src/workers/layout.js'

for (const placement of ['fused', 'split'] as const) {
  t.test(`${placement}: READY from each thread, a poll per fd, the fast path attached but never taken; STOP stops every poll`, async t => {
    const r = rig(t, 'client', placement)
    t.same(r.messages().map((m) => m.code), placement === 'fused' ? ['READY'] : ['READY', 'READY'])
    t.equal(r.io.activePolls, 2, 'the TUN fd and the UDP fd')
    t.equal(r.io.fastPathAttached, 2, 'fastPathOut and fastPathIn (tunVnet, fastPath on)')
    withServer(r)
    r.tun.inject(ipv4(CLIENT_IP, SERVER_IP))
    await r.io.settle()
    t.equal(r.counters().fastPathPackets, 0, 'the packet went through the TypeScript pipeline')
    t.equal(r.counters().udpTxPackets, 1)
    r.stop()
    t.equal(r.io.activePolls, 0, 'no poll left')
    t.same(r.messages().map((m) => m.code).filter((c) => c === 'STOPPED').length, placement === 'fused' ? 1 : 2)
    t.ok([...r.ports.values()].every((p) => p.closed), 'ports closed')
  })

  t.test(`${placement}: a packet from the TUN is framed, sealed and sent to the peer's endpoint`, async t => {
    const r = rig(t, 'client', placement)
    const { sendKey } = withServer(r)
    const pkt = ipv4(CLIENT_IP, SERVER_IP, randomBytes(100))
    r.tun.inject(pkt)
    await r.io.settle()
    const sent = r.udp.takeSent()
    t.equal(sent.length, 1)
    t.same({ ip: sent[0]!.ip, port: sent[0]!.port }, SERVER_EP, "to the peer's endpoint")
    t.equal(sent[0]!.bytes.length, 16 + pkt.length + 16, 'header + packet + tag')
    const m = openData(sendKey, sent[0]!.bytes)
    t.same({ type: m.type, index: m.index, counter: m.counter }, { type: 4, index: REMOTE_INDEX, counter: 0 })
    t.same(m.inner, pkt, 'the packet, intact')
    t.same(nonZero(r.counters()), { tunRxPackets: 1, tunRxBytes: pkt.length, udpTxPackets: 1, udpTxBytes: sent[0]!.bytes.length })
    t.match(r.stats.peer(1), { txPackets: 1, txBytes: sent[0]!.bytes.length })
    r.tun.inject(pkt)
    await r.io.settle()
    t.equal(openData(sendKey, r.udp.takeSent()[0]!.bytes).counter, 1, 'the next packet: counter 1')
  })

  t.test(`${placement}: a sealed datagram from the peer is opened and written to the TUN`, async t => {
    const r = rig(t, 'client', placement)
    const { recvKey } = withServer(r)
    const pkt = ipv4(SERVER_IP, CLIENT_IP, randomBytes(300))
    r.udp.inject(sealData(recvKey, LOCAL_INDEX, 0, pkt), SERVER_EP.ip, SERVER_EP.port)
    await r.io.settle()
    t.same(r.tun.take(), [pkt])
    const c = r.counters()
    t.match(c, { udpRxPackets: 1, tunTxPackets: 1, tunTxBytes: pkt.length })
    t.match(r.stats.peer(1), { rxPackets: 1, rxBytes: pkt.length })
    t.ok(r.stats.peer(1).lastRxMs > 0, 'last receive time recorded')
    t.equal(Object.entries(c).filter(([k, v]) => k.startsWith('drop') && v !== 0).length, 0, 'no drops')
  })
}

t.test('bad datagrams are dropped and counted by reason; good ones around them still arrive', async t => {
  const r = rig(t, 'client')
  const { recvKey } = withServer(r)
  const good = (n: number): Uint8Array => ipv4(SERVER_IP, CLIENT_IP, seqPayload(n))
  const from = (d: Uint8Array): void => { r.udp.inject(d, SERVER_EP.ip, SERVER_EP.port) }
  from(sealData(recvKey, LOCAL_INDEX, 0, good(0)))
  const forged = sealData(recvKey, LOCAL_INDEX, 1, good(1))
  forged[forged.length - 1]! ^= 1 // tag
  from(forged)
  from(sealData(new Uint8Array(32).fill(7), LOCAL_INDEX, 2, good(2))) // another key
  from(sealData(recvKey, LOCAL_INDEX, 0, good(0))) // replay of counter 0
  from(sealData(recvKey, LOCAL_INDEX, 3, ipv4(OTHER_IP, CLIENT_IP, seqPayload(3)))) // inner source is not the peer's address
  from(sealData(recvKey, LOCAL_INDEX, 4, ipv4(SERVER_IP, OTHER_IP, seqPayload(4)))) // not for us
  from(sealData(recvKey, 0x0badbeef, 5, good(5))) // no session has this index
  from(Uint8Array.of(4, 0, 0, 0, 1, 2)) // too short
  from(Uint8Array.of(99, 1, 2, 3, 4, 5, 6, 7)) // unknown type
  from(sealData(recvKey, LOCAL_INDEX, 6, new Uint8Array(30).fill(0x60))) // version 6 but shorter than an IPv6 header: not IP
  from(sealData(recvKey, LOCAL_INDEX, 7, good(7)))
  await r.io.settle()
  t.same(r.tun.take().map(seqOf), [0, 7], 'only the genuine packets reach the TUN, in order')
  const c = r.counters()
  t.match(c, {
    udpRxPackets: 11,
    dropAuthFailed: 2,
    dropReplay: 1,
    dropSpoofedSource: 1,
    dropNotForUs: 1,
    dropUnknownIndex: 1,
    dropMalformed: 1,
    dropUnknownType: 1,
    dropNotIp: 1,
    tunTxPackets: 2
  })
  // The unknown index goes to the control plane (it may be a restarted server): its header, in the control ring.
  t.equal(r.ring.available(), 1)
  const slot = r.ring.slotAt(0)
  t.equal(r.ring.meta[slot * META_WORDS + META_KIND], CTRL_KIND_UNKNOWN_INDEX)
  t.equal(r.ring.meta[slot * META_WORDS + META_LEN], 16)
  t.ok(r.messages().some((m) => m.code === 'CTRL'), 'the main thread was told')
})

t.test('a relayed datagram whose envelope names another peer than the session\'s: dropped as spoofed', async t => {
  const r = rig(t, 'client')
  const recvKey = new Uint8Array(randomBytes(32))
  r.post({ code: 'PEER', slot: 2, peerId: 42, tunnelIp: OTHER_IP, endpointIp: SERVER_EP.ip, endpointPort: SERVER_EP.port, relayVia: true, fd: -1 })
  r.post({ code: 'RECV_KEY', slot: 2, localIndex: 77, key: recvKey })
  const pkt = (n: number): Uint8Array => ipv4(OTHER_IP, CLIENT_IP, seqPayload(n))
  r.udp.inject(relayEnvelope(43, sealData(recvKey, 77, 0, pkt(0))), SERVER_EP.ip, SERVER_EP.port)
  r.udp.inject(relayEnvelope(42, sealData(recvKey, 77, 1, pkt(1))), SERVER_EP.ip, SERVER_EP.port)
  await r.io.settle()
  t.same(r.tun.take().map(seqOf), [1])
  t.match(r.counters(), { dropSpoofedSource: 1, tunTxPackets: 1 })
})

t.test('handshake and control datagrams go to the control ring, copied', async t => {
  const r = rig(t, 'client')
  const init = new Uint8Array(120).fill(1)
  init[0] = 1
  r.udp.inject(init, SERVER_EP.ip, SERVER_EP.port)
  await r.io.settle()
  t.equal(r.ring.available(), 1)
  const slot = r.ring.slotAt(0)
  t.equal(r.ring.meta[slot * META_WORDS + META_KIND], CTRL_KIND_PACKET)
  t.same(r.ring.data.slice(slot * CTRL_SLOT_SIZE, slot * CTRL_SLOT_SIZE + 120), init)
  t.equal(r.counters().controlPackets, 1)
})

t.test('packets to an unknown destination count as no route; neither IPv4 nor IPv6 as not IP', async t => {
  const r = rig(t, 'client')
  withServer(r)
  r.tun.inject(ipv4(CLIENT_IP, 0x0a4d0063)) // 10.77.0.99: nobody
  r.tun.inject(ipv4(CLIENT_IP, 0x08080808))
  r.tun.inject(new Uint8Array(40).fill(0x60)) // IPv6 to 6060:6060::: nobody
  r.tun.inject(new Uint8Array(40).fill(0x50)) // version 5
  r.tun.inject(new Uint8Array(39).fill(0x60)) // IPv6, shorter than its header
  r.tun.inject(new Uint8Array(10).fill(0x45)) // too short
  await r.io.settle()
  t.same(r.udp.takeSent(), [], 'nothing sent')
  t.match(r.counters(), { tunRxPackets: 6, dropNoRoute: 3, dropNotIp: 3, udpTxPackets: 0 })
})

t.test('per-peer order is kept across batches, in both directions', async t => {
  const r = rig(t, 'client')
  const { sendKey, recvKey } = withServer(r)
  const N = 3 * BATCH + 17
  for (let i = 0; i < N; i++) r.tun.inject(ipv4(CLIENT_IP, SERVER_IP, seqPayload(i, 16 + (i % 50))))
  for (let i = 0; i < N; i++) r.udp.inject(sealData(recvKey, LOCAL_INDEX, i, ipv4(SERVER_IP, CLIENT_IP, seqPayload(i, 16 + (i % 70)))), SERVER_EP.ip, SERVER_EP.port)
  await r.io.settle()
  const opened = r.udp.takeSent().map((d) => openData(sendKey, d.bytes))
  t.same(opened.map((m) => m.counter), Array.from({ length: N }, (_, i) => i), 'counters 0..N-1 in send order')
  t.same(opened.map((m) => seqOf(m.inner)), Array.from({ length: N }, (_, i) => i), 'packets in TUN read order')
  t.same(r.tun.take().map(seqOf), Array.from({ length: N }, (_, i) => i), 'delivered in arrival order')
  t.match(r.counters(), { dropReplay: 0, dropAuthFailed: 0 })
})

t.test('a run of equal-size datagrams arrives coalesced (UDP GRO) and is split back in order', async t => {
  const r = rig(t, 'client')
  const { recvKey } = withServer(r)
  const N = 150
  for (let i = 0; i < N; i++) r.udp.inject(sealData(recvKey, LOCAL_INDEX, i, ipv4(SERVER_IP, CLIENT_IP, seqPayload(i, 1000))), SERVER_EP.ip, SERVER_EP.port)
  await r.io.settle()
  t.same(r.tun.take().map(seqOf), Array.from({ length: N }, (_, i) => i))
  const c = r.counters()
  t.ok(c.udpRxCoalesced >= 3, `coalesced datagrams counted (${c.udpRxCoalesced}: 150 segments of 1052 bytes, at most 62 per 64 KiB)`)
  t.equal(c.udpRxPackets, N)
})

t.test(`no session yet: packets are queued (at most QUEUE_MAX = ${QUEUE_MAX}, the oldest dropped), one NEED_SESSION, flushed in order by SEND_KEY`, async t => {
  const r = rig(t, 'client')
  r.post({ code: 'PEER', slot: 1, peerId: 0, tunnelIp: SERVER_IP, endpointIp: SERVER_EP.ip, endpointPort: SERVER_EP.port, relayVia: false, fd: -1 })
  const extra = 5
  for (let i = 0; i < QUEUE_MAX + extra; i++) r.tun.inject(ipv4(CLIENT_IP, SERVER_IP, seqPayload(i)))
  await r.io.settle()
  t.same(r.udp.takeSent(), [], 'nothing sent without a key')
  t.same(r.messages().filter((m) => m.code === 'NEED_SESSION'), [{ code: 'NEED_SESSION', slot: 1 }], 'asked once')
  t.match(r.counters(), { dropQueueFull: extra })
  const key = new Uint8Array(randomBytes(32))
  r.post({ code: 'SEND_KEY', slot: 1, key, remoteIndex: REMOTE_INDEX })
  const sent = r.udp.takeSent().map((d) => openData(key, d.bytes))
  t.same(sent.map((m) => seqOf(m.inner)), Array.from({ length: QUEUE_MAX }, (_, i) => i + extra), 'the newest QUEUE_MAX, in order')
  t.same(sent.map((m) => m.counter), Array.from({ length: QUEUE_MAX }, (_, i) => i))
})

t.test('message-count limits (REKEY_AFTER_MESSAGES = 3, REJECT_AFTER_MESSAGES = 5 here): SEND_LIMIT once at 3, the key retired at 5, its packets wait for the next key', async t => {
  for (const placement of ['fused', 'split'] as const) {
    t.test(placement, async t => {
      const r = rig(t, 'client', placement, CLIENT_IP, { rekeyAfterMessages: 3, rejectAfterMessages: 5 })
      const { sendKey } = withServer(r)
      for (let i = 0; i < 7; i++) r.tun.inject(ipv4(CLIENT_IP, SERVER_IP, seqPayload(i)))
      await r.io.settle()
      const sent = r.udp.takeSent().map((d) => openData(sendKey, d.bytes))
      t.same(sent.map((m) => m.counter), [0, 1, 2, 3, 4], 'counters 0..4 under the key, none at or past 5')
      t.same(sent.map((m) => seqOf(m.inner)), [0, 1, 2, 3, 4])
      t.same(r.messages().filter((m) => m.code === 'SEND_LIMIT'), [{ code: 'SEND_LIMIT', slot: 1 }], 'a rekey asked once, at counter 3')
      t.same(r.messages().filter((m) => m.code === 'NEED_SESSION'), [{ code: 'NEED_SESSION', slot: 1 }], 'then a session asked for')
      t.match(r.counters(), { rekeyOnMessages: 1, sendKeyExhausted: 1, dropQueueFull: 0 })
      const next = new Uint8Array(randomBytes(32))
      r.post({ code: 'SEND_KEY', slot: 1, key: next, remoteIndex: REMOTE_INDEX + 1 })
      const flushed = r.udp.takeSent().map((d) => openData(next, d.bytes))
      t.same(flushed.map((m) => [seqOf(m.inner), m.counter, m.index]), [[5, 0, REMOTE_INDEX + 1], [6, 1, REMOTE_INDEX + 1]], 'the waiting packets leave under the new key, from counter 0')
    })
  }
})

t.test('SEND_KEY_CLEAR (the session expired): nothing more is sent with the key; packets queue and a session is asked for', async t => {
  const r = rig(t, 'client')
  const { sendKey } = withServer(r)
  r.tun.inject(ipv4(CLIENT_IP, SERVER_IP, seqPayload(0)))
  await r.io.settle()
  t.equal(r.udp.takeSent().length, 1)
  r.post({ code: 'SEND_KEY_CLEAR', slot: 1 })
  r.tun.inject(ipv4(CLIENT_IP, SERVER_IP, seqPayload(1)))
  await r.io.settle()
  t.same(r.udp.takeSent(), [], 'the old key sends nothing')
  t.same(r.messages().filter((m) => m.code === 'NEED_SESSION'), [{ code: 'NEED_SESSION', slot: 1 }])
  const next = new Uint8Array(randomBytes(32))
  r.post({ code: 'SEND_KEY', slot: 1, key: next, remoteIndex: REMOTE_INDEX })
  t.same(r.udp.takeSent().map((d) => seqOf(openData(next, d.bytes).inner)), [1], 'sent on the new session')
  t.not(Buffer.from(next).toString('hex'), Buffer.from(sendKey).toString('hex'))
})

t.test('PEER_REMOVE: the peer\'s packets have no route and its sessions no longer open', async t => {
  const r = rig(t, 'client')
  const { recvKey } = withServer(r)
  r.post({ code: 'PEER_REMOVE', slot: 1 })
  r.tun.inject(ipv4(CLIENT_IP, SERVER_IP))
  r.udp.inject(sealData(recvKey, LOCAL_INDEX, 0, ipv4(SERVER_IP, CLIENT_IP)), SERVER_EP.ip, SERVER_EP.port)
  await r.io.settle()
  t.same(r.udp.takeSent(), [])
  t.same(r.tun.take(), [])
  t.match(r.counters(), { dropNoRoute: 1, dropUnknownIndex: 1 })
})

t.test('server: relay envelopes are forwarded unopened with the source\'s peer id; unknown sources counted', async t => {
  const r = rig(t, 'server')
  const A = { ip: 0x64400201, port: 40001 }
  r.post({ code: 'PEER', slot: 1, peerId: 1, tunnelIp: CLIENT_IP, endpointIp: A.ip, endpointPort: A.port, relayVia: false, fd: -1 })
  r.post({ code: 'PEER', slot: 2, peerId: 2, tunnelIp: OTHER_IP, endpointIp: OTHER_EP.ip, endpointPort: OTHER_EP.port, relayVia: false, fd: -1 })
  const inner = randomBytes(80)
  inner[0] = 4 // a data message (what the server forwards must be of type 1-4)
  r.udp.inject(relayEnvelope(2, inner), A.ip, A.port)
  r.udp.inject(relayEnvelope(9, inner), A.ip, A.port) // no such peer
  r.udp.inject(relayEnvelope(2, inner), 0x01020304, 5) // not a registered client
  await r.io.settle()
  const sent = r.udp.takeSent()
  t.equal(sent.length, 1)
  t.same({ ip: sent[0]!.ip, port: sent[0]!.port }, OTHER_EP)
  t.same(sent[0]!.bytes, relayEnvelope(1, inner), 'envelope now names the source (peer 1); the message is untouched')
  t.match(r.counters(), { relayedPackets: 1, dropRelayUnknownPeer: 1, dropRelayUnknownSource: 1 })
})

t.test('server with --client-isolation: an envelope between two clients is dropped and counted, never forwarded', async t => {
  const r = rig(t, 'server', 'fused', SERVER_IP, { clientIsolation: true })
  const A = { ip: 0x64400201, port: 40001 }
  r.post({ code: 'PEER', slot: 1, peerId: 1, tunnelIp: CLIENT_IP, endpointIp: A.ip, endpointPort: A.port, relayVia: false, fd: -1 })
  r.post({ code: 'PEER', slot: 2, peerId: 2, tunnelIp: OTHER_IP, endpointIp: OTHER_EP.ip, endpointPort: OTHER_EP.port, relayVia: false, fd: -1 })
  const inner = randomBytes(80)
  inner[0] = 4
  r.udp.inject(relayEnvelope(2, inner), A.ip, A.port)
  r.udp.inject(relayEnvelope(1, inner), OTHER_EP.ip, OTHER_EP.port)
  await r.io.settle()
  t.same(r.udp.takeSent(), [], 'nothing forwarded')
  t.match(r.counters(), { relayedPackets: 0, dropIsolated: 2 })
})

t.test('server: an envelope carrying a Relay (5) or a Reject (6) is never forwarded (PROTOCOL §4.4), types 1-4 and 8 (FEC parity) are', async t => {
  const r = rig(t, 'server')
  const A = { ip: 0x64400201, port: 40001 }
  r.post({ code: 'PEER', slot: 1, peerId: 1, tunnelIp: CLIENT_IP, endpointIp: A.ip, endpointPort: A.port, relayVia: false, fd: -1 })
  r.post({ code: 'PEER', slot: 2, peerId: 2, tunnelIp: OTHER_IP, endpointIp: OTHER_EP.ip, endpointPort: OTHER_EP.port, relayVia: false, fd: -1 })
  for (const type of [5, 6, 0, 7, 1, 2, 3, 4, 8]) {
    const inner = new Uint8Array(randomBytes(64))
    inner[0] = type
    r.udp.inject(relayEnvelope(2, inner), A.ip, A.port)
  }
  await r.io.settle()
  t.same(r.udp.takeSent().map((d) => d.bytes[8]), [1, 2, 3, 4, 8], 'only inner types 1-4 and 8 left, in order')
  t.match(r.counters(), { relayedPackets: 5, dropRelayInnerType: 4 })
})

t.test('client: a relayed Relay or Reject from the server is dropped and counted, never reaches the control plane', async t => {
  const r = rig(t, 'client')
  const reject = new Uint8Array([6, 1, 0, 0, 1, 2, 3, 4]) // Reject(AUTH_FAILED), as a member could have the server relay it
  const nested = relayEnvelope(9, new Uint8Array(40).fill(4))
  r.udp.inject(relayEnvelope(42, new Uint8Array([...reject, ...new Uint8Array(8)])), SERVER_EP.ip, SERVER_EP.port)
  r.udp.inject(relayEnvelope(42, nested), SERVER_EP.ip, SERVER_EP.port)
  const ctl = new Uint8Array(64).fill(3)
  ctl[1] = ctl[2] = ctl[3] = 0
  r.udp.inject(relayEnvelope(42, ctl), SERVER_EP.ip, SERVER_EP.port)
  await r.io.settle()
  t.equal(r.ring.available(), 1, 'only the relayed control message reached the control ring')
  t.match(r.counters(), { dropRelayInnerType: 2, controlPackets: 1 })
})

t.test('server: an authenticated packet from a new address is reported (ENDPOINT, at most once a second per address) and does not move the peer: the main thread checks the address first and re-posts PEER', async t => {
  const r = rig(t, 'server')
  const A = { ip: 0x64400201, port: 40001 }
  const moved = { ip: 0x64400201, port: 41111 }
  const sendKey = new Uint8Array(randomBytes(32))
  const recvKey = new Uint8Array(randomBytes(32))
  r.post({ code: 'PEER', slot: 1, peerId: 1, tunnelIp: CLIENT_IP, endpointIp: A.ip, endpointPort: A.port, relayVia: false, fd: -1 })
  r.post({ code: 'SEND_KEY', slot: 1, key: sendKey, remoteIndex: 5 })
  r.post({ code: 'RECV_KEY', slot: 1, localIndex: 6, key: recvKey })
  r.udp.inject(sealData(recvKey, 6, 0, ipv4(CLIENT_IP, SERVER_IP)), moved.ip, moved.port)
  await r.io.settle()
  t.equal(r.tun.take().length, 1)
  t.same(r.messages().filter((m) => m.code === 'ENDPOINT'), [{ code: 'ENDPOINT', slot: 1, ip: moved.ip, port: moved.port }])
  // Unauthenticated datagrams from yet another address are not reported.
  r.udp.inject(sealData(new Uint8Array(32), 6, 1, ipv4(CLIENT_IP, SERVER_IP)), 0x09090909, 9)
  await r.io.settle()
  t.equal(r.messages().filter((m) => m.code === 'ENDPOINT').length, 1)
  // More data from the new address within the second: no second report.
  r.udp.inject(sealData(recvKey, 6, 2, ipv4(CLIENT_IP, SERVER_IP)), moved.ip, moved.port)
  await r.io.settle()
  t.equal(r.tun.take().length, 1, 'delivered')
  t.equal(r.messages().filter((m) => m.code === 'ENDPOINT').length, 1, 'reported once')
  // Traffic to the peer still goes to its old endpoint until the control plane moves it (return routability).
  r.tun.inject(ipv4(SERVER_IP, CLIENT_IP, randomBytes(40)))
  await r.io.settle()
  const sent = r.udp.takeSent()
  t.same(sent.map(d => ({ ip: d.ip, port: d.port })), [A], 'to the old endpoint')
  r.post({ code: 'PEER', slot: 1, peerId: 1, tunnelIp: CLIENT_IP, endpointIp: moved.ip, endpointPort: moved.port, relayVia: false, fd: -1 })
  r.tun.inject(ipv4(SERVER_IP, CLIENT_IP, randomBytes(40)))
  await r.io.settle()
  t.same(r.udp.takeSent().map(d => ({ ip: d.ip, port: d.port })), [moved], 'to the new one once the control plane moved it')
})

t.test('the TUN device deleted under the pipeline: ERROR with tunGone, every poll stopped', async t => {
  const io = new FakeIo()
  const tunFd = openTunVnet(io, 'lwt0', true, true).fd
  const udpFd = openUdp(io, '0.0.0.0', 0, 0).fd
  const init: WorkerInit = {
    role: 'both', statsIndex: 0, mode: 'client', tunFd, tunVnet: true, udpFd, tunnelIp: CLIENT_IP, mtu: 1400, maxPeers: MAX_PEERS,
    packetMem: new SharedArrayBuffer(BATCH * SLOT_SIZE), packetMemIn: new SharedArrayBuffer(RX_BUFS * RX_BUF_SIZE),
    stats: createStatsBuffer(MAX_PEERS), ctrlRing: SpscRing.create(CTRL_RING_SLOTS, CTRL_SLOT_SIZE), fastPath: false
  }
  const port = new MemPort()
  const failed: unknown[] = []
  runPipelines(init, io, port, (err) => { failed.push(err) })
  io.tun(tunFd).remove()
  await io.settle()
  t.equal(failed.length, 1, 'onFail called once')
  t.match(port.got.at(-1), { code: 'ERROR', message: 'EBADFD', tunGone: true })
  t.equal(io.activePolls, 0)
})
