/**
 * `lightweight-tunnel nodes [remove|allow NODE]`: the server's registry of
 * node keys and addresses, as people read it (control socket requests
 * {"cmd":"nodes"}, {"cmd":"nodes-remove","node":…}, {"cmd":"nodes-allow",
 * "node":…}; control/nodes.ts answers them). --json prints the answer itself.
 *
 *   ADDRESS    FINGERPRINT              LIVE  ENDPOINT            FIRST SEEN            LAST SEEN
 *   10.0.0.2   SHA256:6XcM0s0H1Z1y4rN0  yes   198.51.100.7:41000  2026-12-05 09:52:01Z  2026-12-05 10:31:12Z
 *
 *   keys:
 *     10.0.0.2         mJ0cW5n1…=
 *
 *   revoked keys:
 *   SHA256:…  (key …=)  revoked 2026-12-05 10:02:44Z
 */
import type { NodeInfo, NodesChange, NodesReport, RevokedInfo } from '../control/nodes.js'
import { VpnError } from '../errors.js'

export type NodesAction = 'list' | 'remove' | 'allow'

/** The control request of an action. */
export function nodesRequest (action: NodesAction, node: string | null): { cmd: string, node?: string } {
  if (action === 'list') return { cmd: 'nodes' }
  return { cmd: action === 'remove' ? 'nodes-remove' : 'nodes-allow', node: node ?? '' }
}

export function isNodesReport (v: unknown): v is NodesReport {
  const r = v as Partial<NodesReport> | null
  return r !== null && typeof r === 'object' && Array.isArray(r.nodes) && Array.isArray(r.revoked)
}

function isNodesChange (v: unknown): v is NodesChange {
  const r = v as Partial<NodesChange> | null
  return r !== null && typeof r === 'object' && Array.isArray(r.nodes) && Array.isArray(r.revoked) && Array.isArray(r.allowed) && typeof r.disconnected === 'number'
}

// eslint-disable-next-line no-control-regex
const clean = (s: string): string => s.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?')
/** "2026-12-05 09:52:01Z" from an ISO time. */
const when = (iso: string): string => clean(iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z'))

function table (rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map(r => r[i]!.length)))
  return rows.map(r => r.map((c, i) => i === r.length - 1 ? c : c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n'
}

export function formatNodes (r: NodesReport): string {
  let out = r.authorizedNodes === null
    ? 'open registration: any holder of the network key may register a free address; an address belongs to the key that registered it first\n'
    : `strict mode: only the nodes listed in ${clean(r.authorizedNodes)} are admitted\n`
  if (r.nodes.length === 0) out += '\nno node has registered yet\n'
  else {
    // An IPV6 column only when some node has an IPv6 tunnel address.
    const six = r.nodes.some(n => n.address6 != null)
    const head = ['ADDRESS', ...(six ? ['IPV6'] : []), 'FINGERPRINT', 'LIVE', 'ENDPOINT', 'FIRST SEEN', 'LAST SEEN']
    if (r.authorizedNodes !== null) head.push('LISTED')
    const rows = [head]
    for (const n of r.nodes) {
      const row = [clean(n.address), ...(six ? [n.address6 == null ? '-' : clean(n.address6)] : []), clean(n.fingerprint), n.live ? 'yes' : 'no', n.endpoint === null ? '-' : clean(n.endpoint), when(n.firstSeen), when(n.lastSeen)]
      if (r.authorizedNodes !== null) row.push(n.authorized === true ? 'yes' : 'NO')
      rows.push(row)
    }
    out += '\n' + table(rows)
    out += '\nkeys:\n' + r.nodes.map((n: NodeInfo) => `  ${clean(n.address).padEnd(15)}  ${clean(n.key)}\n`).join('')
  }
  if (r.revoked.length > 0) {
    out += '\nrevoked keys (refused; "nodes allow KEY" lifts a revocation):\n'
    out += r.revoked.map((k: RevokedInfo) => `  ${clean(k.fingerprint)}  ${clean(k.key)}  revoked ${when(k.at)}\n`).join('')
  }
  return out
}

export function formatNodesChange (action: NodesAction, c: NodesChange): string {
  const lines: string[] = []
  if (action === 'remove') {
    for (const n of c.nodes) lines.push(`removed ${clean(n.address)}${n.address6 != null ? ` and ${clean(n.address6)}` : ''} (${clean(n.fingerprint)}): the address is free, the key is refused from now on`)
    for (const k of c.revoked) if (!c.nodes.some(n => n.key === k.key)) lines.push(`revoked the key ${clean(k.fingerprint)} (it holds no address)`)
    if (c.nodes.length === 0 && c.revoked.length === 0) lines.push('the key was already revoked; nothing changed')
    lines.push(c.disconnected === 0 ? 'no live session was affected' : `${c.disconnected} live node${c.disconnected === 1 ? '' : 's'} disconnected; its peers drop their sessions with it`)
  } else {
    for (const k of c.allowed) lines.push(`allowed the key ${clean(k.fingerprint)} again: it may register a free address`)
  }
  return lines.join('\n') + '\n'
}

/** Prints the daemon's answer; throws when it is not one. */
export function printNodes (action: NodesAction, result: unknown, json: boolean, dev: string, out: (s: string) => void): void {
  if (json) { out(JSON.stringify(result, null, 2) + '\n'); return }
  if (action === 'list' ? !isNodesReport(result) : !isNodesChange(result)) {
    throw new VpnError('ERR_CONTROL_SOCKET', `the daemon on ${dev} answered nodes with something this command does not know`, { hint: 'is it the same version as this command? try --json to see the answer' })
  }
  out(action === 'list' ? formatNodes(result as NodesReport) : formatNodesChange(action, result as NodesChange))
}
