/**
 * config/reload.ts: the per-key diff between the running Config and a
 * reloaded one, and the live / restart split, one t.test per named case.
 */
import t from 'tap'
import { parseCommand } from '../../src/cli/args.js'
import type { Config } from '../../src/config/schema.js'
import { SETTINGS } from '../../src/config/schema.js'
import { APPLY, describeChanges, diffConfig, planReload } from '../../src/config/reload.js'

const ENV = { netnsId: '1', cwd: '/' }
/** argv for `cmd`: the base flags, each replaced when `extra` gives it again. */
function build (cmd: string, base: Record<string, string>, extra: string[]): Config {
  const flags: Record<string, string | null> = { ...base }
  for (let i = 0; i < extra.length; i++) {
    const f = extra[i]!
    const next = extra[i + 1]
    if (next !== undefined && !next.startsWith('--')) { flags[f] = next; i++ } else flags[f] = null
  }
  const argv = [cmd, ...Object.entries(flags).flatMap(([f, v]) => v === null ? [f] : [f, v])]
  const parsed = parseCommand(argv, ENV)
  if (parsed.kind !== 'run') throw new Error('not run')
  return parsed.config
}
/** A server config started with --max-clients 50 (the value "at start" of these cases). */
const config = (...extra: string[]): Config => build('server', { '--tun': '10.0.0.1/24', '--key': 'correct horse battery', '--max-clients': '50' }, extra)
const client = (...extra: string[]): Config => build('client', { '--remote': 'vpn.example.com:9000', '--tun': '10.0.0.2/24', '--key': 'correct horse battery' }, extra)

t.test('every setting has an apply rule; the live ones are exactly these', async t => {
  t.same(Object.keys(APPLY).sort(), [...SETTINGS].sort())
  t.same(SETTINGS.filter(k => APPLY[k] === 'live'), ['maxClients', 'keepalive', 'logLevel', 'logFormat', 'authorizedNodes', 'approveRoutes'])
})

const cases: Array<{ name: string, running: Config, next: Config, live: string[], restart: string[], effective?: Partial<Config>, line?: string }> = [
  { name: 'nothing changed', running: config(), next: config(), live: [], restart: [] },
  { name: 'an IPv6 address added to tun (tun6 is part of the tun setting)', running: config(), next: config('--tun', '10.0.0.1/24,fd00:77::1/64'), live: [], restart: ['tun'] },
  { name: 'log level', running: config(), next: config('--log-level', 'debug'), live: ['logLevel'], restart: [], effective: { logLevel: 'debug' }, line: 'logLevel info → debug' },
  { name: 'log format', running: config(), next: config('--log-format', 'json'), live: ['logFormat'], restart: [] },
  { name: 'keepalive', running: config(), next: config('--keepalive', '25'), live: ['keepalive'], restart: [], effective: { keepalive: 25 } },
  { name: 'lower max clients', running: config(), next: config('--max-clients', '3'), live: ['maxClients'], restart: [], effective: { maxClients: 3 } },
  { name: 'raise max clients back to the start value', running: config('--max-clients', '3'), next: config('--max-clients', '50'), live: ['maxClients'], restart: [], effective: { maxClients: 50 } },
  {
    name: 'raise max clients beyond the start value: up to it now, the rest at restart',
    running: config('--max-clients', '3'),
    next: config('--max-clients', '80'),
    live: ['maxClients'],
    restart: ['maxClients'],
    effective: { maxClients: 50 }
  },
  {
    name: 'mtu, listen, tun, key, dev, placement need a restart and keep their running values (a new dev moves the default state dir too)',
    running: config(),
    next: config('--mtu', '1300', '--listen', '0.0.0.0:9100', '--tun', '10.0.0.2/16', '--key', 'another secret!', '--dev', 'vpn1', '--placement', 'split'),
    live: [],
    restart: ['listen', 'tun', 'key', 'dev', 'control', 'mtu', 'placement', 'stateDir'],
    effective: { mtu: 1400, dev: 'lwt0' },
    line: 'listen [::]:9000 → 0.0.0.0:9100, tun 10.0.0.1/24 → 10.0.0.2/16, key (hidden) → (hidden), dev lwt0 → vpn1, control /run/lightweight-tunnel/lwt0.1.sock → /run/lightweight-tunnel/vpn1.1.sock, mtu 1400 → 1300, placement fused → split, stateDir /var/lib/lightweight-tunnel/lwt0 → /var/lib/lightweight-tunnel/vpn1'
  },
  { name: 'client: remote and p2p need a restart', running: client(), next: client('--remote', 'vpn2.example.com:9000', '--no-p2p'), live: [], restart: ['remote', 'p2p'] },
  { name: 'mixed: live and restart together', running: client(), next: client('--keepalive', '5', '--mtu', '1280'), live: ['keepalive'], restart: ['mtu'], effective: { keepalive: 5, mtu: 1400 } }
]

for (const c of cases) {
  t.test(c.name, async t => {
    const plan = planReload(c.running, c.next, { maxClientsAtStart: 50 })
    t.same(plan.live.map(x => x.key), c.live, 'live')
    t.same(plan.restart.map(x => x.key), c.restart, 'restart')
    if (c.effective !== undefined) t.match(plan.effective, c.effective, 'effective config')
    for (const k of SETTINGS) {
      const changedLive = plan.live.some(x => x.key === k)
      if (!changedLive) t.same(plan.effective[k], c.running[k], `${k} keeps its running value`)
    }
    t.ok(Object.isFrozen(plan.effective))
    if (c.line !== undefined) t.equal(describeChanges([...plan.live, ...plan.restart.filter(x => !plan.live.some(l => l.key === x.key))]), c.line)
  })
}

t.test('diffConfig compares by content, not identity', async t => {
  t.same(diffConfig(config(), config()), [])
  t.same(diffConfig(config(), config('--keepalive', '11')), [{ key: 'keepalive', from: 10, to: 11 }])
})
