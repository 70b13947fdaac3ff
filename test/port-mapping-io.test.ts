/**
 * port-mapping-io.ts: the default route read from /proc/net/route text, and
 * the driver over real sockets on loopback against a scripted gateway: the
 * mapping is asked for, announced, and deleted (lifetime 0) before stop()
 * resolves.
 */
import t from 'tap'
import { createSocket } from 'node:dgram'
import { parseDefaultRoute, PortMappingIo } from '../src/port-mapping-io.js'
import { systemClock } from '../src/clock.js'
import { systemRandom } from '../src/random.js'
import { ipToInt } from '../src/wire/addr.js'
import type { Endpoint } from '../src/control/nat.js'
import type { Logger } from '../src/log.js'

t.test('parseDefaultRoute: the default route with the lowest metric; none without one', async t => {
  const text = [
    'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT',
    'eth1\t00000000\t0101A8C0\t0003\t0\t0\t200\t00000000\t0\t0\t0',
    'eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0',
    'eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0'
  ].join('\n')
  t.same(parseDefaultRoute(text), { gateway: ipToInt('192.0.2.1'), iface: 'eth0' })
  t.equal(parseDefaultRoute(text.split('\n').filter(l => !l.includes('\t00000000\t0')).join('\n')), null)
  t.equal(parseDefaultRoute('Iface\tDestination\n'), null)
  const down = 'Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\neth0\t00000000\t010200C0\t0002\t0\t0\t0\t00000000'
  t.equal(parseDefaultRoute(down), null, 'a route that is not up')
})

const quiet: Logger = new Proxy({}, { get: (_o, k) => k === 'child' ? () => quiet : () => {} }) as Logger

t.test('driver: maps over a real socket, announces it, deletes it on stop', async t => {
  const gw = createSocket('udp4')
  const got: Buffer[] = []
  gw.on('message', (msg, rinfo) => {
    got.push(msg)
    if (msg[0] !== 2) return // PCP only: NAT-PMP requests go unanswered
    const out = Buffer.alloc(60)
    out[0] = 2; out[1] = 0x81
    out.writeUInt32BE(msg.readUInt32BE(4), 4)
    out.writeUInt32BE(1, 8)
    msg.copy(out, 24, 24, 42)
    out.writeUInt16BE(40000, 42)
    out[54] = 0xff; out[55] = 0xff; out.set([203, 0, 113, 7], 56)
    gw.send(out, rinfo.port, rinfo.address)
  })
  // The gateway's port 5351 on a loopback address of its own (127.0.0.0/8 is all local).
  await new Promise<void>((resolve, reject) => { gw.once('error', reject); gw.bind(5351, '127.0.53.51', () => resolve()) })
  t.teardown(() => { gw.close() })
  const changes: Array<Endpoint | null> = []
  const io = new PortMappingIo(41641, { clock: systemClock, random: systemRandom, log: quiet }, (ep) => { changes.push(ep) },
    () => ({ gateway: ipToInt('127.0.53.51'), localIp: ipToInt('127.0.0.1') }))
  await io.start()
  for (let i = 0; i < 100 && changes.length === 0; i++) await new Promise(resolve => setTimeout(resolve, 20))
  t.same(changes, [{ ip: ipToInt('203.0.113.7'), port: 40000 }], 'announced')
  t.equal(io.status().state, 'mapped')
  t.equal(io.status().external, '203.0.113.7:40000')
  const before = got.length
  await io.stop()
  for (let i = 0; i < 50 && got.length === before; i++) await new Promise(resolve => setTimeout(resolve, 10))
  const del = got.at(-1)!
  t.equal(got.length, before + 1, 'one more datagram: the delete')
  t.equal(del[0], 2); t.equal(del.readUInt32BE(4), 0, 'lifetime 0')
  t.equal(del.readUInt16BE(40), 41641)
  await io.stop()
  t.pass('stop is idempotent')
})
