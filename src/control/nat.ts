/**
 * NAT kinds: classification (one classifier, for our own NAT and for a
 * peer's), the punching strategy a pair of kinds calls for, and the client's
 * bookkeeping of how others see it (NatObserver). Pure data and decisions; the
 * client sends the NAT checks and tells its peers when the kind changes.
 *
 *   evidence ──▶ classifyNat ──▶ NatMapping ──(ours, the peer's)──▶ chooseStrategy
 *
 *   Where the evidence comes from:
 *     ours       – the server's main port (the reference, from registration
 *                  and Pongs), its NAT-check port and peers' Pongs (other views);
 *     the peer's – its own classification in a Punch (announced), else its
 *                  public endpoint from the peer list (the reference) and the
 *                  sources its probes arrive from (other views).
 */
import type { LanAddr } from '../wire/payloads.js'
import { NAT_WIRE_EDM, NAT_WIRE_EIM, NAT_WIRE_OPEN, NAT_WIRE_UNKNOWN } from '../wire/control.js'
import { MAX_ADVERTISED, MAX_OBSERVATIONS, NAT_CHECK_INTERVAL } from './constants.js'
import type { RelayReason } from './path.js'

/** Mapping behaviour (RFC 4787): no NAT, endpoint-independent (cone), endpoint-dependent (symmetric). */
export type NatMapping = 'unknown' | 'open' | 'eim' | 'edm'

export const NAT_LABEL: Readonly<Record<NatMapping, string>> = {
  unknown: 'unknown',
  open: 'none',
  eim: 'cone',
  edm: 'symmetric'
}

export function natToWire (n: NatMapping): number {
  switch (n) {
    case 'open': return NAT_WIRE_OPEN
    case 'eim': return NAT_WIRE_EIM
    case 'edm': return NAT_WIRE_EDM
    default: return NAT_WIRE_UNKNOWN
  }
}

export function natFromWire (n: number): NatMapping {
  return n === NAT_WIRE_OPEN ? 'open' : n === NAT_WIRE_EIM ? 'eim' : n === NAT_WIRE_EDM ? 'edm' : 'unknown'
}

export interface Endpoint { ip: number, port: number }

/** What is known about one host's NAT. */
export interface NatEvidence {
  /** The host's own classification (a peer's, from its Punch): wins when known. */
  announced?: NatMapping
  /** The host's endpoint as the server's main port sees it, or null. */
  reference: Endpoint | null
  /** The host's own addresses and port: the reference equal to one of them means no NAT. */
  own?: { addrs: readonly number[], port: number }
  /** The host's endpoint as other destinations see it. */
  views: readonly Endpoint[]
}

/**
 * One classifier for our NAT and a peer's:
 *  - an announced classification other than 'unknown' wins;
 *  - no reference → unknown;
 *  - the reference is one of the host's own addresses with its own port → open (no NAT);
 *  - another view with the reference's IP and another port → edm (one is enough: it wins over eim views);
 *  - a view with the same ip:port → eim;
 *  - otherwise (views from other IPs, e.g. LAN peers, say nothing) unknown.
 */
export function classifyNat (e: NatEvidence): NatMapping {
  if (e.announced !== undefined && e.announced !== 'unknown') return e.announced
  const ref = e.reference
  if (ref === null) return 'unknown'
  if (e.own !== undefined && e.own.addrs.includes(ref.ip) && ref.port === e.own.port) return 'open'
  let eim = false
  for (const v of e.views) {
    if (v.ip !== ref.ip) continue
    if (v.port !== ref.port) return 'edm'
    eim = true
  }
  return eim ? 'eim' : 'unknown'
}

// ── strategy ────────────────────────────────────────────────────────────────

export type Strategy = 'punch' | 'birthday' | 'relay-only'

/**
 * The punching strategy for a pair of NAT mappings. Only a pair of
 * endpoint-dependent mappings is hopeless without port prediction (both
 * sides would have to guess the other's new port: ~65k probes per side for
 * even odds, research/nat-anchors.md §1); every other pair is punched, the
 * symmetric side's real port being learned from its probes.
 */
