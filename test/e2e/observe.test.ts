/**
 * Observability in network namespaces: a server (with --metrics), alice and
 * bob behind port-restricted NATs (a direct path between them), carol with
 * --no-p2p (every peer through the relay), and two more clients in carol's
 * namespace on default control sockets (status discovery).
 *  - status RTT agrees with ping(8) through the tunnel (a correctness bound,
 *    not a speed assertion); the server shows RTTs too;
 *  - last seen moves with data-only traffic;
 *  - `ping` direct and relayed; `netcheck`; a metrics scrape parsed;
 *  - status finds the daemons of its namespace, --all, -c FILE.
 * The outputs are printed as test comments (they go in the report).
 */
import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createTopology, type Topology } from '../../src/lab/topology.js'
import { runIn, spawnIn, waitFor, type LabProcess } from '../../src/lab/exec.js'
import type { StatusReport } from '../../src/control/status.js'
import { BIN, KEY, cleanEnv, ping, startClient, startServer, status, tempStateDir, waitPing, waitReady, type Daemon } from '../helpers/daemon.js'

const S_IP = '10.77.0.1'
const A_IP = '10.77.0.2'
const B_IP = '10.77.0.3'
const C_IP = '10.77.0.4'
const METRICS_PORT = 9464
/** What a control-plane round trip may add to ping(8)'s (see the RTT test). */
const SLACK_MS = 5
let topo: Topology
let server: Daemon
let alice: Daemon
let bob: Daemon
let carol: Daemon
const extra: LabProcess[] = []
const dir = mkdtempSync(join(tmpdir(), 'lwt-observe-'))

t.before(async () => {
  topo = await createTopology({ clients: [{ name: 'alice', nat: 'port-restricted' }, { name: 'bob', nat: 'port-restricted' }, { name: 'carol', nat: 'port-restricted' }] })
  server = startServer(topo.serverNs, topo.id, { extra: ['--metrics', String(METRICS_PORT)] })
  alice = startClient(topo.client('alice').ns, topo.id, 'alice', `${A_IP}/24`, topo.serverWanIp)
  bob = startClient(topo.client('bob').ns, topo.id, 'bob', `${B_IP}/24`, topo.serverWanIp)
  carol = startClient(topo.client('carol').ns, topo.id, 'carol', `${C_IP}/24`, topo.serverWanIp, { extra: ['--no-p2p'] })
})
t.teardown(async () => {
  for (const p of extra) { p.child.kill('SIGTERM') }
  await Promise.all(extra.map(p => p.exited))
  await topo?.destroy()
  rmSync(dir, { recursive: true, force: true })
})

async function cli (ns: string, args: string[], okCodes = [0]): Promise<{ stdout: string, stderr: string, code: number }> {
  try {
    const r = await runIn(ns, 'env', ['-u', 'NODE_OPTIONS', BIN, ...args], { env: cleanEnv(), timeoutMs: 60_000 })
    return { ...r, code: 0 }
  } catch (err) {
    const e = err as { stdout?: string, stderr?: string, exitCode?: number, code?: number, status?: number }
    const code = e.exitCode ?? e.status ?? (typeof e.code === 'number' ? e.code : -1)
    if (!okCodes.includes(code)) throw err
    return { stdout: e.stdout ?? '', stderr: e.stderr ?? '', code }
  }
}

function peerOf (r: StatusReport, ip: string): StatusReport['peers'][number] {
  const p = r.peers.find(x => x.tunnelIp === ip)
  if (p === undefined) throw new Error(`no peer ${ip} in ${JSON.stringify(r.peers.map(x => x.tunnelIp))}`)
  return p
}

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

/** Per-reply RTTs of ping(8), ms. */
async function pingTimes (ns: string, ip: string, count: number): Promise<number[]> {
  const r = await runIn(ns, 'ping', ['-n', '-c', String(count), '-i', '0.2', '-W', '2', ip])
  return [...r.stdout.matchAll(/time=([\d.]+) ms/g)].map(m => Number(m[1]))
}

