/**
 * server-name.ts with a scripted resolver: the first lookup is waited for
 * (said once, shown as `waiting`), a stop ends the wait, and while the server
 * does not answer a changed address is followed (and only then).
 */
import t from 'tap'
import { Logger } from '../src/log.js'
import { ServerName } from '../src/server-name.js'
import { ipToInt } from '../src/wire/addr.js'

function capture (): { log: Logger, lines: string[] } {
  const lines: string[] = []
  return { lines, log: new Logger({ level: 'debug', sink: { write: (l) => { lines.push(l) } } }) }
}
/** Polls `ok` every 50 ms, up to 10 s (bounded, not a timing assertion). */
async function until (ok: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 10_000
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}
const fail = (): Error => Object.assign(new Error('getaddrinfo ENOTFOUND vpn.test'), { code: 'ENOTFOUND' })

t.test('waitFirst: fails, says so once, shows why, then resolves', async t => {
  const { log, lines } = capture()
  const answers: Array<string | Error> = [fail(), '192.0.2.7']
  const n = new ServerName('vpn.test', 9000, { resolve: async () => { const a = answers.shift()!; if (a instanceof Error) throw a; return a }, log, stopped: new Promise(() => {}) })
  const first = n.waitFirst()
  await until(() => n.waiting !== null, 'waiting')
  t.equal(n.waiting, 'waiting for the server name vpn.test to resolve (ENOTFOUND); check --remote and this host\'s DNS')
  t.equal(await first, ipToInt('192.0.2.7'))
  t.equal(n.waiting, null)
  t.equal(n.ip, ipToInt('192.0.2.7'))
  t.equal(lines.filter(l => /WARN .*cannot resolve the server name vpn\.test \(ENOTFOUND\); waiting for it/.test(l)).length, 1)
  t.ok(lines.some(l => /the server name vpn\.test resolves now, to 192\.0\.2\.7/.test(l)))
})

t.test('waitFirst: a stop ends the wait with null; an answer toIp refuses is a failure', async t => {
  const { log } = capture()
  let stop: () => void = () => {}
  const stopped = new Promise<void>((resolve) => { stop = resolve })
  const n = new ServerName('vpn.test', 9000, { resolve: async () => '2001:db8::1', log, stopped })
  const first = n.waitFirst()
  await until(() => n.waiting !== null, 'waiting')
  t.match(n.waiting, /not an address this daemon can use/)
  stop()
  t.equal(await first, null)
})

t.test('follow: looks up again only while unanswered, and reports only a changed address', async t => {
  const { log } = capture()
  let answer = '192.0.2.7'
  let lookups = 0
  const n = new ServerName('vpn.test', 9000, { resolve: async () => { lookups++; return answer }, log, stopped: new Promise(() => {}), reresolveMs: 0 })
  t.teardown(() => { n.stop() })
  await n.waitFirst()
  let unanswered = false
  const moved: Array<[number, number]> = []
  n.follow(() => unanswered, (ip, port) => { moved.push([ip, port]) })
  const before = lookups
  await new Promise((resolve) => setTimeout(resolve, 1300))
  t.equal(lookups, before, 'no lookup while the server answers')
  unanswered = true
  await until(() => lookups > before, 'a new lookup')
  t.same(moved, [], 'same address: nothing to follow')
  answer = '198.51.100.9'
  await until(() => moved.length > 0, 'the move')
  t.same(moved, [[ipToInt('198.51.100.9'), 9000]], 'the new address, once')
  t.equal(n.ip, ipToInt('198.51.100.9'))
})
