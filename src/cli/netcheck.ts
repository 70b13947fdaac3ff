/**
 * `lightweight-tunnel netcheck`: prints the running client's report
 * (control socket {"cmd":"netcheck"}; control/observe-requests.ts): UDP
 * reachability of the server and its RTT, our public endpoint, the NAT kind
 * and how it was decided, the NAT-check port, the port mapping (as status
 * prints it) and the path MTU.
 *
 *   netcheck of the client on lwt0 (server 198.51.100.1:9000, registered)
 *     UDP             yes: the server answered a Ping in 0.42 ms (keepalive RTT 0.45 ms)
 *     public address  198.51.100.2:41234 (how the server sees us)
 *     NAT             cone: the server's main port and 1 other destination ...
 *     NAT-check port  198.51.100.1:9001 answering in 0.40 ms, sees us at 198.51.100.2:41234
 *     local addresses 10.1.0.2:41234
 *     port mapping    UPnP 198.51.100.2:41234 → port 41234 via gateway 10.1.0.1, lifetime 7200 s (7195 s left); offered to peers
 *     path MTU        1468 bytes to the server (confirmed; carries full-size tunnel packets)
 */
import type { NetcheckReport } from '../control/observe-requests.js'
import { formatRttMs } from './ping.js'
import { formatPortMapping } from './status-format.js'

export function isNetcheckReport (v: unknown): v is NetcheckReport {
  const r = v as Partial<NetcheckReport> | null
  return r !== null && typeof r === 'object' && typeof r.server === 'string' && typeof r.nat === 'string' && typeof r.natCheck === 'object' && r.natCheck !== null
}

function clean (s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?')
}

export function formatNetcheck (r: NetcheckReport, dev: string): string {
  const rows: Array<[string, string]> = []
  rows.push(['UDP', r.udp
    ? `yes: the server answered a Ping in ${formatRttMs(r.rttMs!)}${r.keepaliveRttMs === null ? '' : ` (keepalive RTT ${formatRttMs(r.keepaliveRttMs)})`}`
    : `NO: the server did not answer a Ping (state ${clean(r.state)}); check the address, the port and any firewall on the way`])
  rows.push(['public address', r.publicEndpoint === null ? 'unknown (not registered yet)' : `${clean(r.publicEndpoint)} (how the server sees us)`])
  rows.push(['NAT', `${clean(r.nat)}: ${clean(r.natHow)}`])
  const nc = r.natCheck
  rows.push(['NAT-check port', nc.answering
    ? `${clean(nc.endpoint)} answering in ${formatRttMs(nc.rttMs!)}${nc.sawUs === null ? '' : `, sees us at ${clean(nc.sawUs)}`}`
    : `${clean(nc.endpoint)} NOT answering (the server runs without it, or a firewall drops it): the NAT kind is then learned from peers only`])
  if (r.otherViews.length > 0) rows.push(['other views', r.otherViews.map(clean).join(', ')])
  rows.push(['local addresses', r.localEndpoints.length === 0 ? '-' : r.localEndpoints.map(clean).join(', ')])
  rows.push(['port mapping', r.portMapping === null ? 'off (--no-port-mapping or --no-p2p)' : typeof r.portMapping === 'string' ? clean(r.portMapping) : formatPortMapping(r.portMapping)])
  rows.push(['path MTU', clean(r.pathMtu)])
  const w = Math.max(...rows.map(([k]) => k.length))
  return [`netcheck of the client on ${clean(dev)} (server ${clean(r.server)}, ${clean(r.state)})`, ...rows.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`)].join('\n') + '\n'
}
