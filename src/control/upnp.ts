/**
 * UPnP IGD port mapping, the third protocol beside PCP and NAT-PMP
 * (port-mapping.ts): most home routers speak it, many of them only it.
 * Sans-IO on the injected clock: SSDP datagrams and HTTP requests out
 * (UpnpIo; upnp-io.ts sends them and bounds each request by time and size),
 * their answers and time in. The texts are wire/upnp.ts's.
 *
 *   setNetwork(net) ─▶ waiting: PCP/NAT-PMP get a head start (HEAD_START), then
 *   discovering: M-SEARCH ×4 targets to 239.255.255.250:1900 and to the gateway:1900,
 *     │  SSDP_TRIES tries of SSDP_WAIT; answers only from a private address in our subnet
 *     │  whose LOCATION is that same host; the gateway's is taken at once, another LAN
 *     │  host's at the end of the try
 *     ▼
 *   describing: GET LOCATION ─▶ the mapping services, best first (WANIPConnection:2, :1, WANPPPConnection:1)
 *     ▼
 *   querying: GetExternalIPAddress on service i (error or 0.0.0.0 ─▶ service i+1)
 *     ▼
 *   adding: AddPortMapping(UDP, external port = our port, client = our LAN address, lease LEASE_SEC)
 *     │  725 OnlyPermanentLeasesSupported ─▶ again with lease 0 (deleted on stop as always)
 *     │  718 ConflictInMappingEntry ─▶ again with a random external port (MAX_CONFLICTS)
 *     │  724 SamePortValuesRequired ─▶ again with external = internal
 *     ▼
 *   mapped ──lease/2──▶ querying + adding again with the live mapping kept (retries RENEW_RETRY
 *     doubling until it expires ─▶ changed(null), discovering again; counted: upnpExpired)
 *   otherProtocols('mapped') ─▶ standby (a live UPnP mapping is deleted: PCP/NAT-PMP win);
 *     otherProtocols('failed') ends the head start; anything else after standby ─▶ waiting again
 *   any other failure ─▶ failed(reason): nothing more until the network changes or refresh()
 *   stop() ─▶ DeletePortMapping for a live mapping ─▶ off
 *   forgetStale(record) ─▶ DeletePortMapping at the recorded control URL when we are on its gateway again
 *
 * Every answer that is not what we asked for is counted (upnpSsdpIgnored,
 * upnpMalformed) and ignored; a failure names its step and reason. Main
 * thread only.
 */
import type { Random } from '../random.js'
import { formatEndpoint, intToIp, ipToInt, isIpv4 } from '../wire/addr.js'
import {
  SEARCH_TARGETS, SSDP_GROUP, SSDP_PORT, addPortMappingArgs, decodeSoap, decodeSsdp, deletePortMappingArgs, describeUpnpError,
  encodeMSearch, encodeSoap, httpIpv4Host, parseDescription, type IgdService
} from '../wire/upnp.js'
import type { Endpoint } from './nat.js'
import { MAP_LIFETIME_SEC, PROBE_WAIT, RENEW_RETRY, RENEW_RETRY_MAX, type PortMapNet, type PortMapRecord, type PortMapStatus } from './port-mapping.js'

/** PCP/NAT-PMP's head start (ms): their first answer wait; a gateway that speaks them has answered by then. */
export const HEAD_START = PROBE_WAIT
/** One SSDP try (ms): we ask MX 1, so answers come within 1 s. */
export const SSDP_WAIT = 1000
export const SSDP_TRIES = 2
/** Lease asked (s), as for PCP/NAT-PMP. IGD:2 caps leases at 604800 and refuses 0. */
export const LEASE_SEC = MAP_LIFETIME_SEC
/** 718 answers (the external port is someone else's) before giving up. */
export const MAX_CONFLICTS = 4

