/**
 * loadConfig(): the settings of a daemon run (flags parsed by cli/args.ts,
 * plus the JSON file named by -c) → one validated, deep-frozen Config.
 *
 * Steps, each a function below:
 *   1. collectSettings: read the -c file (config/go-compat.ts: our key names
 *      and the Go project's); a setting's value is its flag ?? its file key;
 *   2. resolveMode: the command word, -m and the file's "mode" must agree;
 *   3. checkModeScope: settings of the other mode are errors (or, under a Go
 *      key name, warnings: Go files carried them for both modes);
 *   4. readSettings: each setting in turn, ?? its default (config/defaults.ts),
 *      checked by config/validate.ts;
 *   5. freeze: any problem ⇒ no Config; else the Config, deep-frozen.
 * Every problem goes to the caller's `problems` (so those of argv parsing and
 * those found here are reported together), each naming the flag or file key,
 * what was expected and what was given; cli/args.ts throws them as one
 * UsageError.
 *
 * Differences from the Go project, on purpose: flags beside -c override the
 * file (Go silently ignored them); 0 never silently means "default" for our
 * own key names (for the Go names, where 0 meant "default" in Go, a warning
 * says so); unknown file keys are errors; keys Go had but we do not implement
 * are named in one warning each.
 */
import { FEC_MAX_DATA, FEC_MAX_PARITY, parseFec } from '../dataplane/fec.js'
import { readFileSync, statSync } from 'node:fs'
import { resolve } from 'node:path'
import { DEFAULTS, LIMITS, LOG_FORMATS, LOG_LEVELS, controlPathFor } from './defaults.js'
import { fileNamesOf, goBlank, ignoredWarning, PLACEHOLDER_KEYS, readConfigFile, zeroMeantDefault } from './go-compat.js'
import { show } from './messages.js'
import { defaultStateDir } from '../identity/state-dir.js'
import { keyFromText } from '../identity/key-text.js'
import { PLACEMENTS, type Config, type Mode, type SettingKey } from './schema.js'
import { loadAuthorizedNodes } from '../state/authorized-nodes.js'
import { describeError } from '../errors.js'
import { IPV6_MIN_MTU, readTunAddresses } from './tun-address.js'
import { readAdvertiseRoutes, readApproveRoutes } from './routes.js'
import { checkBool, checkControl, checkDev, checkHostPort, checkInt, checkOneOf, expectString, formatHostPort, type Raw } from './validate.js'

/** A flag's value (string, or boolean for a bool flag) and the flag as typed ("-mtu", "--no-p2p"). */
export interface FlagValue { readonly value: string | boolean, readonly flag: string }

/** What the command line says about a run. */
export interface RunInput {
  /** The mode named by the command word (`server`, `client`), or null when there was none. */
  readonly command: Mode | null
  /** Each setting given as a flag (one value per setting: cli/args.ts rejects conflicting repeats). */
  readonly flags: ReadonlyMap<SettingKey, FlagValue>
  /** -c FILE, if given (relative to env.cwd). */
  readonly configFile: FlagValue | undefined
  /** Go flags for features we do not have, in argv order: one warning per flag spelling. */
  readonly ignoredFlags: ReadonlyArray<{ readonly flag: string, readonly goKey: string, readonly value: unknown }>
}

export interface LoadEnv {
  /** Directory against which relative paths (-c, --control, --key-file) are resolved. */
  readonly cwd: string
  /** The LWT_KEY environment variable (the network key), or undefined when unset. */
  readonly lwtKey?: string | undefined
  /** Network namespace id for the default control path (config/defaults.ts controlPathFor). */
  readonly netnsId: string | null
}

/**
 * Builds the Config of a run. Problems are appended to `problems`; `config`
 * is null when `problems` is non-empty afterwards (including problems the
 * caller had pushed before). Warnings are for the log at start-up.
 */
export function loadConfig (input: RunInput, env: LoadEnv, problems: string[]): { config: Config | null, warnings: string[] } {
  const warnings: string[] = []
  const s = collectSettings(input, env.cwd, problems, warnings)
  const mode = resolveMode(input.command, s, problems)
  checkModeScope(mode, s, problems, warnings)
  const config = readSettings(mode, s, env, problems, warnings)
  return { config: problems.length > 0 ? null : deepFreeze(structuredClone(config as Config)), warnings }
}

