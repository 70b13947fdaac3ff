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
import { readFileSync } from 'node:fs'
import type { Config } from './config/schema.js'
import { systemClock } from './clock.js'
import type { Logger } from './log.js'
import { VpnError, describeError } from './errors.js'
import { derivePsk } from './crypto/kdf.js'
import { Dataplane } from './dataplane/dataplane.js'
import { ServerController } from './control/server.js'
import { ClientController } from './control/client.js'
import { TICK } from './control/constants.js'
import { startControlServer } from './cli/control-protocol.js'
import { ipToInt, intToIp } from './wire/addr.js'
import type { StatusReport } from './control/status.js'

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
    placement: config.placement
  }, log.child('dataplane'))

  const controller = config.mode === 'server'
    ? new ServerController({
      psk, tunnelIp: config.tun.ipInt, prefix: config.tun.prefix, mtu: config.mtu, maxClients: config.maxClients, keepaliveSec: config.keepalive
    }, dataplane, systemClock, log.child('server'), maxPeers)
    : new ClientController({
      psk,
      tunnelIp: config.tun.ipInt,
      prefix: config.tun.prefix,
      mtu: config.mtu,
      serverIp,
      serverPort: config.remote!.port,
      keepaliveSec: config.keepalive,
      serverName: `${config.remote!.host}:${config.remote!.port}`
    }, dataplane, systemClock, log.child('client'), maxPeers)

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
      counters: dataplane.counters()
    }
  }

  let control: { close(): Promise<void> } | null = null
  let timer: NodeJS.Timeout | null = null
  const onSignal = (sig: string): void => { log.info(`${sig} received, shutting down`); wake() }
  const sigint = (): void => onSignal('SIGINT')
  const sigterm = (): void => onSignal('SIGTERM')
  process.on('SIGINT', sigint)
  process.on('SIGTERM', sigterm)
  try {
    await dataplane.start(controller, onFatal)
    control = await startControlServer(config.control, async (req) => {
      if (req.cmd === 'status') return status()
      throw new VpnError('ERR_USAGE', `unknown control command "${String(req.cmd)}"`)
    }, log.child('control'))
    timer = setInterval(() => {
      try { controller.tick() } catch (err) { log.error('control-plane timer failed', { err }) }
    }, TICK)
    controller.tick()
    if (config.mode === 'server') {
      log.info('server ready', { listen: `${config.listen.host}:${dataplane.port}`, dev: dataplane.devName, tunnelIp: config.tun.ip, control: config.control })
    } else {
      log.info('client started; registering with the server', { server: `${config.remote!.host}:${config.remote!.port}`, dev: dataplane.devName, control: config.control })
    }
    await stopped
  } catch (err) {
    fatal ??= err instanceof Error ? err : new Error(String(err))
  } finally {
    process.off('SIGINT', sigint)
    process.off('SIGTERM', sigterm)
    if (timer) clearInterval(timer)
    try { controller.shutdown() } catch { /* best effort */ }
    if (control) await control.close().catch(() => {})
    await dataplane.close().catch((err: unknown) => { log.error('closing the dataplane failed', { err }) })
  }
  if (fatal !== null) {
    log.error(describeError(fatal))
    return 1
  }
  log.info('stopped; device and socket removed')
  return 0
}
