/**
 * The port mapper's I/O (daemon.ts owns one on a client unless
 * --no-port-mapping): a plain dgram socket on the main thread (a few small
 * datagrams an hour, like the server's NAT-check port), UPnP's SSDP socket
 * and HTTP requests (upnp-io.ts), the default gateway read from
 * /proc/net/route (this network namespace's), and one timer for the state
 * machines' next deadline. All decisions are control/port-mapping.ts's
 * (PCP, NAT-PMP) and control/upnp.ts's (UPnP IGD, which starts when those
 * two are silent for their head start, and stands by while they map).
 *
 *   start() ─▶ gateway + our address towards it ─▶ PortMapper.setNetwork, UpnpMapper.setNetwork
 *   every NETWORK_POLL: read them again; a change ─▶ setNetwork (asks again)
 *   socket 'message' ─▶ PortMapper.onPacket;  SSDP/HTTP ─▶ UpnpMapper.onSsdp/onHttp
 *   timer ─▶ both tick;  after each PortMapper event ─▶ UpnpMapper.otherProtocols(its state)
 *   either's changed(ep) ─▶ onChange(external) when PCP/NAT-PMP's ?? UPnP's endpoint changed
 *   stop() ─▶ both stop() (the delete datagram / DeletePortMapping) ─▶ flushed ─▶ sockets closed
 *   <state-dir>/portmap.json holds the live mapping (PortMapRecord), written when it
 *   appears or changes and removed when it goes: a run after kill -9 reads it and
 *   deletes that mapping at the gateway (PortMapper.forgetStale) before asking anew.
 */
import { createSocket, type Socket } from 'node:dgram'
import { readFileSync, unlinkSync } from 'node:fs'
import { writeAtomic } from './state/atomic-file.js'
import { networkInterfaces } from 'node:os'
import type { Clock } from './clock.js'
import type { Logger } from './log.js'
import type { Random } from './random.js'
import { intToIp, ipToInt } from './wire/addr.js'
import { NATPMP_PORT } from './wire/natpmp.js'
import { PortMapper, type PortMapNet, type PortMapRecord, type PortMapStatus } from './control/port-mapping.js'
import { UpnpMapper, combinePortMapStatus } from './control/upnp.js'
import { UpnpTransport } from './upnp-io.js'
import type { Endpoint } from './control/nat.js'

/** How often the gateway and our address are read again (ms): a network change asks for a new mapping. */
export const NETWORK_POLL = 5000
/** stop() waits at most this long for the delete datagram to leave (ms). */
const STOP_FLUSH = 500
/** … and for UPnP's DeletePortMapping to be answered (ms). */
const STOP_FLUSH_UPNP = 1500

/** The default IPv4 route's gateway and interface from /proc/net/route text, or null. */
export function parseDefaultRoute (text: string): { gateway: number, iface: string } | null {
  let best: { gateway: number, iface: string, metric: number } | null = null
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/)
    if (f.length < 8) continue
    const [iface, dest, gw, flags, , , metric, mask] = f
    // RTF_UP (1) | RTF_GATEWAY (2), destination and mask 0: a default route.
    if (dest !== '00000000' || mask !== '00000000' || (parseInt(flags!, 16) & 3) !== 3) continue
    // The kernel prints the address as a host-order (little-endian) hex word.
    const le = parseInt(gw!, 16)
    const gateway = (((le & 0xff) << 24) | (((le >>> 8) & 0xff) << 16) | (((le >>> 16) & 0xff) << 8) | (le >>> 24)) >>> 0
    const m = Number(metric)
    if (best === null || m < best.metric) best = { gateway, iface: iface!, metric: m }
  }
  return best === null ? null : { gateway: best.gateway, iface: best.iface }
}

/** The gateway and our address on its interface (the one in the gateway's subnet when there are several), or null. */
export function readNetwork (): PortMapNet | null {
  let text: string
  try { text = readFileSync('/proc/net/route', 'utf8') } catch { return null }
  const r = parseDefaultRoute(text)
  if (r === null) return null
  const addrs = (networkInterfaces()[r.iface] ?? []).filter(a => a.family === 'IPv4' && !a.internal)
  const inSubnet = addrs.find(a => ((ipToInt(a.address) ^ r.gateway) & ipToInt(a.netmask)) === 0)
  const a = inSubnet ?? addrs[0]
  return a === undefined ? null : { gateway: r.gateway, localIp: ipToInt(a.address), mask: ipToInt(a.netmask) }
}

