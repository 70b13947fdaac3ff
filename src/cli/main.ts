/**
 * The command-line entry: parse, then either answer locally (help, version,
 * -g, check), ask the daemon over its control socket (status, ping,
 * netcheck; cli/discover.ts finds it when no --dev/--control is given), or
 * hand the frozen Config to the daemon (server, client). The CLI holds no
 * daemon logic.
 *
 * Exit codes: 0 ok, 1 runtime error (ping: no answer; netcheck: the server
 * did not answer), 2 usage error (check: the file has problems), 3 no daemon
 * listening (status, ping, netcheck). The daemon's own exit code is passed
 * through.
 */
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Config } from '../config/schema.js'
import type { StatusReport } from '../control/status.js'
import { writeExampleConfigs } from '../config/genconfig.js'
import { parseCommand, UsageError, type Command, type ReloadConfig } from './args.js'
import { describeError, VpnError } from '../errors.js'
import { Logger, chooseFormat, underJournald } from '../log.js'
import { controlRequest } from './control-protocol.js'
import { helpText } from './help.js'
import { formatStatus } from './status-format.js'
import { versionText } from './version.js'
import { installService } from './install-service.js'

/** The bash completion script, relative to the package root (shipped in the package). */
export const COMPLETION_BASH = join('packaging', 'completion', 'lightweight-tunnel.bash')
import { findDaemons, noDaemon, oneDaemon } from './discover.js'
import { runPing } from './ping.js'
import { formatNetcheck, isNetcheckReport } from './netcheck.js'
import { checkReport } from './check.js'
import { currentNetnsId } from '../config/defaults.js'
import { genkeyText, pubkeyText, readStdin } from './keys.js'

export const EXIT_OK = 0
export const EXIT_ERROR = 1
export const EXIT_USAGE = 2
export const EXIT_NOT_RUNNING = 3

/** Where main writes (tests pass collectors). */
export interface MainIo {
  stdout: { write(s: string): unknown }
  stderr: { write(s: string): unknown }
  /** All of standard input (pubkey); default: process.stdin. */
  stdin?: () => Promise<string>
}

interface DaemonModule { runDaemon(config: Config, log: Logger, opts?: { reload?: ReloadConfig | null }): Promise<number> }
interface DemoModule { runDemo(opts: { log: (...args: unknown[]) => void, bin: string }): Promise<unknown> }

let rootCache: string | null = null
/** The package directory (holds package.json and bin/), from src/ or dist/src/. */
export function packageRoot (): string {
  if (rootCache !== null) return rootCache
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown }
      if (pkg.name === 'lightweight-tunnel') return (rootCache = dir)
    } catch { /* keep walking up */ }
    const up = dirname(dir)
    if (up === dir) throw new Error('cannot find the lightweight-tunnel package.json above ' + fileURLToPath(import.meta.url))
    dir = up
  }
}

/** The version in package.json. */
export function version (): string {
  const pkg = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version?: unknown }
  return String(pkg.version)
}

/**
 * Loads a part of the program on demand (the daemon, the demo), so help,
 * status and -g start fast. A missing file means an incomplete build.
 */
