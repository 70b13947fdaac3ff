/**
 * Lab topology: a flat "internet" (one bridge in its own namespace), a
 * server on it, and clients that sit either directly on the internet or
 * behind their own NAT router namespace (or several behind one shared
 * router).
 *
 *                       internet ns (bridge lw<id>br, WAN 100.64.0.0/16)
 *   server ns ── <id>s ──┤
 *   100.64.0.1            ├── router ns r0 [wan 100.64.1.1 | lan 192.168.1.1/24] ── client ns c-alice 192.168.1.2
 *                         ├── router ns r1 [wan 100.64.1.2 | lan 192.168.2.1/24] ─┬ client ns c-bob   192.168.2.2
 *                         │                 (shared LAN: a bridge in the router)   └ client ns c-carol 192.168.2.3
 *                         └── client ns c-dave 100.64.2.1 (nat: 'none', directly on the WAN)
 *
 * Addresses never leave the namespaces, so the lab ranges cannot collide
 * with the machine's own networks. There is no routed hop between WAN hosts
 * (research/nat-anchors.md §7.1: TTL tricks need one).
 *
 * Names: namespaces are `lwt-<id>-<role>` (id = 7 chars: owner pid + random),
 * and every device is `lw<id><role><n>` (≤ 15 bytes), unique on the machine.
 * `createTopology` removes what it built when it fails midway; `destroy()`
 * is idempotent, kills the processes in the namespaces and deletes them.
 */
import { randomBytes } from 'node:crypto'
import {
  addAddress, addBridge, addVeth, createNs, deleteNs, enableForwarding, killNsProcesses, LAB_PREFIX,
  setDefaultRoute, setMaster, setMtu, sysctls
} from './netns.js'
import { applyNat, DEFAULT_UDP_STREAM_TIMEOUT_SEC, isNatKind, setUdpTimeout, type NatKind } from './nat.js'

export interface ClientSpec {
  /** Short name: 1-12 characters of [a-z0-9-]; appears in the namespace name. */
  name: string
  nat: NatKind
  /**
   * Clients giving the same `lan` share one router and one LAN (their NAT
   * kinds and timeouts must agree). Omit for a router of its own.
   */
  lan?: string
  /** UDP mapping timeout of this client's router, seconds (default: the topology's). */
  udpTimeoutSec?: number
}

export interface TopologyOptions {
  clients: ClientSpec[]
  /** Force the id (tests use this to check cleanup after a failed build). Default: random. */
  id?: string
  /** UDP mapping timeout on every router, seconds. Default: kernel defaults (30 s unreplied, 120 s stream). */
  udpTimeoutSec?: number
  /** MTU of every lab link (default: the kernel's, 1500). */
  mtu?: number
  /** Called with a line per step (for the demo). */
  log?: (line: string) => void
}

export interface TopologyClient {
  name: string
  ns: string
  /** The client's address: on its LAN, or on the WAN when `nat` is 'none'. */
  lanIp: string
  /** The client's interface (in `ns`). */
  dev: string
  nat: NatKind
  routerNs?: string
  routerWanIp?: string
  /** Router's WAN interface (in `routerNs`). */
  routerWan?: string
  /** Router's LAN interface (in `routerNs`; a bridge for a shared LAN). */
  routerLan?: string
  /** Router's LAN address (the client's default gateway). */
  routerLanIp?: string
  /** The bridge port in `internetNs` that leads to this client's router (or to the client itself). */
  internetPort: string
}

export interface Topology {
  id: string
  internetNs: string
  /** The internet bridge (in `internetNs`). */
  internetBridge: string
  /** The WAN prefix length (the WAN is `100.64.0.0/16`). */
  wanPrefix: number
  serverNs: string
  serverWanIp: string
  /** The server namespace's WAN device, for counting packets on the server's link. */
  serverLink: string
  /** The bridge port in `internetNs` that leads to the server. */
  serverPort: string
  clients: TopologyClient[]
  /** Looks a client up by name (throws if unknown). */
  client: (name: string) => TopologyClient
  /** Every namespace of this topology. */
  namespaces: () => string[]
  /** Kills the processes in the namespaces and deletes them. Idempotent. */
  destroy: () => Promise<void>
}

export const WAN_PREFIX = 16
export const SERVER_WAN_IP = '100.64.0.1'

/** Ids one process can hold at once: two base-36 chars. */
const LAB_SEQ_SPACE = 36 * 36
/** The last sequence number handed out; starts at a random point so a reused pid rarely meets a dead owner's leftovers. */
let labSeq = randomBytes(2).readUInt16BE(0) % LAB_SEQ_SPACE

/**
 * A lab id: the creating process's pid in base 36 (5 chars, so stale-lab
 * cleanup can tell whether the owner still runs: `labOwnerPid`) + 2 chars
 * of a per-process sequence, so the 1,296 ids a process draws in a row are
 * all different (two random chars could repeat an id still in use, one
 * draw in 1,296 against one live lab, and two labs then shared namespace
 * names). All [a-z0-9].
 */
