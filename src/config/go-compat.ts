/**
 * The JSON file named by -c, and compatibility with the Go project's files.
 *
 * A file may use our key names (the Config fields, SETTINGS in schema.ts) or
 * the Go project's (GO_KEYS); both map to the same setting, and giving one
 * setting under both names with different values is a conflict. Keys Go had
 * but this implementation does not (GO_IGNORED_KEYS) give one warning each;
 * any other key is an error with a did-you-mean. The Go program's quirks
 * (empty strings for unset keys, 0 for "the default") are recognised by
 * goBlank() and zeroMeantDefault(), which config/load.ts applies per setting.
 *
 * Flow: readConfigFile(file) → Map<setting, Raw> (+ problems, warnings) →
 * config/load.ts takes flag ?? file for each setting. cli/options.ts names the
 * Go flags for ignored features with their GO_IGNORED_KEYS key; cli/help.ts
 * lists GO_IGNORED_KEYS.
 */
import { readFileSync, statSync } from 'node:fs'
import { closest, show } from './messages.js'
import { SETTINGS, type SettingKey } from './schema.js'
import type { Raw } from './validate.js'

/** The Go project's file key names and the setting each one is. */
export const GO_KEYS: Readonly<Record<string, SettingKey>> = Object.freeze({
  local_addr: 'listen',
  remote_addr: 'remote',
  tunnel_addr: 'tun',
  tun_name: 'dev',
  max_clients: 'maxClients',
  p2p_enabled: 'p2p',
  routes: 'advertiseRoutes',
  client_isolation: 'clientIsolation'
})

/** Values of our "transport" key; any other value is the Go program's. */
const OUR_TRANSPORTS: readonly unknown[] = ['auto', 'udp', 'tcp', 'faketcp']

/** File key → setting: our names first, then the Go project's (this order is printed in messages). */
const FILE_KEYS = new Map<string, { readonly key: SettingKey, readonly go: boolean }>()
for (const k of SETTINGS) FILE_KEYS.set(k, { key: k, go: false })
/** Our snake_case spellings of the newer settings (as the issue and the docs write them). */
FILE_KEYS.set('key_file', { key: 'keyFile', go: false })
FILE_KEYS.set('network_name', { key: 'networkName', go: false })
FILE_KEYS.set('advertise_routes', { key: 'advertiseRoutes', go: false })
FILE_KEYS.set('approve_routes', { key: 'approveRoutes', go: false })
FILE_KEYS.set('accept_routes', { key: 'acceptRoutes', go: false })
FILE_KEYS.set('port_mapping', { key: 'portMapping', go: false })
FILE_KEYS.set('tcp_listen', { key: 'tcpListen', go: false })
FILE_KEYS.set('faketcp_offload', { key: 'faketcpOffload', go: false })
for (const [k, key] of Object.entries(GO_KEYS)) FILE_KEYS.set(k, { key, go: true })

/**
 * Go config keys (and flags) this implementation deliberately ignores, and why.
 * Each present key gives one warning.
 */
export const GO_IGNORED_KEYS: Readonly<Record<string, string>> = Object.freeze({
  send_queue_size: 'queues are fixed-size rings sized by the daemon',
  recv_queue_size: 'queues are fixed-size rings sized by the daemon',
  multi_client: 'the server always accepts up to max_clients clients; set max_clients to 1 to allow a single client',
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
  timeout: 'connection set-up has its own retry timers',
  transport: 'the transport is chosen with --transport (auto: UDP, then TCP when UDP is blocked; faketcp: raw TCP segments as the Go program sent, with --faketcp on the server)',
  // Removed from the Go program before its last release, still shown in its README.
  broadcast_throttle_ms: 'it was removed from the Go program too',
  enable_incremental_update: 'it was removed from the Go program too',
  max_peer_info_batch_size: 'it was removed from the Go program too'
})

/** The Go keys that together are the setting fec (goFecSetting). */
const GO_FEC_KEYS = ['fec_data', 'fec_parity'] as const

/** Go flags whose meaning exists here under another spelling (the warning says which). */
const GO_RESPELLED_FLAGS: Readonly<Record<string, string>> = Object.freeze({
  fec_data: 'FEC is one flag here: --fec DATA,PARITY (e.g. --fec 10,3)',
  fec_parity: 'FEC is one flag here: --fec DATA,PARITY (e.g. --fec 10,3)'
})

/**
 * The Go keys fec_data and fec_parity together are the setting fec
 * ("DATA,PARITY"); both 0 (the Go program's "off") is off; one without the
 * other is a problem naming the fix.
 */
function goFecSetting (file: string, goFec: Partial<Record<'fec_data' | 'fec_parity', unknown>>, settings: Map<SettingKey, Raw>, problems: string[]): void {
  const d = goFec.fec_data
  const p = goFec.fec_parity
  if (d === undefined && p === undefined) return
  if (d === undefined || p === undefined) {
    problems.push(`${file}: "${d === undefined ? 'fec_parity' : 'fec_data'}" without "${d === undefined ? 'fec_data' : 'fec_parity'}"; give both (e.g. "fec_data": 10, "fec_parity": 3) or "fec": "10,3"`)
    return
  }
  const value = (d === 0 || d === '0') && (p === 0 || p === '0') ? 'off' : `${String(d)},${String(p)}`
  const raw: Raw = { value, source: `${file}: "fec_data"/"fec_parity"`, from: 'file', goName: true }
  const prev = settings.get('fec')
  if (prev !== undefined) {
    if (prev.value !== value) problems.push(`${prev.source} and ${raw.source} conflict: both set FEC, to ${show(prev.value)} and ${show(value)}; keep one`)
    return
  }
  settings.set('fec', raw)
}

