/**
 * nat.ts: the one NAT classifier (our NAT and a peer's, one table with named
 * cases, one t.test per row), the strategy per pair of kinds, and the
 * client's NatObserver bookkeeping.
 */
import t from 'tap'
import { NatObserver, chooseStrategy, classifyNat, natFromWire, natToWire, type NatEvidence, type NatMapping } from '../../src/control/nat.js'
import { NAT_CHECK_INTERVAL } from '../../src/control/constants.js'
import { ipToInt } from '../../src/wire/addr.js'

const ip = ipToInt

t.test('classifyNat', async t => {
  const srv = { ip: ip('203.0.113.1'), port: 40000 }
  const lan = { addrs: [ip('192.168.1.2')], port: 5000 }
  const pub = { ip: ip('203.0.113.9'), port: 7000 }
  const rows: Array<[string, NatEvidence, NatMapping]> = [
    // Our own NAT: the reference is the server's view, `own` our addresses, views from the NAT-check port and peers.
    ['ours: nothing observed yet', { reference: null, own: { addrs: [ip('192.168.1.2')], port: 40000 }, views: [] }, 'unknown'],
    ['ours: the server sees our own address and port: no NAT', { reference: { ip: ip('198.51.100.7'), port: 5000 }, own: { addrs: [ip('198.51.100.7')], port: 5000 }, views: [] }, 'open'],
    ['ours: our address but another port: a port-translating firewall, not open', { reference: { ip: ip('198.51.100.7'), port: 5001 }, own: { addrs: [ip('198.51.100.7')], port: 5000 }, views: [] }, 'unknown'],
    ['ours: behind NAT, no second observation', { reference: srv, own: lan, views: [] }, 'unknown'],
    ['ours: second destination sees the same mapping: cone', { reference: srv, own: lan, views: [{ ...srv }] }, 'eim'],
    ['ours: second destination sees another port: symmetric', { reference: srv, own: lan, views: [{ ip: srv.ip, port: 40001 }] }, 'edm'],
    ['ours: one different port among same ones: symmetric', { reference: srv, own: lan, views: [{ ...srv }, { ip: srv.ip, port: 1 }] }, 'edm'],
    ['ours: a LAN peer sees our LAN address: says nothing', { reference: srv, own: lan, views: [{ ip: ip('192.168.1.2'), port: 5000 }] }, 'unknown'],
    // A peer's NAT: what it announces, else its public endpoint (reference) and where its probes come from.
    ['peer: what it announces wins', { announced: 'edm', reference: pub, views: [] }, 'edm'],
    ['peer: announcing unknown falls back to the probes', { announced: 'unknown', reference: pub, views: [{ ...pub }] }, 'eim'],
    ['peer: probes from another port of its public address', { announced: 'unknown', reference: pub, views: [{ ip: pub.ip, port: 7001 }] }, 'edm'],
    ['peer: probes from the advertised endpoint', { announced: 'unknown', reference: pub, views: [{ ...pub }] }, 'eim'],
    ['peer: LAN probes say nothing', { announced: 'unknown', reference: pub, views: [{ ip: ip('192.168.1.5'), port: 7000 }] }, 'unknown'],
    ['peer: no public endpoint known', { announced: 'unknown', reference: null, views: [{ ...pub }] }, 'unknown']
  ]
  for (const [name, evidence, want] of rows) t.test(name, async t => { t.equal(classifyNat(evidence), want) })
})

t.test('NAT kinds survive the wire', async t => {
  for (const k of ['unknown', 'open', 'eim', 'edm'] as const) t.equal(natFromWire(natToWire(k)), k, k)
  t.equal(natFromWire(99), 'unknown', 'an unknown code is unknown')
})

t.test('chooseStrategy', async t => {
  const kinds: NatMapping[] = ['unknown', 'open', 'eim', 'edm']
  for (const a of kinds) {
    for (const b of kinds) {
      const s = chooseStrategy(a, b)
      if (a === 'edm' && b === 'edm') {
        t.same(s, { strategy: 'relay-only', reason: 'DOUBLE_SYMMETRIC' }, `${a} ↔ ${b}`)
      } else if ((a === 'edm' && b === 'eim') || (a === 'eim' && b === 'edm')) {
        t.same(s, { strategy: 'birthday', reason: null }, `${a} ↔ ${b}`)
      } else {
        t.same(s, { strategy: 'punch', reason: null }, `${a} ↔ ${b}`)
      }
    }
  }
})

t.test('NatObserver', async t => {
  const local = [{ ip: ip('192.168.1.2'), port: 5000 }]
  const pub = { ip: ip('203.0.113.1'), port: 40000 }

  t.test('the server view, then a second destination: classified once, the check stops', async t => {
    const o = new NatObserver(() => local)
    t.notOk(o.checkDue(0), 'no check before the server told us our endpoint')
    t.same(o.serverView(pub.ip, pub.port), { first: true, natChanged: false })
    t.equal(o.serverView(pub.ip, pub.port), null, 'the same view again is nothing new')
    t.ok(o.checkDue(0), 'a check is due')
    o.checkSent(7, 0)
    t.notOk(o.checkDue(NAT_CHECK_INTERVAL - 1), 'not again before NAT_CHECK_INTERVAL')
    t.ok(o.checkDue(NAT_CHECK_INTERVAL), '… then again while unknown')
    t.notOk(o.checkAnswered(8), 'an answer to a check we did not send')
    t.ok(o.checkAnswered(7), 'our check answered')
    t.notOk(o.checkAnswered(7), '… once')
    t.ok(o.otherView({ ip: pub.ip, port: 40001 }), 'another port: the kind changed')
    t.equal(o.nat, 'edm')
    t.notOk(o.checkDue(10 * NAT_CHECK_INTERVAL), 'classified: no more checks')
  })

  t.test('a new server view forgets the old views', async t => {
    const o = new NatObserver(() => local)
    o.serverView(pub.ip, pub.port)
    o.otherView({ ...pub })
    t.equal(o.nat, 'eim')
    t.same(o.serverView(pub.ip, 40002), { first: false, natChanged: true })
    t.equal(o.nat, 'unknown', 'classified again from scratch')
  })

  t.test('local candidates: the public endpoint first, then ours, no duplicates, at most 8', async t => {
    const many = Array.from({ length: 12 }, (_, i) => ({ ip: ip(`192.168.1.${i + 2}`), port: 5000 }))
    const o = new NatObserver(() => [many[0]!, ...many])
    t.same(o.localCandidates(), many.slice(0, 8))
    o.serverView(pub.ip, pub.port)
    t.same(o.localCandidates(), [pub, ...many.slice(0, 7)])
  })
})
