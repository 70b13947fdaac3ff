/**
 * The composition root: builds every component of one daemon from the
 * validated Config, wires them together, runs until a signal, and tears
 * everything down in reverse order. No other module creates long-lived
 * components; nothing is a global.
 *
 *   config ──▶ psk (slow KDF) ──▶ Dataplane (TUN, UDP, workers)
 *                                   ▲ DataplanePort      │ ControlInput
 *                                   │                    ▼
 *                          ServerController | ClientController ◀── tick()
 *                                   │ status()
 *                                   ▼
 *                          control socket (status for the CLI)
 */
import { lookup } from 'node:dns/promises'
import { createSocket, type Socket } from 'node:dgram'
import { networkInterfaces } from 'node:os'
import { readFileSync } from 'node:fs'
import { dirname } from 'node:path'
import type { Config } from './config/schema.js'
import { systemClock } from './clock.js'
import { systemRandom } from './random.js'
import type { Logger } from './log.js'
import { VpnError, describeError } from './errors.js'
import { derivePsk } from './crypto/kdf.js'
import { Dataplane } from './dataplane/dataplane.js'
import { ServerController } from './control/server.js'
import { ClientController } from './control/client.js'
import { NAT_CHECK_PORT_OFFSET, TICK } from './control/constants.js'
import { LoopDelayMonitor, Ticker } from './control/ticker.js'
import { startControlServer } from './cli/control-protocol.js'
import { ipToInt, intToIp } from './wire/addr.js'
import type { ControlPlaneInfo, StatusReport } from './control/status.js'
import type { ControlHandler } from './control/port.js'
import { createNotifier } from './service/notify.js'
import { startMetricsServer, type MetricsServer } from './metrics.js'
import { answerNetcheck, answerPing } from './control/observe-requests.js'

/** Peer slots per daemon: the server's clients, or a client's peers (slot 0 = the server). */
function maxPeersFor (config: Config): number {
  return config.mode === 'server' ? config.maxClients + 1 : 1024
}

export function packageVersion (): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
    return pkg.version
  } catch {
    return '0.0.0'
  }
}

async function resolveRemote (host: string): Promise<number> {
  try {
    const r = await lookup(host, { family: 4 })
    return ipToInt(r.address)
  } catch (err) {
    throw new VpnError('ERR_RESOLVE', `cannot resolve the server address "${host}"`, { cause: err, hint: 'check --remote; only IPv4 servers are supported in this version' })
  }
}

/**
 * Run a daemon until SIGINT/SIGTERM. Returns the process exit code.
 * Everything started is stopped again, also when start-up fails halfway.
 */
