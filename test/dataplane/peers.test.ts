// dataplane/peers.ts: the pipelines' peer table (one per pipeline, changed
// only by PEER / PEER_REMOVE): upsert creates and updates a peer in place,
// keeps the three lookups (tunnel address, peer id, endpoint) consistent,
// never finds a relayed peer by endpoint, and removal leaves no trace. The
// queue bound (QUEUE_MAX, oldest dropped) is the outbound pipeline's: see
// the "queued while no session" test in pipelines.test.ts.
import t from 'tap'
import { PeerTable, QUEUE_MAX, endpointKey } from '../../src/dataplane/peers.js'

const A = { slot: 1, peerId: 11, tunnelIp: 0x0a000002, endpointIp: 0xc0a80102, endpointPort: 40001, relayVia: false }
const B = { slot: 2, peerId: 12, tunnelIp: 0x0a000003, endpointIp: 0xc0a80103, endpointPort: 40002, relayVia: false }
const SERVER = { ip: 0x64400001, port: 9000 }

t.test('endpointKey: distinct per ip and port, exact for any u32 ip', async t => {
  t.not(endpointKey(1, 2), endpointKey(2, 1))
  t.not(endpointKey(0xffffffff, 65535), endpointKey(0xffffffff, 65534))
  t.ok(Number.isSafeInteger(endpointKey(0xffffffff, 65535)), 'fits a double exactly')
  t.equal(endpointKey(0x0a000001, 0x1234), 0x0a000001 * 65536 + 0x1234)
})

t.test('upsert: a new peer is found by slot, tunnel address, peer id and endpoint', async t => {
  const pt = new PeerTable(4)
  const p = pt.upsert(A)
  t.equal(pt.bySlot[1], p)
  t.equal(pt.byTunnelIp.get(A.tunnelIp), p)
  t.equal(pt.byPeerId.get(A.peerId), p)
  t.equal(pt.byEndpoint.get(endpointKey(A.endpointIp, A.endpointPort)), p)
  t.match(p, { slot: 1, peerId: 11, tunnelIp: A.tunnelIp, epIp: A.endpointIp, epPort: A.endpointPort, relayVia: false, fd: -1 })
  t.equal(p.sendKeyOff, -1, 'no session yet')
  t.same(p.queue, [])
  t.equal(p.askedAt, -Infinity, 'never asked for a session')
})

t.test('upsert of an existing slot: updated in place, old lookups gone', async t => {
  const pt = new PeerTable(4)
  const p = pt.upsert(A)
  p.sendKeyOff = 64 // outbound state survives an update (a PEER for a roamed peer keeps its session)
  const q = pt.upsert({ ...A, peerId: 21, tunnelIp: 0x0a000009, endpointIp: 0xc0a80199, endpointPort: 50000, fd: 33 })
  t.equal(q, p, 'the same object')
  t.equal(q.sendKeyOff, 64, 'session state kept')
  t.equal(q.fd, 33)
  t.equal(pt.byTunnelIp.get(A.tunnelIp), undefined, 'old tunnel address gone')
  t.equal(pt.byPeerId.get(A.peerId), undefined, 'old peer id gone')
  t.equal(pt.byEndpoint.get(endpointKey(A.endpointIp, A.endpointPort)), undefined, 'old endpoint gone')
  t.equal(pt.byTunnelIp.get(0x0a000009), q)
  t.equal(pt.byPeerId.get(21), q)
  t.equal(pt.byEndpoint.get(endpointKey(0xc0a80199, 50000)), q)
  t.equal(pt.byTunnelIp.size + pt.byPeerId.size + pt.byEndpoint.size, 3, 'one entry per lookup')
})

t.test('a relayed peer is not found by endpoint (it shares the server\'s)', async t => {
  const pt = new PeerTable(4)
  const direct = pt.upsert({ ...A, endpointIp: SERVER.ip, endpointPort: SERVER.port })
  const relayed = pt.upsert({ ...B, endpointIp: SERVER.ip, endpointPort: SERVER.port, relayVia: true })
  t.equal(pt.byEndpoint.get(endpointKey(SERVER.ip, SERVER.port)), direct, 'the direct peer keeps the endpoint')
  t.equal(relayed.epKey, endpointKey(SERVER.ip, SERVER.port), 'its key is still recorded (for sending)')
  pt.remove(relayed.slot)
  t.equal(pt.byEndpoint.get(endpointKey(SERVER.ip, SERVER.port)), direct, 'removing the relayed peer leaves the direct one')
})

