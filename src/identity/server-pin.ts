/**
 * The client's pin of its server's node key (trust on first use, as ssh's
 * known_hosts): the first server key a client sees in an authenticated
 * registration response is written to STATE_DIR/server.pub; every later
 * response must carry the same key. `--server-key BASE64|FILE` (config
 * `serverKey`) pins a key given by the operator instead (server.pub is then
 * neither read nor written). The control plane (control/server-link.ts)
 * asks `check` on every response, before it uses the session; this module
 * does the file I/O (synchronous, rare: once per registration).
 */
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { VpnError } from '../errors.js'
import { fingerprint, keyFromText, keyToText } from './key-text.js'

export const SERVER_PIN_FILE = 'server.pub'

export type PinResult =
  | { ok: true, pinnedNow: boolean }
  | { ok: false, message: string }

/** What the control plane needs: is `key` the server's pinned key (pinning it when nothing is pinned)? */
export interface ServerPin {
  check(key: Uint8Array, serverName: string): PinResult
  /** The pinned key, or null before first contact. */
  readonly pinned: Uint8Array | null
}

function same (a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0
}

/** A pin given by the operator (--server-key): never written anywhere. */
export class GivenPin implements ServerPin {
  constructor (readonly pinned: Uint8Array, readonly source: string) {}
  check (key: Uint8Array, serverName: string): PinResult {
    if (same(key, this.pinned)) return { ok: true, pinnedNow: false }
    return {
      ok: false,
      message: `the server at ${serverName} presented key ${fingerprint(key)}, but this client was given ${fingerprint(this.pinned)} (${this.source}); refusing to register. If the server's key was changed on purpose, give the new one with --server-key`
    }
  }
}

/** Trust on first use, kept in STATE_DIR/server.pub. */
export class FilePin implements ServerPin {
  readonly path: string
  #pinned: Uint8Array | null = null
  #since: Date | null = null

  constructor (stateDir: string) {
    this.path = join(stateDir, SERVER_PIN_FILE)
    if (existsSync(this.path)) {
      const key = keyFromText(readFileSync(this.path, 'utf8'))
      if (key === null) {
        throw new VpnError('ERR_NODE_KEY', `${this.path} is malformed: expected the server's public key as one line of base64 (44 characters)`, {
          hint: `delete it to pin the server's key again at the next registration, or give the key with --server-key`
        })
      }
      this.#pinned = key
      this.#since = statSync(this.path).mtime
    }
  }

  get pinned (): Uint8Array | null { return this.#pinned }

  check (key: Uint8Array, serverName: string): PinResult {
    if (this.#pinned === null) {
      writeFileSync(this.path, keyToText(key) + '\n', { mode: 0o600 })
      this.#pinned = new Uint8Array(key)
      this.#since = new Date()
      return { ok: true, pinnedNow: true }
    }
    if (same(key, this.#pinned)) return { ok: true, pinnedNow: false }
    const date = this.#since === null ? 'an earlier run' : this.#since.toISOString().slice(0, 10)
    return {
      ok: false,
      message: `the server at ${serverName} presented key ${fingerprint(key)}, but this client pinned ${fingerprint(this.#pinned)} in ${this.path} on ${date}; refusing to register. If the server's key was changed on purpose, delete ${this.path} or pass --server-key`
    }
  }
}

/** The pin for a client: --server-key (base64 text, or a file holding it) when given, else the state dir's server.pub. */
export function serverPin (stateDir: string, serverKey: string | null): ServerPin {
  if (serverKey === null) return new FilePin(stateDir)
  const direct = keyFromText(serverKey)
  if (direct !== null) return new GivenPin(direct, '--server-key')
  let text: string
  try {
    text = readFileSync(serverKey, 'utf8')
  } catch (err) {
    throw new VpnError('ERR_NODE_KEY', `cannot read the server key ${serverKey}: ${(err as Error).message}`, {
      cause: err, hint: '--server-key takes the server\'s public key (base64, as "lightweight-tunnel status" on the server shows it) or a file holding it'
    })
  }
  const key = keyFromText(text)
  if (key === null) {
    throw new VpnError('ERR_NODE_KEY', `the server key ${serverKey} is malformed: expected one line with a base64 X25519 public key (44 characters)`)
  }
  return new GivenPin(key, serverKey)
}
