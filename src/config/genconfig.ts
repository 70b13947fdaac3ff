/**
 * `lightweight-tunnel -g FILE`: writes an example server config to FILE and a
 * matching client config to FILE.client. Both share one freshly generated
 * random key, are plain JSON (no comments) that `-c` loads back unchanged, and
 * are created with mode 0600 because they hold the key.
 *
 * Unlike the Go project's generator (a fixed "CHANGE-THIS…" key, `mtu: 0`),
 * every value written is valid as is; only the client's "remote" placeholder
 * must be edited before the client can reach a real server. The tunnel
 * addresses are IPv4 and IPv6: the IPv6 network is a unique local /64 with a
 * random 40-bit global id (RFC 4193 §3.2), so two generated networks never
 * share one.
 */
import { formatHostPort } from './validate.js'
import { randomBytes } from 'node:crypto'
import { chmodSync, statSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { VpnError } from '../errors.js'
import { DEFAULTS } from './defaults.js'

/** Placeholder server address in the generated client file (RFC 2606 name; edit it). */
export const EXAMPLE_REMOTE = 'vpn.example.com:9000'

/** 32 random bytes, base64url (43 characters): 256 bits of entropy. */
export function generateKey (): string {
  return randomBytes(32).toString('base64url')
}

/** A random unique local /64 (RFC 4193: fd + 40 random bits + subnet 0), as text without the length: "fd12:3456:789a::". */
export function randomUlaNetwork (): string {
  const b = randomBytes(5)
  const hex = (hi: number, lo: number): string => ((hi << 8) | lo).toString(16)
  return `${hex(0xfd, b[0]!)}:${hex(b[1]!, b[2]!)}:${hex(b[3]!, b[4]!)}::`
}

/** The two example configs, as the objects written to disk (our own key names). */
export function exampleConfigs (key: string, ula: string = randomUlaNetwork()): { server: Record<string, unknown>, client: Record<string, unknown> } {
  return {
    server: {
      mode: 'server',
      listen: formatHostPort(DEFAULTS.serverListen.host, DEFAULTS.serverListen.port),
      tun: `10.0.0.1/24,${ula}1/64`,
      key,
      dev: DEFAULTS.dev,
      mtu: DEFAULTS.mtu,
      maxClients: DEFAULTS.maxClients,
      keepalive: DEFAULTS.keepalive,
      logLevel: DEFAULTS.logLevel,
      advertiseRoutes: [],
      approveRoutes: {},
      clientIsolation: DEFAULTS.clientIsolation
    },
    client: {
      mode: 'client',
      remote: EXAMPLE_REMOTE,
      tun: `10.0.0.2/24,${ula}2/64`,
      key,
      dev: DEFAULTS.dev,
      mtu: DEFAULTS.mtu,
      p2p: DEFAULTS.p2p,
      keepalive: DEFAULTS.keepalive,
      logLevel: DEFAULTS.logLevel,
      advertiseRoutes: [],
      acceptRoutes: DEFAULTS.acceptRoutes
    }
  }
}

export interface GeneratedConfigs {
  readonly serverFile: string
  readonly clientFile: string
}

/**
 * Writes FILE (server) and FILE.client (client), mode 0600. Refuses, before
 * writing anything, when either file exists and is not empty (it may hold a
 * key in use); an existing empty file (e.g. from mktemp) is replaced.
 */
export function writeExampleConfigs (file: string, key: string = generateKey()): GeneratedConfigs {
  const serverFile = file
  const clientFile = `${file}.client`
  checkFolder(dirname(file))
  const exists = new Set<string>()
  for (const f of [serverFile, clientFile]) {
    let size: number | null = null
    try {
      const st = statSync(f)
      if (!st.isFile()) throw new VpnError('ERR_CONFIG_INVALID', `cannot write ${f}: it exists and is not a regular file`)
      size = st.size
    } catch (err) {
      if (err instanceof VpnError) throw err
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new VpnError('ERR_CONFIG_INVALID', `cannot write ${f}: ${(err as Error).message}`, { cause: err })
      }
    }
    if (size !== null && size > 0) {
      throw new VpnError('ERR_CONFIG_INVALID', `not overwriting ${f}: it already exists and may hold a key in use`, {
        hint: 'remove it or pass another file name to -g'
      })
    }
    if (size !== null) exists.add(f)
  }
  const { server, client } = exampleConfigs(key)
  for (const [f, obj] of [[serverFile, server], [clientFile, client]] as const) {
    try {
      // An existing (empty) file keeps its old mode: tighten it before the key goes in.
      if (exists.has(f)) chmodSync(f, 0o600)
      writeFileSync(f, JSON.stringify(obj, null, 2) + '\n', { mode: 0o600, flag: exists.has(f) ? 'w' : 'wx' })
    } catch (err) {
      throw new VpnError('ERR_CONFIG_INVALID', `cannot write ${f}: ${(err as Error).message}`, { cause: err })
    }
  }
  return { serverFile, clientFile }
}

/** The folder -g writes into must exist and be a folder: say which, and how to fix it, rather than a raw ENOENT. */
function checkFolder (dir: string): void {
  let isDir: boolean
  try {
    isDir = statSync(dir).isDirectory()
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') {
      throw new VpnError('ERR_CONFIG_INVALID', `cannot write the example configs: the folder ${dir} does not exist`, { hint: `create it first (mkdir -p ${dir}) or give -g a path in an existing folder` })
    }
    if (code === 'ENOTDIR') {
      throw new VpnError('ERR_CONFIG_INVALID', `cannot write the example configs: ${dir} is not a folder (a part of the path is a file)`, { hint: 'give -g a path in an existing folder' })
    }
    throw new VpnError('ERR_CONFIG_INVALID', `cannot write the example configs into ${dir}: ${(err as Error).message}`, { cause: err })
  }
  if (!isDir) throw new VpnError('ERR_CONFIG_INVALID', `cannot write the example configs: ${dir} is not a folder`, { hint: 'give -g a path in an existing folder' })
}
