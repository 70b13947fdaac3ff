/**
 * NAT kinds for a lab router namespace, as nftables rulesets, plus loss and
 * blocking helpers for failover tests. Recipes follow
 * research/nat-anchors.md §7.3 (validated on this machine's kernel) with one
 * change: the full-cone / address-restricted DNAT map is learned from the
 * packet *after* source NAT (postrouting, priority srcnat + 10), keyed by the
 * mapped WAN port, so it stays right when masquerade has to remap a port
 * (two LAN hosts using the same source port behind one router).
 *
 *   kind                 mapping (RFC 4787)              filtering
 *   none                 no translation (plain router)   none
 *   full-cone            endpoint-independent (EIM)      endpoint-independent (EIF)
 *   address-restricted   EIM                             address-dependent (ADF)
 *   port-restricted      EIM                             address+port-dependent (APDF)
 *   symmetric            address+port-dependent (APDM:   APDF
 *                        `masquerade random`, a random
 *                        port per new flow)
 *
 * EIM comes from Linux masquerade itself: `get_unique_tuple()` reuses the
 * existing mapping of a source ip:port and preserves the port when it is free
 * (§7.4). Every NAT kind also installs the "home router" WAN filter (§7.3e):
 * inbound packets on the WAN are dropped unless they belong to a conntrack
 * entry or were DNATed by the full-cone map. Without it, unsolicited packets
 * reach the router's INPUT path and conntrack confirms entries for them,
 * which poisons later mappings (§7.5).
 *
 * Mapping timeout: conntrack timeouts are per network namespace (§7.4;
 * verified here by the lab tests), so `setUdpTimeout()` sets
 * `net.netfilter.nf_conntrack_udp_timeout` and `_stream` inside the router
 * only. The learned full-cone map and the contacted-peers set use the same
 * value, refreshed by outbound traffic.
 *
 * Tables owned here (so other rulesets in the namespace are untouched):
 * `ip lwt_nat`, `inet lwt_filter`, `netdev lwt_loss_<dev>`, `inet lwt_block`,
 * `bridge lwt_block`.
 */
import { run } from './exec.js'
import { sysctl } from './netns.js'

export type NatKind = 'none' | 'full-cone' | 'address-restricted' | 'port-restricted' | 'symmetric'

export const NAT_KINDS: readonly NatKind[] = ['none', 'full-cone', 'address-restricted', 'port-restricted', 'symmetric']

export function isNatKind (v: unknown): v is NatKind {
  return typeof v === 'string' && (NAT_KINDS as readonly string[]).includes(v)
}

/** What each kind should do, for tests and documentation (RFC 4787 terms). */
export const NAT_BEHAVIOUR: Readonly<Record<NatKind, { mapping: 'none' | 'EIM' | 'APDM', filtering: 'none' | 'EIF' | 'ADF' | 'APDF' }>> = {
  none: { mapping: 'none', filtering: 'none' },
  'full-cone': { mapping: 'EIM', filtering: 'EIF' },
  'address-restricted': { mapping: 'EIM', filtering: 'ADF' },
  'port-restricted': { mapping: 'EIM', filtering: 'APDF' },
  symmetric: { mapping: 'APDM', filtering: 'APDF' }
}

/** Linux defaults (kernel docs, nf_conntrack-sysctl): 30 s unreplied, 120 s for a flow seen both ways. */
export const DEFAULT_UDP_TIMEOUT_SEC = 30
export const DEFAULT_UDP_STREAM_TIMEOUT_SEC = 120

export interface NatOptions {
  /** WAN interface name inside the router namespace. */
  wan: string
  /** LAN interface name inside the router namespace. */
  lan: string
  /** The router's WAN address (documentation and future static maps; masquerade picks it from `wan`). */
  wanIp: string
  /**
   * Lifetime of an idle full-cone / address-restricted learned mapping, in
   * seconds. Default 120 (the conntrack stream default). `applyNat` does NOT
   * change conntrack timeouts; use `setUdpTimeout` (createTopology does both).
   */
  mappingTimeoutSec?: number
  /**
   * Public source ports the NAT maps to (`masquerade to :lo-hi` for UDP and TCP); absent:
   * the kernel's default (it keeps the inside port when free). Changing it
   * and flushing conntrack (`flushConntrack`) moves every mapping to a new
   * port: NAT rebinding (bench/p2p.ts rebind, test/e2e/p2p-paths.test.ts).
   */
  portRange?: readonly [number, number]
}

function q (dev: string): string {
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(dev)) throw new Error(`invalid interface name "${dev}"`)
  return `"${dev}"`
}

/**
 * The nftables script (for `nft -f -`) implementing `kind` on a router.
 * Idempotent: it first deletes the tables it owns. Pure, so tests can read it.
 */
