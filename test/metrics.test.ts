/**
 * src/metrics.ts: the exposition text of a status report (every line valid,
 * every drop reason present, labels escaped), and the HTTP endpoint (scrape,
 * 404, a port in use refused with a clear error).
 */
import t from 'tap'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { CONTENT_TYPE, escapeLabel, renderMetrics, snake, startMetricsServer } from '../src/metrics.js'
import { Logger } from '../src/log.js'
import { COUNTERS } from '../src/workers/layout.js'
import type { StatusReport } from '../src/control/status.js'

const quiet = new Logger({ level: 'error', sink: { write: () => {} } })
const PROC = { cpuSeconds: 1.5, rssBytes: 1000, startTimeSeconds: 1_700_000_000 }

function report (over: Partial<StatusReport> = {}): StatusReport {
  const counters: Record<string, number> = {}
  COUNTERS.forEach((c, i) => { counters[c] = i })
  counters.p2pDropped = 3
  counters.handshakesCompleted = 2
  return {
    mode: 'client', version: '0.1.0', dev: 'lwt0', tunnelIp: '10.0.0.2', prefix: 24, mtu: 1400, listen: null, server: '198.51.100.1:9000',
    state: 'registered', problem: null, uptimeSec: 62, counters,
    dataplane: { placement: 'inline', tunOffload: 'tso+uso', udpGro: true, fastPath: true },
    peers: [
      { tunnelIp: '10.0.0.1', peerId: 0, role: 'server', path: 'direct', endpoint: '198.51.100.1:9000', publicEndpoint: null, rttMs: 0.42, txBytes: 10, rxBytes: 20, txPackets: 1, rxPackets: 2, session: 'established', lastSeenSec: 1.5, note: null },
      { tunnelIp: '10.0.0.3', peerId: 2, role: 'client', path: 'relay', endpoint: 'evil"\\\n', publicEndpoint: null, rttMs: null, txBytes: 0, rxBytes: 0, txPackets: 0, rxPackets: 0, session: 'none', lastSeenSec: null, note: null }
    ],
    ...over
  }
}

/** The text exposition format 0.0.4, line by line. */
const SAMPLE = /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\["\\n])*"(,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\["\\n])*")*\})? -?[0-9]+(\.[0-9]+)?(e[+-]?[0-9]+)?$/
const COMMENT = /^# (HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*|TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge))$/

t.test('every line is valid exposition format; TYPE before samples, once per family', async t => {
  const text = renderMetrics(report(), PROC)
  t.ok(text.endsWith('\n'))
  const seenType = new Set<string>()
  for (const line of text.trimEnd().split('\n')) {
    if (line.startsWith('#')) {
      t.match(line, COMMENT)
      const m = /^# TYPE (\S+)/.exec(line)
      if (m) { t.notOk(seenType.has(m[1]!), `one TYPE for ${m[1]}`); seenType.add(m[1]!) }
      continue
    }
    t.match(line, SAMPLE)
    const name = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)![0]
    t.ok(seenType.has(name), `${name} has its TYPE before its samples`)
  }
})

