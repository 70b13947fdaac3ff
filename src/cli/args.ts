/**
 * The command line → one `Command`. `parseCommand(argv)` is the only place
 * that reads argv; for the daemon commands it hands the settings to
 * config/load.ts loadConfig(), and the result carries a validated,
 * deep-frozen `Config`.
 *
 * Flow:
 *   1. tokenize argv: the command word, positionals, and flag occurrences
 *      (`--x v`, `--x=v`, `-x v`, `-x=v`: one or two dashes, like Go's flag;
 *      the flags are in cli/options.ts);
 *   2. merge occurrences per setting: the same setting given twice with
 *      different values is a conflict (`--p2p --no-p2p`, `-q --verbose`);
 *   3. help / version / -g / status / demo return early;
 *   4. run: loadConfig() reads the -c file, takes flag ?? file ?? default for
 *      every setting and validates it.
 * Every problem of every step is collected, each naming the flag or file key,
 * what was expected and what was given; any problem ⇒ one UsageError
 * (ERR_USAGE) listing them all.
 */
import { resolve } from 'node:path'
import { DEFAULTS, controlPathFor, currentNetnsId } from '../config/defaults.js'
import { loadConfig, type FlagValue, type LoadEnv, type RunInput } from '../config/load.js'
import { readConfigFile } from '../config/go-compat.js'
import { closest, show } from '../config/messages.js'
import { SETTINGS, type Config, type SettingKey } from '../config/schema.js'
import { checkControl, checkDev } from '../config/validate.js'
import { VpnError } from '../errors.js'
import { lookupFlag, suggestFlag, type OptKey, type OptSpec } from './options.js'
import { INSTANCE_NAME } from './install-service.js'

export type Command =
  | { kind: 'run', config: Config, warnings: string[], reload: ReloadConfig | null }
  /** control null: find the daemons in this network namespace (cli/discover.ts); all: every daemon on the host. */
  | { kind: 'status', json: boolean, control: string | null, all: boolean }
  /** control null: the one daemon in this network namespace. */
  | { kind: 'ping', peer: string, count: number, intervalMs: number, timeoutMs: number, json: boolean, control: string | null }
  | { kind: 'netcheck', json: boolean, control: string | null }
  /** `check -c FILE`: config null when it has problems (all listed). */
  | { kind: 'check', file: string, config: Config | null, problems: string[], warnings: string[] }
  | { kind: 'help', topic?: string }
  | { kind: 'version' }
  | { kind: 'genconfig', file: string }
  | { kind: 'demo' }
  | { kind: 'install-service', name: string, configFile: string | null, root: string }
  | { kind: 'completion', shell: 'bash' }
  | { kind: 'genkey' }
  | { kind: 'pubkey' }

/**
 * Loads the -c file again with the flags of the start (SIGHUP): the same
 * loadConfig() as at start, so a reload sees exactly what a restart would.
 * Null for a run without -c.
 */
export type ReloadConfig = () => { config: Config | null, warnings: string[], problems: string[] }

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

export const COMMANDS = ['server', 'client', 'status', 'demo', 'help', 'version', 'ping', 'netcheck', 'check', 'install-service', 'completion', 'genkey', 'pubkey'] as const
export const HELP_TOPICS = ['server', 'client', 'status', 'demo', 'help', 'version', 'config', 'ping', 'netcheck', 'check', 'metrics', 'install-service', 'completion'] as const

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

/** Go's strconv.ParseBool. */
function parseBool (s: string): boolean | null {
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(s)) return true
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(s)) return false
  return null
}

function isCommand (s: string): boolean {
  return (COMMANDS as readonly string[]).includes(s)
}

/** " (did you mean `status`?)" for a misspelled command word, or "". */
function suggestCommand (word: string): string {
  const best = closest(word, COMMANDS)
  return best === null ? '' : ` (did you mean ${show(best)}?)`
}