export function natRuleset (kind: NatKind, opts: NatOptions): string {
  const wan = q(opts.wan)
  const lan = q(opts.lan)
  const timeout = Math.max(1, Math.round(opts.mappingTimeoutSec ?? DEFAULT_UDP_STREAM_TIMEOUT_SEC))
  const pr = opts.portRange
  if (pr !== undefined && !(Number.isInteger(pr[0]) && Number.isInteger(pr[1]) && pr[0] >= 1024 && pr[0] <= pr[1] && pr[1] <= 65535)) {
    throw new Error(`NAT port range must be whole ports 1024 <= lo <= hi <= 65535 (got ${pr[0]}-${pr[1]})`)
  }
  // A port mapping needs a transport match: UDP and TCP get the range, the rest (ICMP) the plain rule below it.
  const ranged = pr === undefined ? [] : [`    oifname ${wan} meta l4proto { tcp, udp } masquerade to :${pr[0]}-${pr[1]}${kind === 'symmetric' ? ' random' : ''}`]
  const lines: string[] = [
    '# lightweight-tunnel lab NAT: ' + kind + ` (wan ${opts.wan} ${opts.wanIp}, lan ${opts.lan})`,
    // "add" then "delete" makes the delete safe when the table does not exist yet.
    'add table ip lwt_nat',
    'delete table ip lwt_nat',
    'add table inet lwt_filter',
    'delete table inet lwt_filter'
  ]
  if (kind === 'none') return lines.join('\n') + '\n'

  lines.push('table ip lwt_nat {')
  const learned = kind === 'full-cone' || kind === 'address-restricted'
  if (learned) {
    lines.push(
      '  # mapped WAN port -> LAN host ip . port, learned after SNAT',
      '  map fc {',
      '    type inet_service : ipv4_addr . inet_service',
      '    flags dynamic,timeout',
      `    timeout ${timeout}s`,
      '  }'
    )
    if (kind === 'address-restricted') {
      lines.push(
        '  # remote ip . mapped WAN port pairs the LAN side has sent to',
        '  set peers {',
        '    type ipv4_addr . inet_service',
        '    flags dynamic,timeout',
        `    timeout ${timeout}s`,
        '  }'
      )
    }
    lines.push(
      '  chain learn {',
      '    type filter hook postrouting priority srcnat + 10; policy accept;',
      // Outbound flows started on the LAN: the packet already carries the mapped port.
      `    oifname ${wan} meta l4proto udp ct direction original update @fc { udp sport : ct original ip saddr . ct original proto-src }`,
      // Replies of the LAN host to a flow the map let in: keep the entry fresh.
      `    oifname ${wan} meta l4proto udp ct direction reply update @fc { udp sport : ct reply ip saddr . ct reply proto-src }`
    )
    if (kind === 'address-restricted') {
      lines.push(`    oifname ${wan} meta l4proto udp update @peers { ip daddr . udp sport }`)
    }
    lines.push(
      '  }',
      '  chain pre {',
      '    type nat hook prerouting priority dstnat; policy accept;',
      kind === 'full-cone'
        ? `    iifname ${wan} meta l4proto udp dnat ip to udp dport map @fc`
        : `    iifname ${wan} meta l4proto udp ip saddr . udp dport @peers dnat ip to udp dport map @fc`,
      '  }'
    )
  }
  lines.push(
    '  chain post {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    ...ranged,
    kind === 'symmetric'
      ? `    oifname ${wan} masquerade random`
      : `    oifname ${wan} masquerade`,
    '  }',
    '}',
    // §7.3e: a home router drops unsolicited inbound on its WAN.
    'table inet lwt_filter {',
    '  chain input {',
    '    type filter hook input priority filter; policy accept;',
    `    iifname ${wan} ct state established,related accept`,
    `    iifname ${wan} drop`,
    '  }',
    '  chain forward {',
    '    type filter hook forward priority filter; policy accept;',
    `    iifname ${wan} ct state established,related accept`,
    `    iifname ${wan} ct status dnat accept`,
    `    iifname ${wan} drop`,
    `    iifname ${lan} accept`,
    '  }',
    '}'
  )
  return lines.join('\n') + '\n'
}

