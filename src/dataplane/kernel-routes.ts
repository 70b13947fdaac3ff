/**
 * The kernel side of subnet routes (--accept-routes): the routes the control
 * plane wants (control/kernel-route-plan.ts planRoutes) installed on our TUN
 * device with iproute2, and removed when withdrawn and at exit.
 *
 *   offer(offers, server address) (each tick) ─▶ planRoutes when they changed ─▶ want(plan)
 *   want(plan) ─▶ skipped offers logged once (error) and counted
 *              ─▶ a serialized sync: diffRoutes(installed, wanted)
 *                   remove: ip [-6] route del PREFIX dev DEV
 *                   add:    ip [-6] route show exact PREFIX → a route of another device?
 *                             yes: refused (logged once naming both, counted, never retried for that offer)
 *                             no:  ip [-6] route replace PREFIX dev DEV
 *   close() ─▶ every installed route removed (SIGTERM); after kill -9 the
 *              device goes and its routes with it, so a restart finds none.
 *
 * warnIfNotForwarding: the start-up warning of a node advertising routes
 * while the kernel does not forward (the sysctl named).
 *
 * Main thread; one command at a time. Failures are logged and counted,
 * never thrown: a route that cannot be installed leaves the rest working.
 */
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { promisify } from 'node:util'
import type { Logger } from '../log.js'
import { intToIp } from '../wire/addr.js'
import { formatPrefix, type IpPrefix } from '../wire/prefix.js'
import { diffRoutes, planRoutes, routeKey, type PlanFacts, type RouteOffer, type RoutePlan } from '../control/kernel-route-plan.js'

const exec = promisify(execFile)

/** Runs `ip ARGS`, resolves with its stdout; rejects with its stderr. */
export type IpRunner = (args: string[]) => Promise<string>

const runIp: IpRunner = async (args) => (await exec('ip', args, { timeout: 10_000 })).stdout

/** One route as status shows it. */
export interface InstalledRoute { prefix: string, via: string, state: 'installed' | 'skipped', reason: string | null }

export class KernelRoutes {
  readonly #dev: string
  readonly #log: Logger
  readonly #ip: IpRunner
  readonly #installed = new Map<string, RouteOffer>()
  #wanted: RouteOffer[] = []
  /** Offers not installed, with why: from the plan, or refused by the kernel's table (another device). */
  #skipped = new Map<string, { offer: RouteOffer, reason: string }>()
  /** "prefix via" of offers the kernel check refused: not tried again while offered the same way. */
  readonly #conflicts = new Map<string, string>()
  readonly #logged = new Set<string>()
  #chain: Promise<void> = Promise.resolve()
  #running = false
  #again = false
  #closed = false
  readonly counters = { routesInstalled: 0, routesSkipped: 0, routeCommandsFailed: 0 }

  /** The facts of planRoutes that do not change while running. */
  readonly #facts: Omit<PlanFacts, 'serverUnderlay'>
  /** The offers and underlay of the last offer(), to skip planning when nothing changed. */
  #lastOffer = ''

  constructor (dev: string, log: Logger, facts: Omit<PlanFacts, 'serverUnderlay'> = { tunnelNets: [], own: [] }, ip: IpRunner = runIp) {
    this.#dev = dev
    this.#log = log
    this.#facts = facts
    this.#ip = ip
  }

