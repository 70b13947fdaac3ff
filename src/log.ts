/**
 * A small structured logger. One line per event on stderr, in one of three
 * shapes (docs/LOGGING.md):
 *
 *   text     2026-11-22T00:00:00.000Z INFO  server: client registered peer=10.0.0.2 endpoint=198.51.100.7:40000
 *   journal  <6>server: client registered peer=10.0.0.2 endpoint=198.51.100.7:40000
 *   json     {"time":"2026-11-22T00:00:00.000Z","level":"info","component":"server","msg":"client registered","peer":"10.0.0.2",…}
 *
 * `journal` is text with the sd-daemon priority prefix instead of the time
 * (journald stamps lines itself and reads <N> as the priority, so
 * `journalctl -p err` works); chosen automatically under systemd
 * (underJournald()). Field names are fixed by docs/LOGGING.md. Debug logging
 * is free when off: guard per-packet logs with `log.enabled('debug')`. Never a
 * global: each component receives a child logger from the composition root.
 *
 * Children share one LogState with their root: setLevel()/setFormat() on any
 * of them (a SIGHUP reload) changes every logger of the daemon at once.
 *
 * Writes are synchronous (fs.writeSync on fd 2 by default), so a line is out
 * before a crash; a lost reader (EPIPE: `… 2>&1 | head -1`, EBADF, EIO) stops
 * the writing and counts the lost lines, it never throws into the caller.
 * Why not pino: docs/LOGGING.md "Why not pino".
 */
import { fstatSync, writeSync } from 'node:fs'

export type Level = 'error' | 'warn' | 'info' | 'debug'
const RANK: Record<Level, number> = { error: 0, warn: 1, info: 2, debug: 3 }
const NAMES = Object.keys(RANK) as Level[]
/** sd-daemon(3) priorities: SD_ERR, SD_WARNING, SD_INFO, SD_DEBUG. */
const SD_PRIORITY: Record<Level, string> = { error: '<3>', warn: '<4>', info: '<6>', debug: '<7>' }

/** The line shapes; 'text' and 'json' are what --log-format chooses, 'journal' is text under journald. */
export type LogFormat = 'text' | 'json' | 'journal'

export type Fields = Record<string, unknown>

export interface LogSink { write(line: string): void }

/** What every logger of one tree shares; mutated only by setLevel / setFormat (main thread). */
interface LogState {
  level: number
  format: LogFormat
  readonly sink: LogSink
}

export class Logger {
  readonly #state: LogState
  readonly #component: string
  /** The child's fixed fields (rendered after the message, before the call's own fields). */
  readonly #bindings: Fields
  /** #bindings as text, rendered once. */
  readonly #bindingsText: string

  constructor (opts: { level?: Level, format?: LogFormat, component?: string, sink?: LogSink, bindings?: Fields } = {}, state?: LogState) {
    this.#state = state ?? { level: RANK[opts.level ?? 'info'], format: opts.format ?? 'text', sink: opts.sink ?? new StderrSink() }
    this.#component = opts.component ?? 'main'
    this.#bindings = opts.bindings ?? {}
    this.#bindingsText = formatFields(this.#bindings)
  }

