/**
 * One single-stream TCP measurement through a tunnel (iperf3), shared by the
 * scenario scripts that compare our daemon with the peer tunnels (bench/pmtu.ts,
 * bench/fec-loss.ts): an iperf3 server started in the destination namespace
 * (one test, then it exits), waited for until it listens, then the client in the
 * source namespace bound to the source's tunnel address; the result comes from
 * the client's JSON (bench/lib/parse.ts). The server is killed at the end, also
 * on failure.
 */
import { runIn, spawnIn, waitFor } from '../../src/lab/exec.js'
import { parseIperfTcp } from './parse.js'
import type { Endpoint } from '../tunnels/index.js'

export interface TcpResult {
  /** The receiver's rate, Mbit/s. */
  mbps: number
  /** The sender's retransmits (0 when iperf3 does not report them). */
  retr: number
  /** The sender's mean RTT, ms (NaN when not reported). */
  rtt: number
  /** The sender's largest cwnd, KiB (NaN when not reported). */
  cwnd: number
}

export interface TcpOptions {
  /** iperf3 port (default 5311). */
  port?: number
  /** Seconds at the start left out of the result (iperf3 -O; default 0). */
  omitSeconds?: number
  /** The sender's congestion control (iperf3 -C), e.g. cubic; default the system's. */
  cc?: string
}

/** One iperf3 TCP stream src → dst for `seconds` (plus any omitted start); throws with iperf3's reason. */
export async function tcpStream (src: Endpoint, dst: Endpoint, seconds: number, o: TcpOptions = {}): Promise<TcpResult> {
  const port = String(o.port ?? 5311)
  const omit = o.omitSeconds ?? 0
  const srv = spawnIn(dst.ns, 'iperf3', ['-s', '-1', '-B', dst.ip, '-p', port])
  try {
    await waitFor(async () => {
      if (srv.exitInfo !== null) throw new Error(`iperf3 server exited: ${srv.tail(3)}`)
      return (await runIn(dst.ns, 'ss', ['-Hltn', `sport = :${port}`])).stdout.trim() !== ''
    }, { timeoutMs: 5000, intervalMs: 50, what: 'the iperf3 server' })
    const args = ['-c', dst.ip, '-B', src.ip, '-p', port, '-t', String(seconds + omit), ...(omit > 0 ? ['-O', String(omit)] : []), ...(o.cc === undefined ? [] : ['-C', o.cc]), '-J']
    const r = await runIn(src.ns, 'iperf3', args, { timeoutMs: (seconds + omit + 30) * 1000 })
    const p = parseIperfTcp(r.stdout)
    if (!p.ok) throw new Error(p.error)
    const v = p.value
    return {
      mbps: Math.round(v.bps / 1e4) / 100,
      retr: v.retransmits ?? 0,
      rtt: v.meanRttMs === null ? NaN : Math.round(v.meanRttMs * 100) / 100,
      cwnd: v.maxCwndBytes === null ? NaN : Math.round(v.maxCwndBytes / 1024)
    }
  } finally {
    await srv.stop('SIGKILL', 1000).catch(() => {})
  }
}