/** Placeholder keys printed by the Go project's generator and templates (accepted with a warning). */
export const PLACEHOLDER_KEYS: ReadonlySet<string> = new Set(['CHANGE-THIS-TO-YOUR-SECRET-KEY', 'CHANGE-ME-use-openssl-rand-base64-32-to-generate'])

/** The names a setting has in a file (ours, then Go's), for "missing" messages. */
export function fileNamesOf (key: SettingKey): string[] {
  return [...FILE_KEYS].filter(([, v]) => v.key === key).map(([k]) => k)
}

/**
 * A Go-named key holding "": the Go program's generator and templates wrote
 * empty strings for settings left unset (remote_addr in a server file,
 * local_addr, tun_name), so config/load.ts treats such a key as absent.
 */
export function goBlank (raw: Raw): boolean {
  return raw.from === 'file' && raw.goName && raw.value === ''
}

/** The warning for a file's 0 that the Go program read as "the default". */
export function zeroMeantDefault (raw: Raw, using: number, advice = ''): string {
  return `${raw.source}: 0 meant "the default" in the Go program; using ${using}${advice}`
}

/** The warning for an ignored Go setting: `what` is a flag as typed or a file key. */
export function ignoredWarning (what: string, goKey: string, value: unknown): string {
  let why = GO_IGNORED_KEYS[goKey] ?? GO_RESPELLED_FLAGS[goKey] ?? 'it has no equivalent here'
  if (goKey === 'multi_client' && value === false) why = `it is set to false, but ${why}`
  return `${what} is a Go lightweight-tunnel setting that is ignored: ${why}`
}

function suggestKey (k: string): string {
  const best = closest(k, [...FILE_KEYS.keys(), ...GO_FEC_KEYS, ...Object.keys(GO_IGNORED_KEYS)])
  return best === null ? '' : ` (did you mean "${best}"?)`
}

/**
 * Reads the JSON object in `file` (flag: the -c spelling, for messages) into
 * one Raw per setting. Every problem (unreadable, not JSON, not an object,
 * unknown key, one setting under two names with different values) is pushed
 * to `problems`; ignored Go keys and a world-readable file holding the key
 * are pushed to `warnings`. An unreadable or malformed file (not JSON, not an
 * object) gives null: the caller then knows the file's settings are unknown,
 * rather than absent.
 */
export function readConfigFile (file: string, flag: string, problems: string[], warnings: string[]): Map<SettingKey, Raw> | null {
  const settings = new Map<SettingKey, Raw>()
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : (err as Error).message
    problems.push(`${flag}: expected a readable JSON config file, got ${show(file)} (${why})`)
    return null
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1)
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch (err) {
    problems.push(`${file}: expected JSON, got a syntax error ${describeJsonError(text, (err as Error).message)}`)
    return null
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    problems.push(`${file}: expected a JSON object ({ "mode": ..., ... }), got ${Array.isArray(data) ? 'an array' : show(data)}`)
    return null
  }
  const unknown: string[] = []
  const goFec: Partial<Record<'fec_data' | 'fec_parity', unknown>> = {}
  for (const [k, v] of Object.entries(data as Record<string, unknown>)) {
    if (k === 'fec_data' || k === 'fec_parity') { goFec[k] = v; continue }
    // "transport" is ours (auto|udp|tcp|faketcp) and the Go program's ("rawtcp"...): a Go value is ignored, as before.
    const known = k === 'transport' && !OUR_TRANSPORTS.includes(v as string) ? undefined : FILE_KEYS.get(k)
    if (known === undefined) {
      if (Object.hasOwn(GO_IGNORED_KEYS, k)) warnings.push(ignoredWarning(`${file}: "${k}"`, k, v))
      else unknown.push(k)
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
  goFecSetting(file, goFec, settings, problems)
  if (unknown.length > 0) {
    const valid = [...FILE_KEYS.keys(), ...GO_FEC_KEYS].join(', ')
    for (const k of unknown) problems.push(`${file}: unknown key ${show(k)}${suggestKey(k)}; expected one of ${valid}`)
  }
  try {
    const st = statSync(file)
    if ((st.mode & 0o004) !== 0 && settings.has('key')) {
      warnings.push(`${file} is readable by every user and holds the key; run: chmod 600 ${file}`)
    }
  } catch { /* read above succeeded; a race here is harmless */ }
  return settings
}

/**
 * "at line L, column C: <reason>" for a JSON.parse error on `text`. V8 gives a
 * character offset ("… in JSON at position 42"; newer V8 adds "(line 3
 * column 5)"); an editor wants a line and a column (1-based). Input that ends
 * too early is placed at its end.
 */
export function describeJsonError (text: string, message: string): string {
  let pos = text.length
  const lc = /\(line (\d+) column (\d+)\)/.exec(message)
  const at = /at position (\d+)/.exec(message)
  if (at !== null) pos = Number(at[1])
  let line: number
  let col: number
  if (lc !== null) {
    line = Number(lc[1]); col = Number(lc[2])
  } else {
    const before = text.slice(0, pos)
    line = before.split('\n').length
    col = pos - (before.lastIndexOf('\n') + 1) + 1
  }
  const reason = message.replace(/,? ?".*" is not valid JSON$/s, '').replace(/ in JSON at position \d+.*$/s, '').replace(/ \(line \d+ column \d+\)/, '').trim()
  const end = pos >= text.length ? ' (the end of the file: a closing } or " is probably missing)' : ''
  return `at line ${line}, column ${col}${end}: ${reason === '' ? 'not valid JSON' : reason}`
}
