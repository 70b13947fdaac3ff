/**
 * `lightweight-tunnel check -c FILE`: the config file validated exactly as a
 * daemon start would (config/load.ts), without starting anything, like
 * `nebula -test`. Exit 0 with a one-line summary (and any warnings), or 2
 * with every problem, each naming its key.
 *
 *   config OK: client 10.0.0.2/24 → vpn.example.com:9000 (dev lwt0, mtu 1400)
 *   (with an IPv6 address: 10.0.0.2/24,fd00:77::2/64)
 */
import { formatHostPort } from '../config/validate.js'
import type { Config } from '../config/schema.js'
import { formatPrefix } from '../wire/prefix.js'

export function summarize (c: Config): string {
  const tun = `${c.tun.ip}/${c.tun.prefix}${c.tun6 === null ? '' : `,${formatPrefix(c.tun6)}`}`
  const extras = [`dev ${c.dev}`, `mtu ${c.mtu}`]
  if (c.metrics !== null) extras.push(`metrics on ${c.metrics.host}:${c.metrics.port}`)
  if (c.mode === 'server') {
    return `config OK: server ${tun} listening on ${formatHostPort(c.listen.host, c.listen.port)} (${[...extras, `up to ${c.maxClients} clients`].join(', ')})`
  }
  return `config OK: client ${tun} → ${formatHostPort(c.remote!.host, c.remote!.port)} (${[...extras, c.p2p ? 'direct paths on' : 'relay only'].join(', ')})`
}

/** The report of `check`: [stdout, stderr, exit code]. */
export function checkReport (file: string, config: Config | null, problems: readonly string[], warnings: readonly string[]): { stdout: string, stderr: string, code: number } {
  const warn = warnings.map(w => `warning: ${w}\n`).join('')
  if (config === null || problems.length > 0) {
    const n = problems.length
    return { stdout: '', stderr: warn + problems.map(p => p.startsWith(`${file}: `) ? `${p}\n` : `${file}: ${p}\n`).join('') + `config ${file} has ${n} problem${n === 1 ? '' : 's'}\n`, code: 2 }
  }
  return { stdout: summarize(config) + '\n', stderr: warn, code: 0 }
}
