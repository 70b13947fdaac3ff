/**
 * Port mapping: a client asks its default gateway for a UDP mapping of its
 * tunnel port, with PCP (RFC 6887) or NAT-PMP (RFC 6886), keeps it renewed,
 * and deletes it when it stops. The mapped external endpoint is a candidate
 * the client offers its peers (client.ts: Punch candidates and the
 * registration's address list), so a peer behind a symmetric NAT can reach us
 * even when our own NAT is symmetric too (docs/NAT-TRAVERSAL.md, "Port
 * mapping"). Sans-IO on the injected clock: bytes and time in; datagrams to
 * the gateway's port 5351 and "the mapping changed" out (PortMapIo). The
 * socket, the gateway lookup and the timer are port-mapping-io.ts's.
 *
 *   start(gateway) ──▶ probing: one PCP MAP + one NAT-PMP external-address request per try,
 *     │                 tries PROBE_TRIES, answer wait PROBE_WAIT doubling (250, 500, 1000 ms)
 *     ├─ PCP MAP success ────────────────────────────────────────────────▶ mapped (pcp)
 *     ├─ NAT-PMP external address, PCP refused or silent ─▶ pmp-map: NAT-PMP MAP (same tries) ─▶ mapped (nat-pmp)
 *     └─ no answer in PROBE_TRIES / refused ─▶ failed(reason): no more requests until the network changes
 *   mapped ──lifetime/2──▶ renewal (same request; retries RENEW_RETRY doubling until expiry)
 *     ├─ answer: new lifetime (a new external endpoint is announced)
 *     ├─ no answer before expiry ─▶ changed(null), probing again (counted: portMapExpired)
 *     └─ an answer whose epoch went backwards (§3.6 / §8.5: the gateway rebooted and lost
 *        its table) ─▶ changed(null), probing again at once (counted: portMapGatewayReboots)
 *   refresh() (our public endpoint moved) ─▶ a renewal now (mapped), or probing again (failed)
 *   stop() ─▶ a delete (lifetime 0) for a live mapping ─▶ off
 *   forgetStale(record) (a mapping a killed run left, from the state directory) ─▶ deleted with
 *     its own nonce and port at the next setNetwork on the same gateway, before our own request
 *
 * Answers are accepted only from the gateway's port 5351, and a PCP answer
 * only with our nonce; anything else is counted (portMapForged,
 * portMapMalformed) and ignored. Main thread only.
 */
import type { Random } from '../random.js'
import { formatEndpoint, intToIp } from '../wire/addr.js'
import {
  NATPMP_PORT, decodeNatpmp, describeNatpmpResult, encodeNatpmpExternal, encodeNatpmpMap
} from '../wire/natpmp.js'
import { PCP_NONCE_LEN, PCP_PROTO_UDP, PCP_VERSION, decodePcp, describePcpResult, encodePcpMap } from '../wire/pcp.js'
import type { Endpoint } from './nat.js'
import { sameBytes } from './session.js'

/** Requested lifetime: RFC 6886 §3.3's recommended 2 hours (Tailscale asks the same). */
export const MAP_LIFETIME_SEC = 7200
/** First answer wait; doubles per try (RFC 6886 §3.1 starts at 250 ms; Tailscale probes for 250 ms). */
export const PROBE_WAIT = 250
/** Tries before giving up until the network changes (RFC 6886 allows 9; a LAN gateway answers in ms or not at all). */
export const PROBE_TRIES = 3
/** First renewal retry; doubles, capped at RENEW_RETRY_MAX, never past the expiry. */
export const RENEW_RETRY = 1000
export const RENEW_RETRY_MAX = 60_000

/** 'upnp' is control/upnp.ts's; this file speaks the other two. */
export type PortMapProtocol = 'pcp' | 'nat-pmp' | 'upnp'
type PcpPmp = 'pcp' | 'nat-pmp'

