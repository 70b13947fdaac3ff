/**
 * The port mapper's state machine (control/port-mapping.ts) on a manual
 * clock, against a scripted gateway: PCP preferred, NAT-PMP when PCP is not
 * spoken, retries and giving up, renewal at half the lifetime, expiry,
 * a gateway reboot (epoch backwards), deletion on stop, and forged or
 * malformed answers counted and ignored.
 */
import t from 'tap'
import { seededRandom } from '../../src/random.js'
import { PortMapper, PROBE_TRIES, PROBE_WAIT, type PortMapIo } from '../../src/control/port-mapping.js'
import type { Endpoint } from '../../src/control/nat.js'

const GW = 0xc0a80101 // 192.168.1.1
const ME = 0xc0a80102
const EXT = 0x64400102 // 100.64.1.2
const PORT = 9000

/** A gateway that answers what we tell it to; `sent` holds every request. */
class Harness {
  now = 1000
  sent: Uint8Array[] = []
  changes: Array<Endpoint | null> = []
  logs: string[] = []
  readonly m: PortMapper
  constructor () {
    const io: PortMapIo = {
      send: (b) => { this.sent.push(b) },
      changed: (ep) => { this.changes.push(ep) },
      log: (_l, msg) => { this.logs.push(msg) }
    }
    this.m = new PortMapper(io, seededRandom(7), PORT)
  }

  take (): Uint8Array[] { const s = this.sent; this.sent = []; return s }
  advance (ms: number): void {
    const end = this.now + ms
    for (;;) {
      const due = this.m.nextDue()
      if (due > end) break
      this.now = Math.max(this.now, due)
      this.m.tick(this.now)
    }
    this.now = end
  }

  deliver (b: Uint8Array, ip = GW, port = 5351): void { this.m.onPacket(b, ip, port, this.now) }
}

const isPcp = (b: Uint8Array): boolean => b[0] === 2
const isPmpExternal = (b: Uint8Array): boolean => b[0] === 0 && b[1] === 0
const isPmpMap = (b: Uint8Array): boolean => b[0] === 0 && b[1] === 1
const u32 = (b: Uint8Array, o: number): number => new DataView(b.buffer, b.byteOffset).getUint32(o)
const u16 = (b: Uint8Array, o: number): number => new DataView(b.buffer, b.byteOffset).getUint16(o)

/** A PCP answer to request `req` (its nonce and internal port echoed). */
function pcpAnswer (req: Uint8Array, o: { result?: number, lifetime?: number, epoch: number, extPort?: number, extIp?: number, nonce?: Uint8Array }): Uint8Array {
  const b = new Uint8Array(60)
  const v = new DataView(b.buffer)
  b[0] = 2; b[1] = 0x81; b[3] = o.result ?? 0
  v.setUint32(4, o.lifetime ?? 120); v.setUint32(8, o.epoch)
  b.set(o.nonce ?? req.slice(24, 36), 24)
  b[36] = 17
  v.setUint16(40, u16(req, 40)); v.setUint16(42, o.extPort ?? 40000)
  b[54] = 0xff; b[55] = 0xff; v.setUint32(56, o.extIp ?? EXT)
  return b
}
function pmpExternal (epoch: number, ip = EXT, result = 0): Uint8Array {
  const b = new Uint8Array(12); const v = new DataView(b.buffer)
  b[1] = 128; v.setUint16(2, result); v.setUint32(4, epoch); v.setUint32(8, ip)
  return b
}
function pmpMap (epoch: number, o: { internal?: number, ext?: number, lifetime?: number, result?: number, op?: number } = {}): Uint8Array {
  const b = new Uint8Array(16); const v = new DataView(b.buffer)
  b[1] = o.op ?? 129; v.setUint16(2, o.result ?? 0); v.setUint32(4, epoch)
  v.setUint16(8, o.internal ?? PORT); v.setUint16(10, o.ext ?? 41000); v.setUint32(12, o.lifetime ?? 120)
  return b
}

