/**
 * The only place that parses options. `parseCommand(argv)` turns the command
 * line (and the JSON file named by `-c`, if any) into one `Command`; for the
 * daemon commands the result carries a validated, deep-frozen `Config`.
 *
 * Flow:
 *   1. tokenize argv: the command word, positionals, and flag occurrences
 *      (`--x v`, `--x=v`, `-x v`, `-x=v`: one or two dashes, like Go's flag);
 *   2. merge occurrences per setting: the same setting given twice with
 *      different values is a conflict (`--p2p --no-p2p`, `-q --verbose`);
 *   3. help / version / -g / status / demo return early;
 *   4. run: read the -c file (our key names and the Go project's), then for
 *      every setting take flag ?? file ?? default, validate it, and collect
 *      *every* problem, each naming the flag or file key, what was expected and
 *      what was given. Any problem ⇒ one UsageError (ERR_USAGE) listing them all.
 *
 * Differences from the Go project, on purpose: flags beside -c override the
 * file (Go silently ignored them); 0 never silently means "default" for our
 * own key names (for the Go names, where 0 meant "default" in Go, a warning
 * says so); unknown file keys are errors; keys Go had but we do not implement
 * are named in one warning each.
 */
import { readFileSync, statSync } from 'node:fs'
import { resolve } from 'node:path'
import { VpnError } from '../errors.js'
import { PLACEMENTS, type Config, type HostPort, type Ipv4Cidr, type Mode, type Placement } from './schema.js'
import { CONTROL_DIR, DEFAULTS, LIMITS, LOG_LEVELS, controlPathFor, currentNetnsId } from './defaults.js'

export type Command =
  | { kind: 'run', config: Config, warnings: string[] }
  | { kind: 'status', json: boolean, control: string }
  | { kind: 'help', topic?: string }
  | { kind: 'version' }
  | { kind: 'genconfig', file: string }
  | { kind: 'demo' }

/** Injectable environment of the parser (tests). */
export interface ParseEnv {
  /** Network namespace id for the default control path (default: inode of /proc/self/ns/net). */
  netnsId?: string | null
  /** Directory against which relative paths are resolved (default: process.cwd()). */
  cwd?: string
}

/** ERR_USAGE with every problem found, one sentence each. */
export class UsageError extends VpnError {
  readonly problems: readonly string[]
  constructor (problems: string[]) {
    super('ERR_USAGE', problems.join('\n'), { hint: 'see lightweight-tunnel --help' })
    this.name = 'UsageError'
    this.problems = Object.freeze([...problems])
  }
}

export const COMMANDS = ['server', 'client', 'status', 'demo', 'help', 'version'] as const
export const HELP_TOPICS = ['server', 'client', 'status', 'demo', 'help', 'version', 'config'] as const

// ---------------------------------------------------------------------------
// Option table

type OptKey =
  | 'mode' | 'listen' | 'remote' | 'tun' | 'key' | 'dev' | 'control' | 'mtu' | 'maxClients'
  | 'p2p' | 'keepalive' | 'logLevel' | 'placement' | 'fastPath' | 'config' | 'genconfig' | 'version' | 'help' | 'json' | 'goIgnored'

interface OptSpec {
  readonly key: OptKey
  /** Names without dashes; each works with one or two dashes. The first is the canonical spelling. */
  readonly names: readonly string[]
  /** 'string': takes a value; 'bool': optional `=true|false`; 'fixed': a bool flag that sets `key` to `fixed`. */
  readonly type: 'string' | 'bool' | 'fixed'
  readonly fixed?: string | boolean
  /** For goIgnored: the Go config key that explains why it is ignored. */
  readonly goKey?: string
}

const SPECS: readonly OptSpec[] = [
  { key: 'mode', names: ['mode', 'm'], type: 'string' },
  { key: 'listen', names: ['listen', 'l'], type: 'string' },
  { key: 'remote', names: ['remote', 'r'], type: 'string' },
  { key: 'tun', names: ['tun', 't'], type: 'string' },
  { key: 'key', names: ['key', 'k'], type: 'string' },
  { key: 'dev', names: ['dev', 'tun-name'], type: 'string' },
  { key: 'control', names: ['control'], type: 'string' },
  { key: 'mtu', names: ['mtu'], type: 'string' },
  { key: 'maxClients', names: ['max-clients'], type: 'string' },
  { key: 'p2p', names: ['p2p'], type: 'bool' },
  { key: 'p2p', names: ['no-p2p'], type: 'fixed', fixed: false },
  { key: 'keepalive', names: ['keepalive'], type: 'string' },
  { key: 'logLevel', names: ['log-level'], type: 'string' },
  { key: 'placement', names: ['placement'], type: 'string' },
  { key: 'fastPath', names: ['fast-path'], type: 'bool' },
  { key: 'fastPath', names: ['no-fast-path'], type: 'fixed', fixed: false },
  { key: 'logLevel', names: ['quiet', 'q'], type: 'fixed', fixed: 'error' },
  { key: 'logLevel', names: ['verbose'], type: 'fixed', fixed: 'debug' },
  { key: 'config', names: ['config', 'c'], type: 'string' },
  { key: 'genconfig', names: ['genconfig', 'g'], type: 'string' },
  { key: 'version', names: ['version', 'v'], type: 'bool' },
  { key: 'help', names: ['help', 'h'], type: 'bool' },
  { key: 'json', names: ['json'], type: 'bool' },
  // The Go project's flags for features this implementation does not have.
  { key: 'goIgnored', names: ['fec-data'], type: 'string', goKey: 'fec_data' },
  { key: 'goIgnored', names: ['fec-parity'], type: 'string', goKey: 'fec_parity' },
  { key: 'goIgnored', names: ['send-queue'], type: 'string', goKey: 'send_queue_size' },
  { key: 'goIgnored', names: ['recv-queue'], type: 'string', goKey: 'recv_queue_size' },
  { key: 'goIgnored', names: ['multi-client'], type: 'bool', goKey: 'multi_client' },
  { key: 'goIgnored', names: ['client-isolation'], type: 'bool', goKey: 'client_isolation' },
  { key: 'goIgnored', names: ['p2p-port'], type: 'string', goKey: 'p2p_port' },
  { key: 'goIgnored', names: ['mesh-routing'], type: 'bool', goKey: 'enable_mesh_routing' },
  { key: 'goIgnored', names: ['max-hops'], type: 'string', goKey: 'max_hops' },
  { key: 'goIgnored', names: ['route-update'], type: 'string', goKey: 'route_update_interval' },
  { key: 'goIgnored', names: ['routes'], type: 'string', goKey: 'routes' },
  { key: 'goIgnored', names: ['config-push-interval'], type: 'string', goKey: 'config_push_interval' },
  { key: 'goIgnored', names: ['nat-detection'], type: 'bool', goKey: 'enable_nat_detection' },
  { key: 'goIgnored', names: ['xdp'], type: 'bool', goKey: 'enable_xdp' },
  { key: 'goIgnored', names: ['kernel-tune'], type: 'bool', goKey: 'enable_kernel_tune' }
]

