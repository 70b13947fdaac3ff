/**
 * Running the peer tunnels of bench/tunnels inside a scenario script's lab
 * (shared by bench/fec-loss.ts and bench/pmtu.ts): `selectPeers` turns the
 * scripts' `--tunnels` value into tunnel specs and installs the missing ones;
 * `withTunnel` brings one tunnel up between a lab client and the server in a
 * scratch directory of its own, hands the running tunnel to the measurement,
 * and always stops it and removes the directory. A tunnel that cannot run or
 * fails is a note for the table, never the end of the run.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Topology } from '../../src/lab/topology.js'
import { TUNNELS, installMissing, tunnelByName, type RunningTunnel, type TunnelSpec } from '../tunnels/index.js'

/**
 * The peer tunnels named by `--tunnels` (comma-separated; default every peer of
 * bench/tunnels; 'none': none), with the missing ones installed unless `install`
 * is false. Throws on a name that is not a peer tunnel.
 */
export async function selectPeers (arg: string | undefined, install: boolean, log: (line: string) => void): Promise<TunnelSpec[]> {
  const names = arg === 'none' ? [] : arg?.split(',') ?? TUNNELS.filter(t => t.kind === 'peer').map(t => t.name)
  const peers = names.map(n => {
    const t = tunnelByName(n)
    if (t === undefined || t.kind !== 'peer') throw new Error(`--tunnels: "${n}" is not a peer tunnel of bench/tunnels (peers: ${TUNNELS.filter(x => x.kind === 'peer').map(x => x.name).join(', ')}, or none)`)
    return t
  })
  if (install) { const line = await installMissing(peers, log); if (line !== null) log(line) }
  return peers
}

/**
 * Brings `spec` up from lab client `client` (default 'a') to the server, runs
 * `measure` with it, stops it. Returns null, or why it did not run or failed
 * (one line, for the table).
 */
export async function withTunnel (spec: TunnelSpec, topo: Topology, measure: (t: RunningTunnel) => Promise<void>, client?: string): Promise<string | null> {
  const why = spec.available()
  if (why !== null) return why
  const dir = mkdtempSync(join(tmpdir(), `lwt-bench-${spec.name}-`))
  try {
    const t = await spec.start({ topo, dir, id: topo.id, client })
    try { await measure(t) } finally { await t.stop() }
    return null
  } catch (err) {
    return `failed: ${(err instanceof Error ? err.message : String(err)).split('\n')[0]}`
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
