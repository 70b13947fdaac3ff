/**
 * The fake-TCP link's I/O, on the main thread (daemon.ts owns one with `--transport faketcp` on a
 * client, `--faketcp` on a server): the addon's two raw sockets (native/faketcp.c) and its packet
 * socket (native/faketcp-packet.c: superpackets both ways), the handshake machines of
 * dataplane/faketcp-flow.ts, the nftables rules against the kernel's RSTs and, with the packet
 * socket, against the kernel's TCP seeing our data segments (faketcp-nft.ts), a 250 ms timer.
 *
 *   control socket (SYN, SYN-ACK, ACK without payload, RST, FIN) ─poll─▶ decodeIpv4Tcp ─▶ machine
 *   machine actions: send ─▶ ftcpSendRaw; up ─▶ ftcpFlowSet (the addon's flow: data may flow); drop
 *   data: `fd` (the packet socket, or the raw data socket when the kernel refused the packet socket)
 *     ─▶ polled by the inbound pipeline (WorkerInit.ftcpFd, ftcpRecv): never here
 *
 * A flow is an endpoint handle (0xFD800000 | i): the client's server endpoint is one fixed handle
 * (serverHandle) whose flow is re-keyed on every new handshake; on the server each client's flow
 * has its own handle, which the control plane sees as that client's endpoint. Every send to a
 * handle, from any thread, leaves as a segment on its flow.
 */
import { createSocket } from 'node:dgram'
import type { Logger } from '../log.js'
import type { Clock } from '../clock.js'
import type { Random } from '../random.js'
import { VpnError } from '../errors.js'
import { intToIp } from '../wire/addr.js'
import { setFakeTcpHandleText } from '../wire/faketcp-handle.js'
import { decodeIpv4Tcp, encodeSegment } from '../wire/tcp-segment.js'
import { FakeTcpClientFlow, FakeTcpServerFlows, SILENCE_MS, type FlowAction, type FlowKey } from './faketcp-flow.js'
import { installRstRules, removeRstRules, type RstRule } from './faketcp-nft.js'
import type { Native, PollHandle } from './native.js'

/** How often the machines' timers run (ms): SYN retries are ≥ 1 s. */
const TICK_MS = 250

export interface FakeTcpLinkOptions {
  role: 'client' | 'server'
  /** Server: our TCP port (the UDP port's number); client: the server's. */
  port: number
  /** Receive and send buffer of the data socket (bytes). */
  socketBuffer: number
  /** Client: seconds between keepalives (the server's Pongs are what an idle flow receives). */
  keepaliveSec?: number
  /** false (--no-faketcp-offload): no packet socket; every segment through the raw socket. Default true. */
  offload?: boolean
}

export class FakeTcpLink {
  /** The data segments' socket, for the inbound pipeline: the packet socket, else the raw data socket. */
  readonly fd: number
  /** The raw data socket (sends handshake segments; sends data until a flow's next hop is known). */
  readonly rawFd: number
  /** The packet socket, -1 when the kernel refused it (then every segment is the raw socket's). */
  readonly pktFd: number
  readonly ctlFd: number
  /** Client: the server endpoint's handle (fixed for the run). 0 on a server. */
  readonly serverHandle: number
  readonly #native: Native
  readonly #opt: FakeTcpLinkOptions
  readonly #log: Logger
  readonly #clock: Clock
  readonly #client: FakeTcpClientFlow | null
  readonly #server: FakeTcpServerFlows | null
  /** Server: flow key → handle. */
  readonly #handles = new Map<string, number>()
  readonly #buf = new Uint8Array(2048)
  readonly #info = new Float64Array(8)
  #poll: PollHandle | null = null
  #timer: NodeJS.Timeout | null = null
  #rules: RstRule | null = null
  #malformed = 0
  #tableFull = 0
  #closed = false
  /** Why the packet socket is not used (null: it is). */
  readonly #offloadOff: string | null
  /** Why the prerouting chain that drops our data segments is missing (null: installed, or no packet socket). */
  #dataRuleOff: string | null = null
  readonly #offload = new Float64Array(6)
  /** Client: the server's real address (the handle's), 0 before connect. */
  #serverIp = 0

