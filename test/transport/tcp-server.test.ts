// transport/tcp-server.ts and tcp-link.ts on real loopback TCP: bad input is counted and closed, bounds hold,
// and a backed-up link drops whole frames only.
import t from 'tap'
import { connect, createServer, type Socket } from 'node:net'
import { once } from 'node:events'
import { ConnTable } from '../../src/transport/conn-table.js'
import { TcpServer, HANDSHAKE_MS, ACCEPT_REST_MS } from '../../src/transport/tcp-server.js'
import { loadNative, type Native } from '../../src/dataplane/native.js'
import { constants } from 'node:os'
import { STALL_MS, TcpLink, newTcpLinkCounters } from '../../src/transport/tcp-link.js'
import { Deframer, encodeFrame } from '../../src/transport/framing.js'
import { silentLogger as log } from '../../src/log.js'


async function rig (t: { teardown: (fn: () => unknown) => void }, maxUnauth = 8): Promise<{ table: ConnTable, server: TcpServer, port: number }> {
  const table = new ConnTable({ daemon: () => ({ host: '127.0.0.1', port: 9 }), maxConns: 16, maxUnauth, now: () => performance.now() })
  const server = await TcpServer.listen(table, '127.0.0.1', 0, log)
  t.teardown(async () => { table.closeAll(); await server.close() })
  return { table, server, port: Number(server.address.split(':').pop()) }
}

async function open (port: number, first?: Uint8Array): Promise<Socket> {
  const s = connect(port, '127.0.0.1')
  s.on('error', () => {})
  await once(s, 'connect')
  if (first !== undefined) s.write(first)
  return s
}

const closed = (s: Socket): Promise<unknown> => s.destroyed ? Promise.resolve() : once(s, 'close')
const INIT = encodeFrame(new Uint8Array(148).fill(0).map((_, i) => i === 0 ? 1 : 0))

t.test('garbage first frame, an oversized frame, an empty frame: closed and counted', async t => {
  const { server, table } = await rig(t)
  const a = await open(Number(server.address.split(':').pop()), Uint8Array.of(0, 4, 0xde, 0xad, 0xbe, 0xef))
  await closed(a)
  t.equal(server.counters.tcpBadFirstFrame, 1)
  const b = await open(Number(server.address.split(':').pop()), Uint8Array.of(0xff, 0xff, 0))
  await closed(b)
  const c = await open(Number(server.address.split(':').pop()), Uint8Array.of(0, 0))
  await closed(c)
  t.equal(server.counters.tcpBadFrames, 2, 'too long and empty')
  await new Promise(resolve => setTimeout(resolve, 20))
  t.equal(table.size, 0, 'no entry left behind')
})

t.test('half-open flood: bounded, the oldest unauthenticated goes first; no handshake in time: closed', async t => {
  const { server, table, port } = await rig(t, 3)
  const socks: Socket[] = []
  for (let i = 0; i < 5; i++) { socks.push(await open(port, INIT)); await new Promise(resolve => setTimeout(resolve, 30)) }
  await closed(socks[0]!)
  await closed(socks[1]!)
  t.equal(table.size, 3, 'at most maxUnauth entries')
  t.equal(table.counters.transportUnauthEvicted, 2, 'the two oldest evicted')
  t.notOk(socks[4]!.destroyed, 'the newest stays')
  const t0 = Date.now()
  await Promise.all(socks.slice(2).map(closed))
  const waited = Date.now() + 100 - t0
  t.ok(waited >= HANDSHAKE_MS - 1000, `the rest closed after the handshake deadline (${waited} ms)`)
  t.equal(server.counters.tcpHandshakeTimeouts, 3)
  t.equal(table.size, 0)
})

t.test('a frame stalled half-read is closed after STALL_MS and counted; a slow but moving stream is not', async t => {
  const counters = newTcpLinkCounters()
  const ends: string[] = []
  const frames: number[] = []
  const srv = createServer((s) => {
    const link = new TcpLink(s, (m) => { frames.push(m.length) }, counters)
    link.onEnd = (why) => { ends.push(why) }
  })
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { srv.close() })
  const port = (srv.address() as { port: number }).port
  const moving = await open(port)
  const stalled = await open(port)
  stalled.write(Uint8Array.of(0, 100, 1, 2, 3)) // a frame's first 3 of 100 bytes, then nothing
  const t0 = Date.now()
  // The other connection always ends its writes mid-frame, but completes a frame every 1 s.
  const tick = setInterval(() => { moving.write(Uint8Array.of(7, 0, 2, 7)) }, 1000)
  moving.write(Uint8Array.of(0, 2, 7))
  await closed(stalled)
  t.ok(Date.now() - t0 >= STALL_MS - 500, `closed after ${Date.now() - t0} ms`)
  t.equal(counters.tcpStalls, 1, 'counted')
  t.match(ends, [/stalled half-read/])
  await new Promise(resolve => setTimeout(resolve, 1500))
  clearInterval(tick)
  t.notOk(moving.destroyed, 'the moving stream stays open')
  t.ok(frames.length >= 5, `its frames kept arriving (${frames.length})`)
  moving.destroy()
})

