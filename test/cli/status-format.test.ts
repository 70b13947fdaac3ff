/**
 * formatStatus: header, peer table with human units and '-' for nulls; and
 * `status` end to end through main() against a fake daemon's control socket.
 */
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { formatBytes, formatDuration, formatStatus } from '../../src/cli/status-format.js'
import { startControlServer } from '../../src/cli/control-protocol.js'
import { main } from '../../src/cli/main.js'
import type { PeerStatus, StatusReport } from '../../src/control/status.js'
import { silentLogger } from '../../src/log.js'

const peer = (p: Partial<PeerStatus>): PeerStatus => ({
  tunnelIp: '10.0.0.3',
  peerId: 3,
  role: 'client',
  path: 'direct',
  endpoint: '198.51.100.7:40000',
  publicEndpoint: '198.51.100.7:40000',
  rttMs: 12.34,
  txBytes: 1536,
  rxBytes: 5 * 1024 * 1024,
  txPackets: 10,
  rxPackets: 20,
  session: 'established',
  lastSeenSec: 2,
  note: null,
  ...p
})

const clientReport: StatusReport = {
  mode: 'client',
  version: '0.1.0',
  dev: 'lwt0',
  tunnelIp: '10.0.0.2',
  prefix: 24,
  mtu: 1400,
  listen: null,
  server: '203.0.113.5:9000',
  state: 'registered',
  problem: null,
  uptimeSec: 3723,
  peers: [
    peer({ tunnelIp: '10.0.0.10', path: 'relay', endpoint: '203.0.113.5:9000', rttMs: null, lastSeenSec: null, note: 'both NATs randomize ports; relaying', session: 'handshaking', txBytes: 0, rxBytes: 100 }),
    peer({ key: 'SHA256:AAAAbbbbCCCCdddd' }),
    peer({ tunnelIp: '10.0.0.1', peerId: 0, role: 'server', key: 'SHA256:q3Xk0mJd9cOaP1sQ', path: 'relay', endpoint: '203.0.113.5:9000', rttMs: 150, txBytes: 3 * 1024 * 1024 * 1024 })
  ],
  nodeKey: { publicKey: 'Ym9ndXMgcHVibGljIGtleSBmb3IgdGhlIHRlc3Qgb2s=', fingerprint: 'SHA256:Zmh6rfhivXdsj8GL' },
  counters: { tunRxPackets: 42, dropsReplay: 0, dropsAuth: 3 },
  dataplane: { placement: 'inline', tunOffload: 'tso+uso', udpGro: true, fastPath: true }
}

t.test('IPv6 tunnel addresses: in the header, and an IPV6 column only when some peer has one', async t => {
  const plain = formatStatus(clientReport)
  t.notMatch(plain, /IPV6/, 'no column without IPv6')
  const six = formatStatus({ ...clientReport, tunnel6: 'fd00:77::2/64', peers: [peer({ tunnel6: 'fd00:77::3' }), peer({ tunnelIp: '10.0.0.10' })] })
  t.match(six, /tunnel address +10\.0\.0\.2\/24, fd00:77::2\/64 \(mtu 1400\)/)
  t.match(six, /TUNNEL IP +IPV6 +ROLE/)
  t.match(six, /10\.0\.0\.3 +fd00:77::3 +client/)
  t.match(six, /10\.0\.0\.10 +- +client/, 'a peer without one: -')
})

t.test('units', async t => {
  const cases: Array<[number, string]> = [[0, '0 B'], [1023, '1023 B'], [1024, '1.0 KiB'], [1536, '1.5 KiB'], [5 * 1024 * 1024, '5.0 MiB'], [150 * 1024 * 1024, '150 MiB'], [3 * 1024 ** 3, '3.0 GiB']]
  for (const [n, s] of cases) t.equal(formatBytes(n), s, `${n} bytes`)
  const d: Array<[number, string]> = [[0, '0s'], [45, '45s'], [185, '3m 05s'], [3723, '1h 02m 03s'], [2 * 86400 + 3 * 3600 + 4 * 60, '2d 03h 04m']]
  for (const [n, s] of d) t.equal(formatDuration(n), s, `${n} seconds`)
})