  /** The controller's offers (on every tick): planned and wanted when they or the server's address changed. */
  offer (offers: readonly RouteOffer[], serverUnderlay: number): void {
    const key = `${serverUnderlay};${offers.map(o => `${o.via}>${formatPrefix(o.prefix)}`).join(',')}`
    if (key === this.#lastOffer) return
    this.#lastOffer = key
    this.want(planRoutes(offers, { ...this.#facts, serverUnderlay }))
  }

  /** The routes wanted now; applied in the background (in order, one command at a time). */
  want (plan: RoutePlan): void {
    if (this.#closed) return
    const skipped = new Map<string, { offer: RouteOffer, reason: string }>()
    for (const s of plan.skipped) {
      skipped.set(`${routeKey(s.offer.prefix)} ${s.offer.via}`, s)
      this.#logOnce(`skip ${s.reason}`, () => { this.counters.routesSkipped++; this.#log.error(`route not installed: ${s.reason}`) })
    }
    // A conflict is remembered while the same offer stands (not retried every tick); withdrawn, it is forgotten.
    const offered = new Set(plan.install.map(o => `${routeKey(o.prefix)} ${o.via}`))
    for (const [k, reason] of this.#conflicts) {
      if (!offered.has(k)) { this.#conflicts.delete(k); continue }
      const o = plan.install.find(x => `${routeKey(x.prefix)} ${x.via}` === k)!
      skipped.set(k, { offer: o, reason })
    }
    this.#skipped = skipped
    this.#wanted = plan.install
    this.#kick()
  }

  #kick (): void {
    if (this.#running) { this.#again = true; return }
    this.#running = true
    this.#chain = this.#sync().finally(() => { this.#running = false })
  }

  async #sync (): Promise<void> {
    do {
      this.#again = false
      const wanted = this.#wanted.filter(o => !this.#conflicts.has(`${routeKey(o.prefix)} ${o.via}`))
      const { add, remove } = diffRoutes(this.#installed, wanted)
      for (const o of remove) await this.#remove(o)
      for (const o of add) {
        if (this.#closed) return
        await this.#add(o)
      }
    } while (this.#again && !this.#closed)
  }

  #fam (o: RouteOffer): string[] { return o.prefix.family === 6 ? ['-6'] : ['-4'] }

  async #add (o: RouteOffer): Promise<void> {
    const text = formatPrefix(o.prefix)
    const key = routeKey(o.prefix)
    try {
      const shown = await this.#ip([...this.#fam(o), 'route', 'show', 'exact', text])
      const other = shown.split('\n').map(l => l.trim()).find(l => l !== '' && !new RegExp(`\\bdev ${this.#dev.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\b`).test(l))
      if (other !== undefined) {
        const reason = `${text} from ${intToIp(o.via)} is routed by this host already ("${other}"): remove that route, or do not accept this one (--no-accept-routes)`
        this.#conflicts.set(`${key} ${o.via}`, reason)
        this.#skipped.set(`${key} ${o.via}`, { offer: o, reason })
        this.counters.routesSkipped++
        this.#log.error(`route not installed: ${reason}`)
        return
      }
      await this.#ip([...this.#fam(o), 'route', 'replace', text, 'dev', this.#dev])
      this.#installed.set(key, o)
      this.counters.routesInstalled++
      this.#log.info(`route ${text} via ${intToIp(o.via)} installed on ${this.#dev}`)
    } catch (err) {
      this.counters.routeCommandsFailed++
      this.#log.error(`route ${text} via ${intToIp(o.via)} could not be installed: ${errText(err)}`)
    }
  }

  async #remove (o: RouteOffer): Promise<void> {
    const text = formatPrefix(o.prefix)
    this.#installed.delete(routeKey(o.prefix))
    try {
      await this.#ip([...this.#fam(o), 'route', 'del', text, 'dev', this.#dev])
      this.#log.info(`route ${text} via ${intToIp(o.via)} removed from ${this.#dev}`)
    } catch (err) {
      // Gone already (the device went, or someone removed it): nothing to undo.
      this.#log.debug(`route ${text}: ip route del failed: ${errText(err)}`)
    }
  }

  #logOnce (line: string, act: () => void): void {
    if (this.#logged.has(line)) return
    if (this.#logged.size > 1024) this.#logged.clear()
    this.#logged.add(line)
    act()
  }

  /** Installed and skipped routes, for status. */
  status (): InstalledRoute[] {
    const out: InstalledRoute[] = []
    for (const o of this.#installed.values()) out.push({ prefix: formatPrefix(o.prefix), via: intToIp(o.via), state: 'installed', reason: null })
    for (const s of this.#skipped.values()) out.push({ prefix: formatPrefix(s.offer.prefix), via: intToIp(s.offer.via), state: 'skipped', reason: s.reason })
    return out
  }

  /** Removes every installed route (shutdown). Idempotent. */
  async close (): Promise<void> {
    this.#closed = true
    await this.#chain.catch(() => {})
    for (const o of [...this.#installed.values()]) await this.#remove(o)
  }
}

function errText (err: unknown): string {
  const e = err as NodeJS.ErrnoException & { stderr?: string }
  if (e.code === 'ENOENT') return 'the `ip` command (iproute2) was not found: install iproute2'
  return (e.stderr ?? e.message ?? String(err)).trim()
}

/**
 * A node advertising routes forwards packets between the tunnel and the
 * networks behind it: warn once at start when the kernel does not (the
 * sysctl named), for each family it advertises.
 */
export function warnIfNotForwarding (routes: readonly IpPrefix[], log: Logger): void {
  const checks: Array<[4 | 6, string, string]> = [[4, '/proc/sys/net/ipv4/ip_forward', 'net.ipv4.ip_forward'], [6, '/proc/sys/net/ipv6/conf/all/forwarding', 'net.ipv6.conf.all.forwarding']]
  for (const [family, file, name] of checks) {
    if (!routes.some(r => r.family === family)) continue
    let v: string
    try { v = readFileSync(file, 'utf8').trim() } catch { continue }
    if (v === '0') log.warn(`this node advertises IPv${family} routes but IPv${family} forwarding is off, so peers' packets to those networks stop here: run sysctl -w ${name}=1 (and set it in /etc/sysctl.d to keep it)`)
  }
}
