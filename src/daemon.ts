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
 *
 * Signals: SIGINT / SIGTERM stop; SIGHUP reloads the config file
 * (config/reload.ts says what applies live, the rest is named in one log line
 * as needing a restart). Every way out (a signal, a start-up failure, a fatal
 * dataplane error such as the TUN device vanishing, an uncaught exception)
 * goes through the same teardown, which removes the control socket; a
 * process 'exit' hook removes it too if anything ends the process before.
 * A client's --remote name is resolved after the device is up (server-name.ts):
 * while it does not resolve, the daemon waits (status: state "resolving");
 * while the server does not answer, the name is looked up again and a new
 * address is followed.
 */
import { createSocket, type Socket } from 'node:dgram'
import { networkInterfaces } from 'node:os'
import { lstatSync, readFileSync, unlinkSync } from 'node:fs'
import { dirname, join } from 'node:path'
import type { ApproveRoutes, Config } from './config/schema.js'
import { routePrefixes } from './config/routes.js'
import { KernelRoutes, warnIfNotForwarding } from './dataplane/kernel-routes.js'
import { formatPrefix, ipv4Prefix, networkOf } from './wire/prefix.js'
import { describeChanges, planReload } from './config/reload.js'
import { systemClock } from './clock.js'
import { systemRandom } from './random.js'
import { chooseFormat, underJournald, type Level, type Logger } from './log.js'
import { VpnError, describeError } from './errors.js'
import { derivePsk } from './crypto/kdf.js'
import { macKeys } from './crypto/cookie.js'
import { HandshakePool, poolSize } from './control/handshake-pool.js'
import type { StaticKey } from './crypto/noise.js'
import { ensureStateDir } from './identity/state-dir.js'
import { loadNodeKey } from './identity/node-key.js'
import { fingerprint, keyToText } from './identity/key-text.js'
import { serverPin, type ServerPin } from './identity/server-pin.js'
import { Dataplane } from './dataplane/dataplane.js'
import { ServerController } from './control/server.js'
import { ClientController } from './control/client.js'
import { PeerCache, fileStore } from './control/peer-cache.js'
import { NAT_CHECK_PORT_OFFSET, TICK } from './control/constants.js'
import { LoopDelayMonitor, Ticker } from './control/ticker.js'
import { startControlServer } from './cli/control-protocol.js'
import { formatEndpoint, ipToInt, networkAddress } from './wire/addr.js'
import { createV6Outside, listenText, localEndpoints6, lookupHost } from './v6-outside.js'
import { formatHostPort } from './config/validate.js'
import { ServerName } from './server-name.js'
import type { ControlPlaneInfo, StatusReport } from './control/status.js'
import type { ControlHandler } from './control/port.js'
import { createNotifier } from './service/notify.js'
import type { MetricsServer } from './metrics.js'
import { answerNetcheck, answerPing } from './control/observe-requests.js'
import { answerNodes } from './control/nodes.js'
import { openServerRegistry, reloadAuthorized } from './state/server-registry.js'
import type { FileRegistry } from './state/registry-file.js'
import { PortMappingIo, readNetwork } from './port-mapping-io.js'
import { FakeTcpLink } from './dataplane/faketcp-link.js'
import { loadNative } from './dataplane/native.js'
import { DaemonTransport } from './transport/daemon-transport.js'

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

/** What SIGHUP gets from loading the config file again with the flags of the start. */
export interface Reloaded {
  readonly config: Config | null
  readonly warnings: readonly string[]
  readonly problems: readonly string[]
}

export interface DaemonOptions {
  /** Loads the config file again (SIGHUP); null or absent when the daemon was started with flags only. */
  reload?: (() => Reloaded) | null
  /** Resolves the server's host name to an IPv4 or IPv6 address (default: the system resolver, v6-outside.ts). */
  resolve?: (host: string) => Promise<string>
  /** The shortest interval between two look-ups of the server's name while it does not answer (ms; default server-name.ts RERESOLVE_INTERVAL; tests shorten it). */
  reresolveMs?: number
}

