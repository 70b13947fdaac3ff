/**
 * A port-mapping gateway for a lab router: starts test/helpers/pcp-responder.mjs
 * (NAT-PMP/PCP answering MAP requests with real nftables DNAT map elements in
 * table `ip lwt_pm`) inside the router namespace of a topology client, and
 * reads back the mappings the kernel holds. Used by the e2e test and bench/p2p.ts.
 */
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { runIn, spawnIn, type LabProcess } from './exec.js'
import type { TopologyClient } from './topology.js'

/** The script, from src/lab (tests) or dist/src/lab (bench). */
function script (): string {
  for (const rel of ['../../test/helpers/pcp-responder.mjs', '../../../test/helpers/pcp-responder.mjs']) {
    const p = fileURLToPath(new URL(rel, import.meta.url))
    if (existsSync(p)) return p
  }
  throw new Error('test/helpers/pcp-responder.mjs not found')
}

export interface GatewayOptions {
  /** Which protocols it speaks (default both). */
  proto?: 'both' | 'pcp' | 'natpmp'
  /** Cap on granted lifetimes, s (default 7200). */
  maxLifetimeSec?: number
}

/** Starts the responder on `c`'s router (listening on its LAN address, port 5351); resolves once it listens. */
export async function startPortMappingGateway (c: TopologyClient, opts: GatewayOptions = {}): Promise<LabProcess> {
  if (c.routerNs === undefined) throw new Error(`client ${c.name} has no router`)
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (k !== 'NODE_OPTIONS') env[k] = v
  const proc = spawnIn(c.routerNs, 'env', ['-u', 'NODE_OPTIONS', process.execPath, script(),
    '--lan-ip', c.routerLanIp!, '--wan', c.routerWan!, '--wan-ip', c.routerWanIp!,
    '--proto', opts.proto ?? 'both', '--max-lifetime', String(opts.maxLifetimeSec ?? 7200)], { env })
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