  child (component: string, fields: Fields = {}): Logger {
    return new Logger({ component, bindings: { ...this.#bindings, ...fields } }, this.#state)
  }

  enabled (level: Level): boolean { return RANK[level] <= this.#state.level }

  get level (): Level { return NAMES[this.#state.level]! }
  get format (): LogFormat { return this.#state.format }
  /** Change the level of this logger and of every logger sharing its root (reload). */
  setLevel (level: Level): void { this.#state.level = RANK[level] }
  setFormat (format: LogFormat): void { this.#state.format = format }
  /** Lines the sink could not write (its reader went away): StderrSink.lost, else 0. */
  get linesLost (): number {
    const lost = (this.#state.sink as { lost?: unknown }).lost
    return typeof lost === 'number' ? lost : 0
  }

  error (msg: string, fields?: Fields): void { this.#emit('error', msg, fields) }
  warn (msg: string, fields?: Fields): void { this.#emit('warn', msg, fields) }
  info (msg: string, fields?: Fields): void { this.#emit('info', msg, fields) }
  debug (msg: string, fields?: Fields): void { this.#emit('debug', msg, fields) }

  #emit (level: Level, msg: string, fields: Fields | undefined): void {
    const st = this.#state
    if (RANK[level] > st.level) return
    let line: string
    if (st.format === 'json') {
      line = jsonLine(level, this.#component, msg, this.#bindings, fields)
    } else {
      const rest = `${this.#component}: ${msg}${this.#bindingsText}${fields ? formatFields(fields) : ''}\n`
      line = st.format === 'journal' ? SD_PRIORITY[level] + rest : `${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${rest}`
    }
    st.sink.write(line)
  }
}

function fieldValue (v: unknown): unknown {
  if (v instanceof Error) return v.message
  if (typeof v === 'bigint') return Number(v)
  return v
}

function jsonLine (level: Level, component: string, msg: string, bindings: Fields, fields: Fields | undefined): string {
  const o: Record<string, unknown> = { time: new Date().toISOString(), level, component, msg }
  for (const src of [bindings, fields]) {
    if (src === undefined) continue
    for (const [k, v] of Object.entries(src)) {
      if (v === undefined || k in RESERVED) continue
      o[k] = fieldValue(v)
    }
  }
  return JSON.stringify(o) + '\n'
}
/** Keys of the JSON line itself: a field of the same name cannot replace them. */
const RESERVED = { time: 1, level: 1, component: 1, msg: 1 }

function formatFields (fields: Fields): string {
  let out = ''
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue
    let s: string
    const fv = fieldValue(v)
    if (typeof fv === 'string') s = fv
    else s = JSON.stringify(fv)
    if (/[\s"=]/.test(s)) s = JSON.stringify(s)
    out += ` ${k}=${s}`
  }
  return out
}

/** errno codes meaning "nobody reads this any more": stop writing, count the rest. */
const LOST_READER = new Set(['EPIPE', 'EBADF', 'EIO', 'ECONNRESET', 'ENOTCONN'])
/** A non-blocking stderr that is full (EAGAIN): retries before one line is dropped (and counted). */
const EAGAIN_RETRIES = 100

/**
 * Synchronous writes to a file descriptor (default 2, stderr). When the
 * reader is gone (LOST_READER) it stops writing and counts what it could not
 * write (`lost`); a full non-blocking pipe drops (and counts) one line after
 * a bounded retry. Never throws.
 */
export class StderrSink implements LogSink {
  readonly #fd: number
  readonly #write: (fd: number, b: Uint8Array) => number
  /** Lines not written (reader gone, or a full pipe). */
  lost = 0
  /** The errno code that stopped the writing, or null while writing. */
  closedBy: string | null = null

  constructor (fd = 2, write: (fd: number, b: Uint8Array) => number = writeSync) {
    this.#fd = fd
    this.#write = write
  }

  write (line: string): void {
    if (this.closedBy !== null) { this.lost++; return }
    let buf = Buffer.from(line)
    for (let tries = 0; buf.length > 0;) {
      try {
        const n = this.#write(this.#fd, buf)
        buf = buf.subarray(n)
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? 'EIO'
        if (code === 'EAGAIN' && ++tries < EAGAIN_RETRIES) continue
        if (code !== 'EAGAIN') this.closedBy = code
        this.lost++
        return
      }
    }
  }
}

/**
 * True when stderr is journald's stream (systemd sets JOURNAL_STREAM to
 * "DEV:INODE" of the stream it connected to stdout/stderr: systemd.exec(5));
 * comparing it with fd 2 tells a daemon whose stderr was redirected elsewhere
 * from one that really writes to the journal.
 */
export function underJournald (env: NodeJS.ProcessEnv = process.env, fd = 2): boolean {
  const js = env.JOURNAL_STREAM
  if (js === undefined || js === '') return false
  const [dev, ino] = js.split(':')
  try {
    const st = fstatSync(fd, { bigint: true })
    return String(st.dev) === dev && String(st.ino) === ino
  } catch {
    return false
  }
}

/**
 * The line shape for a run: JSON only when asked for (--log-format json);
 * otherwise text, with the journald priority prefix instead of the time when
 * stderr is the journal. (Text by default also when stderr is a pipe: the
 * lines stay greppable, and a collector that wants JSON asks for it.)
 */
export function chooseFormat (requested: 'text' | 'json' | null, journald: boolean): LogFormat {
  if (requested === 'json') return 'json'
  return journald ? 'journal' : 'text'
}

/** A logger that drops everything (tests). */
export const silentLogger = new Logger({ level: 'error', sink: { write: () => {} } })
