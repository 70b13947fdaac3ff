/**
 * Finding running daemons without flags: every daemon's default control
 * socket is CONTROL_DIR/<dev>.<netns-id>.sock (config/defaults.ts
 * controlPathFor), so listing that directory finds them.
 *
 *   status, ping, netcheck (no --dev/--control): the sockets of this network
 *     namespace (<netns-id> = ours);
 *   status --all: every socket in the directory, whatever its namespace (a
 *     unix socket is reached through the file system, so this works across
 *     network namespaces).
 *
 * Sockets nobody listens on (a daemon that was killed) are skipped. A daemon
 * started with --control elsewhere is not found: name it with --control.
 */
import { readdirSync, lstatSync } from 'node:fs'
import { join } from 'node:path'
import { connect } from 'node:net'
import { CONTROL_DIR, currentNetnsId } from '../config/defaults.js'
import { VpnError } from '../errors.js'

export interface FoundDaemon {
  /** The device name the socket is named after. */
  dev: string
  /** The network namespace id in the name, or null for a name without one. */
  netnsId: string | null
  path: string
}

/** Sockets in `dir` named like default control sockets; `netnsId` non-null keeps only that namespace's. Sorted by name. */
export function listSockets (dir: string, netnsId: string | null): FoundDaemon[] {
  let names: string[]
  try { names = readdirSync(dir) } catch { return [] }
  const out: FoundDaemon[] = []
  for (const name of names.sort()) {
    const m = /^(.+?)(?:\.([0-9]+))?\.sock$/.exec(name)
    if (m === null) continue
    const path = join(dir, name)
    try { if (!lstatSync(path).isSocket()) continue } catch { continue }
    const ns = m[2] ?? null
    if (netnsId !== null && ns !== netnsId) continue
    out.push({ dev: m[1]!, netnsId: ns, path })
  }
  return out
}

/** Whether a daemon answers connections on `path` (a refused or missing socket is a dead daemon's). Permission errors count as alive. */
export function listening (path: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path)
    const done = (v: boolean): void => { clearTimeout(t); s.destroy(); resolve(v) }
    const t = setTimeout(() => done(true), timeoutMs)
    s.once('connect', () => done(true))
    s.once('error', (err: NodeJS.ErrnoException) => done(err.code === 'EACCES' || err.code === 'EPERM'))
  })
}

/** The live daemons: this namespace's (netnsId given) or all (null). */
export async function findDaemons (netnsId: string | null, dir = CONTROL_DIR): Promise<FoundDaemon[]> {
  const found = listSockets(dir, netnsId)
  const alive = await Promise.all(found.map(d => listening(d.path)))
  return found.filter((_, i) => alive[i])
}

/**
 * The one daemon a command talks to: `control` when given, else the only
 * live daemon in this network namespace. None: ERR_DAEMON_NOT_RUNNING;
 * several: ERR_USAGE naming them (pass --dev).
 */
export async function oneDaemon (control: string | null, command: string, netnsId: string | null = currentNetnsId()): Promise<{ path: string, dev: string }> {
  if (control !== null) return { path: control, dev: devOf(control) }
  const found = await findDaemons(netnsId)
  if (found.length === 1) return { path: found[0]!.path, dev: found[0]!.dev }
  if (found.length === 0) throw noDaemon(netnsId)
  throw new VpnError('ERR_USAGE', `${found.length} daemons run in this network namespace (${found.map(d => d.dev).join(', ')}): say which with --dev NAME`, {
    hint: `e.g. lightweight-tunnel ${command} --dev ${found[0]!.dev}`
  })
}

export function noDaemon (netnsId: string | null): VpnError {
  return new VpnError('ERR_DAEMON_NOT_RUNNING', `no lightweight-tunnel daemon is running in this network namespace (no live control socket ${CONTROL_DIR}/*${netnsId === null ? '' : `.${netnsId}`}.sock)`, {
    hint: 'start one, run this in the daemon\'s namespace (ip netns exec NS ...), or name its socket with --control PATH; status --all lists the daemons of every namespace'
  })
}

/** The device name a control socket path is named after ("lwt0" from ".../lwt0.4026531840.sock"), else the file name. */
export function devOf (path: string): string {
  const name = path.slice(path.lastIndexOf('/') + 1)
  return /^(.+?)(?:\.[0-9]+)?\.sock$/.exec(name)?.[1] ?? name
}
