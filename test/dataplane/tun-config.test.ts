// dataplane/tun-config.ts ipv6Blocker: which host states refuse an IPv6
// tunnel address, and the error each gives (the sysctl to change, the fix),
// over a fake /proc/sys; configureTun refuses an MTU below 1280 with tun6
// before running any command. (dataplane.test.ts sets the address on a real
// device and meets the real sysctl.)
import t from 'tap'
import { configureTun, ipv6Blocker, type SysctlReader } from '../../src/dataplane/tun-config.js'
import { parsePrefix } from '../../src/wire/prefix.js'

const fake = (files: Record<string, string>): SysctlReader => async (path) => files[path] ?? null

t.test('IPv6 available: no blocker', async t => {
  t.equal(await ipv6Blocker('lwt0', fake({ '/proc/sys/net/ipv6/conf/all/disable_ipv6': '0\n', '/proc/sys/net/ipv6/conf/lwt0/disable_ipv6': '0\n' })), null)
  t.equal(await ipv6Blocker('lwt0', fake({ '/proc/sys/net/ipv6/conf/all/disable_ipv6': '0\n' })), null, 'no per-device file yet: fine')
})

t.test('no IPv6 in the kernel (/proc/sys/net/ipv6 missing)', async t => {
  const e = await ipv6Blocker('lwt0', fake({}))
  t.match(e, { code: 'ERR_IPV6_DISABLED', message: /\/proc\/sys\/net\/ipv6 is missing/, hint: /ipv6\.disable=1.*tun6/ })
})

t.test('disabled for all devices, or for this one', async t => {
  const all = await ipv6Blocker('lwt0', fake({ '/proc/sys/net/ipv6/conf/all/disable_ipv6': '1\n' }))
  t.match(all, { code: 'ERR_IPV6_DISABLED', message: /net\.ipv6\.conf\.all\.disable_ipv6 = 1/, hint: /sysctl -w net\.ipv6\.conf\.all\.disable_ipv6=0/ })
  const dev = await ipv6Blocker('lwt0', fake({ '/proc/sys/net/ipv6/conf/all/disable_ipv6': '0\n', '/proc/sys/net/ipv6/conf/lwt0/disable_ipv6': '1\n' }))
  t.match(dev, { code: 'ERR_IPV6_DISABLED', message: /IPv6 is disabled on lwt0 \(net\.ipv6\.conf\.lwt0\.disable_ipv6 = 1\)/, hint: /sysctl -w net\.ipv6\.conf\.lwt0\.disable_ipv6=0/ })
  const inherited = await ipv6Blocker('lwt0', fake({ '/proc/sys/net/ipv6/conf/all/disable_ipv6': '0', '/proc/sys/net/ipv6/conf/default/disable_ipv6': '1', '/proc/sys/net/ipv6/conf/lwt0/disable_ipv6': '1' }))
  t.match(inherited, { message: /inherited from net\.ipv6\.conf\.default\.disable_ipv6 = 1/, hint: /sysctl -w net\.ipv6\.conf\.default\.disable_ipv6=0.*new devices inherit it/ }, 'the device inherited it: the fix is the default')
})

t.test('configureTun: an MTU below 1280 with an IPv6 address is refused before any command runs', async t => {
  let read = 0
  await t.rejects(configureTun('lwt-none', '10.0.0.1/24', 1200, parsePrefix('fd00::1/64', { keepHostBits: true }), async () => { read++; return '0' }),
    { code: 'ERR_CONFIG_INVALID', message: /MTU 1200 is below 1280/, hint: /1280 or more/ })
  t.equal(read, 0)
})
