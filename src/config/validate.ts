/**
 * Value checks for the settings, one function per kind of value. Each takes
 * the value and where it came from (`source`: a flag as typed, "--mtu" / "-mtu",
 * or a file key, `/etc/lwt.json: "mtu"`), and on failure pushes ONE problem
 * naming that source, what was expected and what was received, and returns
 * null; the caller keeps going so that every problem is reported at once.
 *
 * Flow: config/load.ts picks each setting's Raw (flag ?? file), calls the
 * check for its kind here, and assembles the results; cli/args.ts uses
 * checkDev/checkControl for `status`. IPv4 parsing and arithmetic come from
 * wire/addr.ts (strict dotted quads: no leading zeros, which some parsers read
 * as octal); only the messages are made here.
 */
import { resolve } from 'node:path'
import { isIPv6 } from 'node:net'
import { broadcastAddress, intToIp, ipToInt, isIpv4, networkAddress } from '../wire/addr.js'
import { CONTROL_DIR, LIMITS } from './defaults.js'
import { show } from './messages.js'
import type { HostPort, Ipv4Cidr } from './schema.js'

/** One setting's raw value and where it came from, for messages. */
export interface Raw {
  /** A flag's value is a string or boolean; a file's is any JSON value. */
  readonly value: unknown
  /** "--mtu", "-mtu" or `/etc/lwt.json: "mtu"`. */
  readonly source: string
  readonly from: 'flag' | 'file' | 'env'
  /** The file key was one of the Go project's names (config/go-compat.ts). */
  readonly goName: boolean
}

/** True when raw.value is a string; otherwise one problem: "expected `what`". */
export function expectString (raw: Raw, what: string, problems: string[]): boolean {
  if (typeof raw.value === 'string') return true
  problems.push(`${raw.source}: expected ${what}, got ${show(raw.value)}`)
  return false
}

/**
 * An integer in min..max. From a flag: 1 to 9 decimal digits (no sign, no
 * exponent, no "0x"). From a file: a JSON number that is an integer (a string
 * such as "1400" is refused: the file says what type it means).
 */
export function checkInt (raw: Raw, min: number, max: number, what: string, problems: string[]): number | null {
  let n: number
  if (raw.from === 'flag') {
    const s = String(raw.value)
    n = /^[0-9]{1,9}$/.test(s) ? Number(s) : NaN
  } else if (typeof raw.value !== 'number') {
    // The file says what type it means: a quoted number is a string, not a number.
    if (typeof raw.value === 'string' && /^\s*-?[0-9]+(\.[0-9]+)?\s*$/.test(raw.value)) {
      problems.push(`${raw.source}: must be a number, not the string ${show(raw.value)}: write ${raw.value.trim()} without quotes`)
    } else {
      problems.push(`${raw.source}: must be a number, got ${typeof raw.value === 'string' ? 'the string ' : ''}${show(raw.value)}; expected ${what}`)
    }
    return null
  } else {
    n = Number.isInteger(raw.value) ? raw.value : NaN
  }
  if (Number.isNaN(n) || n < min || n > max) {
    problems.push(`${raw.source}: expected ${what}, got ${show(raw.value)}`)
    return null
  }
  return n
}

/** A boolean (flags are already booleans here: cli/args.ts parsed `=true|false`). */
export function checkBool (raw: Raw, problems: string[]): boolean | null {
  if (typeof raw.value === 'boolean') return raw.value
  problems.push(`${raw.source}: expected true or false, got ${show(raw.value)}`)
  return null
}

/** One of `allowed` (log levels, placements), compared exactly. */
export function checkOneOf<T extends string> (raw: Raw, allowed: readonly T[], problems: string[]): T | null {
  if (typeof raw.value === 'string' && (allowed as readonly string[]).includes(raw.value)) return raw.value as T
  problems.push(`${raw.source}: expected one of ${allowed.join(', ')}, got ${show(raw.value)}`)
  return null
}

/** `s` as a host-order number when it is a strict dotted quad, else null. */
function parseIpv4 (s: string): number | null {
  return isIpv4(s) ? ipToInt(s) : null
}

