// dataplane/dataplane.ts, the main-thread side of the dataplane, for real:
// a TUN device and a UDP socket in a throw-away network namespace
// (helpers/in-netns.ts), the pipelines on their threads. For each placement
// it opens and configures the device, reports what it got (port, device,
// offloads), sends and receives control datagrams, routes a kernel packet
// through a peer it was told about (sealed to the peer's endpoint, checked
// with @noble/ciphers) and a sealed datagram back into the kernel, and
// closes leaving no device and no bound port. Start-up failures (device name
// taken, port in use, IPv6 disabled by sysctl) reject with their code and
// undo everything. With an IPv6 tunnel address (tun6) the device gets it
// (nodad) and IPv6 packets go both ways, checksums intact.
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { createSocket, type Socket } from 'node:dgram'
import { execFileSync } from 'node:child_process'
import { once } from 'node:events'
import { portFree, testNetns } from '../helpers/in-netns.js'
import { ipv4, openData, sealData } from '../helpers/packets.js'
import { a6, checksumOk6, udp6 } from '../helpers/packets6.js'
import { parsePrefix } from '../../src/wire/prefix.js'
import { Dataplane, type DataplaneOptions } from '../../src/dataplane/dataplane.js'
import { Logger } from '../../src/log.js'
import type { ControlHandler, ControlInput } from '../../src/control/port.js'
import type { Placement } from '../../src/config/schema.js'

const ns = await testNetns(t, import.meta.url, 'dp')

const OWN = 0x0a5b0001 // 10.91.0.1
const PEER = 0x0a5b0002 // 10.91.0.2
const LOOPBACK = 0x7f000001

const log = new Logger({ level: 'error', sink: { write: (l) => { process.stderr.write(l) } } })

function options (placement: Placement, dev: string, port = 0): DataplaneOptions {
  return { mode: 'server', dev, cidr: '10.91.0.1/24', tunnelIp: OWN, mtu: 1400, listenHost: '0.0.0.0', listenPort: port, maxPeers: 4, socketBuffer: 1 << 20, placement, fastPath: true }
}

function links (): string[] {
  return execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).split('\n').map((l) => l.split(':')[1]?.trim().split('@')[0] ?? '').filter((n) => n !== '')
}