t.test('PCP answers: mapped at once, offered, renewed at half the lifetime with the same nonce', async t => {
  const h = new Harness()
  h.m.setNetwork({ gateway: GW, localIp: ME }, h.now)
  const first = h.take()
  t.equal(first.filter(isPcp).length, 1, 'one PCP MAP')
  t.equal(first.filter(isPmpExternal).length, 1, 'one NAT-PMP external-address request')
  const req = first.find(isPcp)!
  t.equal(u32(req, 20), ME, 'our address in the PCP client field')
  t.equal(u16(req, 40), PORT)
  h.deliver(pmpExternal(100))
  h.deliver(pcpAnswer(req, { epoch: 100, lifetime: 120 }))
  t.equal(h.m.state, 'mapped')
  t.same(h.changes, [{ ip: EXT, port: 40000 }])
  const s = h.m.status(h.now)
  t.equal(s.protocol, 'pcp'); t.equal(s.external, '100.64.1.2:40000'); t.equal(s.lifetimeLeftSec, 120)
  h.advance(59_000)
  t.equal(h.take().length, 0, 'nothing before half the lifetime')
  h.advance(1000)
  const renew = h.take()
  t.equal(renew.length, 1); t.ok(isPcp(renew[0]!))
  t.same(renew[0]!.slice(24, 36), req.slice(24, 36), 'the same nonce')
  t.equal(u16(renew[0]!, 42), 40000, 'suggests the port it holds')
  h.deliver(pcpAnswer(renew[0]!, { epoch: 160, lifetime: 120 }))
  t.equal(h.m.status(h.now).lifetimeLeftSec, 120, 'lifetime restarted')
  t.equal(h.changes.length, 1, 'same endpoint: no new announcement')
  t.equal(h.m.counters.portMapRenewals, 1)
})

t.test('a NAT-PMP gateway: PCP refused as unsupported version, then a NAT-PMP mapping', async t => {
  const h = new Harness()
  h.m.setNetwork({ gateway: GW, localIp: ME }, h.now)
  h.take()
  h.deliver(pmpMap(50, { result: 1, op: 129 })) // its answer to our version-2 request
  h.deliver(pmpExternal(50))
  const map = h.take()
  t.equal(map.length, 1); t.ok(isPmpMap(map[0]!)); t.equal(u16(map[0]!, 4), PORT); t.equal(u32(map[0]!, 8), 7200)
  h.deliver(pmpMap(50, { ext: 41000, lifetime: 3600 }))
  t.equal(h.m.state, 'mapped')
  t.same(h.changes, [{ ip: EXT, port: 41000 }])
  t.equal(h.m.status(h.now).protocol, 'nat-pmp')
})

t.test('PCP silent, NAT-PMP answers: NAT-PMP after the probe wait', async t => {
  const h = new Harness()
  h.m.setNetwork({ gateway: GW, localIp: ME }, h.now)
  h.take()
  h.deliver(pmpExternal(50))
  t.equal(h.take().length, 0, 'waits for PCP until the probe wait ends')
  h.advance(PROBE_WAIT)
  t.ok(isPmpMap(h.take()[0]!))
})

t.test('no answer: retries with backoff, gives up after a few tries, asks again on a network change', async t => {
  const h = new Harness()
  h.m.setNetwork({ gateway: GW, localIp: ME }, h.now)
  const at: number[] = []
  for (let i = 0; i < 10_000 && h.m.state === 'probing'; i++) { if (h.take().length > 0) at.push(h.now); h.advance(10) }
  t.same(at.map(x => x - at[0]!), [0, PROBE_WAIT, PROBE_WAIT * 3], 'tries at 0, 250, 750 ms')
  t.equal(at.length, PROBE_TRIES)
  t.equal(h.m.state, 'failed')
  t.equal(h.m.status(h.now).note, `no NAT-PMP/PCP answer from 192.168.1.1 in ${PROBE_TRIES} tries`)
  h.advance(3_600_000)
  t.equal(h.take().length, 0, 'no more requests')
  h.m.setNetwork({ gateway: GW, localIp: ME }, h.now)
  t.equal(h.take().length, 0, 'the same network: still quiet')
  h.m.setNetwork({ gateway: 0x0a000001, localIp: 0x0a000002 }, h.now)
  t.equal(h.take().length, 2, 'a new network: asked again')
})

t.test('both refuse: failed with both reasons', async t => {
  const h = new Harness()
  h.m.setNetwork({ gateway: GW, localIp: ME }, h.now)
  const req = h.take().find(isPcp)!
  h.deliver(pcpAnswer(req, { result: 2, epoch: 1 }))
  h.deliver(pmpExternal(1, 0, 2))
  t.equal(h.m.state, 'failed')
  t.match(h.m.status(h.now).note, /PCP not authorized; NAT-PMP not authorized/)
})

t.test('renewals unanswered: retried, then the mapping expires and is withdrawn; asked again', async t => {
  const h = new Harness()
  h.m.setNetwork({ gateway: GW, localIp: ME }, h.now)
  h.deliver(pcpAnswer(h.take().find(isPcp)!, { epoch: 10, lifetime: 20 }))
  h.take()
  h.advance(19_999)
  const renewals = h.take()
  t.ok(renewals.length >= 3 && renewals.every(isPcp), `${renewals.length} renewal tries before the expiry`)
  t.equal(h.m.state, 'mapped')
  h.advance(1)
  t.equal(h.m.counters.portMapExpired, 1)
  t.same(h.changes, [{ ip: EXT, port: 40000 }, null], 'withdrawn')
  t.equal(h.m.state, 'probing', 'asking again')
})