/**
 * A tunnel address "a.b.c.d/p": a unicast host address (not the network or
 * broadcast address of its prefix) with a prefix length LIMITS.prefixMin..prefixMax.
 */
export function checkCidr (value: string, source: string, problems: string[]): Ipv4Cidr | null {
  const example = 'e.g. 10.0.0.2/24'
  const slash = value.indexOf('/')
  if (slash === -1) {
    if (isIpv4(value)) problems.push(`${source}: expected an address with its network prefix length, ${example}, got ${show(value)} (no /prefix)`)
    else problems.push(`${source}: expected an IPv4 address with prefix length, ${example}, got ${show(value)}`)
    return null
  }
  const ipPart = value.slice(0, slash)
  const prefixPart = value.slice(slash + 1)
  const ip = parseIpv4(ipPart)
  if (ip === null) {
    problems.push(`${source}: expected an IPv4 address with prefix length, ${example}, got ${show(value)} (${show(ipPart)} is not an IPv4 address)`)
    return null
  }
  if (!/^[0-9]{1,2}$/.test(prefixPart)) {
    problems.push(`${source}: expected a prefix length ${LIMITS.prefixMin}..${LIMITS.prefixMax} after "/", ${example}, got ${show(value)}`)
    return null
  }
  const prefix = Number(prefixPart)
  if (prefix < LIMITS.prefixMin || prefix > LIMITS.prefixMax) {
    problems.push(`${source}: expected a prefix length ${LIMITS.prefixMin}..${LIMITS.prefixMax}, got /${prefix} in ${show(value)} (` +
      (prefix > LIMITS.prefixMax
        ? 'a /31 or /32 network has no room for a server and its clients'
        : 'a network larger than /8 would swallow routes to unrelated addresses') + ')')
    return null
  }
  const first = ip >>> 24
  if (first === 0 || first === 127 || first >= 224) {
    problems.push(`${source}: expected a unicast address usable on a tunnel, got ${show(value)} (${first === 127 ? 'loopback' : first === 0 ? '0.0.0.0/8 is "this network"' : 'multicast or reserved'}); private ranges such as 10.0.0.0/8 are the usual choice`)
    return null
  }
  const network = networkAddress(ip, prefix)
  const broadcast = broadcastAddress(ip, prefix)
  if (ip === network) {
    problems.push(`${source}: expected a host address, got the network address ${ipPart} of ${intToIp(network)}/${prefix}; use e.g. ${intToIp(network + 1)}/${prefix}`)
    return null
  }
  if (ip === broadcast) {
    problems.push(`${source}: expected a host address, got the broadcast address ${ipPart} of ${intToIp(network)}/${prefix}; use e.g. ${intToIp(broadcast - 1)}/${prefix}`)
    return null
  }
  return { ip: intToIp(ip), ipInt: ip, prefix }
}