/** Resolves when cond() holds (checked every 10 ms), rejects after ms. */
async function until (cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

async function udpSocket (t: Test, host: string, port = 0): Promise<Socket> {
  const s = createSocket('udp4')
  await new Promise<void>((resolve, reject) => { s.once('error', reject); s.bind(port, host, () => { s.off('error', reject); resolve() }) })
  t.teardown(() => { try { s.close() } catch {} })
  return s
}

/** An IPv4/UDP packet (UDP checksum 0: none, valid over IPv4). */
function udpPacket (src: number, dst: number, sport: number, dport: number, data: Uint8Array): Uint8Array {
  const u = new Uint8Array(8 + data.length)
  const v = new DataView(u.buffer)
  v.setUint16(0, sport)
  v.setUint16(2, dport)
  v.setUint16(4, u.length)
  u.set(data, 8)
  return ipv4(src, dst, u, 17)
}

function recorder (): { handler: ControlHandler, inputs: ControlInput[], needSession: number[] } {
  const inputs: ControlInput[] = []
  const needSession: number[] = []
  return { inputs, needSession, handler: { onControl: (i) => { inputs.push(i) }, onNeedSession: (s) => { needSession.push(s) }, onSendLimit: () => {}, onEndpoint: () => {} } }
}

if (ns !== null) {
  for (const [i, placement] of (['inline', 'fused', 'split'] as const).entries()) {
    t.test(`placement ${placement}: open, report, carry control and data, close leaving nothing behind`, async t => {
      const dev = `lwtdp${i}`
      const dp = new Dataplane(options(placement, dev), log)
      const fatal: Error[] = []
      const rec = recorder()
      await dp.start(rec.handler, (err) => { fatal.push(err) })
      let closed = false
      t.teardown(async () => { if (!closed) await dp.close() })

      t.equal(dp.devName, dev)
      t.ok(dp.port > 0, `bound UDP port reported (${dp.port})`)
      t.match(dp.offloads, { tunOffload: /^(tso\+uso|tso|tso4|none)$/, udpGro: Boolean, fastPath: true })
      const addr = JSON.parse(execFileSync('ip', ['-4', '-j', 'addr', 'show', 'dev', dev], { encoding: 'utf8' })) as Array<{ mtu: number, flags: string[], addr_info: Array<{ local: string, prefixlen: number }> }>
      t.equal(addr[0]!.mtu, 1400, 'MTU set')
      t.ok(addr[0]!.flags.includes('UP'), 'link up')
      t.same(addr[0]!.addr_info.map((a) => `${a.local}/${a.prefixlen}`), ['10.91.0.1/24'], 'address set')

      // Control datagrams, both ways.
      const far = await udpSocket(t, '127.0.0.1')
      const farPort = far.address().port
      const got = once(far, 'message') as Promise<[Buffer, { port: number }]>
      const hello = new Uint8Array(randomBytes(64))
      dp.sendControl(hello, LOOPBACK, farPort)
      const [msg, rinfo] = await got
      t.same(new Uint8Array(msg), hello, 'sendControl: the bytes, from the dataplane\'s port')
      t.equal(rinfo.port, dp.port)
      const init = new Uint8Array(120).fill(0x5a)
      init[0] = 1 // a handshake init: the control plane's
      far.send(init, dp.port, '127.0.0.1')
      await until(() => rec.inputs.length > 0, 3000, 'a control input')
      t.match(rec.inputs[0], { kind: 'packet', ip: LOOPBACK, port: farPort })
      t.same(rec.inputs[0]!.bytes, init, 'handed over through the control ring')

      // A packet the kernel routes into the device leaves sealed to the peer's endpoint.
      const sendKey = new Uint8Array(randomBytes(32))
      const recvKey = new Uint8Array(randomBytes(32))
      dp.setPeer({ slot: 1, peerId: 1, tunnelIp: PEER, endpointIp: LOOPBACK, endpointPort: farPort, relayVia: false })
      dp.setSendKey(1, sendKey, 0x1234)
      dp.setRecvKey(1, 0x5678, recvKey)
      const app = await udpSocket(t, '10.91.0.1')
      const sealed = once(far, 'message') as Promise<[Buffer]>
      const payload = new Uint8Array(randomBytes(200))
      // Key messages travel by postMessage: resend until the pipeline has them (the first may be queued or dropped).
      const sender = setInterval(() => { app.send(payload, 7000, '10.91.0.2') }, 50)
      app.send(payload, 7000, '10.91.0.2')
      const [d] = await sealed.finally(() => { clearInterval(sender) })
      const m = openData(sendKey, new Uint8Array(d))
      t.equal(m.index, 0x1234, 'to the peer\'s receiver index')
      t.same(m.inner.subarray(28), payload, 'the kernel\'s packet, sealed')

      // A sealed datagram from the peer reaches a local socket through the device.
      const delivered = once(app, 'message') as Promise<[Buffer, { address: string, port: number }]>
      const inner = udpPacket(PEER, OWN, 7000, app.address().port, Uint8Array.from([1, 2, 3, 4]))
      far.send(sealData(recvKey, 0x5678, 0, inner), dp.port, '127.0.0.1')
      const [back, from] = await delivered
      t.same(new Uint8Array(back), Uint8Array.from([1, 2, 3, 4]))
      t.same({ address: from.address, port: from.port }, { address: '10.91.0.2', port: 7000 })
      // The pipeline counts a TUN write after the write returns, and the kernel may hand the datagram to the
      // socket inside the write: on another thread (split, fused) the count can trail the delivery a little.
      const counted = (): boolean => {
        const c = dp.counters()
        return c.controlPackets! >= 1 && c.udpTxPackets! >= 1 && c.tunTxPackets! >= 1 && dp.peerCounters(1).rxPackets >= 1
      }
      await until(counted, 3000, 'the counters').catch(() => {})
      const c = dp.counters()
      t.ok(c.controlPackets! >= 1 && c.udpTxPackets! >= 1 && c.tunTxPackets! >= 1, 'counted in the shared stats')
      t.ok(dp.peerCounters(1).rxPackets >= 1, 'per-peer counters')

      const port = dp.port
      const p1 = dp.close()
      t.equal(dp.close(), p1, 'close() is idempotent: the same promise')
      await p1
      closed = true
      t.notOk(links().includes(dev), 'the device is gone')
      t.ok(await portFree(port), 'the UDP port is free again')
      t.same(fatal, [], 'no fatal error')
    })
  }

  t.test('start-up failures reject with their code and undo everything', async t => {
    execFileSync('ip', ['tuntap', 'add', 'dev', 'lwttaken', 'mode', 'tun'])
    t.teardown(() => { execFileSync('ip', ['link', 'del', 'lwttaken']) })
    const port = 9411
    const taken = new Dataplane(options('inline', 'lwttaken', port), log)
    await t.rejects(taken.start(recorder().handler, () => {}), { code: 'ERR_TUN_NAME_TAKEN', message: /device name lwttaken is already in use/ })
    t.ok(await portFree(port), 'nothing bound')

    const holder = await udpSocket(t, '0.0.0.0', port)
    const busy = new Dataplane(options('inline', 'lwtbusy', port), log)
    await t.rejects(busy.start(recorder().handler, () => {}), { code: 'ERR_ADDRESS_IN_USE', message: /UDP port 0\.0\.0\.0:9411 is already in use/ })
    t.notOk(links().includes('lwtbusy'), 'the device opened before the failure is gone')
    holder.close()
  })

  t.test('IPv6 tunnel address: set without DAD; IPv6 packets routed by prefix, both ways, with valid checksums', async t => {
    const dev = 'lwtdp6'
    const dp = new Dataplane({ ...options('fused', dev), tun6: parsePrefix('fd00:91::1/64', { keepHostBits: true }) }, log)
    // Before start: the threads do not exist yet, and must still get it.
    dp.setLocalPrefixes([parsePrefix('fd00:91::1/128')])
    await dp.start(recorder().handler, () => {})
    t.teardown(async () => { await dp.close() })
    const a = JSON.parse(execFileSync('ip', ['-6', '-j', 'addr', 'show', 'dev', dev], { encoding: 'utf8' })) as Array<{ addr_info: Array<{ local: string, prefixlen: number, tentative?: boolean, nodad?: boolean }> }>
    const mine = a[0]!.addr_info.find((x) => x.local === 'fd00:91::1')
    t.match(mine, { prefixlen: 64, nodad: true }, 'the address, nodad')
    t.notOk(mine?.tentative, 'usable at once (not tentative)')

    const far = await udpSocket(t, '127.0.0.1')
    const farPort = far.address().port
    const sendKey = new Uint8Array(randomBytes(32))
    const recvKey = new Uint8Array(randomBytes(32))
    dp.setPeer({ slot: 1, peerId: 1, tunnelIp: PEER, endpointIp: LOOPBACK, endpointPort: farPort, relayVia: false, prefixes: [parsePrefix('fd00:91::2/128')] })
    dp.setSendKey(1, sendKey, 0x1234)
    dp.setRecvKey(1, 0x5678, recvKey)
    const app = createSocket('udp6')
    await new Promise<void>((resolve, reject) => { app.once('error', reject); app.bind(0, 'fd00:91::1', () => resolve()) })
    t.teardown(() => { app.close() })
    const payload = new Uint8Array(randomBytes(333))
    const sealed = new Promise<Uint8Array>((resolve) => {
      // The kernel also sends its own IPv6 (router solicitations, MLD) into the device: those have no route.
      const on = (d: Buffer): void => {
        const m = openData(sendKey, new Uint8Array(d))
        if (m.inner[6] === 17) { far.off('message', on); resolve(m.inner) }
      }
      far.on('message', on)
    })
    const sender = setInterval(() => { app.send(payload, 7000, 'fd00:91::2') }, 50)
    const inner = await sealed.finally(() => { clearInterval(sender) })
    t.equal(inner[0]! >> 4, 6, 'an IPv6 packet')
    t.same(inner.subarray(24, 40), a6('fd00:91::2'), 'to the peer\'s address')
    t.same(inner.subarray(48), payload, 'the payload')
    t.ok(checksumOk6(inner), 'its UDP checksum completed (the kernel left it partial: CSUM offload)')

    const delivered = once(app, 'message') as Promise<[Buffer, { address: string, port: number }]>
    far.send(sealData(recvKey, 0x5678, 0, udp6(a6('fd00:91::2'), a6('fd00:91::1'), 7000, app.address().port, Uint8Array.from([9, 8, 7]))), dp.port, '127.0.0.1')
    const [back, from] = await delivered
    t.same(new Uint8Array(back), Uint8Array.from([9, 8, 7]))
    t.same({ address: from.address, port: from.port }, { address: 'fd00:91::2', port: 7000 })
  })

  t.test('IPv6 disabled by sysctl (for all devices, or for new ones): start fails naming the sysctl and the fix, nothing left behind', async t => {
    const sysctl = (v: string): void => { execFileSync('sysctl', ['-qw', `net.ipv6.conf.all.disable_ipv6=${v}`]) }
    sysctl('1')
    t.teardown(() => { sysctl('0') })
    const dp = new Dataplane({ ...options('inline', 'lwtno6', 9412), tun6: parsePrefix('fd00:92::1/64', { keepHostBits: true }) }, log)
    await t.rejects(dp.start(recorder().handler, () => {}), {
      code: 'ERR_IPV6_DISABLED',
      message: /net\.ipv6\.conf\.all\.disable_ipv6 = 1/,
      hint: /sysctl -w net\.ipv6\.conf\.all\.disable_ipv6=0/
    })
    t.notOk(links().includes('lwtno6'), 'the device is gone')
    t.ok(await portFree(9412), 'the port is free')
    // Only new devices: IPv6 stays on for the host, but the fresh TUN device inherits default = 1.
    sysctl('0')
    const dflt = (v: string): void => { execFileSync('sysctl', ['-qw', `net.ipv6.conf.default.disable_ipv6=${v}`]) }
    dflt('1')
    t.teardown(() => { dflt('0') })
    const dp2 = new Dataplane({ ...options('inline', 'lwtno6b', 9413), tun6: parsePrefix('fd00:92::1/64', { keepHostBits: true }) }, log)
    await t.rejects(dp2.start(recorder().handler, () => {}), {
      code: 'ERR_IPV6_DISABLED',
      message: /IPv6 is disabled on lwtno6b .*inherited from net\.ipv6\.conf\.default\.disable_ipv6 = 1/,
      hint: /sysctl -w net\.ipv6\.conf\.default\.disable_ipv6=0/
    })
    t.notOk(links().includes('lwtno6b'), 'that device is gone too')
  })
}
