/**
 * Fake TCP end to end (issue 12 items 2, 5, 6): a client behind a NAT (masquerade) whose router
 * also drops all UDP and any TCP that is not in an established conntrack state (a new TCP flow
 * only as a SYN to the server's port 9000). The server runs --faketcp, the client
 * --transport faketcp. Asserted: the tunnel comes up through that firewall (ping, a byte-exact
 * transfer); the nftables tables against the kernel's RSTs exist while the daemons run and are
 * gone after SIGTERM; after kill -9 a restarted client replaces its stale table and comes up
 * again; a forged RST to the server is counted and the flow carries on. The superpacket path
 * (native/faketcp-packet.c): data leaves as TSO superpackets that cross the NAT whole and arrive
 * whole, the kernel's TCP never sees a data segment (the prerouting-raw rule drops them after the
 * tap: next to no RSTs); with segmentation and checksum offloads off on the client's link (the
 * kernel segments and checksums in software, the router's conntrack verifies each checksum) and GRO
 * on at the server's (which merges our segments again, as a real NIC would) data still flows byte
 * for byte and the server splits what GRO merged.
 */
import t from 'tap'
import { createTopology, type Topology } from '../../src/lab/topology.js'
import { nft } from '../../src/lab/nat.js'
import { runIn, waitFor } from '../../src/lab/exec.js'
import { cleanEnv, ping, startClient, startServer, status, tcpTransfer, waitPing, waitReady, type Daemon } from '../helpers/daemon.js'
import { encodeSegment, TCP_ACK, TCP_RST } from '../../src/wire/tcp-segment.js'
import { ipToInt } from '../../src/wire/addr.js'

let topo: Topology
let server: Daemon
let client: Daemon
const TUN_SERVER = '10.77.0.1'

async function tables (ns: string): Promise<string> {
  return (await runIn(ns, 'nft', ['list', 'tables'])).stdout
}

t.before(async () => {
  topo = await createTopology({ clients: [{ name: 'alice', nat: 'port-restricted' }] })
  const c = topo.client('alice')
  // The firewall: no UDP either way; TCP only established, or a SYN out to the server's port.
  await nft(c.routerNs!, [
    'table inet lwt_fw {',
    '  chain forward {',
    '    type filter hook forward priority filter - 10; policy accept;',
    '    meta l4proto udp counter drop',
    '    meta l4proto tcp ct state established,related accept',
    `    iifname ${c.routerLan!} tcp dport 9000 tcp flags & (syn | ack | fin | rst) == syn ct state new accept`,
    '    meta l4proto tcp counter drop',
    '  }',
    '}',
    ''
  ].join('\n'))
  server = startServer(topo.serverNs, topo.id, { extra: ['--faketcp', '--tcp-listen', '0.0.0.0:9443'] })
  client = startClient(c.ns, topo.id, 'alice', '10.77.0.2/24', topo.serverWanIp, { extra: ['--transport', 'faketcp'] })
})
t.teardown(async () => { await topo?.destroy() })

t.test('through a UDP-blocking, established-only firewall and a NAT: ping and a byte-exact transfer', async t => {
  const s = await waitReady(client, 0, 30_000)
  t.equal(s.faketcp !== undefined && (s.faketcp as { state: string }).state, 'established')
  t.equal(s.peers.find((p) => p.role === 'server')?.transport, 'faketcp', 'status names the server path\'s transport')
  await waitPing(topo.client('alice').ns, TUN_SERVER, 10_000)
  const r = await tcpTransfer(topo.client('alice').ns, topo.serverNs, TUN_SERVER, 2_000_000)
  t.same(r.received, r.sent, '2 MB arrive byte for byte')
  const fw = (await runIn(topo.client('alice').routerNs!, 'nft', ['list', 'table', 'inet', 'lwt_fw'])).stdout
  t.match(fw, /meta l4proto tcp ct state established,related accept/, 'the firewall is in place')
  const ss = await status(server)
  t.ok(ss.peers.some((p) => /faketcp:100\.64\./.test(String(p.endpoint))), `the server sees the client over fake TCP (${ss.peers.map((p) => p.endpoint).join(', ')})`)
  t.equal(ss.peers.find((p) => /faketcp:/.test(String(p.endpoint)))?.transport, 'faketcp', 'and says so per path')
  t.match(await tables(topo.serverNs), /lwt_faketcp_9000/, 'the server\'s RST table exists')
  t.match(await tables(topo.client('alice').ns), /lwt_faketcp_c9000/, 'the client\'s RST table exists')
})