export function newLabId (): string {
  labSeq = (labSeq + 1) % LAB_SEQ_SPACE
  return process.pid.toString(36).padStart(5, '0').slice(-5) + labSeq.toString(36).padStart(2, '0')
}

interface LanGroup {
  key: string
  index: number
  nat: NatKind
  udpTimeoutSec: number | undefined
  specs: ClientSpec[]
}

function validate (opts: TopologyOptions): LanGroup[] {
  if (opts.id !== undefined && !/^[a-z0-9]{1,7}$/.test(opts.id)) throw new Error(`topology id must be 1-7 characters of [a-z0-9] (got "${opts.id}")`)
  const names = new Set<string>()
  const groups = new Map<string, LanGroup>()
  const direct: ClientSpec[] = []
  for (const c of opts.clients) {
    if (!/^[a-z0-9][a-z0-9-]{0,11}$/.test(c.name)) throw new Error(`client name must be 1-12 characters of [a-z0-9-] (got "${c.name}")`)
    if (names.has(c.name)) throw new Error(`two clients are named "${c.name}"`)
    names.add(c.name)
    if (!isNatKind(c.nat)) throw new Error(`client "${c.name}": unknown NAT kind "${String(c.nat)}"`)
    const timeout = c.udpTimeoutSec ?? opts.udpTimeoutSec
    if (c.nat === 'none') {
      if (c.lan !== undefined) throw new Error(`client "${c.name}": nat 'none' puts the client on the WAN, it cannot share LAN "${c.lan}"`)
      direct.push(c)
      continue
    }
    const key = c.lan !== undefined ? `lan:${c.lan}` : `own:${c.name}`
    const g = groups.get(key)
    if (g === undefined) {
      groups.set(key, { key, index: groups.size, nat: c.nat, udpTimeoutSec: timeout, specs: [c] })
    } else {
      if (g.nat !== c.nat) throw new Error(`clients on LAN "${c.lan}" disagree on the NAT kind (${g.nat} vs ${c.nat})`)
      if (g.udpTimeoutSec !== timeout) throw new Error(`clients on LAN "${c.lan}" disagree on udpTimeoutSec`)
      g.specs.push(c)
    }
  }
  if (groups.size > 250 || direct.length > 250) throw new Error('too many clients for the lab address plan')
  if (opts.clients.some((c) => c.lan !== undefined && (groups.get(`lan:${c.lan}`)?.specs.length ?? 0) > 250)) throw new Error('too many clients on one LAN')
  return [...groups.values()]
}

/**
 * Builds the topology. On failure everything built so far is removed and
 * the error is rethrown.
 */
