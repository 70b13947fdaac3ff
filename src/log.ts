/**
 * A small structured logger. One line per event on stderr:
 *
 *   2026-11-22T00:00:00.000Z INFO  server: client registered peer=10.0.0.2 endpoint=198.51.100.7:40000
 *
 * Field names are fixed by docs/LOGGING.md. Debug logging is free when off:
 * guard per-packet logs with `log.enabled('debug')`. Never a global: each
 * component receives a child logger from the composition root.
 */
export type Level = 'error' | 'warn' | 'info' | 'debug'
const RANK: Record<Level, number> = { error: 0, warn: 1, info: 2, debug: 3 }

export type Fields = Record<string, unknown>

export interface LogSink { write(line: string): void }

export class Logger {
  readonly #level: number
  readonly #component: string
  readonly #sink: LogSink
  readonly #bindings: string

  constructor (opts: { level?: Level, component?: string, sink?: LogSink, bindings?: string } = {}) {
    this.#level = RANK[opts.level ?? 'info']
    this.#component = opts.component ?? 'main'
    this.#sink = opts.sink ?? { write: (l) => { process.stderr.write(l) } }
    this.#bindings = opts.bindings ?? ''
  }

  child (component: string, fields: Fields = {}): Logger {
    return new Logger({
      level: (Object.keys(RANK) as Level[])[this.#level],
      component,
      sink: this.#sink,
      bindings: this.#bindings + formatFields(fields)
    })
  }

  enabled (level: Level): boolean { return RANK[level] <= this.#level }

  error (msg: string, fields?: Fields): void { this.#emit('error', msg, fields) }
  warn (msg: string, fields?: Fields): void { this.#emit('warn', msg, fields) }
  info (msg: string, fields?: Fields): void { this.#emit('info', msg, fields) }
  debug (msg: string, fields?: Fields): void { this.#emit('debug', msg, fields) }

  #emit (level: Level, msg: string, fields: Fields | undefined): void {
    if (RANK[level] > this.#level) return
    const line = `${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${this.#component}: ${msg}${this.#bindings}${fields ? formatFields(fields) : ''}\n`
    this.#sink.write(line)
  }
}

function formatFields (fields: Fields): string {
  let out = ''
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue
    let s: string
    if (v instanceof Error) s = v.message
    else if (typeof v === 'string') s = v
    else s = JSON.stringify(v)
    if (/[\s"=]/.test(s)) s = JSON.stringify(s)
    out += ` ${k}=${s}`
  }
  return out
}

/** A logger that drops everything (tests). */
export const silentLogger = new Logger({ level: 'error', sink: { write: () => {} } })
