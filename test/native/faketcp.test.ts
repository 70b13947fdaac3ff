// The addon's fake-TCP link (native/faketcp.c) on loopback, for real (raw sockets: run as root, as
// the e2e tests): the BPF filters split handshake and data segments, the checksum the addon writes
// is right by wire/tcp-segment.ts, datagrams sent to a flow's handle leave as segments whose
// sequence numbers advance by their payloads, arrive as datagrams from the peer flow's handle, and
// segments of no flow are counted. A link's packet socket (native/faketcp-packet.c), paired with its
// raw data socket, receives the data segments instead, into the caller's slots regrouped as 64 KiB buffers.
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

t.test('a link\'s packet socket takes the data segments (loopback: no next hop is learned, so sends stay raw)', async t => {
  const SP2 = SP + 2
  const CP2 = SP + 3
  const srv = native.ftcpOpen(false, 0, SP2, 1 << 20)
  const cli = native.ftcpOpen(true, LO, SP2, 1 << 20)
  const pkt = native.ftcpOpenPacket(false, 0, SP2, 1 << 20, srv.fd)
  const udp = native.udpOpen('127.0.0.1', 0, 0)
  t.teardown(() => {
    native.ftcpUnpair(srv.fd)
    for (const fd of [srv.fd, srv.ctlFd, cli.fd, cli.ctlFd, pkt, udp.fd]) native.close(fd)
  })
  t.ok(pkt >= 0, 'the packet socket opened')
  // The server's flow is set on its raw socket's fd: the pairing gives it the packet socket.
  const hs = native.ftcpFlowSet(0, srv.fd, LO, CP2, LO, SP2, 7000, 5001, 0, true)
  const hc = native.ftcpFlowSet(0, cli.fd, LO, SP2, LO, CP2, 5001, 7000, 0, true)
  const mem = new Uint8Array(3 * 2048)
  const sizes = [1200, 1200, 300]
  const offsets = Int32Array.from([0, 2048, 4096])
  for (let i = 0; i < 3; i++) mem.fill(0x40 + i, offsets[i]!, offsets[i]! + sizes[i]!)
  t.equal(native.udpSendBatchGso(udp.fd, mem, offsets, Int32Array.from(sizes), Uint32Array.from([hc, SP2, hc, SP2, hc, SP2]), 3), 3)

  // The caller's layout (256 slots of 4 KiB, as the inbound pipeline's) is regrouped into 64 KiB buffers.
  const rx = new Uint8Array(256 * 4096)
  const bufOffsets = Int32Array.from({ length: 256 }, (_, i) => i * 4096)
  const ro = new Int32Array(64)
  const rl = new Int32Array(64)
  const ra = new Uint32Array(128)
  const info = new Int32Array(4)
  let got = 0
  for (let tries = 0; tries < 50 && got < 3; tries++) {
    got += native.ftcpRecv(pkt, rx, bufOffsets, 256, 4096, ro.subarray(got), rl.subarray(got), ra.subarray(2 * got), 64 - got, info)
    if (got < 3) await new Promise((resolve) => setTimeout(resolve, 10))
  }
  t.equal(got, 3, 'three datagrams from the packet socket')
  t.equal(native.ftcpRecv(srv.fd, rx, bufOffsets, 256, 4096, new Int32Array(64), new Int32Array(64), new Uint32Array(128), 64, new Int32Array(4)), 0, 'and none from the raw data socket (paired: it only sends)')
  t.same([...rl.subarray(0, 3)], sizes)
  for (let i = 0; i < 3; i++) t.ok(rx.subarray(ro[i]!, ro[i]! + rl[i]!).every((b) => b === 0x40 + i), `payload ${i} byte for byte`)
  t.same([ra[0], ra[1]], [hs >>> 0, CP2], 'from the server flow\'s handle')
  t.equal(info[2], 0, 'nothing malformed')
  const fi = new Float64Array(9)
  t.ok(native.ftcpFlowInfo(hs, fi))
  t.equal(fi[2], 5001 + 2700, 'the ack advanced by the payloads')
  t.equal(fi[8], 0, 'loopback is not Ethernet: no next hop learned, data leaves through the raw socket')
  const st = new Float64Array(6)
  native.ftcpOffloadStats(st)
  t.equal(st[5], 0, 'no flow on the packet path')
  t.throws(() => native.ftcpRecv(pkt, rx, Int32Array.from([0, 8192]), 2, 4096, ro, rl, ra, 64, info), RangeError, 'non-contiguous slots are refused')
  native.ftcpFlowDrop(hs)
  native.ftcpFlowDrop(hc)
})
