/**
 * `lightweight-tunnel install-service NAME [-c FILE] [--root DIR]`: sets up
 * the systemd service lightweight-tunnel@NAME (packaging/systemd/).
 *
 *   1. write ROOT/etc/systemd/system/lightweight-tunnel@.service (0644): the
 *      shipped unit with ExecStart= naming this node and this installed
 *      command by absolute path (the service's PATH has no nvm or npm prefix);
 *   2. write ROOT/etc/sysusers.d/lightweight-tunnel.conf (0644): the system
 *      user the unit runs as;
 *   3. with -c FILE: copy FILE (already validated by cli/args.ts) to
 *      ROOT/etc/lightweight-tunnel/NAME.json, mode 0600 in a 0700 directory;
 *      an existing different file there is never overwritten;
 *   4. only when ROOT is "/": create the user (systemd-sysusers) and run
 *      `systemctl daemon-reload`, each only where it can work (the tool is
 *      installed; systemd is PID 1), else say what to run;
 *   5. print what was done and the exact `systemctl enable --now` line.
 *
 * Steps 1-3 are plain file writes, so a test (or an image build) can run it
 * against another root with --root. A failed write is ERR_INSTALL with the
 * path and the fix; nothing of step 4 fails the command.
 */
import { spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { VpnError } from '../errors.js'

export const UNIT_NAME = 'lightweight-tunnel@.service'
export const UNIT_SOURCE = join('packaging', 'systemd', UNIT_NAME)
export const SYSUSERS_SOURCE = join('packaging', 'systemd', 'lightweight-tunnel.sysusers')
export const SERVICE_USER = 'lightweight-tunnel'
/** The instance name becomes a file name and a unit name: keep it to characters both take as they are. */
export const INSTANCE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/

export interface InstallServiceInput {
  /** The instance: the service is lightweight-tunnel@NAME, its config /etc/lightweight-tunnel/NAME.json. */
  name: string
  /** Absolute path of the config to install, or null to keep (or later create) the one in place. */
  configFile: string | null
  /** The root the files go under ("/" for this machine). */
  root: string
  /** Absolute paths for ExecStart=: the node binary and the package's bin/lightweight-tunnel. */
  node: string
  bin: string
  /** The package root (holds packaging/). */
  packageRoot: string
  /** Run step 4 (create the user, reload systemd). Default: root is "/". */
  apply?: boolean
}

/** What step 4 may do on this machine (injectable for tests). */
export interface HostTools {
  /** Is systemd PID 1 (sd_booted(3): /run/systemd/system exists)? */
  systemdRunning (): boolean
  /** Runs a command; `missing` when it is not installed. */
  run (cmd: string, args: string[]): { ok: boolean, missing: boolean, output: string }
}

export const REAL_HOST: HostTools = {
  systemdRunning: () => existsSync('/run/systemd/system'),
  run (cmd, args) {
    const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000 })
    const missing = (r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT'
    return { ok: r.error === undefined && r.status === 0, missing, output: `${r.stderr ?? ''}${r.stdout ?? ''}`.trim() || (r.error?.message ?? '') }
  }
}

/** A path for ExecStart=: quoted when it has characters systemd would split or expand. */
function execArg (p: string): string {
  return /^[A-Za-z0-9_./+@:-]+$/.test(p) ? p : `"${p.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/%/g, '%%').replace(/\$/g, '$$$$')}"`
}

/** The unit text with ExecStart= pointing at `node` and `bin`. */
export function unitText (template: string, node: string, bin: string): string {
  const line = `ExecStart=${execArg(node)} ${execArg(bin)} -c %d/config`
  if (!/^ExecStart=.*$/m.test(template)) throw new Error(`${UNIT_SOURCE} has no ExecStart= line`)
  return template.replace(/^ExecStart=.*$/m, line)
}

function installError (what: string, path: string, err: unknown, root: string): VpnError {
  const code = (err as NodeJS.ErrnoException).code
  const hint = (code === 'EACCES' || code === 'EPERM') && root === '/'
    ? 'run it as root: sudo "$(command -v lightweight-tunnel)" install-service ... (sudo\'s PATH may not hold the npm prefix)'
    : undefined
  return new VpnError('ERR_INSTALL', `cannot ${what} ${path}: ${(err as Error).message}`, { cause: err, hint })
}

function writeFile (path: string, text: string, mode: number, root: string): void {
  try {
    writeFileSync(path, text, { mode })
    chmodSync(path, mode) // whatever the umask, and also when the file existed
  } catch (err) {
    throw installError('write', path, err, root)
  }
}

function makeDir (path: string, mode: number, root: string): void {
  try {
    if (mkdirSync(path, { recursive: true, mode }) !== undefined) chmodSync(path, mode)
  } catch (err) {
    throw installError('create the directory', path, err, root)
  }
}

/** Paths under the root, and the real paths they stand for (for messages). */
function place (root: string, path: string): string {
  return root === '/' ? path : join(root, path)
}