/**
 * Run a daemon until SIGINT/SIGTERM. Returns the process exit code.
 * Everything started is stopped again, also when start-up fails halfway.
 */
export async function runDaemon (config: Config, log: Logger, opts: DaemonOptions = {}): Promise<number> {
  const version = packageVersion()
  const startedWall = Date.now()
  log.info(`lightweight-tunnel ${version} starting`, { mode: config.mode, dev: config.dev, tun: `${config.tun.ip}/${config.tun.prefix}${config.tun6 === null ? '' : `,${formatPrefix(config.tun6)}`}` })

  const resolveHost = opts.resolve ?? lookupHost
  /** The config in force: the start's, with the live changes of each reload. */
  let running = config
  /** The IPv6 address table (IPv6 outside): the socket, the controllers and formatEndpoint share it. */
  const v6 = createV6Outside()
  const serverIp = config.mode === 'client' && config.remote !== null ? v6.endpointIp(config.remote.host) ?? 0 : 0

  let fatal: Error | null = null
  let wake: () => void = () => {}
  let stopping = false
  const stopped = new Promise<void>((resolve) => { wake = () => { stopping = true; resolve() } })
  /** The server's name, followed (client with a --remote host name only). */
  const name = config.mode === 'client' && config.remote !== null && serverIp === 0
    ? new ServerName(config.remote.host, config.remote.port, { resolve: resolveHost, toIp: v6.endpointIp, log, stopped, ...(opts.reresolveMs !== undefined ? { reresolveMs: opts.reresolveMs } : {}) })
    : null
  const onFatal = (err: Error): void => { fatal ??= err; wake() }
  let started = false
  /** A SIGHUP came during start-up: reload once ready. */
  let hupPending = false
  // Signals are taken before the slow parts (key derivation, the device) so
  // none of them can end the process without the teardown below.
  const onSignal = (sig: string): void => { log.info(`${sig} received, shutting down`); wake() }
  const sigint = (): void => onSignal('SIGINT')
  const sigterm = (): void => onSignal('SIGTERM')
  const sighup = (): void => {
    if (!started) {
      if (!hupPending) log.info('SIGHUP received while starting; the config is reloaded once the daemon is ready')
      hupPending = true
      return
    }
    reloadConfig()
  }
  const uncaught = (err: unknown): void => {
    log.error('internal error (a bug: please report it); shutting down', { err: err instanceof Error ? (err.stack ?? err.message) : String(err) })
    onFatal(err instanceof Error ? err : new Error(String(err)))
  }
  // A lost reader of stderr (`… 2>&1 | head -1`): the logger stops writing
  // (log.ts StderrSink); this keeps anything else written to process.stderr
  // (a Node warning) from turning EPIPE into an uncaught exception.
  const stderrError = (): void => {}
  let controlIno: bigint | null = null
  /** Last resort for any exit that skips the teardown: remove our socket if it is still ours. */
  const onExit = (): void => {
    if (controlIno === null) return
    try { if (lstatSync(config.control, { bigint: true }).ino === controlIno) unlinkSync(config.control) } catch { /* gone already */ }
  }
  const hooks: Array<[NodeJS.EventEmitter, string, (...args: any[]) => void]> = [
    [process, 'SIGINT', sigint], [process, 'SIGTERM', sigterm], [process, 'SIGHUP', sighup],
    [process, 'uncaughtException', uncaught], [process, 'unhandledRejection', uncaught],
    [process.stderr, 'error', stderrError], [process, 'exit', onExit]
  ]
  for (const [emitter, event, fn] of hooks) emitter.on(event, fn)
  const removeProcessHooks = (): void => { for (const [emitter, event, fn] of hooks) emitter.off(event, fn) }

  let psk: Uint8Array
  let nodeKey: StaticKey
  let pin: ServerPin | undefined
  try {
    ensureStateDir(config.stateDir)
    const loaded = loadNodeKey(config.stateDir, config.nodeKey)
    nodeKey = loaded.key
    if (loaded.created) log.info('created this node\'s key', { file: loaded.path })
    if (config.mode === 'client') pin = serverPin(config.stateDir, config.serverKey)
    log.info(`node key ${fingerprint(nodeKey.pub)} (public key ${keyToText(nodeKey.pub)})`)
    psk = await derivePsk(config.key, { ip: config.tun.ipInt, prefix: config.tun.prefix, name: config.networkName })
  } catch (err) {
    removeProcessHooks()
    log.error(describeError(err))
    return 1
  }
  if (stopping) { psk.fill(0); removeProcessHooks(); log.info('stopped before start-up finished'); return 0 }
  const maxPeers = maxPeersFor(config)
  let registry: FileRegistry | null = null
  try {
    // A damaged registry or a bad --authorized-nodes file stops the start (each error names its file).
    if (config.mode === 'server') registry = openServerRegistry(config.stateDir, config.authorizedNodes, log.child('registry'))
  } catch (err) {
    removeProcessHooks()
    log.error(describeError(err))
    return 1
  }
  // Fake TCP (dataplane/faketcp-link.ts): opened before the dataplane starts, whose inbound pipeline polls its data socket.
  let ftcp: FakeTcpLink | null = null
  const dpOptions: ConstructorParameters<typeof Dataplane>[0] = {
    mode: config.mode,
    dev: config.dev,
    cidr: `${config.tun.ip}/${config.tun.prefix}`,
    tunnelIp: config.tun.ipInt,
    tun6: config.tun6,
    mtu: config.mtu,
    listenHost: config.listen.host,
    listenPort: config.listen.port,
    v6Table: v6.table,
    maxPeers,
    socketBuffer: 4 * 1024 * 1024,
    placement: config.placement,
    fastPath: config.fastPath,
    mssClamp: config.mssClamp,
    macKeys: config.mode === 'server' ? macKeys(psk) : undefined,
    clientIsolation: config.mode === 'server' && config.clientIsolation
  }
  const dataplane = new Dataplane(dpOptions, log.child('dataplane'))
  const ownRoutes = routePrefixes(config.advertiseRoutes)
  // The TCP transport (transport/): its handles are resolved between the controllers and the dataplane.
  const transport = new DaemonTransport(config, () => dataplane.port, systemClock, log.child('transport'))
  const dpPort = transport.port(dataplane)

  // Client: the port mapping (port-mapping-io.ts), made once the dataplane knows its port.
  let portMapping: PortMappingIo | null = null
  const controller = config.mode === 'server'
    ? new ServerController({
      psk, nodeKey, tunnelIp: config.tun.ipInt, prefix: config.tun.prefix, tunnel6: config.tun6, mtu: config.mtu, maxClients: config.maxClients, keepaliveSec: config.keepalive, registry: registry!,
      advertiseRoutes: ownRoutes, approveRoutes: config.approveRoutes, clientIsolation: config.clientIsolation
    }, { port: dpPort, clock: systemClock, random: systemRandom, log: log.child('server'), v6: v6.table, transportOf: (ip) => transport.table.transportOf(ip) }, maxPeers)
    : new ClientController({
      psk,
      nodeKey,
      serverPin: pin,
      tunnelIp: config.tun.ipInt,
      prefix: config.tun.prefix,
      tunnel6: config.tun6,
      mtu: config.mtu,
      serverIp: config.transport === 'faketcp' ? 0 : transport.initialServerIp(serverIp), // 0 until the name resolves or the fake-TCP link is up (setServerEndpoint)
      serverPort: config.remote!.port,
      keepaliveSec: config.keepalive,
      serverName: formatHostPort(config.remote!.host, config.remote!.port),
      p2p: config.p2p,
      fec: config.fec,
      localEndpoints: () => localEndpoints(dataplane.port, config.tun.ipInt),
      localEndpoints6: () => dataplane.family === 6 ? localEndpoints6(dataplane.port, config.tun6?.addr ?? null) : [],
      mappedEndpoint: () => portMapping?.external ?? null,
      publicEndpointChanged: () => { portMapping?.refresh() },
      peerCache: config.p2p ? new PeerCache(fileStore(join(config.stateDir, 'peers.json')), (m) => { log.warn(m) }, v6.endpointIp) : null,
      advertiseRoutes: ownRoutes
    }, { port: dpPort, clock: systemClock, random: systemRandom, log: log.child('client'), v6: v6.table }, maxPeers)

  // Server: the handshake pool (--handshake-workers; control/handshake-pool.ts), created only with threads.
  const poolThreads = config.mode === 'server' ? poolSize(config.handshakeWorkers) : 0
  const handshakePool = poolThreads > 0 ? await HandshakePool.create(poolThreads) : null
  if (controller instanceof ServerController) controller.handshakePool = handshakePool

  const status = (): StatusReport => {
    const s = controller.status()
    transport.decorate(s.peers)
    ftcp?.decorate(s.peers)
    if (name !== null && name.waiting !== null) { s.state = 'resolving'; s.problem = name.waiting; s.peers = [] }
    return {
      mode: config.mode,
      version,
      dev: dataplane.devName || config.dev,
      tunnelIp: config.tun.ip,
      prefix: config.tun.prefix,
      tunnel6: config.tun6 === null ? null : formatPrefix(config.tun6),
      mtu: config.mtu,
      listen: config.mode === 'server' ? listenText(config.listen.host, dataplane.family, dataplane.port) : null,
      server: config.mode === 'client' ? (name !== null && name.ip === 0 ? formatHostPort(config.remote!.host, config.remote!.port) : formatEndpoint(name === null ? serverIp : name.ip, config.remote!.port)) : null,
      state: s.state,
      problem: s.problem,
      nodeKey: { publicKey: keyToText(nodeKey.pub), fingerprint: fingerprint(nodeKey.pub) },
      uptimeSec: Math.round((Date.now() - startedWall) / 1000),
      peers: s.peers,
      counters: { ...dataplane.counters(), ...transport.counters(), ...(controller instanceof ServerController ? { ...controller.natCheckCounters, ...controller.handshakeCounters, ...controller.registrationCounters, ...controller.roamCounters, ...controller.routeCounters(), ...controller.pathMtu.counters } : controller.counters), ...kernelRoutes?.counters, ...portMapping?.counters, ...ftcp?.counters(), ...(dataplane.family === 6 ? v6.counters() : {}), logLinesLost: log.linesLost },
      dataplane: { placement: config.placement, ...dataplane.offloads },
      controlPlane: controlPlane(),
      routes: {
        advertised: [...config.advertiseRoutes],
        kernel: kernelRoutes?.status() ?? [],
        ...(config.mode === 'server' ? { clientIsolation: config.clientIsolation } : {})
      },
      ...(config.mode === 'client' ? { portMapping: portMapping?.status() ?? null } : {}),
      transport: transport.status(),
      ...(ftcp !== null ? { faketcp: ftcp.status() } : {})
    }
  }

  // Subnet routes in the kernel table (control/kernel-route-plan.ts decides, dataplane/kernel-routes.ts runs ip route):
  // a server installs its clients' approved routes; a client the server's and its peers' (unless --no-accept-routes).
  const kernelRoutes = config.mode === 'server' || config.acceptRoutes
    ? new KernelRoutes(config.dev, log.child('routes'), { tunnelNets: [ipv4Prefix(networkAddress(config.tun.ipInt, config.tun.prefix), config.tun.prefix), ...(config.tun6 !== null ? [networkOf(config.tun6)] : [])], own: ownRoutes })
    : null
  const syncRoutes = (): void => { kernelRoutes?.offer(controller.routeOffers(), controller instanceof ClientController ? (ftcp?.serverIp ?? transport.serverUdpIp(controller.serverUnderlayIp)) : 0) }

  let control: { close(): Promise<void> } | null = null
  const ticker = new Ticker(() => { controller.tick(); transport.tick(); syncRoutes(); return controller.tickInterval() },
    (err) => { log.error('control-plane timer failed', { err }) }, TICK, systemClock)
  const loopDelay = new LoopDelayMonitor(systemClock)
  const controlPlane = (): ControlPlaneInfo => {
    const t = ticker.stats()
    return { tickLateMs: t.lateMs, loopDelayMs: loopDelay.figures(), ticks: t.runs, ticksLate: t.late }
  }
  // Every input may start time-critical work (a peer list starts punching): ask the controller again.
  const handler: ControlHandler = {
    onControl: (input) => { controller.onControl(input); ticker.kick(controller.tickInterval()) },
    onNeedSession: (slot) => { controller.onNeedSession(slot); ticker.kick(controller.tickInterval()) },
    onSendLimit: (slot) => { controller.onSendLimit(slot); ticker.kick(controller.tickInterval()) },
    onEndpoint: (slot, ip, port) => { controller.onEndpoint(slot, ip, port); ticker.kick(controller.tickInterval()) }
  }
  let natCheck: Socket | null = null
  const notify = createNotifier(process.env, log)
  let metrics: MetricsServer | null = null

  /** SIGHUP: load the file again, apply what can change live, name the rest. */
  const reloadConfig = (): void => {
    if (opts.reload === undefined || opts.reload === null) {
      log.info('SIGHUP received: started without a config file (-c), so there is nothing to reload; running on')
      return
    }
    let r: Reloaded
    try {
      r = opts.reload()
    } catch (err) {
      log.error('SIGHUP: reading the config file failed; the running config is kept', { err })
      return
    }
    if (r.config === null) {
      log.error(`SIGHUP: the config file has ${r.problems.length === 1 ? 'a problem' : `${r.problems.length} problems`}; the running config is kept`)
      for (const p of r.problems) log.error(`reload: ${p}`)
      return
    }
    for (const w of r.warnings) log.warn(`reload: ${w}`)
    const plan = planReload(running, r.config, { maxClientsAtStart: config.maxClients })
    for (const c of plan.live) {
      switch (c.key) {
        case 'logLevel': log.setLevel(c.to as Level); break
        case 'logFormat': log.setFormat(chooseFormat(c.to as 'text' | 'json', underJournald())); break
        case 'keepalive': controller.setKeepalive(c.to as number); break
        case 'maxClients': if (controller instanceof ServerController) controller.setMaxClients(c.to as number); break
        case 'approveRoutes': if (controller instanceof ServerController) controller.setApproveRoutes(c.to as ApproveRoutes); break
        default: break
      }
    }
    running = plan.effective
    // The list of admitted nodes is read again on every SIGHUP, changed name or not.
    if (registry !== null && controller instanceof ServerController) reloadAuthorized(registry, r.config.authorizedNodes, controller, log.child('registry'))
    if (plan.live.length === 0 && plan.restart.length === 0) log.info('SIGHUP: config reloaded; nothing changed')
    if (plan.live.length > 0) log.info(`SIGHUP: config reloaded; applied ${describeChanges(plan.live)}`)
    if (plan.restart.length > 0) log.warn(`SIGHUP: these changes need a restart and are not applied (the running values stay): ${describeChanges(plan.restart)}`)
  }

  try {
    if (config.transport === 'faketcp' || config.faketcp) {
      const port = config.mode === 'server' ? config.listen.port : config.remote!.port
      ftcp = await FakeTcpLink.open(loadNative(), { role: config.mode, port, socketBuffer: 4 * 1024 * 1024, keepaliveSec: config.keepalive, offload: config.faketcpOffload }, log.child('faketcp'), systemClock, systemRandom)
      dpOptions.ftcpFd = ftcp.fd
    }
    await dataplane.start(transport.handler(handler), onFatal)
    await transport.start(controller, serverIp === 0 ? null : { ip: serverIp, port: config.remote!.port })
    // The networks behind us are reached through this host: say so at once when it does not forward.
    if (ownRoutes.length > 0) warnIfNotForwarding(ownRoutes, log)
    control = await startControlServer(config.control, async (req) => {
      if (req.cmd === 'status') {
        // The loop-delay monitor wakes the loop 100 times a second, which costs an idle ping ~45 µs
        // (bench:ci, A/B): it samples only for a caller that asks (bench/control-latency.ts does).
        if (req.sampleLoop === true) loopDelay.watch()
        return status()
      }
      if (req.cmd === 'ping') return answerPing(controller, req)
      if (req.cmd === 'netcheck') return answerNetcheck(controller, req, dataplane.devName || config.dev, () => portMapping?.status() ?? null)
      if (req.cmd === 'nodes' || req.cmd === 'nodes-remove' || req.cmd === 'nodes-allow') {
        const answer = answerNodes(req, controller instanceof ServerController ? controller.nodesAdmin : null)
        ticker.kick(controller.tickInterval()) // a revocation's peer-list change goes out at the next flush
        return answer
      }
      throw new VpnError('ERR_USAGE', `unknown control command "${String(req.cmd)}"`)
    }, log.child('control')).catch((err: unknown) => { throw withPermissionHint(err, config.control) })
    if (config.metrics !== null) {
      // Loaded only when asked for: node:http costs an idle client ~3 MiB of resident memory.
      const { startMetricsServer } = await import('./metrics.js')
      metrics = await startMetricsServer(config.metrics.host, config.metrics.port, status, log.child('metrics'))
      if (!config.metrics.host.startsWith('127.')) {
        log.warn(`metrics on ${metrics.address} can be read by anyone who reaches that address: plain HTTP, no authentication; firewall it or bind 127.0.0.1`)
      }
      log.info('serving metrics', { url: `http://${metrics.address}/metrics` })
    }
    try { controlIno = lstatSync(config.control, { bigint: true }).ino } catch { /* checked again at exit */ }
    if (controller instanceof ServerController) natCheck = await openNatCheck(controller, dataplane.family === 6 ? config.listen.host : '0.0.0.0', dataplane.port + NAT_CHECK_PORT_OFFSET, v6.endpointIp, log)
    if (controller instanceof ClientController && config.p2p && config.portMapping) {
      portMapping = new PortMappingIo(dataplane.port, { clock: systemClock, random: systemRandom, log: log.child('portmap') }, () => {
        controller.portMappingChanged()
        ticker.kick(controller.tickInterval())
      }, readNetwork, join(config.stateDir, 'portmap.json'))
      await portMapping.start().catch((err: unknown) => {
        log.warn(`port mapping unavailable: ${(err as Error).message}; peers behind symmetric NATs may stay relayed`)
        portMapping = null
      })
    }
    started = true
    if (hupPending) reloadConfig()
    if (controller instanceof ClientController && (name !== null || ftcp !== null)) {
      const ip = name === null ? serverIp : await name.waitFirst()
      if (ip === null) { await stopped; throw new StopBeforeReady() }
      // Over fake TCP the server's endpoint is the link's flow handle; the link follows the address.
      if (ftcp !== null) await ftcp.connect(ip)
      if (ftcp !== null) controller.setServerEndpoint(ftcp.serverHandle, config.remote!.port)
      else transport.setServerUdp(controller, ip, config.remote!.port)
      name?.follow(() => controller.state === 'reconnecting' || controller.state === 'registering', (newIp, port) => {
        if (ftcp !== null) ftcp.connect(newIp).catch((err: unknown) => { log.warn('fake TCP: following the new server address failed', { err }) })
        else transport.setServerUdp(controller, newIp, port)
        ticker.kick(controller.tickInterval())
      })
    }
    ticker.start()
    const off = dataplane.offloads
    const dp = `${config.placement}, TUN offloads ${off.tunOffload}, UDP GRO ${off.udpGro ? 'on' : 'off'}, fast path ${off.fastPath ? 'on' : 'off'}`
    if (config.mode === 'server') {
      log.info('server ready', { listen: listenText(config.listen.host, dataplane.family, dataplane.port), dev: dataplane.devName, tunnelIp: config.tun.ip, control: config.control, dataplane: dp })
    } else {
      log.info('client started; registering with the server', { server: formatHostPort(config.remote!.host, config.remote!.port), dev: dataplane.devName, control: config.control, dataplane: dp })
    }
    notify.ready(config.mode === 'server'
      ? `serving on ${listenText(config.listen.host, dataplane.family, dataplane.port)}, ${dataplane.devName} ${config.tun.ip}/${config.tun.prefix}`
      : `client of ${formatHostPort(config.remote!.host, config.remote!.port)}, ${dataplane.devName} ${config.tun.ip}/${config.tun.prefix}`)
    await stopped
  } catch (err) {
    if (!(err instanceof StopBeforeReady)) fatal ??= err instanceof Error ? err : new Error(String(err))
  } finally {
    notify.stopping(fatal === null ? 'shutting down' : `stopping after an error: ${describeError(fatal).split('\n')[0]!}`)
    name?.stop()
    ticker.stop()
    loopDelay.stop()
    if (natCheck) natCheck.close()
    // The controller's Byes first: those to a peer on a TCP connection leave through the transport's bridges, read before they close.
    try { controller.shutdown() } catch { /* best effort */ }
    await transport.stop().catch(() => {})
    // The mapping is deleted (lifetime 0) before the socket it maps goes away.
    if (portMapping) await portMapping.stop().catch((err: unknown) => { log.warn('deleting the port mapping failed', { err }) })
    if (controller instanceof ServerController) controller.flushRegistry()
    if (control) await control.close().catch(() => {})
    if (metrics) await metrics.close().catch(() => {})
    if (kernelRoutes) await kernelRoutes.close()
    await dataplane.close().catch((err: unknown) => { log.error('closing the dataplane failed', { err }) })
    if (ftcp !== null) await ftcp.close().catch((err: unknown) => { log.error('closing the fake-TCP link failed', { err }) })
    v6.close()
    if (handshakePool) await handshakePool.close().catch(() => {})
    psk.fill(0) // the only copy of the network's psk (the key string itself cannot be wiped: docs/PROTOCOL.md §15)
    onExit()
    removeProcessHooks()
  }
  if (fatal !== null) {
    log.error(describeError(fatal))
    return 1
  }
  log.info('stopped; device and socket removed')
  return 0
}

/** Thrown inside runDaemon when a stop signal came before the daemon was ready: a clean stop, not a failure. */
class StopBeforeReady extends Error {}

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
async function openNatCheck (controller: ServerController, host: string, port: number, endpointIp: (text: string) => number | null, log: Logger): Promise<Socket | null> {
  // Same family as the dataplane socket: 'udp6' is dual-stack (node leaves IPV6_V6ONLY off), IPv4 sources come v4-mapped.
  const sock = createSocket({ type: host.includes(':') ? 'udp6' : 'udp4' })
  sock.on('message', (msg, rinfo) => {
    const ip = endpointIp(rinfo.address)
    if (ip === null) return
    const reply = controller.onNatCheck(new Uint8Array(msg.buffer, msg.byteOffset, msg.length), ip, rinfo.port)
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
