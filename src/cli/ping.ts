/**
 * `lightweight-tunnel ping PEER`: asks the daemon for one authenticated Ping
 * at a time (control socket request {"cmd":"ping"}; control/observe-requests.ts)
 * and prints each answer like tailscale ping: which path it took, where to,
 * and the round trip.
 *
 *   pong from 10.0.0.3 via 198.51.100.9:41000 (direct) in 0.31 ms
 *   no answer from 10.0.0.3 via 198.51.100.1:9000 (relay) within 2 s
 *
 *   --- 10.0.0.3: 4 pings, 4 answered (0% loss); rtt min/median/max 0.25/0.31/0.40 ms
 */
import type { PingResult } from '../control/user-ping.js'
import { VpnError } from '../errors.js'

export interface PingOptions { peer: string, count: number, intervalMs: number, timeoutMs: number, json: boolean }

function isPingResult (v: unknown): v is PingResult {
  const r = v as Partial<PingResult> | null
  return r !== null && typeof r === 'object' && typeof r.path === 'string' && typeof r.endpoint === 'string' && (r.rttMs === null || typeof r.rttMs === 'number')
}

export function formatRttMs (ms: number): string {
  return ms < 10 ? `${ms.toFixed(2)} ms` : ms < 100 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`
}

export function formatPingLine (r: PingResult, timeoutMs: number): string {
  // eslint-disable-next-line no-control-regex
  const ep = r.endpoint.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?')
  return r.rttMs === null
    ? `no answer from ${r.peer} via ${ep} (${r.path}) within ${timeoutMs / 1000} s`
    : `pong from ${r.peer} via ${ep} (${r.path}) in ${formatRttMs(r.rttMs)}`
}

export function formatPingSummary (peer: string, results: readonly PingResult[]): string {
  const rtts = results.map(r => r.rttMs).filter((x): x is number => x !== null).sort((a, b) => a - b)
  const loss = results.length === 0 ? 0 : Math.round(100 * (results.length - rtts.length) / results.length)
  let line = `--- ${peer}: ${results.length} ping${results.length === 1 ? '' : 's'}, ${rtts.length} answered (${loss}% loss)`
  if (rtts.length > 0) {
    const n = rtts.length
    const median = n % 2 === 1 ? rtts[(n - 1) / 2]! : (rtts[n / 2 - 1]! + rtts[n / 2]!) / 2
    line += `; rtt min/median/max ${rtts[0]!.toFixed(2)}/${median.toFixed(2)}/${rtts[n - 1]!.toFixed(2)} ms`
  }
  return line
}

/**
 * Runs the pings: `request` asks the daemon for one, `sleep` waits between
 * them. Prints a line per answer (or, with json, one JSON object per line)
 * and the summary; resolves with the exit code: 0 when any Pong came, 1 when none.
 */
export async function runPing (o: PingOptions, request: () => Promise<unknown>, out: (s: string) => void, sleep: (ms: number) => Promise<void>): Promise<number> {
  const results: PingResult[] = []
  let last = 0
  for (let i = 0; i < o.count; i++) {
    // -i is start to start, as in ping(8): a ping that timed out has already used its interval.
    if (i > 0) await sleep(Math.max(0, o.intervalMs - (Date.now() - last)))
    last = Date.now()
    const r = await request()
    if (!isPingResult(r)) {
      throw new VpnError('ERR_CONTROL_SOCKET', 'the daemon answered ping with something that is not a ping result', { hint: 'is it the same version as this command?' })
    }
    results.push(r)
    out(o.json ? JSON.stringify(r) + '\n' : formatPingLine(r, o.timeoutMs) + '\n')
  }
  if (!o.json) out(formatPingSummary(o.peer, results) + '\n')
  return results.some(r => r.rttMs !== null) ? 0 : 1
}
