/**
 * The client's registration with the server as a state machine: a
 * discriminated union that carries its data, one pure transition function
 * per event (the ClientController sends the inits, installs the session and
 * logs; these only decide the next state), and `describe` for status.
 *
 *     registering ──accepted──▶ registered ──lost / serverBye──▶ reconnecting
 *          │                      ▲  ▲                               │
 *          │                      │  └──pongOnCurrent / accepted─────┘
 *          └──refused / authFailed──▶ rejected ──accepted──┘
 *
 *   Every event from every state (— : unchanged):
 *
 *     event             registering   registered     reconnecting   rejected
 *     attemptSent       —             —              —              —           (attempts + 1, nextAttemptAt)
 *     accepted          registered    registered     registered     registered
 *     refused           rejected      rejected       rejected       rejected
 *     authFailed        rejected      reconnecting   reconnecting   registeredBefore ? reconnecting : —
 *     lost, serverBye   reconnecting  reconnecting   reconnecting   reconnecting
 *     pongOnCurrent     —             —              registered     —
 *
 * Every state carries the init schedule: `attempts` (inits sent since the
 * last success; while registered, the rekey's inits) and `nextAttemptAt`
 * (monotonic ms when tick() sends the next one). `rejected` also remembers
 * whether we were ever registered (a later success logs "reconnected").
 * While reconnecting, the old keys stay installed: nothing is torn down until
 * a new session replaces them, so a server that merely missed some
 * keepalives costs nothing.
 */
import { intToIp } from '../wire/addr.js'
import { RESP_ADDRESS_BOUND, RESP_ADDRESS_IN_USE, RESP_ADDRESS_OUTSIDE_NETWORK, RESP_ADDRESS_RESERVED, RESP_KEY_REVOKED, RESP_NOT_AUTHORIZED, RESP_SERVER_FULL, type RespStatus } from '../wire/payloads.js'
import { assertNever } from './assert.js'

interface Schedule {
  /** Inits sent since the last success. */
  attempts: number
  /** When tick() sends the next init (monotonic ms). */
  nextAttemptAt: number
}

export type Registration =
  | ({ state: 'registering' } & Schedule)
  | ({ state: 'registered' } & Schedule)
  | ({ state: 'reconnecting' } & Schedule)
  | ({ state: 'rejected', registeredBefore: boolean } & Schedule)

export type RegistrationState = Registration['state']

/** Before the first init: due at once. */
export function initialRegistration (now: number): Registration {
  return { state: 'registering', attempts: 0, nextAttemptAt: now }
}

/** Were we ever registered (so a success is a reconnection)? */
export function everRegistered (r: Registration): boolean {
  switch (r.state) {
    case 'registering': return false
    case 'registered':
    case 'reconnecting': return true
    case 'rejected': return r.registeredBefore
    default: return assertNever(r)
  }
}

/** The server session is usable (registered, or reconnecting with the old keys). */
export function isRegistered (r: Registration): boolean {
  switch (r.state) {
    case 'registered':
    case 'reconnecting': return true
    case 'registering':
    case 'rejected': return false
    default: return assertNever(r)
  }
}

/** Event: an init went out; the next is due after `delay(attempts)` (the new count). */
export function attemptSent (r: Registration, now: number, delay: (attempts: number) => number): Registration {
  const attempts = r.attempts + 1
  return { ...r, attempts, nextAttemptAt: now + delay(attempts) }
}

/** Event: the server answered OK (from any state). */
export function accepted (r: Registration): Registration {
  return { state: 'registered', attempts: 0, nextAttemptAt: r.nextAttemptAt }
}

/** Event: the server refused us (address in use, full, …); the next try is at `nextAttemptAt`. */
export function refused (r: Registration, nextAttemptAt: number): Registration {
  return { state: 'rejected', registeredBefore: everRegistered(r), attempts: r.attempts, nextAttemptAt }
}

/** Event: the server rejected our init's authentication (wrong network key). Schedule unchanged. */
export function authFailed (r: Registration): Registration {
  const { attempts, nextAttemptAt } = r
  return everRegistered(r) ? { state: 'reconnecting', attempts, nextAttemptAt } : { state: 'rejected', registeredBefore: false, attempts, nextAttemptAt }
}