function tokenize (argv: readonly string[], problems: string[]): Tokens {
  const out: Tokens = { command: null, positionals: [], occurrences: [] }
  let onlyPositionals = false
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i]!
    if (onlyPositionals || !token.startsWith('-') || token === '-') {
      if (out.command === null && out.positionals.length === 0) {
        if (isCommand(token)) {
          out.command = { name: token, token }
          continue
        }
        problems.push(`unknown command ${show(token)}${suggestCommand(token)}: expected one of ${COMMANDS.join(', ')} (or Go-style flags such as -m server)`)
        out.command = { name: '?', token }
        continue
      }
      out.positionals.push(token)
      continue
    }
    if (token === '--') { onlyPositionals = true; continue }
    const hit = lookupFlag(token)
    if (hit === null) {
      problems.push(`unknown option ${show(token.split('=')[0]!)}${suggestFlag(token)}`)
      // Skip what is probably its value, so it is not reported as a stray argument too.
      const next = argv[i + 1]
      if (!token.includes('=') && next !== undefined && !next.startsWith('-') &&
          !(out.command === null && isCommand(next))) i++
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

function mergeOccurrences (occ: readonly Occurrence[], problems: string[]): Map<OptKey, FlagValue> {
  const merged = new Map<OptKey, FlagValue>()
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

function describeSetting (key: OptKey, s: FlagValue): string {
  if (key === 'p2p') return `${s.flag} turns direct paths ${s.value === true ? 'on' : 'off'}`
  if (key === 'logLevel') return `${s.flag} sets log level ${String(s.value)}`
  if (typeof s.value === 'boolean') return `${s.flag} sets ${String(s.value)}`
  return `${s.flag} ${show(s.value)}`
}

// ---------------------------------------------------------------------------
// Dispatch

/**
 * Parses argv (without node and script) into a Command. Throws UsageError
 * (code ERR_USAGE, `.problems` = every problem) when anything is wrong.
 */
export function parseCommand (argv: readonly string[], parseEnv: ParseEnv = {}): Command {
  const problems: string[] = []
  const tokens = tokenize(argv, problems)
  const flags = mergeOccurrences(tokens.occurrences, problems)
  const cmd = tokens.command?.name ?? null
  if (cmd === '?') throw new UsageError(problems)
  const env: LoadEnv = {
    cwd: parseEnv.cwd ?? process.cwd(),
    netnsId: parseEnv.netnsId === undefined ? currentNetnsId() : parseEnv.netnsId
  }

  // help wins over everything except an unknown help topic.
  if (cmd === 'help' || flags.get('help')?.value === true) return parseHelp(tokens, cmd)
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
    return { kind: 'genconfig', file: resolve(env.cwd, file) }
  }

  if (cmd === 'status') return parseStatus(tokens, flags, problems, env)
  if (cmd === 'install-service') return parseInstallService(tokens, flags, problems, env)
  if (cmd === 'completion') return parseCompletion(tokens, problems)
  if (cmd === 'ping') return parsePing(tokens, flags, problems, env)
  if (cmd === 'netcheck') {
    rejectExtras(tokens, ['json', 'control', 'dev', 'logLevel'], 'netcheck', problems)
    const control = daemonSocket(flags, problems, env)
    if (problems.length > 0) throw new UsageError(problems)
    return { kind: 'netcheck', json: flags.get('json')?.value === true, control }
  }
  if (cmd === 'check') return parseCheck(tokens, flags, problems, env)
  if (cmd === 'demo') {
    rejectExtras(tokens, ['logLevel'], 'demo', problems)
    if (problems.length > 0) throw new UsageError(problems)
    return { kind: 'demo' }
  }
  if (cmd === 'genkey' || cmd === 'pubkey') {
    rejectExtras(tokens, [], cmd, problems)
    if (problems.length > 0) throw new UsageError(problems)
    return { kind: cmd }
  }

  if (cmd === null && tokens.occurrences.length === 0) {
    if (problems.length === 0) problems.push(`no command given: expected one of ${COMMANDS.join(', ')}`)
    throw new UsageError(problems)
  }
  return parseRun(tokens, flags, problems, env)
}

function parseHelp (tokens: Tokens, cmd: string | null): Command {
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
    throw new UsageError([`help: unknown topic ${show(topic)}${topic.length > 1 && closest(topic, HELP_TOPICS) !== null ? ` (did you mean ${show(closest(topic, HELP_TOPICS))}?)` : ''}: expected one of ${HELP_TOPICS.join(', ')}`])
  }
  if (topic === 'help') topic = undefined
  return topic === undefined ? { kind: 'help' } : { kind: 'help', topic }
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

function parseStatus (tokens: Tokens, flags: Map<OptKey, FlagValue>, problems: string[], env: LoadEnv): Command {
  rejectExtras(tokens, ['json', 'control', 'dev', 'logLevel', 'all', 'config'], 'status', problems)
  const all = flags.get('all')?.value === true
  const file = flags.get('config')
  const chosen = [flags.get('control'), flags.get('dev'), file, all ? flags.get('all') : undefined].filter(f => f !== undefined)
  if (chosen.length > 1) {
    problems.push(`${chosen.map(f => f.flag).join(' and ')} conflict: each chooses which daemon to ask (--control a socket, --dev a device, -c the daemon of a config file, --all every daemon); give only one`)
    throw new UsageError(problems)
  }
  let control: string | null = null
  if (file !== undefined) {
    // The daemon of that config: its "control" key, else its device's default socket. Only
    // these keys are read (a file a daemon runs with may have problems check -c would report).
    const path = resolve(env.cwd, String(file.value))
    const settings = readConfigFile(path, file.flag, problems, []) ?? new Map()
    const c = settings.get('control')
    const d = settings.get('dev')
    if (c !== undefined && typeof c.value === 'string') control = checkControl(c.value, c.source, env.cwd, problems)
    else if (d !== undefined && typeof d.value === 'string' && d.value !== '') { const dev = checkDev(d.value, d.source, problems); if (dev !== null) control = controlPathFor(dev, env.netnsId) }
    else if (problems.length === 0) control = controlPathFor(DEFAULTS.dev, env.netnsId)
  } else if (!all) {
    control = daemonSocket(flags, problems, env)
  }
  if (problems.length > 0) throw new UsageError(problems)
  return { kind: 'status', json: flags.get('json')?.value === true, control, all }
}

/** The socket --control or --dev names, or null (find the daemon: cli/discover.ts). */
function daemonSocket (flags: Map<OptKey, FlagValue>, problems: string[], env: LoadEnv): string | null {
  const control = flags.get('control')
  const dev = flags.get('dev')
  if (control !== undefined && dev !== undefined) {
    problems.push(`${control.flag} and ${dev.flag} conflict: ${dev.flag} only chooses the default control socket path, which ${control.flag} replaces; give only one`)
    return null
  }
  if (control !== undefined) return checkControl(String(control.value), control.flag, env.cwd, problems)
  if (dev !== undefined) {
    const d = checkDev(String(dev.value), dev.flag, problems)
    return d === null ? null : controlPathFor(d, env.netnsId)
  }
  return null
}

/** An option's number: an integer (or a decimal when `decimal`) within min..max, else a problem. */
function numberOf (f: FlagValue | undefined, dflt: number, min: number, max: number, what: string, problems: string[], decimal = false): number {
  if (f === undefined) return dflt
  const s = String(f.value)
  const n = (decimal ? /^[0-9]+(\.[0-9]+)?$/ : /^[0-9]+$/).test(s) ? Number(s) : NaN
  if (Number.isNaN(n) || n < min || n > max) {
    problems.push(`${f.flag}: expected ${what}, ${min}..${max}, got ${show(s)}`)
    return dflt
  }
  return n
}

/** `ping PEER [-c COUNT] [-i SECONDS] [-W SECONDS] [--json] [--control PATH | --dev NAME]`. */
function parsePing (tokens: Tokens, flags: Map<OptKey, FlagValue>, problems: string[], env: LoadEnv): Command {
  rejectExtras({ ...tokens, positionals: tokens.positionals.slice(1) }, ['json', 'control', 'dev', 'logLevel', 'config', 'count', 'interval', 'timeout'], 'ping', problems)
  const peer = tokens.positionals[0]
  if (peer === undefined) problems.push('ping: expected the peer\'s tunnel address, e.g. lightweight-tunnel ping 10.0.0.3')
  else if (!/^(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}$/.test(peer)) {
    problems.push(`ping: expected the peer's tunnel address as an IPv4 address such as 10.0.0.3, got ${show(peer)}`)
  }
  // -c is the count here, as in ping(8) (elsewhere it names a config file).
  const c1 = flags.get('config')
  const c2 = flags.get('count')
  if (c1 !== undefined && c2 !== undefined) problems.push(`${c1.flag} and ${c2.flag} both give the count; give one`)
  const count = numberOf(c2 ?? c1, 4, 1, 100_000, 'a number of pings', problems)
  const interval = numberOf(flags.get('interval'), 1, 0.2, 3600, 'seconds between pings (0.2 or more)', problems, true)
  const timeout = numberOf(flags.get('timeout'), 2, 0.1, 8, 'seconds to wait for each answer', problems, true)
  const control = daemonSocket(flags, problems, env)
  if (problems.length > 0) throw new UsageError(problems)
  return { kind: 'ping', peer: peer!, count, intervalMs: Math.round(interval * 1000), timeoutMs: Math.round(timeout * 1000), json: flags.get('json')?.value === true, control }
}

/** `check -c FILE` (or `check FILE`): validate a config file; every problem is reported, not thrown. */
function parseCheck (tokens: Tokens, flags: Map<OptKey, FlagValue>, problems: string[], env: LoadEnv): Command {
  const file = flags.get('config') ?? (tokens.positionals.length === 1 ? { value: tokens.positionals[0]!, flag: 'check' } : undefined)
  rejectExtras({ ...tokens, positionals: flags.has('config') ? tokens.positionals : tokens.positionals.slice(1) }, ['config', 'logLevel'], 'check', problems)
  if (file === undefined) problems.push('check: expected the config file to check: lightweight-tunnel check -c FILE')
  if (problems.length > 0) throw new UsageError(problems)
  const checkProblems: string[] = []
  const { config, warnings } = loadConfig({ command: null, flags: new Map(), configFile: file, ignoredFlags: [] }, env, checkProblems)
  return { kind: 'check', file: resolve(env.cwd, String(file!.value)), config, problems: checkProblems, warnings }
}

/**
 * install-service NAME [-c FILE] [--root DIR]: FILE must be a valid config
 * (loadConfig, the same checks as a start), so a service is never installed
 * with a config that would fail at boot.
 */
function parseInstallService (tokens: Tokens, flags: Map<OptKey, FlagValue>, problems: string[], env: LoadEnv): Command {
  rejectExtras({ ...tokens, positionals: tokens.positionals.slice(1) }, ['config', 'root', 'logLevel'], 'install-service', problems)
  const name = tokens.positionals[0]
  if (name === undefined) problems.push('install-service: expected the instance NAME (the service is lightweight-tunnel@NAME, its config /etc/lightweight-tunnel/NAME.json)')
  else if (!INSTANCE_NAME.test(name)) problems.push(`install-service: NAME must be 1 to 64 letters, digits, "_", "." or "-", starting with a letter or digit, got ${show(name)}`)
  const root = flags.get('root')
  let rootDir = '/'
  if (root !== undefined) {
    if (String(root.value) === '') problems.push(`${root.flag}: expected a directory, got an empty string`)
    else rootDir = resolve(env.cwd, String(root.value))
  }
  const file = flags.get('config')
  let configFile: string | null = null
  if (file !== undefined) {
    configFile = resolve(env.cwd, String(file.value))
    loadConfig({ command: null, flags: new Map(), configFile: file, ignoredFlags: [] }, env, problems)
  }
  if (problems.length > 0 || name === undefined) throw new UsageError(problems)
  return { kind: 'install-service', name, configFile, root: rootDir }
}

/** completion bash: the script for bash's programmable completion. */
function parseCompletion (tokens: Tokens, problems: string[]): Command {
  rejectExtras({ ...tokens, positionals: tokens.positionals.slice(1) }, [], 'completion', problems)
  const shell = tokens.positionals[0]
  if (shell !== 'bash') problems.push(`completion: expected the shell name bash (the only one supported), got ${shell === undefined ? 'nothing' : show(shell)}`)
  if (problems.length > 0) throw new UsageError(problems)
  return { kind: 'completion', shell: 'bash' }
}

/** server / client / Go-style `-m MODE` / `-c FILE`: the daemon runs with the Config loadConfig() builds. */
function parseRun (tokens: Tokens, flags: Map<OptKey, FlagValue>, problems: string[], env: LoadEnv): Command {
  for (const p of tokens.positionals) problems.push(`unexpected argument ${show(p)}`)
  for (const k of ['json', 'genconfig', 'root'] as const) {
    const f = flags.get(k)
    if (f !== undefined) problems.push(`${f.flag}: not an option of server or client`)
  }
  const settings = new Map<SettingKey, FlagValue>()
  for (const k of SETTINGS) {
    const f = flags.get(k)
    if (f !== undefined) settings.set(k, f)
  }
  const name = tokens.command?.name
  const input: RunInput = {
    command: name === 'server' || name === 'client' ? name : null,
    flags: settings,
    configFile: flags.get('config'),
    ignoredFlags: tokens.occurrences.filter(o => o.key === 'goIgnored').map(o => ({ flag: o.flag, goKey: o.spec.goKey!, value: o.value }))
  }
  const { config, warnings } = loadConfig(input, env, problems)
  if (config === null) throw new UsageError(problems)
  const reload: ReloadConfig | null = input.configFile === undefined
    ? null
    : () => {
      const again: string[] = []
      const r = loadConfig(input, env, again)
      return { config: r.config, warnings: r.warnings, problems: again }
    }
  return { kind: 'run', config, warnings, reload }
}