export interface PortMapIo {
  /** Send a datagram to the gateway's port 5351. */
  send(bytes: Uint8Array): void
  /** Our mapped external endpoint is now `ep` (null: none). */
  changed(ep: Endpoint | null): void
  log(level: 'info' | 'warn' | 'debug', msg: string, fields?: Record<string, unknown>): void
}

/** A live mapping as the daemon keeps it in its state directory (port-mapping-io.ts), so a run after a crash can delete it. */
export interface PortMapRecord {
  gateway: number
  internalPort: number
  protocol: PortMapProtocol
  /** PCP nonce, hex ('' for UPnP). */
  nonce: string
  external: Endpoint
  /** UPnP: where to send DeletePortMapping. */
  upnp?: { controlUrl: string, serviceType: string }
}

export interface PortMapNet {
  /** The default gateway (where requests go). */
  gateway: number
  /** Our address towards it (PCP's client address). */
  localIp: number
  /** Its subnet's mask (UPnP accepts SSDP answers from that subnet only); absent: the gateway alone. */
  mask?: number
}

/** `status`'s view of the mapping. */
export interface PortMapStatus {
  state: 'off' | 'idle' | 'probing' | 'mapping' | 'mapped' | 'failed'
  gateway: string | null
  protocol: PortMapProtocol | null
  /** The mapped external endpoint, or null. */
  external: string | null
  internalPort: number
  /** Lifetime the gateway granted, s. */
  lifetimeSec: number | null
  lifetimeLeftSec: number | null
  /** One sentence: what is going on, or why there is no mapping. */
  note: string
}

type State =
  | { state: 'off' }
  | { state: 'idle' }
  | { state: 'probing', tries: number, deadline: number, pmpExternal: number | null, pcpRefused: string | null, pmpRefused: string | null }
  | { state: 'mapping', tries: number, deadline: number, externalIp: number }
  | { state: 'mapped', proto: PcpPmp, external: Endpoint, lifetimeSec: number, grantedAt: number, renewAt: number, renewTries: number }
  | { state: 'failed', reason: string }

export class PortMapper {
  readonly #io: PortMapIo
  readonly #random: Random
  readonly #internalPort: number
  #net: PortMapNet | null = null
  #st: State = { state: 'idle' }
  /** PCP nonce: one per mapping life (a renewal reuses it, §11.2). */
  #nonce: Uint8Array
  /** The gateway's epoch from its last answer per protocol and when we read it (reboot detection; a gateway may run PCP and NAT-PMP with separate epochs). */
  #epoch: Record<PcpPmp, { epoch: number, at: number } | null> = { pcp: null, 'nat-pmp': null }
  /** A crashed run's mapping, to delete once we talk to its gateway. */
  #stale: PortMapRecord | null = null
  /** The stale delete we sent: its answer is expected, not forged. */
  #staleSent: { nonce: Uint8Array, internalPort: number } | null = null
  readonly counters = {
    portMapStaleDeleted: 0, portMapRequests: 0, portMapAnswers: 0, portMapForged: 0, portMapMalformed: 0,
    portMapRenewals: 0, portMapExpired: 0, portMapGatewayReboots: 0, portMapFailures: 0
  }

  constructor (io: PortMapIo, random: Random, internalPort: number) {
    this.#io = io
    this.#random = random
    this.#internalPort = internalPort
    this.#nonce = random.bytes(PCP_NONCE_LEN)
  }

