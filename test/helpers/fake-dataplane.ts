/**
 * An in-memory twin of the dataplane for control-plane tests: a FakeNet of
 * nodes addressed by ip:port, each with a FakeDataplane that records what the
 * controller installs (routes, keys) and delivers control datagrams the way
 * the inbound worker would (relay envelopes rewritten on the server,
 * unwrapped on clients). Time is a ManualClock; nothing sleeps.
 */
import type { ControlHandler, DataplanePort, PeerRoute } from '../../src/control/port.js'
import type { IpPrefix } from '../../src/wire/prefix.js'
import type { PeerCounters } from '../../src/dataplane/stats.js'
import { systemRandom, type Random } from '../../src/random.js'

export interface Datagram {
  from: { ip: number, port: number }
  to: { ip: number, port: number }
  bytes: Uint8Array
  /** IP TTL when the sender set one (a low-TTL probe): FakeNet NATs let it open a mapping, then drop it. */
  ttl?: number
}

/**
 * A NAT in front of some FakeNet nodes (research/nat-anchors.md §0):
 * mapping 'eim' (one public port per inside endpoint) or 'edm' (a new random
 * port per inside endpoint and destination); filtering 'eif' (anything to a
 * mapped port passes), 'adf' (only from addresses the inside contacted),
 * 'apdf' (only from the exact ip:port contacted). Unsolicited packets are
 * dropped (the WAN filter of a home router). A datagram with a TTL set (a
 * low-TTL probe) creates the outbound mapping and is then dropped, as if it
 * died between the NATs.
 */
export class FakeNat {
  readonly publicIp: number
  readonly mapping: 'eim' | 'edm'
  readonly filtering: 'eif' | 'adf' | 'apdf'
  /** inside key (+ destination for edm) → public port */
  readonly #out = new Map<string, number>()
  /** public port → inside endpoint and the remotes it contacted */
  readonly #in = new Map<number, { ip: number, port: number, ips: Set<number>, eps: Set<string> }>()
  #nextPort = 20000
  /** Picks an edm mapping's port (pass a seeded Random to pin a run). */
  readonly #random: Random

  constructor (publicIp: number, mapping: 'eim' | 'edm', filtering: 'eif' | 'adf' | 'apdf', random: Random = systemRandom) {
    this.publicIp = publicIp
    this.mapping = mapping
    this.filtering = filtering
    this.#random = random
  }

