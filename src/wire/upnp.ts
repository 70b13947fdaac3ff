/**
 * UPnP IGD texts (UPnP Device Architecture 1.1; IGD:1 / IGD:2
 * WANIPConnection and WANPPPConnection): the SSDP M-SEARCH we send and the
 * answer we read, the few elements of a device description we need (URLBase,
 * each service's serviceType and controlURL), the SOAP requests and the
 * answers (an action's out-arguments or a UPnPError code). No XML library:
 * every document is bounded (MAX_DOC) and scanned for named elements only;
 * anything else is a typed reason string, never a throw. Pure, no I/O
 * (control/upnp.ts decides, upnp-io.ts moves the bytes).
 */

/** The SSDP multicast group and port (UDA 1.1 §1.3.2). */
export const SSDP_GROUP = '239.255.255.250'
export const SSDP_PORT = 1900
/** A description or SOAP answer larger than this is refused (a router's rootDesc.xml is 2–10 KiB). */
export const MAX_DOC = 64 * 1024
/** An SSDP answer larger than this is refused (a few hundred bytes normally). */
export const MAX_SSDP = 2048

/** What we search for: the device (IGD:1 and 2) and the services themselves (some routers answer only these). */
export const SEARCH_TARGETS = [
  'urn:schemas-upnp-org:device:InternetGatewayDevice:1',
  'urn:schemas-upnp-org:device:InternetGatewayDevice:2',
  'urn:schemas-upnp-org:service:WANIPConnection:1',
  'urn:schemas-upnp-org:service:WANIPConnection:2'
] as const

/** Services that map ports, best first (IGD:2's WANIPConnection:2 has the same AddPortMapping). */
export const MAPPING_SERVICES = [
  'urn:schemas-upnp-org:service:WANIPConnection:2',
  'urn:schemas-upnp-org:service:WANIPConnection:1',
  'urn:schemas-upnp-org:service:WANPPPConnection:1'
] as const

/** An M-SEARCH for `st` (UDA 1.1 §1.3.2); MX in seconds (1–5; we ask 1). */
export function encodeMSearch (st: string, mx = 1): Uint8Array {
  return Buffer.from(`M-SEARCH * HTTP/1.1\r\nHOST: ${SSDP_GROUP}:${SSDP_PORT}\r\nMAN: "ssdp:discover"\r\nMX: ${mx}\r\nST: ${st}\r\n\r\n`, 'latin1')
}

export interface SsdpAnswer {
  /** The LOCATION header: the device description's URL. */
  location: string
  /** The ST header. */
  st: string
}

/** An M-SEARCH answer (HTTP/1.1 200 with LOCATION and ST), or why not. */
export function decodeSsdp (b: Uint8Array): SsdpAnswer | string {
  if (b.length > MAX_SSDP) return 'oversize'
  const text = Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1')
  const lines = text.split('\r\n')
  if (!/^HTTP\/1\.[01] 200\b/i.test(lines[0] ?? '')) return 'not an HTTP 200 answer'
  const h = new Map<string, string>()
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':')
    if (i > 0) h.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim())
  }
  const location = h.get('location')
  const st = h.get('st')
  if (location === undefined || location === '') return 'no LOCATION header'
  if (st === undefined) return 'no ST header'
  return { location, st }
}

/** The URL's host when it is http://<IPv4 literal>[:port]/…, else null (a description elsewhere is not followed). */
export function httpIpv4Host (url: string): string | null {
  let u: URL
  try { u = new URL(url) } catch { return null }
  if (u.protocol !== 'http:' || u.username !== '' || u.password !== '') return null
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(u.hostname) ? u.hostname : null
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }

function unescapeXml (s: string): string {
  return s.replace(/&(amp|lt|gt|quot|apos|#\d{1,6}|#x[0-9a-f]{1,6});/gi, (_, e: string) => {
    if (e[0] !== '#') return ENTITIES[e.toLowerCase()] ?? ''
    const n = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10)
    return n > 0 && n < 0x110000 ? String.fromCodePoint(n) : ''
  })
}

/**
 * The text of each `<name>…</name>` in `xml` (any namespace prefix),
 * unescaped and trimmed. Linear in the document: an open tag's attributes
 * stop at the next '<', and an open tag without its close ends the scan (a
 * lazy `[\s\S]*?` regex would rescan the rest for every unclosed tag).
 */
export function elements (xml: string, name: string): string[] {
  const open = new RegExp(`<(?:[A-Za-z_][\\w.-]*:)?${name}(?:\\s[^<>]*)?>`, 'g')
  const close = new RegExp(`</(?:[A-Za-z_][\\w.-]*:)?${name}\\s*>`, 'g')
  const out: string[] = []
  for (let m = open.exec(xml); m !== null; m = open.exec(xml)) {
    close.lastIndex = open.lastIndex
    const c = close.exec(xml)
    if (c === null) break
    out.push(unescapeXml(xml.slice(open.lastIndex, c.index)).trim())
    open.lastIndex = close.lastIndex
  }
  return out
}

export interface IgdService {
  serviceType: (typeof MAPPING_SERVICES)[number]
  /** Absolute http URL, on the description's host. */
  controlUrl: string
}

/**
 * The port-mapping services of a device description fetched from
 * `location`, best first (MAPPING_SERVICES order), each control URL resolved
 * against URLBase (or the location) and required on the description's own
 * host; or why none.
 */
