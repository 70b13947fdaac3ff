/**
 * The client's own NAT, as the coordinator (client.ts) sees it: the
 * NatObserver (nat.ts) fed with every view of our public endpoint, the
 * periodic NAT checks, and what a change means for the peers.
 *
 *   server's main port (registration, Pongs) ─▶ serverView ─┐
 *   NAT-check port's answer, peers' Pongs ─────▶ addObservation / natCheckAnswered
 *                                                            ▼
 *                               NatObserver reclassifies ─▶ every peer's DirectPath.localChanged
 *                                                             (a Punch carries our NAT kind)
 *   tick() ─▶ checkDue / check: a NAT check through the server link (server-link.ts)
 *   netcheck() ─▶ NetcheckFacts (the control socket's netcheck)
 *   candidates() ─▶ what a Punch offers: the public endpoint, the port mapping's (opt.mappedEndpoint), our addresses;
 *   mappingChanged() ─▶ every peer's DirectPath.localChanged (a Punch carries the new list)
 *
 * Main thread only.
 */
import { isHandle } from '../wire/endpoint-handle.js'
import type { Logger } from '../log.js'
import { formatEndpoint } from '../wire/addr.js'
import { NAT_LABEL, NatObserver, type Endpoint } from './nat.js'
import type { PeerRemote } from './peer-table.js'
import type { ClientOptions } from './client-context.js'
import type { LanAddr } from '../wire/payloads.js'
import { MAX_ADVERTISED } from './constants.js'

/** `list` with the port mapping's endpoint `mapped` at index `at` (unless null or already there), at most MAX_ADVERTISED long. */
export function withMapped (list: readonly LanAddr[], mapped: LanAddr | null, at: number): LanAddr[] {
  const out = list.filter(a => mapped === null || a.ip !== mapped.ip || a.port !== mapped.port)
  if (mapped !== null) out.splice(Math.min(at, out.length), 0, mapped)
  return out.slice(0, MAX_ADVERTISED)
}

/** What a client knows about its NAT and its server (`netcheck`); the daemon adds live probe results. */
export interface NetcheckFacts {
  /** 'unknown' | 'none' | 'cone' | 'symmetric' (nat.ts NAT_LABEL). */
  nat: string
  /** How that classification was reached, in plain words. */
  natHow: string
  /** Our endpoint as the server's main port sees it (the reflexive address), or null. */
  publicEndpoint: string | null
  /** Our endpoint as the server's NAT-check port saw it in its newest answer, or null. */
  natCheckView: string | null
  /** Every other view of our endpoint kept for the classification (NAT-check port, peers). */
  otherViews: string[]
  /** Our own addresses with our UDP port. */
  localEndpoints: string[]
  registered: boolean
  state: string
  /** Median keepalive RTT to the server, ms, or null. */
  rttMs: number | null
}

/** What ClientNat needs from the coordinator. */
export interface ClientNatHooks {
  /** Every peer (told when our NAT or public endpoint changes). */
  peers(): Iterable<PeerRemote>
  /** Send a NAT check through the server link; its txid, or null when none could go. */
  sendNatCheck(): number | null
}

export class ClientNat {
  readonly #opt: ClientOptions
  readonly #log: Logger
  readonly #hooks: ClientNatHooks
  /** Views of our endpoint and the classification (nat.ts). */
  readonly observer: NatObserver
  /** The NAT-check port's view of us from the newest answer (netcheck), or null. */
  #natCheckView: Endpoint | null = null

  constructor (opt: ClientOptions, log: Logger, hooks: ClientNatHooks) {
    this.#opt = opt
    this.#log = log
    this.#hooks = hooks
    this.observer = new NatObserver(() => opt.localEndpoints?.() ?? [])
  }