/** Step 1's result: where each setting comes from. */
interface Settings {
  readonly flags: ReadonlyMap<SettingKey, FlagValue>
  readonly file: ReadonlyMap<SettingKey, Raw>
  /** The absolute -c path, or null. */
  readonly configFile: string | null
  /** The flag's value if given, else the file's. */
  pick (key: SettingKey): Raw | undefined
  /** How a missing setting is named: `--tun (-t)`, plus its file keys when there is a file. */
  missingName (key: SettingKey, flag: string): string
  /**
   * Reports a required setting as missing, unless the -c file could not be
   * read or parsed: then the file may well hold it, and "missing" would only
   * bury the one real problem.
   */
  missing (problems: string[], message: string): void
}

/** Step 1: warn about ignored Go flags, read the file, and say where each setting comes from. */
function collectSettings (input: RunInput, cwd: string, problems: string[], warnings: string[]): Settings {
  const seenIgnored = new Set<string>()
  for (const f of input.ignoredFlags) {
    if (seenIgnored.has(f.flag)) continue
    seenIgnored.add(f.flag)
    warnings.push(ignoredWarning(f.flag, f.goKey, f.value))
  }
  const cfg = input.configFile
  let file = new Map<SettingKey, Raw>()
  let configFile: string | null = null
  let fileBroken = false
  if (cfg !== undefined) {
    configFile = resolve(cwd, String(cfg.value))
    if (String(cfg.value) === '') problems.push(`${cfg.flag}: expected a config file name, got an empty string`)
    else {
      const read = readConfigFile(configFile, cfg.flag, problems, warnings)
      if (read === null) fileBroken = true
      else file = read
    }
  }
  const flags = input.flags
  return {
    flags,
    file,
    configFile,
    pick (key) {
      const f = flags.get(key)
      if (f !== undefined) return { value: f.value, source: f.flag, from: 'flag', goName: false }
      return file.get(key)
    },
    missingName (key, flag) {
      const inFile = configFile !== null ? ` (or ${fileNamesOf(key).map(n => `"${n}"`).join(' / ')} in ${configFile})` : ''
      return `${flag}${inFile}`
    },
    missing (problems, message) {
      if (!fileBroken) problems.push(message)
    }
  }
}

/** Step 2: the command word, -m and the file's "mode" must each be a mode, and agree. */
function resolveMode (command: Mode | null, s: Settings, problems: string[]): Mode | null {
  const sources: Array<{ mode: unknown, label: string, source: string }> = []
  if (command !== null) sources.push({ mode: command, label: `the ${command} command`, source: command })
  const flag = s.flags.get('mode')
  if (flag !== undefined) sources.push({ mode: flag.value, label: `${flag.flag} ${String(flag.value)}`, source: flag.flag })
  const file = s.file.get('mode')
  if (file !== undefined) sources.push({ mode: file.value, label: `${file.source} ${show(file.value)}`, source: file.source })
  const isMode = (m: unknown): m is Mode => m === 'server' || m === 'client'
  for (const x of sources) {
    if (!isMode(x.mode)) problems.push(`${x.source}: expected server or client, got ${show(x.mode)}`)
  }
  const valid = sources.filter(x => isMode(x.mode))
  if (valid.length > 0) {
    const first = valid[0]!
    const other = valid.find(x => x.mode !== first.mode)
    if (other === undefined) return first.mode as Mode
    problems.push(`${first.label} and ${other.label} conflict: give one mode`)
  } else if (sources.length === 0) {
    s.missing(problems, `no mode: expected the command server or client (or -m server|client${s.configFile !== null ? `, or "mode" in ${s.configFile}` : ''})`)
  }
  return null
}

