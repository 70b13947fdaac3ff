/**
 * path.ts: the pure comparator and candidate predicates, as tables with
 * named cases (one t.test per row).
 */
import t from 'tap'
import { awaitingAnswer, betterPath, candidateAlive, suspectGap, candidateState, isPrivate, newCandidate, type Candidate, type PathScore } from '../../src/control/path.js'
import { HOLDDOWN, MISS_LIMIT, PATH_SILENCE, SUSPECT_PROBE, TRUST_IDLE } from '../../src/control/constants.js'
import { ipToInt } from '../../src/wire/addr.js'

t.test('betterPath', async t => {
  const rows: Array<[string, PathScore, PathScore | null, boolean]> = [
    ['anything beats nothing', { kind: 'relay', rttMs: null }, null, true],
    ['direct beats relay', { kind: 'public', rttMs: 50 }, { kind: 'relay', rttMs: 5 }, true],
    ['relay never beats direct', { kind: 'relay', rttMs: 1 }, { kind: 'public', rttMs: 80 }, false],
    ['LAN beats public, even slower', { kind: 'lan', rttMs: 10 }, { kind: 'public', rttMs: 2 }, true],
    ['public does not beat LAN', { kind: 'public', rttMs: 1 }, { kind: 'lan', rttMs: 10 }, false],
    ['learned ranks with public: 30 % and 1 ms faster switches', { kind: 'learned', rttMs: 6 }, { kind: 'public', rttMs: 10 }, true],
    ['hysteresis: 20 % faster keeps the current path', { kind: 'public', rttMs: 8 }, { kind: 'public', rttMs: 10 }, false],
    ['hysteresis: 50 % faster but < 1 ms keeps the current path', { kind: 'public', rttMs: 0.4 }, { kind: 'public', rttMs: 0.9 }, false],
    ['unmeasured never displaces a measured path of the same rank', { kind: 'public', rttMs: null }, { kind: 'public', rttMs: 50 }, false],
    ['equal paths: keep the current one', { kind: 'lan', rttMs: 3 }, { kind: 'lan', rttMs: 3 }, false]
  ]
  for (const [name, a, b, want] of rows) t.test(name, async t => { t.equal(betterPath(a, b), want) })
})

t.test('candidate state', async t => {
  const now = 1_000_000
  const at = (patch: Partial<Candidate>): Candidate => ({ ...newCandidate(ipToInt('203.0.113.9'), 7000, 'public'), ...patch })
  const rows: Array<[string, Candidate, boolean, ReturnType<typeof candidateState>]> = [
    ['never probed', at({}), false, 'untried'],
    ['probed, no answer yet', at({ pingsSent: 2, lastPingAt: now - 100 }), false, 'probing'],
    ['answered recently', at({ pingsSent: 2, pongs: 1, lastPongAt: now - 100, lastHeardAt: now - 100 }), true, 'confirmed'],
    [`${MISS_LIMIT} probes unanswered, silent ${PATH_SILENCE} ms`, at({ pingsSent: 5, pongs: 1, lastPongAt: now - PATH_SILENCE, lastHeardAt: now - PATH_SILENCE, unanswered: MISS_LIMIT }), false, 'probing'],
    [`a hiccup: ${MISS_LIMIT} probes unanswered but heard ${PATH_SILENCE - 100} ms ago`, at({ pingsSent: 5, pongs: 1, lastPongAt: now - PATH_SILENCE + 100, lastHeardAt: now - PATH_SILENCE + 100, unanswered: MISS_LIMIT }), true, 'confirmed'],
    [`silent ${PATH_SILENCE} ms but only ${MISS_LIMIT - 1} probes unanswered`, at({ pingsSent: 5, pongs: 1, lastPongAt: now - PATH_SILENCE, lastHeardAt: now - PATH_SILENCE, unanswered: MISS_LIMIT - 1 }), true, 'confirmed'],
    ['a slow path (RTT 400 ms): silent 1.2 s is not yet 4 round trips', at({ pingsSent: 5, pongs: 1, lastPongAt: now - 1200, lastHeardAt: now - 1200, unanswered: MISS_LIMIT, rttMs: 400 }), true, 'confirmed'],
    ['a slow path (RTT 400 ms): silent 1.6 s is', at({ pingsSent: 5, pongs: 1, lastPongAt: now - 1600, lastHeardAt: now - 1600, unanswered: MISS_LIMIT, rttMs: 400 }), false, 'probing'],
    ['silent longer than TRUST_IDLE', at({ pingsSent: 5, pongs: 1, lastPongAt: now - TRUST_IDLE, lastHeardAt: now - TRUST_IDLE }), false, 'probing'],
    ['held down after a failure', at({ pingsSent: 5, pongs: 1, lastPongAt: now - 100, lastHeardAt: now - 100, holdUntil: now + HOLDDOWN }), true, 'held-down']
  ]
  for (const [name, c, alive, state] of rows) {
    t.test(name, async t => {
      t.equal(candidateAlive(c, now), alive, 'alive')
      t.equal(candidateState(c, now), state, 'status word')
    })
  }
})

t.test('an overdue probe: awaitingAnswer and suspectGap', async t => {
  const c = newCandidate(ipToInt('203.0.113.9'), 7000, 'public')
  c.lastHeardAt = 1000
  c.lastPingAt = 900
  t.equal(awaitingAnswer(c), false, 'answered after the last ping')
  c.lastPingAt = 1400
  t.equal(awaitingAnswer(c), true, 'a ping since the last word')
  t.equal(suspectGap(c), SUSPECT_PROBE, 'unmeasured: SUSPECT_PROBE')
  c.rttMs = 1
  t.equal(suspectGap(c), SUSPECT_PROBE, 'a fast path: SUSPECT_PROBE')
  c.rttMs = 300
  t.equal(suspectGap(c), 600, 'a slow path: two round trips')
})

t.test('isPrivate', async t => {
  const rows: Array<[string, boolean]> = [
    ['10.1.2.3', true], ['172.16.0.1', true], ['172.31.255.255', true], ['172.32.0.1', false], ['192.168.1.2', true],
    ['169.254.0.5', true], ['198.51.100.7', false], ['11.0.0.1', false]
  ]
  for (const [addr, want] of rows) t.test(addr, async t => { t.equal(isPrivate(ipToInt(addr)), want) })
})