  /** Rewrites an outbound datagram's source; returns the public port used. */
  outbound (d: Datagram): void {
    const inside = `${d.from.ip}:${d.from.port}`
    const k = this.mapping === 'eim' ? inside : `${inside}>${d.to.ip}:${d.to.port}`
    let port = this.#out.get(k)
    if (port === undefined) {
      port = this.mapping === 'eim' ? this.#nextPort++ : 1024 + this.#random.int(64000)
      while (this.#in.has(port)) port = port + 1 > 65535 ? 1024 : port + 1
      this.#out.set(k, port)
      this.#in.set(port, { ip: d.from.ip, port: d.from.port, ips: new Set(), eps: new Set() })
    }
    const m = this.#in.get(port)!
    m.ips.add(d.to.ip)
    m.eps.add(`${d.to.ip}:${d.to.port}`)
    d.from = { ip: this.publicIp, port }
  }

  /** Rewrites an inbound datagram's destination, or returns false (filtered, unmapped). */
  inbound (d: Datagram): boolean {
    const m = this.#in.get(d.to.port)
    if (m === undefined) return false
    if (this.filtering === 'adf' && !m.ips.has(d.from.ip)) return false
    if (this.filtering === 'apdf' && !m.eps.has(`${d.from.ip}:${d.from.port}`)) return false
    d.to = { ip: m.ip, port: m.port }
    return true
  }

  /** Forget every mapping (a rebooted router; the next packets get new ports). */
  reset (): void { this.#out.clear(); this.#in.clear(); this.#nextPort += 1000 }
}

export class FakeNet {
  readonly nodes = new Map<string, FakeDataplane>()
  readonly queue: Datagram[] = []
  /** Return false to drop a datagram (loss, firewall). */
  filter: (d: Datagram) => boolean = () => true
  sent = 0
  /** NATs by the inside address they serve, and by their public address. */
  readonly #natByInside = new Map<number, FakeNat>()
  readonly #natByPublic = new Map<number, FakeNat>()
  /** Other receivers (e.g. the server's NAT-check port): called with the datagram, may queue replies. */
  readonly extra = new Map<string, (d: Datagram) => void>()

  /** Put every node with address `insideIp` behind `nat`. */
  addNat (insideIp: number, nat: FakeNat): void {
    this.#natByInside.set(insideIp, nat)
    this.#natByPublic.set(nat.publicIp, nat)
  }

  add (ip: number, port: number, mode: 'server' | 'client'): FakeDataplane {
    const dp = new FakeDataplane(this, ip, port, mode)
    this.nodes.set(`${ip}:${port}`, dp)
    return dp
  }

  /** Deliver queued datagrams until quiet (bounded). */
  flush (max = 10_000): number {
    let n = 0
    while (this.queue.length > 0 && n < max) {
      const d = this.queue.shift()!
      n++
      const out = this.#natByInside.get(d.from.ip)
      const dstNat = this.#natByInside.get(d.to.ip)
      // Traffic between two hosts behind the same NAT stays on their LAN;
      // an inside address is unreachable from anywhere else.
      if (dstNat !== undefined && dstNat !== out) continue
      if (out !== undefined && dstNat !== out) out.outbound(d)
      if (d.ttl !== undefined) continue // a low-TTL probe dies between the NATs
      if (!this.filter(d)) continue
      const inn = this.#natByPublic.get(d.to.ip)
      if (inn !== undefined && !inn.inbound(d)) continue
      const k = `${d.to.ip}:${d.to.port}`
      const x = this.extra.get(k)
      if (x !== undefined) { x(d); continue }
      this.nodes.get(k)?.deliver(d)
    }
    return n
  }
}

export class FakeDataplane implements DataplanePort {
  readonly routes = new Map<number, PeerRoute>()
  readonly sendKeys = new Map<number, { key: Uint8Array, remoteIndex: number, fec: { data: number, parity: number } | null }>()
  readonly recvKeys = new Map<number, { slot: number, key: Uint8Array, fec: boolean }>()
  handler: ControlHandler | null = null
  readonly ip: number
  readonly port: number
  readonly #net: FakeNet
  readonly #mode: 'server' | 'client'

  constructor (net: FakeNet, ip: number, port: number, mode: 'server' | 'client') {
    this.#net = net
    this.ip = ip
    this.port = port
    this.#mode = mode
  }

  setPeer (r: PeerRoute): void { this.routes.set(r.slot, { ...r }) }
  /** The last setLocalPrefixes. */
  localPrefixes: readonly IpPrefix[] = []
  setLocalPrefixes (prefixes: readonly IpPrefix[]): void { this.localPrefixes = [...prefixes] }
  removePeer (slot: number): void { this.routes.delete(slot); this.sendKeys.delete(slot) }
  // Keys are copied, as postMessage does for the real dataplane (the control plane wipes its own copies when a session is dropped).
  setSendKey (slot: number, key: Uint8Array, remoteIndex: number, fec: { data: number, parity: number } | null = null): void { this.sendKeys.set(slot, { key: key.slice(), remoteIndex, fec }) }
  /** Slots whose send key was cleared, in order (the real outbound pipeline wipes the key). */
  readonly clearedSendKeys: number[] = []
  clearSendKey (slot: number): void { this.sendKeys.delete(slot); this.clearedSendKeys.push(slot) }
  /** PATH_MTU limits by slot (-1: relayed peers), as last set. */
  readonly pathMtus = new Map<number, number>()
  setPathMtu (slot: number, inner: number): void { this.pathMtus.set(slot, inner) }
  setRecvKey (slot: number, localIndex: number, key: Uint8Array, fec = false): void { this.recvKeys.set(localIndex, { slot, key: key.slice(), fec }) }
  dropRecvIndex (localIndex: number): void { this.recvKeys.delete(localIndex) }
  sendControl (bytes: Uint8Array, ip: number, port: number, sock = 0): void {
    this.#net.sent++
    this.#net.queue.push({ from: { ip: this.ip, port: this.#portOf(sock) }, to: { ip, port }, bytes: bytes.slice() })
  }

  sendControlTtl (bytes: Uint8Array, ip: number, port: number, ttl: number, sock = 0): void {
    this.#net.sent++
    this.#net.queue.push({ from: { ip: this.ip, port: this.#portOf(sock) }, to: { ip, port }, bytes: bytes.slice(), ttl })
  }

  // Probe sockets: extra ports on this node's address (behind the same NAT), delivered with their id.
  readonly probeSocks = new Map<number, { port: number, adopted: boolean }>()
  #nextSock = 1
  #portOf (sock: number): number { return sock === 0 ? this.port : this.probeSocks.get(sock)?.port ?? this.port }
  openProbeSockets (n: number): number[] {
    const ids: number[] = []
    for (let i = 0; i < n; i++) {
      const id = this.#nextSock++
      const port = 50000 + id
      this.probeSocks.set(id, { port, adopted: false })
      this.#net.extra.set(`${this.ip}:${port}`, (d) => {
        if (d.bytes[0] === 3) this.handler?.onControl({ kind: 'packet', bytes: d.bytes.slice(), ip: d.from.ip, port: d.from.port, via: 0, sock: id })
      })
      ids.push(id)
    }
    return ids
  }

  adoptProbeSocket (sock: number): void { const s = this.probeSocks.get(sock); if (s) s.adopted = true }
  closeProbeSockets (socks: readonly number[]): void {
    for (const id of socks) {
      const s = this.probeSocks.get(id)
      if (s === undefined || s.adopted) continue
      this.#net.extra.delete(`${this.ip}:${s.port}`)
      this.probeSocks.delete(id)
    }
  }