/** Step 3: a server takes no remote and no p2p; a client takes no maxClients. */
function checkModeScope (mode: Mode | null, s: Settings, problems: string[], warnings: string[]): void {
  if (mode === 'server') {
    const r = s.pick('remote')
    if (r !== undefined && !goBlank(r)) {
      problems.push(`${r.source}: only for client mode, but this is a server (a server has no remote; clients connect to its --listen address)`)
    }
    const pm = s.pick('portMapping')
    if (pm !== undefined) problems.push(`${pm.source}: only for client mode, but this is a server (a client asks its own router for a port mapping)`)
    const p = s.pick('p2p')
    if (p !== undefined) {
      if (p.from === 'file' && p.goName) warnings.push(`${p.source} is ignored in server mode: direct paths are a client setting`)
      else problems.push(`${p.source}: only for client mode, but this is a server (direct paths are chosen by each client)`)
    }
  }
  if (mode === 'client') {
    const m = s.pick('maxClients')
    if (m !== undefined) {
      if (m.from === 'file' && m.goName) warnings.push(`${m.source} is ignored in client mode: it limits clients on a server`)
      else problems.push(`${m.source}: only for server mode, but this is a client`)
    }
    const a = s.pick('authorizedNodes')
    if (a !== undefined) problems.push(`${a.source}: only for server mode, but this is a client (the server decides which nodes are admitted)`)
    const ap = s.pick('approveRoutes')
    if (ap !== undefined) problems.push(`${ap.source}: only for server mode, but this is a client (the server approves the routes clients advertise)`)
    const tcp = s.pick('tcp')
    if (tcp !== undefined) problems.push(`${tcp.source}: only for server mode, but this is a client (a client picks its transport with --transport auto|udp|tcp)`)
    const ci = s.pick('clientIsolation')
    if (ci !== undefined) {
      if (ci.from === 'file' && ci.goName) warnings.push(`${ci.source} is ignored in client mode: isolation is a server setting`)
      else problems.push(`${ci.source}: only for server mode, but this is a client (the server isolates clients)`)
    }
  }
  if (mode === 'server') {
    const ac = s.pick('acceptRoutes')
    if (ac !== undefined) problems.push(`${ac.source}: only for client mode, but this is a server (a server routes to the approved routes of its clients itself)`)
  }
}

/** Step 4: every setting in Config order; a field is null where its value had a problem. */
type Draft = { [K in keyof Config]: Config[K] | null }