const BY_NAME = new Map<string, OptSpec>()
for (const s of SPECS) for (const n of s.names) BY_NAME.set(n, s)

/**
 * Go config keys (and flags) this implementation deliberately ignores, and why.
 * Each present key gives one warning.
 */
export const GO_IGNORED_KEYS: Readonly<Record<string, string>> = Object.freeze({
  fec_data: 'there is no FEC; the tunnel carries each packet once and leaves loss recovery to the protocols inside it',
  fec_parity: 'there is no FEC; the tunnel carries each packet once and leaves loss recovery to the protocols inside it',
  send_queue_size: 'queues are fixed-size rings sized by the daemon',
  recv_queue_size: 'queues are fixed-size rings sized by the daemon',
  multi_client: 'the server always accepts up to max_clients clients; set max_clients to 1 to allow a single client',
  client_isolation: 'clients are not isolated: every client can reach every other client (filter on the clients if you need isolation)',
  enable_mesh_routing: 'it had no effect in the Go program; packets go direct when a direct path works, else through the server',
  max_hops: 'it had no effect in the Go program; packets take at most one relay hop (the server)',
  route_update_interval: 'route adverts are not supported; path quality is probed by the daemon on its own timers',
  p2p_timeout: 'it was unused in the Go program; direct-path attempts have their own bounded timers',
  enable_nat_detection: 'NAT behaviour is learned from the traffic itself (no STUN servers are queried)',
  enable_xdp: 'there is no unencrypted shortcut: every packet is encrypted and authenticated',
  enable_kernel_tune: 'the daemon never changes host-wide sysctls',
  route_advert_interval: 'route adverts are not supported',
  p2p_keepalive_interval: 'direct paths are kept alive by the daemon\'s own timers',
  p2p_port: 'direct paths use the client\'s single UDP socket (its local port is set with listen)',
  config_push_interval: 'keys are not rotated by pushing a new shared key; every session derives fresh keys in its handshake',
  routes: 'advertising extra subnets is not supported; only tunnel addresses are routed',
  timeout: 'connection set-up has its own retry timers',
  transport: 'the transport is always UDP (the raw-TCP disguise is gone)',
  // Removed from the Go program before its last release, still shown in its README.
  broadcast_throttle_ms: 'it was removed from the Go program too',
  enable_incremental_update: 'it was removed from the Go program too',
  max_peer_info_batch_size: 'it was removed from the Go program too'
})

/** Placeholder keys printed by the Go project's generator and templates. */
const PLACEHOLDER_KEYS = new Set(['CHANGE-THIS-TO-YOUR-SECRET-KEY', 'CHANGE-ME-use-openssl-rand-base64-32-to-generate'])

// ---------------------------------------------------------------------------
// Tokenizing

interface Occurrence {
  readonly key: OptKey
  /** The flag as typed, without `=value` (e.g. "-mtu", "--no-p2p"). */
  readonly flag: string
  /** undefined: a bool flag given `=false` with no effect (e.g. `--quiet=false`). */
  readonly value: string | boolean | undefined
  readonly spec: OptSpec
}

interface Tokens {
  command: { name: string, token: string } | null
  positionals: string[]
  occurrences: Occurrence[]
}

function lookupFlag (token: string): { spec: OptSpec, flag: string, inline: string | undefined } | null {
  if (!token.startsWith('-') || token === '-' || token === '--') return null
  const body = token.startsWith('--') ? token.slice(2) : token.slice(1)
  const eq = body.indexOf('=')
  const name = eq === -1 ? body : body.slice(0, eq)
  const spec = BY_NAME.get(name)
  if (spec === undefined) return null
  return { spec, flag: token.slice(0, token.length - body.length) + name, inline: eq === -1 ? undefined : body.slice(eq + 1) }
}

/** Go's strconv.ParseBool. */
function parseBool (s: string): boolean | null {
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(s)) return true
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(s)) return false
  return null
}

