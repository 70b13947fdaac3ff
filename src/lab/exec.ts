/**
 * Process helpers for the network-namespace lab (src/lab/*).
 *
 * Owns: running one command to completion (`run`, `runIn`), starting a
 * long-lived process inside a namespace whose output is captured into a
 * bounded buffer (`spawnIn` -> `LabProcess`), and polling until a condition
 * holds (`waitFor`).
 *
 * `ip netns exec NS CMD` execs CMD after entering the namespace, so the pid
 * of a `LabProcess` is the pid of CMD itself: signals reach it directly.
 *
 * Every live `LabProcess` is kept in a registry so that the lab's exit hook
 * (netns.ts) can kill leftovers synchronously if the test process dies.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { constants as osConstants } from 'node:os'

export interface RunOptions {
  /** Written to the command's stdin, then stdin is closed. */
  input?: string
  /** Kill the command (SIGKILL) after this many ms. Default 30 000. */
  timeoutMs?: number
  env?: NodeJS.ProcessEnv
  cwd?: string
}

export interface RunResult {
  stdout: string
  stderr: string
}

/** The error `run` throws: names the command, its exit status and stderr. */
export class CommandError extends Error {
  readonly cmd: string
  readonly args: readonly string[]
  /** Exit code, or null when killed by a signal / not started. */
  readonly exitCode: number | null
  readonly signal: string | null
  readonly stdout: string
  readonly stderr: string
  constructor (cmd: string, args: readonly string[], info: { exitCode: number | null, signal: string | null, stdout: string, stderr: string, cause?: unknown }) {
    const how = info.signal !== null ? `killed by ${info.signal}` : info.exitCode !== null ? `exit ${info.exitCode}` : 'could not start'
    const detail = info.stderr.trim() || (info.cause instanceof Error ? info.cause.message : '')
    super(`command failed (${how}): ${formatCommand(cmd, args)}${detail ? `: ${detail}` : ''}`, { cause: info.cause })
    this.name = 'CommandError'
    this.cmd = cmd
    this.args = args
    this.exitCode = info.exitCode
    this.signal = info.signal
    this.stdout = info.stdout
    this.stderr = info.stderr
  }
}

