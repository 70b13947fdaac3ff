/**
 * A client's choice of transport to its server (--transport auto|udp|tcp),
 * sans-IO on the injected clock: inputs are the registration state and the
 * outcomes of the I/O the driver (client-transport.ts) did; outputs are
 * actions for it.
 *
 *   auto:
 *     udp ──no answer from the server for FALLBACK_MS──▶ connecting ──connected──▶ tcp
 *      ▲                                                  │ failed: wait (2 s, doubling to 30 s), on UDP
 *      │                                                  ▼
 *      └──────────── a UDP probe answered (every PROBE_MS on tcp) ◀── tcp ──closed──▶ connecting
 *   tcp (pinned): connecting ⇄ tcp, never UDP; udp (pinned): udp only.
 *
 * While connecting the server endpoint stays on UDP (UDP is still tried).
 * Actions: 'connect' (open a TCP connection), 'use-udp', 'use-tcp' (point
 * the server endpoint there), 'close-tcp', 'probe-udp' (a Ping on our
 * session to the server's UDP endpoint).
 */

export type TransportMode = 'auto' | 'udp' | 'tcp'

/** No handshake answer over UDP for this long (ms): try TCP too. */
export const FALLBACK_MS = 2000
/** On TCP (auto), probe UDP this often (ms). */
export const PROBE_MS = 2000
export const RETRY_MIN_MS = 2000
export const RETRY_MAX_MS = 30_000

export type ChoiceState =
  | { kind: 'udp', unansweredSince: number }
  | { kind: 'connecting', since: number }
  | { kind: 'waiting', until: number, retryMs: number }
  | { kind: 'tcp', handle: number, since: number, lastProbe: number }

export type ChoiceAction =
  | { type: 'connect' }
  | { type: 'use-udp' }
  | { type: 'use-tcp', handle: number }
  | { type: 'close-tcp', handle: number }
  | { type: 'probe-udp' }

export interface ChoiceCounters { transportFallbacks: number, transportReturns: number, tcpConnectFailures: number, udpProbes: number }

export class TransportChoice {
  readonly mode: TransportMode
  #s: ChoiceState
  #retryMs = RETRY_MIN_MS
  /** Why we are not on UDP (status), or null on UDP. */
  #why: string | null = null
  readonly counters: ChoiceCounters = { transportFallbacks: 0, transportReturns: 0, tcpConnectFailures: 0, udpProbes: 0 }

  constructor (mode: TransportMode, now: number) {
    this.mode = mode
    this.#s = mode === 'tcp' ? { kind: 'waiting', until: now, retryMs: RETRY_MIN_MS } : { kind: 'udp', unansweredSince: now }
    if (mode === 'tcp') this.#why = 'pinned by --transport tcp'
  }

  get state (): ChoiceState { return this.#s }
  /** The transport the server endpoint uses now. */
  get transport (): 'udp' | 'tcp' { return this.#s.kind === 'tcp' ? 'tcp' : 'udp' }
  get reason (): string | null { return this.#why }

  /** Time passes; `registered`: the server answers us (on whichever transport is in use). */
  tick (now: number, registered: boolean): ChoiceAction[] {
    const s = this.#s
    switch (s.kind) {
      case 'udp':
        if (this.mode !== 'auto') return []
        if (registered) { s.unansweredSince = now; return [] }
        if (now - s.unansweredSince < FALLBACK_MS) return []
        this.#why = `no UDP answer from the server in ${FALLBACK_MS / 1000} s`
        this.#s = { kind: 'connecting', since: now }
        return [{ type: 'connect' }]
      case 'waiting':
        if (this.#backOnUdp(now, registered)) return []
        if (now < s.until) return []
        this.#s = { kind: 'connecting', since: now }
        return [{ type: 'connect' }]
      case 'connecting':
        this.#backOnUdp(now, registered)
        return []
      case 'tcp':
        if (this.mode !== 'auto' || !registered || now - s.lastProbe < PROBE_MS) return []
        s.lastProbe = now
        this.counters.udpProbes++
        return [{ type: 'probe-udp' }]
    }
  }

  /** auto, not on TCP yet, and UDP answers after all: stay on UDP (a late connect is closed). */
  #backOnUdp (now: number, registered: boolean): boolean {
    if (this.mode !== 'auto' || !registered) return false
    this.#why = null
    this.#s = { kind: 'udp', unansweredSince: now }
    return true
  }

  /** The TCP connection the last 'connect' asked for is up. */
  connected (now: number, handle: number): ChoiceAction[] {
    if (this.#s.kind !== 'connecting') return [{ type: 'close-tcp', handle }]
    this.#s = { kind: 'tcp', handle, since: now, lastProbe: now }
    this.#retryMs = RETRY_MIN_MS
    if (this.mode === 'auto') this.counters.transportFallbacks++
    return [{ type: 'use-tcp', handle }]
  }

  /** The connect failed (refused, timed out). */
  connectFailed (now: number, why: string): ChoiceAction[] {
    if (this.#s.kind !== 'connecting') return []
    this.counters.tcpConnectFailures++
    this.#why = this.mode === 'auto' ? `${this.#why ?? 'UDP unanswered'}; TCP failed too (${why})` : `TCP to the server failed (${why})`
    this.#s = { kind: 'waiting', until: now + this.#retryMs, retryMs: this.#retryMs }
    this.#retryMs = Math.min(RETRY_MAX_MS, this.#retryMs * 2)
    return []
  }

  /** The TCP connection in use ended: connect again (auto: on UDP meanwhile). */
  closed (now: number, handle: number, why: string): ChoiceAction[] {
    const s = this.#s
    if (s.kind !== 'tcp' || s.handle !== handle) return []
    this.#why = `the TCP connection ended (${why})`
    this.#s = { kind: 'connecting', since: now }
    return this.mode === 'auto' ? [{ type: 'use-udp' }, { type: 'connect' }] : [{ type: 'connect' }]
  }

  /** The server answered a UDP probe: back to UDP. */
  udpAnswered (now: number): ChoiceAction[] {
    const s = this.#s
    if (this.mode !== 'auto' || s.kind !== 'tcp') return []
    this.counters.transportReturns++
    this.#why = null
    this.#s = { kind: 'udp', unansweredSince: now }
    return [{ type: 'use-udp' }, { type: 'close-tcp', handle: s.handle }]
  }
}