t.test('data leaves and arrives as superpackets; the kernel\'s TCP never sees it', async t => {
  const cs = await status(client)
  const ss = await status(server)
  const fc = cs.faketcp as { offload?: string, offloadFlows?: number }
  t.equal(fc.offload, 'packet', 'the client\'s packet socket is open')
  t.equal(fc.offloadFlows, 1, 'and its flow sends through it (the next hop was learned)')
  t.equal((ss.faketcp as { offloadFlows?: number }).offloadFlows, 1, 'so does the server\'s flow to it (learned through the NAT)')
  t.ok((ss.counters.faketcpTxPacketSegments ?? 0) > 0, `the server sent through its packet socket too (${ss.counters.faketcpTxPacketSegments} segments)`)
  t.ok((cs.counters.faketcpTxSuperpackets ?? 0) > 0, `the client sent superpackets (${cs.counters.faketcpTxSuperpackets} for ${cs.counters.faketcpTxPacketSegments} segments)`)
  t.ok((ss.counters.faketcpRxSuperpackets ?? 0) > 0, `they crossed the NAT whole: the server received ${ss.counters.faketcpRxSuperpackets} holding ${ss.counters.faketcpRxSuperSegments} segments`)
  const pre = (await runIn(topo.serverNs, 'nft', ['list', 'chain', 'inet', 'lwt_faketcp_9000', 'pre'])).stdout
  const dropped = Number(/packets (\d+)/.exec(pre)?.[1] ?? -1)
  t.ok(dropped > 0, `the server's prerouting-raw rule took the data segments (${dropped} packets)`)
  const out = (await runIn(topo.serverNs, 'nft', ['list', 'chain', 'inet', 'lwt_faketcp_9000', 'out'])).stdout
  const rsts = Number(/packets (\d+)/.exec(out)?.[1] ?? -1)
  t.ok(rsts >= 0 && rsts < dropped / 10, `so the kernel built next to no RSTs (${rsts}; one per segment before)`)
})

t.test('offloads off on the client\'s link, GRO on at the server\'s: byte-exact through the firewall, GRO batches split', async t => {
  const c = topo.client('alice')
  // veth runs GRO only for what a device without TSO sends it: the bridge port towards the server loses TSO too.
  await runIn(c.ns, 'ethtool', ['-K', c.dev, 'tx', 'off', 'tso', 'off', 'gso', 'off'])
  await runIn(topo.internetNs, 'ethtool', ['-K', topo.serverPort, 'tso', 'off'])
  await runIn(topo.serverNs, 'ethtool', ['-K', topo.serverLink, 'gro', 'on'])
  t.teardown(async () => {
    await runIn(c.ns, 'ethtool', ['-K', c.dev, 'tx', 'on', 'tso', 'on', 'gso', 'on']).catch(() => {})
    await runIn(topo.internetNs, 'ethtool', ['-K', topo.serverPort, 'tso', 'on']).catch(() => {})
    await runIn(topo.serverNs, 'ethtool', ['-K', topo.serverLink, 'gro', 'off']).catch(() => {})
  })
  t.match((await runIn(c.ns, 'ethtool', ['-k', c.dev])).stdout, /tcp-segmentation-offload: off/, 'TSO is off on the client\'s link')
  const before = await status(server)
  const sent0 = (await status(client)).counters.faketcpTxSuperpackets ?? 0
  const r = await tcpTransfer(c.ns, topo.serverNs, TUN_SERVER, 2_000_000)
  t.same(r.received, r.sent, '2 MB arrive byte for byte (the software checksums pass the router\'s conntrack)')
  t.ok(((await status(client)).counters.faketcpTxSuperpackets ?? 0) > sent0, 'the client still hands the kernel superpackets')
  const after = await status(server)
  t.ok((after.counters.faketcpRxSuperpackets ?? 0) > (before.counters.faketcpRxSuperpackets ?? 0), 'GRO merged segments (their checksums valid) and the server split them')
  t.equal(after.counters.dropMalformed ?? 0, before.counters.dropMalformed ?? 0, 'nothing malformed')
})