/** Runs an nftables script inside `ns`. */
export async function nft (ns: string, script: string): Promise<void> {
  await run('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], { input: script })
}

/** Installs NAT `kind` in router namespace `ns` (replacing an earlier one). */
export async function applyNat (ns: string, kind: NatKind, opts: NatOptions): Promise<void> {
  await nft(ns, natRuleset(kind, opts))
}

/**
 * Sets the UDP conntrack timeouts of namespace `ns` (how long an idle UDP
 * mapping lives on that router). `streamSec` (flows seen in both directions)
 * defaults to `sec`, so one number is the mapping timeout.
 */
export async function setUdpTimeout (ns: string, sec: number, streamSec = sec): Promise<void> {
  if (!(Number.isInteger(sec) && sec > 0 && Number.isInteger(streamSec) && streamSec > 0)) {
    throw new Error(`UDP timeout must be a positive whole number of seconds (got ${sec}/${streamSec})`)
  }
  await sysctl(ns, 'net.netfilter.nf_conntrack_udp_timeout', sec)
  await sysctl(ns, 'net.netfilter.nf_conntrack_udp_timeout_stream', streamSec)
}

/** Forgets every conntrack entry in `ns` (NAT rebinding: mappings change on the next packet). */
export async function flushConntrack (ns: string): Promise<void> {
  try {
    await run('ip', ['netns', 'exec', ns, 'conntrack', '-F'])
  } catch (err) {
    // conntrack(8) exits 1 with "0 flow entries have been deleted" on an empty table.
    if (!/0 flow entries/.test(String((err as Error).message))) throw err
  }
}

export type LossDirection = 'ingress' | 'egress' | 'both'

function lossTable (iface: string): string {
  q(iface)
  return `lwt_loss_${iface.replace(/[^A-Za-z0-9_]/g, '_')}`
}

/**
 * Drops `percent` % of the packets on `iface` in `ns`, chosen at random per
 * packet (nft `numgen random`; this kernel has no netem). `direction`
 * defaults to 'both': a round trip then sees roughly 1-(1-p)^2 loss. `0`
 * removes the loss. Works on any device (netdev ingress/egress hooks), also
 * on bridge ports in the "internet" namespace.
 */
export async function setLoss (ns: string, iface: string, percent: number, direction: LossDirection = 'both'): Promise<void> {
  if (!(Number.isInteger(percent) && percent >= 0 && percent <= 100)) {
    throw new Error(`loss must be a whole percentage 0-100 (got ${percent})`)
  }
  const table = lossTable(iface)
  const lines = [`add table netdev ${table}`, `delete table netdev ${table}`]
  if (percent > 0) {
    // numgen's range is 0-99: "< 100" is rejected, so 100 % is a plain drop.
    const rule = percent === 100 ? 'drop' : `numgen random mod 100 < ${percent} drop`
    lines.push(`table netdev ${table} {`)
    if (direction !== 'egress') {
      lines.push(
        '  chain in {',
        `    type filter hook ingress device ${q(iface)} priority filter; policy accept;`,
        `    ${rule}`,
        '  }'
      )
    }
    if (direction !== 'ingress') {
      lines.push(
        '  chain out {',
        `    type filter hook egress device ${q(iface)} priority filter; policy accept;`,
        `    ${rule}`,
        '  }'
      )
    }
    lines.push('}')
  }
  await nft(ns, lines.join('\n') + '\n')
}

function checkIp (ip: string): string {
  if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(ip)) throw new Error(`not an IPv4 address: "${ip}"`)
  return ip
}

const BLOCK_SETUP = [
  // Routed and local traffic (any namespace).
  'add table inet lwt_block',
  'add set inet lwt_block pairs { type ipv4_addr . ipv4_addr; }',
  'add chain inet lwt_block pre { type filter hook prerouting priority raw; policy accept; }',
  'add chain inet lwt_block out { type filter hook output priority raw; policy accept; }',
  'flush chain inet lwt_block pre',
  'flush chain inet lwt_block out',
  'add rule inet lwt_block pre ip saddr . ip daddr @pairs drop',
  'add rule inet lwt_block out ip saddr . ip daddr @pairs drop',
  // Bridged traffic (the "internet" namespace switches, it does not route).
  'add table bridge lwt_block',
  'add set bridge lwt_block pairs { type ipv4_addr . ipv4_addr; }',
  'add chain bridge lwt_block fw { type filter hook forward priority filter; policy accept; }',
  'flush chain bridge lwt_block fw',
  'add rule bridge lwt_block fw ip saddr . ip daddr @pairs drop'
]

/**
 * Drops all IPv4 traffic between `ipA` and `ipB` (both directions) that
 * passes through, leaves or enters namespace `ns`. In the internet namespace
 * this cuts the path between two WAN hosts; `unblock` restores it.
 * Conntrack entries are kept, so a path comes back with the same mappings.
 */
export async function blockBetween (ns: string, ipA: string, ipB: string): Promise<void> {
  const a = checkIp(ipA)
  const b = checkIp(ipB)
  await nft(ns, [
    ...BLOCK_SETUP,
    `add element inet lwt_block pairs { ${a} . ${b}, ${b} . ${a} }`,
    `add element bridge lwt_block pairs { ${a} . ${b}, ${b} . ${a} }`
  ].join('\n') + '\n')
}

/** Undoes `blockBetween(ns, ipA, ipB)`. Does nothing if the pair is not blocked. */
export async function unblock (ns: string, ipA: string, ipB: string): Promise<void> {
  const a = checkIp(ipA)
  const b = checkIp(ipB)
  // Re-adding first makes the delete safe when the pair is not in the set.
  await nft(ns, [
    ...BLOCK_SETUP,
    `add element inet lwt_block pairs { ${a} . ${b}, ${b} . ${a} }`,
    `add element bridge lwt_block pairs { ${a} . ${b}, ${b} . ${a} }`,
    `delete element inet lwt_block pairs { ${a} . ${b}, ${b} . ${a} }`,
    `delete element bridge lwt_block pairs { ${a} . ${b}, ${b} . ${a} }`
  ].join('\n') + '\n')
}
