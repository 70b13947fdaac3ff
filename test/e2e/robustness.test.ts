/**
 * Bad input of every kind against real daemons in namespaces: a wrong key,
 * an impostor (another node key) claiming a live client's address, a flood of junk and replayed packets, and
 * start-up errors (port in use, device name taken, not root, no TUN).
 */
import t from 'tap'
import { fileURLToPath } from 'node:url'
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createTopology, type Topology } from '../../src/lab/topology.js'
import { runIn, spawnIn, waitFor } from '../../src/lab/exec.js'
import { BIN, KEY, cleanEnv, ping, startClient, startServer, status, tempStateDir, waitReady, type Daemon } from '../helpers/daemon.js'

const JUNK = fileURLToPath(new URL('../helpers/junk-flood.mjs', import.meta.url))
const FLOOD = fileURLToPath(new URL('../helpers/init-flood.mjs', import.meta.url))

/** SIGTERM (the daemon removes its device and control socket), SIGKILL after 3 s; then nothing of it may remain. */
async function stopDaemon (d: Daemon): Promise<void> {
  await d.proc.stop('SIGTERM', 3000).catch(() => {})
  rmSync(d.control, { force: true }) // only if it was killed: a clean exit removed it already
}

let topo: Topology
let server: Daemon
let alice: Daemon

function rssKiB (pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) : 0
}

/** The daemon's own pid (the LabProcess is `ip netns exec env … node`, which execs into node). */
function daemonPid (d: Daemon): number {
  return d.proc.pid!
}

t.before(async () => {
  topo = await createTopology({ clients: [{ name: 'alice', nat: 'port-restricted' }, { name: 'eve', nat: 'none' }, { name: 'carol', nat: 'full-cone' }] })
  server = startServer(topo.serverNs, topo.id)
  alice = startClient(topo.client('alice').ns, topo.id, 'alice', '10.77.0.2/24', topo.serverWanIp)
  await waitReady(alice, 0)
})
t.teardown(async () => { await topo?.destroy() })

t.test('wrong key: the client says so within 10 s and keeps retrying; the server logs the address once', async t => {
  const eve = startClient(topo.client('eve').ns, topo.id, 'eve', '10.77.0.66/24', topo.serverWanIp, { key: 'not-the-network-key' })
  t.teardown(() => stopDaemon(eve))
  const started = Date.now()
  const m = await eve.proc.waitForOutput(/rejected our key[^\n]*/, 10_000)
  t.ok(Date.now() - started < 10_000, 'within 10 s')
  t.match(m[0], /key/)
  const st = await status(eve)
  t.equal(st.state, 'rejected')
  t.match(st.problem ?? '', /key.*is probably wrong/)
  // Keep it retrying for a while: still one error line, still one server line.
  await new Promise(resolve => setTimeout(resolve, 6000))
  t.equal(eve.proc.output().match(/rejected our key/g)?.length, 1, 'the client does not repeat itself')
  t.equal(server.proc.output().match(/wrong network key/g)?.length, 1, 'the server logged the address once')
  t.equal(eve.proc.exitInfo, null, 'the client keeps running (retrying quietly)')
  t.equal((await status(server)).peers.length, 1, 'the server did not register it')
})

t.test('an impostor (another node key) claiming a live client\'s address: refused on both sides, the victim keeps its pings', async t => {
  const victimKey = (await status(alice)).nodeKey!.fingerprint
  const carol = startClient(topo.client('carol').ns, topo.id, 'carol', '10.77.0.2/24', topo.serverWanIp)
  t.teardown(() => stopDaemon(carol))
  // While the impostor registers and retries, the victim pings the server through the tunnel.
  const pings = ping(topo.client('alice').ns, '10.77.0.1', 20, 0.2)
  await carol.proc.waitForOutput(/belongs to another node key/, 10_000)
  const line = await server.proc.waitForOutput(/refused a client: 10\.77\.0\.2 belongs to another node key [^\n]*/, 5000)
  t.match(line[0], new RegExp(`belongs to another node key \\(${victimKey.replace(/[+/]/g, '\\$&')}, registered now from [^)]+\\); this one presented SHA256:`), 'the server names both keys')
  const st = await status(carol)
  t.equal(st.state, 'rejected')
  t.match(st.problem ?? '', /belongs to another node key/)
  const r = await pings
  t.equal(r.received, r.sent, `the victim lost no ping (${r.received}/${r.sent})`)
  const sv = await status(server)
  t.ok((sv.counters.handshakesKeyRefused ?? 0) >= 1, 'counted on the server')
  t.equal(sv.peers.find(p => p.tunnelIp === '10.77.0.2')?.key, victimKey, 'the address still belongs to the victim\'s key')
})

