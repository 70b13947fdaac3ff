/**
 * session.ts: the one way to open a sealed control message (good, wrong key,
 * replay, wrong kind, unknown index, refused owner), session rotation and
 * expiry, receiver indexes and the retry delay, with keys from real
 * handshakes and a seeded Random.
 */
import t from 'tap'
import { consumeInit, consumeResponse, createInit, createResponse, generateStaticKey } from '../../src/crypto/noise.js'
import { seededRandom } from '../../src/random.js'
import {
  IndexTable, confirmPending, emptySessionSet, expireSessions, installCurrent, newSession, openSealedControl, retryDelay,
  type Session, type SessionSet
} from '../../src/control/session.js'
import { PENDING_SESSION_TIMEOUT, PREVIOUS_SESSION_GRACE, REJECT_AFTER } from '../../src/control/constants.js'
import { CTL_BYE, CTL_PING, encodeControl } from '../../src/wire/control.js'

const psk = new Uint8Array(32).fill(7)
const NOW = 1_000_000
const KEY_I = generateStaticKey()
const KEY_R = generateStaticKey()

/** A handshake between two ends: the initiator's and the responder's Session of it. */
function pair (iIndex: number, rIndex: number, now = NOW): { initiator: Session, responder: Session } {
  const init = createInit(psk, KEY_I, iIndex, new Uint8Array(0))
  const hs = consumeInit(psk, KEY_R, init.message)
  const resp = createResponse(hs.state, rIndex, new Uint8Array(0))
  const done = consumeResponse(init.state, resp.message)
  return {
    initiator: newSession(iIndex, done.senderIndex, done.keys, now, true),
    responder: newSession(rIndex, hs.senderIndex, resp.keys, now, false)
  }
}

interface Owner { name: string, sessions: SessionSet }

function table (): { indexes: IndexTable<Owner>, alice: Owner, sealer: Session, local: Session } {
  const indexes = new IndexTable<Owner>(seededRandom(3))
  const alice: Owner = { name: 'alice', sessions: emptySessionSet() }
  const localIndex = indexes.allocate(alice)
  // We are the responder: alice seals with her initiator session, addressed to our index.
  const { initiator, responder } = pair(1234, localIndex)
  alice.sessions.current = responder
  return { indexes, alice, sealer: initiator, local: responder }
}

const ping = encodeControl({ kind: CTL_PING, txid: 9, peerListVersion: 1 })

t.test('openSealedControl', async t => {
  t.test('a good message opens: owner, session and message', async t => {
    const { indexes, alice, sealer, local } = table()
    const r = openSealedControl(sealer.ctl.seal(ping), indexes)
    t.ok(r.ok)
    if (!r.ok) return
    t.equal(r.owner, alice)
    t.equal(r.session, local)
    t.same(r.msg, { kind: CTL_PING, txid: 9, peerListVersion: 1 })
  })

  t.test('sealed with the wrong key: unauthenticated', async t => {
    const { indexes, local } = table()
    const stranger = pair(1, local.localIndex).initiator // same receiver index, other keys
    const r = openSealedControl(stranger.ctl.seal(ping), indexes)
    t.same(r, { ok: false, why: 'unauthenticated', index: local.localIndex })
    t.equal(local.ctl.rejected.auth, 1, 'counted by the channel as an auth failure')
  })

  t.test('a replay: the second copy is refused', async t => {
    const { indexes, sealer, local } = table()
    const m = sealer.ctl.seal(ping)
    t.ok(openSealedControl(m, indexes).ok)
    t.same(openSealedControl(m, indexes), { ok: false, why: 'unauthenticated', index: local.localIndex })
    t.equal(local.ctl.rejected.replay, 1, 'counted as a replay')
  })

  t.test('wrong wire type: malformed', async t => {
    const { indexes, sealer } = table()
    const m = sealer.ctl.seal(ping)
    m[0] = 4 // a data message's type
    t.same(openSealedControl(m, indexes), { ok: false, why: 'malformed', index: 0 })
  })

  t.test('a kind not asked for: unexpected-kind', async t => {
    const { indexes, sealer, local } = table()
    const r = openSealedControl(sealer.ctl.seal(encodeControl({ kind: CTL_BYE, reason: 1 })), indexes, undefined, [CTL_PING])
    t.same(r, { ok: false, why: 'unexpected-kind', index: local.localIndex })
  })

  t.test('too short: malformed', async t => {
    const { indexes } = table()
    t.same(openSealedControl(new Uint8Array([3, 0, 0, 0, 1, 2, 3, 4]), indexes), { ok: false, why: 'malformed', index: 0 })
  })

  t.test('an index nobody owns: unknown-index, with the index (the server rejects it)', async t => {
    const { indexes, sealer } = table()
    const m = sealer.ctl.seal(ping)
    new DataView(m.buffer).setUint32(4, 0xdeadbeef, true)
    t.same(openSealedControl(m, indexes), { ok: false, why: 'unknown-index', index: 0xdeadbeef })
  })

  t.test('an owner the caller refuses: nothing is decrypted (the replay window does not move)', async t => {
    const { indexes, sealer, local } = table()
    const m = sealer.ctl.seal(ping)
    t.same(openSealedControl(m, indexes, () => false), { ok: false, why: 'refused', index: local.localIndex })
    t.ok(openSealedControl(m, indexes).ok, 'the same message still opens afterwards')
  })

  t.test('the owner no longer holds the session: no-session', async t => {
    const { indexes, alice, sealer, local } = table()
    alice.sessions.current = null
    t.same(openSealedControl(sealer.ctl.seal(ping), indexes), { ok: false, why: 'no-session', index: local.localIndex })
  })

  t.test('authentic but undecodable: undecodable', async t => {
    const { indexes, sealer, local } = table()
    t.same(openSealedControl(sealer.ctl.seal(new Uint8Array([0xee, 0, 0, 0])), indexes), { ok: false, why: 'undecodable', index: local.localIndex })
  })
})