/** Human-readable command line (for errors and logs). */
export function formatCommand (cmd: string, args: readonly string[]): string {
  return [cmd, ...args].map((a) => /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`).join(' ')
}

/** Runs a command to completion. Resolves with its output; rejects with a `CommandError` on non-zero exit. */
export function run (cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, {
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
      timeout: opts.timeoutMs ?? 30_000,
      killSignal: 'SIGKILL',
      env: opts.env ?? process.env,
      cwd: opts.cwd
    }, (err, stdout, stderr) => {
      if (err === null) { resolve({ stdout, stderr }); return }
      const e = err as NodeJS.ErrnoException & { code?: unknown, signal?: NodeJS.Signals | null }
      reject(new CommandError(cmd, args, {
        exitCode: typeof e.code === 'number' ? e.code : null,
        signal: e.signal ?? null,
        stdout,
        stderr,
        cause: err
      }))
    })
    if (opts.input !== undefined) child.stdin?.end(opts.input)
    else child.stdin?.end()
  })
}

/** `ip netns exec NS CMD ARGS...` */
export function runIn (ns: string, cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return run('ip', ['netns', 'exec', ns, cmd, ...args], opts)
}

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv
  cwd?: string
  /** Bytes of combined stdout+stderr kept; older output is dropped. Default 1 MiB. */
  maxOutputBytes?: number
  /**
   * Start the process in its own process group, so a Ctrl-C in the terminal
   * reaches only us and we decide how to stop it. Default false.
   */
  detached?: boolean
  /** Called with each chunk of output as it arrives (e.g. to echo a daemon's log). */
  onOutput?: (chunk: string, stream: 'stdout' | 'stderr') => void
}

export interface ExitInfo {
  /** Exit code, or 128 + signal number when killed by a signal. */
  code: number
  signal: NodeJS.Signals | null
}

const live = new Set<LabProcess>()

/** How long after 'exit' a process counts as exited even if its pipes stay open (held by a grandchild). */
const EXIT_GRACE_MS = 200

/** Processes started by `spawnIn` that have not exited yet (for the exit hook). */
export function liveProcesses (): readonly LabProcess[] {
  return [...live]
}

/**
 * A process running inside a namespace. stdout and stderr are interleaved
 * into one bounded text buffer (the newest `maxOutputBytes` are kept).
 */
export class LabProcess {
  readonly ns: string
  readonly cmd: string
  readonly args: readonly string[]
  readonly child: ChildProcess
  /** Resolves once the process has exited (never rejects). */
  readonly exited: Promise<ExitInfo>
  #buf = ''
  #dropped = 0
  readonly #max: number
  #exit: ExitInfo | null = null
  readonly #listeners = new Set<() => void>()

  constructor (ns: string, cmd: string, args: readonly string[], opts: SpawnOptions = {}) {
    this.ns = ns
    this.cmd = cmd
    this.args = args
    this.#max = opts.maxOutputBytes ?? 1024 * 1024
    this.child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      detached: opts.detached ?? false,
      stdio: ['pipe', 'pipe', 'pipe']
    })
    live.add(this)
    const onData = (stream: 'stdout' | 'stderr') => (chunk: Buffer): void => {
      const text = chunk.toString('utf8')
      this.#append(text)
      opts.onOutput?.(text, stream)
    }
    this.child.stdout?.on('data', onData('stdout'))
    this.child.stderr?.on('data', onData('stderr'))
    // A child that dies early must not crash us with EPIPE on stdin.
    this.child.stdin?.on('error', () => {})
    this.exited = new Promise((resolve) => {
      const finish = (info: ExitInfo): void => {
        if (this.#exit !== null) return
        this.#exit = info
        live.delete(this)
        this.#notify()
        resolve(info)
      }
      this.child.on('error', (err) => {
        this.#append(`\n[spawn error: ${err.message}]\n`)
        finish({ code: 127, signal: null })
      })
      const info = (code: number | null, signal: NodeJS.Signals | null): ExitInfo =>
        ({ code: code ?? 128 + (signal !== null ? (osConstants.signals[signal] ?? 0) : 0), signal })
      // 'close' (all output read) normally follows 'exit' within a moment. A
      // background grandchild can keep the pipes open much longer, so the
      // exit also counts after a short grace period.
      this.child.on('exit', (code, signal) => {
        setTimeout(() => finish(info(code, signal)), EXIT_GRACE_MS).unref()
      })
      this.child.on('close', (code, signal) => { finish(info(code, signal)) })
    })
  }

  get pid (): number | undefined { return this.child.pid }

  /** Exit information, or null while still running. */
  get exitInfo (): ExitInfo | null { return this.#exit }

  /** Captured output so far (stdout and stderr interleaved; bounded). */
  output (): string {
    return this.#dropped > 0 ? `[... ${this.#dropped} bytes dropped ...]\n${this.#buf}` : this.#buf
  }

  /** The last `n` lines of output (for error messages). */
  tail (n = 20): string {
    const lines = this.#buf.split('\n')
    if (lines.at(-1) === '') lines.pop()
    return lines.slice(-n).join('\n')
  }

  /** Writes to the process's stdin. */
  write (data: string): void {
    this.child.stdin?.write(data)
  }

  /**
   * Resolves with the match once the (bounded) output matches `re`.
   * Rejects after `timeoutMs`, or when the process exits without a match,
   * naming the command and quoting the end of its output.
   */
  waitForOutput (re: RegExp, timeoutMs = 5000): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined
      const check = (): void => {
        const m = this.#buf.match(re)
        if (m !== null) { done(); resolve(m); return }
        if (this.#exit !== null) {
          done()
          reject(new Error(`${formatCommand(this.cmd, this.args)} (in ${this.ns}) exited with code ${this.#exit.code} before printing ${String(re)}; last output:\n${this.tail()}`))
        }
      }
      const done = (): void => {
        if (timer !== undefined) clearTimeout(timer)
        this.#listeners.delete(check)
      }
      timer = setTimeout(() => {
        done()
        reject(new Error(`timed out after ${timeoutMs}ms waiting for ${String(re)} from ${formatCommand(this.cmd, this.args)} (in ${this.ns}); last output:\n${this.tail()}`))
      }, timeoutMs)
      this.#listeners.add(check)
      check()
    })
  }

  /**
   * Sends `signal`, waits up to `timeoutMs` for the exit, then SIGKILLs.
   * Resolves with the exit code (128 + signal number when killed by a signal).
   * Safe to call more than once and after the process has exited.
   */
  async stop (signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 5000): Promise<number> {
    if (this.#exit !== null) return this.#exit.code
    try { this.child.kill(signal) } catch {}
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<null>((resolve) => { timer = setTimeout(() => resolve(null), timeoutMs) })
    const first = await Promise.race([this.exited, timedOut])
    clearTimeout(timer)
    if (first !== null) return first.code
    try { this.child.kill('SIGKILL') } catch {}
    return (await this.exited).code
  }

  #append (text: string): void {
    this.#buf += text
    if (this.#buf.length > this.#max) {
      const cut = this.#buf.length - this.#max
      this.#buf = this.#buf.slice(cut)
      this.#dropped += cut
    }
    this.#notify()
  }

  #notify (): void {
    for (const l of [...this.#listeners]) l()
  }
}

/** Starts `cmd args...` inside namespace `ns` (via `ip netns exec`). */
export function spawnIn (ns: string, cmd: string, args: readonly string[], opts: SpawnOptions = {}): LabProcess {
  return new LabProcess(ns, cmd, args, opts)
}

export interface WaitForOptions {
  /** Default 5000. */
  timeoutMs?: number
  /** Delay between polls. Default 100. */
  intervalMs?: number
  /** Used in the timeout message: "timed out after Nms waiting for WHAT". */
  what?: string
}

/**
 * Polls `fn` until it returns true. An exception thrown by `fn` fails the
 * wait at once. Throws `timed out after Nms waiting for WHAT` on timeout.
 */
export async function waitFor (fn: () => Promise<boolean> | boolean, opts: WaitForOptions = {}): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 5000
  const intervalMs = opts.intervalMs ?? 100
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await fn()) return
    const left = deadline - Date.now()
    if (left <= 0) throw new Error(`timed out after ${timeoutMs}ms waiting for ${opts.what ?? 'condition'}`)
    await sleep(Math.min(intervalMs, left))
  }
}

export function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
