/**
 * dataplane/kernel-routes.ts against a recorded `ip`: the commands for
 * installing, withdrawing and (at close) removing routes, a route another
 * device holds refused once with both named, a failing command logged and
 * counted without stopping the rest.
 */
import t from 'tap'
import { Logger } from '../../src/log.js'
import { KernelRoutes } from '../../src/dataplane/kernel-routes.js'
import { planRoutes, type RouteOffer } from '../../src/control/kernel-route-plan.js'
import { ipToInt } from '../../src/wire/addr.js'
import { parsePrefix } from '../../src/wire/prefix.js'

const B = ipToInt('10.0.0.3')
const C = ipToInt('10.0.0.4')
const offer = (via: number, p: string): RouteOffer => ({ via, prefix: parsePrefix(p) })
const plan = (offers: RouteOffer[]) => planRoutes(offers, { serverUnderlay: ipToInt('198.18.0.1'), tunnelNets: [parsePrefix('10.0.0.0/24')], own: [] })

function rig (table: Record<string, string> = {}, fail: string[] = []) {
  const calls: string[] = []
  const lines: string[] = []
  const log = new Logger({ level: 'debug', sink: { write: (l) => { lines.push(l) } } })
  const kr = new KernelRoutes('lwt0', log, undefined, async (args) => {
    const cmd = args.join(' ')
    calls.push(cmd)
    if (fail.some(f => cmd.includes(f))) throw Object.assign(new Error('failed'), { stderr: 'RTNETLINK answers: Operation not permitted' })
    return table[args[args.length - 1]!] ?? ''
  })
  const settle = async (): Promise<void> => { for (let i = 0; i < 20; i++) await new Promise(resolve => setImmediate(resolve)) }
  return { kr, calls, lines, settle }
}

t.test('install, withdraw, close: one command each, IPv4 and IPv6', async t => {
  const r = rig()
  r.kr.want(plan([offer(B, '192.168.50.0/24'), offer(B, 'fd50::/64')]))
  await r.settle()
  t.same(r.calls, [
    '-4 route show exact 192.168.50.0/24', '-4 route replace 192.168.50.0/24 dev lwt0',
    '-6 route show exact fd50::/64', '-6 route replace fd50::/64 dev lwt0'
  ])
  t.same(r.kr.status().map(s => `${s.prefix} ${s.via} ${s.state}`), ['192.168.50.0/24 10.0.0.3 installed', 'fd50::/64 10.0.0.3 installed'])
  r.calls.length = 0
  r.kr.want(plan([offer(B, '192.168.50.0/24'), offer(B, 'fd50::/64')]))
  await r.settle()
  t.same(r.calls, [], 'the same plan again: no command')
  r.kr.want(plan([offer(B, 'fd50::/64')]))
  await r.settle()
  t.same(r.calls, ['-4 route del 192.168.50.0/24 dev lwt0'], 'withdrawn: removed')
  r.calls.length = 0
  await r.kr.close()
  t.same(r.calls, ['-6 route del fd50::/64 dev lwt0'], 'at exit every installed route goes')
  r.kr.want(plan([offer(B, '192.168.50.0/24')]))
  await r.settle()
  t.same(r.calls, ['-6 route del fd50::/64 dev lwt0'], 'closed: nothing more')
  t.equal(r.kr.counters.routesInstalled, 2)
})

t.test('a route of another device is refused (both named), counted once and not retried; a failing command leaves the rest', async t => {
  const r = rig({ '192.168.50.0/24': '192.168.50.0/24 dev eth1 proto kernel scope link src 192.168.50.1\n' }, ['replace 192.168.60.0/24'])
  r.kr.want(plan([offer(B, '192.168.50.0/24'), offer(C, '192.168.60.0/24'), offer(C, '192.168.70.0/24'), offer(C, '198.18.0.0/16')]))
  await r.settle()
  t.same(r.kr.status().map(s => `${s.prefix} ${s.state}`), ['192.168.70.0/24 installed', '198.18.0.0/16 skipped', '192.168.50.0/24 skipped'])
  t.match(r.kr.status().find(s => s.prefix === '192.168.50.0/24')?.reason, /192\.168\.50\.0\/24 from 10\.0\.0\.3 is routed by this host already \("192\.168\.50\.0\/24 dev eth1/)
  t.ok(r.lines.some(l => l.includes('route 192.168.60.0/24 via 10.0.0.4 could not be installed: RTNETLINK answers: Operation not permitted')))
  t.ok(r.lines.some(l => l.includes('holds the server\'s address 198.18.0.1')), 'the route capturing the server\'s address: logged')
  t.match(r.kr.counters, { routesInstalled: 1, routesSkipped: 2, routeCommandsFailed: 1 })
  r.calls.length = 0
  r.kr.want(plan([offer(B, '192.168.50.0/24'), offer(C, '192.168.70.0/24'), offer(C, '198.18.0.0/16')]))
  await r.settle()
  t.same(r.calls, [], 'the refused route is not tried again while offered the same way')
  t.match(r.kr.counters, { routesSkipped: 2 }, 'nor counted again')
})