t.test('rotation and expiry', async t => {
  const dropped: number[] = []
  const drop = (s: Session): void => { dropped.push(s.localIndex) }
  const a = pair(11, 12).initiator
  const b = pair(21, 22, NOW + 1000).initiator
  const c = pair(31, 32, NOW + 2000).initiator

  t.test('install: the old current becomes previous for the grace period; the one before is dropped', async t => {
    dropped.length = 0
    const ss = emptySessionSet()
    installCurrent(ss, a, NOW, drop)
    t.equal(ss.current, a)
    t.equal(ss.previous, null)
    installCurrent(ss, b, NOW + 1000, drop)
    t.equal(ss.current, b)
    t.equal(ss.previous, a)
    t.equal(ss.previousUntil, NOW + 1000 + PREVIOUS_SESSION_GRACE)
    installCurrent(ss, b, NOW + 1500, drop)
    t.equal(ss.previous, a, 'installing the current one again changes nothing')
    installCurrent(ss, c, NOW + 2000, drop)
    t.same(dropped, [11], 'the oldest is dropped')
    t.equal(ss.previous, b)
  })

  t.test('confirm: pending becomes current', async t => {
    dropped.length = 0
    const ss = emptySessionSet()
    installCurrent(ss, a, NOW, drop)
    ss.pending = b
    confirmPending(ss, b, NOW + 1000, drop)
    t.equal(ss.current, b)
    t.equal(ss.previous, a)
    t.equal(ss.pending, null)
    t.same(dropped, [])
  })

  t.test('expiry: previous after its grace, pending after its timeout, current after REJECT_AFTER only when asked', async t => {
    dropped.length = 0
    const ss = emptySessionSet()
    installCurrent(ss, a, NOW, drop)
    installCurrent(ss, b, NOW, drop)
    ss.pending = c // created at NOW + 2000
    t.notOk(expireSessions(ss, NOW + 2000 + PENDING_SESSION_TIMEOUT, drop, true), 'nothing is due yet')
    t.same(dropped, [])
    t.ok(expireSessions(ss, NOW + 2000 + PENDING_SESSION_TIMEOUT + 1, drop, true), 'reports the expired pending session')
    t.same(dropped, [31])
    t.equal(ss.pending, null)
    t.notOk(expireSessions(ss, NOW + PREVIOUS_SESSION_GRACE, drop, true))
    t.same(dropped, [31], 'previous kept for exactly its grace')
    expireSessions(ss, NOW + PREVIOUS_SESSION_GRACE + 1, drop, true)
    t.same(dropped, [31, 11], 'then dropped')
    expireSessions(ss, NOW + 1000 + REJECT_AFTER + 1, drop, false)
    t.equal(ss.current, b, 'the server keeps an old current session')
    expireSessions(ss, NOW + 1000 + REJECT_AFTER + 1, drop, true)
    t.equal(ss.current, null, 'the client drops it')
    t.same(dropped, [31, 11, 21])
  })
})

t.test('IndexTable: unique, never 0, the same sequence for the same seed', async t => {
  const seq = (): number[] => {
    const tab = new IndexTable<string>(seededRandom(42))
    return Array.from({ length: 100 }, () => tab.allocate('x'))
  }
  const one = seq()
  t.same(seq(), one, 'deterministic with a seeded Random')
  t.equal(new Set(one).size, 100, 'unique')
  t.notOk(one.includes(0), 'never 0')
  const tab = new IndexTable<string>(seededRandom(1))
  const i = tab.allocate('a')
  t.equal(tab.get(i), 'a')
  tab.delete(i)
  t.equal(tab.get(i), undefined)
  t.equal(tab.size, 0)
})

t.test('retryDelay: base doubling every 3 tries, capped, plus jitter in [0, jitter)', async t => {
  const zero = { int: () => 0, float: () => 0, bytes: (n: number) => new Uint8Array(n) }
  const almostOne = { ...zero, float: () => 0.999 }
  const rows: Array<[number, number]> = [[1, 1000], [2, 1000], [3, 2000], [6, 4000], [9, 8000], [12, 16000], [30, 16000]]
  for (const [tries, want] of rows) {
    t.equal(retryDelay(tries, 1000, 16000, 250, zero), want, `try ${tries}`)
    t.ok(retryDelay(tries, 1000, 16000, 250, almostOne) < want + 250, `try ${tries}: jitter below 250`)
  }
})