t.test('gateway reboot: an epoch that went backwards means map again', async t => {
  const h = new Harness()
  h.m.setNetwork({ gateway: GW, localIp: ME }, h.now)
  h.deliver(pcpAnswer(h.take().find(isPcp)!, { epoch: 1000, lifetime: 120 }))
  h.advance(60_000)
  const renew = h.take()[0]!
  // 60 s later the epoch should be ≥ 1000 + 52.5 − 2; 5 means it restarted.
  h.deliver(pcpAnswer(renew, { epoch: 5, lifetime: 120, extPort: 40002 }))
  t.equal(h.m.counters.portMapGatewayReboots, 1)
  t.same(h.changes, [{ ip: EXT, port: 40000 }, null])
  const again = h.take()
  t.ok(again.some(isPcp) && again.some(isPmpExternal), 'probing again at once')
  h.deliver(pcpAnswer(again.find(isPcp)!, { epoch: 6, lifetime: 120, extPort: 40002 }))
  t.same(h.changes.at(-1), { ip: EXT, port: 40002 }, 'the new mapping is offered')
  // A normal advance is not a reboot.
  h.advance(60_000)
  h.deliver(pcpAnswer(h.take()[0]!, { epoch: 66, lifetime: 120, extPort: 40002 }))
  t.equal(h.m.counters.portMapGatewayReboots, 1)
})

t.test('stop deletes the mapping: PCP lifetime 0 with the nonce; NAT-PMP lifetime 0, port 0', async t => {
  const h = new Harness()
  h.m.setNetwork({ gateway: GW, localIp: ME }, h.now)
  const req = h.take().find(isPcp)!
  h.deliver(pcpAnswer(req, { epoch: 10 }))
  t.ok(h.m.stop())
  const del = h.take()
  t.equal(del.length, 1); t.ok(isPcp(del[0]!)); t.equal(u32(del[0]!, 4), 0, 'lifetime 0')
  t.same(del[0]!.slice(24, 36), req.slice(24, 36))
  t.equal(h.m.state, 'off')
  h.advance(100_000)
  t.equal(h.take().length, 0, 'nothing after stop')

  const p = new Harness()
  p.m.setNetwork({ gateway: GW, localIp: ME }, p.now)
  p.take()
  p.deliver(pmpMap(5, { result: 1 }))
  p.deliver(pmpExternal(5))
  p.take()
  p.deliver(pmpMap(5))
  t.ok(p.m.stop())
  const d = p.take()[0]!
  t.ok(isPmpMap(d)); t.equal(u16(d, 6), 0); t.equal(u32(d, 8), 0)

  const none = new Harness()
  t.notOk(none.m.stop(), 'nothing to delete without a mapping')
  t.equal(none.take().length, 0)
})

t.test('forged, foreign and malformed answers are counted and ignored', async t => {
  const h = new Harness()
  h.m.setNetwork({ gateway: GW, localIp: ME }, h.now)
  const req = h.take().find(isPcp)!
  h.deliver(pcpAnswer(req, { epoch: 1 }), 0xc0a80163) // another host on the LAN
  h.deliver(pcpAnswer(req, { epoch: 1 }), GW, 5350) // another port of the gateway
  h.deliver(pcpAnswer(req, { epoch: 1, nonce: new Uint8Array(12).fill(9) })) // not our nonce
  h.deliver(pmpMap(1, { internal: 1234 })) // another port's mapping
  t.equal(h.m.counters.portMapForged, 4)
  h.deliver(new Uint8Array([2, 0x81, 0])) // too short
  h.deliver(new Uint8Array([7, 7, 7, 7, 7, 7, 7, 7, 7]))
  h.deliver(new Uint8Array(0))
  t.equal(h.m.counters.portMapMalformed, 3)
  t.equal(h.m.state, 'probing', 'none of them mapped anything')
  t.same(h.changes, [])
  h.deliver(pcpAnswer(req, { epoch: 1 }))
  t.equal(h.m.state, 'mapped', 'the real answer still counts')
})

t.test('the network goes away and comes back: withdrawn, then asked again', async t => {
  const h = new Harness()
  h.m.setNetwork({ gateway: GW, localIp: ME }, h.now)
  h.deliver(pcpAnswer(h.take().find(isPcp)!, { epoch: 1 }))
  h.m.setNetwork(null, h.now)
  t.same(h.changes, [{ ip: EXT, port: 40000 }, null])
  t.equal(h.m.status(h.now).note, 'no default gateway to ask')
  h.m.setNetwork({ gateway: GW, localIp: ME }, h.now)
  t.equal(h.take().length, 2)
})