function tokenize (argv: readonly string[], problems: string[]): Tokens {
  const out: Tokens = { command: null, positionals: [], occurrences: [] }
  let onlyPositionals = false
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i]!
    if (onlyPositionals || !token.startsWith('-') || token === '-') {
      if (out.command === null && out.positionals.length === 0) {
        if ((COMMANDS as readonly string[]).includes(token)) {
          out.command = { name: token, token }
          continue
        }
        problems.push(`unknown command ${show(token)}: expected one of ${COMMANDS.join(', ')} (or Go-style flags such as -m server)`)
        out.command = { name: '?', token }
        continue
      }
      out.positionals.push(token)
      continue
    }
    if (token === '--') { onlyPositionals = true; continue }
    const hit = lookupFlag(token)
    if (hit === null) {
      problems.push(`unknown option ${show(token.split('=')[0]!)}${suggest(token)}`)
      // Skip what is probably its value, so it is not reported as a stray argument too.
      const next = argv[i + 1]
      if (!token.includes('=') && next !== undefined && !next.startsWith('-') &&
          !(out.command === null && (COMMANDS as readonly string[]).includes(next))) i++
      continue
    }
    const { spec, flag, inline } = hit
    if (spec.type === 'string') {
      let value = inline
      if (value === undefined) {
        const next = argv[i + 1]
        if (next === undefined || lookupFlag(next) !== null) {
          problems.push(`${flag}: expected a value after it, got ${next === undefined ? 'nothing' : `the option ${show(next)}`}`)
          continue
        }
        value = next
        i++
      }
      out.occurrences.push({ key: spec.key, flag, value, spec })
    } else if (spec.type === 'bool') {
      let value: boolean | null = true
      if (inline !== undefined) {
        value = parseBool(inline)
        if (value === null) {
          problems.push(`${flag}: expected true or false after "=", got ${show(inline)}`)
          continue
        }
      }
      out.occurrences.push({ key: spec.key, flag, value, spec })
    } else {
      if (inline !== undefined) {
        const b = parseBool(inline)
        if (b === null) {
          problems.push(`${flag}: expected no value (or =true / =false), got ${show(inline)}`)
          continue
        }
        out.occurrences.push({ key: spec.key, flag, value: b ? spec.fixed : undefined, spec })
        continue
      }
      out.occurrences.push({ key: spec.key, flag, value: spec.fixed, spec })
    }
  }
  return out
}

function suggest (token: string): string {
  const body = token.replace(/^-+/, '').split('=')[0]!
  let best: string | null = null
  let bestD = 3
  for (const s of SPECS) {
    if (s.key === 'goIgnored') continue
    for (const n of s.names) {
      if (n.length < 2) continue
      const d = editDistance(body, n)
      if (d < bestD) { bestD = d; best = n }
    }
  }
  return best === null ? '' : ` (did you mean --${best}?)`
}

function editDistance (a: string, b: string): number {
  const dp = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)])
  for (let j = 1; j <= b.length; j++) dp[0]![j] = j
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      dp[i]![j] = Math.min(dp[i - 1]![j]! + 1, dp[i]![j - 1]! + 1, dp[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
  }
  return dp[a.length]![b.length]!
}

/** A flag's merged setting: the value and every flag spelling that gave it. */
interface FlagSetting { value: string | boolean, flag: string }

function mergeOccurrences (occ: readonly Occurrence[], problems: string[]): Map<OptKey, FlagSetting> {
  const merged = new Map<OptKey, FlagSetting>()
  for (const o of occ) {
    if (o.key === 'goIgnored' || o.value === undefined) continue
    const prev = merged.get(o.key)
    if (prev === undefined) { merged.set(o.key, { value: o.value, flag: o.flag }); continue }
    if (prev.value === o.value) continue
    const msg = prev.flag === o.flag
      ? `${o.flag}: given twice with different values (${show(prev.value)} and ${show(o.value)}); give it once`
      : `${prev.flag} and ${o.flag} conflict: ${describeSetting(o.key, prev)}, ${describeSetting(o.key, { value: o.value, flag: o.flag })}; give only one`
    if (!problems.includes(msg)) problems.push(msg)
  }
  return merged
}

function describeSetting (key: OptKey, s: FlagSetting): string {
  if (key === 'p2p') return `${s.flag} turns direct paths ${s.value === true ? 'on' : 'off'}`
  if (key === 'logLevel') return `${s.flag} sets log level ${String(s.value)}`
  if (typeof s.value === 'boolean') return `${s.flag} sets ${String(s.value)}`
  return `${s.flag} ${show(s.value)}`
}

function show (v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v)
  if (v === undefined) return 'nothing'
  return JSON.stringify(v) ?? String(v)
}

// ---------------------------------------------------------------------------
// Entry point

/**
 * Parses argv (without node and script) into a Command. Throws UsageError
 * (code ERR_USAGE, `.problems` = every problem) when anything is wrong.
 */