  /** Pretend data flows to and from every peer (the counters move on each read). */
  trafficTick = false
  #traffic = 0
  peerCounters (slot: number): PeerCounters {
    const d = this.#data.get(slot)
    if (d !== undefined) return { txPackets: d.tx, txBytes: d.tx * 100, rxPackets: d.rx, rxBytes: d.rx * 100, lastRxMs: 0 }
    const n = this.trafficTick ? ++this.#traffic : 0
    return { txPackets: n, txBytes: n * 100, rxPackets: n, rxBytes: n * 100, lastRxMs: 0 }
  }

  // Modelled data packets: sent along the peer's route as the outbound worker
  // would (straight to its endpoint, or in a relay envelope to the server),
  // through the FakeNet's NATs, and counted per slot on both ends (a slot with
  // data uses these counts instead of trafficTick). The body is
  // [MSG_DATA, 0xda, 0x7a, 0, sender's tunnel ip (LE), payload…].
  readonly #data = new Map<number, { tx: number, rx: number }>()
  /** Called for each data packet that arrives: the sender's tunnel address and the payload. */
  onData: ((fromTunnelIp: number, payload: Uint8Array) => void) | null = null
  /** This node's tunnel address, written into its data packets (set by the test). */
  tunnelIp = 0

  /** Send one data packet to the peer with tunnel address `to`; false when there is no route (nothing sent). */
  sendData (to: number, payload: Uint8Array = new Uint8Array(0)): boolean {
    const r = this.routeByTunnelIp(to)
    if (r === undefined) return false
    const body = new Uint8Array(8 + payload.length)
    body.set([4, 0xda, 0x7a, 0], 0)
    new DataView(body.buffer).setUint32(4, this.tunnelIp, true)
    body.set(payload, 8)
    const d = this.#data.get(r.slot) ?? { tx: 0, rx: 0 }
    d.tx++
    this.#data.set(r.slot, d)
    let bytes = body
    if (r.relayVia) {
      bytes = new Uint8Array(8 + body.length)
      bytes[0] = 5
      new DataView(bytes.buffer).setUint32(4, r.peerId, true)
      bytes.set(body, 8)
    }
    this.#net.queue.push({ from: { ip: this.ip, port: this.#portOf(r.sock ?? 0) }, to: { ip: r.endpointIp, port: r.endpointPort }, bytes })
    return true
  }

  /** A modelled data packet arrived (straight or unwrapped from the relay): count it and hand it on. */
  #dataIn (b: Uint8Array): boolean {
    if (b.length < 8 || b[0] !== 4 || b[1] !== 0xda || b[2] !== 0x7a) return false
    const from = new DataView(b.buffer, b.byteOffset).getUint32(4, true)
    const r = this.routeByTunnelIp(from)
    if (r === undefined) return true // no session with the sender: dropped
    const d = this.#data.get(r.slot) ?? { tx: 0, rx: 0 }
    d.rx++
    this.#data.set(r.slot, d)
    this.onData?.(from, b.slice(8))
    return true
  }
  counters (): Record<string, number> { return {} }

  routeByTunnelIp (ip: number): PeerRoute | undefined {
    for (const r of this.routes.values()) if (r.tunnelIp === ip) return r
    return undefined
  }

  /** What the inbound worker would do with a datagram. */
  deliver (d: Datagram): void {
    const h = this.handler
    if (h === null) return
    const b = d.bytes
    if (b.length === 0) return
    if (b[0] === 5) {
      if (b.length < 16) return // the inbound worker counts it as malformed
      const view = new DataView(b.buffer, b.byteOffset)
      if (this.#mode === 'server') {
        const src = [...this.routes.values()].find(r => r.endpointIp === d.from.ip && r.endpointPort === d.from.port)
        const dst = [...this.routes.values()].find(r => r.peerId === view.getUint32(4, true))
        if (src === undefined) { h.onControl({ kind: 'unknown-relay-source', bytes: b.slice(0, 8), ip: d.from.ip, port: d.from.port, via: 0 }); return }
        if (dst === undefined || dst === src) return
        const out = b.slice()
        new DataView(out.buffer).setUint32(4, src.peerId, true)
        this.#net.queue.push({ from: { ip: this.ip, port: this.port }, to: { ip: dst.endpointIp, port: dst.endpointPort }, bytes: out })
        return
      }
      if (this.#dataIn(b.subarray(8))) return
      h.onControl({ kind: 'relayed', bytes: b.slice(8), ip: d.from.ip, port: d.from.port, via: view.getUint32(4, true) })
      return
    }
    if (this.#mode === 'client' && this.#dataIn(b)) return
    h.onControl({ kind: 'packet', bytes: b.slice(), ip: d.from.ip, port: d.from.port, via: 0 })
  }
}
