/**
 * Fake-TCP flow handles: the upper half of the transport connection table's handle space
 * (wire/endpoint-handle.ts HANDLE_CONN | i, i ≥ 2^23), handed out by the addon (native/faketcp.c
 * FT_HANDLE_BASE) and resolved there on every send; transport/conn-table.ts hands out i < 2^23 for
 * TCP streams. How a flow reads in logs and status ("faketcp:203.0.113.7:40123") is set here by
 * dataplane/faketcp-link.ts and read by formatEndpoint (wire/addr.ts). Main thread only.
 */
export const FAKETCP_HANDLE_BASE = 0xfd800000

export function isFakeTcpHandle (ip: number): boolean { return (ip & 0xff800000) >>> 0 === FAKETCP_HANDLE_BASE }

const names = new Map<number, string>()

export function setFakeTcpHandleText (handle: number, text: string | null): void {
  if (text === null) names.delete(handle >>> 0)
  else names.set(handle >>> 0, text)
}

export function fakeTcpHandleText (handle: number, port: number): string {
  return names.get(handle >>> 0) ?? `faketcp:0x${(handle >>> 0).toString(16)}:${port}`
}