export async function createTopology (opts: TopologyOptions): Promise<Topology> {
  const groups = validate(opts)
  const id = opts.id ?? newLabId()
  const log = opts.log ?? (() => {})
  const made: string[] = []
  const mtu = opts.mtu
  const vethOpts = mtu === undefined ? {} : { mtu }
  const nsName = (role: string): string => `${LAB_PREFIX}${id}-${role}`
  const dev = (role: string): string => `lw${id}${role}`

  const mk = async (name: string): Promise<string> => {
    await createNs(name)
    made.push(name)
    // No IPv6 on lab links: its neighbour discovery chatter would show up in packet counts.
    await sysctls(name, { 'net.ipv6.conf.all.disable_ipv6': 1, 'net.ipv6.conf.default.disable_ipv6': 1 })
    return name
  }
  // Client-side device numbers, unique across the topology (keeps names short).
  let nextDev = 0

  let destroyed: Promise<void> | null = null
  const destroy = (): Promise<void> => {
    destroyed ??= (async () => {
      // Stop every process first (daemons get SIGTERM together, SIGKILL after 1 s), then delete.
      await Promise.all(made.map((ns) => killNsProcesses(ns).catch(() => {})))
      const results = await Promise.allSettled(made.map((ns) => deleteNs(ns)))
      const errors = results.flatMap((r) => r.status === 'rejected' ? [r.reason as unknown] : [])
      if (errors.length > 0) throw new AggregateError(errors, `could not remove every namespace of lab ${id}`)
    })()
    return destroyed
  }

  try {
    // The internet: one bridge.
    const internetNs = await mk(nsName('inet'))
    const internetBridge = dev('br')
    await addBridge(internetNs, internetBridge)
    if (mtu !== undefined) await setMtu(internetNs, internetBridge, mtu)
    log(`created the "internet" namespace ${internetNs} with bridge ${internetBridge} (WAN 100.64.0.0/${WAN_PREFIX})`)

    // Attach a namespace to the internet bridge via a veth.
    const attach = async (ns: string, nsDev: string, port: string, cidr: string): Promise<void> => {
      await addVeth(ns, nsDev, internetNs, port, vethOpts)
      await setMaster(internetNs, port, internetBridge)
      await addAddress(ns, nsDev, cidr)
    }

    // The server.
    const serverNs = await mk(nsName('srv'))
    const serverLink = dev('s')
    const serverPort = dev('sp')
    await attach(serverNs, serverLink, serverPort, `${SERVER_WAN_IP}/${WAN_PREFIX}`)
    log(`created the server namespace ${serverNs}: ${SERVER_WAN_IP} on ${serverLink}`)

    const clients: TopologyClient[] = []

    // Routers with their LANs (built in parallel: they are independent).
    await settleAll(groups.map(async (g) => {
      const n = g.index + 1
      const routerNs = await mk(nsName(`r${n}`))
      const routerWan = dev(`w${n}`)
      const port = dev(`p${n}`)
      const routerWanIp = `100.64.1.${n}`
      await attach(routerNs, routerWan, port, `${routerWanIp}/${WAN_PREFIX}`)
      await enableForwarding(routerNs)
      const routerLanIp = `192.168.${n}.1`
      const shared = g.key.startsWith('lan:')
      let routerLan: string
      if (shared) {
        routerLan = dev(`L${n}`)
        await addBridge(routerNs, routerLan)
        await addAddress(routerNs, routerLan, `${routerLanIp}/24`)
      } else {
        routerLan = dev(`l${n}`)
      }
      // Conntrack timeouts are per namespace: this changes this router only.
      const timeout = g.udpTimeoutSec
      await applyNat(routerNs, g.nat, { wan: routerWan, lan: routerLan, wanIp: routerWanIp, mappingTimeoutSec: timeout ?? DEFAULT_UDP_STREAM_TIMEOUT_SEC })
      if (timeout !== undefined) await setUdpTimeout(routerNs, timeout)
      log(`created router ${routerNs}: WAN ${routerWanIp}, LAN 192.168.${n}.0/24, NAT ${g.nat}${timeout !== undefined ? `, UDP mapping timeout ${timeout}s` : ''}`)

      for (let i = 0; i < g.specs.length; i++) {
        const spec = g.specs[i]!
        const ns = await mk(nsName(`c-${spec.name}`))
        const k = ++nextDev
        const cdev = dev(`e${k}`)
        const lanIp = `192.168.${n}.${i + 2}`
        if (shared) {
          const bport = dev(`b${k}`)
          await addVeth(ns, cdev, routerNs, bport, vethOpts)
          await setMaster(routerNs, bport, routerLan)
        } else {
          // Own LAN: the router's LAN side is the far end of the client's veth.
          await addVeth(ns, cdev, routerNs, routerLan, vethOpts)
          await addAddress(routerNs, routerLan, `${routerLanIp}/24`)
        }
        await addAddress(ns, cdev, `${lanIp}/24`)
        await setDefaultRoute(ns, routerLanIp)
        clients.push({ name: spec.name, ns, lanIp, dev: cdev, nat: g.nat, routerNs, routerWanIp, routerWan, routerLan, routerLanIp, internetPort: port })
        log(`created client ${ns}: ${lanIp} behind ${routerNs}`)
      }
    }))

    // Clients directly on the WAN.
    const direct = opts.clients.filter((c) => c.nat === 'none')
    await settleAll(direct.map(async (spec, i) => {
      const ns = await mk(nsName(`c-${spec.name}`))
      const cdev = dev(`d${i + 1}`)
      const port = dev(`q${i + 1}`)
      const ip = `100.64.2.${i + 1}`
      await attach(ns, cdev, port, `${ip}/${WAN_PREFIX}`)
      clients.push({ name: spec.name, ns, lanIp: ip, dev: cdev, nat: 'none', internetPort: port })
      log(`created client ${ns}: ${ip} directly on the WAN (no NAT)`)
    }))

    // Keep the order the caller gave.
    const order = new Map(opts.clients.map((c, i) => [c.name, i]))
    clients.sort((a, b) => order.get(a.name)! - order.get(b.name)!)

    return {
      id,
      internetNs,
      internetBridge,
      wanPrefix: WAN_PREFIX,
      serverNs,
      serverWanIp: SERVER_WAN_IP,
      serverLink,
      serverPort,
      clients,
      client: (name: string) => {
        const c = clients.find((x) => x.name === name)
        if (c === undefined) throw new Error(`no client named "${name}" in lab ${id}`)
        return c
      },
      namespaces: () => [...made],
      destroy
    }
  } catch (err) {
    try { await destroy() } catch {}
    throw err
  }
}

/**
 * Like Promise.all, but waits for every branch to finish before rejecting
 * with the first error: a failed build must not be cleaned up while a
 * sibling branch is still creating namespaces.
 */
async function settleAll (promises: Array<Promise<unknown>>): Promise<void> {
  const results = await Promise.allSettled(promises)
  for (const r of results) if (r.status === 'rejected') throw r.reason
}
