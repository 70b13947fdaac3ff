/**
 * The option table: every flag the command line accepts, its spellings and
 * its kind, plus the lookups over it (lookupFlag for the tokenizer in
 * cli/args.ts, suggestFlag for "did you mean"). cli/help.ts documents the
 * same flags; a flag added here needs a line there.
 *
 * Every name works with one or two dashes, as in Go's flag package (`-mtu`,
 * `--mtu`), and takes its value as the next argument or after "=".
 */
import { closest } from '../config/messages.js'
import type { SettingKey } from '../config/schema.js'

/** What a flag sets: a Config setting (config/schema.ts) or a command-line-only switch. */
export type OptKey = SettingKey | 'config' | 'genconfig' | 'version' | 'help' | 'json' | 'goIgnored' | 'root' | 'all' | 'count' | 'interval' | 'timeout'

export interface OptSpec {
  readonly key: OptKey
  /** Names without dashes; each works with one or two dashes. The first is the canonical spelling. */
  readonly names: readonly string[]
  /** 'string': takes a value; 'bool': optional `=true|false`; 'fixed': a bool flag that sets `key` to `fixed`. */
  readonly type: 'string' | 'bool' | 'fixed'
  readonly fixed?: string | boolean
  /** For goIgnored: the Go config key that explains why it is ignored (config/go-compat.ts GO_IGNORED_KEYS). */
  readonly goKey?: string
}

export const SPECS: readonly OptSpec[] = [
  { key: 'mode', names: ['mode', 'm'], type: 'string' },
  { key: 'listen', names: ['listen', 'l'], type: 'string' },
  { key: 'remote', names: ['remote', 'r'], type: 'string' },
  { key: 'tun', names: ['tun', 't'], type: 'string' },
  { key: 'key', names: ['key', 'k'], type: 'string' },
  { key: 'keyFile', names: ['key-file'], type: 'string' },
  { key: 'networkName', names: ['network-name'], type: 'string' },
  { key: 'dev', names: ['dev', 'tun-name'], type: 'string' },
  { key: 'control', names: ['control'], type: 'string' },
  { key: 'mtu', names: ['mtu'], type: 'string' },
  { key: 'fec', names: ['fec'], type: 'string' },
  { key: 'maxClients', names: ['max-clients'], type: 'string' },
  { key: 'p2p', names: ['p2p'], type: 'bool' },
  { key: 'p2p', names: ['no-p2p'], type: 'fixed', fixed: false },
  { key: 'portMapping', names: ['port-mapping'], type: 'bool' },
  { key: 'portMapping', names: ['no-port-mapping'], type: 'fixed', fixed: false },
  { key: 'keepalive', names: ['keepalive'], type: 'string' },
  { key: 'logLevel', names: ['log-level'], type: 'string' },
  { key: 'logFormat', names: ['log-format'], type: 'string' },
  { key: 'placement', names: ['placement'], type: 'string' },
  { key: 'fastPath', names: ['fast-path'], type: 'bool' },
  { key: 'fastPath', names: ['no-fast-path'], type: 'fixed', fixed: false },
  { key: 'mssClamp', names: ['mss-clamp'], type: 'bool' },
  { key: 'metrics', names: ['metrics'], type: 'string' },
  { key: 'handshakeWorkers', names: ['handshake-workers'], type: 'string' },
  { key: 'stateDir', names: ['state-dir'], type: 'string' },
  { key: 'nodeKey', names: ['node-key'], type: 'string' },
  { key: 'serverKey', names: ['server-key'], type: 'string' },
  { key: 'authorizedNodes', names: ['authorized-nodes'], type: 'string' },
  { key: 'advertiseRoutes', names: ['advertise-routes', 'routes'], type: 'string' },
  { key: 'approveRoutes', names: ['approve-routes'], type: 'string' },
  { key: 'acceptRoutes', names: ['accept-routes'], type: 'bool' },
  { key: 'acceptRoutes', names: ['no-accept-routes'], type: 'fixed', fixed: false },
  { key: 'clientIsolation', names: ['client-isolation'], type: 'bool' },
  { key: 'transport', names: ['transport'], type: 'string' },
  { key: 'tcp', names: ['tcp'], type: 'bool' },
  { key: 'tcp', names: ['no-tcp'], type: 'fixed', fixed: false },
  { key: 'tcpListen', names: ['tcp-listen'], type: 'string' },
  { key: 'faketcp', names: ['faketcp'], type: 'bool' },
  { key: 'faketcpOffload', names: ['faketcp-offload'], type: 'bool' },
  { key: 'faketcpOffload', names: ['no-faketcp-offload'], type: 'fixed', fixed: false },
  { key: 'logLevel', names: ['quiet', 'q'], type: 'fixed', fixed: 'error' },
  { key: 'logLevel', names: ['verbose'], type: 'fixed', fixed: 'debug' },
  { key: 'config', names: ['config', 'c'], type: 'string' },
  { key: 'genconfig', names: ['genconfig', 'g'], type: 'string' },
  { key: 'version', names: ['version', 'v'], type: 'bool' },
  { key: 'help', names: ['help', 'h'], type: 'bool' },
  { key: 'json', names: ['json'], type: 'bool' },
  { key: 'root', names: ['root'], type: 'string' },
  // status --all; ping's -c/--count (ping reads -c as a count, like ping(8)), -i/--interval, -W/--timeout.
  { key: 'all', names: ['all'], type: 'bool' },
  { key: 'count', names: ['count'], type: 'string' },
  { key: 'interval', names: ['interval', 'i'], type: 'string' },
  { key: 'timeout', names: ['timeout', 'W'], type: 'string' },
  // The Go project's flags for features this implementation does not have.
  { key: 'goIgnored', names: ['fec-data'], type: 'string', goKey: 'fec_data' },
  { key: 'goIgnored', names: ['fec-parity'], type: 'string', goKey: 'fec_parity' },
  { key: 'goIgnored', names: ['send-queue'], type: 'string', goKey: 'send_queue_size' },
  { key: 'goIgnored', names: ['recv-queue'], type: 'string', goKey: 'recv_queue_size' },
  { key: 'goIgnored', names: ['multi-client'], type: 'bool', goKey: 'multi_client' },
  { key: 'goIgnored', names: ['p2p-port'], type: 'string', goKey: 'p2p_port' },
  { key: 'goIgnored', names: ['mesh-routing'], type: 'bool', goKey: 'enable_mesh_routing' },
  { key: 'goIgnored', names: ['max-hops'], type: 'string', goKey: 'max_hops' },
  { key: 'goIgnored', names: ['route-update'], type: 'string', goKey: 'route_update_interval' },
  { key: 'goIgnored', names: ['config-push-interval'], type: 'string', goKey: 'config_push_interval' },
  { key: 'goIgnored', names: ['nat-detection'], type: 'bool', goKey: 'enable_nat_detection' },
  { key: 'goIgnored', names: ['xdp'], type: 'bool', goKey: 'enable_xdp' },
  { key: 'goIgnored', names: ['kernel-tune'], type: 'bool', goKey: 'enable_kernel_tune' }
]