t.test('a mapping a killed run left is deleted with its own nonce before we ask; its answer is not counted as forged', async t => {
  const h = new Harness()
  const oldNonce = '0a0b0c0d0e0f101112131415'
  h.m.forgetStale({ gateway: GW, internalPort: 41000, protocol: 'pcp', nonce: oldNonce, external: { ip: EXT, port: 39000 } })
  h.m.setNetwork({ gateway: 0x0a000001, localIp: 0x0a000002 }, h.now)
  t.equal(h.take().length, 2, 'another gateway: only our own requests')
  h.m.setNetwork({ gateway: GW, localIp: ME }, h.now)
  const sent = h.take()
  t.equal(sent.length, 3)
  const del = sent[0]!
  t.ok(isPcp(del)); t.equal(u32(del, 4), 0, 'lifetime 0'); t.equal(u16(del, 40), 41000, 'the old internal port')
  t.equal(Buffer.from(del.slice(24, 36)).toString('hex'), oldNonce, 'the old nonce')
  t.equal(u16(del, 42), 39000, 'suggests the old external port')
  t.equal(h.m.counters.portMapStaleDeleted, 1)
  h.deliver(pcpAnswer(del, { epoch: 5, lifetime: 0, extPort: 39000 }))
  t.equal(h.m.counters.portMapForged, 0)
  t.equal(h.m.state, 'probing', 'the delete\'s answer maps nothing')
  h.deliver(pcpAnswer(sent.find((b, i) => i > 0 && isPcp(b))!, { epoch: 5 }))
  t.equal(h.m.state, 'mapped')
  const r = h.m.record()!
  t.same({ ...r, nonce: r.nonce.length }, { gateway: GW, internalPort: PORT, protocol: 'pcp', nonce: 24, external: { ip: EXT, port: 40000 } }, 'record() for the state file')
  t.not(r.nonce, oldNonce)
  // NAT-PMP: lifetime 0, suggested 0, the old internal port.
  const p = new Harness()
  p.m.forgetStale({ gateway: GW, internalPort: 41000, protocol: 'nat-pmp', nonce: oldNonce, external: { ip: EXT, port: 39000 } })
  p.m.forgetStale({ gateway: GW, internalPort: 0, protocol: 'nat-pmp', nonce: 'zz', external: { ip: EXT, port: 1 } }) // nonsense is ignored
  p.m.setNetwork({ gateway: GW, localIp: ME }, p.now)
  const d = p.take()[0]!
  t.ok(isPmpMap(d)); t.equal(u16(d, 4), 41000); t.equal(u16(d, 6), 0); t.equal(u32(d, 8), 0)
})

t.test('a PCP answer later than the probe wait still wins over the NAT-PMP request that followed', async t => {
  const h = new Harness()
  h.m.setNetwork({ gateway: GW, localIp: ME }, h.now)
  const req = h.take().find(isPcp)!
  h.deliver(pmpExternal(9))
  h.advance(PROBE_WAIT)
  t.ok(isPmpMap(h.take()[0]!), 'NAT-PMP asked after the wait')
  h.deliver(pcpAnswer(req, { epoch: 9 }))
  t.equal(h.m.status(h.now).protocol, 'pcp')
  h.deliver(pmpMap(9, { ext: 40000 }))
  t.equal(h.m.status(h.now).protocol, 'pcp', 'the NAT-PMP answer after it changes nothing')
  t.same(h.changes, [{ ip: EXT, port: 40000 }])
})

t.test('refresh (our public endpoint moved): renews at once and offers the new external address; after a failure asks again', async t => {
  const h = new Harness()
  h.m.setNetwork({ gateway: GW, localIp: ME }, h.now)
  h.deliver(pcpAnswer(h.take().find(isPcp)!, { epoch: 1 }))
  h.advance(5000)
  h.m.refresh(h.now)
  const renew = h.take()
  t.equal(renew.length, 1, 'a renewal now, not at half the lifetime')
  h.deliver(pcpAnswer(renew[0]!, { epoch: 6, extIp: 0x64400165 }))
  t.same(h.changes.at(-1), { ip: 0x64400165, port: 40000 }, 'the new external address is offered')

  const f = new Harness()
  f.m.setNetwork({ gateway: GW, localIp: ME }, f.now)
  f.advance(10_000)
  t.equal(f.m.state, 'failed')
  f.take()
  f.m.refresh(f.now)
  t.equal(f.m.state, 'probing')
  t.equal(f.take().length, 2)
})