t.test('a forged RST is counted and ignored: the flow carries on', async t => {
  const before = (await status(server)).counters.faketcpRstIgnored ?? 0
  const peer = (await status(server)).peers.find((p) => /faketcp:/.test(String(p.endpoint)))!
  const [, ip, port] = /faketcp:([\d.]+):(\d+)/.exec(String(peer.endpoint))!
  // From the client's public address to the server's port: what an on-path injector would send.
  const seg = encodeSegment({ srcPort: Number(port), dstPort: 9000, seq: 12345, ack: 0, flags: TCP_RST | TCP_ACK, window: 0, options: {}, payload: new Uint8Array(0) })
  const script = `const n = require(${JSON.stringify(new URL('../../build/Release/lwt_native.node', import.meta.url).pathname)});
    const { fd } = n.ftcpOpen(true, 0, 1, 0); for (let i = 0; i < 3; i++) n.ftcpSendRaw(fd, ${ipToInt(ip!)}, ${ipToInt(topo.serverWanIp)}, Uint8Array.from(${JSON.stringify([...seg])}))`
  await runIn(topo.serverNs, 'env', ['-u', 'NODE_OPTIONS', process.execPath, '-e', script], { env: cleanEnv() })
  await waitFor(async () => ((await status(server)).counters.faketcpRstIgnored ?? 0) >= before + 3, { timeoutMs: 5000, what: 'the RSTs counted' })
  const p = await ping(topo.client('alice').ns, TUN_SERVER, 5, 0.2)
  t.equal(p.received, 5, 'pings still answered after the RSTs')
})

t.test('kill -9 leaves the client\'s table; a restart (--no-faketcp-offload) replaces it, comes up on the raw path; SIGTERM removes the tables', async t => {
  const c = topo.client('alice')
  await client.proc.stop('SIGKILL', 2000)
  t.match(await tables(c.ns), /lwt_faketcp_c9000/, 'the table outlives kill -9')
  client = startClient(c.ns, topo.id, 'alice', '10.77.0.2/24', topo.serverWanIp, { extra: ['--transport', 'faketcp', '--no-faketcp-offload'], stateDir: client.stateDir })
  await waitReady(client, 0, 30_000)
  t.match(client.proc.output(), /removed stale fake-TCP nftables rules/, 'the restart says it replaced the stale table')
  await waitPing(c.ns, TUN_SERVER, 15_000)
  // --no-faketcp-offload: no packet socket, every segment through the raw socket, and no prerouting chain
  // (it would drop the data segments the raw socket needs).
  const fc = (await status(client)).faketcp as { offload?: string, offloadOff?: string }
  t.equal(fc.offload, 'off', 'status: the superpacket path is off')
  t.match(fc.offloadOff, /--no-faketcp-offload/, 'and says why')
  t.notMatch((await runIn(c.ns, 'nft', ['list', 'table', 'inet', 'lwt_faketcp_c9000'])).stdout, /chain pre/, 'the client has no prerouting chain')
  const r = await tcpTransfer(c.ns, topo.serverNs, TUN_SERVER, 1_000_000)
  t.same(r.received, r.sent, '1 MB arrives byte for byte on the raw path')
  t.equal((await status(client)).counters.faketcpTxSuperpackets ?? 0, 0, 'the client sent no superpacket')
  await client.proc.stop('SIGTERM', 5000)
  t.notMatch(await tables(c.ns), /lwt_faketcp/, 'the client\'s table is gone after SIGTERM')
  await server.proc.stop('SIGTERM', 5000)
  t.notMatch(await tables(topo.serverNs), /lwt_faketcp/, 'the server\'s table is gone after SIGTERM')
})
