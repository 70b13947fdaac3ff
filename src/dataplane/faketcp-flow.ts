/**
 * The fake-TCP handshake, sans-IO: segments and time in, actions out (dataplane/faketcp-link.ts does
 * the I/O on the main thread). Data segments never come here: the addon carries them once a flow is
 * `up` (native/faketcp.c), so this is only the three-way handshake that makes stateful firewalls and
 * NATs see one ordinary TCP connection, its repair, and the counting of what does not belong.
 *
 * Client (one flow, to the server):
 *
 *   idle ──connect──▶ synSent ──SYN-ACK (ack = iss+1)──▶ established ──silence ≥ SILENCE_MS──▶ synSent
 *                      │  ▲ (ACK sent, flow up)                     (new port, new ISN: a fresh
 *                      └──┘ no answer: SYN again after 1, 2, 4 s…;   conntrack entry; the old flow
 *                           after SYN_TRIES, a new port and ISN       carries data until the new is up)
 *
 * Server (a flow per client address):
 *   SYN from a new address ──▶ flow up (seq = iss+1, ack = irs+1), SYN-ACK; the client's ACK or
 *   first data completes it. The same SYN again (SYN-ACK lost): the same SYN-ACK. A SYN with
 *   another ISN (the client restarted): a new ISN, the flow reset. A flow that carried nothing for
 *   IDLE_MS (HALF_OPEN_MS before its first data) is dropped; HALF_OPEN_MAX flows at once without
 *   data, beyond that SYNs are dropped (counted).
 *
 * Either side: an RST is counted and ignored (issue 12 item 5: a forged RST must not tear the
 * tunnel down; a new SYN re-establishes), and so is a FIN or a stray segment.
 */
import type { Random } from '../random.js'
import { TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, type Ipv4Tcp, type TcpOptions, type TcpSegment } from '../wire/tcp-segment.js'

/** A SYN not answered is sent again after 1 s, then 2, 4, 8 s (Linux's initial RTO is 1 s). */
export const SYN_RETRY_MS = 1000
export const SYN_RETRY_MAX_MS = 8000
/** SYNs per port and ISN before the client tries another port (a middlebox may have marked the old one). */
export const SYN_TRIES = 4
/** No segment from the server for this long: reconnect with a new flow (at least; the link passes 3 keepalives when longer: Pongs answer them). */
export const SILENCE_MS = 30_000
/** Server: a flow that carried nothing for this long is forgotten. */
export const IDLE_MS = 180_000
/** Server: a flow that never carried data is forgotten after this long. */
export const HALF_OPEN_MS = 30_000
/** Server: flows without data at once, at most (a SYN flood fills this, never the table). */
export const HALF_OPEN_MAX = 256
/** Our window scale (RFC 7323): the data segments' window 65535 << 9 = 32 MiB (native/faketcp.c). */
export const WSCALE = 9
/** The MSS we announce (Ethernet). */
export const MSS = 1460
/** Client ports: Linux's default ephemeral range. */
const PORT_LO = 32768
const PORT_HI = 60999

export interface FlowKey { rip: number, rport: number, lip: number, lport: number }

export type FlowAction =
  /** Send this segment (the link builds the IPv4 header and the checksum). */
  | { kind: 'send', srcIp: number, dstIp: number, seg: TcpSegment }
  /** Program the addon's flow: data may flow with these numbers. `replaces`: the client's previous flow key. */
  | { kind: 'up', key: FlowKey, seq: number, ack: number, tsRecent: number }
  /** Forget the addon's flow. */
  | { kind: 'drop', key: FlowKey }

export interface FlowCounters {
  faketcpSynSent: number
  faketcpSynReceived: number
  faketcpEstablished: number
  faketcpRstIgnored: number
  faketcpStrayIgnored: number
  faketcpSynDropped: number
  faketcpReconnects: number
}

export function newCounters (): FlowCounters {
  return { faketcpSynSent: 0, faketcpSynReceived: 0, faketcpEstablished: 0, faketcpRstIgnored: 0, faketcpStrayIgnored: 0, faketcpSynDropped: 0, faketcpReconnects: 0 }
}