/** Event: the server went silent, or said it lost our session; the caller sends an init at once. */
export function lost (r: Registration): Registration {
  return { state: 'reconnecting', attempts: 0, nextAttemptAt: r.nextAttemptAt }
}

/** Event: the server said Bye (it is shutting down); try again at `nextAttemptAt`. */
export function serverBye (_r: Registration, nextAttemptAt: number): Registration {
  return { state: 'reconnecting', attempts: 0, nextAttemptAt }
}

/** Event: the server answered a Ping on our current session: a reconnection is over (the old session still works). */
export function pongOnCurrent (r: Registration): Registration {
  switch (r.state) {
    case 'reconnecting': return { state: 'registered', attempts: r.attempts, nextAttemptAt: r.nextAttemptAt }
    case 'registering':
    case 'registered':
    case 'rejected': return r
    default: return assertNever(r)
  }
}

/** The status word (`status --json` .state). */
export function describe (r: Registration): RegistrationState {
  return r.state
}

/** Why the server refused us, in plain words (`self`: our node key's fingerprint, when known). */
export function describeRefusal (status: RespStatus, tunnelIp: number, self?: string, six?: { address: string, serverHasV6: boolean }): string {
  const ours = self === undefined ? 'this node\'s key' : `this node's key ${self}`
  // The refusal is about our IPv6 address (the response's REFUSED attribute, wire/attrs.ts).
  if (six !== undefined) {
    const a = six.address
    switch (status) {
      case RESP_ADDRESS_BOUND: return `the server refused the IPv6 address ${a}: it belongs to another node key (not ${ours}); ask the operator to run \`lightweight-tunnel nodes remove ${a}\` on the server if this node replaced it, or pick another IPv6 --tun address`
      case RESP_ADDRESS_IN_USE: return `the IPv6 tunnel address ${a} is in use by another live client — pick another IPv6 --tun address`
      case RESP_ADDRESS_OUTSIDE_NETWORK: return six.serverHasV6
        ? `the IPv6 tunnel address ${a} is outside the server's IPv6 network — use an address in the network of the server's IPv6 --tun address`
        : `this node has the IPv6 tunnel address ${a}, but the server has no IPv6 network — give the server an IPv6 --tun address (e.g. --tun 10.0.0.1/24,fd00:77::1/64) or remove ours`
      case RESP_ADDRESS_RESERVED: return `the IPv6 tunnel address ${a} is reserved (the server's own, or the network's all-zero address)`
      default: break
    }
  }
  switch (status) {
    case RESP_ADDRESS_BOUND: return `the server refused ${intToIp(tunnelIp)}: it belongs to another node key (not ${ours}); ask the operator to run \`lightweight-tunnel nodes remove ${intToIp(tunnelIp)}\` on the server if this node replaced it, or pick another --tun address`
    case RESP_KEY_REVOKED: return `the server's operator revoked ${ours}; ask them to run \`lightweight-tunnel nodes allow KEY\` on the server if that was a mistake`
    case RESP_NOT_AUTHORIZED: return `${ours} with the address ${intToIp(tunnelIp)} is not in the server's list of admitted nodes (--authorized-nodes); ask the operator to add "PUBKEY ${intToIp(tunnelIp)}" for this node (PUBKEY: this node's public key, shown by lightweight-tunnel status and printed by lightweight-tunnel pubkey < node.key)`
    case RESP_ADDRESS_IN_USE: return `the tunnel address ${intToIp(tunnelIp)} is in use by another live client — pick another --tun address`
    case RESP_SERVER_FULL: return 'the server is full (its --max-clients is reached)'
    case RESP_ADDRESS_OUTSIDE_NETWORK: return `the tunnel address ${intToIp(tunnelIp)} is outside the server's network — use an address in the server's --tun network`
    case RESP_ADDRESS_RESERVED: return `the tunnel address ${intToIp(tunnelIp)} is reserved (the server's own, the network or the broadcast address)`
    default: return `status ${status}`
  }
}