export function parseCommand (argv: readonly string[], env: ParseEnv = {}): Command {
  const problems: string[] = []
  const tokens = tokenize(argv, problems)
  const flags = mergeOccurrences(tokens.occurrences, problems)
  const cmd = tokens.command?.name ?? null
  if (cmd === '?') throw new UsageError(problems)
  const cwd = env.cwd ?? process.cwd()
  const netnsId = env.netnsId === undefined ? currentNetnsId() : env.netnsId

  // help wins over everything except an unknown help topic.
  if (cmd === 'help' || flags.get('help')?.value === true) {
    let topic: string | undefined
    if (cmd === 'help') {
      topic = tokens.positionals[0]
      if (tokens.positionals.length > 1) {
        throw new UsageError([`help: expected at most one topic, got ${tokens.positionals.map(show).join(' ')}`])
      }
    } else if (cmd !== null) {
      topic = cmd
    }
    if (topic !== undefined && !(HELP_TOPICS as readonly string[]).includes(topic)) {
      throw new UsageError([`help: unknown topic ${show(topic)}: expected one of ${HELP_TOPICS.join(', ')}`])
    }
    if (topic === 'help') topic = undefined
    return topic === undefined ? { kind: 'help' } : { kind: 'help', topic }
  }
  if (cmd === 'version' || flags.get('version')?.value === true) {
    if (cmd === 'version') rejectExtras(tokens, ['version', 'logLevel'], 'version', problems)
    if (problems.length > 0) throw new UsageError(problems)
    return { kind: 'version' }
  }

  const genconfig = flags.get('genconfig')
  if (genconfig !== undefined) {
    if (cmd !== null) problems.push(`-g: writes example configs and exits; it takes no command, got ${show(tokens.command!.token)}`)
    rejectExtras(tokens, ['genconfig', 'logLevel'], '-g', problems)
    const file = String(genconfig.value)
    if (file === '') problems.push(`${genconfig.flag}: expected a file name, got an empty string`)
    if (problems.length > 0) throw new UsageError(problems)
    return { kind: 'genconfig', file: resolve(cwd, file) }
  }

  if (cmd === 'status') return parseStatus(tokens, flags, problems, cwd, netnsId)
  if (cmd === 'demo') {
    rejectExtras(tokens, ['logLevel'], 'demo', problems)
    if (problems.length > 0) throw new UsageError(problems)
    return { kind: 'demo' }
  }

  if (cmd === null && tokens.occurrences.length === 0) {
    if (problems.length === 0) problems.push(`no command given: expected one of ${COMMANDS.join(', ')}`)
    throw new UsageError(problems)
  }
  return parseRun(tokens, flags, problems, cwd, netnsId)
}

/** Adds a problem for every flag or positional that `context` does not take. */
function rejectExtras (tokens: Tokens, allowed: OptKey[], context: string, problems: string[]): void {
  for (const p of tokens.positionals) problems.push(`${context}: unexpected argument ${show(p)}`)
  const seen = new Set<string>()
  for (const o of tokens.occurrences) {
    if (allowed.includes(o.key) || seen.has(o.flag)) continue
    seen.add(o.flag)
    problems.push(`${o.flag}: not an option of ${context}`)
  }
}

function parseStatus (tokens: Tokens, flags: Map<OptKey, FlagSetting>, problems: string[], cwd: string, netnsId: string | null): Command {
  rejectExtras(tokens, ['json', 'control', 'dev', 'logLevel'], 'status', problems)
  const control = flags.get('control')
  const dev = flags.get('dev')
  let path: string | null = null
  if (control !== undefined && dev !== undefined) {
    problems.push(`${control.flag} and ${dev.flag} conflict: ${dev.flag} only chooses the default control socket path, which ${control.flag} replaces; give only one`)
  }
  if (control !== undefined) path = checkControl(String(control.value), control.flag, cwd, problems)
  else {
    const d = dev === undefined ? DEFAULTS.dev : checkDev(String(dev.value), dev.flag, problems)
    if (d !== null) path = controlPathFor(d, netnsId)
  }
  if (problems.length > 0 || path === null) throw new UsageError(problems)
  return { kind: 'status', json: flags.get('json')?.value === true, control: path }
}

// ---------------------------------------------------------------------------
// The daemon commands

/** One setting's raw value and where it came from, for messages. */
interface Raw {
  readonly value: unknown
  /** "--mtu", "-mtu" or `/etc/lwt.json: "mtu"`. */
  readonly source: string
  readonly from: 'flag' | 'file'
  /** The file key was one of the Go project's names. */
  readonly goName: boolean
}

/** File key → setting. Our names first, then the Go project's names. */
const FILE_KEYS: Readonly<Record<string, { key: OptKey, go: boolean }>> = Object.freeze({
  mode: { key: 'mode', go: false },
  listen: { key: 'listen', go: false },
  remote: { key: 'remote', go: false },
  tun: { key: 'tun', go: false },
  key: { key: 'key', go: false },
  dev: { key: 'dev', go: false },
  control: { key: 'control', go: false },
  mtu: { key: 'mtu', go: false },
  maxClients: { key: 'maxClients', go: false },
  p2p: { key: 'p2p', go: false },
  keepalive: { key: 'keepalive', go: false },
  logLevel: { key: 'logLevel', go: false },
  placement: { key: 'placement', go: false },
  fastPath: { key: 'fastPath', go: false },
  local_addr: { key: 'listen', go: true },
  remote_addr: { key: 'remote', go: true },
  tunnel_addr: { key: 'tun', go: true },
  tun_name: { key: 'dev', go: true },
  max_clients: { key: 'maxClients', go: true },
  p2p_enabled: { key: 'p2p', go: true }
})

/** Names in the file for each setting, for "missing" messages. */
function fileNamesOf (key: OptKey): string[] {
  return Object.entries(FILE_KEYS).filter(([, v]) => v.key === key).map(([k]) => k)
}

interface FileResult { settings: Map<OptKey, Raw>, ok: boolean }