t.test('a link whose peer does not read drops whole frames: the stream stays well-framed, in order, nothing overwritten', async t => {
  let accepted: Socket | null = null
  const srv = createServer((s) => { accepted = s; s.pause() })
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { srv.close() })
  const port = (srv.address() as { port: number }).port
  const sock = connect(port, '127.0.0.1')
  await once(sock, 'connect')
  const link = new TcpLink(sock, () => {}, newTcpLinkCounters())
  // Each message carries its number in every byte pair: a frame staged in a slab part still held by the stream
  // and then overwritten would arrive with the wrong number or mixed contents.
  const msgOf = (k: number): Uint8Array => { const m = new Uint8Array(1400); for (let i = 0; i < m.length; i += 2) { m[i] = k >>> 8; m[i + 1] = k & 0xff } return m }
  const sent: number[] = []
  let dropped = 0
  let k = 0
  // Turns of 10 messages (14 KB, below SEND_BACKLOG): once the kernel is full, turns go on while a write is pending.
  for (let round = 0; round < 4000 && dropped < 50; round++) {
    for (let i = 0; i < 10; i++, k++) { if (link.send(msgOf(k & 0xffff))) sent.push(k & 0xffff); else dropped++ }
    await new Promise(resolve => setImmediate(resolve))
  }
  t.ok(dropped > 0, `a peer that does not read: ${sent.length} sent, ${dropped} dropped`)
  t.ok(sock.writableLength < 512 * 1024, `user-space backlog bounded (${sock.writableLength} bytes)`)
  // Then the peer reads again while we go on sending: the link resumes from a slab the stream may still hold.
  const got: number[] = []
  let bad = 0
  const d = new Deframer((m) => {
    const n = (m[0]! << 8) | m[1]!
    if (m.length !== 1400 || !m.every((b, i) => b === (i % 2 === 0 ? n >>> 8 : n & 0xff))) bad++
    got.push(n)
  })
  accepted!.on('data', (c: Buffer) => { if (d.push(c) !== null) t.fail('bad framing') })
  accepted!.resume()
  for (let round = 0; round < 40; round++, k++) {
    for (let i = 0; i < 20; i++, k++) { if (link.send(msgOf(k & 0xffff))) sent.push(k & 0xffff) }
    await new Promise(resolve => setImmediate(resolve))
  }
  await new Promise(resolve => setTimeout(resolve, 300))
  link.close()
  await once(accepted!, 'end').catch(() => {})
  t.equal(bad, 0, 'no frame overwritten or mixed')
  t.equal(got.length, sent.length, 'every sent frame arrived whole; nothing partial')
  t.same(got, sent, 'in the order sent')
  t.notOk(d.partial)
})

t.test('the listen address reads as HOST:PORT the user writes: [::] in brackets (status "accepting on")', async t => {
  const table = new ConnTable({ daemon: () => ({ host: '127.0.0.1', port: 9 }), maxConns: 4, maxUnauth: 4, now: () => performance.now() })
  const server = await TcpServer.listen(table, '::', 0, log)
  t.teardown(async () => { table.closeAll(); await server.close() })
  t.match(server.address, /^\[::\]:\d+$/)
  const v4 = await TcpServer.listen(table, '127.0.0.1', 0, log)
  t.teardown(async () => { await v4.close() })
  t.match(v4.address, /^127\.0\.0\.1:\d+$/)
  await t.rejects(TcpServer.listen(table, '127.0.0.1', Number(v4.address.split(':').pop()), log), { code: 'EADDRINUSE' }, 'a taken port: the errno code the daemon names (daemon-transport.ts)')
})

t.test('out of file descriptors: the accept failure is counted, the listener rests, then takes the waiting connection', async t => {
  const real = loadNative()
  let fail = 1
  let accepts = 0
  // The real addon, but the first accept fails as with a full descriptor table (the connection stays queued).
  const native: Native = Object.create(real) as Native
  native.tcpAccept = (fd: number): number => { accepts++; if (fail > 0) { fail--; return -constants.errno.EMFILE } return real.tcpAccept(fd) }
  const warnings: string[] = []
  const logger = { ...log, warn: (msg: string) => { warnings.push(msg) } } as typeof log
  const table = new ConnTable({ daemon: () => ({ host: '127.0.0.1', port: 9 }), maxConns: 4, maxUnauth: 4, now: () => performance.now(), native: real })
  const server = await TcpServer.listen(table, '127.0.0.1', 0, logger, native)
  t.teardown(async () => { table.closeAll(); await server.close() })
  const t0 = performance.now()
  const s = await open(Number(server.address.split(':').pop()), INIT)
  t.teardown(() => { s.destroy() })
  await new Promise(resolve => setTimeout(resolve, 200))
  t.equal(server.counters.tcpAcceptErrors, 1, 'counted')
  t.match(warnings, [/cannot accept a TCP connection/], 'and logged')
  t.equal(server.counters.tcpAccepted, 0, 'resting: not taken yet')
  t.ok(accepts <= 2, `no spinning on the waiting connection (${accepts} accept calls)`)
  while (table.size === 0 && performance.now() - t0 < ACCEPT_REST_MS + 3000) await new Promise(resolve => setTimeout(resolve, 50))
  t.equal(server.counters.tcpAccepted, 1, 'taken after the rest')
  t.equal(table.size, 1)
})
