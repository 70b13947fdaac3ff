/**
 * Endpoint handles: u32 values in 240.0.0.0/4 (never a unicast address on any wire) that stand for an
 * endpoint that does not fit in an IPv4 u32. Endpoints stay { ip: number, port: number } everywhere;
 * only the socket layers and the formatting of endpoints resolve a handle.
 *   0xFE000000 | i  entry i of the IPv6 address table (a UDP endpoint with an IPv6 address)
 *   0xFD000000 | i  entry i of the transport connection table (a TCP stream or a fake-TCP flow)
 */
export const HANDLE_V6 = 0xfe000000
export const HANDLE_CONN = 0xfd000000
export const HANDLE_INDEX_MASK = 0x00ffffff
export function isV6Handle (ip: number): boolean { return (ip & 0xff000000) >>> 0 === HANDLE_V6 }
export function isConnHandle (ip: number): boolean { return (ip & 0xff000000) >>> 0 === HANDLE_CONN }
export function isHandle (ip: number): boolean { return ip >>> 28 === 0xf }

/** An endpoint's IPv4 address as the wire carries it: 0 for a handle (it has no IPv4 form; IPv6 endpoints travel in attributes). */
export function wireIp (ip: number): number { return isHandle(ip) ? 0 : ip }
/** The port beside wireIp: 0 for a handle. */
export function wirePort (ip: number, port: number): number { return isHandle(ip) ? 0 : port }
