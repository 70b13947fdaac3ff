/**
 * The port mapper's I/O (daemon.ts owns one on a client unless
 * --no-port-mapping): a plain dgram socket on the main thread (a few small
 * datagrams an hour, like the server's NAT-check port), the default gateway
 * read from /proc/net/route (this network namespace's), and one timer for
 * the state machine's next deadline. All decisions are control/port-mapping.ts's.
 *
 *   start() ─▶ gateway + our address towards it ─▶ PortMapper.setNetwork
 *   every NETWORK_POLL: read them again; a change ─▶ setNetwork (asks again)
 *   socket 'message' ─▶ PortMapper.onPacket;  timer ─▶ PortMapper.tick
 *   PortMapper.changed(ep) ─▶ onChange(ep) (the client offers it to peers)
 *   stop() ─▶ PortMapper.stop() (the delete datagram) ─▶ flushed ─▶ socket closed
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
import type { Endpoint } from './control/nat.js'

/** How often the gateway and our address are read again (ms): a network change asks for a new mapping. */
export const NETWORK_POLL = 5000
/** stop() waits at most this long for the delete datagram to leave (ms). */
const STOP_FLUSH = 500

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
  return a === undefined ? null : { gateway: r.gateway, localIp: ipToInt(a.address) }
}

export class PortMappingIo {
  readonly mapper: PortMapper
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
      changed: (ep) => {
        this.#save(ep !== null)
        onChange(ep)
      },
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

  #net: PortMapNet | null = null

  /** Keep the live mapping on disk (or remove the file). Failing to is logged, never fatal. */
  #save (mapped: boolean): void {
    const f = this.#stateFile
    if (f === null) return
    try {
      const r = mapped ? this.mapper.record() : null
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
      if (typeof r.gateway === 'number' && typeof r.internalPort === 'number' && (r.protocol === 'pcp' || r.protocol === 'nat-pmp') &&
        typeof r.nonce === 'string' && typeof r.external?.ip === 'number' && typeof r.external?.port === 'number') return r
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
    const stale = this.#readStale()
    if (stale !== null) this.mapper.forgetStale(stale)
    this.#check()
    this.#save(false)
    this.#poll = setInterval(() => { this.#check() }, NETWORK_POLL)
    this.#poll.unref()
  }

  status (): PortMapStatus { return this.mapper.status(this.#clock.now()) }

  /** Our public endpoint moved: renew now, or ask again after a failure (PortMapper.refresh). */
  refresh (): void {
    if (this.#stopped) return
    this.mapper.refresh(this.#clock.now())
    this.#schedule()
  }

  /** Delete the mapping (if any), wait for that datagram to leave, close. Idempotent. */
  async stop (): Promise<void> {
    if (this.#stopped) return
    this.#stopped = true
    if (this.#timer !== null) clearTimeout(this.#timer)
    if (this.#poll !== null) clearInterval(this.#poll)
    if (this.mapper.stop()) {
      let t: NodeJS.Timeout | undefined
      await Promise.race([this.#lastSend, new Promise<void>(resolve => { t = setTimeout(resolve, STOP_FLUSH) })])
      clearTimeout(t)
    }
    this.#save(false)
    this.#sock.close()
  }

  #check (): void {
    if (this.#stopped) return
    const net = this.#readNet()
    this.#net = net
    this.mapper.setNetwork(net, this.#clock.now())
    this.#schedule()
  }

  #schedule (): void {
    if (this.#stopped) return
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    const due = this.mapper.nextDue()
    if (due === Infinity) return
    this.#timer = setTimeout(() => {
      this.#timer = null
      if (this.#stopped) return
      this.mapper.tick(this.#clock.now())
      this.#schedule()
    }, Math.max(0, Math.ceil(due - this.#clock.now())))
    this.#timer.unref()
  }
}