t.test('junk, truncated, garbage and replayed packets change nothing but drop counters', async t => {
  const before = await status(server)
  const rssBefore = rssKiB(daemonPid(server))
  const r = await runIn(topo.client('eve').ns, 'env', ['-u', 'NODE_OPTIONS', process.execPath, JUNK, topo.serverWanIp, '9000', KEY, '10.77.0.99'], { timeoutMs: 60_000, env: cleanEnv() })
  const summary = JSON.parse(r.stdout.trim().split('\n').pop()!) as { sent: Record<string, number>, initTries: number }
  t.ok(summary.sent.random >= 3000 && summary.sent.replays >= 1500, `the flood was sent; the registration after it was answered (init ${summary.initTries} of at most 5)`)
  await new Promise(resolve => setTimeout(resolve, 500))
  t.equal(server.proc.exitInfo, null, 'the server is alive')
  const after = await status(server)
  const d = (k: string): number => (after.counters[k] ?? 0) - (before.counters[k] ?? 0)
  t.ok(d('dropReplay') >= 499, `replayed data dropped (${d('dropReplay')})`)
  t.ok(d('dropUnknownType') + d('dropMalformed') + d('dropUnknownIndex') + d('dropRelayUnknownSource') + d('dropInitMac1') > 1000, 'junk counted as drops')
  t.equal(d('tunTxPackets'), 1, 'exactly one copy of the replayed ICMP packet reached the server\'s TUN')
  t.equal((await ping(topo.client('alice').ns, '10.77.0.1', 3)).received, 3, 'the tunnel still works')
  const rssAfter = rssKiB(daemonPid(server))
  t.ok(rssAfter - rssBefore < 40 * 1024, `RSS grew by ${Math.round((rssAfter - rssBefore) / 1024)} MiB (bounded)`)
})

t.test('a flood of junk and wrong-key inits does not stop a new client from registering', async t => {
  const before = await status(server)
  // Two flooders from eve's namespace (8 source ports each), for longer than the registration takes. In some
  // whole-suite runs on the shared development machine (never alone: 10 tries of the pair) the wrong-key
  // flooder got no further than its first stage marker (before its module imports, socket binds and scrypt)
  // until this wait killed it. Not diagnosed: its psk is now random (no scrypt), it reports each stage on
  // stderr (shown in a failure), and a watchdog 40 s after the flood writes what it still waits on and exits 3;
  // the 150 s here only catch a main thread blocked so hard that the watchdog cannot fire.
  const floods = ['junk', 'wrong-key'].map(mode => runIn(topo.client('eve').ns, 'env', ['-u', 'NODE_OPTIONS', process.execPath, FLOOD, topo.serverWanIp, '9000', mode, '20000', '12'], { timeoutMs: 150_000, env: cleanEnv() }))
  await new Promise(resolve => setTimeout(resolve, 2000))
  const dave = startClient(topo.client('carol').ns, topo.id, 'dave', '10.77.0.7/24', topo.serverWanIp)
  t.teardown(() => stopDaemon(dave))
  const st = await waitReady(dave, 1, 10_000)
  t.equal(st.state, 'registered', 'registered during the flood')
  const sums = (await Promise.all(floods)).map(r => JSON.parse(r.stdout.trim().split('\n').pop()!) as { mode: string, sent: number })
  const after = await status(server)
  const d = (k: string): number => (after.counters[k] ?? 0) - (before.counters[k] ?? 0)
  t.ok(sums.every(s => s.sent > 50_000), `the floods were sent (${sums.map(s => `${s.mode} ${s.sent}`).join(', ')})`)
  t.ok(d('dropInitMac1') > 50_000, `dropped in the worker on mac1: ${d('dropInitMac1')}`)
  t.equal(server.proc.exitInfo, null, 'the server is alive')
  t.equal((await ping(topo.client('alice').ns, '10.77.0.1', 3)).received, 3, 'the existing tunnel still works')
})

