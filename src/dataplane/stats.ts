/**
 * Dataplane counters in shared memory (layout in workers/layout.ts). Workers
 * write their own region; `readStats` sums the regions on the main thread
 * without asking any worker.
 */
import { COUNTERS, PEER_FIELDS, P_LAST_RX, P_RX_BYTES, P_RX_PACKETS, P_TX_BYTES, P_TX_PACKETS, WORKER_ROLES, statsRegionWords, type CounterName } from '../workers/layout.js'

export function createStatsBuffer (maxPeers: number): SharedArrayBuffer {
  return new SharedArrayBuffer(WORKER_ROLES.length * statsRegionWords(maxPeers) * 8)
}

/** Zero a peer slot's counters in this worker's region (the owning worker calls it when a slot gets a new peer). */
export function clearPeerCounters (stats: Float64Array, slot: number): void {
  const base = COUNTERS.length + slot * PEER_FIELDS
  stats.fill(0, base, base + PEER_FIELDS)
}

export function statsView (init: { stats: SharedArrayBuffer, statsIndex: number, maxPeers: number }): Float64Array {
  const words = statsRegionWords(init.maxPeers)
  return new Float64Array(init.stats, init.statsIndex * words * 8, words)
}

export interface PeerCounters { txPackets: number, txBytes: number, rxPackets: number, rxBytes: number, lastRxMs: number }

export class StatsReader {
  readonly #regions: Float64Array[]
  constructor (sab: SharedArrayBuffer, maxPeers: number) {
    this.#regions = WORKER_ROLES.map((_, i) => statsView({ stats: sab, statsIndex: i, maxPeers }))
  }

  counters (): Record<CounterName, number> {
    const out = {} as Record<CounterName, number>
    COUNTERS.forEach((name, i) => {
      let v = 0
      for (const r of this.#regions) v += r[i]
      out[name] = v
    })
    return out
  }

  peer (slot: number): PeerCounters {
    const base = COUNTERS.length + slot * PEER_FIELDS
    let txPackets = 0; let txBytes = 0; let rxPackets = 0; let rxBytes = 0; let lastRxMs = 0
    for (const r of this.#regions) {
      txPackets += r[base + P_TX_PACKETS]
      txBytes += r[base + P_TX_BYTES]
      rxPackets += r[base + P_RX_PACKETS]
      rxBytes += r[base + P_RX_BYTES]
      lastRxMs = Math.max(lastRxMs, r[base + P_LAST_RX])
    }
    return { txPackets, txBytes, rxPackets, rxBytes, lastRxMs }
  }
}
