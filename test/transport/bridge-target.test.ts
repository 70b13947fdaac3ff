// Where the TCP transport's bridges reach the daemon's UDP socket (transport/daemon-transport.ts bridgeTarget).
// The bug this catches: with the dual-stack default (--listen [::]) the bridge parsed '::' as an IPv4
// address and the client crashed the moment it fell back to TCP.
import t from 'tap'
import { bridgeTarget } from '../../src/transport/daemon-transport.js'
import { VpnError } from '../../src/errors.js'

const client = (host: string, transport: 'auto' | 'udp' | 'tcp' | 'faketcp' = 'auto') =>
  ({ mode: 'client' as const, listen: { host, port: 0 }, tcp: true, transport })
const server = (host: string, tcp = true) => ({ mode: 'server' as const, listen: { host, port: 9000 }, tcp, transport: 'auto' as const })

function caught (fn: () => unknown): VpnError | null {
  try { fn() } catch (err) { return err as VpnError }
  return null
}

t.test('every-address sockets are reached on 127.0.0.1; an IPv4 listen address on itself', async t => {
  t.equal(bridgeTarget(client('::')), '127.0.0.1', 'dual-stack [::] (the default)')
  t.equal(bridgeTarget(client('0.0.0.0')), '127.0.0.1')
  t.equal(bridgeTarget(server('::')), '127.0.0.1')
  t.equal(bridgeTarget(server('192.0.2.1')), '192.0.2.1')
})

t.test('a socket bound to one IPv6 address: refused while TCP is in use, naming the fix', async t => {
  const c = caught(() => bridgeTarget(client('2001:db8::1')))
  t.ok(c instanceof VpnError, 'a VpnError')
  t.match(c?.message, /--listen \[2001:db8::1\]:0: .*IPv4 loopback/)
  t.match(c?.hint, /--transport udp/)
  t.match(caught(() => bridgeTarget(server('2001:db8::1')))?.hint, /--no-tcp/)
  t.equal(bridgeTarget(client('2001:db8::1', 'udp')), '127.0.0.1', 'UDP pinned: no bridge is ever used')
  t.equal(bridgeTarget(server('2001:db8::1', false)), '127.0.0.1', '--no-tcp: no bridge is ever used')
})