t.test('everyone registers; alice and bob go direct, carol relays', async t => {
  await waitReady(alice, 2)
  await waitReady(bob, 2)
  await waitReady(carol, 2)
  await waitReady(server, 3)
  await waitFor(async () => peerOf(await status(alice), B_IP).path === 'direct', { timeoutMs: 15_000, intervalMs: 200, what: 'alice → bob direct' })
  await waitPing(topo.client('alice').ns, B_IP)
  await waitPing(topo.client('carol').ns, A_IP)
  t.equal(peerOf(await status(carol), A_IP).path, 'relay')
})

t.test('status RTT agrees with ping through the tunnel, on the client and on the server', async t => {
  const ns = topo.client('alice').ns
  // A few keepalive / path-probe samples exist by now; ping(8) gives the reference.
  const toServer = median(await pingTimes(ns, S_IP, 10))
  const toBob = median(await pingTimes(ns, B_IP, 10))
  const sa = await status(alice)
  const ss = await status(server)
  const rs = peerOf(sa, S_IP).rttMs
  const rb = peerOf(sa, B_IP).rttMs
  const ra = peerOf(ss, A_IP).rttMs
  t.comment(`ping(8) median: server ${toServer} ms, bob ${toBob} ms; status: server ${rs} ms, bob ${rb} ms; the server's status for alice ${ra} ms`)
  // The bound: 3× ping(8) plus SLACK_MS for what a control-plane round trip adds to the
  // tunnel's (both ends' event loops waking up and handling it: 1 to 4 ms on this lab's
  // loaded 2 cores, src/control/rtt.ts). The smoothed average status showed before kept the
  // first, cold sample (25 to 45 ms here) for minutes and fails this.
  const bound = (p: number): number => 3 * p + SLACK_MS
  t.ok(rs !== null && rs < bound(toServer), `alice's RTT to the server ${rs} ms vs ping ${toServer} ms`)
  t.ok(rb !== null && rb < bound(toBob), `alice's RTT to bob ${rb} ms vs ping ${toBob} ms`)
  t.ok(ra !== null && ra < bound(toServer), `the server's RTT to alice ${ra} ms (ping ${toServer} ms)`)
  for (const p of ss.peers) t.not(p.rttMs, null, `the server has an RTT for ${p.tunnelIp}`)
  t.comment(`alice$ lightweight-tunnel status\n${(await cli(ns, ['status', '--control', alice.control])).stdout}`)
  t.comment(`server$ lightweight-tunnel status\n${(await cli(topo.serverNs, ['status', '--control', server.control])).stdout}`)
})

t.test('last seen moves with data-only traffic', async t => {
  // Wait for a quiet moment (keepalives are 10 s apart), then send one data packet.
  let before = 0
  await waitFor(async () => {
    before = peerOf(await status(server), A_IP).lastSeenSec ?? 0
    return before >= 2
  }, { timeoutMs: 15_000, intervalMs: 250, what: 'two quiet seconds on the server\'s alice entry' })
  t.equal((await ping(topo.client('alice').ns, S_IP, 1)).received, 1)
  const after = peerOf(await status(server), A_IP).lastSeenSec!
  t.ok(after < before && after < 1.5, `the server saw alice ${before} s ago, ${after} s ago after one tunnel ping`)
})