t.test('client report', async t => {
  const out = formatStatus(clientReport)
  const lines = out.split('\n')
  t.equal(lines[0], 'lightweight-tunnel 0.1.0, client on lwt0')
  t.match(out, /tunnel address +10\.0\.0\.2\/24 \(mtu 1400\)/)
  t.match(out, /server +203\.0\.113\.5:9000/)
  t.match(out, /state +registered/)
  t.match(out, /uptime +1h 02m 03s/)
  t.match(out, /dataplane +inline; TUN offloads tso\+uso; UDP GRO on; fast path on\n/)
  t.notMatch(formatStatus({ ...clientReport, dataplane: undefined }), /dataplane/, 'an older report without it: no line')
  t.notMatch(out, /PROBLEM/)
  const header = lines.find(l => l.startsWith('TUNNEL IP'))!
  t.ok(header, 'table header')
  t.match(out, /node key +SHA256:Zmh6rfhivXdsj8GL \(public key Ym9ndXMgcHVibGljIGtleSBmb3IgdGhlIHRlc3Qgb2s=\)\n/)
  t.notMatch(formatStatus({ ...clientReport, nodeKey: undefined }), /node key/, 'an older report without it: no line')
  const cols = ['TUNNEL IP', 'ROLE', 'KEY', 'PATH', 'ENDPOINT', 'RTT', 'TX', 'RX', 'SESSION', 'LAST SEEN', 'NOTE']
  let at = -1
  for (const c of cols) { const i = header.indexOf(c); t.ok(i > at, `${c} in order`); at = i }
  const rows = lines.slice(lines.indexOf(header) + 1, lines.indexOf(header) + 4)
  t.match(rows[0], /^10\.0\.0\.1 +server +SHA256:q3Xk0mJd9cOaP1sQ +relay +203\.0\.113\.5:9000 +150 ms +3\.0 GiB +5\.0 MiB +established +2s ago +-$/, 'sorted by address; server first')
  t.match(rows[1], /^10\.0\.0\.3 +client +SHA256:AAAAbbbbCCCCdddd +direct +198\.51\.100\.7:40000 +12\.3 ms +1\.5 KiB +5\.0 MiB +established +2s ago +-$/)
  t.match(rows[2], /^10\.0\.0\.10 +client +- +relay +203\.0\.113\.5:9000 +- +0 B +100 B +handshaking +- +both NATs randomize ports; relaying$/, "'-' for nulls")
  // Columns line up: every row's ENDPOINT starts where the header's does.
  const ep = header.indexOf('ENDPOINT')
  for (const r of rows) t.match(r.slice(ep), /^[0-9]/)
  t.match(out, /counters \(non-zero\):\n +dropsAuth=3 tunRxPackets=42/)
  t.notMatch(out, /dropsReplay/)
})