  private constructor (native: Native, opt: FakeTcpLinkOptions, fds: { fd: number, ctlFd: number, pktFd: number, offloadOff: string | null }, log: Logger, clock: Clock, random: Random) {
    this.#native = native
    this.#opt = opt
    this.#log = log
    this.#clock = clock
    this.rawFd = fds.fd
    this.pktFd = fds.pktFd
    this.fd = fds.pktFd >= 0 ? fds.pktFd : fds.fd
    this.#offloadOff = fds.offloadOff
    this.ctlFd = fds.ctlFd
    this.#client = opt.role === 'client' ? new FakeTcpClientFlow(random, Math.max(SILENCE_MS, 3 * (opt.keepaliveSec ?? 0) * 1000)) : null
    this.#server = opt.role === 'server' ? new FakeTcpServerFlows(opt.port, random) : null
    this.serverHandle = opt.role === 'client' ? native.ftcpFlowSet(0, fds.fd, 0, opt.port, 0, 0, 0, 0, 0, false) >>> 0 : 0
  }

  /** Opens the raw sockets (and, on a server, installs the RST rules) and starts the control-socket poll and the timer. */
  static async open (native: Native, opt: FakeTcpLinkOptions, log: Logger, clock: Clock, random: Random): Promise<FakeTcpLink> {
    let fds: { fd: number, ctlFd: number }
    try {
      fds = native.ftcpOpen(opt.role === 'client', 0, opt.port, opt.socketBuffer)
    } catch (err) {
      const code = (err as { code?: string }).code
      throw new VpnError('ERR_FAKETCP', `fake TCP: opening a raw socket failed (${code ?? (err as Error).message})`, {
        cause: err, hint: code === 'EPERM' || code === 'EACCES' ? 'fake TCP needs CAP_NET_RAW (and CAP_NET_ADMIN for its nftables rules): run as root or as the systemd service' : undefined
      })
    }
    let pktFd = -1
    let offloadOff: string | null = null
    if (opt.offload === false) {
      offloadOff = 'turned off (--no-faketcp-offload)'
    } else {
      try {
        pktFd = native.ftcpOpenPacket(opt.role === 'client', 0, opt.port, opt.socketBuffer, fds.fd)
      } catch (err) {
        offloadOff = `packet socket refused: ${(err as { code?: string }).code ?? (err as Error).message}`
        log.warn('fake TCP: the packet socket for superpackets could not be opened; every segment goes through the raw socket (slower)', { reason: offloadOff, hint: 'needs CAP_NET_RAW and AF_PACKET with PACKET_VNET_HDR (Linux ≥ 4.20; --no-faketcp-offload says you chose this)' })
      }
    }
    const link = new FakeTcpLink(native, opt, { ...fds, pktFd, offloadOff }, log, clock, random)
    try {
      if (opt.role === 'server') await link.#installRules({ role: 'server', port: opt.port, dropData: pktFd >= 0 })
    } catch (err) {
      await link.close()
      throw err
    }
    link.#poll = native.pollStart(fds.ctlFd, () => { link.#onReadable() })
    link.#timer = setInterval(() => { link.#tick() }, TICK_MS)
    link.#timer.unref()
    return link
  }