t.test('ping: direct and relayed, and an unknown peer', async t => {
  const d = await cli(topo.client('alice').ns, ['ping', '-c', '3', '-i', '0.2', '--control', alice.control, B_IP])
  t.comment(`alice$ lightweight-tunnel ping -c 3 ${B_IP}\n${d.stdout}`)
  t.match(d.stdout, new RegExp(`pong from ${B_IP.replace(/\./g, '\\.')} via [0-9.]+:[0-9]+ \\(direct\\) in [0-9.]+ ms`))
  t.match(d.stdout, /3 pings, 3 answered \(0% loss\)/)
  const r = await cli(topo.client('carol').ns, ['ping', '-c', '2', '-i', '0.2', '--control', carol.control, A_IP])
  t.comment(`carol$ lightweight-tunnel ping -c 2 ${A_IP}\n${r.stdout}`)
  t.match(r.stdout, new RegExp(`pong from ${A_IP.replace(/\./g, '\\.')} via ${topo.serverWanIp.replace(/\./g, '\\.')}:9000 \\(relay\\)`))
  const s = await cli(topo.client('alice').ns, ['ping', '-c', '1', '--control', alice.control, S_IP])
  t.comment(`alice$ lightweight-tunnel ping -c 1 ${S_IP}\n${s.stdout}`)
  t.match(s.stdout, /\(direct\) in [0-9.]+ ms/)
  const sv = await cli(topo.serverNs, ['ping', '-c', '1', '--control', server.control, C_IP])
  t.comment(`server$ lightweight-tunnel ping -c 1 ${C_IP}\n${sv.stdout}`)
  t.match(sv.stdout, /\(direct\) in [0-9.]+ ms/)
  const u = await cli(topo.client('alice').ns, ['ping', '-c', '1', '--control', alice.control, '10.77.0.99'], [1])
  t.equal(u.code, 1)
  t.match(u.stderr, /10\.77\.0\.99 is not a peer of this node/)
})

t.test('netcheck reports the NAT, the server and the NAT-check port', async t => {
  const r = await cli(topo.client('alice').ns, ['netcheck', '--control', alice.control])
  t.comment(`alice$ lightweight-tunnel netcheck\n${r.stdout}`)
  t.match(r.stdout, /UDP +yes: the server answered a Ping in [0-9.]+ ms/)
  t.match(r.stdout, new RegExp(`public address +${topo.client('alice').routerWanIp!.replace(/\./g, '\\.')}:[0-9]+`))
  t.match(r.stdout, /NAT +cone: /)
  t.match(r.stdout, /NAT-check port +[0-9.]+:9001 answering/)
  t.match(r.stdout, /port mapping +none \((probing|mapping|failed)\): (asking|no NAT-PMP\/PCP answer)/, 'what the mapper found (alice\'s router maps nothing)')
  t.match(r.stdout, /path MTU +(\d+ bytes to the server|searching)/)
  const j = JSON.parse((await cli(topo.client('alice').ns, ['netcheck', '--json', '--control', alice.control])).stdout) as Record<string, unknown>
  t.equal(j.udp, true)
  t.equal(j.nat, 'cone')
  const sv = await cli(topo.serverNs, ['netcheck', '--control', server.control], [1])
  t.match(sv.stderr, /netcheck runs on a client/)
})