const BY_NAME = new Map<string, OptSpec>()
for (const s of SPECS) for (const n of s.names) BY_NAME.set(n, s)

/**
 * The option `token` names ("--mtu=1300" → the mtu spec, flag "--mtu",
 * inline "1300"), or null when it is not a known option. `flag` keeps the
 * dashes as typed, for messages.
 */
export function lookupFlag (token: string): { spec: OptSpec, flag: string, inline: string | undefined } | null {
  if (!token.startsWith('-') || token === '-' || token === '--') return null
  const body = token.startsWith('--') ? token.slice(2) : token.slice(1)
  const eq = body.indexOf('=')
  const name = eq === -1 ? body : body.slice(0, eq)
  const spec = BY_NAME.get(name)
  if (spec === undefined) return null
  return { spec, flag: token.slice(0, token.length - body.length) + name, inline: eq === -1 ? undefined : body.slice(eq + 1) }
}

/**
 * " (did you mean --NAME?)" for an unknown option token, or "". Proposes our
 * own options only (not the ignored Go ones) and no one-letter names.
 */
export function suggestFlag (token: string): string {
  const body = token.replace(/^-+/, '').split('=')[0]!
  const names = SPECS.filter(s => s.key !== 'goIgnored').flatMap(s => s.names).filter(n => n.length >= 2)
  const best = closest(body, names)
  return best === null ? '' : ` (did you mean --${best}?)`
}