export async function runDaemon (config: Config, log: Logger): Promise<number> {
  const version = packageVersion()
  const startedWall = Date.now()
  log.info(`lightweight-tunnel ${version} starting`, { mode: config.mode, dev: config.dev, tun: `${config.tun.ip}/${config.tun.prefix}` })

  const serverIp = config.mode === 'client' && config.remote ? await resolveRemote(config.remote.host) : 0
  const psk = await derivePsk(config.key)
  const maxPeers = maxPeersFor(config)
  const dataplane = new Dataplane({
    mode: config.mode,
    dev: config.dev,
    cidr: `${config.tun.ip}/${config.tun.prefix}`,
    tunnelIp: config.tun.ipInt,
    mtu: config.mtu,
    listenHost: config.listen.host,
    listenPort: config.listen.port,
    maxPeers,
    socketBuffer: 4 * 1024 * 1024,
    placement: config.placement,
    fastPath: config.fastPath
  }, log.child('dataplane'))

  const controller = config.mode === 'server'
    ? new ServerController({
      psk, tunnelIp: config.tun.ipInt, prefix: config.tun.prefix, mtu: config.mtu, maxClients: config.maxClients, keepaliveSec: config.keepalive
    }, { port: dataplane, clock: systemClock, random: systemRandom, log: log.child('server') }, maxPeers)
    : new ClientController({
      psk,
      tunnelIp: config.tun.ipInt,
      prefix: config.tun.prefix,
      mtu: config.mtu,
      serverIp,
      serverPort: config.remote!.port,
      keepaliveSec: config.keepalive,
      serverName: `${config.remote!.host}:${config.remote!.port}`,
      p2p: config.p2p,
      localEndpoints: () => localEndpoints(dataplane.port, config.tun.ipInt)
    }, { port: dataplane, clock: systemClock, random: systemRandom, log: log.child('client') }, maxPeers)

  let fatal: Error | null = null
  let wake: () => void = () => {}
  const stopped = new Promise<void>((resolve) => { wake = resolve })
  const onFatal = (err: Error): void => { fatal ??= err; wake() }

  const status = (): StatusReport => {
    const s = controller.status()
    return {
      mode: config.mode,
      version,
      dev: dataplane.devName || config.dev,
      tunnelIp: config.tun.ip,
      prefix: config.tun.prefix,
      mtu: config.mtu,
      listen: config.mode === 'server' ? `${config.listen.host}:${dataplane.port}` : null,
      server: config.mode === 'client' ? `${intToIp(serverIp)}:${config.remote!.port}` : null,
      state: s.state,
      problem: s.problem,
      uptimeSec: Math.round((Date.now() - startedWall) / 1000),
      peers: s.peers,
      counters: { ...dataplane.counters(), ...(controller instanceof ServerController ? { ...controller.natCheckCounters, ...controller.handshakeCounters } : controller.counters) },
      dataplane: { placement: config.placement, ...dataplane.offloads },
      controlPlane: controlPlane()
    }
  }

  let control: { close(): Promise<void> } | null = null
  const ticker = new Ticker(() => { controller.tick(); return controller.tickInterval() },
    (err) => { log.error('control-plane timer failed', { err }) }, TICK, systemClock)
  const loopDelay = new LoopDelayMonitor(systemClock)
  const controlPlane = (): ControlPlaneInfo => {
    const t = ticker.stats()
    loopDelay.watch()
    return { tickLateMs: t.lateMs, loopDelayMs: loopDelay.figures(), ticks: t.runs, ticksLate: t.late }
  }
  // Every input may start time-critical work (a peer list starts punching): ask the controller again.
  const handler: ControlHandler = {
    onControl: (input) => { controller.onControl(input); ticker.kick(controller.tickInterval()) },
    onNeedSession: (slot) => { controller.onNeedSession(slot); ticker.kick(controller.tickInterval()) },
    onEndpoint: (slot, ip, port) => { controller.onEndpoint(slot, ip, port); ticker.kick(controller.tickInterval()) }
  }
  let natCheck: Socket | null = null
  const notify = createNotifier(process.env, log)
  let metrics: MetricsServer | null = null
  const onSignal = (sig: string): void => { log.info(`${sig} received, shutting down`); wake() }
  const sigint = (): void => onSignal('SIGINT')
  const sigterm = (): void => onSignal('SIGTERM')
  process.on('SIGINT', sigint)
  process.on('SIGTERM', sigterm)
  try {
    await dataplane.start(handler, onFatal)
    control = await startControlServer(config.control, async (req) => {
      if (req.cmd === 'status') return status()
      if (req.cmd === 'ping') return answerPing(controller, req)
      if (req.cmd === 'netcheck') return answerNetcheck(controller, req, dataplane.devName || config.dev)
      throw new VpnError('ERR_USAGE', `unknown control command "${String(req.cmd)}"`)
    }, log.child('control')).catch((err: unknown) => { throw withPermissionHint(err, config.control) })
    if (config.metrics !== null) {
      metrics = await startMetricsServer(config.metrics.host, config.metrics.port, status, log.child('metrics'))
      if (!config.metrics.host.startsWith('127.')) {
        log.warn(`metrics on ${metrics.address} can be read by anyone who reaches that address: plain HTTP, no authentication; firewall it or bind 127.0.0.1`)
      }
      log.info('serving metrics', { url: `http://${metrics.address}/metrics` })
    }
    if (controller instanceof ServerController) natCheck = await openNatCheck(controller, config.listen.host, dataplane.port + NAT_CHECK_PORT_OFFSET, log)
    ticker.start()
    const off = dataplane.offloads
    const dp = `${config.placement}, TUN offloads ${off.tunOffload}, UDP GRO ${off.udpGro ? 'on' : 'off'}, fast path ${off.fastPath ? 'on' : 'off'}`
    if (config.mode === 'server') {
      log.info('server ready', { listen: `${config.listen.host}:${dataplane.port}`, dev: dataplane.devName, tunnelIp: config.tun.ip, control: config.control, dataplane: dp })
    } else {
      log.info('client started; registering with the server', { server: `${config.remote!.host}:${config.remote!.port}`, dev: dataplane.devName, control: config.control, dataplane: dp })
    }
    notify.ready(config.mode === 'server'
      ? `serving on ${config.listen.host}:${dataplane.port}, ${dataplane.devName} ${config.tun.ip}/${config.tun.prefix}`
      : `client of ${config.remote!.host}:${config.remote!.port}, ${dataplane.devName} ${config.tun.ip}/${config.tun.prefix}`)
    await stopped
  } catch (err) {
    fatal ??= err instanceof Error ? err : new Error(String(err))
  } finally {
    notify.stopping(fatal === null ? 'shutting down' : `stopping after an error: ${describeError(fatal).split('\n')[0]!}`)
    process.off('SIGINT', sigint)
    process.off('SIGTERM', sigterm)
    ticker.stop()
    loopDelay.stop()
    if (natCheck) natCheck.close()
    try { controller.shutdown() } catch { /* best effort */ }
    if (control) await control.close().catch(() => {})
    if (metrics) await metrics.close().catch(() => {})
    await dataplane.close().catch((err: unknown) => { log.error('closing the dataplane failed', { err }) })
  }
  if (fatal !== null) {
    log.error(describeError(fatal))
    return 1
  }
  log.info('stopped; device and socket removed')
  return 0
}