function readConfigFile (file: string, flag: string, problems: string[], warnings: string[]): FileResult {
  const settings = new Map<OptKey, Raw>()
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : (err as Error).message
    problems.push(`${flag}: expected a readable JSON config file, got ${show(file)} (${why})`)
    return { settings, ok: false }
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1)
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch (err) {
    problems.push(`${file}: expected JSON, got a parse error: ${(err as Error).message}`)
    return { settings, ok: false }
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    problems.push(`${file}: expected a JSON object ({ "mode": ..., ... }), got ${Array.isArray(data) ? 'an array' : show(data)}`)
    return { settings, ok: false }
  }
  const unknown: string[] = []
  for (const [k, v] of Object.entries(data as Record<string, unknown>)) {
    const known = Object.hasOwn(FILE_KEYS, k) ? FILE_KEYS[k] : undefined
    if (known === undefined) {
      if (Object.hasOwn(GO_IGNORED_KEYS, k)) {
        warnings.push(ignoredWarning(`${file}: "${k}"`, k, v))
        continue
      }
      unknown.push(k)
      continue
    }
    const raw: Raw = { value: v, source: `${file}: "${k}"`, from: 'file', goName: known.go }
    const prev = settings.get(known.key)
    if (prev !== undefined) {
      if (JSON.stringify(prev.value) !== JSON.stringify(v)) {
        problems.push(`${prev.source} and ${raw.source} conflict: both set the same thing, to ${show(prev.value)} and ${show(v)}; keep one`)
      }
      continue
    }
    settings.set(known.key, raw)
  }
  if (unknown.length > 0) {
    const valid = Object.keys(FILE_KEYS).join(', ')
    for (const k of unknown) problems.push(`${file}: unknown key ${show(k)}${suggestKey(k)}; expected one of ${valid}`)
  }
  try {
    const st = statSync(file)
    if ((st.mode & 0o004) !== 0 && settings.has('key')) {
      warnings.push(`${file} is readable by every user and holds the key; run: chmod 600 ${file}`)
    }
  } catch { /* read above succeeded; a race here is harmless */ }
  return { settings, ok: true }
}

function suggestKey (k: string): string {
  let best: string | null = null
  let bestD = 3
  for (const n of [...Object.keys(FILE_KEYS), ...Object.keys(GO_IGNORED_KEYS)]) {
    const d = editDistance(k, n)
    if (d < bestD) { bestD = d; best = n }
  }
  return best === null ? '' : ` (did you mean "${best}"?)`
}

function ignoredWarning (what: string, goKey: string, value: unknown): string {
  let why = GO_IGNORED_KEYS[goKey] ?? 'it has no equivalent here'
  if (goKey === 'client_isolation' && value === true) why = `it is set to true, but ${why}`
  if (goKey === 'multi_client' && value === false) why = `it is set to false, but ${why}`
  return `${what} is a Go lightweight-tunnel setting that is ignored: ${why}`
}