function readSettings (mode: Mode | null, s: Settings, env: LoadEnv, problems: string[], warnings: string[]): Draft {
  // One statement per setting, in Config order: problems are listed in this order.
  const listen = readListen(mode, s, problems, warnings)
  const remote = mode === 'client' ? readRemote(s, problems) : null
  if (listen !== null && remote !== null && remote.host.includes(':') && !listen.host.includes(':')) {
    problems.push(`--remote ${formatHostPort(remote.host, remote.port)} is an IPv6 address, but --listen ${formatHostPort(listen.host, listen.port)} binds an IPv4 socket, which cannot reach it: listen on [::] (the default) or give the server's IPv4 address`)
  }
  const { tun, tun6 } = readTun(mode, s, problems)
  const { key, keyFile } = readKey(s, env, problems, warnings)
  const networkName = readNetworkName(s, problems)
  const dev = readDev(s, problems)
  const control = readControl(s, dev, env, problems)
  const mtu = readMtu(s, problems, warnings)
  if (tun6 !== null && mtu !== null && mtu < IPV6_MIN_MTU) problems.push(`the MTU ${mtu} is below ${IPV6_MIN_MTU}, the least IPv6 allows, and --tun has an IPv6 address: raise --mtu to ${IPV6_MIN_MTU} or more, or drop the IPv6 address`)
  const fec = readFec(mode, s, problems, warnings)
  const maxClients = mode === 'server' ? readMaxClients(s, problems, warnings) : DEFAULTS.maxClients
  const p2p = readOptional(mode === 'client' ? s.pick('p2p') : undefined, DEFAULTS.p2p, raw => checkBool(raw, problems))
  const portMapping = readOptional(mode === 'client' ? s.pick('portMapping') : undefined, DEFAULTS.portMapping, raw => checkBool(raw, problems))
  const keepalive = readKeepalive(s, problems, warnings)
  const logLevel = readOptional(s.pick('logLevel'), DEFAULTS.logLevel, raw => checkOneOf(raw, LOG_LEVELS, problems))
  const logFormat = readOptional(s.pick('logFormat'), DEFAULTS.logFormat, raw => checkOneOf(raw, LOG_FORMATS, problems))
  const placement = readOptional(s.pick('placement'), DEFAULTS.placement[mode ?? 'client'], raw => checkOneOf(raw, PLACEMENTS, problems))
  const fastPath = readOptional(s.pick('fastPath'), DEFAULTS.fastPath, raw => checkBool(raw, problems))
  const mssClamp = readOptional(s.pick('mssClamp'), DEFAULTS.mssClamp, raw => checkBool(raw, problems))
  const metrics = readMetrics(s, problems)
  const handshakeWorkers = readOptional(s.pick('handshakeWorkers'), DEFAULTS.handshakeWorkers, raw => raw.value === 'auto'
    ? 'auto'
    : checkInt(raw, 0, LIMITS.handshakeWorkersMax, `"auto" or the handshake pool's threads, 0..${LIMITS.handshakeWorkersMax}`, problems))
  const stateDir = readPath(s.pick('stateDir'), dev === null ? null : defaultStateDir(dev), 'a folder for the node\'s state (default /var/lib/lightweight-tunnel/<dev>)', env, problems)
  const nodeKey = readPath(s.pick('nodeKey'), null, 'a private key file (make one with: lightweight-tunnel genkey > FILE)', env, problems)
  const serverKey = readServerKey(mode, s, env, problems)
  const authorizedNodes = mode === 'server' ? readAuthorizedNodes(s, env, problems) : null
  const advertiseRoutes = readAdvertiseRoutes(s.pick('advertiseRoutes'), tun, problems, tun6)
  const approveRoutes = readApproveRoutes(mode === 'server' ? s.pick('approveRoutes') : undefined, tun, problems, tun6)
  const acceptRoutes = readOptional(mode === 'client' ? s.pick('acceptRoutes') : undefined, DEFAULTS.acceptRoutes, raw => checkBool(raw, problems))
  const clientIsolation = readOptional(mode === 'server' ? s.pick('clientIsolation') : undefined, DEFAULTS.clientIsolation, raw => checkBool(raw, problems))
  const transport = readTransport(mode, s, problems, warnings)
  const tcp = readOptional(mode === 'server' ? s.pick('tcp') : undefined, DEFAULTS.tcp, raw => checkBool(raw, problems))
  const tcpListen = readTcpListen(mode, s, problems)
  const faketcp = readFaketcp(mode, s, listen, problems)
  const faketcpOffload = readOptional(s.pick('faketcpOffload'), DEFAULTS.faketcpOffload, raw => checkBool(raw, problems))
  if (faketcp === true && tcp === true && listen !== null && (tcpListen?.port ?? listen.port) === listen.port) {
    problems.push(`--faketcp and the TCP transport both want TCP port ${listen.port}: move the TCP listener with --tcp-listen HOST:PORT (e.g. 0.0.0.0:443) or turn it off with --no-tcp`)
  }
  return { mode, listen, remote, tun, tun6, key, keyFile, networkName, dev, control, mtu, fec, maxClients, p2p, portMapping, keepalive, logLevel, logFormat, placement, fastPath, mssClamp, metrics, handshakeWorkers, stateDir, nodeKey, serverKey, authorizedNodes, advertiseRoutes, approveRoutes, acceptRoutes, clientIsolation, transport, tcp, tcpListen, faketcp, faketcpOffload }
}

/** faketcp (server): also accept fake TCP, on the TCP port of the (fixed) UDP port's number. */
function readFaketcp (mode: Mode | null, s: Settings, listen: Config['listen'] | null, problems: string[]): boolean | null {
  const f = s.pick('faketcp')
  if (f !== undefined && mode === 'client') problems.push(`${f.source}: only for server mode, but this is a client (a client picks it with --transport faketcp)`)
  const faketcp = readOptional(mode === 'server' ? f : undefined, DEFAULTS.faketcp, raw => checkBool(raw, problems))
  if (faketcp === true && listen !== null && listen.port === 0) problems.push(`${f!.source}: fake TCP listens on the TCP port of the UDP port's number, so --listen needs a fixed port (e.g. --listen 0.0.0.0:9000)`)
  return faketcp
}

