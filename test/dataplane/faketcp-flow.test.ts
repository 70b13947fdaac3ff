// The fake-TCP handshake machines (dataplane/faketcp-flow.ts) on a manual clock and a seeded Random:
// a client and a server exchanging their segments in memory, SYN retries and backoff, re-SYN on
// silence with a new port, the server's SYN handling (repeat, new ISN, half-open cap, expiry), and
// RSTs and strays counted and ignored.
import t from 'tap'
import { seededRandom } from '../../src/random.js'
import { decodeIpv4Tcp, encodeSegment, tcpChecksum, TCP_ACK, TCP_RST, TCP_SYN, type TcpSegment } from '../../src/wire/tcp-segment.js'
import { FakeTcpClientFlow, FakeTcpServerFlows, HALF_OPEN_MAX, HALF_OPEN_MS, IDLE_MS, SILENCE_MS, SYN_TRIES, WSCALE, type FlowAction } from '../../src/dataplane/faketcp-flow.js'

const CLIENT_IP = 0x0a000002
const SERVER_IP = 0x64400001

/** What a raw socket would read: the segment in an IPv4 packet with a right checksum. */
function wire (srcIp: number, dstIp: number, seg: TcpSegment) {
  const s = encodeSegment(seg)
  const c = tcpChecksum(srcIp, dstIp, s)
  s[16] = c >> 8; s[17] = c & 0xff
  const p = new Uint8Array(20 + s.length)
  p.set([0x45, 0, 0, p.length, 0, 1, 0x40, 0, 64, 6, 0, 0, srcIp >>> 24, (srcIp >>> 16) & 0xff, (srcIp >>> 8) & 0xff, srcIp & 0xff, dstIp >>> 24, (dstIp >>> 16) & 0xff, (dstIp >>> 8) & 0xff, dstIp & 0xff])
  p.set(s, 20)
  return decodeIpv4Tcp(p)
}
const sends = (a: FlowAction[]) => a.filter((x): x is Extract<FlowAction, { kind: 'send' }> => x.kind === 'send')
const ups = (a: FlowAction[]) => a.filter((x): x is Extract<FlowAction, { kind: 'up' }> => x.kind === 'up')

t.test('client and server: SYN, SYN-ACK, ACK; both flows up with matching numbers', async t => {
  const c = new FakeTcpClientFlow(seededRandom(1))
  const s = new FakeTcpServerFlows(9000, seededRandom(2))
  const [syn] = sends(c.connect(SERVER_IP, 9000, CLIENT_IP, 0))
  t.equal(syn!.seg.flags, TCP_SYN)
  t.same(syn!.seg.options, { mss: 1460, sackOk: true, ts: { val: 0, ecr: 0 }, wscale: WSCALE }, 'plausible SYN options')
  t.ok(syn!.seg.srcPort >= 32768 && syn!.seg.srcPort <= 60999, 'an ephemeral port')
  const sa = s.onSegment(wire(CLIENT_IP, SERVER_IP, syn!.seg), 5)
  const [synAck] = sends(sa)
  const [sUp] = ups(sa)
  t.equal(synAck!.seg.flags, TCP_SYN | TCP_ACK)
  t.equal(synAck!.seg.ack, (syn!.seg.seq + 1) >>> 0)
  t.same(synAck!.seg.options.ts, { val: 5, ecr: 0 }, 'echoes the client\'s TSval')
  t.same(sUp!.key, { rip: CLIENT_IP, rport: syn!.seg.srcPort, lip: SERVER_IP, lport: 9000 })
  const ca = c.onSegment(wire(SERVER_IP, CLIENT_IP, synAck!.seg), 10)
  const [ack] = sends(ca)
  const [cUp] = ups(ca)
  t.equal(ack!.seg.flags, TCP_ACK)
  t.equal(c.state.state, 'established')
  t.equal(cUp!.seq, sUp!.ack, 'the client sends where the server expects')
  t.equal(sUp!.seq, cUp!.ack, 'and the other way round')
  t.equal(cUp!.tsRecent, 5)
  t.equal(c.counters.faketcpEstablished, 1)
})

t.test('client: SYN again after 1, 2, 4 s; after SYN_TRIES a new port and ISN', async t => {
  const c = new FakeTcpClientFlow(seededRandom(3))
  const [first] = sends(c.connect(SERVER_IP, 9000, CLIENT_IP, 0))
  t.same(c.tick(999, -1), [], 'nothing before 1 s')
  const at = [1000, 3000, 7000]
  for (const now of at) {
    const [again] = sends(c.tick(now, -1))
    t.same([again!.seg.srcPort, again!.seg.seq], [first!.seg.srcPort, first!.seg.seq], `the same SYN at ${now} ms`)
  }
  t.equal(SYN_TRIES, 4)
  const [fresh] = sends(c.tick(15_000, -1))
  t.not(fresh!.seg.seq, first!.seg.seq, 'a new ISN')
  t.equal(c.counters.faketcpSynSent, 5)
})

t.test('client: a SYN-ACK for another ISN, an RST, a bad checksum: counted, ignored', async t => {
  const c = new FakeTcpClientFlow(seededRandom(4))
  const [syn] = sends(c.connect(SERVER_IP, 9000, CLIENT_IP, 0))
  const base = { srcPort: 9000, dstPort: syn!.seg.srcPort, seq: 1, window: 100, options: {}, payload: new Uint8Array(0) }
  t.same(c.onSegment(wire(SERVER_IP, CLIENT_IP, { ...base, ack: syn!.seg.seq + 2, flags: TCP_SYN | TCP_ACK }), 1), [])
  t.same(c.onSegment(wire(SERVER_IP, CLIENT_IP, { ...base, ack: syn!.seg.seq + 1, flags: TCP_RST | TCP_ACK }), 1), [])
  const p = wire(SERVER_IP, CLIENT_IP, { ...base, ack: (syn!.seg.seq + 1) >>> 0, flags: TCP_SYN | TCP_ACK })
  t.same(c.onSegment({ ...p, checksumOk: false }, 1), [])
  t.equal(c.state.state, 'synSent')
  t.equal(c.counters.faketcpRstIgnored, 1)
  t.equal(c.counters.faketcpStrayIgnored, 2)
  t.equal(c.onSegment(p, 2).length, 2, 'the right SYN-ACK still completes it')
})