function synOptions (tsVal: number, ecr: number): TcpOptions {
  return { mss: MSS, sackOk: true, ts: { val: tsVal >>> 0, ecr: ecr >>> 0 }, wscale: WSCALE }
}

/** A segment's kind for counting: RST and FIN are ignored and counted apart from other strays. */
function countIgnored (c: FlowCounters, seg: TcpSegment): void {
  if ((seg.flags & TCP_RST) !== 0) c.faketcpRstIgnored++
  else c.faketcpStrayIgnored++
}

export type ClientFlowState =
  | { state: 'idle' }
  | { state: 'synSent', key: FlowKey, iss: number, sentAt: number, tries: number, retryMs: number }
  | { state: 'established', key: FlowKey, since: number }

export class FakeTcpClientFlow {
  readonly counters = newCounters()
  #s: ClientFlowState = { state: 'idle' }
  /** The flow in the addon while a new handshake runs (data keeps flowing on it). */
  #up: FlowKey | null = null
  readonly #random: Random
  readonly #silenceMs: number

  constructor (random: Random, silenceMs = SILENCE_MS) {
    this.#random = random
    this.#silenceMs = silenceMs
  }

  get state (): ClientFlowState { return this.#s }
  /** The key of the flow carrying data now, or null before the first handshake completed. */
  get upKey (): FlowKey | null { return this.#up }

  /** Start (or restart, to a new server address) the handshake from `lip`. */
  connect (rip: number, rport: number, lip: number, now: number): FlowAction[] {
    const lport = PORT_LO + this.#random.int(PORT_HI - PORT_LO + 1)
    return this.#syn({ rip, rport, lip, lport }, this.#isn(), now, 1, SYN_RETRY_MS)
  }

  #isn (): number { return (this.#random.int(0x10000) * 0x10000 + this.#random.int(0x10000)) >>> 0 }

  #syn (key: FlowKey, iss: number, now: number, tries: number, retryMs: number): FlowAction[] {
    this.#s = { state: 'synSent', key, iss, sentAt: now, tries, retryMs }
    this.counters.faketcpSynSent++
    return [{ kind: 'send', srcIp: key.lip, dstIp: key.rip, seg: { srcPort: key.lport, dstPort: key.rport, seq: iss, ack: 0, flags: TCP_SYN, window: 64240, options: synOptions(now, 0), payload: new Uint8Array(0) } }]
  }

  onSegment (p: Ipv4Tcp, now: number): FlowAction[] {
    const s = this.#s
    const seg = p.seg
    if (s.state === 'synSent' && p.checksumOk && (seg.flags & (TCP_SYN | TCP_ACK | TCP_RST)) === (TCP_SYN | TCP_ACK) &&
        p.srcIp === s.key.rip && seg.srcPort === s.key.rport && seg.dstPort === s.key.lport && seg.ack === ((s.iss + 1) >>> 0)) {
      const seq = seg.ack
      const ack = (seg.seq + 1) >>> 0
      const tsRecent = seg.options.ts?.val ?? 0
      const out: FlowAction[] = []
      if (this.#up !== null && (this.#up.lport !== s.key.lport || this.#up.rip !== s.key.rip)) out.push({ kind: 'drop', key: this.#up })
      this.#up = s.key
      this.#s = { state: 'established', key: s.key, since: now }
      this.counters.faketcpEstablished++
      const ackOpts: TcpOptions = seg.options.ts !== undefined ? { ts: { val: now >>> 0, ecr: tsRecent } } : {}
      out.push({ kind: 'send', srcIp: s.key.lip, dstIp: s.key.rip, seg: { srcPort: s.key.lport, dstPort: s.key.rport, seq, ack, flags: TCP_ACK, window: 0xffff, options: ackOpts, payload: new Uint8Array(0) } })
      out.push({ kind: 'up', key: s.key, seq, ack, tsRecent })
      return out
    }
    countIgnored(this.counters, seg)
    return []
  }

  /** `rxAgeMs`: time since the addon last received a data segment on the flow that is up (-1: never). */
  tick (now: number, rxAgeMs: number): FlowAction[] {
    const s = this.#s
    switch (s.state) {
      case 'idle': return []
      case 'synSent':
        if (now - s.sentAt < s.retryMs) return []
        if (s.tries >= SYN_TRIES) return this.connect(s.key.rip, s.key.rport, s.key.lip, now)
        return this.#syn(s.key, s.iss, now, s.tries + 1, Math.min(s.retryMs * 2, SYN_RETRY_MAX_MS))
      case 'established': {
        const quiet = rxAgeMs < 0 ? now - s.since : Math.min(rxAgeMs, now - s.since)
        if (quiet < this.#silenceMs) return []
        this.counters.faketcpReconnects++
        return this.connect(s.key.rip, s.key.rport, s.key.lip, now)
      }
      default: return assertNever(s)
    }
  }

  toJSON (): object { return { state: this.#s.state, ...(this.#up !== null ? { localPort: this.#up.lport } : {}) } }
}

/** One client's flow on the server. */
interface ServerFlow { key: FlowKey, iss: number, irs: number, createdAt: number, hadData: boolean }

export class FakeTcpServerFlows {
  readonly counters = newCounters()
  readonly #flows = new Map<string, ServerFlow>()
  readonly #random: Random
  readonly #port: number

  constructor (port: number, random: Random) {
    this.#port = port
    this.#random = random
  }

  get size (): number { return this.#flows.size }

  onSegment (p: Ipv4Tcp, now: number): FlowAction[] {
    const seg = p.seg
    if (!p.checksumOk || seg.dstPort !== this.#port || (seg.flags & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN)) !== TCP_SYN) {
      countIgnored(this.counters, seg)
      return []
    }
    this.counters.faketcpSynReceived++
    const id = `${p.srcIp}:${seg.srcPort}`
    let f = this.#flows.get(id)
    if (f === undefined || f.irs !== seg.seq) {
      if (f === undefined && this.#halfOpen() >= HALF_OPEN_MAX) { this.counters.faketcpSynDropped++; return [] }
      const iss = (this.#random.int(0x10000) * 0x10000 + this.#random.int(0x10000)) >>> 0
      f = { key: { rip: p.srcIp, rport: seg.srcPort, lip: p.dstIp, lport: seg.dstPort }, iss, irs: seg.seq, createdAt: now, hadData: false }
      this.#flows.set(id, f)
    }
    const tsEcr = seg.options.ts?.val
    const options: TcpOptions = {
      mss: MSS,
      ...(seg.options.sackOk === true ? { sackOk: true } : {}),
      ...(tsEcr !== undefined ? { ts: { val: now >>> 0, ecr: tsEcr } } : {}),
      ...(seg.options.wscale !== undefined ? { wscale: WSCALE } : {})
    }
    const seq = (f.iss + 1) >>> 0
    const ack = (f.irs + 1) >>> 0
    this.counters.faketcpEstablished++
    return [
      { kind: 'up', key: f.key, seq, ack, tsRecent: tsEcr ?? 0 },
      { kind: 'send', srcIp: f.key.lip, dstIp: f.key.rip, seg: { srcPort: f.key.lport, dstPort: f.key.rport, seq: f.iss, ack, flags: TCP_SYN | TCP_ACK, window: 65160, options, payload: new Uint8Array(0) } }
    ]
  }

  #halfOpen (): number {
    let n = 0
    for (const f of this.#flows.values()) if (!f.hadData) n++
    return n
  }

  /** `rxAgeMs(key)`: time since the addon last received data on the flow (-1: never). Drops idle flows. */
  tick (now: number, rxAgeMs: (key: FlowKey) => number): FlowAction[] {
    const out: FlowAction[] = []
    for (const [id, f] of this.#flows) {
      const age = rxAgeMs(f.key)
      if (age >= 0) f.hadData = true
      const quiet = age < 0 ? now - f.createdAt : Math.min(age, now - f.createdAt)
      if (quiet >= (f.hadData ? IDLE_MS : HALF_OPEN_MS)) {
        this.#flows.delete(id)
        out.push({ kind: 'drop', key: f.key })
      }
    }
    return out
  }

  toJSON (): object { return { flows: this.#flows.size, halfOpen: this.#halfOpen() } }
}

function assertNever (x: never): never { throw new Error(`unexpected state ${JSON.stringify(x)}`) }