/**
 * An unprivileged start (a user with CAP_NET_ADMIN but not root, e.g.
 * systemd-run -p AmbientCapabilities=CAP_NET_ADMIN --uid=...) gets past the
 * TUN device and then meets EACCES on /run/lightweight-tunnel: say the fix.
 */
function withPermissionHint (err: unknown, control: string): unknown {
  if (!(err instanceof VpnError) || err.code !== 'ERR_CONTROL_SOCKET') return err
  const code = (err.cause as NodeJS.ErrnoException | undefined)?.code
  if (code !== 'EACCES' && code !== 'EPERM') return err
  const dir = dirname(control)
  return new VpnError(err.code, err.message, {
    cause: err.cause,
    hint: `this user cannot write ${dir}. Run it as the systemd service (lightweight-tunnel install-service NAME: ` +
      'its RuntimeDirectory= creates the directory), or create it for this user: ' +
      `sudo install -d -o "$(id -un)" -m 0755 ${dir}, or pass --control with a path this user can write ` +
      '(e.g. --control "$XDG_RUNTIME_DIR/lightweight-tunnel.sock")'
  })
}

/**
 * The server's NAT-check port (listen port + 1): answers clients' Pings with
 * the source it sees (ServerController.onNatCheck). Rare, small packets, so a
 * plain dgram socket on the main thread. Optional: when the port is taken the
 * server runs without it and clients classify their NAT from peers only.
 */
async function openNatCheck (controller: ServerController, host: string, port: number, log: Logger): Promise<Socket | null> {
  const sock = createSocket({ type: 'udp4' })
  sock.on('message', (msg, rinfo) => {
    const reply = controller.onNatCheck(new Uint8Array(msg.buffer, msg.byteOffset, msg.length), ipToInt(rinfo.address), rinfo.port)
    if (reply !== null) sock.send(reply, rinfo.port, rinfo.address)
  })
  try {
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject)
      sock.bind(port, host, () => { sock.off('error', reject); resolve() })
    })
  } catch (err) {
    log.warn(`NAT-check port ${port} unavailable (${(err as Error).message}); clients will learn their NAT kind from peers only`)
    sock.close()
    return null
  }
  sock.on('error', (err) => { log.warn('NAT-check socket error', { err }) })
  return sock
}

/** This host's IPv4 addresses (not loopback, not the tunnel's) with our UDP port: LAN candidates for peers. */
function localEndpoints (port: number, tunnelIp: number): Array<{ ip: number, port: number }> {
  const out: Array<{ ip: number, port: number }> = []
  if (port === 0) return out
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      if (a.family !== 'IPv4' || a.internal) continue
      const ip = ipToInt(a.address)
      if (ip === tunnelIp) continue
      out.push({ ip, port })
    }
  }
  return out.slice(0, 8)
}