t.test('metrics: a scrape parses, and counters move with traffic', async t => {
  const scrape = async (): Promise<string> => (await runIn(topo.serverNs, 'curl', ['-sS', '--fail', `http://127.0.0.1:${METRICS_PORT}/metrics`])).stdout
  const first = await scrape()
  const LINE = /^(# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .*|[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*",?)*\})? -?[0-9.e+-]+|[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? (NaN|[+-]Inf))$/
  const bad = first.trimEnd().split('\n').filter(l => !LINE.test(l))
  t.same(bad, [], 'every line is valid exposition format')
  const value = (text: string, series: string): number => {
    const line = text.split('\n').find(l => l.startsWith(series + ' '))
    if (line === undefined) throw new Error(`no ${series} in the scrape`)
    return Number(line.slice(series.length + 1))
  }
  t.equal(value(first, 'lwt_registered_clients'), 3)
  t.ok(value(first, `lwt_peer_rtt_seconds{peer="${A_IP}"}`) > 0, 'a per-peer RTT')
  t.match(first, /lwt_dataplane_info\{placement="fused",tun_offload="[a-z+]+",udp_gro="(on|off)",fast_path="(on|off)"\} 1/)
  t.match(first, /lwt_drops_total\{reason="auth_failed"\} [0-9]+/)
  t.ok(value(first, 'lwt_handshakes_total{result="accepted"}') >= 3, 'three clients registered')
  const rx0 = value(first, 'lwt_udp_packets_total{direction="rx"}')
  const relayed0 = value(first, 'lwt_relayed_packets_total')
  await ping(topo.client('carol').ns, A_IP, 5, 0.05)
  const second = await scrape()
  t.ok(value(second, 'lwt_udp_packets_total{direction="rx"}') >= rx0 + 10, 'UDP rx counted the relayed pings')
  t.ok(value(second, 'lwt_relayed_packets_total') >= relayed0 + 10, 'the relay counter moved')
  t.comment('server$ curl -s http://127.0.0.1:9464/metrics | grep -v "^#"\n' + second.split('\n').filter(l => !l.startsWith('#')).join('\n'))
})

t.test('status finds the daemons of its namespace, --all lists every daemon, -c FILE finds a config\'s daemon', async t => {
  const ns = topo.client('carol').ns
  const file = join(dir, 'dave.json')
  writeFileSync(file, JSON.stringify({ mode: 'client', remote: `${topo.serverWanIp}:9000`, tun: '10.77.0.8/24', key: KEY, dev: 'lwt8', p2p: false, stateDir: tempStateDir('dave') }), { mode: 0o600 })
  extra.push(spawnIn(ns, 'env', ['-u', 'NODE_OPTIONS', BIN, '-c', file], { env: cleanEnv() }))
  extra.push(spawnIn(ns, 'env', ['-u', 'NODE_OPTIONS', BIN, 'client', '--remote', `${topo.serverWanIp}:9000`, '--tun', '10.77.0.9/24', '--key', KEY, '--dev', 'lwt9', '--no-p2p', '--state-dir', tempStateDir('lwt9')], { env: cleanEnv() }))
  await waitFor(async () => {
    const r = await cli(ns, ['status', '--json'], [0, 1, 2, 3])
    if (r.code !== 0) return false
    const a = JSON.parse(r.stdout) as Array<{ report?: StatusReport }>
    return Array.isArray(a) && a.length === 2 && a.every(x => x.report?.state === 'registered')
  }, { timeoutMs: 20_000, intervalMs: 300, what: 'two daemons on default sockets in carol\'s namespace' })
  const both = await cli(ns, ['status'])
  t.comment(`carol's namespace$ lightweight-tunnel status\n${both.stdout}`)
  t.match(both.stdout, /==> \/run\/lightweight-tunnel\/lwt8\.[0-9]+\.sock <==/)
  t.match(both.stdout, /==> \/run\/lightweight-tunnel\/lwt9\.[0-9]+\.sock <==/)
  t.match(both.stdout, /client on lwt8/)
  t.match(both.stdout, /client on lwt9/)
  const byFile = await cli(ns, ['status', '-c', file])
  t.match(byFile.stdout, /client on lwt8/)
  t.notMatch(byFile.stdout, /lwt9/)
  const one = await cli(ns, ['ping', '-c', '1', S_IP], [2])
  t.match(one.stderr, /2 daemons run in this network namespace \(lwt8, lwt9\): say which with --dev NAME/)
  const all = await cli(topo.internetNs, ['status', '--all', '--json'], [0, 1])
  const listed = (JSON.parse(all.stdout) as Array<{ control: string }>).map(x => x.control)
  t.ok(listed.some(p => /\/lwt8\.[0-9]+\.sock$/.test(p)) && listed.some(p => /\/lwt9\.[0-9]+\.sock$/.test(p)), 'status --all from another namespace lists both')
  // The namespaces without a default-socket daemon find none.
  const none = await cli(topo.client('bob').ns, ['status'], [3])
  t.match(none.stderr, /no lightweight-tunnel daemon is running in this network namespace/)
})
