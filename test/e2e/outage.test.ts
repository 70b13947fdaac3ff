/**
 * A server outage, in network namespaces (issue 10 item 5): two clients
 * behind port-restricted NATs on a direct path; the server is killed; they
 * keep talking across several session lifetimes (each rekey goes over the
 * direct path). Session lifetimes are shortened for this test only with
 * LWT_TEST_TIME_SCALE=20 (REKEY_AFTER 6 s, REJECT_AFTER 9 s; see
 * src/control/constants.ts: the 3 s between them still hold two handshake
 * retries of 1 s), so 4 lifetimes take 40 s.
 * Then, the server still dead, alice restarts: she reaches bob from her
 * address cache (<state-dir>/peers.json) alone.
 * bench/outage.ts runs the first part with real timers for 10 minutes.
 */
import t from 'tap'
import { createTopology, type Topology } from '../../src/lab/topology.js'
import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { spawnIn, waitFor } from '../../src/lab/exec.js'
import type { PeerStatus } from '../../src/control/status.js'
import { BIN, KEY, cleanEnv, controlPath, ping, status, tempStateDir, waitPing, waitReady, type Daemon } from '../helpers/daemon.js'

const SCALE = 20
const REJECT_AFTER_SEC = 180 / SCALE
const A_IP = '10.77.0.2'
const B_IP = '10.77.0.3'
let topo: Topology
let server: Daemon
let alice: Daemon
let bob: Daemon

function start (ns: string, name: string, args: string[], stateDir = tempStateDir(`${topo.id}-${name}`)): Daemon {
  const control = controlPath(topo.id, name)
  const proc = spawnIn(ns, 'env', ['-u', 'NODE_OPTIONS', BIN, ...args, '--key', KEY, '--dev', 'lwt0', '--control', control, '--state-dir', stateDir],
    { env: { ...cleanEnv(), LWT_TEST_TIME_SCALE: String(SCALE) } })
  return { proc, ns, control, dev: 'lwt0', stateDir }
}

/** Clients listen on a fixed port: a restarted one comes back on the same NAT mapping, the one its peer's NAT lets in. */
function startClient (name: string, tun: string, port: number, stateDir?: string): Daemon {
  return start(topo.client(name).ns, name, ['client', '--remote', `${topo.serverWanIp}:9000`, '--tun', `${tun}/24`, '--listen', `0.0.0.0:${port}`], stateDir)
}

t.before(async () => {
  topo = await createTopology({ clients: [{ name: 'alice', nat: 'port-restricted' }, { name: 'bob', nat: 'port-restricted' }] })
  server = start(topo.serverNs, 'server', ['server', '--listen', '0.0.0.0:9000', '--tun', '10.77.0.1/24'])
  alice = startClient('alice', A_IP, 41000)
  bob = startClient('bob', B_IP, 41001)
})
t.teardown(async () => {
  for (const d of [alice, bob, server]) await d?.proc.stop('SIGKILL', 1000).catch(() => {})
  await topo?.destroy()
})

async function views (): Promise<[PeerStatus, PeerStatus]> {
  const [sa, sb] = await Promise.all([status(alice), status(bob)])
  return [sa.peers.find(p => p.tunnelIp === B_IP)!, sb.peers.find(p => p.tunnelIp === A_IP)!]
}

t.test('two clients on a direct path keep talking across several session lifetimes without the server', async t => {
  await waitReady(alice, 1)
  await waitReady(bob, 1)
  await waitFor(async () => { const [a, b] = await views(); return a.path === 'direct' && b.path === 'direct' }, { timeoutMs: 15_000, intervalMs: 200, what: 'a direct path both ways' })
  await waitPing(topo.client('alice').ns, B_IP)
  await server.proc.stop('SIGKILL', 2000)
  const lifetimes = 4
  const killedAt = Date.now()
  let sent = 0
  let received = 0
  // In runs of 50 pings (10 s; the lab's commands time out at 30 s), back to back.
  while (Date.now() - killedAt < lifetimes * REJECT_AFTER_SEC * 1000) {
    const r = await ping(topo.client('alice').ns, B_IP, 50, 0.2)
    sent += r.sent
    received += r.received
  }
  t.ok(received >= sent - 1, `${received} of ${sent} pings answered over ${lifetimes} session lifetimes (${REJECT_AFTER_SEC} s each) with the server dead`)
  const [a, b] = await views()
  t.equal(a.path, 'direct', 'alice → bob still direct')
  t.equal(b.path, 'direct', 'bob → alice still direct')
  t.equal(a.session, 'established')
  const sa = await status(alice)
  t.not(sa.state, 'registered', `alice knows the server is gone (state ${sa.state})`)
  const back = await ping(topo.client('bob').ns, A_IP, 20, 0.1)
  t.ok(back.received >= 19, `bob → alice: ${back.received} of 20`)
})

t.test('a client restarted during the outage reaches its cached peer at its last confirmed endpoint', async t => {
  await alice.proc.stop('SIGTERM', 5000)
  const file = join(alice.stateDir, 'peers.json')
  const cache = JSON.parse(readFileSync(file, 'utf8')) as { peers: Array<{ tunnelIp: string, key: string, endpoints: string[] }> }
  t.same(cache.peers.map(p => p.tunnelIp), [B_IP], 'alice\'s address cache holds bob')
  t.equal(cache.peers[0]!.key.length, 44, 'with his static key')
  t.equal(statSync(file).mode & 0o777, 0o600, 'peers.json is 0600')
  alice = startClient('alice', A_IP, 41000, alice.stateDir)
  const t0 = Date.now()
  await waitFor(async () => {
    const [a, b] = await Promise.all([status(alice).catch(() => null), status(bob).catch(() => null)])
    const ab = a?.peers.find(p => p.tunnelIp === B_IP)
    const ba = b?.peers.find(p => p.tunnelIp === A_IP)
    return ab?.path === 'direct' && ba?.path === 'direct' && ab.session === 'established' && ba.session === 'established'
  }, { timeoutMs: 20_000, intervalMs: 200, what: 'the restarted alice and bob direct to each other (alice from her cache)' })
  t.pass(`both direct ${Date.now() - t0} ms after the restart, without the server`)
  try {
    // Data works as soon as both sides are direct (before: the first session after a restart carried no data until its rekey).
    await waitPing(topo.client('alice').ns, B_IP, 5_000)
  } catch (e) {
    for (const d of [alice, bob]) {
      const st = await status(d)
      t.comment(JSON.stringify({ peers: st.peers.map(p => ({ ip: p.tunnelIp, path: p.path, ep: p.endpoint, s: p.session, tx: p.txPackets, rx: p.rxPackets, note: p.note })), counters: Object.fromEntries(Object.entries(st.counters ?? {}).filter(([k, v]) => v !== 0 && /drop|Mismatch|p2p/.test(k))) }))
    }
    throw e
  }
  t.pass(`first ping answered ${Date.now() - t0} ms after the restart`)
  const r = await ping(topo.client('alice').ns, B_IP, 20, 0.1)
  t.ok(r.received >= 19, `alice → bob: ${r.received} of 20`)
  const back = await ping(topo.client('bob').ns, A_IP, 20, 0.1)
  t.ok(back.received >= 19, `bob → alice: ${back.received} of 20`)
  t.not((await status(alice)).state, 'registered', 'the server is still dead')
})