/** serverKey (client only): a base64 public key as given, else a file path resolved against the working directory. */
function readServerKey (mode: Mode | null, s: Settings, env: LoadEnv, problems: string[]): string | null {
  const raw = s.pick('serverKey')
  if (raw === undefined) return null
  if (mode === 'server') { problems.push(`${raw.source}: only for client mode, but this is a server (a client pins its server's key)`); return null }
  if (typeof raw.value === 'string' && keyFromText(raw.value) !== null) return raw.value.trim()
  return readPath(raw, null, 'the server\'s public key (base64, 44 characters) or a file holding it', env, problems)
}

/** A file or folder path, resolved against the working directory; `dflt` when absent. */
function readPath<T extends string | null> (raw: Raw | undefined, dflt: T, what: string, env: LoadEnv, problems: string[]): string | T | null {
  if (raw === undefined) return dflt
  if (!expectString(raw, what, problems)) return null
  if (raw.value === '') { problems.push(`${raw.source}: expected ${what}, got an empty string`); return null }
  return resolve(env.cwd, raw.value as string)
}

/**
 * metrics: "HOST:PORT", a bare "PORT" (= 127.0.0.1:PORT: the endpoint has no
 * authentication, so it is never exposed unless the user names a host), or
 * "off" / "" / false (the default: no metrics).
 */
function readMetrics (s: Settings, problems: string[]): Config['metrics'] | null {
  const raw = s.pick('metrics')
  if (raw === undefined || raw.value === '' || raw.value === 'off' || raw.value === false) return null
  let value = raw.value
  if (typeof value === 'number' || (typeof value === 'string' && /^[0-9]+$/.test(value))) value = `127.0.0.1:${String(value)}`
  if (typeof value === 'string' && value.startsWith('localhost:')) value = `127.0.0.1:${value.slice('localhost:'.length)}`
  const before = problems.length
  const hp = checkHostPort({ ...raw, value }, { role: 'listen', minPort: 1 }, problems)
  for (let i = before; i < problems.length; i++) problems[i] = `${problems[i]!} (--metrics takes HOST:PORT or a PORT on 127.0.0.1, e.g. 9100; "off" for none)`
  return hp
}

/** transport (client): auto, udp, tcp or faketcp. */
function readTransport (mode: Mode | null, s: Settings, problems: string[], warnings: string[]): Config['transport'] | null {
  const raw = s.pick('transport')
  if (raw === undefined) return DEFAULTS.transport
  // A Go config's "transport" ("rawtcp", on servers too) is not one of ours: ignored, with the Go key's warning.
  if (raw.from === 'file' && (mode === 'server' || !['auto', 'udp', 'tcp', 'faketcp'].includes(raw.value as string))) {
    warnings.push(ignoredWarning(raw.source, 'transport', raw.value))
    return DEFAULTS.transport
  }
  if (mode === 'server') {
    problems.push(`${raw.source}: only for client mode, but this is a server (a server accepts UDP and TCP; --no-tcp turns TCP off)`)
    return null
  }
  return checkOneOf(raw, ['auto', 'udp', 'tcp', 'faketcp'] as const, problems)
}

/** tcpListen (server): HOST:PORT of the TCP listener; a bare PORT binds the --listen host. */
function readTcpListen (mode: Mode | null, s: Settings, problems: string[]): Config['tcpListen'] | null {
  const raw = s.pick('tcpListen')
  if (raw === undefined || raw.value === '' || raw.value === null) return null
  if (mode !== 'server') {
    problems.push(`${raw.source}: only for server mode, but this is a client (a client connects to the server's TCP port, its --remote port)`)
    return null
  }
  const tcp = s.pick('tcp')
  if (tcp !== undefined && tcp.value === false) {
    problems.push(`${raw.source} and ${tcp.source} conflict: --tcp-listen moves the TCP listener, --no-tcp turns it off; give one`)
    return null
  }
  let value = raw.value
  if (typeof value === 'number' || (typeof value === 'string' && /^[0-9]+$/.test(value))) value = `0.0.0.0:${String(value)}`
  const before = problems.length
  const hp = checkHostPort({ ...raw, value }, { role: 'listen', minPort: 1 }, problems)
  for (let i = before; i < problems.length; i++) problems[i] = `${problems[i]!} (--tcp-listen takes HOST:PORT, e.g. 0.0.0.0:443)`
  return hp
}

