/**
 * A port-mapping gateway for a lab router: starts test/helpers/pcp-responder.mjs
 * (NAT-PMP/PCP answering MAP requests) or test/helpers/upnp-responder.mjs
 * (UPnP IGD: SSDP, description, SOAP), both installing real nftables DNAT map
 * elements in table `ip lwt_pm`, inside the router namespace of a topology
 * client, and reads back the mappings the kernel holds. Used by the e2e tests
 * and bench/p2p.ts.
 */
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { runIn, spawnIn, type LabProcess } from './exec.js'
import type { TopologyClient } from './topology.js'

/** The script, from src/lab (tests) or dist/src/lab (bench). */
function script (name: string): string {
  for (const rel of [`../../test/helpers/${name}`, `../../../test/helpers/${name}`]) {
    const p = fileURLToPath(new URL(rel, import.meta.url))
    if (existsSync(p)) return p
  }
  throw new Error(`test/helpers/${name} not found`)
}

export interface GatewayOptions {
  /** Which protocols it speaks (default both: PCP and NAT-PMP; upnp: UPnP IGD only). */
  proto?: 'both' | 'pcp' | 'natpmp' | 'upnp'
  /** Cap on granted lifetimes, s (default 7200). */
  maxLifetimeSec?: number
  /** UPnP: grant only permanent leases (answer 725 to others). */
  onlyPermanent?: boolean
}

/** Starts the responder on `c`'s router (listening on its LAN address: port 5351, or SSDP 1900 and HTTP); resolves once it listens. */
export async function startPortMappingGateway (c: TopologyClient, opts: GatewayOptions = {}): Promise<LabProcess> {
  if (c.routerNs === undefined) throw new Error(`client ${c.name} has no router`)
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (k !== 'NODE_OPTIONS') env[k] = v
  const common = ['--lan-ip', c.routerLanIp!, '--wan', c.routerWan!, '--wan-ip', c.routerWanIp!, '--max-lifetime', String(opts.maxLifetimeSec ?? 7200)]
  const args = opts.proto === 'upnp'
    ? [script('upnp-responder.mjs'), ...common, ...(opts.onlyPermanent === true ? ['--only-permanent'] : [])]
    : [script('pcp-responder.mjs'), ...common, '--proto', opts.proto ?? 'both']
  const proc = spawnIn(c.routerNs, 'env', ['-u', 'NODE_OPTIONS', process.execPath, ...args], { env })
  await proc.waitForOutput(/"event":"ready"/, 10_000)
  return proc
}

/** The DNAT mappings installed in `routerNs`: external port → "client ip:port". */
export async function gatewayMappings (routerNs: string): Promise<Map<number, string>> {
  const out = new Map<number, string>()
  const r = await runIn(routerNs, 'nft', ['list', 'map', 'ip', 'lwt_pm', 'pm']).catch(() => ({ stdout: '' }))
  for (const m of r.stdout.matchAll(/(\d+) : (\d+\.\d+\.\d+\.\d+) \. (\d+)/g)) out.set(Number(m[1]), `${m[2]!}:${m[3]!}`)
  return out
}
