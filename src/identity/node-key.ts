/**
 * The node's static key pair (its identity in every handshake): read from
 * --node-key FILE (config `node_key`), or from `node.key` in the state
 * directory, created there on first start. The file holds the private key
 * as one line of base64 (identity/key-text.ts), mode 0600; like ssh, a key
 * file that group or others may read is refused. The daemon loads it once
 * at start (loadNodeKey) and hands the StaticKey to the control plane.
 */
import { closeSync, existsSync, fstatSync, openSync, readFileSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { VpnError } from '../errors.js'
import { generateStaticKey, staticKey, type StaticKey } from '../crypto/noise.js'
import { keyFromText, keyToText } from './key-text.js'

export const NODE_KEY_FILE = 'node.key'

/** Reads a private key file: refuses group/other-readable files and malformed content, naming the file. */
export function readKeyFile (path: string): StaticKey {
  let fd: number
  try {
    fd = openSync(path, 'r')
  } catch (err) {
    throw new VpnError('ERR_NODE_KEY', `cannot read the node key ${path}: ${(err as Error).message}`, {
      cause: err, hint: 'give an existing key file (lightweight-tunnel genkey > FILE; chmod 600 FILE), or omit --node-key to use the state directory\'s'
    })
  }
  try {
    const st = fstatSync(fd)
    if (!st.isFile()) throw new VpnError('ERR_NODE_KEY', `the node key ${path} is not a regular file`)
    if ((st.mode & 0o077) !== 0) {
      throw new VpnError('ERR_NODE_KEY', `the node key ${path} is readable by other users (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}); refusing to use it`, {
        hint: `run: chmod 600 ${path}`
      })
    }
    const text = readFileSync(fd, 'utf8')
    const secret = keyFromText(text)
    if (secret === null) {
      throw new VpnError('ERR_NODE_KEY', `the node key ${path} is malformed: expected one line with a base64 X25519 private key (44 characters, as lightweight-tunnel genkey or wg genkey print)`, {
        hint: 'make a new one with: lightweight-tunnel genkey > FILE'
      })
    }
    return staticKey(secret)
  } finally {
    closeSync(fd)
  }
}

/** Writes a new key file (fails if it exists), mode 0600 whatever the umask. */
export function writeNewKeyFile (path: string, key: StaticKey): void {
  const fd = openSync(path, 'wx', 0o600)
  try {
    writeSync(fd, keyToText(key.secret) + '\n')
  } finally {
    closeSync(fd)
  }
}

/**
 * The node's key: `nodeKeyFile` when given, else STATE_DIR/node.key, created
 * when missing. `created` says a new key was made (the daemon logs it).
 */
export function loadNodeKey (stateDir: string, nodeKeyFile: string | null): { key: StaticKey, path: string, created: boolean } {
  if (nodeKeyFile !== null) return { key: readKeyFile(nodeKeyFile), path: nodeKeyFile, created: false }
  const path = join(stateDir, NODE_KEY_FILE)
  if (existsSync(path)) return { key: readKeyFile(path), path, created: false }
  const key = generateStaticKey()
  try {
    writeNewKeyFile(path, key)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return { key: readKeyFile(path), path, created: false } // another start won the race
    throw new VpnError('ERR_NODE_KEY', `cannot create the node key ${path}: ${(err as Error).message}`, {
      cause: err, hint: 'give a writable --state-dir DIR, or an existing key with --node-key FILE'
    })
  }
  return { key, path, created: true }
}
