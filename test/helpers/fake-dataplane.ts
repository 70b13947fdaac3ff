/**
 * An in-memory twin of the dataplane for control-plane tests: a FakeNet of
 * nodes addressed by ip:port, each with a FakeDataplane that records what the
 * controller installs (routes, keys) and delivers control datagrams the way
 * the inbound worker would (relay envelopes rewritten on the server,
 * unwrapped on clients). Time is a ManualClock; nothing sleeps.
 */
import type { ControlHandler, DataplanePort, PeerRoute } from '../../src/control/port.js'
import type { PeerCounters } from '../../src/dataplane/stats.js'

export interface Datagram {
  from: { ip: number, port: number }
  to: { ip: number, port: number }
  bytes: Uint8Array
  /** IP TTL when the sender set one (a low-TTL probe): FakeNet NATs let it open a mapping, then drop it. */
  ttl?: number
}

export class FakeNet {
  readonly nodes = new Map<string, FakeDataplane>()
  readonly queue: Datagram[] = []
  /** Return false to drop a datagram (loss, firewall). */
  filter: (d: Datagram) => boolean = () => true
  sent = 0

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
      if (!this.filter(d)) continue
      this.nodes.get(`${d.to.ip}:${d.to.port}`)?.deliver(d)
    }
    return n
  }
}

export class FakeDataplane implements DataplanePort {
  readonly routes = new Map<number, PeerRoute>()
  readonly sendKeys = new Map<number, { key: Uint8Array, remoteIndex: number }>()
  readonly recvKeys = new Map<number, { slot: number, key: Uint8Array }>()
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
  removePeer (slot: number): void { this.routes.delete(slot); this.sendKeys.delete(slot) }
  setSendKey (slot: number, key: Uint8Array, remoteIndex: number): void { this.sendKeys.set(slot, { key, remoteIndex }) }
  setRecvKey (slot: number, localIndex: number, key: Uint8Array): void { this.recvKeys.set(localIndex, { slot, key }) }
  dropRecvIndex (localIndex: number): void { this.recvKeys.delete(localIndex) }
  sendControl (bytes: Uint8Array, ip: number, port: number): void {
    this.#net.sent++
    this.#net.queue.push({ from: { ip: this.ip, port: this.port }, to: { ip, port }, bytes: bytes.slice() })
  }

  sendControlTtl (bytes: Uint8Array, ip: number, port: number, ttl: number): void {
    this.#net.sent++
    this.#net.queue.push({ from: { ip: this.ip, port: this.port }, to: { ip, port }, bytes: bytes.slice(), ttl })
  }

  peerCounters (_slot: number): PeerCounters { return { txPackets: 0, txBytes: 0, rxPackets: 0, rxBytes: 0, lastRxMs: 0 } }
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
    if (b[0] === 5) {
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
      h.onControl({ kind: 'relayed', bytes: b.slice(8), ip: d.from.ip, port: d.from.port, via: view.getUint32(4, true) })
      return
    }
    h.onControl({ kind: 'packet', bytes: b.slice(), ip: d.from.ip, port: d.from.port, via: 0 })
  }
}
