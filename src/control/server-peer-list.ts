/**
 * The server's peer-list announcements: who each client learns about.
 *
 *   a client activates or moves ─▶ announce(rec)  ─┐
 *   an active client is removed ─▶ removed(rec)   ─┴▶ changes, coalesced ─▶ flush(now) every
 *                                                     PEER_UPDATE_INTERVAL: version + 1, each active
 *                                                     client gets the changes but its own (PEER_OP_*)
 *   a client activates, or its Ping names an old version ─▶ sendFull(rec, s): every other active client (reset)
 *   --client-isolation: sendFull is an empty reset list and no changes go out
 * Each entry carries the client's approved routes (attrs; server-routes.ts).
 *
 * `version` numbers the lists; clients echo it in their Pings (server.ts
 * answers a stale one with the full list). Sends are sealed on the client's
 * session, to its endpoint. Main thread only.
 */
import type { DataplanePort } from './port.js'
import type { Session } from './session.js'
import * as C from './constants.js'
import { encodePeerUpdates, PEER_OP_REMOVE, PEER_OP_UPSERT, type PeerEntry } from '../wire/control.js'
import { PEER_UPDATE_MAX_BYTES } from '../wire/constants.js'
import { clientAttrs, type ClientRecord } from './server-context.js'
import { wireIp, wirePort } from '../wire/endpoint-handle.js' // a handle (a client on TCP or IPv6): no IPv4 endpoint on the wire
import { endpoint6Of, type V6Names } from './endpoint6.js'

export class ServerPeerList {
  readonly #port: DataplanePort
  /** Every client record, by tunnel address (the controller's map; read only here). */
  readonly #byIp: ReadonlyMap<number, ClientRecord>
  /** --client-isolation: clients learn of no other client (an empty list; no deltas). */
  readonly #isolated: boolean
  #version = 1
  #pendingChanges: PeerEntry[] = []
  /** Monotonic ms of the last flush. */
  #lastUpdateFlush = 0

  readonly #v6: V6Names | undefined

  constructor (port: DataplanePort, byIp: ReadonlyMap<number, ClientRecord>, isolated = false, v6?: V6Names) {
    this.#v6 = v6
    this.#port = port
    this.#byIp = byIp
    this.#isolated = isolated
  }

  /** The current peer-list version (carried in our Pings and Pongs). */
  get version (): number { return this.#version }

  #entry (rec: ClientRecord, op: typeof PEER_OP_UPSERT | typeof PEER_OP_REMOVE): PeerEntry {
    // A client that registered over IPv6: IPv4 endpoint 0:0 and its address in ENDPOINT6 (PROTOCOL §4.8).
    const endpoint6 = endpoint6Of(this.#v6, rec.endpointIp, rec.endpointPort)
    const attrs = endpoint6 === null ? clientAttrs(rec) : { ...clientAttrs(rec), endpoint6 }
    return { op, peerId: rec.peerId, tunnelIp: rec.tunnelIp, publicIp: wireIp(rec.endpointIp), publicPort: wirePort(rec.endpointIp, rec.endpointPort), key: rec.key, lan: rec.lan, attrs }
  }

  /** The client is active (again) or moved: tell the others at the next flush. */
  announce (rec: ClientRecord): void {
    this.#pendingChanges.push(this.#entry(rec, PEER_OP_UPSERT))
  }

  /** An active client was removed: tell the others at the next flush. */
  removed (rec: ClientRecord): void {
    this.#pendingChanges.push(this.#entry(rec, PEER_OP_REMOVE))
  }

  /** Every other active client, as a reset list, on `rec`'s session `s`. */
  sendFull (rec: ClientRecord, s: Session): void {
    const entries: PeerEntry[] = []
    if (!this.#isolated) for (const r of this.#byIp.values()) if (r.active && r !== rec) entries.push(this.#entry(r, PEER_OP_UPSERT))
    for (const m of encodePeerUpdates(entries, this.#version, PEER_UPDATE_MAX_BYTES, { reset: true })) {
      this.#port.sendControl(s.ctl.seal(m), rec.endpointIp, rec.endpointPort)
    }
  }

  /** The coalesced changes, at most once per PEER_UPDATE_INTERVAL (from tick()). */
  flush (now: number): void {
    // Isolated: nothing to tell (the version stays, so no client asks for a full list again).
    if (this.#isolated) this.#pendingChanges = []
    if (this.#pendingChanges.length > 0 && now - this.#lastUpdateFlush >= C.PEER_UPDATE_INTERVAL) {
      this.#lastUpdateFlush = now
      this.#version++
      const changes = this.#pendingChanges
      this.#pendingChanges = []
      for (const rec of this.#byIp.values()) {
        const s = rec.sessions.current
        if (!rec.active || s === null) continue
        const mine = changes.filter(e => e.peerId !== rec.peerId)
        for (const m of encodePeerUpdates(mine, this.#version, PEER_UPDATE_MAX_BYTES, { reset: false })) {
          this.#port.sendControl(s.ctl.seal(m), rec.endpointIp, rec.endpointPort)
        }
      }
    }
  }
}
