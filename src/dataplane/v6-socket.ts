/**
 * The dataplane's UDP socket, of either family (IPv6 outside, docs/ARCHITECTURE.md).
 *
 * Flow: listen host '::' (the default) or another IPv6 address → an AF_INET6 socket with IPV6_V6ONLY
 * off (IPv4 peers arrive v4-mapped and the addon maps them back to plain u32 endpoints), attached to
 * the daemon's IPv6 address table so handles resolve and new IPv6 sources get entries; a dotted quad
 * → AF_INET as before. A host whose kernel has no IPv6 at all (ipv6.disable=1: EAFNOSUPPORT) gets
 * 0.0.0.0 instead of '::', with one info line.
 */
import type { Logger } from '../log.js'
import { isNativeErrnoError, openUdp, type Native } from './native.js'
import type { V6Table } from './v6-table.js'

export interface OutsideSocket { fd: number, port: number, family: 4 | 6 }

export function openOutsideSocket (native: Native, host: string, port: number, bufBytes: number, table: V6Table | null, log: Logger): OutsideSocket {
  let udp: OutsideSocket
  try {
    udp = openUdp(native, host, port, bufBytes)
  } catch (err) {
    const cause = (err as { cause?: unknown }).cause
    if (host !== '::' || !isNativeErrnoError(cause) || cause.code !== 'EAFNOSUPPORT') throw err
    log.info('this host has no IPv6 (EAFNOSUPPORT); listening on 0.0.0.0 (IPv4 only)')
    udp = openUdp(native, '0.0.0.0', port, bufBytes)
  }
  if (udp.family === 6 && table !== null) native.udpAttachV6Table(udp.fd, table.mem)
  return udp
}
