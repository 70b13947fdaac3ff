// FEC through the real pipelines (dataplane/fec-hooks.ts hooked into
// outbound.ts and inbound.ts) over the in-memory twin of the addon's I/O:
// a FEC send key makes parity follow the data messages (full groups at
// once, partial ones after FEC_FLUSH_MS); a FEC receive key rebuilds a lost
// data message from parity and delivers it once, through the normal open,
// replay and source checks. The far peer is this test.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { ipv4, openData, relayEnvelope, sealData } from '../helpers/packets.js'
import { CLIENT_IP, LOCAL_INDEX, OTHER_IP, REMOTE_INDEX, SERVER_EP, SERVER_IP, rig, type Rig } from '../helpers/pipeline-rig.js'
import { decodeFecParity, MSG_FEC } from '../../src/wire/fec.js'
import { FecEncoder, FEC_FLUSH_MS } from '../../src/dataplane/fec.js'

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Slot 1: a peer (the server's address stands in for it), direct, keys with FEC as given. */
function fecPeer (r: Rig, sendFec: { data: number, parity: number } | null, recvFec: boolean): { sendKey: Uint8Array, recvKey: Uint8Array } {
  const sendKey = new Uint8Array(randomBytes(32))
  const recvKey = new Uint8Array(randomBytes(32))
  r.post({ code: 'PEER', slot: 1, peerId: 0, tunnelIp: SERVER_IP, endpointIp: SERVER_EP.ip, endpointPort: SERVER_EP.port, relayVia: false, fd: -1 })
  r.post({ code: 'SEND_KEY', slot: 1, key: sendKey, remoteIndex: REMOTE_INDEX, fec: sendFec })
  r.post({ code: 'RECV_KEY', slot: 1, localIndex: LOCAL_INDEX, key: recvKey, fec: recvFec })
  return { sendKey, recvKey }
}

for (const placement of ['fused', 'split'] as const) {
  t.test(`${placement}: a FEC send key: parity follows every full group at once and a partial group after FEC_FLUSH_MS; the data messages are unchanged`, async t => {
    const r = rig(t, 'client', placement)
    const { sendKey } = fecPeer(r, { data: 4, parity: 2 }, true)
    const pkts = Array.from({ length: 4 }, (_, i) => ipv4(CLIENT_IP, SERVER_IP, randomBytes(100 + i * 10)))
    for (const p of pkts) r.tun.inject(p)
    await r.io.settle()
    const sent = r.udp.takeSent()
    t.same(sent.map((d) => d.bytes[0]), [4, 4, 4, 4, MSG_FEC, MSG_FEC], 'four data messages, then two parity messages')
    t.same(sent.slice(0, 4).map((d) => openData(sendKey, d.bytes).inner), pkts, 'the data messages open as usual')
    const par = decodeFecParity(sent[4]!.bytes)
    t.match(par, { data: 4, parity: 2, index: 0, receiverIndex: REMOTE_INDEX, first: 0 })
    t.same(par.lengths, sent.slice(0, 4).map((d) => d.bytes.length))
    t.same({ ip: sent[5]!.ip, port: sent[5]!.port }, SERVER_EP, 'parity goes to the peer\'s endpoint')
    r.tun.inject(ipv4(CLIENT_IP, SERVER_IP))
    await r.io.settle()
    t.equal(r.udp.takeSent().length, 1, 'a lone packet leaves at once')
    await sleep(FEC_FLUSH_MS * 4)
    await r.io.settle()
    const late = r.udp.takeSent()
    t.same(late.map((d) => decodeFecParity(d.bytes)).map((p) => [p.data, p.parity, p.first]), [[1, 2, 4], [1, 2, 4]], 'its parity follows the flush')
    t.equal(r.counters().fecParitySent, 4)
    t.equal(r.counters().fastPathPackets, 0)
  })
}

t.test('a burst of three groups: each group\'s parity leaves right behind its last data message, not behind the batch', async t => {
  const r = rig(t, 'client')
  fecPeer(r, { data: 4, parity: 2 }, true)
  for (let i = 0; i < 12; i++) r.tun.inject(ipv4(CLIENT_IP, SERVER_IP, randomBytes(100)))
  await r.io.settle()
  const sent = r.udp.takeSent()
  t.same(sent.map((d) => d.bytes[0]), [4, 4, 4, 4, 8, 8, 4, 4, 4, 4, 8, 8, 4, 4, 4, 4, 8, 8])
  t.same(sent.filter((d) => d.bytes[0] === MSG_FEC).map((d) => decodeFecParity(d.bytes).first), [0, 0, 4, 4, 8, 8])
})

t.test('a FEC send key on a relayed peer: parity travels in a relay envelope like the data', async t => {
  const r = rig(t, 'client')
  r.post({ code: 'PEER', slot: 2, peerId: 42, tunnelIp: OTHER_IP, endpointIp: SERVER_EP.ip, endpointPort: SERVER_EP.port, relayVia: true, fd: -1 })
  r.post({ code: 'SEND_KEY', slot: 2, key: new Uint8Array(randomBytes(32)), remoteIndex: 7, fec: { data: 2, parity: 1 } })
  r.tun.inject(ipv4(CLIENT_IP, OTHER_IP))
  r.tun.inject(ipv4(CLIENT_IP, OTHER_IP))
  await r.io.settle()
  const sent = r.udp.takeSent()
  t.same(sent.map((d) => [d.bytes[0], d.bytes[8]]), [[5, 4], [5, 4], [5, MSG_FEC]])
  t.match(decodeFecParity(sent[2]!.bytes.subarray(8)), { data: 2, parity: 1, receiverIndex: 7 })
})

t.test('without FEC on the send key no parity is sent', async t => {
  const r = rig(t, 'client')
  fecPeer(r, null, false)
  for (let i = 0; i < 12; i++) r.tun.inject(ipv4(CLIENT_IP, SERVER_IP))
  await r.io.settle()
  await sleep(FEC_FLUSH_MS * 3)
  t.same(r.udp.takeSent().map((d) => d.bytes[0]), new Array(12).fill(4))
})

/** Four sealed data messages from the peer and the parity of their group (2 parity). */
function group (recvKey: Uint8Array, first: number): { pkts: Uint8Array[], msgs: Uint8Array[], parity: Uint8Array[] } {
  const pkts = Array.from({ length: 4 }, (_, i) => ipv4(SERVER_IP, CLIENT_IP, randomBytes(200 + 37 * i)))
  const msgs = pkts.map((p, i) => sealData(recvKey, LOCAL_INDEX, first + i, p))
  const enc = new FecEncoder({ data: 4, parity: 2 })
  let parity: Uint8Array[] = []
  for (const m of msgs) parity = enc.add(m, 0) ?? parity
  return { pkts, msgs, parity }
}

t.test('a lost data message is rebuilt from parity and delivered once; the original arriving later is a replay', async t => {
  const r = rig(t, 'client')
  const { recvKey } = fecPeer(r, null, true)
  const g = group(recvKey, 0)
  for (const [i, m] of g.msgs.entries()) if (i !== 2) r.udp.inject(m, SERVER_EP.ip, SERVER_EP.port)
  await r.io.settle()
  t.same(r.tun.take(), [g.pkts[0], g.pkts[1], g.pkts[3]])
  r.udp.inject(g.parity[0]!, SERVER_EP.ip, SERVER_EP.port)
  await r.io.settle()
  t.same(r.tun.take(), [g.pkts[2]], 'the lost packet, rebuilt')
  r.udp.inject(g.parity[1]!, SERVER_EP.ip, SERVER_EP.port)
  r.udp.inject(g.msgs[2]!, SERVER_EP.ip, SERVER_EP.port)
  await r.io.settle()
  t.same(r.tun.take(), [], 'late parity and the late original deliver nothing')
  t.match(r.counters(), { fecGroupsRecovered: 1, fecPacketsRecovered: 1, dropReplay: 1, tunTxPackets: 4 })
  t.match(r.stats.peer(1), { rxPackets: 4 })
})

t.test('a group and its parity in one receive batch: nothing is rebuilt (the parity is judged after the batch\'s data)', async t => {
  const r = rig(t, 'client')
  const { recvKey } = fecPeer(r, null, true)
  const g = group(recvKey, 0)
  for (const m of [...g.msgs, ...g.parity]) r.udp.inject(m, SERVER_EP.ip, SERVER_EP.port)
  await r.io.settle()
  t.same(r.tun.take(), g.pkts)
  t.match(r.counters(), { fecGroupsRecovered: 0, fecPacketsRecovered: 0, dropReplay: 0, dropAuthFailed: 0, tunTxPackets: 4 })
})

t.test('two lost of a group with two parity, parity relayed: both rebuilt; three lost: unrecoverable, nothing delivered', async t => {
  const r = rig(t, 'client')
  const { recvKey } = fecPeer(r, null, true)
  const g = group(recvKey, 0)
  r.udp.inject(g.msgs[1]!, SERVER_EP.ip, SERVER_EP.port)
  r.udp.inject(g.msgs[3]!, SERVER_EP.ip, SERVER_EP.port)
  for (const p of g.parity) r.udp.inject(relayEnvelope(0, p), SERVER_EP.ip, SERVER_EP.port)
  await r.io.settle()
  t.same(r.tun.take().map((p) => Buffer.from(p).toString('hex')).sort(), g.pkts.map((p) => Buffer.from(p).toString('hex')).sort(), 'all four delivered')
  const h = group(recvKey, 4)
  r.udp.inject(h.msgs[0]!, SERVER_EP.ip, SERVER_EP.port)
  for (const p of h.parity) r.udp.inject(p, SERVER_EP.ip, SERVER_EP.port)
  await r.io.settle()
  t.same(r.tun.take(), [h.pkts[0]])
  t.match(r.counters(), { fecGroupsRecovered: 1, fecPacketsRecovered: 2 })
})

t.test('forged parity rebuilds garbage that the AEAD refuses; parity for a session without FEC or malformed is dropped and counted', async t => {
  const r = rig(t, 'client')
  const { recvKey } = fecPeer(r, null, true)
  const g = group(recvKey, 0)
  const forged = g.parity[0]!.slice()
  forged[16 + 4 * 2 + 60]! ^= 0xff // inside the shard, within the lost message (past its length a shard is padding)
  for (const [i, m] of g.msgs.entries()) if (i !== 1) r.udp.inject(m, SERVER_EP.ip, SERVER_EP.port)
  r.udp.inject(forged, SERVER_EP.ip, SERVER_EP.port)
  await r.io.settle()
  t.equal(r.tun.take().length, 3, 'only the three that arrived')
  t.match(r.counters(), { dropAuthFailed: 1 })
  const other = g.parity[1]!.slice()
  new DataView(other.buffer).setUint32(4, LOCAL_INDEX + 1, true) // another receiver index: no FEC session
  r.udp.inject(other, SERVER_EP.ip, SERVER_EP.port)
  r.udp.inject(new Uint8Array([MSG_FEC, 4, 2, 0, 1, 2]), SERVER_EP.ip, SERVER_EP.port)
  const bad = g.parity[1]!.slice(0, g.parity[1]!.length - 1) // shorter than its lengths say
  r.udp.inject(bad, SERVER_EP.ip, SERVER_EP.port)
  await r.io.settle()
  t.same(r.tun.take(), [])
  t.match(r.counters(), { dropFecNoSession: 1, dropFecMalformed: 2 })
})

t.test('a receive key without FEC: parity is dropped (not negotiated) and data takes the usual path', async t => {
  const r = rig(t, 'client')
  const { recvKey } = fecPeer(r, null, false)
  const g = group(recvKey, 0)
  r.udp.inject(g.msgs[1]!, SERVER_EP.ip, SERVER_EP.port)
  for (const p of g.parity) r.udp.inject(p, SERVER_EP.ip, SERVER_EP.port)
  await r.io.settle()
  t.same(r.tun.take(), [g.pkts[1]])
  t.match(r.counters(), { dropFecNoSession: 2, fecPacketsRecovered: 0 })
})
