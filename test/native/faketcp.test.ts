// The addon's fake-TCP link (native/faketcp.c) on loopback, for real (raw sockets: run as root, as
// the e2e tests): the BPF filters split handshake and data segments, the checksum the addon writes
// is right by wire/tcp-segment.ts, datagrams sent to a flow's handle leave as segments whose
// sequence numbers advance by their payloads, arrive as datagrams from the peer flow's handle, and
// segments of no flow are counted.
import t from 'tap'
import { randomInt } from 'node:crypto'
import { loadNative } from '../../src/dataplane/native.js'
import { decodeIpv4Tcp, encodeSegment, TCP_SYN } from '../../src/wire/tcp-segment.js'
import { isFakeTcpHandle } from '../../src/wire/faketcp-handle.js'
import { isConnHandle } from '../../src/wire/endpoint-handle.js'

const native = loadNative()
const LO = 0x7f000001
const SP = randomInt(20000, 30000) // the "server" port
const CP = SP + 1                  // the "client" port

t.test('handshake segments to the control socket, data segments to the data socket, by handle', async t => {
  const srv = native.ftcpOpen(false, 0, SP, 1 << 20)
  const cli = native.ftcpOpen(true, LO, SP, 1 << 20)
  const udp = native.udpOpen('127.0.0.1', 0, 0)
  t.teardown(() => { for (const fd of [srv.fd, srv.ctlFd, cli.fd, cli.ctlFd, udp.fd]) native.close(fd) })

  // A SYN built in TypeScript, checksummed and sent by the addon: the server's control socket reads it.
  const syn = encodeSegment({ srcPort: CP, dstPort: SP, seq: 4242, ack: 0, flags: TCP_SYN, window: 64240, options: { mss: 1460, wscale: 9 }, payload: new Uint8Array(0) })
  t.ok(native.ftcpSendRaw(cli.fd, LO, LO, syn) > 0)
  const buf = new Uint8Array(2048)
  const n = native.ftcpRecvCtl(srv.ctlFd, buf)
  t.ok(n > 0, 'the SYN reached the control socket')
  const p = decodeIpv4Tcp(buf.subarray(0, n))
  t.ok(p.checksumOk, 'the addon\'s TCP checksum is right')
  t.equal(p.seg.seq, 4242)
  t.equal((buf[6]! & 0x40), 0x40, 'DF set')

  const hs = native.ftcpFlowSet(0, srv.fd, LO, CP, LO, SP, 9000, 4243, 0, true)
  const hc = native.ftcpFlowSet(0, cli.fd, LO, SP, LO, CP, 4243, 9000, 0, true)
  t.ok(isFakeTcpHandle(hs) && isFakeTcpHandle(hc) && isConnHandle(hs), 'handles in the connection table\'s fake-TCP half')
  t.not(hs, hc)

  // Three datagrams to the client's flow through the ordinary UDP batch send, one to a UDP address.
  const mem = new Uint8Array(4 * 4096)
  const sizes = [100, 1401, 7]
  const offsets = Int32Array.from([0, 4096, 8192, 12288])
  const lens = Int32Array.from([...sizes, 5])
  const addrs = Uint32Array.from([hc, SP, hc, SP, hc, SP, LO, 9])
  for (let i = 0; i < 3; i++) mem.fill(i + 1, offsets[i]!, offsets[i]! + sizes[i]!)
  t.equal(native.udpSendBatchGso(udp.fd, mem, offsets, lens, addrs, 4), 4, 'three as segments, one as a datagram')
  t.equal(native.udpSendTo(udp.fd, Uint8Array.from([9, 9]), hc, SP), 2, 'udpSendTo to a handle too')

  const rx = new Uint8Array(8 * 4096)
  const bufOffsets = Int32Array.from({ length: 8 }, (_, i) => i * 4096)
  const ro = new Int32Array(16)
  const rl = new Int32Array(16)
  const ra = new Uint32Array(32)
  const info = new Int32Array(4)
  const got = native.ftcpRecv(srv.fd, rx, bufOffsets, 8, 4096, ro, rl, ra, 16, info)
  t.equal(got, 4, 'four data segments, handshake-free')
  t.same([...rl.subarray(0, 4)], [...sizes, 2])
  for (let i = 0; i < 3; i++) t.ok(rx.subarray(ro[i]!, ro[i]! + rl[i]!).every((b) => b === i + 1), `payload ${i} byte for byte`)
  t.same([ra[0], ra[1]], [hs >>> 0, CP], 'from the server flow\'s handle and the client\'s port')

  const info8 = new Float64Array(8)
  t.ok(native.ftcpFlowInfo(hc, info8))
  const total = 100 + 1401 + 7 + 2
  t.equal(info8[1], 4243 + total, 'the client\'s seq advanced by the payloads')
  t.equal(info8[5], 4)
  t.ok(native.ftcpFlowInfo(hs, info8))
  t.equal(info8[2], 4243 + total, 'the server\'s ack is the highest byte received')
  t.equal(info8[3], 4)
  t.ok(info8[7]! >= 0 && info8[7]! < 1000, 'received just now')

  // A flow forgotten: its handle sends nothing; its segments are of no flow.
  native.ftcpFlowDrop(hs)
  t.equal(native.udpSendTo(udp.fd, Uint8Array.from([1]), hs, CP), -107 /* ENOTCONN */)
  t.equal(native.udpSendTo(udp.fd, Uint8Array.from([1]), hc, SP), 1)
  t.equal(native.ftcpRecv(srv.fd, rx, bufOffsets, 8, 4096, ro, rl, ra, 16, info), 0)
  t.equal(info[3], 1, 'counted as of no flow')
  native.ftcpFlowDrop(hc)
})