export interface HttpRequest {
  method: 'GET' | 'POST'
  url: string
  /** POST: the SOAPAction header and the body. */
  soapAction?: string
  body?: string
}
/** What the I/O reports for a request: the status and body (already capped at MAX_DOC), or why there is none. */
export type HttpResult = { status: number, body: string } | { error: string }

export interface UpnpIo {
  /** Send an SSDP datagram to ip:port from our LAN address. */
  ssdp(bytes: Uint8Array, ip: string, port: number): void
  /** Start a request; its outcome comes back as onHttp(id, …) exactly once. */
  http(id: number, req: HttpRequest): void
  /** Our UPnP-mapped external endpoint is now `ep` (null: none). */
  changed(ep: Endpoint | null): void
  log(level: 'info' | 'warn' | 'debug', msg: string, fields?: Record<string, unknown>): void
}

/** A granted mapping; leaseSec 0: permanent (no renewal; deleted on stop). */
interface Live { service: IgdService, external: Endpoint, leaseSec: number, grantedAt: number }
type Found = { ip: number, location: string }

type State =
  | { state: 'off' }
  | { state: 'idle' }
  | { state: 'standby' }
  | { state: 'waiting', until: number }
  | { state: 'discovering', tries: number, deadline: number, fallback: Found | null, ignored: string | null }
  | { state: 'describing', req: number, location: string }
  | { state: 'querying', req: number, services: IgdService[], i: number, live: Live | null }
  | { state: 'adding', req: number, services: IgdService[], i: number, externalIp: number, port: number, leaseSec: number, conflicts: number, live: Live | null }
  | { state: 'mapped', live: Live, renewAt: number }
  | { state: 'failed', reason: string }

const PRIVATE: Array<[number, number]> = [[0x0a000000, 8], [0xac100000, 12], [0xc0a80000, 16], [0x64400000, 10], [0xa9fe0000, 16]]
/** RFC 1918, RFC 6598 shared space (an ISP router's LAN side), link-local. */
export function isPrivateIpv4 (ip: number): boolean {
  return PRIVATE.some(([net, len]) => ((ip ^ net) >>> (32 - len)) === 0)
}

export class UpnpMapper {
  readonly #io: UpnpIo
  readonly #random: Random
  readonly #internalPort: number
  #net: PortMapNet | null = null
  #st: State = { state: 'idle' }
  #nextReq = 1
  /** What PCP/NAT-PMP last reported (otherProtocols). */
  #other = 'probing'
  #stale: PortMapRecord | null = null
  readonly counters = {
    upnpRequests: 0, upnpAnswers: 0, upnpSsdpIgnored: 0, upnpMalformed: 0, upnpRefused: 0, upnpRenewals: 0,
    upnpExpired: 0, upnpStaleDeleted: 0, upnpFailures: 0
  }

  constructor (io: UpnpIo, random: Random, internalPort: number) {
    this.#io = io
    this.#random = random
    this.#internalPort = internalPort
  }

