/**
 * peer-table.ts: the three indexes (tunnel IP, peerId, slot) and the
 * candidate lookup stay consistent through add, setPeerId and remove; slots
 * come from a bounded free list and are reused.
 */
import t, { type Test } from 'tap'
import { PeerTable, type PeerRemote } from '../../src/control/peer-table.js'
import { emptySessionSet } from '../../src/control/session.js'
import { endpointKey } from '../../src/wire/addr.js'
import type { DirectPath } from '../../src/control/direct-path.js'
import { NO_ATTRS } from '../../src/wire/attrs.js'

function peer (slot: number, tunnelIp: number, peerId: number): PeerRemote {
  return {
    slot, peerId, tunnelIp, publicIp: 0, publicPort: 0, key: new Uint8Array(32), sessions: emptySessionSet(), lastInitTs: 0,
    path: null, lastTx: 0, lastRx: 0, nextSessionTry: 0, lastResync: -Infinity, fromCache: false, unlistedAt: null, attrs: NO_ATTRS
  }
}

/** Every index agrees with the list of peers. */
function consistent (t: Test, tab: PeerTable, maxSlots: number): void {
  const all = [...tab.values()]
  t.equal(tab.size, all.length, 'size')
  t.equal(tab.freeSlots, maxSlots - 1 - all.length, 'slots in use + free = all but the server\'s')
  for (const p of all) {
    t.equal(tab.get(p.tunnelIp), p, `by tunnel IP ${p.tunnelIp}`)
    t.equal(tab.bySlot(p.slot), p, `by slot ${p.slot}`)
    t.equal(tab.byPeerId(p.peerId), p, `by peerId ${p.peerId}`)
  }
  t.same(tab.tunnelIps().sort(), all.map(p => p.tunnelIp).sort(), 'tunnelIps')
}

t.test('add, re-id, remove: the indexes agree', async t => {
  const tab = new PeerTable(8)
  const a = tab.add(100, (slot) => peer(slot, 100, 1))!
  tab.setPeerId(a, 1)
  const b = tab.add(101, (slot) => peer(slot, 101, 2))!
  tab.setPeerId(b, 2)
  t.equal(a.slot, 1, 'the lowest slot first (0 is the server\'s)')
  t.equal(b.slot, 2)
  consistent(t, tab, 8)
  tab.setPeerId(a, 7) // a re-registered and got a new id
  t.equal(tab.byPeerId(1), undefined, 'the old id is gone')
  t.equal(tab.byPeerId(7), a)
  consistent(t, tab, 8)
  t.equal(tab.remove(100), a)
  t.equal(tab.remove(100), undefined, 'removing twice is a no-op')
  t.equal(tab.get(100), undefined)
  t.equal(tab.bySlot(1), undefined)
  t.equal(tab.byPeerId(7), undefined)
  consistent(t, tab, 8)
  const c = tab.add(102, (slot) => peer(slot, 102, 3))!
  t.equal(c.slot, 1, 'a freed slot is reused')
})

t.test('an id taken over by another peer stays with the new holder', async t => {
  const tab = new PeerTable(8)
  const a = tab.add(100, (slot) => peer(slot, 100, 5))!
  tab.setPeerId(a, 5)
  const b = tab.add(101, (slot) => peer(slot, 101, 5))!
  tab.setPeerId(b, 5)
  t.equal(tab.byPeerId(5), b)
  tab.remove(100)
  t.equal(tab.byPeerId(5), b, 'removing the old holder keeps the new one')
})

t.test('bounded: null when every slot is taken', async t => {
  const tab = new PeerTable(3) // slots 1 and 2
  t.ok(tab.add(1, (s) => peer(s, 1, 1)))
  t.ok(tab.add(2, (s) => peer(s, 2, 2)))
  let made = 0
  t.equal(tab.add(3, (s) => { made++; return peer(s, 3, 3) }), null)
  t.equal(made, 0, 'nothing built without a slot')
  t.equal(tab.size, 2)
})

t.test('byCandidate finds the peer with a direct-path candidate at an endpoint', async t => {
  const tab = new PeerTable(8)
  const key = endpointKey(0xc6120102, 41000)
  const a = tab.add(100, (slot) => ({ ...peer(slot, 100, 1), path: { candidates: new Map([[key, {}]]) } as unknown as DirectPath }))!
  tab.add(101, (slot) => peer(slot, 101, 2))
  t.equal(tab.byCandidate(key), a)
  t.equal(tab.byCandidate(endpointKey(0xc6120102, 41001)), undefined)
})
