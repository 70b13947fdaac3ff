import t from 'tap'
import { formatIp6, formatPrefix, networkOf, parseIp, parseIp6, parsePrefix, prefixContains, prefixesOverlap, samePrefix, ipv4Prefix, bytesIpv4 } from '../../src/wire/prefix.js'

t.test('IPv6 text round-trips in RFC 5952 form', async t => {
  const cases: Array<[string, string]> = [
    ['fd00:77::2', 'fd00:77::2'],
    ['::', '::'],
    ['::1', '::1'],
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
    ['::ffff:192.0.2.1', '::ffff:c000:201'],
    ['2001:DB8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['fe80:0:0:0:1::', 'fe80::1:0:0:0']
  ]
  for (const [text, canon] of cases) t.equal(formatIp6(parseIp6(text)), canon, text)
  t.same([...parseIp6('fd00::102:304').slice(12)], [1, 2, 3, 4])
})

t.test('bad IPv6 text is refused with a hint', async t => {
  for (const bad of ['fd00::1::2', 'fd00:77::2%eth0', '1:2:3:4:5:6:7:8:9', 'g::1', '10.0.0.1', '']) {
    t.throws(() => parseIp6(bad), { code: 'ERR_CONFIG_INVALID' }, bad)
  }
  t.throws(() => parseIp('nonsense'), { code: 'ERR_CONFIG_INVALID' })
})

t.test('prefixes: host bits refused for routes, kept for tunnel addresses', async t => {
  t.equal(formatPrefix(parsePrefix('fd50::/64')), 'fd50::/64')
  t.equal(formatPrefix(parsePrefix('192.168.50.0/24')), '192.168.50.0/24')
  const hintOf = (f: () => unknown): unknown => { try { f() } catch (e) { return (e as { hint?: string }).hint } return 'no error' }
  t.equal(hintOf(() => parsePrefix('192.168.50.1/24')), 'the network is 192.168.50.0/24')
  t.equal(hintOf(() => parsePrefix('fd50::1/64')), 'the network is fd50::/64')
  t.equal(formatPrefix(parsePrefix('fd00:77::2/64', { keepHostBits: true })), 'fd00:77::2/64')
  t.equal(formatPrefix(networkOf(parsePrefix('fd00:77::2/64', { keepHostBits: true }))), 'fd00:77::/64')
  t.throws(() => parsePrefix('10.0.0.0/33'), { code: 'ERR_CONFIG_INVALID' })
  t.throws(() => parsePrefix('fd50::/129'), { code: 'ERR_CONFIG_INVALID' })
  t.throws(() => parsePrefix('fd50::'), { code: 'ERR_CONFIG_INVALID' })
  t.throws(() => parsePrefix('10.0.0.0/8x'), { code: 'ERR_CONFIG_INVALID' })
})

t.test('containment and overlap', async t => {
  const p = parsePrefix('10.0.0.0/9')
  t.ok(prefixContains(p, 4, parseIp('10.127.255.255').addr))
  t.notOk(prefixContains(p, 4, parseIp('10.128.0.0').addr))
  t.notOk(prefixContains(p, 6, parseIp6('::a00:1')), 'families never mix')
  t.ok(prefixesOverlap(parsePrefix('10.0.0.0/8'), parsePrefix('10.1.0.0/16')))
  t.ok(prefixesOverlap(parsePrefix('10.1.0.0/16'), parsePrefix('10.0.0.0/8')))
  t.notOk(prefixesOverlap(parsePrefix('10.0.0.0/16'), parsePrefix('10.1.0.0/16')))
  t.ok(prefixesOverlap(parsePrefix('::/0'), parsePrefix('fd50::/64')))
  t.ok(samePrefix(ipv4Prefix(0x0a000000, 8), parsePrefix('10.0.0.0/8')))
  t.equal(bytesIpv4(ipv4Prefix(0xc0a83201, 32).addr), 0xc0a83201)
})