function parseRun (tokens: Tokens, flags: Map<OptKey, FlagSetting>, problems: string[], cwd: string, netnsId: string | null): Command {
  const warnings: string[] = []
  for (const p of tokens.positionals) problems.push(`unexpected argument ${show(p)}`)
  for (const k of ['json', 'genconfig'] as const) {
    const f = flags.get(k)
    if (f !== undefined) problems.push(`${f.flag}: not an option of server or client`)
  }
  const seenIgnored = new Set<string>()
  for (const o of tokens.occurrences) {
    if (o.key !== 'goIgnored' || seenIgnored.has(o.flag)) continue
    seenIgnored.add(o.flag)
    warnings.push(ignoredWarning(o.flag, o.spec.goKey!, o.value))
  }

  // The file, if any.
  const cfgFlag = flags.get('config')
  let fileSettings = new Map<OptKey, Raw>()
  let configFile: string | null = null
  if (cfgFlag !== undefined) {
    configFile = resolve(cwd, String(cfgFlag.value))
    if (String(cfgFlag.value) === '') problems.push(`${cfgFlag.flag}: expected a config file name, got an empty string`)
    else fileSettings = readConfigFile(configFile, cfgFlag.flag, problems, warnings).settings
  }

  const pick = (key: OptKey): Raw | undefined => {
    const f = flags.get(key)
    if (f !== undefined) return { value: f.value, source: f.flag, from: 'flag', goName: false }
    return fileSettings.get(key)
  }
  const missingName = (key: OptKey, flag: string): string => {
    const inFile = configFile !== null ? ` (or ${fileNamesOf(key).map(n => `"${n}"`).join(' / ')} in ${configFile})` : ''
    return `${flag}${inFile}`
  }

  // Mode: the command word, -m and the file must agree.
  const modeSources: Array<{ mode: unknown, label: string, source: string }> = []
  if (tokens.command !== null && (tokens.command.name === 'server' || tokens.command.name === 'client')) {
    modeSources.push({ mode: tokens.command.name, label: `the ${tokens.command.name} command`, source: tokens.command.name })
  }
  const mFlag = flags.get('mode')
  if (mFlag !== undefined) modeSources.push({ mode: mFlag.value, label: `${mFlag.flag} ${String(mFlag.value)}`, source: mFlag.flag })
  const mFile = fileSettings.get('mode')
  if (mFile !== undefined) modeSources.push({ mode: mFile.value, label: `${mFile.source} ${show(mFile.value)}`, source: mFile.source })
  let mode: Mode | null = null
  for (const s of modeSources) {
    if (s.mode !== 'server' && s.mode !== 'client') problems.push(`${s.source}: expected server or client, got ${show(s.mode)}`)
  }
  const validModes = modeSources.filter(s => s.mode === 'server' || s.mode === 'client')
  if (validModes.length > 0) {
    const first = validModes[0]!
    const other = validModes.find(s => s.mode !== first.mode)
    if (other !== undefined) problems.push(`${first.label} and ${other.label} conflict: give one mode`)
    else mode = first.mode as Mode
  } else if (modeSources.length === 0) {
    problems.push(`no mode: expected the command server or client (or -m server|client${configFile !== null ? `, or "mode" in ${configFile}` : ''})`)
  }

  // Settings valid in one mode only.
  if (mode === 'server') {
    const r = pick('remote')
    if (r !== undefined) {
      if (r.from === 'file' && r.goName && r.value === '') { /* Go wrote an empty remote_addr for servers */ } else {
        problems.push(`${r.source}: only for client mode, but this is a server (a server has no remote; clients connect to its --listen address)`)
      }
    }
    const p = pick('p2p')
    if (p !== undefined) {
      if (p.from === 'file' && p.goName) warnings.push(`${p.source} is ignored in server mode: direct paths are a client setting`)
      else problems.push(`${p.source}: only for client mode, but this is a server (direct paths are chosen by each client)`)
    }
  }
  if (mode === 'client') {
    const m = pick('maxClients')
    if (m !== undefined) {
      if (m.from === 'file' && m.goName) warnings.push(`${m.source} is ignored in client mode: it limits clients on a server`)
      else problems.push(`${m.source}: only for server mode, but this is a client`)
    }
  }

  // Each setting.
  const listenRaw = pick('listen')
  let listen: HostPort | null = mode === 'client' ? DEFAULTS.clientListen : DEFAULTS.serverListen
  if (listenRaw !== undefined) {
    if (mode === 'client' && listenRaw.from === 'file' && listenRaw.goName) {
      warnings.push(`${listenRaw.source} is ignored in client mode, as in the Go program; use "listen" to choose the client's local address`)
    } else if (listenRaw.from === 'file' && listenRaw.goName && listenRaw.value === '') {
      // Go's generator leaves local_addr empty in client files; treat as absent.
    } else {
      listen = checkHostPort(listenRaw, { role: 'listen', minPort: mode === 'client' ? 0 : 1 }, problems)
    }
  }

  let remote: HostPort | null = null
  if (mode === 'client') {
    const r = pick('remote')
    if (r === undefined || (r.from === 'file' && r.goName && r.value === '')) {
      problems.push(`missing ${missingName('remote', '--remote (-r)')}: a client needs the server's address as HOST:PORT, e.g. 203.0.113.5:9000`)
    } else {
      remote = checkHostPort(r, { role: 'remote', minPort: 1 }, problems)
    }
  }

  let tun: Ipv4Cidr | null = null
  const tunRaw = pick('tun')
  if (tunRaw === undefined) {
    problems.push(`missing ${missingName('tun', '--tun (-t)')}: expected this node's tunnel address as CIDR, e.g. ${mode === 'client' ? '10.0.0.2/24' : '10.0.0.1/24'}`)
  } else if (expectString(tunRaw, 'a tunnel address as CIDR, e.g. 10.0.0.2/24', problems)) {
    tun = checkCidr(tunRaw.value as string, tunRaw.source, problems)
  }

  let key: string | null = null
  const keyRaw = pick('key')
  if (keyRaw === undefined) {
    problems.push(`missing ${missingName('key', '--key (-k)')}: expected the network's shared secret (the same on the server and every client); generate one with: lightweight-tunnel -g FILE`)
  } else if (expectString(keyRaw, 'the shared secret as a string', problems)) {
    const k = keyRaw.value as string
    if (k === '') problems.push(`${keyRaw.source}: expected a non-empty shared secret, got an empty string (there is no unencrypted mode)`)
    else {
      key = k
      if (PLACEHOLDER_KEYS.has(k)) warnings.push(`${keyRaw.source}: this is the Go project's example placeholder key, which anyone can read; generate a random one with: lightweight-tunnel -g FILE`)
      else if ([...k].length < LIMITS.keyWarnBelow) warnings.push(`${keyRaw.source}: the key is only ${[...k].length} characters long; anyone who guesses it can join the network (use 16 or more random characters)`)
    }
  }

  let dev: string | null = DEFAULTS.dev
  const devRaw = pick('dev')
  if (devRaw !== undefined && !(devRaw.from === 'file' && devRaw.goName && devRaw.value === '')) {
    dev = expectString(devRaw, 'a network device name', problems) ? checkDev(devRaw.value as string, devRaw.source, problems) : null
  }

  let control: string | null = null
  const controlRaw = pick('control')
  if (controlRaw !== undefined) {
    if (expectString(controlRaw, 'a unix socket path', problems)) control = checkControl(controlRaw.value as string, controlRaw.source, cwd, problems)
  } else if (dev !== null) {
    control = controlPathFor(dev, netnsId)
  }

  let mtu: number | null = DEFAULTS.mtu
  const mtuRaw = pick('mtu')
  if (mtuRaw !== undefined) {
    if (mtuRaw.value === 'auto') mtu = DEFAULTS.mtu
    else if (mtuRaw.from === 'file' && mtuRaw.value === 0) {
      warnings.push(`${mtuRaw.source}: 0 meant "the default" in the Go program; using ${DEFAULTS.mtu} (write "auto" or leave the key out to say so)`)
    } else {
      mtu = checkInt(mtuRaw, LIMITS.mtuMin, LIMITS.mtuMax, `an MTU in bytes, ${LIMITS.mtuMin}..${LIMITS.mtuMax} (576 is the IPv4 minimum; ${LIMITS.mtuMax} the largest packet the dataplane carries), or "auto" for ${DEFAULTS.mtu}`, problems)
    }
  }

  let maxClients: number | null = DEFAULTS.maxClients
  const mcRaw = mode === 'server' ? pick('maxClients') : undefined
  if (mcRaw !== undefined) {
    if (mcRaw.from === 'file' && mcRaw.goName && mcRaw.value === 0) {
      warnings.push(`${mcRaw.source}: 0 meant "the default" in the Go program; using ${DEFAULTS.maxClients}`)
    } else {
      maxClients = checkInt(mcRaw, LIMITS.maxClientsMin, LIMITS.maxClientsMax, `the number of clients the server accepts at once, ${LIMITS.maxClientsMin}..${LIMITS.maxClientsMax}`, problems)
    }
  }

  let p2p: boolean = DEFAULTS.p2p
  const p2pRaw = mode === 'client' ? pick('p2p') : undefined
  if (p2pRaw !== undefined) {
    if (typeof p2pRaw.value === 'boolean') p2p = p2pRaw.value
    else problems.push(`${p2pRaw.source}: expected true or false, got ${show(p2pRaw.value)}`)
  }

  let keepalive: number | null = DEFAULTS.keepalive
  const kaRaw = pick('keepalive')
  if (kaRaw !== undefined) {
    if (kaRaw.from === 'file' && kaRaw.value === 0) {
      warnings.push(`${kaRaw.source}: 0 meant "the default" in the Go program; using ${DEFAULTS.keepalive}`)
    } else {
      keepalive = checkInt(kaRaw, LIMITS.keepaliveMin, LIMITS.keepaliveMax, `seconds between keepalives, ${LIMITS.keepaliveMin}..${LIMITS.keepaliveMax} (longer lets NAT mappings expire)`, problems)
    }
  }

  let logLevel: Config['logLevel'] | null = DEFAULTS.logLevel
  const llRaw = pick('logLevel')
  if (llRaw !== undefined) {
    if (typeof llRaw.value === 'string' && (LOG_LEVELS as readonly string[]).includes(llRaw.value)) logLevel = llRaw.value as Config['logLevel']
    else {
      problems.push(`${llRaw.source}: expected one of ${LOG_LEVELS.join(', ')}, got ${show(llRaw.value)}`)
      logLevel = null
    }
  }

  let placement: Placement = DEFAULTS.placement[mode ?? 'client']
  const plRaw = pick('placement')
  if (plRaw !== undefined) {
    if (typeof plRaw.value === 'string' && (PLACEMENTS as readonly string[]).includes(plRaw.value)) placement = plRaw.value as Placement
    else problems.push(`${plRaw.source}: expected one of ${PLACEMENTS.join(', ')}, got ${show(plRaw.value)}`)
  }

  let fastPath: boolean = DEFAULTS.fastPath
  const fpRaw = pick('fastPath')
  if (fpRaw !== undefined) {
    if (typeof fpRaw.value === 'boolean') fastPath = fpRaw.value
    else problems.push(`${fpRaw.source}: expected true or false, got ${show(fpRaw.value)}`)
  }

  if (problems.length > 0) throw new UsageError(problems)
  const config: Config = {
    mode: mode!,
    listen: listen!,
    remote,
    tun: tun!,
    key: key!,
    dev: dev!,
    control: control!,
    mtu: mtu!,
    maxClients: maxClients!,
    p2p,
    keepalive: keepalive!,
    logLevel: logLevel!,
    placement,
    fastPath
  }
  return { kind: 'run', config: deepFreeze(structuredClone(config)), warnings }
}