/** RFC 1123 host name: dot-separated labels of 1..63 letters, digits and inner hyphens, 253 at most. */
const HOSTNAME = /^(?=.{1,253}\.?$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/

/**
 * HOST:PORT. role 'listen': HOST is a local IPv4 address or a bracketed IPv6
 * one (empty = [::], all addresses of both families); role 'remote': an IPv4
 * address, a bracketed IPv6 address ([2001:db8::1]:9000) or a host name
 * (resolved at start, A or AAAA). An IPv6 host is kept without its brackets
 * (formatHostPort puts them back). PORT is minPort..65535 (a client's listen
 * port may be 0: any port). 240.0.0.0/4 is refused (never a unicast address;
 * the daemon uses those values as endpoint handles, wire/endpoint-handle.ts).
 */
export function checkHostPort (raw: Raw, opts: { role: 'listen' | 'remote', minPort: number }, problems: string[]): HostPort | null {
  const example = opts.role === 'listen' ? 'e.g. 0.0.0.0:9000 or [::]:9000' : 'e.g. 203.0.113.5:9000, [2001:db8::1]:9000 or vpn.example.com:9000'
  if (typeof raw.value !== 'string') {
    problems.push(`${raw.source}: expected HOST:PORT as a string, ${example}, got ${show(raw.value)}`)
    return null
  }
  const value = raw.value
  let host: string
  let portStr: string
  let ok = true
  if (value.startsWith('[')) {
    const close = value.indexOf(']')
    host = close < 0 ? '' : value.slice(1, close)
    if (close < 0 || value[close + 1] !== ':' || !isIPv6(host) || host.includes('%')) {
      problems.push(`${raw.source}: expected [IPV6]:PORT, ${example}, got ${show(value)}`)
      return null
    }
    portStr = value.slice(close + 2)
    if (opts.role === 'remote' && (host === '::' || /^ff/i.test(host))) {
      problems.push(`${raw.source}: expected the server's unicast IPv6 address, ${example}, got ${show(host)} in ${show(value)}`)
      ok = false
    }
  } else {
    if ((value.match(/:/g)?.length ?? 0) > 1) {
      problems.push(`${raw.source}: expected HOST:PORT with an IPv6 address in brackets, ${example}, got ${show(value)}`)
      return null
    }
    const colon = value.lastIndexOf(':')
    if (colon === -1) {
      problems.push(`${raw.source}: expected HOST:PORT, ${example}, got ${show(value)} (no port)`)
      return null
    }
    host = value.slice(0, colon)
    portStr = value.slice(colon + 1)
    if (host === '') {
      if (opts.role === 'listen') host = '::'
      else { problems.push(`${raw.source}: expected HOST:PORT with a host, ${example}, got ${show(value)}`); ok = false }
    } else if (opts.role === 'listen') {
      if (!isIpv4(host)) {
        problems.push(`${raw.source}: expected a local IPv4 address or a bracketed IPv6 one to bind (0.0.0.0 or [::] for all), ${example}, got ${show(host)} in ${show(value)}`)
        ok = false
      }
    } else if (!isIpv4(host)) {
      if (/^[0-9.]+$/.test(host) || !HOSTNAME.test(host)) {
        problems.push(`${raw.source}: expected an IPv4 address or host name, ${example}, got ${show(host)} in ${show(value)}`)
        ok = false
      }
    }
    if (ok && isIpv4(host) && ipToInt(host) >>> 28 === 0xf) {
      problems.push(`${raw.source}: ${show(host)} is in 240.0.0.0/4, which is never a unicast address, ${example}`)
      ok = false
    }
  }
  const port = /^[0-9]{1,5}$/.test(portStr) ? Number(portStr) : NaN
  if (Number.isNaN(port) || port < opts.minPort || port > 65535) {
    problems.push(`${raw.source}: expected a port ${opts.minPort}..65535${opts.minPort === 0 ? ' (0: any free port)' : ''}, got ${show(portStr)} in ${show(value)}`)
    ok = false
  }
  return ok ? { host, port } : null
}

/** host:port, with an IPv6 host in brackets ([2001:db8::1]:9000). */
export function formatHostPort (host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
}

/** A Linux network device name: 1..LIMITS.devNameMax of A-Z a-z 0-9 _ - . (not starting with "."). */
export function checkDev (value: string, source: string, problems: string[]): string | null {
  if (/^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/.test(value) && value.length <= LIMITS.devNameMax) return value
  problems.push(`${source}: expected a network device name of 1..${LIMITS.devNameMax} characters from A-Z a-z 0-9 _ - . (Linux limit), got ${show(value)}`)
  return null
}

/** A unix socket path, resolved against `cwd`, that fits sockaddr_un (LIMITS.controlPathMax bytes). */
export function checkControl (value: string, source: string, cwd: string, problems: string[]): string | null {
  if (value === '') {
    problems.push(`${source}: expected a unix socket path (default ${CONTROL_DIR}/<dev>.<netns>.sock), got an empty string`)
    return null
  }
  const path = resolve(cwd, value)
  if (Buffer.byteLength(path) > LIMITS.controlPathMax) {
    problems.push(`${source}: expected a socket path of at most ${LIMITS.controlPathMax} bytes (the unix socket limit), got ${Buffer.byteLength(path)} bytes: ${show(path)}`)
    return null
  }
  return path
}
