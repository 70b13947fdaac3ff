/**
 * Return routability for the server's clients: an authenticated packet from
 * a new source endpoint does not move the client (a member could spoof its
 * source and point the relay, and its peers' punching, anywhere).
 *
 *   data or a Ping from a new source ─▶ check(): a Ping with a fresh random
 *     txid there, sealed on the client's current session (at most one per
 *     endpoint per ROAM_CHECK_GAP); traffic stays on the old endpoint meanwhile
 *   its Pong from that endpoint ─▶ onPong(): the client moves (dataplane
 *     route, and the peer list tells the others)
 *
 * Main thread only.
 */
import * as C from './constants.js'
import { encodeControl, CTL_PING } from '../wire/control.js'
import { formatEndpoint, intToIp } from '../wire/addr.js'
import type { ClientRecord, ServerContext } from './server-context.js'

export class ServerRoaming {
  readonly #ctx: ServerContext
  /** Return-routability checks of a client's new source endpoint: started, and passed (the client moved). */
  readonly counters = { endpointChecks: 0, endpointMoves: 0 }

  constructor (ctx: ServerContext) { this.#ctx = ctx }

  /** `rec` was heard from ip:port: nothing if that is its endpoint, else a check (one RTT). */
  check (rec: ClientRecord, ip: number, port: number, now: number): void {
    if (rec.endpointIp === ip && rec.endpointPort === port) { rec.roam = null; return }
    const s = rec.sessions.current
    if (s === null) return
    const r = rec.roam
    if (r !== null && r.ip === ip && r.port === port && now - r.at < C.ROAM_CHECK_GAP) return
    const txid = 0x40000000 + this.#ctx.random.int(0x40000000) // above our sequential RTT txids, below user pings (top bit)
    rec.roam = { ip, port, txid, at: now }
    this.counters.endpointChecks++
    this.#ctx.port.sendControl(s.ctl.seal(encodeControl({ kind: CTL_PING, txid, peerListVersion: this.#ctx.peerList.version })), ip, port)
  }

  /** A Pong from `rec`: true when it answers our check (then, if it came from the checked endpoint, the client moves there). */
  onPong (rec: ClientRecord, txid: number, ip: number, port: number): boolean {
    const roam = rec.roam
    if (roam === null || txid !== roam.txid) return false
    if (roam.ip === ip && roam.port === port && rec.active) this.#move(rec, ip, port)
    return true
  }

  /** The check's Pong came back from the new endpoint: move the client there. */
  #move (rec: ClientRecord, ip: number, port: number): void {
    rec.roam = null
    this.counters.endpointMoves++
    this.#ctx.log.info('client moved', { peer: intToIp(rec.tunnelIp), endpoint: formatEndpoint(ip, port) })
    rec.endpointIp = ip
    rec.endpointPort = port
    this.#ctx.port.setPeer(this.#ctx.route(rec))
    this.#ctx.peerList.announce(rec)
  }
}