t.test('a peer going from direct to relayed leaves the endpoint lookup', async t => {
  const pt = new PeerTable(4)
  pt.upsert(A)
  pt.upsert({ ...A, endpointIp: SERVER.ip, endpointPort: SERVER.port, relayVia: true })
  t.equal(pt.byEndpoint.size, 0)
  pt.upsert(A)
  t.equal(pt.byEndpoint.get(endpointKey(A.endpointIp, A.endpointPort))?.slot, 1, 'and back')
})

t.test('setEndpoint (roaming): moves the endpoint lookup', async t => {
  const pt = new PeerTable(4)
  const p = pt.upsert(A)
  pt.setEndpoint(p, 0x01020304, 5555)
  t.equal(pt.byEndpoint.get(endpointKey(A.endpointIp, A.endpointPort)), undefined)
  t.equal(pt.byEndpoint.get(endpointKey(0x01020304, 5555)), p)
  t.equal(p.epIp, 0x01020304)
  t.equal(p.epPort, 5555)
  t.equal(pt.byEndpoint.size, 1)
})

t.test('two peers claiming one endpoint: the later wins, and the earlier leaving does not remove it', async t => {
  const pt = new PeerTable(4)
  const a = pt.upsert(A)
  const b = pt.upsert({ ...B, endpointIp: A.endpointIp, endpointPort: A.endpointPort })
  const key = endpointKey(A.endpointIp, A.endpointPort)
  t.equal(pt.byEndpoint.get(key), b)
  pt.remove(a.slot)
  t.equal(pt.byEndpoint.get(key), b, 'b still found')
  pt.setEndpoint(a, 1, 1) // a stale object: does not disturb b's entry
  t.equal(pt.byEndpoint.get(key), b)
})

t.test('a tunnel address moving to another slot: removing the old slot keeps the new owner', async t => {
  const pt = new PeerTable(4)
  pt.upsert(A)
  const b = pt.upsert({ ...B, tunnelIp: A.tunnelIp })
  t.equal(pt.byTunnelIp.get(A.tunnelIp), b)
  pt.remove(A.slot)
  t.equal(pt.byTunnelIp.get(A.tunnelIp), b, 'the address stays with its new owner')
})

t.test('remove: every lookup forgets the peer; removing twice is harmless', async t => {
  const pt = new PeerTable(4)
  pt.upsert(A)
  pt.upsert(B)
  const gone = pt.remove(A.slot)
  t.equal(gone?.slot, 1, 'returns the removed peer')
  t.equal(pt.bySlot[1], undefined)
  t.equal(pt.byTunnelIp.get(A.tunnelIp), undefined)
  t.equal(pt.byPeerId.get(A.peerId), undefined)
  t.equal(pt.byEndpoint.get(endpointKey(A.endpointIp, A.endpointPort)), undefined)
  t.equal(pt.remove(A.slot), undefined, 'second remove: nothing')
  t.equal(pt.bySlot[2]?.peerId, 12, 'the other peer untouched')
  t.equal(pt.byTunnelIp.size, 1)
  const again = pt.upsert(A)
  t.not(again, gone, 'a new peer in the slot starts fresh')
  t.equal(again.sendKeyOff, -1)
})

t.test('zero tunnel address or peer id: not indexed (not yet known)', async t => {
  const pt = new PeerTable(4)
  pt.upsert({ ...A, tunnelIp: 0, peerId: 0 })
  t.equal(pt.byTunnelIp.size, 0)
  t.equal(pt.byPeerId.size, 0)
  t.equal(pt.byEndpoint.size, 1)
})

t.test('QUEUE_MAX: a bounded number of packets per peer (nebula caps at 100)', async t => {
  t.ok(Number.isInteger(QUEUE_MAX) && QUEUE_MAX > 0 && QUEUE_MAX <= 100)
})
