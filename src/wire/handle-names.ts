/**
 * How an endpoint handle (wire/endpoint-handle.ts) reads in logs and status: the layer that owns a
 * handle names it here (dataplane/faketcp-link.ts: "faketcp:203.0.113.7:40123"), formatEndpoint
 * (wire/addr.ts) asks. Main thread only; a handle nobody named reads as "handle:0x…".
 */
const names = new Map<number, string>()

export function setHandleName (handle: number, name: string | null): void {
  if (name === null) names.delete(handle >>> 0)
  else names.set(handle >>> 0, name)
}

export function handleName (handle: number, port: number): string {
  return names.get(handle >>> 0) ?? `handle:0x${(handle >>> 0).toString(16)}:${port}`
}