export function parseDescription (xml: string, location: string): IgdService[] | string {
  if (xml.length > MAX_DOC) return 'oversize'
  if (!/<(?:[\w.-]+:)?root[\s>]/.test(xml)) return 'not a UPnP device description (no <root>)'
  const host = httpIpv4Host(location)
  if (host === null) return 'LOCATION is not an http URL with an IPv4 address'
  const base = elements(xml, 'URLBase')[0] || location
  const found: IgdService[] = []
  for (const svc of elements(xml, 'service')) {
    const type = elements(svc, 'serviceType')[0] as IgdService['serviceType'] | undefined
    const ctl = elements(svc, 'controlURL')[0]
    if (type === undefined || !MAPPING_SERVICES.includes(type) || ctl === undefined || ctl === '') continue
    let url: string
    try { url = new URL(ctl, base).href } catch { continue }
    if (httpIpv4Host(url) !== host) continue
    if (!found.some(s => s.controlUrl === url && s.serviceType === type)) found.push({ serviceType: type, controlUrl: url })
  }
  if (found.length === 0) return 'no WANIPConnection or WANPPPConnection service with a control URL on the same host'
  return found.sort((a, b) => MAPPING_SERVICES.indexOf(a.serviceType) - MAPPING_SERVICES.indexOf(b.serviceType))
}

const esc = (s: string): string => s.replace(/[&<>"']/g, c => `&${Object.entries(ENTITIES).find(([, v]) => v === c)![0]};`)

/** A SOAP request: the body and the SOAPAction header value. */
export function encodeSoap (serviceType: string, action: string, args: Array<[string, string | number]>): { body: string, soapAction: string } {
  const inner = args.map(([k, v]) => `<${k}>${esc(String(v))}</${k}>`).join('')
  const body = '<?xml version="1.0"?>\r\n<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">' +
    `<s:Body><u:${action} xmlns:u="${esc(serviceType)}">${inner}</u:${action}></s:Body></s:Envelope>\r\n`
  return { body, soapAction: `"${serviceType}#${action}"` }
}

/** AddPortMapping's arguments (IGD WANIPConnection:1 §2.4.16); lease 0 asks for a permanent mapping. */
export function addPortMappingArgs (externalPort: number, internalPort: number, client: string, leaseSec: number): Array<[string, string | number]> {
  return [['NewRemoteHost', ''], ['NewExternalPort', externalPort], ['NewProtocol', 'UDP'], ['NewInternalPort', internalPort],
    ['NewInternalClient', client], ['NewEnabled', 1], ['NewPortMappingDescription', 'lightweight-tunnel'], ['NewLeaseDuration', leaseSec]]
}

export function deletePortMappingArgs (externalPort: number): Array<[string, string | number]> {
  return [['NewRemoteHost', ''], ['NewExternalPort', externalPort], ['NewProtocol', 'UDP']]
}

export type SoapAnswer =
  | { ok: true, args: Map<string, string> }
  | { ok: false, code: number, description: string }

/**
 * A SOAP answer: HTTP 200 with the action's response element (its child
 * elements become `args`), or a UPnPError (errorCode, errorDescription;
 * sent with HTTP 500), or why it is neither.
 */
export function decodeSoap (status: number, xml: string, action: string): SoapAnswer | string {
  if (xml.length > MAX_DOC) return 'oversize'
  if (status !== 200) {
    const code = Number(elements(xml, 'errorCode')[0])
    if (!Number.isInteger(code) || code <= 0) return `HTTP ${status} without a UPnPError code`
    return { ok: false, code, description: (elements(xml, 'errorDescription')[0] ?? '').slice(0, 120) }
  }
  const resp = elements(xml, `${action}Response`)
  if (resp.length === 0) {
    if (/<(?:[\w.-]+:)?\w+Response[\s/>]/.test(xml)) return `answer to another action than ${action}`
    return `no ${action}Response element`
  }
  const args = new Map<string, string>()
  for (const m of resp[0]!.matchAll(/<([A-Za-z_][\w.-]*)(?:\s[^<>]*)?>([^<]*)<\/\1\s*>/g)) args.set(m[1]!, unescapeXml(m[2]!).trim())
  return { ok: true, args }
}

/** A UPnPError code in words (IGD WANIPConnection:1 §2.4.16, :2 §2.5.16; UDA 1.1 §3.2.2). */
export function describeUpnpError (code: number, description: string): string {
  const known: Record<number, string> = {
    401: 'InvalidAction', 402: 'InvalidArgs', 501: 'ActionFailed', 606: 'ActionNotAuthorized (the router allows no changes through UPnP)',
    714: 'NoSuchEntryInArray', 715: 'WildCardNotPermittedInSrcIP', 716: 'WildCardNotPermittedInExtPort', 718: 'ConflictInMappingEntry',
    724: 'SamePortValuesRequired', 725: 'OnlyPermanentLeasesSupported', 726: 'RemoteHostOnlySupportsWildcard',
    727: 'ExternalPortOnlySupportsWildcard', 728: 'NoPortMapsAvailable', 729: 'ConflictWithOtherMechanisms'
  }
  // eslint-disable-next-line no-control-regex
  const d = description.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?')
  return `error ${code} ${known[code] ?? (d === '' ? 'unknown' : d)}`
}