t.test('client: silence for SILENCE_MS starts a new flow from a new port; the old stays up until it is', async t => {
  const c = new FakeTcpClientFlow(seededRandom(5))
  const s = new FakeTcpServerFlows(9000, seededRandom(6))
  const [syn] = sends(c.connect(SERVER_IP, 9000, CLIENT_IP, 0))
  c.onSegment(wire(SERVER_IP, CLIENT_IP, sends(s.onSegment(wire(CLIENT_IP, SERVER_IP, syn!.seg), 0))[0]!.seg), 0)
  t.same(c.tick(SILENCE_MS - 1, 100), [], 'data arrives: nothing to do')
  t.same(c.tick(SILENCE_MS + 10, SILENCE_MS - 1), [], 'quiet, not yet silent')
  const [syn2] = sends(c.tick(SILENCE_MS + 20, SILENCE_MS))
  t.not(syn2!.seg.srcPort, syn!.seg.srcPort, 'a new port: a new conntrack entry on the way')
  t.equal(c.upKey?.lport, syn!.seg.srcPort, 'the old flow carries data meanwhile')
  t.equal(c.counters.faketcpReconnects, 1)
  const done = c.onSegment(wire(SERVER_IP, CLIENT_IP, sends(s.onSegment(wire(CLIENT_IP, SERVER_IP, syn2!.seg), 1))[0]!.seg), 1)
  t.equal(ups(done)[0]!.key.lport, syn2!.seg.srcPort)
  t.equal(c.upKey?.lport, syn2!.seg.srcPort)
})

t.test('server: the same SYN gets the same SYN-ACK; a new ISN a new one; non-SYNs and RSTs are counted', async t => {
  const s = new FakeTcpServerFlows(9000, seededRandom(7))
  const syn = wire(CLIENT_IP, SERVER_IP, { srcPort: 40000, dstPort: 9000, seq: 100, ack: 0, flags: TCP_SYN, window: 1, options: {}, payload: new Uint8Array(0) })
  const a = sends(s.onSegment(syn, 0))[0]!.seg
  const b = sends(s.onSegment(syn, 1))[0]!.seg
  t.equal(b.seq, a.seq, 'a repeated SYN (our SYN-ACK lost): the same ISN')
  t.same(a.options, { mss: 1460 }, 'options only as offered')
  const c = sends(s.onSegment({ ...syn, seg: { ...syn.seg, seq: 5000 } }, 2))[0]!.seg
  t.not(c.seq, a.seq, 'a new ISN from the client: a fresh flow')
  t.equal(s.size, 1)
  t.same(s.onSegment(wire(CLIENT_IP, SERVER_IP, { ...syn.seg, flags: TCP_RST }), 3), [])
  t.same(s.onSegment(wire(CLIENT_IP, SERVER_IP, { ...syn.seg, flags: TCP_ACK }), 3), [])
  t.same(s.onSegment(wire(CLIENT_IP, SERVER_IP, { ...syn.seg, dstPort: 22 }), 3), [])
  t.equal(s.counters.faketcpRstIgnored, 1)
  t.equal(s.counters.faketcpStrayIgnored, 2)
})

t.test('server: at most HALF_OPEN_MAX flows without data; idle and half-open flows expire', async t => {
  const s = new FakeTcpServerFlows(9000, seededRandom(8))
  for (let i = 0; i < HALF_OPEN_MAX + 5; i++) {
    s.onSegment(wire(CLIENT_IP + i, SERVER_IP, { srcPort: 1000, dstPort: 9000, seq: i, ack: 0, flags: TCP_SYN, window: 1, options: {}, payload: new Uint8Array(0) }), 0)
  }
  t.equal(s.size, HALF_OPEN_MAX)
  t.equal(s.counters.faketcpSynDropped, 5)
  // One flow carries data (rxAge ≥ 0), the others never did.
  const busy = CLIENT_IP
  t.same(s.tick(HALF_OPEN_MS - 1, () => -1), [], 'not yet')
  const dropped = s.tick(HALF_OPEN_MS, (k) => k.rip === busy ? 10 : -1)
  t.equal(dropped.length, HALF_OPEN_MAX - 1, 'every half-open flow expires')
  t.equal(s.size, 1)
  t.same(s.tick(IDLE_MS - 1, () => IDLE_MS - 1), [])
  t.equal(s.tick(IDLE_MS + 1, () => IDLE_MS).length, 1, 'the idle one too')
})

t.test('client: a longer silence threshold (3 keepalives) is honoured', async t => {
  const c = new FakeTcpClientFlow(seededRandom(9), 90_000)
  const s = new FakeTcpServerFlows(9000, seededRandom(10))
  const [syn] = sends(c.connect(SERVER_IP, 9000, CLIENT_IP, 0))
  c.onSegment(wire(SERVER_IP, CLIENT_IP, sends(s.onSegment(wire(CLIENT_IP, SERVER_IP, syn!.seg), 0))[0]!.seg), 0)
  t.same(c.tick(60_000, 60_000), [], 'a minute without a Pong (keepalive 30 s): not yet')
  t.equal(sends(c.tick(90_000, 90_000)).length, 1, 'three keepalives: a new SYN')
})
