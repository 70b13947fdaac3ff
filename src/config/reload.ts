/**
 * SIGHUP reload: which settings changed between the running Config and the
 * one just loaded, and which of those the daemon can apply without dropping
 * a session (nebula's reload + HasChanged). daemon.ts loads the file again
 * (config/load.ts, the same flags as at start), calls planReload(), applies
 * `live` through narrow setters and logs `restart` in one line; the running
 * Config becomes `next` (running values kept for every restart key).
 *
 *   setting      on reload
 *   logLevel     live: every logger of the daemon at once
 *   logFormat    live
 *   keepalive    live: the next keepalive uses it (server: its idle timeout too)
 *   maxClients   live up to the value at start (the peer slots are sized then);
 *                lowering it never evicts a client, it only refuses new ones
 *   authorizedNodes  live: the file is read again on every SIGHUP (changed or
 *                not); keys no longer listed are revoked (daemon.ts)
 *   approveRoutes  live: every client's routes are decided again (server.ts
 *                setApproveRoutes); newly approved ones reach the peers, withdrawn ones leave
 *   all others   restart: mode, listen, remote, tun, key, dev, control, mtu,
 *                p2p, placement, fastPath, metrics (sockets, the device, the key
 *                derivation, the workers or every peer's path are built on them);
 *                advertiseRoutes (sent at registration), acceptRoutes,
 *                clientIsolation (the dataplane's relay is set up with it)
 */
import { formatHostPort } from './validate.js'
import type { Config, SettingKey } from './schema.js'
import { SETTINGS } from './schema.js'

/** How a setting takes a new value. */
export type Apply = 'live' | 'restart'

/** The table above, as data: every setting has an entry (the type checks it). */
export const APPLY: Readonly<Record<SettingKey, Apply>> = Object.freeze({
  mode: 'restart',
  listen: 'restart',
  remote: 'restart',
  tun: 'restart',
  key: 'restart',
  keyFile: 'restart',
  networkName: 'restart',
  dev: 'restart',
  control: 'restart',
  mtu: 'restart',
  fec: 'restart',
  maxClients: 'live',
  p2p: 'restart',
  portMapping: 'restart',
  faketcpOffload: 'restart',
  keepalive: 'live',
  logLevel: 'live',
  logFormat: 'live',
  placement: 'restart',
  fastPath: 'restart',
  mssClamp: 'restart',
  metrics: 'restart',
  handshakeWorkers: 'restart',
  stateDir: 'restart',
  nodeKey: 'restart',
  serverKey: 'restart',
  authorizedNodes: 'live',
  advertiseRoutes: 'restart',
  approveRoutes: 'live',
  acceptRoutes: 'restart',
  clientIsolation: 'restart',
  transport: 'restart',
  faketcp: 'restart',
  tcp: 'restart',
  tcpListen: 'restart'
})

export interface Change<K extends SettingKey = SettingKey> {
  readonly key: K
  readonly from: Config[K]
  readonly to: Config[K]
}

/** The settings whose values differ, in SETTINGS order (values compared by content). */
export function diffConfig (running: Config, next: Config): Change[] {
  const out: Change[] = []
  // tun6 is the IPv6 half of the `tun` setting: a change to it is a change to `tun`.
  const value = (c: Config, key: SettingKey): unknown => key === 'tun' ? [c.tun, c.tun6] : c[key]
  for (const key of SETTINGS) {
    if (JSON.stringify(value(running, key)) !== JSON.stringify(value(next, key))) out.push({ key, from: running[key], to: next[key] } as Change)
  }
  return out
}

export interface ReloadPlan {
  /** Changes applied now. */
  readonly live: readonly Change[]
  /** Changes that wait for a restart (the running value stays). */
  readonly restart: readonly Change[]
  /** The Config the daemon runs with afterwards: `next` for live keys, `running` for the rest. */
  readonly effective: Config
}

export interface ReloadLimits {
  /** maxClients the daemon's peer slots were sized for at start; more needs a restart. */
  readonly maxClientsAtStart: number
}

/**
 * Splits the changes into live and restart. maxClients above the start value
 * is both: raised live to the start value, the rest waits for a restart.
 */
export function planReload (running: Config, next: Config, limits: ReloadLimits): ReloadPlan {
  const live: Change[] = []
  const restart: Change[] = []
  const effective: Record<string, unknown> = { ...running }
  for (const c of diffConfig(running, next)) {
    if (APPLY[c.key] === 'restart') { restart.push(c); continue }
    if (c.key === 'maxClients' && (c.to as number) > limits.maxClientsAtStart) {
      restart.push(c)
      if (running.maxClients !== limits.maxClientsAtStart) {
        live.push({ key: 'maxClients', from: running.maxClients, to: limits.maxClientsAtStart })
        effective.maxClients = limits.maxClientsAtStart
      }
      continue
    }
    live.push(c)
    effective[c.key] = c.to
  }
  return { live, restart, effective: Object.freeze(effective) as unknown as Config }
}

/** A setting's value as a log line shows it ("0.0.0.0:9000", "10.0.0.2/24", "(hidden)" for the key). */
export function showValue (key: SettingKey, v: unknown): string {
  if (key === 'key') return '(hidden)'
  if (v === null || v === undefined) return 'none'
  if (Array.isArray(v)) return v.length === 0 ? 'none' : v.join(',')
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>
    if ('host' in o && 'port' in o) return formatHostPort(String(o.host), Number(o.port))
    if ('ip' in o && 'prefix' in o) return `${String(o.ip)}/${String(o.prefix)}`
    return JSON.stringify(o)
  }
  return String(v)
}

/** "mtu 1400 → 1300, key (hidden) → (hidden)": the changes for one log line. */
export function describeChanges (changes: readonly Change[]): string {
  return changes.map(c => `${c.key} ${showValue(c.key, c.from)} → ${showValue(c.key, c.to)}`).join(', ')
}
