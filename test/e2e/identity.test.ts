/**
 * Addresses belong to node keys, end to end in namespaces with real daemons
 * (each with its own temporary state directory, so its own node key):
 *   1. an impostor with another key claiming a live client's address is
 *      refused, with a clear error on both sides; the victim keeps answering;
 *   2. the same after the victim stops: still refused (the binding is the key's);
 *   3. `nodes remove ADDR` → the impostor's key gets the address;
 *   4. revocation cuts the node off from its peers (pings through the tunnel
 *      stop and stay stopped; the time it took is printed, not asserted tight);
 *   5. the registry survives a server restart (same state dir).
 */
import t from 'tap'
import { rmSync } from 'node:fs'
import { createTopology, type Topology } from '../../src/lab/topology.js'
import { runIn, waitFor } from '../../src/lab/exec.js'
import { BIN, cleanEnv, ping, startClient, startServer, status, waitReady, type Daemon } from '../helpers/daemon.js'
import type { NodesReport } from '../../src/control/nodes.js'

let topo: Topology
let server: Daemon
const daemons: Daemon[] = []

async function stop (d: Daemon): Promise<void> {
  await d.proc.stop('SIGTERM', 3000).catch(() => {})
  rmSync(d.control, { force: true })
}

async function nodes (args: string[]): Promise<string> {
  const r = await runIn(topo.serverNs, 'env', ['-u', 'NODE_OPTIONS', BIN, 'nodes', ...args, '--control', server.control], { env: cleanEnv() })
  return r.stdout
}
const nodesJson = async (): Promise<NodesReport> => JSON.parse(await nodes(['--json'])) as NodesReport

function client (name: string, tun: string, stateDir?: string): Daemon {
  const d = startClient(topo.client(name).ns, topo.id, name, tun, topo.serverWanIp, stateDir === undefined ? {} : { stateDir })
  daemons.push(d)
  return d
}

t.before(async () => {
  topo = await createTopology({ clients: [{ name: 'alice', nat: 'none' }, { name: 'bob', nat: 'none' }, { name: 'mallory', nat: 'none' }] })
  server = startServer(topo.serverNs, topo.id)
})
t.teardown(async () => {
  for (const d of daemons) await stop(d)
  await stop(server)
  await topo?.destroy()
})

let alice: Daemon
let bob: Daemon
let mallory: Daemon
const BOB_NS = (): string => topo.client('bob').ns

t.test('an impostor with another key claiming a live client\'s address is refused; the victim keeps answering', async t => {
  alice = client('alice', '10.77.0.2/24')
  bob = client('bob', '10.77.0.3/24')
  await waitReady(alice, 1, 20_000)
  await waitReady(bob, 1, 20_000)
  mallory = client('mallory', '10.77.0.2/24')
  await mallory.proc.waitForOutput(/the server refused 10\.77\.0\.2: it belongs to another node key/, 15_000)
  await server.proc.waitForOutput(/10\.77\.0\.2 belongs to another node key \(SHA256:\S+, registered now from [^)]+\); this one presented SHA256:\S+/, 5000)
  const st = await status(mallory)
  t.equal(st.state, 'rejected')
  t.match(st.problem ?? '', /nodes remove 10\.77\.0\.2/)
  const p = await ping(BOB_NS(), '10.77.0.2', 10, 0.2)
  t.equal(p.received, 10, 'every ping from bob to 10.77.0.2 answered (by alice)')
  t.equal((await status(alice)).state, 'registered', 'the victim stays registered')
})

t.test('after the victim stops, its address is still refused to another key', async t => {
  await stop(alice)
  await new Promise(resolve => setTimeout(resolve, 6000))
  t.equal((await status(mallory)).state, 'rejected', 'still refused, the holder offline')
  t.notOk((await status(server)).peers.some(x => x.tunnelIp === '10.77.0.2'), 'nobody holds 10.77.0.2 live')
  t.match(await nodesJson(), { nodes: [{ address: '10.77.0.2', live: false }, { address: '10.77.0.3', live: true }] })
  t.match(await nodes([]), /10\.77\.0\.2\s+SHA256:\S+\s+no\s+-/, 'the table shows it bound, not live')
})

t.test('nodes remove ADDR frees the address: the new key gets it', async t => {
  t.match(await nodes(['remove', '10.77.0.2']), /removed 10\.77\.0\.2 \(SHA256:\S+\): the address is free/)
  await waitReady(mallory, 1, 40_000)
  await waitFor(async () => (await ping(BOB_NS(), '10.77.0.2', 1)).received === 1, { timeoutMs: 10_000, what: 'bob reaching 10.77.0.2 (mallory now)' })
  const list = await nodesJson()
  t.equal(list.nodes.find(n => n.address === '10.77.0.2')?.live, true)
  t.equal(list.revoked.length, 1, 'alice\'s key is revoked')
})

t.test('revocation cuts the node off from its peers, and it stays cut off', async t => {
  const fp = (await nodesJson()).nodes.find(n => n.address === '10.77.0.2')!.fingerprint
  t.equal((await ping(BOB_NS(), '10.77.0.2', 3)).received, 3, 'bob reaches mallory before')
  // Pings every 100 ms from bob while the operator revokes mallory: the first one lost marks the cut.
  const pinger = runIn(BOB_NS(), 'ping', ['-n', '-D', '-i', '0.1', '-c', '60', '-W', '1', '10.77.0.2']).catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? '' }))
  await new Promise(resolve => setTimeout(resolve, 1000))
  const revokedAt = Date.now() / 1000
  await nodes(['remove', fp])
  const out = (await pinger).stdout
  const replies = [...out.matchAll(/^\[(\d+\.\d+)\] .*icmp_seq=(\d+)/gm)].map(m => Number(m[1]))
  const lastReply = replies.length === 0 ? 0 : Math.max(...replies)
  t.comment(`last reply from the revoked node ${((lastReply - revokedAt) * 1000).toFixed(0)} ms after nodes remove returned (${replies.length} of 60 answered)`)
  t.ok(replies.length > 0, 'pings were answered before the revocation')
  t.ok(lastReply < revokedAt + 3, 'no reply later than 3 s after the revocation')
  t.equal((await ping(BOB_NS(), '10.77.0.2', 10, 0.5)).received, 0, 'and it stays cut off (5 s more)')
  await mallory.proc.waitForOutput(/revoked this node's key/, 20_000)
  t.equal((await status(mallory)).state, 'rejected')
})

t.test('the registry survives a server restart', async t => {
  const before = await nodesJson()
  await stop(server)
  server = startServer(topo.serverNs, topo.id, { stateDir: server.stateDir })
  await waitReady(bob, 0, 40_000)
  const after = await nodesJson()
  t.same(after.nodes.map(n => [n.address, n.fingerprint]), before.nodes.map(n => [n.address, n.fingerprint]), 'the same bindings')
  t.same(after.revoked.map(r => r.fingerprint), before.revoked.map(r => r.fingerprint), 'the same revocations')
  // alice's key (revoked before the restart) comes back: still refused.
  const alice2 = client('alice', '10.77.0.9/24', alice.stateDir)
  await alice2.proc.waitForOutput(/revoked this node's key/, 20_000)
})