// ---------------------------------------------------------------------------
// Value checks. Each pushes one problem naming the source and returns null on failure.

function expectString (raw: Raw, what: string, problems: string[]): boolean {
  if (typeof raw.value === 'string') return true
  problems.push(`${raw.source}: expected ${what}, got ${show(raw.value)}`)
  return false
}

function checkInt (raw: Raw, min: number, max: number, what: string, problems: string[]): number | null {
  let n: number
  if (raw.from === 'flag') {
    const s = String(raw.value)
    n = /^[0-9]{1,9}$/.test(s) ? Number(s) : NaN
  } else {
    n = typeof raw.value === 'number' && Number.isInteger(raw.value) ? raw.value : NaN
  }
  if (Number.isNaN(n) || n < min || n > max) {
    problems.push(`${raw.source}: expected ${what}, got ${show(raw.value)}`)
    return null
  }
  return n
}

/** Strict dotted quad (no leading zeros, which some parsers read as octal). */
function parseIpv4 (s: string): number | null {
  const m = /^(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})$/.exec(s)
  if (m === null) return null
  const o = m.slice(1, 5).map(Number)
  if (o.some(x => x > 255)) return null
  return ((o[0]! << 24) >>> 0) + (o[1]! << 16) + (o[2]! << 8) + o[3]!
}

function ipToString (n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.')
}

