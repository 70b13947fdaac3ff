/**
 * A client's --remote host name, kept resolved (daemon.ts owns one when
 * --remote is a name; an IPv4 address is used as given and never looked up).
 *
 *   start:   waitFirst() ──lookup fails──▶ log once, status "resolving", retry
 *                │                          after 1 s, doubling to 30 s
 *                └──resolves──▶ the address (the daemon points the client at it)
 *   running: every RERESOLVE_CHECK, while the client gets no answer from the
 *            server (registering / reconnecting) and the last lookup is at
 *            least `reresolveMs` old: look the name up again; a new address
 *            goes to onMoved (ClientController.setServerEndpoint)
 *
 * The resolver is injected ((host) => Promise<address text>: the system
 * resolver in the daemon (A or AAAA), a scripted one in tests); toIp turns
 * its answer into an endpoint u32 (IPv6: a handle of the daemon's table). Main thread only; every
 * wait ends when `stopped` settles.
 */
import type { Logger } from './log.js'
import { formatEndpointHost, ipToInt, isIpv4 } from './wire/addr.js'

/** Waiting for the name at start: first retry after 1 s, doubling up to 30 s. */
export const RESOLVE_RETRY_MIN = 1000
export const RESOLVE_RETRY_MAX = 30_000
/** While the server does not answer, look its name up again at most this often (ms): dynamic-DNS TTLs are 30–300 s. */
export const RERESOLVE_INTERVAL = 30_000
/** How often the watcher checks whether a new lookup is due (ms; no lookup unless due). */
const RERESOLVE_CHECK = 1000

export type Resolve = (host: string) => Promise<string>

export class ServerName {
  readonly #host: string
  readonly #port: number
  readonly #resolve: Resolve
  readonly #log: Logger
  readonly #stopped: Promise<void>
  readonly #reresolveMs: number
  readonly #toIp: (text: string) => number | null
  #stopping = false
  /** The address in use (host order), 0 before the first success. */
  #ip = 0
  /** Why we are still waiting (status problem), or null. */
  #waiting: string | null = null
  #timer: NodeJS.Timeout | null = null
  #lastLookup = 0
  #lookingUp = false

  constructor (host: string, port: number, c: { resolve: Resolve, log: Logger, stopped: Promise<void>, reresolveMs?: number, toIp?: (text: string) => number | null }) {
    this.#toIp = c.toIp ?? ((text) => isIpv4(text) ? ipToInt(text) : null)
    this.#host = host
    this.#port = port
    this.#resolve = c.resolve
    this.#log = c.log
    this.#stopped = c.stopped.then(() => { this.#stopping = true })
    this.#reresolveMs = c.reresolveMs ?? RERESOLVE_INTERVAL
  }

  /** Non-null while the first lookup has not succeeded: the status problem. */
  get waiting (): string | null { return this.#waiting }
  get ip (): number { return this.#ip }

  /** The first address; null when the daemon stops first. Says once that it waits, with the error. */
  async waitFirst (): Promise<number | null> {
    let delay = RESOLVE_RETRY_MIN
    for (;;) {
      try {
        const ip = await Promise.race([this.#lookup(), this.#stopped.then(() => null)])
        if (ip === null) return null
        if (this.#waiting !== null) this.#log.info(`the server name ${this.#host} resolves now, to ${formatEndpointHost(ip)}`)
        this.#waiting = null
        this.#ip = ip
        return ip
      } catch (err) {
        const why = describe(err)
        if (this.#waiting === null) {
          this.#log.warn(`cannot resolve the server name ${this.#host} (${why}); waiting for it, retrying after 1 s and backing off to 30 s`, { server: `${this.#host}:${this.#port}` })
        }
        this.#waiting = `waiting for the server name ${this.#host} to resolve (${why}); check --remote and this host's DNS`
        await this.#pause(delay)
        if (this.#stopping) return null
        delay = Math.min(delay * 2, RESOLVE_RETRY_MAX)
      }
    }
  }

  /**
   * Start following the name: while `unanswered()` (the client gets no answer
   * from the server), look it up again when due; a new address goes to onMoved.
   */
  follow (unanswered: () => boolean, onMoved: (ip: number, port: number) => void): void {
    this.#timer = setInterval(() => { this.#check(unanswered, onMoved) }, RERESOLVE_CHECK)
  }

  stop (): void {
    this.#stopping = true
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
  }

  #check (unanswered: () => boolean, onMoved: (ip: number, port: number) => void): void {
    if (this.#lookingUp || this.#stopping || !unanswered()) return
    if (Date.now() - this.#lastLookup < this.#reresolveMs) return
    this.#lookingUp = true
    this.#lookup().then((ip) => {
      if (this.#stopping) return
      if (ip === this.#ip) { this.#log.debug(`the server name ${this.#host} still resolves to ${formatEndpointHost(ip)}`); return }
      this.#log.info(`the server name ${this.#host} now resolves to ${formatEndpointHost(ip)} (was ${formatEndpointHost(this.#ip)}); registering there`, { server: `${this.#host}:${this.#port}` })
      this.#ip = ip
      onMoved(ip, this.#port)
    }, (err: unknown) => {
      this.#log.debug(`looking up the server name ${this.#host} again failed; keeping ${formatEndpointHost(this.#ip)}`, { err: describe(err) })
    }).finally(() => { this.#lookingUp = false })
  }

  async #lookup (): Promise<number> {
    this.#lastLookup = Date.now()
    const text = await this.#resolve(this.#host)
    const ip = this.#toIp(text)
    if (ip === null) throw new Error(`the resolver returned ${JSON.stringify(text)}, not an address this daemon can use`)
    return ip
  }

  async #pause (ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    await Promise.race([this.#stopped, new Promise<void>((resolve) => { timer = setTimeout(resolve, ms) })])
    clearTimeout(timer)
  }
}

/** An error as status and logs show it: the errno-style code (EAI_AGAIN, ENOTFOUND) when there is one. */
function describe (err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? (err as Error).message ?? String(err)
}