/**
 * authorizedNodes: a file name (relative to the working directory), read
 * here too so `check` and a start report its bad lines (FILE:LINE); the
 * daemon reads it again at start and on every SIGHUP. "" / null: off.
 */
function readAuthorizedNodes (s: Settings, env: LoadEnv, problems: string[]): string | null {
  const raw = s.pick('authorizedNodes')
  if (raw === undefined || raw.value === null || raw.value === '') return null
  if (!expectString(raw, 'the file of admitted nodes ("PUBKEY ADDRESS" per line)', problems)) return null
  const file = resolve(env.cwd, raw.value as string)
  try {
    loadAuthorizedNodes(file)
  } catch (err) {
    problems.push(`${raw.source}: ${describeError(err).replace(/\n {2}hint: /, '; ')}`)
  }
  return file
}

/** The default when the setting is absent, else what `check` makes of it. */
/** fec (client): "DATA,PARITY" (the file may also give [DATA, PARITY]), "off" or false: null. */
function readFec (mode: Mode | null, s: Settings, problems: string[], warnings: string[]): Config['fec'] | null {
  const raw = s.pick('fec')
  if (raw !== undefined && mode === 'server') {
    warnings.push(`${raw.source}: ignored on a server (it relays parity unopened); give it to the clients`)
    return null
  }
  if (raw === undefined || raw.value === 'off' || raw.value === false || raw.value === null) return null
  const text = Array.isArray(raw.value) ? raw.value.join(',') : typeof raw.value === 'string' ? raw.value : JSON.stringify(raw.value)
  const r = parseFec(text)
  if (typeof r !== 'string') return r
  problems.push(`${raw.source}: ${r}; give DATA,PARITY: DATA 1..${FEC_MAX_DATA} data messages per group, PARITY 1..${FEC_MAX_PARITY} parity messages after them (e.g. 10,3), or "off"`)
  return null
}

function readOptional<T> (raw: Raw | undefined, dflt: T, check: (raw: Raw) => T | null): T | null {
  return raw === undefined ? dflt : check(raw)
}

function readListen (mode: Mode | null, s: Settings, problems: string[], warnings: string[]): Config['listen'] | null {
  const raw = s.pick('listen')
  const dflt = mode === 'client' ? DEFAULTS.clientListen : DEFAULTS.serverListen
  if (raw === undefined) return dflt
  if (mode === 'client' && raw.from === 'file' && raw.goName) {
    warnings.push(`${raw.source} is ignored in client mode, as in the Go program; use "listen" to choose the client's local address`)
    return dflt
  }
  if (goBlank(raw)) return dflt
  return checkHostPort(raw, { role: 'listen', minPort: mode === 'client' ? 0 : 1 }, problems)
}

function readRemote (s: Settings, problems: string[]): Config['remote'] {
  const raw = s.pick('remote')
  if (raw === undefined || goBlank(raw)) {
    s.missing(problems, `missing ${s.missingName('remote', '--remote (-r)')}: a client needs the server's address as HOST:PORT, e.g. 203.0.113.5:9000`)
    return null
  }
  return checkHostPort(raw, { role: 'remote', minPort: 1 }, problems)
}

function readTun (mode: Mode | null, s: Settings, problems: string[]): { tun: Config['tun'] | null, tun6: Config['tun6'] } {
  const raw = s.pick('tun')
  if (raw === undefined) {
    s.missing(problems, `missing ${s.missingName('tun', '--tun (-t)')}: expected this node's tunnel address as CIDR, e.g. ${mode === 'client' ? '10.0.0.2/24' : '10.0.0.1/24'} (and optionally an IPv6 one after a comma: ${mode === 'client' ? '10.0.0.2/24,fd00:77::2/64' : '10.0.0.1/24,fd00:77::1/64'})`)
    return { tun: null, tun6: null }
  }
  return readTunAddresses(raw, mode, problems)
}

