/**
 * What the pieces of the client's control plane share (client.ts builds one
 * ClientContext and hands it to ServerLink and PeerSessions): the options,
 * the injected components, the one table of receiver indexes (sessions with
 * the server and with peers live in it side by side), the init timestamps, and the two ways out (to the server, relayed to a peer).
 * Main thread only.
 */
import type { Endpoint6 } from '../wire/attrs.js'
import type { V6Names } from './endpoint6.js'
import type { Clock, WallClock } from '../clock.js'
import type { Logger } from '../log.js'
import type { Random } from '../random.js'
import type { LanAddr } from '../wire/payloads.js'
import type { DataplanePort } from './port.js'
import type { PeerCache } from './peer-cache.js'
import { wipeSession, type IndexTable, type Session, type SessionSet } from './session.js'
import type { IpPrefix } from '../wire/prefix.js'
import type { StaticKey } from '../crypto/noise.js'
import type { ServerPin } from '../identity/server-pin.js'

export interface ClientOptions {
  psk: Uint8Array
  /** This node's static key (identity/node-key.ts). */
  nodeKey: StaticKey
  /** The server's pinned key (identity/server-pin.ts); every registration response is checked against it. Absent: any key. */
  serverPin?: ServerPin
  tunnelIp: number
  prefix: number
  /** Our IPv6 tunnel address (--tun's IPv6 half), or null/absent: IPv4 only. */
  tunnel6?: IpPrefix | null
  mtu: number
  serverIp: number
  serverPort: number
  keepaliveSec: number
  /** Display form of the server address, for messages. */
  serverName: string
  /** FEC offered to peers (--fec; control/fec-negotiation.ts). Absent or null: off. */
  fec?: { readonly data: number, readonly parity: number } | null
  /** Try direct paths to other clients (--p2p, the default). */
  p2p?: boolean
  /** Our own addresses with the UDP port we listen on (LAN candidates for peers); read at registration. */
  localEndpoints?: () => LanAddr[]
  /** Our global IPv6 addresses with our port (CANDIDATE6 in the init: peers probe them; control/endpoint6.ts). */
  localEndpoints6?: () => Endpoint6[]
  /** Our port mapping's external endpoint (port-mapping.ts), or null: offered to peers beside the others. */
  mappedEndpoint?: () => LanAddr | null
  /** The server sees us at a new public endpoint (not the first): the port mapping is refreshed. */
  publicEndpointChanged?: () => void
  /** The address cache (`<state-dir>/peers.json`): peers reached directly, reachable again after a restart without the server. */
  peerCache?: PeerCache | null
  /** Networks behind this client (--advertise-routes), sent in every registration (InitPayload attrs.routes). */
  advertiseRoutes?: readonly IpPrefix[]
}

/** The dataplane slot of the server (peers get 1 …). */
export const SERVER_SLOT = 0

/** Anything that owns sessions: the server remote, or a peer. */
export interface SessionOwner { sessions: SessionSet }

export interface ClientContext {
  readonly opt: ClientOptions
  readonly port: DataplanePort
  readonly clock: Clock & WallClock
  readonly random: Random
  readonly log: Logger
  /** The IPv6 address table (control/endpoint6.ts), when the daemon has one. */
  readonly v6: V6Names | undefined
  readonly indexes: IndexTable<SessionOwner>
  /** A fresh init timestamp: wall-clock ms, strictly increasing over every init we send (the receiver drops one not newer than the last). */
  timestamp(): number
  /** Forget a session's receiver index, here and in the dataplane. */
  drop(s: Session): void
  /** Is this datagram from the server's main port? */
  fromServer(ip: number, port: number): boolean
  /** Send to the server's main port. */
  sendToServer(bytes: Uint8Array): void
  /** Send to a peer through the server: a relay envelope (type 5, the peer's id) around `inner`. */
  sendRelayed(peerId: number, inner: Uint8Array): void
}

/** The ClientContext of one ClientController. */
export function clientContext (opt: ClientOptions, c: { port: DataplanePort, clock: Clock & WallClock, random: Random, log: Logger, v6?: V6Names }, indexes: IndexTable<SessionOwner>): ClientContext {
  let lastTimestamp = 0
  const { port } = c
  return {
    opt, port, clock: c.clock, random: c.random, log: c.log, v6: c.v6, indexes,
    timestamp: () => (lastTimestamp = Math.max(lastTimestamp + 1, c.clock.wallNow())),
    drop: (s) => {
      indexes.delete(s.localIndex)
      port.dropRecvIndex(s.localIndex)
      wipeSession(s)
    },
    fromServer: (ip, p) => ip === opt.serverIp && p === opt.serverPort,
    sendToServer: (bytes) => { port.sendControl(bytes, opt.serverIp, opt.serverPort) },
    sendRelayed: (peerId, inner) => {
      const out = new Uint8Array(8 + inner.length)
      const v = new DataView(out.buffer)
      v.setUint32(0, 5, true)
      v.setUint32(4, peerId, true)
      out.set(inner, 8)
      port.sendControl(out, opt.serverIp, opt.serverPort)
    }
  }
}
