/**
 * Where connection handles are resolved for the control plane: a
 * DataplanePort (and ControlHandler) wrapper that the daemon puts between
 * the controllers and the dataplane when a transport table exists.
 *
 *   controller ─setPeer/sendControl(ip = HANDLE_CONN|i)─▶ bridge 127.0.0.1:P ─▶ Dataplane
 *   Dataplane ─onControl/onEndpoint(127.0.0.1:P)─▶ handle endpoint ─▶ controller
 *
 * A handle whose entry is gone resolves to 127.0.0.1:9 (discard): what is
 * sent to a closed connection is lost, as on a dead UDP path.
 * Every other call passes through untouched.
 */
import type { ControlHandler, DataplanePort, PeerRoute } from '../control/port.js'
import { isConnHandle } from '../wire/endpoint-handle.js'
import { isFakeTcpHandle } from '../wire/faketcp-handle.js'
import { LOOPBACK, type ConnTable } from './conn-table.js'

const DISCARD = { ip: LOOPBACK, port: 9 }

export function transportPort (inner: DataplanePort, table: ConnTable): DataplanePort {
  // A fake-TCP flow's handle (wire/faketcp-handle.ts) is resolved by the addon itself: passed through.
  const bridged = (ip: number): boolean => isConnHandle(ip) && !isFakeTcpHandle(ip)
  const down = (ip: number, port: number): { ip: number, port: number } => bridged(ip) ? (table.bridgeOf(ip) ?? DISCARD) : { ip, port }
  return {
    setPeer: (route: PeerRoute) => {
      if (!bridged(route.endpointIp)) { inner.setPeer(route); return }
      const b = down(route.endpointIp, route.endpointPort)
      inner.setPeer({ ...route, endpointIp: b.ip, endpointPort: b.port })
    },
    removePeer: (slot) => { inner.removePeer(slot) },
    setLocalPrefixes: (p) => { inner.setLocalPrefixes(p) },
    setSendKey: (slot, key, idx, fec) => { inner.setSendKey(slot, key, idx, fec) },
    clearSendKey: (slot) => { inner.clearSendKey(slot) },
    setPathMtu: (slot, mtu) => { inner.setPathMtu(slot, mtu) },
    setRecvKey: (slot, idx, key, fec) => { inner.setRecvKey(slot, idx, key, fec) },
    dropRecvIndex: (idx) => { inner.dropRecvIndex(idx) },
    sendControl: (bytes, ip, port, sock) => {
      const b = down(ip, port)
      inner.sendControl(bytes, b.ip, b.port, sock)
    },
    sendControlTtl: (bytes, ip, port, ttl, sock) => {
      const b = down(ip, port)
      inner.sendControlTtl(bytes, b.ip, b.port, ttl, sock)
    },
    openProbeSockets: (n) => inner.openProbeSockets(n),
    adoptProbeSocket: (s) => { inner.adoptProbeSocket(s) },
    closeProbeSockets: (s) => { inner.closeProbeSockets(s) },
    peerCounters: (slot) => inner.peerCounters(slot),
    counters: () => inner.counters()
  }
}

/** The handler the dataplane calls: bridge sources become handle endpoints. */
export function transportHandler (inner: ControlHandler, table: ConnTable): ControlHandler {
  return {
    onControl: (input) => {
      const h = (input.sock ?? 0) === 0 ? table.handleOf(input.ip, input.port) : null
      inner.onControl(h === null ? input : { ...input, ip: h.ip, port: h.port })
    },
    onNeedSession: (slot) => { inner.onNeedSession(slot) },
    onSendLimit: (slot) => { inner.onSendLimit(slot) },
    onEndpoint: (slot, ip, port) => {
      const h = table.handleOf(ip, port)
      inner.onEndpoint(slot, h?.ip ?? ip, h?.port ?? port)
    }
  }
}
