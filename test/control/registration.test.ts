/**
 * registration.ts: every transition of the registration state machine, as a
 * table of named cases (one t.test per row): from state × event to the next
 * state with its data.
 */
import t from 'tap'
import * as R from '../../src/control/registration.js'
import { RESP_ADDRESS_BOUND, RESP_KEY_REVOKED, RESP_NOT_AUTHORIZED } from '../../src/wire/payloads.js'
import { RESP_ADDRESS_IN_USE, RESP_ADDRESS_OUTSIDE_NETWORK, RESP_ADDRESS_RESERVED, RESP_SERVER_FULL } from '../../src/wire/payloads.js'
import { ipToInt } from '../../src/wire/addr.js'

const registering: R.Registration = { state: 'registering', attempts: 3, nextAttemptAt: 500 }
const registered: R.Registration = { state: 'registered', attempts: 1, nextAttemptAt: 600 }
const reconnecting: R.Registration = { state: 'reconnecting', attempts: 2, nextAttemptAt: 700 }
const rejectedNew: R.Registration = { state: 'rejected', registeredBefore: false, attempts: 4, nextAttemptAt: 800 }
const rejectedOld: R.Registration = { state: 'rejected', registeredBefore: true, attempts: 5, nextAttemptAt: 900 }

t.test('initial: registering, due at once', async t => {
  t.same(R.initialRegistration(42), { state: 'registering', attempts: 0, nextAttemptAt: 42 })
})

t.test('transitions', async t => {
  const rows: Array<[string, R.Registration, R.Registration]> = [
    ['attemptSent counts and schedules (registering)', R.attemptSent(registering, 1000, n => n * 10), { state: 'registering', attempts: 4, nextAttemptAt: 1040 }],
    ['attemptSent keeps registeredBefore (rejected)', R.attemptSent(rejectedOld, 1000, () => 5), { state: 'rejected', registeredBefore: true, attempts: 6, nextAttemptAt: 1005 }],
    ['attemptSent while registered: a rekey\'s tries', R.attemptSent(registered, 1000, () => 1), { state: 'registered', attempts: 2, nextAttemptAt: 1001 }],
    ['accepted from registering', R.accepted(registering), { state: 'registered', attempts: 0, nextAttemptAt: 500 }],
    ['accepted from rejected', R.accepted(rejectedOld), { state: 'registered', attempts: 0, nextAttemptAt: 900 }],
    ['accepted from reconnecting', R.accepted(reconnecting), { state: 'registered', attempts: 0, nextAttemptAt: 700 }],
    ['refused before any registration', R.refused(registering, 5000), { state: 'rejected', registeredBefore: false, attempts: 3, nextAttemptAt: 5000 }],
    ['refused after a registration', R.refused(reconnecting, 5000), { state: 'rejected', registeredBefore: true, attempts: 2, nextAttemptAt: 5000 }],
    ['refused again keeps registeredBefore', R.refused(rejectedOld, 5000), { state: 'rejected', registeredBefore: true, attempts: 5, nextAttemptAt: 5000 }],
    ['authFailed before any registration: rejected', R.authFailed(registering), { state: 'rejected', registeredBefore: false, attempts: 3, nextAttemptAt: 500 }],
    ['authFailed while reconnecting: still reconnecting', R.authFailed(reconnecting), reconnecting],
    ['authFailed during a rekey: reconnecting', R.authFailed(registered), { state: 'reconnecting', attempts: 1, nextAttemptAt: 600 }],
    ['authFailed after a refusal that followed a registration: reconnecting', R.authFailed(rejectedOld), { state: 'reconnecting', attempts: 5, nextAttemptAt: 900 }],
    ['authFailed after a first refusal: rejected', R.authFailed(rejectedNew), rejectedNew],
    ['lost: reconnecting, tries start over', R.lost(registered), { state: 'reconnecting', attempts: 0, nextAttemptAt: 600 }],
    ['serverBye: reconnecting at the given time', R.serverBye(registered, 2000), { state: 'reconnecting', attempts: 0, nextAttemptAt: 2000 }],
    ['pong on the current session ends a reconnection', R.pongOnCurrent(reconnecting), { state: 'registered', attempts: 2, nextAttemptAt: 700 }],
    ['pong while registered changes nothing', R.pongOnCurrent(registered), registered],
    ['pong while rejected changes nothing', R.pongOnCurrent(rejectedOld), rejectedOld]
  ]
  for (const [name, got, want] of rows) t.test(name, async t => { t.same(got, want) })
})

t.test('predicates', async t => {
  const rows: Array<[R.Registration, boolean, boolean]> = [
    [registering, false, false],
    [registered, true, true],
    [reconnecting, true, true],
    [rejectedNew, false, false],
    [rejectedOld, true, false]
  ]
  for (const [r, ever, usable] of rows) {
    t.test(`${r.state}${r.state === 'rejected' ? (r.registeredBefore ? ' (after a registration)' : ' (never registered)') : ''}`, async t => {
      t.equal(R.everRegistered(r), ever, 'everRegistered')
      t.equal(R.isRegistered(r), usable, 'isRegistered')
      t.equal(R.describe(r), r.state, 'status word')
    })
  }
})

t.test('describeRefusal names the address and what to do', async t => {
  const ip = ipToInt('10.0.0.9')
  t.match(R.describeRefusal(RESP_ADDRESS_IN_USE, ip), /10\.0\.0\.9 is in use/)
  t.match(R.describeRefusal(RESP_SERVER_FULL, ip), /full/)
  t.match(R.describeRefusal(RESP_ADDRESS_OUTSIDE_NETWORK, ip), /outside/)
  t.match(R.describeRefusal(RESP_ADDRESS_RESERVED, ip), /reserved/)
  t.match(R.describeRefusal(RESP_ADDRESS_BOUND, ip, 'SHA256:abc'), /^the server refused 10\.0\.0\.9: it belongs to another node key \(not this node's key SHA256:abc\); ask the operator to run `lightweight-tunnel nodes remove 10\.0\.0\.9` on the server if this node replaced it/)
  t.match(R.describeRefusal(RESP_KEY_REVOKED, ip), /revoked this node's key; ask them to run `lightweight-tunnel nodes allow KEY`/)
  t.match(R.describeRefusal(RESP_NOT_AUTHORIZED, ip), /not in the server's list of admitted nodes \(--authorized-nodes\)/)
})
