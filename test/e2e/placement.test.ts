/**
 * Every thread placement carries traffic, and the offload paths work end to
 * end on real devices: a server with `--placement split` (a worker per
 * direction), alice `--placement fused` (one worker), bob on the client
 * default `inline` (the main thread). A burst of equal-size UDP datagrams
 * alice → bob through the relay leaves alice as GSO batches, reaches the
 * server and bob as coalesced datagrams (UDP GRO, counted), and is written
 * to bob's TUN device as USO superpackets: every datagram must arrive, once,
 * intact. A TCP transfer each way checks TSO split and TCP coalescing.
 */
import t from 'tap'
import { fileURLToPath } from 'node:url'
import { createTopology, type Topology } from '../../src/lab/topology.js'
import { runIn, spawnIn } from '../../src/lab/exec.js'
import { linkStats } from '../../src/lab/netns.js'
import { cleanEnv, ping, startClient, startServer, status, tcpTransfer, waitPing, waitReady, type Daemon } from '../helpers/daemon.js'

let topo: Topology
let server: Daemon
let alice: Daemon
let bob: Daemon

t.before(async () => {
  topo = await createTopology({ clients: [{ name: 'alice', nat: 'none' }, { name: 'bob', nat: 'none' }] })
  server = startServer(topo.serverNs, topo.id, { extra: ['--placement', 'split'] })
  alice = startClient(topo.client('alice').ns, topo.id, 'alice', '10.77.0.2/24', topo.serverWanIp, { extra: ['--no-p2p', '--placement', 'fused'] })
  bob = startClient(topo.client('bob').ns, topo.id, 'bob', '10.77.0.3/24', topo.serverWanIp, { extra: ['--no-p2p'] })
})
t.teardown(async () => { await topo?.destroy() })

/** Receives UDP on ip:port until `n` datagrams or a quiet second; prints {count, distinct, bad}. */
const UDP_RECEIVER = `
const dgram = require('dgram'); const [ip, port, n, size] = process.argv.slice(1).map((x, i) => i ? Number(x) : x)
const s = dgram.createSocket({ type: 'udp4', recvBufferSize: 8 << 20 }); const seen = new Set(); let count = 0, bad = 0, timer = null
const done = () => { console.log(JSON.stringify({ count, distinct: seen.size, bad })); process.exit(0) }
s.on('message', (m) => {
  count++; const i = m.readUInt32BE(0); seen.add(i)
  if (m.length !== size || m.some((v, k) => k >= 4 && v !== ((i + k) & 255))) bad++
  clearTimeout(timer); if (seen.size === n) done(); timer = setTimeout(done, 1000)
})
s.bind(port, ip, () => { console.log('listening'); timer = setTimeout(done, 10000) })`
/** Sends n datagrams of `size` bytes (index, then a pattern) in bursts of 64 with a pause between bursts. */
const UDP_SENDER = `
const dgram = require('dgram'); const [ip, port, n, size] = process.argv.slice(1).map((x, i) => i ? Number(x) : x)
const s = dgram.createSocket('udp4'); let i = 0
const burst = () => {
  for (let k = 0; k < 64 && i < n; k++, i++) { const b = Buffer.alloc(size); b.writeUInt32BE(i, 0); for (let j = 4; j < size; j++) b[j] = (i + j) & 255; s.send(b, port, ip) }
  if (i < n) setTimeout(burst, 5); else setTimeout(() => s.close(), 200)
}
burst()`

t.test('split server, fused and inline clients: registration and ping every way', async t => {
  const sa = await waitReady(alice, 1)
  const sb = await waitReady(bob, 1)
  const ss = await waitReady(server, 2)
  t.same([ss.dataplane?.placement, sa.dataplane?.placement, sb.dataplane?.placement], ['split', 'fused', 'inline'], 'status names each placement')
  t.equal(sb.dataplane?.tunOffload, 'tso+uso', 'the kernel took TSO and USO on the TUN device')
  t.equal(sb.dataplane?.udpGro, true, 'and UDP GRO on the socket')
  t.same([ss.dataplane?.fastPath, sa.dataplane?.fastPath, sb.dataplane?.fastPath], [true, true, true], 'the lone-packet fast path is on by default')
  t.match(bob.proc.output(), /client started;.* dataplane="inline, TUN offloads tso\+uso, UDP GRO on, fast path on"/, 'the start-up line says so too')
  t.match(server.proc.output(), /server ready .*dataplane="split, TUN offloads tso\+uso, UDP GRO on, fast path on"/)
  const aliceNs = topo.client('alice').ns
  t.equal((await ping(aliceNs, '10.77.0.1', 3)).received, 3, 'fused client → split server')
  t.equal((await ping(topo.serverNs, '10.77.0.3', 3)).received, 3, 'split server → inline client')
  // Lone pings on direct paths: both ends carried them in the addon's fast path, whatever the placement.
  const fast = await Promise.all([server, alice, bob].map(async d => (await status(d)).counters.fastPathPackets))
  t.ok(fast.every(n => n >= 3), `each daemon's fast path carried the pings (server, alice, bob: ${fast.join(', ')})`)
  await waitPing(aliceNs, '10.77.0.3')
  t.equal((await ping(aliceNs, '10.77.0.3', 3)).received, 3, 'fused client → inline client through the split server')
})