export class PortMappingIo {
  readonly mapper: PortMapper
  readonly upnp: UpnpMapper
  readonly #upnpIo: UpnpTransport
  readonly #sock: Socket
  readonly #clock: Clock
  readonly #log: Logger
  readonly #readNet: () => PortMapNet | null
  #timer: NodeJS.Timeout | null = null
  #poll: NodeJS.Timeout | null = null
  #stopped = false
  /** Settles when the newest datagram has been handed to the kernel. */
  #lastSend: Promise<void> = Promise.resolve()

  /** `stateFile`: where the live mapping is kept for a run after a crash (null: nowhere). */
  constructor (internalPort: number, c: { clock: Clock, random: Random, log: Logger }, onChange: (ep: Endpoint | null) => void,
    readNet = readNetwork, stateFile: string | null = null) {
    this.#clock = c.clock
    this.#log = c.log
    this.#readNet = readNet
    this.#stateFile = stateFile
    this.#sock = createSocket({ type: 'udp4' })
    this.mapper = new PortMapper({
      send: (b) => {
        const gw = this.#gateway
        if (gw === null) return
        this.#lastSend = new Promise<void>(resolve => {
          this.#sock.send(b, NATPMP_PORT, gw, (err) => {
            if (err !== null && err !== undefined) this.#log.debug('port-mapping send failed', { err })
            resolve()
          })
        })
      },
      changed: () => { this.#changed() },
      log: (level, msg, fields) => { this.#log[level](msg, fields) }
    }, c.random, internalPort)
    this.#onChange = onChange
    this.#upnpIo = new UpnpTransport(c.log, (b, ip) => {
      if (this.#stopped) return
      this.upnp.onSsdp(b, ip)
      this.#schedule()
    }, (id, r) => {
      if (this.#stopped) return
      this.upnp.onHttp(id, r, this.#clock.now())
      this.#schedule()
    })
    this.upnp = new UpnpMapper({
      ssdp: (b, ip, port) => { this.#upnpIo.ssdp(b, ip, port) },
      http: (id, req) => { this.#upnpIo.http(id, req) },
      changed: () => { this.#changed() },
      log: (level, msg, fields) => { this.#log[level](msg, fields) }
    }, c.random, internalPort)
    this.#sock.on('message', (msg, rinfo) => {
      if (this.#stopped) return
      this.mapper.onPacket(new Uint8Array(msg.buffer, msg.byteOffset, msg.length), ipToInt(rinfo.address), rinfo.port, this.#clock.now())
      this.#schedule()
    })
    // ICMP port unreachable from a gateway without a responder shows up as an error on some kernels: not fatal.
    this.#sock.on('error', (err) => { this.#log.debug('port-mapping socket error', { err }) })
  }

  readonly #stateFile: string | null
  readonly #onChange: (ep: Endpoint | null) => void
  /** The endpoint last announced (onChange). */
  #announced: Endpoint | null = null

  #net: PortMapNet | null = null

  /** The mapped external endpoint: PCP/NAT-PMP's, else UPnP's, or null. */
  get external (): Endpoint | null { return this.mapper.external ?? this.upnp.external }

  /** Both mappers' counters. */
  get counters (): Record<string, number> { return { ...this.mapper.counters, ...this.upnp.counters } }

  /** Either mapper's endpoint changed: keep the state file and tell the client when the one offered changed. */
  #changed (): void {
    // stop() deletes and saves itself; the client is not told of a mapping that goes with the daemon (as before UPnP).
    if (this.#stopped) return
    const ep = this.external
    this.#save(ep !== null)
    const a = this.#announced
    if (a?.ip === ep?.ip && a?.port === ep?.port) return
    this.#announced = ep === null ? null : { ...ep }
    this.#onChange(ep)
  }

  /** Keep the live mapping on disk (or remove the file). Failing to is logged, never fatal. */
  #save (mapped: boolean): void {
    const f = this.#stateFile
    if (f === null) return
    try {
      const r = mapped ? this.mapper.record() ?? this.upnp.record() : null
      if (r !== null) writeAtomic(f, JSON.stringify(r) + '\n')
      else unlinkSync(f)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.#log.warn(`could not update ${f}`, { err })
    }
  }

  /** A mapping an earlier run left in the state file, or null. */
  #readStale (): PortMapRecord | null {
    if (this.#stateFile === null) return null
    try {
      const r = JSON.parse(readFileSync(this.#stateFile, 'utf8')) as PortMapRecord
      if (typeof r.gateway === 'number' && typeof r.internalPort === 'number' && (r.protocol === 'pcp' || r.protocol === 'nat-pmp' || r.protocol === 'upnp') &&
        typeof r.nonce === 'string' && typeof r.external?.ip === 'number' && typeof r.external?.port === 'number' &&
        (r.protocol !== 'upnp' || (typeof r.upnp?.controlUrl === 'string' && typeof r.upnp.serviceType === 'string'))) return r
      this.#log.warn(`ignoring ${this.#stateFile}: not a port-mapping record`)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.#log.warn(`ignoring ${this.#stateFile}`, { err })
    }
    return null
  }
  get #gateway (): string | null { return this.#net === null ? null : intToIp(this.#net.gateway) }

  async start (): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#sock.once('error', reject)
      this.#sock.bind(0, () => { this.#sock.off('error', reject); resolve() })
    })
    await this.#upnpIo.start()
    const stale = this.#readStale()
    if (stale?.protocol === 'upnp') this.upnp.forgetStale(stale)
    else if (stale !== null) this.mapper.forgetStale(stale)
    this.#check()
    this.#save(false)
    this.#poll = setInterval(() => { this.#check() }, NETWORK_POLL)
    this.#poll.unref()
  }

  status (): PortMapStatus {
    const now = this.#clock.now()
    return combinePortMapStatus(this.mapper.status(now), this.upnp.status(now))
  }

  /** Our public endpoint moved: renew now, or ask again after a failure (PortMapper.refresh). */
  refresh (): void {
    if (this.#stopped) return
    this.mapper.refresh(this.#clock.now())
    this.upnp.refresh(this.#clock.now())
    this.#schedule()
  }

  /** Delete the mapping (if any), wait for that datagram to leave, close. Idempotent. */
  async stop (): Promise<void> {
    if (this.#stopped) return
    this.#stopped = true
    if (this.#timer !== null) clearTimeout(this.#timer)
    if (this.#poll !== null) clearInterval(this.#poll)
    const upnpDeleted = this.upnp.stop()
    if (this.mapper.stop()) {
      let t: NodeJS.Timeout | undefined
      await Promise.race([this.#lastSend, new Promise<void>(resolve => { t = setTimeout(resolve, STOP_FLUSH) })])
      clearTimeout(t)
    }
    // The stale-mapping delete of start() may still be in flight too: both are waited for, bounded.
    await this.#upnpIo.close(upnpDeleted ? STOP_FLUSH_UPNP : STOP_FLUSH)
    this.#save(false)
    this.#sock.close()
  }

  #check (): void {
    if (this.#stopped) return
    const net = this.#readNet()
    this.#net = net
    const now = this.#clock.now()
    this.mapper.setNetwork(net, now)
    if (net !== null) this.#upnpIo.setLocalIp(intToIp(net.localIp))
    this.upnp.setNetwork(net, now)
    this.#schedule()
  }

  /** After any event: UPnP learns PCP/NAT-PMP's state, and the timer is set for the earlier deadline. */
  #schedule (): void {
    if (this.#stopped) return
    this.upnp.otherProtocols(this.mapper.state, this.#clock.now())
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    const due = Math.min(this.mapper.nextDue(), this.upnp.nextDue())
    if (due === Infinity) return
    this.#timer = setTimeout(() => {
      this.#timer = null
      if (this.#stopped) return
      const now = this.#clock.now()
      this.mapper.tick(now)
      this.upnp.otherProtocols(this.mapper.state, now)
      this.upnp.tick(now)
      this.#schedule()
    }, Math.max(0, Math.ceil(due - this.#clock.now())))
    this.#timer.unref()
  }
}