/**
 * The network key, from the first source that gives one (documented in
 * --help and README "The network key"):
 *   1. the command line: -k KEY or --key-file FILE (both: an error);
 *   2. the environment: LWT_KEY;
 *   3. the config file: "key" or "keyFile" / "key_file" (both: an error).
 * -k works, with a warning: argv is readable by every local user (ps,
 * /proc/PID/cmdline). A key file may end in one newline (or CRLF), which is
 * not part of the key; an empty one is an error naming the file. A key file
 * readable by other users is an error (chmod 600 it, as ssh insists for its
 * keys: a network key anyone on the machine can read admits anyone); one
 * readable by its group only is a warning (a deliberate share, e.g. root:lwt 0640).
 */
function readKey (s: Settings, env: LoadEnv, problems: string[], warnings: string[]): { key: string | null, keyFile: string | null } {
  const none = { key: null, keyFile: null }
  const flagKey = s.flags.get('key')
  const flagFile = s.flags.get('keyFile')
  if (flagKey !== undefined && flagFile !== undefined) {
    problems.push(`${flagKey.flag} and ${flagFile.flag} both give the network key: keep one (--key-file keeps it out of ps)`)
    return none
  }
  let raw: Raw | undefined
  let file: Raw | undefined
  if (flagKey !== undefined) raw = s.pick('key')
  else if (flagFile !== undefined) file = s.pick('keyFile')
  else if (env.lwtKey !== undefined) raw = { value: env.lwtKey, source: 'LWT_KEY (environment)', from: 'env', goName: false }
  else {
    raw = s.file.get('key')
    file = s.file.get('keyFile')
    if (raw !== undefined && file !== undefined) {
      problems.push(`${raw.source} and ${file.source} both give the network key: keep one`)
      return none
    }
  }
  let keyFile: string | null = null
  if (file !== undefined) {
    if (!expectString(file, 'the path of a file holding the network key', problems)) return none
    keyFile = resolve(env.cwd, file.value as string)
    const k = readKeyFile(keyFile, file.source, problems, warnings)
    if (k === null) return none
    raw = { value: k, source: `${file.source} ${keyFile}`, from: file.from, goName: false }
  }
  if (raw === undefined) {
    s.missing(problems, `missing ${s.missingName('key', '--key-file FILE, LWT_KEY or --key (-k)')}: expected the network's shared secret (the same on the server and every client); generate one with: lightweight-tunnel -g FILE`)
    return none
  }
  if (!expectString(raw, 'the shared secret as a string', problems)) return none
  const k = raw.value as string
  if (k === '') {
    problems.push(`${raw.source}: expected a non-empty shared secret, got an empty string (there is no unencrypted mode)`)
    return none
  }
  if (flagKey !== undefined) warnings.push(`${raw.source}: a key on the command line is visible to every local user (ps, /proc/PID/cmdline); use --key-file FILE (mode 0600) or the LWT_KEY environment variable instead`)
  if (PLACEHOLDER_KEYS.has(k)) warnings.push(`${raw.source}: this is the Go project's example placeholder key, which anyone can read; generate a random one with: lightweight-tunnel -g FILE`)
  else if ([...k].length < LIMITS.keyWarnBelow) warnings.push(`${raw.source}: the key is only ${[...k].length} characters long; anyone who guesses it can join the network (use 16 or more random characters)`)
  return { key: k, keyFile }
}