t.test('start-up errors name the cause and what to do', async t => {
  const ns = topo.serverNs
  const run = async (args: string[], prefix: string[] = []): Promise<{ code: number, out: string }> => {
    const cmd = [...prefix, 'env', '-u', 'NODE_OPTIONS', BIN, ...args]
    const p = spawnIn(ns, cmd[0], cmd.slice(1), { env: cleanEnv() })
    const info = await p.exited
    return { code: info.code, out: p.output() }
  }
  const common = ['--tun', '10.88.0.1/24', '--key', KEY, '--control', `/run/lightweight-tunnel/test-${topo.id}-err.sock`]
  const base = [...common, '--state-dir', tempStateDir('err')]
  const portInUse = await run(['server', '--listen', '0.0.0.0:9000', '--dev', 'lwterr0', ...base])
  t.equal(portInUse.code, 1)
  t.match(portInUse.out, /UDP port 0\.0\.0\.0:9000 is already in use/)
  const devTaken = await run(['server', '--listen', '0.0.0.0:9100', '--dev', 'lwt0', ...base])
  t.equal(devTaken.code, 1)
  t.match(devTaken.out, /device name lwt0 is already in use/)
  // nobody gets a state dir of its own (it may not read root's), so the TUN is what fails.
  const nobodyState = mkdtempSync(join(tmpdir(), 'lwt-nobody-'))
  t.teardown(() => { rmSync(nobodyState, { recursive: true, force: true }) })
  chownSync(nobodyState, 65534, 65534)
  const notRoot = await run(['server', '--listen', '0.0.0.0:9101', '--dev', 'lwterr1', ...common, '--state-dir', nobodyState], ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'])
  t.equal(notRoot.code, 1)
  t.match(notRoot.out, /needs root or CAP_NET_ADMIN/)
  const noTun = await run(['server', '--listen', '0.0.0.0:9102', '--dev', 'lwterr2', ...base], ['unshare', '-m', 'sh', '-c', 'mount -t tmpfs tmpfs /dev/net && exec "$@"', 'sh'])
  t.equal(noTun.code, 1)
  t.match(noTun.out, /\/dev\/net\/tun is missing/)
  t.match(noTun.out, /modprobe tun/)
  const r = await runIn(ns, 'ip', ['-o', 'link', 'show'])
  t.notMatch(r.stdout, /lwterr/, 'no device left behind by a failed start')
})

t.test('a TUN device deleted under a running daemon: it says so and exits 1, leaving nothing behind (every placement)', async t => {
  for (const [i, placement] of (['fused', 'inline', 'split'] as const).entries()) {
    const dev = `lwtgone${i}`
    const control = `/run/lightweight-tunnel/test-${topo.id}-gone${i}.sock`
    const cmd = ['env', '-u', 'NODE_OPTIONS', BIN, 'server', '--listen', `0.0.0.0:${9200 + 2 * i}`, '--dev', dev, '--tun', `10.99.${i}.1/24`, '--key', KEY, '--control', control, '--placement', placement, '--state-dir', tempStateDir(dev)]
    const p = spawnIn(topo.serverNs, cmd[0], cmd.slice(1), { env: cleanEnv() })
    await p.waitForOutput(/server ready/, 10_000)
    await runIn(topo.serverNs, 'ip', ['link', 'del', dev])
    const info = await p.exited
    t.equal(info.code, 1, `${placement}: exit code 1`)
    t.match(p.output(), new RegExp(`the TUN device ${dev} was removed while the daemon was running`), `${placement}: says what happened`)
    t.match(p.output(), /hint: /)
    t.notOk(existsSync(control), `${placement}: control socket removed`)
  }
})

t.test('the server stays healthy after all of it', async t => {
  await waitFor(async () => (await status(server)).peers.length >= 1, { timeoutMs: 3000, what: 'server status' })
  t.equal(server.proc.exitInfo, null)
  t.equal((await ping(topo.client('alice').ns, '10.77.0.1', 3)).received, 3)
  // The control plane too (the dataplane and status work without it): a new client registers.
  const dave = startClient(topo.client('eve').ns, topo.id, 'dave', '10.77.0.44/24', topo.serverWanIp)
  t.teardown(() => stopDaemon(dave))
  const sd = await waitReady(dave, 1, 10_000)
  t.equal(sd.state, 'registered', 'a client registers after the flood')
  t.equal((await ping(topo.client('eve').ns, '10.77.0.1', 2)).received, 2)
})