t.test('direct-path section: candidates, NAT kinds, why relay, last pong', async t => {
  const p2p = (x: Partial<NonNullable<PeerStatus['p2p']>>): NonNullable<PeerStatus['p2p']> => ({
    enabled: true, localNat: 'cone', peerNat: 'cone', strategy: 'punch', relayReason: null, candidates: [], candidatesTried: 0,
    lastPongSec: null, timeToDirectMs: null, pathChanges: 0, pathAgeSec: 1, probesSent: 0, birthdayPunchesIgnored: 0, ...x
  })
  const out = formatStatus({
    ...clientReport,
    peers: [
      peer({ p2p: p2p({ lastPongSec: 0.4, candidatesTried: 2, candidates: [{ endpoint: '198.51.100.7:40000', kind: 'public', state: 'confirmed', pingsSent: 9, pongs: 9, rttMs: 1.25 }, { endpoint: '192.168.1.7:40000', kind: 'lan', state: 'probing', pingsSent: 9, pongs: 0, rttMs: null }] }) }),
      peer({ tunnelIp: '10.0.0.10', path: 'relay', p2p: p2p({ peerNat: 'symmetric', strategy: 'relay-only', relayReason: 'DOUBLE_SYMMETRIC', localNat: 'cone' }) }),
      peer({ tunnelIp: '10.0.0.1', peerId: 0, role: 'server' })
    ]
  })
  t.match(out, /direct paths \(our NAT: cone\):/)
  t.match(out, /PEER +PEER NAT +STRATEGY +LAST PONG +TRIED +CANDIDATES +WHY RELAY/)
  t.match(out, /10\.0\.0\.3 +cone +punch +0s ago +2\/2 +198\.51\.100\.7:40000 public confirmed 1\.25 ms, 192\.168\.1\.7:40000 lan probing +-/)
  t.match(out, /10\.0\.0\.10 +symmetric +relay-only +- +0\/0 +- +DOUBLE_SYMMETRIC/)
  t.notMatch(formatStatus(clientReport), /direct paths/, 'no section without p2p data (--no-p2p, servers)')
})

t.test('FEC section: per peer parameters or off, and the counters', async t => {
  const out = formatStatus({
    ...clientReport,
    counters: { fecGroupsRecovered: 7, fecPacketsRecovered: 9, fecGroupsUnrecoverable: 1, fecParitySent: 30, dropFecMalformed: 2 },
    peers: [
      peer({ fec: { data: 10, parity: 3 } }),
      peer({ tunnelIp: '10.0.0.10', fec: null }),
      peer({ tunnelIp: '10.0.0.1', peerId: 0, role: 'server' })
    ]
  })
  t.match(out, /FEC \(--fec; recovered groups 7, packets 9, unrecoverable groups 1, parity sent 30, malformed parity dropped 2\):/)
  t.match(out, /\n  10\.0\.0\.3  10,3 \(3 parity after every 10 data messages\)\n  10\.0\.0\.10  off \(the peer does not use --fec, or no session yet\)\n/)
  t.notMatch(out, /10\.0\.0\.1  (off|\d)/, 'the server entry has no FEC line')
  t.notMatch(formatStatus(clientReport), /FEC/, 'no section without --fec')
})