async function importPart (spec: string): Promise<unknown> {
  try {
    return await import(spec)
  } catch (err) {
    const url = new URL(spec, import.meta.url)
    if ((err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' && String((err as Error).message).includes(fileURLToPath(url))) {
      throw new VpnError('ERR_NATIVE_ADDON', `this installation is not completely built: ${fileURLToPath(url)} is missing`, {
        cause: err, hint: `run npm ci in ${packageRoot()}`
      })
    }
    throw err
  }
}

function exitCodeFor (err: VpnError): number {
  if (err.code === 'ERR_USAGE') return EXIT_USAGE
  if (err.code === 'ERR_DAEMON_NOT_RUNNING') return EXIT_NOT_RUNNING
  return EXIT_ERROR
}

function isStatusReport (v: unknown): v is StatusReport {
  const r = v as Partial<StatusReport> | null
  return r !== null && typeof r === 'object' && typeof r.mode === 'string' && Array.isArray(r.peers)
}

/**
 * `status`: one daemon (--control, --dev, -c), this namespace's daemons (no
 * flag: one is shown as before, several one after another, each under a
 * "==> socket <==" line), or every daemon on the host (--all). With --json:
 * one daemon's report, or (--all, or several found) an array of
 * { control, report } / { control, error }.
 */
async function runStatus (cmd: Extract<Command, { kind: 'status' }>, io: MainIo): Promise<number> {
  let paths: string[]
  if (cmd.control !== null) paths = [cmd.control]
  else {
    const netns = cmd.all ? null : currentNetnsId()
    paths = (await findDaemons(netns)).map(d => d.path)
    if (paths.length === 0) {
      if (cmd.all) { io.stderr.write('lightweight-tunnel: no lightweight-tunnel daemon is running (no live control socket in /run/lightweight-tunnel)\n'); return EXIT_NOT_RUNNING }
      throw noDaemon(netns)
    }
  }
  if (paths.length === 1 && !cmd.all) {
    const result = await controlRequest(paths[0]!, { cmd: 'status' })
    if (cmd.json) { io.stdout.write(JSON.stringify(result, null, 2) + '\n'); return EXIT_OK }
    if (!isStatusReport(result)) {
      throw new VpnError('ERR_CONTROL_SOCKET', `the daemon on ${paths[0]!} answered status with something that is not a status report`, {
        hint: 'is it the same version as this command? try --json to see the answer'
      })
    }
    io.stdout.write(formatStatus(result))
    return EXIT_OK
  }
  const answers = await Promise.all(paths.map(async (path) => {
    try {
      const report = await controlRequest(path, { cmd: 'status' })
      if (!isStatusReport(report)) return { control: path, error: 'the answer is not a status report (another version?)' }
      return { control: path, report }
    } catch (err) {
      return { control: path, error: describeError(err) }
    }
  }))
  if (cmd.json) io.stdout.write(JSON.stringify(answers, null, 2) + '\n')
  else {
    io.stdout.write(answers.map(a => `==> ${a.control} <==\n` + ('report' in a ? formatStatus(a.report as StatusReport) : `error: ${a.error}\n`)).join('\n'))
  }
  return answers.every(a => 'report' in a) ? EXIT_OK : EXIT_ERROR
}

export async function main (argv: string[], io: MainIo = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const verbose = argv.some(a => /^--?verbose(=(1|t|true|TRUE|True))?$/.test(a))
  try {
    const cmd = parseCommand(argv)
    switch (cmd.kind) {
      case 'help':
        io.stdout.write(helpText(cmd.topic))
        return EXIT_OK
      case 'version':
        io.stdout.write(versionText(packageRoot(), version()))
        return EXIT_OK
      case 'genconfig': {
        const { serverFile, clientFile } = writeExampleConfigs(cmd.file)
        io.stdout.write(
          `wrote the server config ${serverFile} and the client config ${clientFile}\n` +
          '(mode 0600, sharing a new random key)\n' +
          `edit "remote" in ${clientFile} to your server's address, then run:\n` +
          `  lightweight-tunnel -c ${serverFile}          (on the server)\n` +
          `  lightweight-tunnel -c ${clientFile}   (on a client; change "tun" for each further client)\n`)
        return EXIT_OK
      }
      case 'demo': {
        const mod = await importPart('../lab/demo.js') as DemoModule
        const res = await mod.runDemo({ log: console.log, bin: join(packageRoot(), 'bin', 'lightweight-tunnel') })
        return typeof res === 'number' ? res : EXIT_OK
      }
      case 'install-service':
        io.stdout.write(installService({
          name: cmd.name, configFile: cmd.configFile, root: cmd.root, node: process.execPath, bin: join(packageRoot(), 'bin', 'lightweight-tunnel'), packageRoot: packageRoot()
        }))
        return EXIT_OK
      case 'completion':
        io.stdout.write(readFileSync(join(packageRoot(), COMPLETION_BASH), 'utf8'))
        return EXIT_OK
      case 'genkey':
        io.stdout.write(genkeyText())
        return EXIT_OK
      case 'pubkey':
        io.stdout.write(pubkeyText(await (io.stdin ?? readStdin)()))
        return EXIT_OK
      case 'status': return await runStatus(cmd, io)
      case 'ping': {
        const d = await oneDaemon(cmd.control, 'ping')
        return await runPing(cmd, () => controlRequest(d.path, { cmd: 'ping', peer: cmd.peer, timeoutMs: cmd.timeoutMs }, cmd.timeoutMs + 3000),
          (s) => { io.stdout.write(s) }, (ms) => new Promise(resolve => setTimeout(resolve, ms)))
      }
      case 'netcheck': {
        const d = await oneDaemon(cmd.control, 'netcheck')
        const result = await controlRequest(d.path, { cmd: 'netcheck' }, 8000)
        if (cmd.json) { io.stdout.write(JSON.stringify(result, null, 2) + '\n'); return EXIT_OK }
        if (!isNetcheckReport(result)) throw new VpnError('ERR_CONTROL_SOCKET', `the daemon on ${d.path} answered netcheck with something that is not a netcheck report`)
        io.stdout.write(formatNetcheck(result, typeof result.dev === 'string' ? result.dev : d.dev))
        return result.udp ? EXIT_OK : EXIT_ERROR
      }
      case 'check': {
        const r = checkReport(cmd.file, cmd.config, cmd.problems, cmd.warnings)
        io.stdout.write(r.stdout)
        io.stderr.write(r.stderr)
        return r.code
      }
      case 'run': {
        const logger = new Logger({ level: cmd.config.logLevel, format: chooseFormat(cmd.config.logFormat, underJournald()) })
        for (const w of cmd.warnings) logger.warn(w)
        const mod = await importPart('../daemon.js') as DaemonModule
        return await mod.runDaemon(cmd.config, logger, { reload: cmd.reload })
      }
    }
  } catch (err) {
    if (err instanceof UsageError) {
      for (const p of err.problems) io.stderr.write(`lightweight-tunnel: ${p}\n`)
      io.stderr.write('see lightweight-tunnel --help\n')
      return EXIT_USAGE
    }
    if (err instanceof VpnError) {
      io.stderr.write(`lightweight-tunnel: ${describeError(err)}\n`)
      if (verbose && err.stack !== undefined) io.stderr.write(`${err.stack}\n`)
      return exitCodeFor(err)
    }
    io.stderr.write(`lightweight-tunnel: unexpected error: ${describeError(err)}\n`)
    if (verbose && err instanceof Error && err.stack !== undefined) io.stderr.write(`${err.stack}\n`)
    else io.stderr.write('run again with --verbose to see where it happened\n')
    return EXIT_ERROR
  }
}