/** Validates a tunnel address "a.b.c.d/p". Exported for tests and the daemon's peers. */
export function checkCidr (value: string, source: string, problems: string[]): Ipv4Cidr | null {
  const example = 'e.g. 10.0.0.2/24'
  const slash = value.indexOf('/')
  if (slash === -1) {
    if (parseIpv4(value) !== null) problems.push(`${source}: expected an address with its network prefix length, ${example}, got ${show(value)} (no /prefix)`)
    else problems.push(`${source}: expected an IPv4 address with prefix length, ${example}, got ${show(value)}`)
    return null
  }
  const ipPart = value.slice(0, slash)
  const prefixPart = value.slice(slash + 1)
  const ip = parseIpv4(ipPart)
  if (ip === null) {
    problems.push(`${source}: expected an IPv4 address with prefix length, ${example}, got ${show(value)} (${show(ipPart)} is not an IPv4 address)`)
    return null
  }
  if (!/^[0-9]{1,2}$/.test(prefixPart)) {
    problems.push(`${source}: expected a prefix length ${LIMITS.prefixMin}..${LIMITS.prefixMax} after "/", ${example}, got ${show(value)}`)
    return null
  }
  const prefix = Number(prefixPart)
  if (prefix < LIMITS.prefixMin || prefix > LIMITS.prefixMax) {
    problems.push(`${source}: expected a prefix length ${LIMITS.prefixMin}..${LIMITS.prefixMax}, got /${prefix} in ${show(value)} (` +
      (prefix > LIMITS.prefixMax
        ? 'a /31 or /32 network has no room for a server and its clients'
        : 'a network larger than /8 would swallow routes to unrelated addresses') + ')')
    return null
  }
  const first = ip >>> 24
  if (first === 0 || first === 127 || first >= 224) {
    problems.push(`${source}: expected a unicast address usable on a tunnel, got ${show(value)} (${first === 127 ? 'loopback' : first === 0 ? '0.0.0.0/8 is "this network"' : 'multicast or reserved'}); private ranges such as 10.0.0.0/8 are the usual choice`)
    return null
  }
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0
  const network = (ip & mask) >>> 0
  const broadcast = (network | (~mask >>> 0)) >>> 0
  if (ip === network) {
    problems.push(`${source}: expected a host address, got the network address ${ipPart} of ${ipToString(network)}/${prefix}; use e.g. ${ipToString(network + 1)}/${prefix}`)
    return null
  }
  if (ip === broadcast) {
    problems.push(`${source}: expected a host address, got the broadcast address ${ipPart} of ${ipToString(network)}/${prefix}; use e.g. ${ipToString(broadcast - 1)}/${prefix}`)
    return null
  }
  return { ip: ipToString(ip), ipInt: ip, prefix }
}

const HOSTNAME = /^(?=.{1,253}\.?$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/

function checkHostPort (raw: Raw, opts: { role: 'listen' | 'remote', minPort: number }, problems: string[]): HostPort | null {
  const example = opts.role === 'listen' ? 'e.g. 0.0.0.0:9000' : 'e.g. 203.0.113.5:9000 or vpn.example.com:9000'
  if (typeof raw.value !== 'string') {
    problems.push(`${raw.source}: expected HOST:PORT as a string, ${example}, got ${show(raw.value)}`)
    return null
  }
  const value = raw.value
  if (value.startsWith('[') || (value.match(/:/g)?.length ?? 0) > 1) {
    problems.push(`${raw.source}: expected an IPv4 HOST:PORT, ${example}, got ${show(value)} (IPv6 is not supported)`)
    return null
  }
  const colon = value.lastIndexOf(':')
  if (colon === -1) {
    problems.push(`${raw.source}: expected HOST:PORT, ${example}, got ${show(value)} (no port)`)
    return null
  }
  let host = value.slice(0, colon)
  const portStr = value.slice(colon + 1)
  let ok = true
  if (host === '') {
    if (opts.role === 'listen') host = '0.0.0.0'
    else { problems.push(`${raw.source}: expected HOST:PORT with a host, ${example}, got ${show(value)}`); ok = false }
  } else if (opts.role === 'listen') {
    if (parseIpv4(host) === null) {
      problems.push(`${raw.source}: expected a local IPv4 address to bind (0.0.0.0 for all), ${example}, got ${show(host)} in ${show(value)}`)
      ok = false
    }
  } else if (parseIpv4(host) === null) {
    if (/^[0-9.]+$/.test(host) || !HOSTNAME.test(host)) {
      problems.push(`${raw.source}: expected an IPv4 address or host name, ${example}, got ${show(host)} in ${show(value)}`)
      ok = false
    }
  }
  const port = /^[0-9]{1,5}$/.test(portStr) ? Number(portStr) : NaN
  if (Number.isNaN(port) || port < opts.minPort || port > 65535) {
    problems.push(`${raw.source}: expected a port ${opts.minPort}..65535${opts.minPort === 0 ? ' (0: any free port)' : ''}, got ${show(portStr)} in ${show(value)}`)
    ok = false
  }
  return ok ? { host, port } : null
}

function checkDev (value: string, source: string, problems: string[]): string | null {
  if (/^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/.test(value) && value.length <= LIMITS.devNameMax) return value
  problems.push(`${source}: expected a network device name of 1..${LIMITS.devNameMax} characters from A-Z a-z 0-9 _ - . (Linux limit), got ${show(value)}`)
  return null
}

function checkControl (value: string, source: string, cwd: string, problems: string[]): string | null {
  if (value === '') {
    problems.push(`${source}: expected a unix socket path (default ${CONTROL_DIR}/<dev>.<netns>.sock), got an empty string`)
    return null
  }
  const path = resolve(cwd, value)
  if (Buffer.byteLength(path) > LIMITS.controlPathMax) {
    problems.push(`${source}: expected a socket path of at most ${LIMITS.controlPathMax} bytes (the unix socket limit), got ${Buffer.byteLength(path)} bytes: ${show(path)}`)
    return null
  }
  return path
}

function deepFreeze<T> (o: T): T {
  if (o !== null && typeof o === 'object' && !Object.isFrozen(o)) {
    for (const v of Object.values(o as Record<string, unknown>)) deepFreeze(v)
    Object.freeze(o)
  }
  return o
}