t.test('drops by reason, traffic by direction, peers, info metrics', async t => {
  const text = renderMetrics(report(), PROC)
  for (const c of COUNTERS.filter(c => c.startsWith('drop'))) {
    t.match(text, new RegExp(`^lwt_drops_total\\{reason="${snake(c.slice(4))}"\\} ${COUNTERS.indexOf(c)}$`, 'm'), c)
  }
  t.match(text, /^lwt_drops_total\{reason="control_invalid"\} 3$/m)
  t.match(text, /^lwt_handshakes_total\{result="completed"\} 2$/m)
  t.match(text, /^lwt_udp_packets_total\{direction="rx"\} 4$/m)
  t.match(text, /^lwt_udp_packets_total\{direction="tx"\} 6$/m)
  t.match(text, /^lwt_info\{version="0\.1\.0",mode="client",dev="lwt0",tunnel_ip="10\.0\.0\.2\/24"\} 1$/m)
  t.match(text, /^lwt_dataplane_info\{placement="inline",tun_offload="tso\+uso",udp_gro="on",fast_path="on"\} 1$/m)
  t.match(text, /^lwt_state\{state="registered"\} 1$/m)
  t.match(text, /^lwt_peer_rtt_seconds\{peer="10\.0\.0\.1"\} 0\.00042$/m)
  t.notMatch(text, /lwt_peer_rtt_seconds\{peer="10\.0\.0\.3"\}/, 'no RTT sample for an unmeasured peer')
  t.match(text, /^lwt_peers\{path="relay"\} 1$/m)
  t.match(text, /^lwt_sessions 1$/m)
  t.match(text, /^lwt_peer_info\{peer="10\.0\.0\.3",role="client",path="relay",endpoint="evil\\"\\\\\\n",session="none"\} 1$/m, 'label values escaped')
  t.notMatch(text, /lwt_registered_clients/, 'a client has no registered clients')
  t.match(renderMetrics(report({ mode: 'server', peers: [] }), PROC), /^lwt_registered_clients 0$/m)
  t.match(renderMetrics(report({ problem: 'the server has not answered', state: 'unresponsive' }), PROC), /^lwt_problem 1$/m)
  // The control-plane figures, when status carries them (the loop delay only once sampled).
  const controlPlane = { tickLateMs: { p50: 0.4, p99: 12, max: 30 }, loopDelayMs: { p50: 0.1, p99: 3.5, max: 9 }, ticks: 7, ticksLate: 2 }
  const cp = renderMetrics({ ...report(), controlPlane }, PROC)
  t.match(cp, /^lwt_control_plane_timer_late_seconds\{quantile="0\.5"\} 0\.0004$/m)
  t.match(cp, /^lwt_control_plane_timer_late_seconds\{quantile="0\.99"\} 0\.012$/m)
  t.match(cp, /^lwt_control_plane_timer_late_seconds\{quantile="1"\} 0\.03$/m)
  t.match(cp, /^lwt_control_plane_loop_delay_seconds\{quantile="0\.99"\} 0\.0035$/m)
  t.match(cp, /^lwt_control_plane_timer_runs_total 7$/m)
  t.match(cp, /^lwt_control_plane_timer_runs_late_total 2$/m)
  const unsampled = renderMetrics({ ...report(), controlPlane: { ...controlPlane, loopDelayMs: null } }, PROC)
  t.notMatch(unsampled, /lwt_control_plane_loop_delay_seconds/, 'no loop-delay series before the first sample')
  t.match(unsampled, /^lwt_control_plane_timer_runs_total 7$/m)
  t.equal(escapeLabel('a"b\\c\nd'), 'a\\"b\\\\c\\nd')
})

t.test('port mapping: its state and lifetime, its counters with their own names, forged answers as drops', async t => {
  const portMapping = { state: 'mapped' as const, gateway: '192.168.1.1', protocol: 'pcp' as const, external: '100.64.1.2:40000', internalPort: 9000, lifetimeSec: 7200, lifetimeLeftSec: 7000, note: '' }
  const text = renderMetrics(report({ portMapping, counters: { portMapRequests: 3, portMapForged: 2, portMapStaleDeleted: 1 } }), PROC)
  t.match(text, /^lwt_port_mapping_info\{state="mapped",protocol="pcp",external="100\.64\.1\.2:40000"\} 1$/m)
  t.match(text, /^lwt_port_mapping_lifetime_seconds 7000$/m)
  t.match(text, /^# HELP lwt_port_map_requests_total Client: PCP/m)
  t.match(text, /^lwt_port_map_requests_total 3$/m)
  t.match(text, /^lwt_port_map_stale_deleted_total 1$/m)
  t.match(text, /^lwt_drops_total\{reason="port_map_forged"\} 2$/m)
  const failed = renderMetrics(report({ portMapping: { ...portMapping, state: 'failed', protocol: null, external: null, lifetimeSec: null, lifetimeLeftSec: null } }), PROC)
  t.match(failed, /^lwt_port_mapping_info\{state="failed",protocol="",external=""\} 1$/m)
  t.notMatch(failed, /^lwt_port_mapping_lifetime_seconds \d/m, 'no lifetime sample without a mapping')
  t.notMatch(renderMetrics(report({ portMapping: null }), PROC), /lwt_port_mapping_info/, 'off: no series')
})

t.test('FEC: counters as metrics; parity per data message per peer only with --fec', async t => {
  const base = report()
  const text = renderMetrics(report({ peers: [base.peers[0]!, { ...base.peers[1]!, fec: { data: 10, parity: 3 } }, { ...base.peers[1]!, tunnelIp: '10.0.0.4', fec: null }] }), PROC)
  t.match(text, /^lwt_peer_fec_parity_per_data\{peer="10\.0\.0\.3"\} 0\.3$/m)
  t.match(text, /^lwt_peer_fec_parity_per_data\{peer="10\.0\.0\.4"\} 0$/m)
  t.notMatch(text, /lwt_peer_fec_parity_per_data\{peer="10\.0\.0\.1"\}/, 'not for the server entry')
  t.match(text, new RegExp(`^lwt_fec_groups_total\\{result="recovered"\\} ${COUNTERS.indexOf('fecGroupsRecovered')}$`, 'm'))
  t.match(text, new RegExp(`^lwt_fec_groups_total\\{result="unrecoverable"\\} ${COUNTERS.indexOf('fecGroupsUnrecoverable')}$`, 'm'))
  t.match(text, new RegExp(`^lwt_fec_parity_sent_total ${COUNTERS.indexOf('fecParitySent')}$`, 'm'))
  t.match(text, new RegExp(`^lwt_fec_recovered_packets_total ${COUNTERS.indexOf('fecPacketsRecovered')}$`, 'm'))
  t.notMatch(renderMetrics(report(), PROC), /lwt_peer_fec/, 'absent without --fec')
})

t.test('HTTP: a scrape, other paths, HEAD; close is idempotent', async t => {
  let n = 0
  const m = await startMetricsServer('127.0.0.1', 0, () => { n++; return report() }, quiet)
  t.teardown(() => m.close())
  const res = await fetch(`http://${m.address}/metrics`)
  t.equal(res.status, 200)
  t.equal(res.headers.get('content-type'), CONTENT_TYPE)
  t.match(await res.text(), /^lwt_uptime_seconds 62$/m)
  t.equal(n, 1, 'one collect per scrape')
  t.equal((await fetch(`http://${m.address}/nope`)).status, 404)
  t.equal((await fetch(`http://${m.address}/metrics`, { method: 'POST' })).status, 405)
  const head = await fetch(`http://${m.address}/metrics`, { method: 'HEAD' })
  t.equal(head.status, 200)
  t.equal(await head.text(), '')
  await m.close()
  await m.close()
})

t.test('a collect that throws is a 500, not a crash', async t => {
  const m = await startMetricsServer('127.0.0.1', 0, () => { throw new Error('boom') }, quiet)
  t.teardown(() => m.close())
  t.equal((await fetch(`http://${m.address}/metrics`)).status, 500)
})

t.test('a port in use is refused with the cause and the fix', async t => {
  const blocker = createServer()
  await new Promise<void>(resolve => blocker.listen(0, '127.0.0.1', () => resolve()))
  t.teardown(() => blocker.close())
  const port = (blocker.address() as AddressInfo).port
  await t.rejects(startMetricsServer('127.0.0.1', port, () => report(), quiet), {
    code: 'ERR_METRICS',
    message: `cannot serve metrics on 127.0.0.1:${port}: the port is already in use`,
    hint: new RegExp(`choose another --metrics port.*sport = :${port}`)
  })
})
