/**
 * The daemon's side of IPv6 outside: the table's place in the composition root, in one small file.
 *
 *   createV6Outside() ─▶ the daemon's IPv6 address table (dataplane/v6-table.ts), handed to the
 *                        dataplane (its socket resolves handles) and the controllers (ControlComponents.v6);
 *                        formatEndpoint names handles through it while the daemon runs
 *   endpointIp(text)  ─▶ a configured or resolved server address as an endpoint u32: IPv4 as is,
 *                        IPv6 as a pinned handle
 *   lookupHost(name)  ─▶ the system resolver, A or AAAA (whichever it lists first)
 *   localEndpoints6() ─▶ our global IPv6 addresses with our port: CANDIDATE6 in the init
 */
import { lookup } from 'node:dns/promises'
import { networkInterfaces } from 'node:os'
import { MAX_CANDIDATES6, type Endpoint6 } from './wire/attrs.js'
import { isIP } from 'node:net'
import { ipToInt, isIpv4, setHandleText } from './wire/addr.js'
import { parseIp6 } from './wire/prefix.js'
import { V6Table } from './dataplane/v6-table.js'
import { formatHostPort } from './config/validate.js'

export interface V6Outside {
  readonly table: V6Table
  /** An address's endpoint u32 (IPv6: a pinned handle), or null (not an address; the table is full). */
  endpointIp(text: string): number | null
  /** The table's counters for status (and so for metrics): IPv6 sources added, not added (full), entries recycled. */
  counters(): { v6SourcesAdded: number, v6SourcesMissed: number, v6EntriesRecycled: number }
  /** Stops naming handles in text (the daemon's teardown). */
  close(): void
}

export function createV6Outside (): V6Outside {
  const table = V6Table.create()
  setHandleText((ip) => table.text(ip))
  return {
    table,
    endpointIp: (text) => {
      if (isIpv4(text)) return ipToInt(text)
      if (isIP(text) !== 6) return null
      const a = parseIp6(text)
      // ::ffff:a.b.c.d is an IPv4 peer (the socket maps it so itself).
      if (a.subarray(0, 10).every(b => b === 0) && a[10] === 0xff && a[11] === 0xff) return ((a[12] << 24) | (a[13] << 16) | (a[14] << 8) | a[15]) >>> 0
      return table.intern(a, true)
    },
    counters: () => {
      const s = table.stats()
      return { v6SourcesAdded: s.added, v6SourcesMissed: s.misses, v6EntriesRecycled: s.recycled }
    },
    close: () => { setHandleText(null) }
  }
}

/**
 * Our IPv6 candidates (CANDIDATE6): the global unicast addresses of our interfaces (2000::/3; not
 * link-local, ULA, loopback, nor the tunnel's own address) with our port. Without NAT, a peer reaches
 * us there at once.
 */
export function localEndpoints6 (port: number, tunnel6: Uint8Array | null): Endpoint6[] {
  const out: Endpoint6[] = []
  if (port === 0) return out
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      if (a.family !== 'IPv6' || a.internal || a.scopeid !== 0) continue
      const addr = parseIp6(a.address.split('%')[0]!)
      if ((addr[0]! & 0xe0) !== 0x20) continue // 2000::/3 only
      if (tunnel6 !== null && addr.every((b, i) => b === tunnel6[i])) continue
      out.push({ addr, port })
    }
  }
  return out.slice(0, MAX_CANDIDATES6)
}

/** Where a server listens, as status and logs say it: '[::]:9000 (IPv4 and IPv6)', '0.0.0.0:9000'. */
export function listenText (host: string, family: 4 | 6, port: number): string {
  if (family === 4) return formatHostPort(host === '::' ? '0.0.0.0' : host, port)
  return host === '::' ? `[::]:${port} (IPv4 and IPv6)` : formatHostPort(host, port)
}

/** The system resolver's first answer of either family (the order getaddrinfo gives, RFC 6724). */
export async function lookupHost (host: string): Promise<string> {
  return (await lookup(host, { family: 0 })).address
}
