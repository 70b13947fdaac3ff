/**
 * Low-level network-namespace helpers for the lab: namespaces, veth pairs,
 * bridges, addresses, routes, sysctls and link counters. Thin wrappers over
 * `ip` (iproute2) and `sysctl`, each failing with an error that names the
 * command (exec.ts `CommandError`).
 *
 * Ownership and cleanup:
 * - Every namespace made with `createNs` is recorded in a process-wide
 *   registry until `deleteNs` removes it.
 * - Devices are only ever created *inside* lab namespaces (veth pairs are
 *   born directly in their target namespaces), so deleting the namespaces
 *   removes every device too; nothing is left in the root namespace.
 * - While the registry is non-empty, a `process.on('exit')` hook and
 *   SIGINT/SIGTERM/SIGHUP/SIGALRM handlers synchronously kill the processes
 *   inside the namespaces and delete them. The signal handlers then re-raise
 *   the signal. A caller that wants to handle those signals itself (the demo
 *   does a graceful stop) calls `setSignalCleanup(false)`.
 *
 * Names: lab namespaces start with `LAB_PREFIX` so that CI can remove
 * leftovers of a killed run (`.ci/run`). Device names must be ≤ 15 bytes.
 */
import { execFileSync } from 'node:child_process'
import { liveProcesses, run, runIn, sleep } from './exec.js'

/** Every lab namespace name starts with this. */
export const LAB_PREFIX = 'lwt-'
/** Linux IFNAMSIZ - 1. */
export const MAX_DEVICE_NAME = 15

const registry = new Set<string>()

/** Namespaces this process created and has not deleted yet. */
export function registeredNamespaces (): readonly string[] {
  return [...registry]
}

export function checkDeviceName (name: string): string {
  if (name.length === 0 || name.length > MAX_DEVICE_NAME || !/^[A-Za-z0-9_.-]+$/.test(name)) {
    throw new Error(`invalid device name "${name}": 1-${MAX_DEVICE_NAME} characters of [A-Za-z0-9_.-]`)
  }
  return name
}

// ---------------------------------------------------------------------------
// Namespaces

/** Creates namespace `name` (registered for cleanup) and brings its loopback up. */
export async function createNs (name: string): Promise<string> {
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) throw new Error(`invalid namespace name "${name}"`)
  await run('ip', ['netns', 'add', name])
  registry.add(name)
  installExitHooks()
  try {
    await run('ip', ['-n', name, 'link', 'set', 'lo', 'up'])
  } catch (err) {
    await deleteNs(name).catch(() => {})
    throw err
  }
  return name
}

/** Pids of the processes whose network namespace is `ns`. */
export async function nsPids (ns: string): Promise<number[]> {
  try {
    const { stdout } = await run('ip', ['netns', 'pids', ns])
    return parsePids(stdout)
  } catch {
    return []
  }
}

function parsePids (text: string): number[] {
  return text.split(/\s+/).filter((s) => /^\d+$/.test(s)).map(Number).filter((p) => p !== process.pid)
}

/**
 * Kills every process in `ns`: SIGTERM, then SIGKILL for those still alive
 * after `graceMs`.
 */
export async function killNsProcesses (ns: string, graceMs = 1000): Promise<void> {
  let pids = await nsPids(ns)
  if (pids.length === 0) return
  for (const pid of pids) { try { process.kill(pid, 'SIGTERM') } catch {} }
  const deadline = Date.now() + graceMs
  while (Date.now() < deadline) {
    await sleep(50)
    pids = await nsPids(ns)
    if (pids.length === 0) return
  }
  for (const pid of pids) { try { process.kill(pid, 'SIGKILL') } catch {} }
  // Give the kernel a moment to reap them so the namespace can go away cleanly.
  const reapDeadline = Date.now() + 1000
  while (Date.now() < reapDeadline && (await nsPids(ns)).length > 0) await sleep(20)
}

/** Kills the processes in `ns` and deletes it. Does nothing if it is already gone. */
export async function deleteNs (ns: string, graceMs = 1000): Promise<void> {
  if (await nsExists(ns)) {
    await killNsProcesses(ns, graceMs)
    try {
      await run('ip', ['netns', 'del', ns])
    } catch (err) {
      if (await nsExists(ns)) throw err
    }
  }
  registry.delete(ns)
  if (registry.size === 0) removeSignalHandlers()
}

export async function nsExists (ns: string): Promise<boolean> {
  return (await listNamespaces()).includes(ns)
}

/** Names of all namespaces on the machine (optionally only those starting with `prefix`). */
export async function listNamespaces (prefix = ''): Promise<string[]> {
  const { stdout } = await run('ip', ['netns', 'list'])
  return parseNsList(stdout).filter((n) => n.startsWith(prefix))
}