/**
 * Does steps 1-5. Returns the report for stdout (lines end in "\n"). Throws
 * ERR_INSTALL when a file cannot be written or the config in place differs
 * from -c FILE.
 */
export function installService (input: InstallServiceInput, host: HostTools = REAL_HOST): string {
  const { name, root } = input
  const out: string[] = []
  const instance = `lightweight-tunnel@${name}`

  // 1. The unit.
  const template = readFileSync(join(input.packageRoot, UNIT_SOURCE), 'utf8')
  const unitDir = place(root, '/etc/systemd/system')
  makeDir(unitDir, 0o755, root)
  const unitPath = join(unitDir, UNIT_NAME)
  writeFile(unitPath, unitText(template, input.node, input.bin), 0o644, root)
  out.push(`wrote ${unitPath} (ExecStart=${execArg(input.node)} ${execArg(input.bin)} -c %d/config)`)
  for (const p of [input.node, input.bin]) {
    if (/^\/(home|root|run\/user)(\/|$)/.test(p)) {
      out.push(`warning: ${p} is under ${p.split('/').slice(0, 2).join('/')}, which the service cannot read (ProtectHome=yes, and it runs as ` +
        `the user ${SERVICE_USER}): install Node and lightweight-tunnel system-wide (e.g. the distribution's nodejs package, ` +
        'then npm install -g as root) and run install-service again')
    }
  }

  // 2. The system user.
  const sysusersDir = place(root, '/etc/sysusers.d')
  makeDir(sysusersDir, 0o755, root)
  const sysusersPath = join(sysusersDir, `${SERVICE_USER}.conf`)
  writeFile(sysusersPath, readFileSync(join(input.packageRoot, SYSUSERS_SOURCE), 'utf8'), 0o644, root)
  out.push(`wrote ${sysusersPath} (the system user ${SERVICE_USER})`)

  // 3. The config.
  const confDir = place(root, '/etc/lightweight-tunnel')
  makeDir(confDir, 0o700, root)
  const confPath = join(confDir, `${name}.json`)
  let haveConfig = existsSync(confPath)
  if (input.configFile !== null) {
    let text: string
    try { text = readFileSync(input.configFile, 'utf8') } catch (err) { throw installError('read', input.configFile, err, root) }
    let current: string | null = null
    try { current = readFileSync(confPath, 'utf8') } catch { /* absent */ }
    if (current !== null && current !== text) {
      throw new VpnError('ERR_INSTALL', `${confPath} exists and differs from ${input.configFile}; not overwriting it`, {
        hint: `edit ${confPath} in place, or remove it and run install-service again`
      })
    }
    writeFile(confPath, text, 0o600, root)
    out.push(current === null ? `wrote ${confPath} (mode 0600, from ${input.configFile})` : `${confPath} is already this config (mode 0600)`)
    haveConfig = true
  } else if (haveConfig) {
    out.push(`using the config in place: ${confPath}`)
  }

  // 4. Apply (this machine only).
  const next: string[] = []
  if (!(input.apply ?? root === '/')) {
    out.push(`files written under ${root}; nothing was run there`)
    next.push('systemd-sysusers', 'systemctl daemon-reload')
  } else {
    const users = host.run('systemd-sysusers', [sysusersPath])
    if (users.ok) out.push(`system user ${SERVICE_USER} in place (systemd-sysusers)`)
    else if (users.missing) {
      out.push(`systemd-sysusers is not installed: create the user with useradd --system --no-create-home --shell /usr/sbin/nologin ${SERVICE_USER}`)
      next.push(`useradd --system --no-create-home --shell /usr/sbin/nologin ${SERVICE_USER}`)
    } else {
      out.push(`systemd-sysusers failed: ${users.output}`)
      next.push('systemd-sysusers')
    }
    if (!host.systemdRunning()) {
      out.push('systemd is not running on this machine (no /run/systemd/system): the unit is installed for when it boots with systemd')
      next.push('systemctl daemon-reload')
    } else {
      const reload = host.run('systemctl', ['daemon-reload'])
      if (reload.ok) out.push('ran systemctl daemon-reload')
      else {
        out.push(`systemctl daemon-reload ${reload.missing ? 'is not available (no systemctl)' : `failed: ${reload.output}`}`)
        next.push('systemctl daemon-reload')
      }
    }
  }

  // 5. What to run.
  if (!haveConfig) {
    out.push(`no config yet: write ${confPath} (lightweight-tunnel -g DIR/${name}.json writes an example server/client pair; ` +
      `keep paths in it absolute), or run install-service ${name} -c FILE`)
  }
  out.push('', 'start it now and at every boot (as root):')
  for (const n of next) out.push(`  ${n}`)
  out.push(`  systemctl enable --now ${instance}`, '',
    `check it: systemctl status ${instance}; journalctl -u ${instance}; lightweight-tunnel status (as root)`)
  return out.join('\n') + '\n'
}