  async #installRules (r: RstRule): Promise<void> {
    if (this.#rules !== null && this.#rules.serverIp === r.serverIp) return
    if (this.#rules !== null) await removeRstRules(this.#rules)
    let stale: boolean
    try {
      stale = await installRstRules(r)
    } catch (err) {
      // A kernel without what the prerouting chain needs (nft_fib): the tap still takes the data, the kernel's TCP sees it too (RSTs dropped as before).
      if (r.dropData !== true || !(err instanceof VpnError)) throw err
      r = { ...r, dropData: false }
      stale = await installRstRules(r)
      this.#dataRuleOff = err.message
      this.#log.warn('fake TCP: the nftables chain that keeps data segments from the kernel\'s TCP could not be installed; the kernel still answers each with an RST (dropped), at a cost in speed', { reason: err.message })
    }
    this.#rules = r
    if (stale) this.#log.info('removed stale fake-TCP nftables rules left by an earlier run', { table: r.role === 'server' ? `lwt_faketcp_${r.port}` : `lwt_faketcp_c${r.port}` })
  }

  /** Client: the server's address behind serverHandle (for what needs a real one: kernel routes), or null. */
  get serverIp (): number | null { return this.#client === null || this.#serverIp === 0 ? null : this.#serverIp }

  /** Client: (re)connect to the server at `ip` (a new address after a name lookup, too). */
  async connect (ip: number): Promise<void> {
    const c = this.#client
    if (c === null || this.#closed) return
    await this.#installRules({ role: 'client', port: this.#opt.port, serverIp: ip, dropData: this.pktFd >= 0 })
    const lip = await localAddressTowards(ip, this.#opt.port)
    this.#serverIp = ip
    setFakeTcpHandleText(this.serverHandle, `faketcp:${intToIp(ip)}:${this.#opt.port}`)
    this.#apply(c.connect(ip, this.#opt.port, lip, this.#clock.now()))
  }

  #onReadable (): void {
    for (;;) {
      const n = this.#native.ftcpRecvCtl(this.ctlFd, this.#buf)
      if (n <= 0) return
      let p
      try { p = decodeIpv4Tcp(this.#buf.subarray(0, n)) } catch { this.#malformed++; continue }
      const now = this.#clock.now()
      this.#apply(this.#client !== null ? this.#client.onSegment(p, now) : this.#server!.onSegment(p, now))
    }
  }

  #tick (): void {
    const now = this.#clock.now()
    if (this.#client !== null) {
      const age = this.#native.ftcpFlowInfo(this.serverHandle, this.#info) && this.#info[0] === 1 ? this.#info[7]! : -1
      this.#apply(this.#client.tick(now, age))
    } else if (this.#server !== null) {
      this.#apply(this.#server.tick(now, (k) => {
        const h = this.#handles.get(keyId(k))
        return h !== undefined && this.#native.ftcpFlowInfo(h, this.#info) ? this.#info[7]! : -1
      }))
    }
  }

  #apply (actions: FlowAction[]): void {
    for (const a of actions) {
      switch (a.kind) {
        case 'send': {
          const r = this.#native.ftcpSendRaw(this.rawFd, a.srcIp, a.dstIp, encodeSegment(a.seg))
          if (r < 0) this.#log.debug('fake-TCP segment not sent', { errno: -r, to: intToIp(a.dstIp) })
          break
        }
        case 'up': {
          const k = a.key
          const known = this.#client !== null ? this.serverHandle : this.#handles.get(keyId(k)) ?? 0
          const h = this.#native.ftcpFlowSet(known, this.rawFd, k.rip, k.rport, k.lip, k.lport, a.seq, a.ack, a.tsRecent, true)
          if (h < 0) { this.#tableFull++; break }
          if (this.#server !== null) {
            this.#handles.set(keyId(k), h >>> 0)
            setFakeTcpHandleText(h, `faketcp:${intToIp(k.rip)}:${k.rport}`)
          } else {
            this.#log.info('fake-TCP flow to the server is up', { server: `${intToIp(k.rip)}:${k.rport}`, localPort: k.lport })
          }
          break
        }
        case 'drop': {
          if (this.#server === null) break // the client's flow is re-keyed in place, never dropped
          const h = this.#handles.get(keyId(a.key))
          if (h === undefined) break
          this.#handles.delete(keyId(a.key))
          this.#native.ftcpFlowDrop(h)
          setFakeTcpHandleText(h, null)
          break
        }
        default: { const never: never = a; throw new Error(`unexpected action ${JSON.stringify(never)}`) }
      }
    }
  }

  /** Status: a client's server path over fake TCP says so (a server's clients on a flow: transportOf, conn-table.ts). */
  decorate (peers: Array<{ role?: string, transport?: 'udp' | 'tcp' | 'faketcp' }>): void {
    if (this.#client === null) return
    for (const p of peers) if (p.role === 'server') p.transport = 'faketcp'
  }

  /**
   * Counters for status (the addon counts data segments of no flow: dropFaketcpUnknownFlow). The
   * superpacket path's: faketcpTxSuperpackets and faketcpTxPacketSegments (segments sent through
   * the packet socket, in superpackets or alone), faketcpTxPacketFailed, faketcpRxSuperpackets and
   * faketcpRxSuperSegments (GSO/GRO packets received and the segments they held).
   */
  counters (): Record<string, number> {
    const c = (this.#client ?? this.#server)!.counters
    const o = this.#offload
    if (this.pktFd >= 0) this.#native.ftcpOffloadStats(o)
    return {
      ...c,
      faketcpMalformed: this.#malformed,
      faketcpTableFull: this.#tableFull,
      faketcpTxSuperpackets: o[0]!,
      faketcpTxPacketSegments: o[1]!,
      faketcpTxPacketFailed: o[2]!,
      faketcpRxSuperpackets: o[3]!,
      faketcpRxSuperSegments: o[4]!
    }
  }

  /** `offload`: 'packet' (the superpacket path is open) with the flows using it now, or 'off' and why. */
  status (): object {
    const base = this.#client !== null ? this.#client.toJSON() : this.#server!.toJSON()
    if (this.pktFd >= 0) this.#native.ftcpOffloadStats(this.#offload)
    const offload = this.pktFd >= 0
      ? { offload: 'packet', offloadFlows: this.#offload[5]!, ...(this.#dataRuleOff !== null ? { dataRuleOff: this.#dataRuleOff } : {}) }
      : { offload: 'off', offloadOff: this.#offloadOff }
    return { transport: 'faketcp', role: this.#opt.role, port: this.#opt.port, ...base, ...offload, ...(this.#rules !== null ? { nftTable: this.#opt.role === 'server' ? `lwt_faketcp_${this.#opt.port}` : `lwt_faketcp_c${this.#opt.port}` } : {}) }
  }

  /** Stops the poll and the timer, forgets the flows, closes the sockets, removes the rules. Idempotent. */
  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    if (this.#timer !== null) clearInterval(this.#timer)
    if (this.#poll !== null) this.#native.pollStop(this.#poll)
    for (const h of this.#handles.values()) this.#native.ftcpFlowDrop(h)
    if (this.serverHandle !== 0) this.#native.ftcpFlowDrop(this.serverHandle)
    if (this.pktFd >= 0) {
      this.#native.ftcpUnpair(this.rawFd)
      this.#native.close(this.pktFd)
    }
    this.#native.close(this.rawFd)
    this.#native.close(this.ctlFd)
    if (this.#rules !== null) await removeRstRules(this.#rules)
  }
}

function keyId (k: FlowKey): string { return `${k.rip}:${k.rport}:${k.lport}` }

/** The local address the kernel would use towards ip:port (a connected UDP socket's name; no packet is sent). */
async function localAddressTowards (ip: number, port: number): Promise<number> {
  const s = createSocket('udp4')
  try {
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject)
      s.connect(port, intToIp(ip), () => { resolve() })
    })
    const a = s.address().address
    const [x, y, z, w] = a.split('.').map(Number) as [number, number, number, number]
    return ((x << 24) | (y << 16) | (z << 8) | w) >>> 0
  } finally {
    s.close()
  }
}