function parseNsList (text: string): string[] {
  // Lines look like "name" or "name (id: 3)".
  return text.split('\n').map((l) => l.trim().split(/\s+/)[0] ?? '').filter((n) => n !== '')
}

// ---------------------------------------------------------------------------
// Links, addresses, routes

export interface VethOptions { mtu?: number }

/**
 * Creates a veth pair with end `devA` in `nsA` and end `devB` in `nsB`, both
 * up. Both ends are created directly in their namespaces.
 */
export async function addVeth (nsA: string, devA: string, nsB: string, devB: string, opts: VethOptions = {}): Promise<void> {
  checkDeviceName(devA)
  checkDeviceName(devB)
  await run('ip', ['link', 'add', devA, 'netns', nsA, 'type', 'veth', 'peer', 'name', devB, 'netns', nsB])
  if (opts.mtu !== undefined) {
    await setMtu(nsA, devA, opts.mtu)
    await setMtu(nsB, devB, opts.mtu)
  }
  await linkUp(nsA, devA)
  await linkUp(nsB, devB)
}

/** Creates a bridge (up) in `ns`. */
export async function addBridge (ns: string, name: string): Promise<void> {
  checkDeviceName(name)
  await run('ip', ['-n', ns, 'link', 'add', name, 'type', 'bridge'])
  await linkUp(ns, name)
}

/** Enslaves `dev` to bridge `bridge` (both in `ns`). */
export async function setMaster (ns: string, dev: string, bridge: string): Promise<void> {
  await run('ip', ['-n', ns, 'link', 'set', dev, 'master', bridge])
}

export async function linkUp (ns: string, dev: string): Promise<void> {
  await run('ip', ['-n', ns, 'link', 'set', dev, 'up'])
}

export async function linkDown (ns: string, dev: string): Promise<void> {
  await run('ip', ['-n', ns, 'link', 'set', dev, 'down'])
}

export async function setMtu (ns: string, dev: string, mtu: number): Promise<void> {
  await run('ip', ['-n', ns, 'link', 'set', dev, 'mtu', String(mtu)])
}

/** Adds `cidr` (e.g. "192.168.1.1/24") to `dev` in `ns`. */
export async function addAddress (ns: string, dev: string, cidr: string): Promise<void> {
  await run('ip', ['-n', ns, 'addr', 'add', cidr, 'dev', dev])
}

export async function delAddress (ns: string, dev: string, cidr: string): Promise<void> {
  await run('ip', ['-n', ns, 'addr', 'del', cidr, 'dev', dev])
}

/** `ip route replace DST [via VIA] [dev DEV]` in `ns`. `dst` may be "default". */
export async function addRoute (ns: string, dst: string, opts: { via?: string, dev?: string }): Promise<void> {
  const args = ['-n', ns, 'route', 'replace', dst]
  if (opts.via !== undefined) args.push('via', opts.via)
  if (opts.dev !== undefined) args.push('dev', opts.dev)
  await run('ip', args)
}

export async function setDefaultRoute (ns: string, via: string): Promise<void> {
  await addRoute(ns, 'default', { via })
}

/** Sets a sysctl inside `ns` (e.g. "net.ipv4.ip_forward", "1"). Network sysctls are per namespace. */
export async function sysctl (ns: string, key: string, value: string | number): Promise<void> {
  await runIn(ns, 'sysctl', ['-q', '-w', `${key}=${value}`])
}

/** Sets several sysctls inside `ns` with one command. */
export async function sysctls (ns: string, values: Record<string, string | number>): Promise<void> {
  await runIn(ns, 'sysctl', ['-q', '-w', ...Object.entries(values).map(([k, v]) => `${k}=${v}`)])
}

export async function readSysctl (ns: string, key: string): Promise<string> {
  const { stdout } = await runIn(ns, 'sysctl', ['-n', key])
  return stdout.trim()
}

export async function enableForwarding (ns: string): Promise<void> {
  await sysctl(ns, 'net.ipv4.ip_forward', 1)
}

export interface LinkStats {
  rxPackets: number
  txPackets: number
  rxBytes: number
  txBytes: number
  rxDropped: number
  txDropped: number
}

