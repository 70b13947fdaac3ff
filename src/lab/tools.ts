/**
 * The host tools the lab (and so `lightweight-tunnel demo`) runs, each with
 * the Debian/Ubuntu package that provides it, and a check that finds them
 * on PATH without running anything. The demo calls it before it builds
 * anything, so a missing tool is named up front with the package to install
 * instead of failing half-way ("exec of ping failed").
 */
import { accessSync, constants, statSync } from 'node:fs'
import { delimiter, join } from 'node:path'

export interface Tool {
  /** The command as the lab runs it. */
  readonly cmd: string
  /** The Debian/Ubuntu package that installs it. */
  readonly pkg: string
  /** What it is for, in plain words. */
  readonly use: string
  /** Optional tools: the demo skips their part (and says so) when they are missing. */
  readonly optional?: boolean
}

/** Every tool the demo runs (src/lab/*.ts, src/dataplane/tun-config.ts). */
export const DEMO_TOOLS: readonly Tool[] = Object.freeze([
  { cmd: 'ip', pkg: 'iproute2', use: 'network namespaces, links, addresses, routes' },
  { cmd: 'ss', pkg: 'iproute2', use: 'waiting for the iperf3 server to listen' },
  { cmd: 'nft', pkg: 'nftables', use: 'the NAT routers' },
  { cmd: 'sysctl', pkg: 'procps', use: 'forwarding and NAT timeouts inside the namespaces' },
  { cmd: 'ping', pkg: 'iputils-ping', use: 'latency and reachability through the tunnel' },
  { cmd: 'iperf3', pkg: 'iperf3', use: 'throughput through the tunnel', optional: true }
])

/** Is `cmd` an executable file in one of PATH's directories? Like `command -v`, without a shell. */
export function onPath (cmd: string, pathEnv: string | undefined): boolean {
  for (const dir of (pathEnv ?? '').split(delimiter)) {
    if (dir === '') continue
    const file = join(dir, cmd)
    try {
      if (!statSync(file).isFile()) continue
      accessSync(file, constants.X_OK)
      return true
    } catch { /* not here */ }
  }
  return false
}

/** The tools of `tools` not found on `pathEnv`. */
export function missingTools (tools: readonly Tool[], pathEnv: string | undefined = process.env.PATH): Tool[] {
  return tools.filter(t => !onPath(t.cmd, pathEnv))
}

/** One apt-get line installing the packages of `tools` (each package once, in order). */
export function aptLine (tools: readonly Tool[]): string {
  return `apt-get install ${[...new Set(tools.map(t => t.pkg))].join(' ')}`
}

/**
 * The demo's check, before it builds anything: `ok` false when a required
 * tool is missing; `lines` say what is missing, what it is for and the one
 * apt-get line that installs it (missing optional tools included), or note
 * each optional tool whose part will be skipped.
 */
export function checkTools (tools: readonly Tool[], pathEnv: string | undefined): { ok: boolean, lines: string[] } {
  const missing = missingTools(tools, pathEnv)
  const required = missing.filter(t => t.optional !== true)
  if (required.length > 0) {
    return {
      ok: false,
      lines: [
        'The demo needs commands that are not installed:',
        ...required.map(t => `  ${t.cmd.padEnd(7)} (package ${t.pkg}): ${t.use}`),
        `Install them (Debian/Ubuntu): ${aptLine(missing)}`
      ]
    }
  }
  return { ok: true, lines: missing.map(t => `Note: ${t.cmd} is not installed (package ${t.pkg}), so that part is skipped: ${t.use}. ${aptLine([t])} adds it.`) }
}
