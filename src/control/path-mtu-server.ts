/**
 * The server's side of path MTU discovery: clients probe their path to us
 * (control/path-mtu-client.ts); we answer each MtuProbe with an MtuAck
 * carrying its length as received, and take the path MTU the client says it
 * has confirmed (the probe's pathMtu field, authenticated by its session)
 * as the limit of what we send that client from our own TUN
 * (DataplanePort.setPathMtu on its slot: larger inner packets are answered
 * with ICMP too-big by our outbound pipeline).
 *
 *   MtuProbe on a client's current session ──▶ onProbe ──▶ MtuAck to where it came from
 *                                                      └─▶ setPathMtu(slot, pathMtu − overhead) when it changed
 *
 * Packets we relay between clients are forwarded as they come (the sender's
 * own path MTU bounds them; a receiver with a smaller path than the sender's
 * is not covered yet: docs/PROTOCOL.md §6.4).
 */
import { CTL_MTU_ACK, encodeControl, type MtuProbe } from '../wire/control.js'
import { pathOverhead } from './path-mtu.js'
import { NO_PATH_LIMIT } from '../workers/layout.js'
import type { DataplanePort } from './port.js'
import type { Session } from './session.js'

export class ServerPathMtu {
  readonly #port: DataplanePort
  readonly #tunMtu: number
  /** Limit applied per client record (a new record for a slot starts unlimited in the dataplane too). */
  readonly #applied = new WeakMap<object, number>()
  /**
   * mtuProbesDropped: probes on a session that is not a client's current one. controlDropped: control
   * messages on a known index that failed to authenticate or decode (forged or malformed probes land here).
   */
  readonly counters = { mtuProbesAnswered: 0, mtuProbesDropped: 0, controlDropped: 0 }

  constructor (port: DataplanePort, tunMtu: number) {
    this.#port = port
    this.#tunMtu = tunMtu
  }

  /** A probe on `rec`'s current session, from ip:port. */
  onProbe (rec: { slot: number }, s: Session, msg: MtuProbe, ip: number, port: number): void {
    this.counters.mtuProbesAnswered++
    this.#port.sendControl(s.ctl.seal(encodeControl({ kind: CTL_MTU_ACK, txid: msg.txid, length: msg.length })), ip, port)
    const overhead = pathOverhead(ip)
    // 0: nothing confirmed yet; a size below what the headers need is nonsense: both mean no limit.
    const inner = msg.pathMtu === 0 || msg.pathMtu - overhead < 68 || msg.pathMtu - overhead >= this.#tunMtu ? NO_PATH_LIMIT : msg.pathMtu - overhead
    if ((this.#applied.get(rec) ?? NO_PATH_LIMIT) === inner) return
    this.#applied.set(rec, inner)
    this.#port.setPathMtu(rec.slot, inner)
  }
}