  /** The server's main port told us our public endpoint. */
  serverView (ip: number, port: number, now: number): void {
    const r = this.observer.serverView(ip, port)
    if (r === null) return
    if (r.natChanged) this.#natChanged(now)
    if (this.#opt.p2p === true) {
      this.check(now)
      if (!r.first) {
        this.#log.info('our public endpoint changed', { publicEndpoint: formatEndpoint(ip, port) })
        this.#opt.publicEndpointChanged?.()
        for (const p of this.#hooks.peers()) p.path?.publicEndpointMoved(now)
      }
    }
  }

  /** Another destination (a peer) saw us at `ep`. */
  addObservation (ep: Endpoint, now: number): void {
    if (this.observer.otherView(ep)) this.#natChanged(now)
  }

  /** One of our NAT checks (periodic, or netcheck's) was answered: the NAT-check port sees us at `ep`. */
  natCheckAnswered (ep: Endpoint, now: number): void {
    this.#natCheckView = ep
    this.addObservation(ep, now)
  }

  #natChanged (now: number): void {
    this.#log.info('NAT classified', { nat: NAT_LABEL[this.observer.nat] })
    // Tell every peer (a Punch carries our NAT kind): a peer that heard
    // 'unknown' from us would pick the wrong strategy.
    for (const p of this.#hooks.peers()) p.path?.localChanged(now)
  }

  /** What we tell peers to probe (a Punch): our public endpoint, then the port mapping's endpoint, then our own addresses. */
  /** Our IPv4 candidates for a Punch (an endpoint handle has no IPv4 address to put on the wire: IPv6 ones go in CANDIDATE6). */
  candidates (): LanAddr[] { return withMapped(this.observer.localCandidates().filter(c => !isHandle(c.ip)), this.#opt.mappedEndpoint?.() ?? null, 1) }

  /** The port mapping appeared, changed or went away: tell every peer (a Punch carries our candidates). */
  mappingChanged (now: number): void {
    for (const p of this.#hooks.peers()) p.path?.localChanged(now)
  }

  /** Send a NAT check now. */
  check (now: number): void {
    const txid = this.#hooks.sendNatCheck()
    if (txid !== null) this.observer.checkSent(txid, now)
  }

  /** Is a periodic NAT check due (direct paths on)? */
  checkDue (now: number): boolean {
    return this.#opt.p2p === true && this.observer.checkDue(now)
  }

  /** What we know about our NAT, for netcheck; `server` is the server link's view. */
  netcheck (server: { registered: boolean, state: string, rttMs: number | null }): NetcheckFacts {
    const local = this.#opt.localEndpoints?.() ?? []
    const observed = this.observer.observed
    const nat = this.observer.nat
    const views = this.observer.views
    let how: string
    if (observed === null) how = 'not yet: the server has not told us our public endpoint (not registered)'
    else if (nat === 'open') how = 'the server sees our own address and port: no NAT between us and it'
    else if (nat === 'eim') how = `the server's main port and ${views.length} other destination${views.length === 1 ? '' : 's'} (its NAT-check port, peers) see the same public endpoint: the mapping does not depend on the destination`
    else if (nat === 'edm') how = 'another destination (the NAT-check port or a peer) sees another public port than the server\'s main port: the mapping depends on the destination'
    else how = this.#opt.p2p === true ? 'no second view yet: the NAT-check port has not answered and no peer has reported how it sees us' : 'not classified: direct paths are off (--no-p2p), so no NAT checks are sent'
    return {
      nat: NAT_LABEL[nat],
      natHow: how,
      publicEndpoint: observed === null ? null : formatEndpoint(observed.ip, observed.port),
      natCheckView: this.#natCheckView === null ? null : formatEndpoint(this.#natCheckView.ip, this.#natCheckView.port),
      otherViews: views.map(v => formatEndpoint(v.ip, v.port)),
      localEndpoints: local.map(a => formatEndpoint(a.ip, a.port)),
      registered: server.registered,
      state: server.state,
      rttMs: server.rttMs
    }
  }
}