/** A key file's key: its text without one trailing newline (LF or CRLF); null after a problem naming `path`. */
function readKeyFile (path: string, source: string, problems: string[], warnings: string[]): string | null {
  let text: string
  let mode: number
  try {
    mode = statSync(path).mode
    text = readFileSync(path, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : (err as Error).message
    problems.push(`${source}: expected a readable file holding the network key, got ${show(path)} (${why})`)
    return null
  }
  if ((mode & 0o004) !== 0) {
    problems.push(`${source}: the key file ${path} is readable by every user (mode ${(mode & 0o777).toString(8)}), so anyone on this machine can join the network; run: chmod 600 ${path}`)
    return null
  }
  if ((mode & 0o040) !== 0) warnings.push(`${source}: the key file ${path} is readable by its group (mode ${(mode & 0o777).toString(8)}); run chmod 600 ${path} unless that is meant`)
  const key = text.replace(/\r?\n$/, '')
  if (key === '') {
    problems.push(`${source}: the key file ${path} is empty; put the network's shared secret in it (generate one with: lightweight-tunnel -g FILE)`)
    return null
  }
  return key
}

/** networkName: any non-empty string (mixed into the psk's salt), or null when absent. */
function readNetworkName (s: Settings, problems: string[]): string | null {
  const raw = s.pick('networkName')
  if (raw === undefined) return null
  if (!expectString(raw, 'a network name (any text, the same on every node)', problems)) return null
  if (raw.value === '') {
    problems.push(`${raw.source}: expected a non-empty network name, got an empty string (leave it out for an unnamed network)`)
    return null
  }
  return raw.value as string
}

function readDev (s: Settings, problems: string[]): string | null {
  const raw = s.pick('dev')
  if (raw === undefined || goBlank(raw)) return DEFAULTS.dev
  return expectString(raw, 'a network device name', problems) ? checkDev(raw.value as string, raw.source, problems) : null
}

/** Default: the per-device, per-namespace socket (null when the device name was bad). */
function readControl (s: Settings, dev: string | null, env: LoadEnv, problems: string[]): string | null {
  const raw = s.pick('control')
  if (raw === undefined) return dev === null ? null : controlPathFor(dev, env.netnsId)
  return expectString(raw, 'a unix socket path', problems) ? checkControl(raw.value as string, raw.source, env.cwd, problems) : null
}

function readMtu (s: Settings, problems: string[], warnings: string[]): number | null {
  const raw = s.pick('mtu')
  if (raw === undefined || raw.value === 'auto') return DEFAULTS.mtu
  if (raw.from === 'file' && raw.value === 0) {
    warnings.push(zeroMeantDefault(raw, DEFAULTS.mtu, ' (write "auto" or leave the key out to say so)'))
    return DEFAULTS.mtu
  }
  return checkInt(raw, LIMITS.mtuMin, LIMITS.mtuMax, `an MTU in bytes, ${LIMITS.mtuMin}..${LIMITS.mtuMax} (576 is the IPv4 minimum; ${LIMITS.mtuMax} the largest packet the dataplane carries), or "auto" for ${DEFAULTS.mtu}`, problems)
}

function readMaxClients (s: Settings, problems: string[], warnings: string[]): number | null {
  const raw = s.pick('maxClients')
  if (raw === undefined) return DEFAULTS.maxClients
  if (raw.from === 'file' && raw.goName && raw.value === 0) {
    warnings.push(zeroMeantDefault(raw, DEFAULTS.maxClients))
    return DEFAULTS.maxClients
  }
  return checkInt(raw, LIMITS.maxClientsMin, LIMITS.maxClientsMax, `the number of clients the server accepts at once, ${LIMITS.maxClientsMin}..${LIMITS.maxClientsMax}`, problems)
}

function readKeepalive (s: Settings, problems: string[], warnings: string[]): number | null {
  const raw = s.pick('keepalive')
  if (raw === undefined) return DEFAULTS.keepalive
  if (raw.from === 'file' && raw.value === 0) {
    warnings.push(zeroMeantDefault(raw, DEFAULTS.keepalive))
    return DEFAULTS.keepalive
  }
  return checkInt(raw, LIMITS.keepaliveMin, LIMITS.keepaliveMax, `seconds between keepalives, ${LIMITS.keepaliveMin}..${LIMITS.keepaliveMax} (longer lets NAT mappings expire)`, problems)
}

function deepFreeze<T> (o: T): T {
  // Typed arrays (an IpPrefix's address bytes) cannot be frozen; nothing writes them.
  if (o !== null && typeof o === 'object' && !ArrayBuffer.isView(o) && !Object.isFrozen(o)) {
    for (const v of Object.values(o as Record<string, unknown>)) deepFreeze(v)
    Object.freeze(o)
  }
  return o
}