/** Packet and byte counters of `dev` in `ns` (from `ip -s -j link show`). */
export async function linkStats (ns: string, dev: string): Promise<LinkStats> {
  const { stdout } = await run('ip', ['-n', ns, '-s', '-j', 'link', 'show', 'dev', dev])
  const parsed = JSON.parse(stdout) as Array<{ stats64?: { rx: Record<string, number>, tx: Record<string, number> } }>
  const s = parsed[0]?.stats64
  if (s === undefined) throw new Error(`no statistics for ${dev} in ${ns}`)
  return {
    rxPackets: s.rx.packets ?? 0,
    txPackets: s.tx.packets ?? 0,
    rxBytes: s.rx.bytes ?? 0,
    txBytes: s.tx.bytes ?? 0,
    rxDropped: s.rx.dropped ?? 0,
    txDropped: s.tx.dropped ?? 0
  }
}

// ---------------------------------------------------------------------------
// Synchronous cleanup (exit hook, signals, CI leftovers)

/**
 * Synchronously kills the processes in each namespace and deletes it. Best
 * effort: never throws. Used by the exit hook (which also SIGKILLs every
 * process this process started with `spawnIn`: `killSpawned`) and by
 * `cleanupStaleSync`.
 */
export function destroyNamespacesSync (names: readonly string[], opts: { killSpawned?: boolean } = {}): void {
  if (opts.killSpawned === true) {
    for (const p of liveProcesses()) {
      try { p.child.kill('SIGKILL') } catch {}
    }
  }
  for (const ns of names) {
    try {
      const out = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      for (const pid of parsePids(out)) { try { process.kill(pid, 'SIGKILL') } catch {} }
    } catch {}
    try { execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' }) } catch {}
    registry.delete(ns)
  }
}

/**
 * The pid of the process that created lab namespace `ns`, decoded from its
 * name (`lwt-<pid base36, 5 chars><2-char sequence>-...`, see topology.ts
 * `newLabId`), or null when the name does not carry one.
 */
export function labOwnerPid (ns: string, prefix = LAB_PREFIX): number | null {
  if (!ns.startsWith(prefix)) return null
  const m = /^([0-9a-z]{5})[0-9a-z]{2}-/.exec(ns.slice(prefix.length))
  if (m === null) return null
  const pid = parseInt(m[1]!, 36)
  return pid > 0 ? pid : null
}

function pidAlive (pid: number): boolean {
  try { process.kill(pid, 0); return true } catch (err) { return (err as NodeJS.ErrnoException).code === 'EPERM' }
}

/**
 * Removes namespaces starting with `prefix` (default `LAB_PREFIX`) left by
 * earlier runs: those whose owner process (`labOwnerPid`) is gone, or every
 * one not created by this process when `force` is set. Returns their names.
 */
export function cleanupStaleSync (opts: { prefix?: string, force?: boolean } = {}): string[] {
  const prefix = opts.prefix ?? LAB_PREFIX
  let names: string[] = []
  try {
    names = parseNsList(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }))
      .filter((n) => n.startsWith(prefix) && !registry.has(n))
      .filter((n) => {
        if (opts.force === true) return true
        const owner = labOwnerPid(n, prefix)
        return owner === null || owner === process.pid || !pidAlive(owner)
      })
  } catch {
    return []
  }
  destroyNamespacesSync(names)
  return names
}

let exitHookInstalled = false
let signalHandlersInstalled = false
let signalCleanupEnabled = true
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGALRM']

/**
 * Enables (default) or disables the lab's own SIGINT/SIGTERM/SIGHUP/SIGALRM
 * cleanup. Disable it when the caller installs its own handlers and calls
 * `destroy()` itself; the `exit` hook stays in place either way.
 */
export function setSignalCleanup (enabled: boolean): void {
  signalCleanupEnabled = enabled
}

function onExit (): void {
  if (registry.size > 0) destroyNamespacesSync([...registry], { killSpawned: true })
}

function onSignal (sig: NodeJS.Signals): void {
  if (!signalCleanupEnabled) return
  if (registry.size > 0) {
    try { process.stderr.write(`lab: ${sig} received, removing namespaces ${[...registry].join(' ')}\n`) } catch {}
    destroyNamespacesSync([...registry], { killSpawned: true })
  }
  removeSignalHandlers()
  // Re-raise so the default action (or the other listeners) proceed as if we were not here.
  process.kill(process.pid, sig)
}

const signalListener = (sig: NodeJS.Signals): void => { onSignal(sig) }

function installExitHooks (): void {
  if (!exitHookInstalled) {
    process.on('exit', onExit)
    exitHookInstalled = true
  }
  if (!signalHandlersInstalled) {
    for (const s of SIGNALS) process.on(s, signalListener)
    signalHandlersInstalled = true
  }
}

function removeSignalHandlers (): void {
  if (!signalHandlersInstalled) return
  for (const s of SIGNALS) process.removeListener(s, signalListener)
  signalHandlersInstalled = false
}
