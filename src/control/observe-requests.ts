/**
 * The control socket's `ping` and `netcheck` requests (cli/control-protocol.ts
 * carries them; daemon.ts routes them here). Each answers with a plain
 * object the CLI prints (cli/ping.ts, cli/netcheck.ts) or --json passes on.
 *
 *   {"cmd":"ping","peer":"10.0.0.3","timeoutMs":2000}
 *     → PingResult: one authenticated Ping on the peer's current path
 *       (control/user-ping.ts), rttMs null when no Pong came in time.
 *   {"cmd":"netcheck"}   (clients only)
 *     → NetcheckReport: what the client knows about its NAT and its server,
 *       plus two live probes sent now: a keepalive-style Ping to the server's
 *       main port (UDP reachability, RTT) and a NAT check to its NAT-check
 *       port (server port + 1).
 */
import { VpnError } from '../errors.js'
import { ipToInt } from '../wire/addr.js'
import { ClientController } from './client.js'
import { ServerController } from './server.js'
import { NAT_CHECK_PORT_OFFSET } from './constants.js'
import type { PingResult, PingStarted } from './user-ping.js'
import type { PortMapStatus } from './port-mapping.js'

/** Default wait for a Pong, ms (ping -W). */
export const PING_TIMEOUT_MS = 2000
/** Longest wait a request may ask for, ms: below the control socket's 10-s idle limit (cli/control-protocol.ts CONNECTION_IDLE_MS). */
export const PING_TIMEOUT_MAX_MS = 8_000

const IPV4 = /^(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}$/

function bad (message: string): VpnError {
  return new VpnError('ERR_USAGE', message)
}

function timeoutOf (req: { timeoutMs?: unknown }): number {
  const t = req.timeoutMs ?? PING_TIMEOUT_MS
  if (typeof t !== 'number' || !Number.isInteger(t) || t < 1 || t > PING_TIMEOUT_MAX_MS) throw bad(`"timeoutMs" must be an integer 1..${PING_TIMEOUT_MAX_MS}`)
  return t
}

/** Waits for the Pong of a ping `start` sends; resolves with its RTT, or null after timeoutMs. */
function waitReply<T> (start: (onReply: (rttMs: number) => void) => T | string, timeoutMs: number, cancelOf: (t: T) => () => void): Promise<{ sent: T, rttMs: number | null }> {
  return new Promise((resolve, reject) => {
    let done = false
    let timer: NodeJS.Timeout | null = null
    const sent = start((rttMs) => {
      if (done) return
      done = true
      if (timer !== null) clearTimeout(timer)
      resolve({ sent: sent as T, rttMs: Math.round(rttMs * 1000) / 1000 })
    })
    if (typeof sent === 'string') { done = true; reject(new VpnError('ERR_USAGE', sent)); return }
    if (done) return
    timer = setTimeout(() => {
      if (done) return
      done = true
      cancelOf(sent)()
      resolve({ sent, rttMs: null })
    }, timeoutMs)
  })
}

export async function answerPing (controller: ClientController | ServerController, req: Record<string, unknown>): Promise<PingResult> {
  if (typeof req.peer !== 'string' || !IPV4.test(req.peer)) throw bad(`"peer" must be a peer's tunnel address such as 10.0.0.3, got ${JSON.stringify(req.peer) ?? 'nothing'}`)
  const timeoutMs = timeoutOf(req)
  const ip = ipToInt(req.peer)
  const { sent, rttMs } = await waitReply<PingStarted>((onReply) => controller.ping(ip, onReply), timeoutMs, (s) => s.cancel)
  return { peer: req.peer, path: sent.path, endpoint: sent.endpoint, rttMs }
}

export interface NetcheckReport {
  /** The client's TUN device. */
  dev: string
  server: string
  /** Registration state (as status shows it). */
  state: string
  /** A Ping to the server's main port answered now (UDP works both ways). */
  udp: boolean
  /** That Ping's round trip, ms, or null. */
  rttMs: number | null
  /** Lowest recent keepalive round trip, ms, or null. */
  keepaliveRttMs: number | null
  /** Our endpoint as the server sees it (the reflexive address), or null. */
  publicEndpoint: string | null
  /** NAT mapping: 'none' | 'cone' (endpoint-independent) | 'symmetric' (endpoint-dependent) | 'unknown'. */
  nat: string
  /** How that was decided. */
  natHow: string
  natCheck: {
    /** The server's NAT-check port. */
    endpoint: string
    /** It answered the NAT check sent now. */
    answering: boolean
    rttMs: number | null
    /** Our endpoint as that port sees it, or null. */
    sawUs: string | null
  }
  /** Other views of our endpoint used for the classification (NAT-check port, peers). */
  otherViews: string[]
  localEndpoints: string[]
  /** The port mapping as status has it (UPnP, PCP or NAT-PMP: what the mapper found), null when off (--no-port-mapping, --no-p2p). */
  portMapping: PortMapStatus | null
  /** The path MTU to the server as probed (control/path-mtu-client.ts), in words. */
  pathMtu: string
}

export async function answerNetcheck (controller: ClientController | ServerController, req: Record<string, unknown>, dev: string,
  portMapping: () => PortMapStatus | null = () => null): Promise<NetcheckReport> {
  if (!(controller instanceof ClientController)) {
    throw new VpnError('ERR_USAGE', 'netcheck runs on a client: it reports how the client reaches its server (this daemon is the server)')
  }
  const timeoutMs = timeoutOf(req)
  const c = controller
  const serverIp = c.serverTunnelIp
  const [main, check] = await Promise.all([
    serverIp === 0
      ? Promise.resolve({ rttMs: null })
      : waitReply<PingStarted>((onReply) => c.ping(serverIp, onReply), timeoutMs, (s) => s.cancel).catch(() => ({ rttMs: null })),
    waitReply<() => void>((onReply) => c.probeNatCheckPort(onReply), timeoutMs, (cancel) => cancel).catch(() => ({ rttMs: null }))
  ])
  const f = c.netcheck()
  const [host, port] = splitEndpoint(c.serverEndpoint)
  return {
    dev,
    server: c.serverEndpoint,
    state: f.state,
    udp: main.rttMs !== null,
    rttMs: main.rttMs,
    keepaliveRttMs: f.rttMs,
    publicEndpoint: f.publicEndpoint,
    nat: f.nat,
    natHow: f.natHow,
    natCheck: { endpoint: `${host}:${port + NAT_CHECK_PORT_OFFSET}`, answering: check.rttMs !== null, rttMs: check.rttMs, sawUs: check.rttMs !== null ? f.natCheckView : null },
    otherViews: f.otherViews,
    localEndpoints: f.localEndpoints,
    portMapping: portMapping(),
    pathMtu: c.serverPathMtu()
  }
}

function splitEndpoint (ep: string): [string, number] {
  const i = ep.lastIndexOf(':')
  return [ep.slice(0, i), Number(ep.slice(i + 1))]
}