t.test('path MTU section: each path\'s size, state, limit and time to find it; absent without', async t => {
  const out = formatStatus({
    ...clientReport,
    peers: [
      peer({ tunnelIp: '10.0.0.1', peerId: 0, role: 'server', pmtu: { mtu: 1280, state: 'confirmed', foundInMs: 1640, innerMax: 1220 } }),
      peer({ pmtu: { mtu: 1468, state: 'black-hole', foundInMs: 60, innerMax: null } }),
      peer({ tunnelIp: '10.0.0.10', pmtu: { mtu: 1280, state: 'confirmed', foundInMs: 1640, innerMax: 1212, via: 'relay' } })
    ]
  })
  t.match(out, /path MTU \(probed; outer IP bytes\):/)
  t.match(out, /10\.0\.0\.1 \(server\) +1280 +confirmed +inner ≤ 1220 +1\.6 s +own path/)
  t.match(out, /10\.0\.0\.3 +1468 +black hole suspected, searching +no limit +0\.1 s/)
  t.match(out, /10\.0\.0\.10 +1280 +confirmed +inner ≤ 1212 .*the server's path \(relayed\)/)
  t.notMatch(formatStatus(clientReport), /path MTU/)
})

t.test('control-plane timing: one line, only when the report has it', async t => {
  const controlPlane = { tickLateMs: { p50: 1.24, p99: 3.4, max: 12.3 }, loopDelayMs: { p50: 0.1, p99: 11, max: 40.2 }, ticks: 4032, ticksLate: 3 }
  const out = formatStatus({ ...clientReport, controlPlane })
  t.match(out, /\n {2}control plane {3}timer late p50 1\.2 ms, p99 3\.4 ms, max 12 ms; loop delay p99 11 ms, max 40 ms; 3 of 4032 runs > 20 ms late\n/)
  const lines = out.split('\n')
  t.equal(lines.findIndex(l => l.includes('control plane')), lines.findIndex(l => l.includes('dataplane')) + 1, 'right after the dataplane line')
  t.match(out, /\n {2}dataplane {7}inline/, 'the other keys still line up')
  t.notMatch(formatStatus(clientReport), /control plane/, 'an older report without it: no line')
  const first = formatStatus({ ...clientReport, controlPlane: { ...controlPlane, loopDelayMs: null } })
  t.match(first, /timer late p50 1\.2 ms, p99 3\.4 ms, max 12 ms; loop delay not sampled; 3 of 4032 runs > 20 ms late\n/,
    'the loop is sampled only when asked')
})

t.test('server report with a problem and no peers', async t => {
  const out = formatStatus({ ...clientReport, mode: 'server', listen: '0.0.0.0:9000', server: null, state: 'running', problem: 'cannot bind 0.0.0.0:9000', peers: [], counters: {} })
  t.match(out, /^lightweight-tunnel 0\.1\.0, server on lwt0/)
  t.match(out, /listening on +0\.0\.0\.0:9000/)
  t.match(out, /PROBLEM +cannot bind 0\.0\.0\.0:9000/)
  t.match(out, /no clients registered/)
  t.notMatch(out, /TUNNEL IP/)
  t.notMatch(out, /counters/)
})

t.test('routes: isolation, own routes, the server\'s decisions per client, the kernel table', async t => {
  const r: StatusReport = {
    ...clientReport,
    mode: 'server',
    peers: [peer({ tunnelIp: '10.0.0.3', routes: [{ prefix: '192.168.50.0/24', state: 'approved', reason: null }, { prefix: '192.168.80.0/24', state: 'pending', reason: 'not approved' }] })],
    routes: { advertised: ['172.16.0.0/16'], kernel: [{ prefix: '192.168.50.0/24', via: '10.0.0.3', state: 'installed', reason: null }, { prefix: '198.18.0.0/16', via: '10.0.0.3', state: 'skipped', reason: 'holds the server\'s address' }], clientIsolation: true }
  }
  const out = formatStatus(r)
  t.match(out, /isolation +on: clients reach this server and its routes, never each other/)
  t.match(out, /own routes +172\.16\.0\.0\/16/)
  t.match(out, /client routes:\nCLIENT +ROUTE +STATE +WHY\n10\.0\.0\.3 +192\.168\.50\.0\/24 +approved +-\n10\.0\.0\.3 +192\.168\.80\.0\/24 +pending +not approved\n/)
  t.match(out, /routes in the kernel table:\nROUTE +VIA +STATE +WHY\n192\.168\.50\.0\/24 +10\.0\.0\.3 +installed +-\n198\.18\.0\.0\/16 +10\.0\.0\.3 +skipped +holds the server's address\n/)
  t.notMatch(formatStatus(clientReport), /routes|isolation/, 'nothing about routes when there are none')
})

t.test('rejected client shows the problem', async t => {
  const out = formatStatus({ ...clientReport, state: 'rejected', problem: 'the server rejected our key', peers: [] })
  t.match(out, /state +rejected/)
  t.match(out, /PROBLEM +the server rejected our key/)
  t.match(out, /no peers yet/)
})

t.test('control characters from peers are neutralised', async t => {
  const out = formatStatus({ ...clientReport, peers: [peer({ note: 'evil\u001b[2Jnote\nsecond line' })] })
  t.notMatch(out, /\u001b/)
  t.match(out, /evil\?\[2Jnote\?second line/)
})

t.test('status through main() against a fake daemon', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'lwt-st-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'd.sock')
  const srv = await startControlServer(path, async (req) => {
    if (req.cmd === 'status') return clientReport
    throw new Error('unexpected')
  }, silentLogger)
  t.teardown(() => srv.close())
  const collect = (): { out: string[], err: string[], io: { stdout: { write(s: string): number }, stderr: { write(s: string): number } } } => {
    const out: string[] = []
    const err: string[] = []
    return { out, err, io: { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => err.push(s) } } }
  }
  const a = collect()
  t.equal(await main(['status', '--control', path], a.io), 0)
  t.equal(a.out.join(''), formatStatus(clientReport))
  t.same(a.err, [])
  const b = collect()
  t.equal(await main(['status', '--json', '--control', path], b.io), 0)
  t.same(JSON.parse(b.out.join('')), clientReport)
})

t.test('port mapping line: the mapping, or why there is none; absent when off', async t => {
  const mapped = formatStatus({
    ...clientReport,
    portMapping: { state: 'mapped', gateway: '192.168.1.1', protocol: 'pcp', external: '100.64.1.2:40000', internalPort: 9000, lifetimeSec: 7200, lifetimeLeftSec: 7100, note: '' }
  })
  t.match(mapped, /port mapping +PCP 100\.64\.1\.2:40000 → port 9000 via gateway 192\.168\.1\.1, lifetime 7200 s \(7100 s left\); offered to peers\n/)
  const failed = formatStatus({
    ...clientReport,
    portMapping: { state: 'failed', gateway: '192.168.1.1', protocol: null, external: null, internalPort: 9000, lifetimeSec: null, lifetimeLeftSec: null, note: 'no NAT-PMP/PCP answer from 192.168.1.1 in 3 tries' }
  })
  t.match(failed, /port mapping +none \(failed\): no NAT-PMP\/PCP answer from 192\.168\.1\.1 in 3 tries \(turn on UPnP, NAT-PMP or PCP in the router so that peers behind symmetric NATs can reach this node directly\)\n/)
  t.notMatch(formatStatus({ ...clientReport, portMapping: null }), /port mapping/)
  const permanent = formatStatus({
    ...clientReport,
    portMapping: { state: 'mapped', gateway: '192.168.1.1', protocol: 'upnp', external: '100.64.1.2:9000', internalPort: 9000, lifetimeSec: 0, lifetimeLeftSec: null, note: '' }
  })
  t.match(permanent, /port mapping +UPnP 100\.64\.1\.2:9000 → port 9000 via gateway 192\.168\.1\.1, a permanent lease \(the router grants no other; deleted on exit\); offered to peers\n/)
})

t.test('transport lines: the client\'s server path and why; the server\'s TCP listener', async t => {
  const onTcp = formatStatus({ ...clientReport, transport: { client: { mode: 'auto', transport: 'tcp', reason: 'no UDP answer from the server in 2 s', tcp: '203.0.113.5:9000' } } })
  t.match(onTcp, /transport +tcp to 203\.0\.113\.5:9000 \(--transport auto\): no UDP answer from the server in 2 s\n/)
  const onUdp = formatStatus({ ...clientReport, transport: { client: { mode: 'auto', transport: 'udp', reason: null, tcp: null } } })
  t.match(onUdp, /transport +udp \(--transport auto\)\n/)
  t.notMatch(formatStatus(clientReport), /transport/, 'absent when the report has none')
  const server = { ...clientReport, mode: 'server' as const, listen: '0.0.0.0:9000', server: null, peers: [] }
  t.match(formatStatus({ ...server, transport: { tcpListen: '0.0.0.0:9000' } }), /tcp +accepting on 0\.0\.0\.0:9000\n/)
  t.match(formatStatus({ ...server, transport: { tcpListen: null } }), /tcp +off \(--no-tcp\)\n/)
})

t.test('fake TCP: one line with the link\'s state, only when the report has it', async t => {
  const text = formatStatus({ ...clientReport, faketcp: { transport: 'faketcp', role: 'client', port: 9000, state: 'established', localPort: 40123, nftTable: 'lwt_faketcp_c9000' } })
  t.match(text, /fake TCP +role client, port 9000, state established, localPort 40123, nftTable lwt_faketcp_c9000/)
  t.notMatch(formatStatus(clientReport), /fake TCP/)
})
