/**
 * The CLI side of ping, netcheck, check and status discovery: output
 * formats, exit codes, and finding sockets — without a daemon (the e2e file
 * test/e2e/observe.test.ts runs them against real ones).
 */
import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { main } from '../../src/cli/main.js'
import { devOf, findDaemons, listSockets } from '../../src/cli/discover.js'
import { formatPingLine, formatPingSummary, runPing } from '../../src/cli/ping.js'
import { formatNetcheck } from '../../src/cli/netcheck.js'
import type { NetcheckReport } from '../../src/control/observe-requests.js'

function io (): { out: () => string, err: () => string, io: { stdout: { write(s: string): boolean }, stderr: { write(s: string): boolean } } } {
  const out: string[] = []
  const err: string[] = []
  return { out: () => out.join(''), err: () => err.join(''), io: { stdout: { write: (s: string) => out.push(s) > 0 }, stderr: { write: (s: string) => err.push(s) > 0 } } }
}

const dir = mkdtempSync(join(tmpdir(), 'lwt-cli-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

t.test('check -c FILE: a good file is summarized, exit 0', async t => {
  const file = join(dir, 'client.json')
  writeFileSync(file, JSON.stringify({ mode: 'client', remote: 'vpn.example.com:9000', tun: '10.0.0.2/24', key: 'a-long-enough-secret-key' }), { mode: 0o600 })
  const c = io()
  t.equal(await main(['check', '-c', file], c.io), 0)
  t.equal(c.out(), 'config OK: client 10.0.0.2/24 → vpn.example.com:9000 (dev lwt0, mtu 1400, direct paths on)\n')
  t.equal(c.err(), '')
  const server = join(dir, 'server.json')
  writeFileSync(server, JSON.stringify({ mode: 'server', tun: '10.0.0.1/24', key: 'a-long-enough-secret-key', metrics: 9100 }), { mode: 0o600 })
  const s = io()
  t.equal(await main(['check', server], s.io), 0, 'check FILE works too')
  t.equal(s.out(), 'config OK: server 10.0.0.1/24 listening on [::]:9000 (dev lwt0, mtu 1400, metrics on 127.0.0.1:9100, up to 100 clients)\n')
  const six = join(dir, 'six.json')
  writeFileSync(six, JSON.stringify({ mode: 'server', tun: ['10.0.0.1/24', 'fd00:77::1/64'], key: 'a-long-enough-secret-key' }), { mode: 0o600 })
  const x = io()
  t.equal(await main(['check', six], x.io), 0)
  t.match(x.out(), /^config OK: server 10\.0\.0\.1\/24,fd00:77::1\/64 listening/, 'both addresses')
})

t.test('check -c FILE: every problem with its key, exit 2', async t => {
  const file = join(dir, 'bad.json')
  writeFileSync(file, JSON.stringify({ mode: 'client', tun: '10.0.0.0/24', key: 'a-long-enough-secret-key', mtu: 99, colour: 'blue' }), { mode: 0o600 })
  const c = io()
  t.equal(await main(['check', '-c', file], c.io), 2)
  t.equal(c.out(), '')
  const lines = c.err().trimEnd().split('\n')
  t.ok(lines.length >= 4, c.err())
  for (const l of lines.slice(0, -1)) t.ok(l.startsWith(`${file}: `), l)
  t.match(c.err(), /remote/)
  t.match(c.err(), /mtu/)
  t.match(c.err(), /colour/)
  t.match(lines.at(-1), new RegExp(`^config ${file.replace(/[.]/g, '\\.')} has ${lines.length - 1} problems$`))
  const m = io()
  t.equal(await main(['check', '-c', join(dir, 'missing.json')], m.io), 2)
  t.match(m.err(), /missing\.json/)
  const broken = join(dir, 'broken.json')
  writeFileSync(broken, '{"mode": "client",}', { mode: 0o600 })
  const b = io()
  t.equal(await main(['check', '-c', broken], b.io), 2)
  t.notMatch(b.err(), new RegExp(`${broken.replace(/[.]/g, '\\.')}: ${broken.replace(/[.]/g, '\\.')}:`), 'the file is named once per line, not twice')
  t.match(b.err(), /line 1, column 19/)
})

t.test('discovery lists default sockets of one namespace, skips dead ones', async t => {
  const d = mkdtempSync(join(dir, 'run-'))
  const live = (name: string): Promise<() => Promise<void>> => new Promise((resolve) => {
    const srv = createServer(() => {})
    srv.listen(join(d, name), () => resolve(() => new Promise(r => srv.close(() => r()))))
  })
  const closeA = await live('lwt0.111.sock')
  const closeB = await live('lwt1.111.sock')
  const closeC = await live('lwt0.222.sock')
  writeFileSync(join(d, 'lwt9.111.sock'), 'not a socket')
  // A socket file nobody listens on (a killed daemon).
  const closeDead = await live('lwt5.111.sock')
  await closeDead()
  writeFileSync(join(d, 'lwt5.111.sock'), '')
  t.teardown(async () => { await closeA(); await closeB(); await closeC() })
  t.same(listSockets(d, '111').map(x => x.dev), ['lwt0', 'lwt1'])
  t.same(listSockets(d, null).map(x => `${x.dev}.${x.netnsId}`), ['lwt0.111', 'lwt0.222', 'lwt1.111'])
  t.same((await findDaemons('222', d)).map(x => x.path), [join(d, 'lwt0.222.sock')])
  t.same(await findDaemons('333', d), [])
  t.equal(devOf('/run/lightweight-tunnel/wg-home.4026531840.sock'), 'wg-home')
  t.equal(devOf('/tmp/custom.sock'), 'custom')
})

t.test('ping output: per reply, summary, exit status', async t => {
  const ok = { peer: '10.0.0.3', path: 'direct' as const, endpoint: '198.51.100.9:41000', rttMs: 0.314 }
  t.equal(formatPingLine(ok, 2000), 'pong from 10.0.0.3 via 198.51.100.9:41000 (direct) in 0.31 ms')
  t.equal(formatPingLine({ ...ok, path: 'relay', endpoint: '198.51.100.1:9000', rttMs: null }, 2000), 'no answer from 10.0.0.3 via 198.51.100.1:9000 (relay) within 2 s')
  t.equal(formatPingSummary('10.0.0.3', [ok, { ...ok, rttMs: null }, { ...ok, rttMs: 1 }]), '--- 10.0.0.3: 3 pings, 2 answered (33% loss); rtt min/median/max 0.31/0.66/1.00 ms')
  const answers = [ok, { ...ok, rttMs: null }]
  let i = 0
  const lines: string[] = []
  const slept: number[] = []
  const code = await runPing({ peer: '10.0.0.3', count: 2, intervalMs: 1000, timeoutMs: 2000, json: false }, async () => answers[i++], (s) => { lines.push(s) }, async (ms) => { slept.push(ms) })
  t.equal(code, 0, 'exit 0 when any answer came')
  t.equal(lines.length, 3)
  t.equal(slept.length, 1)
  t.ok(slept[0]! <= 1000)
  const none = await runPing({ peer: '10.0.0.3', count: 1, intervalMs: 1000, timeoutMs: 2000, json: true }, async () => ({ ...ok, rttMs: null }), () => {}, async () => {})
  t.equal(none, 1, 'exit 1 when none came')
  await t.rejects(runPing({ peer: '10.0.0.3', count: 1, intervalMs: 1000, timeoutMs: 2000, json: false }, async () => ({ nonsense: true }), () => {}, async () => {}), { code: 'ERR_CONTROL_SOCKET' })
})

t.test('netcheck output names every field', async t => {
  const r: NetcheckReport = {
    dev: 'lwt0',
    server: '198.51.100.1:9000', state: 'registered', udp: true, rttMs: 0.42, keepaliveRttMs: 0.45, publicEndpoint: '203.0.113.7:41234',
    nat: 'cone', natHow: 'the same public endpoint everywhere', natCheck: { endpoint: '198.51.100.1:9001', answering: false, rttMs: null, sawUs: null },
    otherViews: [], localEndpoints: ['192.168.1.2:41234'], portMapping: { state: 'mapped', gateway: '192.168.1.1', protocol: 'upnp', external: '203.0.113.7:41234', internalPort: 41234, lifetimeSec: 7200, lifetimeLeftSec: 7000, note: '' }, pathMtu: '1280 bytes to the server (confirmed; inner packets up to 1220, larger ones get ICMP too-big)'
  }
  const text = formatNetcheck(r, 'lwt0')
  t.match(text, /^netcheck of the client on lwt0 \(server 198\.51\.100\.1:9000, registered\)\n/)
  t.match(text, /UDP +yes: the server answered a Ping in 0\.42 ms \(keepalive RTT 0\.45 ms\)/)
  t.match(text, /public address +203\.0\.113\.7:41234 \(how the server sees us\)/)
  t.match(text, /NAT +cone: the same public endpoint everywhere/)
  t.match(text, /NAT-check port +198\.51\.100\.1:9001 NOT answering/)
  t.match(text, /port mapping +UPnP 203\.0\.113\.7:41234 → port 41234 via gateway 192\.168\.1\.1, lifetime 7200 s \(7000 s left\); offered to peers\n/)
  t.match(formatNetcheck({ ...r, portMapping: null }, 'lwt0'), /port mapping +off \(--no-port-mapping or --no-p2p\)\n/)
  const failed = formatNetcheck({ ...r, portMapping: { ...r.portMapping!, state: 'failed', protocol: null, external: null, lifetimeSec: null, lifetimeLeftSec: null, note: 'no NAT-PMP/PCP answer from 192.168.1.1 in 3 tries; UPnP: no IGD answered SSDP in 2 tries' } }, 'lwt0')
  t.match(failed, /port mapping +none \(failed\): no NAT-PMP\/PCP answer from 192\.168\.1\.1 in 3 tries; UPnP: no IGD answered SSDP in 2 tries \(turn on UPnP/)
  t.match(text, /path MTU +1280 bytes to the server \(confirmed; inner packets up to 1220/)
  t.match(formatNetcheck({ ...r, udp: false, rttMs: null }, 'lwt0'), /UDP +NO: the server did not answer a Ping/)
})