t.test('a burst of equal-size UDP datagrams through the relay arrives whole (GSO out, GRO in, USO onto the TUN)', async t => {
  const N = 3000
  const SIZE = 200
  const before = { server: (await status(server)).counters, bob: (await status(bob)).counters }
  const tunBefore = await linkStats(topo.client('bob').ns, 'lwt0')
  const rx = spawnIn(topo.client('bob').ns, 'env', ['-u', 'NODE_OPTIONS', process.execPath, '-e', UDP_RECEIVER, '10.77.0.3', '5301', String(N), String(SIZE)], { env: cleanEnv() })
  try {
    await rx.waitForOutput(/listening/, 5000)
    await runIn(topo.client('alice').ns, 'env', ['-u', 'NODE_OPTIONS', process.execPath, '-e', UDP_SENDER, '10.77.0.3', '5301', String(N), String(SIZE)], { timeoutMs: 30_000, env: cleanEnv() })
    await rx.waitForOutput(/"count"/, 15_000)
    const r = JSON.parse(rx.output().split('\n').find(l => l.includes('"count"'))!) as { count: number, distinct: number, bad: number }
    t.equal(r.distinct, N, 'every datagram arrived')
    t.equal(r.count, N, 'none twice')
    t.equal(r.bad, 0, 'none altered')
  } finally {
    await rx.stop('SIGKILL', 1000).catch(() => {})
  }
  const after = { server: (await status(server)).counters, bob: (await status(bob)).counters }
  t.ok(after.server.udpRxCoalesced - before.server.udpRxCoalesced > 0, `the server received coalesced datagrams (${after.server.udpRxCoalesced - before.server.udpRxCoalesced})`)
  t.ok(after.bob.udpRxCoalesced - before.bob.udpRxCoalesced > 0, `bob received coalesced datagrams (${after.bob.udpRxCoalesced - before.bob.udpRxCoalesced})`)
  t.equal(after.bob.dropRxOverflow, 0, 'no receive overflow')
  // The TUN device counts each write as one received packet: fewer writes than datagrams = USO superpackets.
  const writes = (await linkStats(topo.client('bob').ns, 'lwt0')).rxPackets - tunBefore.rxPackets
  t.ok(writes < N / 2, `${N} datagrams reached bob's TUN device in ${writes} writes`)
})

t.test('an application sending with UDP_SEGMENT: alice reads one USO superpacket, bob gets every datagram', async t => {
  const N = 40
  const SIZE = 300
  const addon = fileURLToPath(new URL('../../build/Release/lwt_native.node', import.meta.url))
  // The addon's udpSendBatchGso sends the N datagrams as ONE UDP_SEGMENT send; routed into alice's TUN device.
  const GSO_SENDER = `
const n = require(${JSON.stringify(addon)}); const [ip, port, N, size] = process.argv.slice(1).map((x, i) => i ? Number(x) : x)
const s = n.udpOpen('0.0.0.0', 0, 0); const mem = new Uint8Array(N * 2048); const off = new Int32Array(N), lens = new Int32Array(N), addrs = new Uint32Array(2 * N)
const dst = ip.split('.').reduce((a, b) => a * 256 + Number(b), 0)
for (let i = 0; i < N; i++) { off[i] = i * 2048; lens[i] = size; const b = mem.subarray(off[i], off[i] + size); b[0] = i >> 24; b[1] = i >> 16; b[2] = i >> 8; b[3] = i; for (let j = 4; j < size; j++) b[j] = (i + j) & 255; addrs[2 * i] = dst; addrs[2 * i + 1] = port }
console.log('sent', n.udpSendBatchGso(s.fd, mem, off, lens, addrs, N))`
  const before = (await status(alice)).counters.tunRxSuperpackets
  const rx = spawnIn(topo.client('bob').ns, 'env', ['-u', 'NODE_OPTIONS', process.execPath, '-e', UDP_RECEIVER, '10.77.0.3', '5304', String(N), String(SIZE)], { env: cleanEnv() })
  try {
    await rx.waitForOutput(/listening/, 5000)
    const tx = await runIn(topo.client('alice').ns, 'env', ['-u', 'NODE_OPTIONS', process.execPath, '-e', GSO_SENDER, '10.77.0.3', '5304', String(N), String(SIZE)], { timeoutMs: 20_000, env: cleanEnv() })
    t.match(tx.stdout, new RegExp(`sent ${N}`))
    await rx.waitForOutput(/"count"/, 15_000)
    const r = JSON.parse(rx.output().split('\n').find(l => l.includes('"count"'))!) as { count: number, distinct: number, bad: number }
    t.same(r, { count: N, distinct: N, bad: 0 }, 'every datagram once, intact')
  } finally {
    await rx.stop('SIGKILL', 1000).catch(() => {})
  }
  t.ok((await status(alice)).counters.tunRxSuperpackets > before, 'alice read a superpacket from her TUN device (USO offload on)')
})

t.test('TCP both ways between the fused and the inline client arrives intact', async t => {
  const size = 3 * 1024 * 1024
  const ab = await tcpTransfer(topo.client('alice').ns, topo.client('bob').ns, '10.77.0.3', size, 5302)
  t.equal(ab.received.sha256, ab.sent.sha256, 'alice → bob')
  const ba = await tcpTransfer(topo.client('bob').ns, topo.client('alice').ns, '10.77.0.2', size, 5303)
  t.equal(ba.received.sha256, ba.sent.sha256, 'bob → alice')
})