  get state (): State['state'] { return this.#st.state }

  /** The mapped external endpoint, or null. */
  get external (): Endpoint | null { return this.#st.state === 'mapped' ? this.#st.external : null }

  /**
   * The network is `net` (null: no default gateway). A different gateway or
   * local address (or the first call) starts over: the old mapping, if any,
   * is gone with the old network.
   */
  setNetwork (net: PortMapNet | null, now: number): void {
    if (this.#st.state === 'off') return
    const same = net !== null && this.#net !== null && net.gateway === this.#net.gateway && net.localIp === this.#net.localIp
    if (same || (net === null && this.#net === null && this.#st.state === 'idle')) return
    this.#drop()
    this.#net = net
    if (net === null) { this.#st = { state: 'idle' }; return }
    this.#deleteStale(net)
    this.#io.log('info', 'port mapping: asking the gateway (PCP, NAT-PMP)', { gateway: intToIp(net.gateway), port: this.#internalPort })
    this.#probe(1, now)
  }

  /** A datagram arrived on the port-mapping socket from ip:port. */
  onPacket (b: Uint8Array, ip: number, port: number, now: number): void {
    const net = this.#net
    if (net === null || ip !== net.gateway || port !== NATPMP_PORT) { this.counters.portMapForged++; return }
    if (this.#st.state === 'off' || this.#st.state === 'idle' || this.#st.state === 'failed') return
    if (b.length > 0 && b[0] === PCP_VERSION) this.#onPcp(b, now)
    else this.#onPmp(b, now)
  }

  /** When tick() has work next (absolute ms on the injected clock; Infinity: none). */
  nextDue (): number {
    const st = this.#st
    switch (st.state) {
      case 'probing': case 'mapping': return st.deadline
      case 'mapped': return Math.min(st.renewAt, st.grantedAt + st.lifetimeSec * 1000)
      default: return Infinity
    }
  }

  tick (now: number): void {
    const st = this.#st
    if (st.state === 'probing' && now >= st.deadline) {
      if (st.pmpExternal !== null) { this.#mapPmp(1, st.pmpExternal, now); return }
      if (st.pcpRefused !== null && st.pmpRefused !== null) { this.#fail(`the gateway refused: PCP ${st.pcpRefused}; NAT-PMP ${st.pmpRefused}`); return }
      if (st.tries < PROBE_TRIES) { this.#probe(st.tries + 1, now); return }
      this.#fail(st.pcpRefused !== null
        ? `the gateway refused PCP (${st.pcpRefused}) and NAT-PMP did not answer in ${PROBE_TRIES} tries`
        : `no NAT-PMP/PCP answer from ${intToIp(this.#net!.gateway)} in ${PROBE_TRIES} tries`)
    } else if (st.state === 'mapping' && now >= st.deadline) {
      if (st.tries < PROBE_TRIES) this.#mapPmp(st.tries + 1, st.externalIp, now)
      else this.#fail(`the gateway answered NAT-PMP but not its mapping request in ${PROBE_TRIES} tries`)
    } else if (st.state === 'mapped') {
      const expires = st.grantedAt + st.lifetimeSec * 1000
      if (now >= expires) {
        this.counters.portMapExpired++
        this.#io.log('warn', 'port mapping expired: the gateway did not answer our renewals; asking again', { external: formatEndpoint(st.external.ip, st.external.port) })
        this.#drop()
        this.#probe(1, now)
      } else if (now >= st.renewAt) {
        this.counters.portMapRenewals++
        this.#sendMap(st.proto, MAP_LIFETIME_SEC, st.external)
        st.renewAt = Math.min(expires, now + Math.min(RENEW_RETRY_MAX, RENEW_RETRY * 2 ** st.renewTries))
        st.renewTries++
      }
    }
  }

  /** What to keep on disk while mapped (null otherwise): enough for a later run to delete it. */
  record (): PortMapRecord | null {
    const st = this.#st
    if (st.state !== 'mapped' || this.#net === null) return null
    return { gateway: this.#net.gateway, internalPort: this.#internalPort, protocol: st.proto, nonce: Buffer.from(this.#nonce).toString('hex'), external: { ...st.external } }
  }

  /** A mapping an earlier run left behind (killed before it could delete it): deleted when we next talk to its gateway. */
  forgetStale (r: PortMapRecord): void {
    if (r.protocol !== 'upnp' && /^[0-9a-f]{24}$/.test(r.nonce) && r.internalPort > 0 && r.internalPort < 65536) this.#stale = r
  }

  #deleteStale (net: PortMapNet): void {
    const r = this.#stale
    if (r === null || r.gateway !== net.gateway) return
    this.#stale = null
    this.#staleSent = { nonce: new Uint8Array(Buffer.from(r.nonce, 'hex')), internalPort: r.internalPort }
    this.counters.portMapStaleDeleted++
    this.#io.log('info', 'port mapping: deleting the mapping an earlier run left', { external: formatEndpoint(r.external.ip, r.external.port), internalPort: r.internalPort, protocol: r.protocol })
    if (r.protocol === 'pcp') {
      this.#io.send(encodePcpMap({
        lifetimeSec: 0, clientIp: net.localIp, nonce: new Uint8Array(Buffer.from(r.nonce, 'hex')), internalPort: r.internalPort, suggestedPort: r.external.port, suggestedIp: r.external.ip
      }))
    } else {
      this.#io.send(encodeNatpmpMap(r.internalPort, 0, 0))
    }
  }

  /**
   * Our public endpoint changed (the server sees us elsewhere: the router's
   * WAN address moved, or we are on another network behind the same gateway
   * address): renew a live mapping now (its answer names the external
   * address as it is now), or ask again after a failure.
   */
  refresh (now: number): void {
    const st = this.#st
    if (st.state === 'mapped') { st.renewAt = now; st.renewTries = 0; this.tick(now) } else if (st.state === 'failed' && this.#net !== null) this.#probe(1, now)
  }

  /** Stop: delete a live mapping (lifetime 0) and ask nothing more. Returns whether a delete went out. */
  stop (): boolean {
    const st = this.#st
    this.#st = { state: 'off' }
    if (st.state !== 'mapped') return false
    this.#sendMap(st.proto, 0, st.external)
    this.#io.log('info', 'port mapping deleted', { external: formatEndpoint(st.external.ip, st.external.port), protocol: st.proto })
    return true
  }

  status (now: number): PortMapStatus {
    const st = this.#st
    const base = { gateway: this.#net === null ? null : intToIp(this.#net.gateway), internalPort: this.#internalPort }
    const none = { protocol: null, external: null, lifetimeSec: null, lifetimeLeftSec: null }
    switch (st.state) {
      case 'off': return { state: 'off', ...base, ...none, note: 'stopped' }
      case 'idle': return { state: 'idle', ...base, ...none, note: 'no default gateway to ask' }
      case 'probing': return { state: 'probing', ...base, ...none, note: `asking ${base.gateway!} (PCP, NAT-PMP), try ${st.tries} of ${PROBE_TRIES}` }
      case 'mapping': return { state: 'mapping', ...base, ...none, note: `NAT-PMP answered; requesting the mapping, try ${st.tries} of ${PROBE_TRIES}` }
      case 'failed': return { state: 'failed', ...base, ...none, note: st.reason }
      case 'mapped': {
        const left = Math.max(0, Math.round((st.grantedAt + st.lifetimeSec * 1000 - now) / 1000))
        const ext = formatEndpoint(st.external.ip, st.external.port)
        return {
          state: 'mapped', ...base, protocol: st.proto, external: ext, lifetimeSec: st.lifetimeSec, lifetimeLeftSec: left,
          note: `${st.proto === 'pcp' ? 'PCP' : 'NAT-PMP'} mapping ${ext} → port ${this.#internalPort}, offered to peers as a candidate`
        }
      }
    }
  }

  // ── internals ──

  #probe (tries: number, now: number): void {
    this.#epoch = { pcp: null, 'nat-pmp': null }
    this.#st = { state: 'probing', tries, deadline: now + PROBE_WAIT * 2 ** (tries - 1), pmpExternal: null, pcpRefused: null, pmpRefused: null }
    this.#sendMap('pcp', MAP_LIFETIME_SEC, null)
    this.counters.portMapRequests++
    this.#io.send(encodeNatpmpExternal())
  }

  #mapPmp (tries: number, externalIp: number, now: number): void {
    this.#st = { state: 'mapping', tries, deadline: now + PROBE_WAIT * 2 ** (tries - 1), externalIp }
    this.#sendMap('nat-pmp', MAP_LIFETIME_SEC, null)
  }

  /** A MAP request (or renewal, or with lifetime 0 a delete) for our port. */
  #sendMap (proto: PcpPmp, lifetimeSec: number, current: Endpoint | null): void {
    this.counters.portMapRequests++
    if (proto === 'pcp') {
      this.#io.send(encodePcpMap({
        lifetimeSec, clientIp: this.#net!.localIp, nonce: this.#nonce, internalPort: this.#internalPort,
        suggestedPort: current?.port ?? this.#internalPort, suggestedIp: current?.ip ?? 0
      }))
    } else {
      // A NAT-PMP delete carries suggested port 0 (§3.4).
      this.#io.send(encodeNatpmpMap(this.#internalPort, lifetimeSec === 0 ? 0 : current?.port ?? this.#internalPort, lifetimeSec))
    }
  }

  #onPcp (b: Uint8Array, now: number): void {
    const a = decodePcp(b)
    if (typeof a === 'string') { this.counters.portMapMalformed++; return }
    if (this.#staleSent !== null && a.lifetimeSec === 0 && sameBytes(a.nonce, this.#staleSent.nonce)) { this.#staleSent = null; this.counters.portMapAnswers++; return }
    const st = this.#st
    if (a.result !== 0) {
      // An error answer without the MAP body cannot be matched by nonce; only the probe waits for one.
      if (a.nonce.length > 0 && !sameBytes(a.nonce, this.#nonce)) { this.counters.portMapForged++; return }
      this.counters.portMapAnswers++
      this.#pcpRefused(describePcpResult(a.result), now)
      return
    }
    if (!sameBytes(a.nonce, this.#nonce) || a.protocol !== PCP_PROTO_UDP || a.internalPort !== this.#internalPort) { this.counters.portMapForged++; return }
    this.counters.portMapAnswers++
    if (this.#rebooted('pcp', a.epoch, now)) return
    if (a.externalIp === 0 || a.externalPort === 0 || a.lifetimeSec === 0) {
      if (st.state === 'mapped' && st.proto === 'pcp') this.#lost('the gateway answered our PCP renewal without a mapping', now)
      else this.#pcpRefused('answered without an IPv4 mapping', now)
      return
    }
    // A PCP answer later than the probe wait still wins over the NAT-PMP request that followed (PCP is preferred).
    if (st.state === 'probing' || st.state === 'mapping' || (st.state === 'mapped' && st.proto === 'pcp')) this.#granted('pcp', { ip: a.externalIp, port: a.externalPort }, a.lifetimeSec, now)
  }

  #pcpRefused (why: string, now: number): void {
    const st = this.#st
    if (st.state === 'probing') {
      st.pcpRefused = why
      if (st.pmpExternal !== null) this.#mapPmp(1, st.pmpExternal, now)
    } else if (st.state === 'mapped' && st.proto === 'pcp') {
      this.#lost(`the gateway refused our PCP renewal (${why})`, now)
    }
  }

  #onPmp (b: Uint8Array, now: number): void {
    const a = decodeNatpmp(b)
    if (typeof a === 'string') { this.counters.portMapMalformed++; return }
    if (this.#staleSent !== null && a.op === 'map' && a.lifetimeSec === 0 && a.internalPort === this.#staleSent.internalPort) { this.#staleSent = null; this.counters.portMapAnswers++; return }
    const st = this.#st
    if (a.op === 'map' && a.result === 1 && st.state === 'probing') {
      // A NAT-PMP-only gateway answers our PCP request so (RFC 6887 §9): PCP is not spoken here.
      this.counters.portMapAnswers++
      this.#pcpRefused('unsupported (a NAT-PMP gateway)', now)
      return
    }
    if (a.op === 'map' && a.result === 0 && a.internalPort !== this.#internalPort) { this.counters.portMapForged++; return }
    this.counters.portMapAnswers++
    if (a.result !== 0) {
      const why = describeNatpmpResult(a.result)
      if (st.state === 'probing') {
        st.pmpRefused = why
        if (st.pcpRefused !== null) this.#fail(`the gateway refused: PCP ${st.pcpRefused}; NAT-PMP ${why}`)
      } else if (st.state === 'mapping') {
        this.#fail(`the gateway refused our NAT-PMP mapping request (${why})`)
      } else if (st.state === 'mapped' && st.proto === 'nat-pmp') {
        this.#lost(`the gateway refused our NAT-PMP renewal (${why})`, now)
      }
      return
    }
    if (this.#rebooted('nat-pmp', a.epoch, now)) return
    if (a.op === 'external') {
      if (st.state !== 'probing' || a.externalIp === 0) return
      st.pmpExternal = a.externalIp
      if (st.pcpRefused !== null) this.#mapPmp(1, a.externalIp, now)
      return
    }
    if (a.lifetimeSec === 0 || a.externalPort === 0) {
      if (st.state === 'mapping') this.#fail('the gateway answered our NAT-PMP request without a mapping')
      return
    }
    if (st.state === 'mapping') this.#granted('nat-pmp', { ip: st.externalIp, port: a.externalPort }, a.lifetimeSec, now)
    else if (st.state === 'mapped' && st.proto === 'nat-pmp') this.#granted('nat-pmp', { ip: st.external.ip, port: a.externalPort }, a.lifetimeSec, now)
  }

  /**
   * RFC 6886 §3.6 / RFC 6887 §8.5: the gateway's epoch must advance with our
   * clock (7/8 of it, less 2 s of slack); one that went backwards means the
   * gateway restarted and lost its mappings: start over at once.
   */
  #rebooted (proto: PcpPmp, epoch: number, now: number): boolean {
    const prev = this.#epoch[proto]
    this.#epoch[proto] = { epoch, at: now }
    if (prev === null) return false
    const expected = prev.epoch + ((now - prev.at) / 1000) * 7 / 8 - 2
    if (epoch >= expected) return false
    this.counters.portMapGatewayReboots++
    this.#io.log('warn', 'port mapping: the gateway restarted (its epoch went backwards); mapping again', { gateway: intToIp(this.#net!.gateway) })
    this.#drop()
    this.#probe(1, now)
    return true
  }

  #granted (proto: PcpPmp, ext: Endpoint, lifetimeSec: number, now: number): void {
    const prev = this.#st.state === 'mapped' ? this.#st.external : null
    this.#st = { state: 'mapped', proto, external: ext, lifetimeSec, grantedAt: now, renewAt: now + lifetimeSec * 500, renewTries: 0 }
    if (prev === null || prev.ip !== ext.ip || prev.port !== ext.port) {
      this.#io.log('info', 'port mapped', { protocol: proto, external: formatEndpoint(ext.ip, ext.port), internalPort: this.#internalPort, lifetimeSec })
      this.#io.changed(ext)
    }
  }

  /** A live mapping is gone (refused renewal): announce it and ask again. */
  #lost (why: string, now: number): void {
    this.#io.log('warn', `port mapping lost: ${why}; asking again`)
    this.#drop()
    this.#probe(1, now)
  }

  #fail (reason: string): void {
    this.counters.portMapFailures++
    this.#st = { state: 'failed', reason }
    this.#io.log('info', `no port mapping: ${reason}; asking again when the network changes`)
  }

  /** Forget a live mapping (announcing it) and pick a fresh nonce for the next. */
  #drop (): void {
    if (this.#st.state === 'mapped') this.#io.changed(null)
    this.#st = { state: 'idle' }
    this.#nonce = this.#random.bytes(PCP_NONCE_LEN)
  }
}

