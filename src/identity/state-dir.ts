/**
 * The state directory (--state-dir, config `state_dir`; default
 * /var/lib/lightweight-tunnel/<dev>): where a node keeps what must outlive
 * a restart — node.key (identity/node-key.ts), server.pub (the client's
 * pinned server key), registry.json (the server's registry), peers.json
 * (the client's address cache). Created 0700 on first use (parents too);
 * the daemon calls ensureStateDir once at start, before reading any file.
 */
import { chmodSync, mkdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { VpnError } from '../errors.js'

export const STATE_DIR_BASE = '/var/lib/lightweight-tunnel'

/** The default state directory of a device. */
export function defaultStateDir (dev: string): string {
  return join(STATE_DIR_BASE, dev)
}

/** Creates `dir` (mode 0700) unless it exists; throws ERR_STATE_DIR naming the path and --state-dir when it cannot. */
export function ensureStateDir (dir: string): void {
  const hint = 'give a writable folder with --state-dir DIR (config "state_dir"), or run as a user that may create it'
  try {
    if (mkdirSync(dir, { recursive: true, mode: 0o700 }) !== undefined) chmodSync(dir, 0o700) // whatever the umask
  } catch (err) {
    throw new VpnError('ERR_STATE_DIR', `cannot create the state directory ${dir}: ${(err as Error).message}`, { cause: err, hint })
  }
  let st
  try { st = statSync(dir) } catch (err) {
    throw new VpnError('ERR_STATE_DIR', `cannot read the state directory ${dir}: ${(err as Error).message}`, { cause: err, hint })
  }
  if (!st.isDirectory()) throw new VpnError('ERR_STATE_DIR', `the state directory ${dir} is not a directory`, { hint })
}