  get state (): State['state'] { return this.#st.state }

  /** The mapped external endpoint (kept while a renewal runs), or null. */
  get external (): Endpoint | null { return this.#live()?.external ?? null }

  /** The network is `net` (null: none); a new one starts over (see port-mapping.ts setNetwork). */
  setNetwork (net: PortMapNet | null, now: number): void {
    if (this.#st.state === 'off') return
    const same = net !== null && this.#net !== null && net.gateway === this.#net.gateway && net.localIp === this.#net.localIp
    if (same || (net === null && this.#net === null)) return
    this.#drop()
    this.#net = net
    if (net === null) return
    this.#deleteStale(net)
    this.#st = this.#other === 'mapped' ? { state: 'standby' } : { state: 'waiting', until: this.#other === 'failed' ? now : now + HEAD_START }
  }

  /** PCP/NAT-PMP's state (PortMapper.state) after each of its events. */
  otherProtocols (state: string, now: number): void {
    this.#other = state
    const st = this.#st
    if (st.state === 'off' || st.state === 'idle' || this.#net === null) return
    if (state === 'mapped') {
      if (st.state !== 'standby') { this.#deleteLive('PCP/NAT-PMP mapped the port'); this.#st = { state: 'standby' } }
    } else if (st.state === 'standby') {
      this.#st = { state: 'waiting', until: state === 'failed' ? now : now + HEAD_START }
    } else if (st.state === 'waiting' && state === 'failed') {
      st.until = now
    }
  }

  nextDue (): number {
    const st = this.#st
    switch (st.state) {
      case 'waiting': return this.#other === 'mapping' ? Infinity : st.until
      case 'discovering': return st.deadline
      case 'mapped': return Math.min(st.renewAt, this.#expiry(st.live))
      default: return Infinity
    }
  }

  tick (now: number): void {
    const st = this.#st
    if (st.state === 'waiting' && now >= st.until && this.#other !== 'mapping') {
      this.#io.log('info', 'port mapping: asking UPnP IGD', { gateway: intToIp(this.#net!.gateway), port: this.#internalPort })
      this.#discover(1, now)
    } else if (st.state === 'discovering' && now >= st.deadline) {
      if (st.fallback !== null) this.#describe(st.fallback)
      else if (st.tries < SSDP_TRIES) this.#discover(st.tries + 1, now)
      else this.#fail(`no IGD answered SSDP in ${SSDP_TRIES} tries${st.ignored === null ? '' : ` (ignored: ${st.ignored})`}`)
    } else if (st.state === 'mapped') {
      if (now >= this.#expiry(st.live)) {
        this.counters.upnpExpired++
        this.#io.log('warn', 'UPnP port mapping expired: the gateway did not answer our renewals; asking again', { external: formatEndpoint(st.live.external.ip, st.live.external.port) })
        this.#drop()
        this.#discover(1, now)
      } else if (now >= st.renewAt) {
        this.counters.upnpRenewals++
        // The live mapping rides along; a failed step puts it back with a retry time (#stepFailed).
        this.#query([st.live.service], 0, st.live)
      }
    }
  }

  /** An SSDP datagram from ip arrived on our discovery socket. */
  onSsdp (b: Uint8Array, ip: number): void {
    const st = this.#st
    if (st.state !== 'discovering') return
    const net = this.#net!
    if (!isPrivateIpv4(ip) || ((ip ^ net.localIp) & (net.mask ?? 0xffffffff)) !== 0 || ip === net.localIp) {
      this.counters.upnpSsdpIgnored++
      st.ignored = `an answer from ${intToIp(ip)}, not a private address in our subnet`
      return
    }
    const a = decodeSsdp(b)
    if (typeof a === 'string') { this.counters.upnpMalformed++; st.ignored = `${intToIp(ip)}: ${a}`; return }
    if (!(SEARCH_TARGETS as readonly string[]).includes(a.st)) { this.counters.upnpSsdpIgnored++; return }
    if (httpIpv4Host(a.location) !== intToIp(ip)) {
      this.counters.upnpSsdpIgnored++
      st.ignored = `${intToIp(ip)}'s LOCATION is not an http URL on that host`
      return
    }
    this.counters.upnpAnswers++
    // Normalized (control characters percent-encoded): the URL appears in status notes and logs.
    const location = new URL(a.location).href
    if (ip === net.gateway) this.#describe({ ip, location })
    else st.fallback ??= { ip, location }
  }

  /** The outcome of request `id`. */
  onHttp (id: number, r: HttpResult, now: number): void {
    const st = this.#st
    if (!('req' in st) || st.req !== id) return
    if ('error' in r) { this.#stepFailed(r.error, now); return }
    this.counters.upnpAnswers++
    if (st.state === 'describing') {
      const svcs = r.status === 200 ? parseDescription(r.body, st.location) : `HTTP ${r.status}`
      if (typeof svcs === 'string') { this.counters.upnpMalformed++; this.#fail(`the description at ${st.location}: ${svcs}`); return }
      this.#query(svcs, 0, null)
    } else if (st.state === 'querying') {
      const a = decodeSoap(r.status, r.body, 'GetExternalIPAddress')
      if (typeof a === 'string') { this.counters.upnpMalformed++; this.#stepFailed(a, now); return }
      if (!a.ok) { this.counters.upnpRefused++; this.#stepFailed(describeUpnpError(a.code, a.description), now); return }
      const ipText = a.args.get('NewExternalIPAddress') ?? ''
      const ext = isIpv4(ipText) ? ipToInt(ipText) : 0
      if (ext === 0) { this.#stepFailed(`no external address (${ipText === '' ? 'empty' : JSON.stringify(ipText.slice(0, 40))}): the WAN connection is down`, now); return }
      this.#add(st.services, st.i, ext, st.live?.external.port ?? this.#internalPort, st.live?.leaseSec ?? LEASE_SEC, 0, st.live)
    } else if (st.state === 'adding') {
      const a = decodeSoap(r.status, r.body, 'AddPortMapping')
      if (typeof a === 'string') { this.counters.upnpMalformed++; this.#stepFailed(a, now); return }
      if (a.ok) { this.#granted({ service: st.services[st.i]!, external: { ip: st.externalIp, port: st.port }, leaseSec: st.leaseSec, grantedAt: now }); return }
      this.counters.upnpRefused++
      if (a.code === 725 && st.leaseSec !== 0) {
        this.#io.log('info', 'UPnP: the gateway grants only permanent mappings; asking for one (deleted on exit)')
        this.#add(st.services, st.i, st.externalIp, st.port, 0, st.conflicts, st.live)
      } else if (a.code === 718 && st.conflicts + 1 < MAX_CONFLICTS) {
        this.#add(st.services, st.i, st.externalIp, 1024 + this.#random.int(65536 - 1024), st.leaseSec, st.conflicts + 1, st.live)
      } else if (a.code === 724 && st.port !== this.#internalPort) {
        this.#add(st.services, st.i, st.externalIp, this.#internalPort, st.leaseSec, st.conflicts, st.live)
      } else {
        this.#stepFailed(`AddPortMapping: ${describeUpnpError(a.code, a.description)}${a.code === 718 ? ` for ${MAX_CONFLICTS} ports` : ''}`, now)
      }
    }
  }

  /** Our public endpoint changed: renew now (the external address is asked again), or start over after a failure. */
  refresh (now: number): void {
    const st = this.#st
    if (st.state === 'mapped') { st.renewAt = now; this.#renewTries = 0; this.tick(now) } else if (st.state === 'failed' && this.#net !== null) this.#discover(1, now)
  }

  record (): PortMapRecord | null {
    const live = this.#live()
    if (live === null || this.#net === null) return null
    return {
      gateway: this.#net.gateway, internalPort: this.#internalPort, protocol: 'upnp', nonce: '', external: { ...live.external },
      upnp: { controlUrl: live.service.controlUrl, serviceType: live.service.serviceType }
    }
  }

  /** A UPnP mapping a killed run left: deleted when we are on its gateway again. */
  forgetStale (r: PortMapRecord): void {
    if (r.upnp !== undefined && httpIpv4Host(r.upnp.controlUrl) !== null && r.external.port > 0 && r.external.port < 65536) this.#stale = r
  }

  /** Stop: delete a live mapping; ask nothing more. Returns whether a delete went out. */
  stop (): boolean {
    const sent = this.#deleteLive('stopping')
    this.#st = { state: 'off' }
    return sent
  }

  status (now: number): PortMapStatus {
    const st = this.#st
    const gw = this.#net === null ? null : intToIp(this.#net.gateway)
    const base = { gateway: gw, internalPort: this.#internalPort, protocol: null, external: null, lifetimeSec: null, lifetimeLeftSec: null }
    switch (st.state) {
      case 'off': return { ...base, state: 'off', note: 'stopped' }
      case 'idle': return { ...base, state: 'idle', note: 'no default gateway to ask' }
      case 'standby': return { ...base, state: 'idle', note: 'not asked: PCP/NAT-PMP mapped the port' }
      case 'waiting': return { ...base, state: 'idle', note: 'waiting for PCP/NAT-PMP first' }
      case 'discovering': return { ...base, state: 'probing', note: `searching for a UPnP IGD (SSDP), try ${st.tries} of ${SSDP_TRIES}` }
      case 'describing': return { ...base, state: 'probing', note: `reading the UPnP description at ${st.location}` }
      case 'querying': return { ...base, state: 'probing', note: `asking the UPnP IGD for its external address (${st.services[st.i]!.serviceType.split(':').slice(3).join(':')})` }
      case 'adding': return { ...base, state: 'mapping', note: `UPnP AddPortMapping for external port ${st.port}` }
      case 'failed': return { ...base, state: 'failed', note: st.reason }
      case 'mapped': {
        const l = st.live
        const ext = formatEndpoint(l.external.ip, l.external.port)
        return {
          state: 'mapped', gateway: gw, internalPort: this.#internalPort, protocol: 'upnp', external: ext,
          lifetimeSec: l.leaseSec, lifetimeLeftSec: l.leaseSec === 0 ? null : Math.max(0, Math.round((this.#expiry(l) - now) / 1000)),
          note: `UPnP mapping ${ext} → port ${this.#internalPort}${l.leaseSec === 0 ? ' (a permanent lease: the gateway grants no other; deleted on exit)' : ''}, offered to peers as a candidate`
        }
      }
    }
  }

  // ── internals ──

  #live (): Live | null {
    const st = this.#st
    if (st.state === 'mapped') return st.live
    if (st.state === 'querying' || st.state === 'adding') return st.live
    return null
  }

  #expiry (l: Live): number { return l.leaseSec === 0 ? Infinity : l.grantedAt + l.leaseSec * 1000 }

  #discover (tries: number, now: number): void {
    this.#st = { state: 'discovering', tries, deadline: now + SSDP_WAIT, fallback: null, ignored: null }
    const gw = intToIp(this.#net!.gateway)
    for (const st of SEARCH_TARGETS) {
      const m = encodeMSearch(st, 1)
      this.#io.ssdp(m, SSDP_GROUP, SSDP_PORT)
      // Some gateways answer only a unicast M-SEARCH (and a unicast one needs no multicast route).
      this.#io.ssdp(m, gw, SSDP_PORT)
      this.counters.upnpRequests += 2
    }
  }

  #request (req: HttpRequest): number {
    const id = this.#nextReq++
    this.counters.upnpRequests++
    this.#io.http(id, req)
    return id
  }

  #soap (svc: IgdService, action: string, args: Array<[string, string | number]>): number {
    const { body, soapAction } = encodeSoap(svc.serviceType, action, args)
    return this.#request({ method: 'POST', url: svc.controlUrl, soapAction, body })
  }

  #describe (f: Found): void {
    const req = this.#request({ method: 'GET', url: f.location })
    this.#st = { state: 'describing', req, location: f.location }
  }

  #query (services: IgdService[], i: number, live: Live | null): void {
    const req = this.#soap(services[i]!, 'GetExternalIPAddress', [])
    this.#st = { state: 'querying', req, services, i, live }
  }

  #add (services: IgdService[], i: number, externalIp: number, port: number, leaseSec: number, conflicts: number, live: Live | null): void {
    const req = this.#soap(services[i]!, 'AddPortMapping', addPortMappingArgs(port, this.#internalPort, intToIp(this.#net!.localIp), leaseSec))
    this.#st = { state: 'adding', req, services, i, externalIp, port, leaseSec, conflicts, live }
  }

  /** A step failed (`why`): a renewal retries later; a first mapping tries the next service, or fails. */
  #stepFailed (why: string, now: number): void {
    const st = this.#st
    if (st.state === 'describing') { this.#fail(`the description at ${st.location}: ${why}`); return }
    if (st.state !== 'querying' && st.state !== 'adding') return
    const live = st.live
    if (live !== null) {
      const tries = this.#renewTries++
      this.#io.log('debug', `UPnP renewal failed: ${why}`)
      this.#st = { state: 'mapped', live, renewAt: Math.min(this.#expiry(live), now + Math.min(RENEW_RETRY_MAX, RENEW_RETRY * 2 ** tries)) }
      return
    }
    const svc = st.services[st.i]!
    if (st.i + 1 < st.services.length) { this.#query(st.services, st.i + 1, null); return }
    this.#fail(`${svc.serviceType.split(':').slice(3).join(':')} at ${svc.controlUrl}: ${st.state === 'querying' ? 'GetExternalIPAddress: ' : ''}${why}`)
  }

  /** Renewal tries since the last success (kept across the querying/adding states a renewal passes through). */
  #renewTries = 0

  #granted (l: Live): void {
    const prev = this.#live()
    this.#renewTries = 0
    this.#st = { state: 'mapped', live: l, renewAt: l.leaseSec === 0 ? Infinity : l.grantedAt + l.leaseSec * 500 }
    if (prev === null || prev.external.ip !== l.external.ip || prev.external.port !== l.external.port) {
      this.#io.log('info', 'port mapped', { protocol: 'upnp', external: formatEndpoint(l.external.ip, l.external.port), internalPort: this.#internalPort, leaseSec: l.leaseSec, service: l.service.serviceType })
      this.#io.changed(l.external)
    }
  }

  #fail (reason: string): void {
    this.counters.upnpFailures++
    this.#st = { state: 'failed', reason }
    this.#io.log('info', `no UPnP port mapping: ${reason}; asking again when the network changes`)
  }

  /** Send DeletePortMapping for a live mapping (fire and forget). */
  #deleteLive (why: string): boolean {
    const l = this.#live()
    if (l === null) return false
    this.#soap(l.service, 'DeletePortMapping', deletePortMappingArgs(l.external.port))
    this.#io.log('info', 'UPnP port mapping deleted', { external: formatEndpoint(l.external.ip, l.external.port), why })
    this.#io.changed(null)
    return true
  }

  #deleteStale (net: PortMapNet): void {
    const r = this.#stale
    if (r?.upnp === undefined || r.gateway !== net.gateway) return
    this.#stale = null
    this.counters.upnpStaleDeleted++
    this.#io.log('info', 'port mapping: deleting the UPnP mapping an earlier run left', { external: formatEndpoint(r.external.ip, r.external.port), internalPort: r.internalPort })
    this.#soap({ serviceType: r.upnp.serviceType as IgdService['serviceType'], controlUrl: r.upnp.controlUrl }, 'DeletePortMapping', deletePortMappingArgs(r.external.port))
  }

  /** Forget the current attempt or mapping (announcing a lost one); answers to its requests are ignored from now on. */
  #drop (): void {
    if (this.#live() !== null) this.#io.changed(null)
    this.#st = { state: 'idle' }
    this.#renewTries = 0
  }
}

/**
 * `status`'s one portMapping object from PCP/NAT-PMP's and UPnP's: whichever
 * is mapped; failed only when both failed (both reasons); while UPnP is
 * asking, its step beside PCP/NAT-PMP's outcome.
 */
export function combinePortMapStatus (pm: PortMapStatus, up: PortMapStatus): PortMapStatus {
  if (pm.state === 'mapped' || pm.state === 'off') return pm
  if (up.state === 'mapped') return up
  if (pm.state === 'failed' && up.state === 'failed') return { ...pm, note: `${pm.note}; UPnP: ${up.note}` }
  if (up.state === 'probing' || up.state === 'mapping' || up.state === 'failed') {
    return { ...pm, state: up.state === 'failed' ? pm.state : up.state, note: `${pm.note}; UPnP: ${up.note}` }
  }
  return pm
}
