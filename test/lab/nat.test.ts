/**
 * lab/nat.ts natRuleset (pure): the NAT port range used for NAT rebinding
 * (bench/p2p.ts rebind, test/e2e/p2p-paths.test.ts).
 */
import t from 'tap'
import { natRuleset } from '../../src/lab/nat.js'

const opts = { wan: 'w1', lan: 'l1', wanIp: '100.64.1.1' }

t.test('no port range: plain masquerade', async t => {
  const r = natRuleset('port-restricted', opts)
  t.match(r, /oifname "w1" masquerade\n/)
  t.notMatch(r, /masquerade to/)
})

t.test('a port range maps UDP and TCP into it; other protocols keep the plain rule', async t => {
  const r = natRuleset('port-restricted', { ...opts, portRange: [40000, 40999] })
  t.match(r, /oifname "w1" meta l4proto \{ tcp, udp \} masquerade to :40000-40999\n {4}oifname "w1" masquerade\n/)
  t.match(natRuleset('symmetric', { ...opts, portRange: [40000, 40999] }), /masquerade to :40000-40999 random\n/)
})

t.test('a bad port range is refused', async t => {
  for (const pr of [[999, 2000], [3000, 2000], [40000, 70000], [1.5, 2000]] as const) {
    t.throws(() => natRuleset('port-restricted', { ...opts, portRange: pr }), /NAT port range/, `${pr[0]}-${pr[1]}`)
  }
})