export function chooseStrategy (local: NatMapping, peer: NatMapping): { strategy: Strategy, reason: RelayReason | null } {
  if (local === 'edm' && peer === 'edm') return { strategy: 'relay-only', reason: 'DOUBLE_SYMMETRIC' }
  // One side symmetric, the other cone: punch first (enough when the cone
  // side does not filter by port); if that fails, a birthday search.
  if (oneSymmetricOneCone(local, peer)) return { strategy: 'birthday', reason: null }
  return { strategy: 'punch', reason: null }
}

export function oneSymmetricOneCone (a: NatMapping, b: NatMapping): boolean {
  return (a === 'edm' && b === 'eim') || (a === 'eim' && b === 'edm')
}

// ── the client's own NAT ─────────────────────────────────────────────────────

/**
 * How others see this client, and what that makes our NAT. Main thread, owned
 * by the ClientController, which feeds it the server's view (registration,
 * Pongs), NAT-check answers and peers' Pongs, sends the NAT checks it asks
 * for, and tells the peers when the kind or our endpoint changes.
 */
export class NatObserver {
  readonly #localEndpoints: () => LanAddr[]
  /** Our public endpoint as the server's main port sees it. */
  #observed: Endpoint | null = null
  /** Our public endpoint as other destinations see it (the server's NAT-check port, peers); reset when #observed changes. */
  readonly #views: Endpoint[] = []
  #nat: NatMapping = 'unknown'
  /** Outstanding NAT checks: txid → sent at. */
  readonly #checks = new Map<number, number>()
  #lastCheck = -Infinity

  /** `localEndpoints`: our own addresses with our UDP port, read afresh at each use. */
  constructor (localEndpoints: () => LanAddr[]) { this.#localEndpoints = localEndpoints }

  get nat (): NatMapping { return this.#nat }
  get observed (): Endpoint | null { return this.#observed }
  /** How other destinations (the NAT-check port, peers) see us, oldest first (for netcheck). */
  get views (): readonly Endpoint[] { return this.#views }

  /**
   * The server's main port sees us at ip:port. Null when that is nothing new;
   * else whether it is the first view and whether our NAT kind changed.
   */
  serverView (ip: number, port: number): { first: boolean, natChanged: boolean } | null {
    if (ip === 0) return null
    if (this.#observed !== null && this.#observed.ip === ip && this.#observed.port === port) return null
    const first = this.#observed === null
    this.#observed = { ip, port }
    this.#views.length = 0
    return { first, natChanged: this.#reclassify() }
  }

  /** Another destination sees us at `ep`. Returns whether our NAT kind changed. */
  otherView (ep: Endpoint): boolean {
    if (ep.ip === 0) return false
    if (this.#views.some(o => o.ip === ep.ip && o.port === ep.port)) return false
    this.#views.push(ep)
    if (this.#views.length > MAX_OBSERVATIONS) this.#views.shift()
    return this.#reclassify()
  }

  /** The NAT check is due: sent once the server has told us our public endpoint, again every NAT_CHECK_INTERVAL until classified. */
  checkDue (now: number): boolean {
    return this.#nat === 'unknown' && this.#observed !== null && now - this.#lastCheck >= NAT_CHECK_INTERVAL
  }

  /** A NAT check went out with this txid (at most 8 outstanding). */
  checkSent (txid: number, now: number): void {
    this.#lastCheck = now
    this.#checks.set(txid, now)
    if (this.#checks.size > 8) this.#checks.delete(this.#checks.keys().next().value!)
  }

  /** The NAT-check port answered `txid`: true when it was ours (then the caller passes its view to otherView). */
  checkAnswered (txid: number): boolean { return this.#checks.delete(txid) }

  /** What we tell peers to probe: our public endpoint as the server sees it, then our own addresses. */
  localCandidates (): LanAddr[] {
    const out: LanAddr[] = []
    if (this.#observed !== null) out.push({ ip: this.#observed.ip, port: this.#observed.port })
    for (const a of this.#localEndpoints()) {
      if (!out.some(o => o.ip === a.ip && o.port === a.port)) out.push(a)
    }
    return out.slice(0, MAX_ADVERTISED)
  }

  #reclassify (): boolean {
    const local = this.#localEndpoints()
    const nat = classifyNat({ reference: this.#observed, own: { addrs: local.map(a => a.ip), port: local[0]?.port ?? -1 }, views: this.#views })
    if (nat === this.#nat) return false
    this.#nat = nat
    return true
  }
}
