// daemon.ts at run time, in-process in a throw-away network namespace
// (helpers/in-netns.ts): SIGHUP reloads the -c file with a live session
// (live keys applied, the others named as needing a restart, an invalid file
// keeps the running config, flags only → nothing to reload); a client whose
// --remote name does not resolve yet waits (status "resolving") and starts
// once it does, and follows the name to a new address while the server does
// not answer (the resolver is injected: DaemonOptions.resolve); every exit
// (SIGTERM, a vanished TUN device, an uncaught exception) removes the control
// socket.
import t, { type Test } from 'tap'
import { execFileSync } from 'node:child_process'
import { existsSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { testNetns } from './helpers/in-netns.js'
import { runDaemon, type DaemonOptions } from '../src/daemon.js'
import { parseCommand } from '../src/cli/args.js'
import { tempStateDir } from '../src/lab/state-dirs.js'
import { controlRequest } from '../src/cli/control-protocol.js'
import { Logger } from '../src/log.js'
import type { StatusReport } from '../src/control/status.js'

const ns = await testNetns(t, import.meta.url, 'drt')

const KEY = 'daemon-runtime-test-key'

function capture (): { log: Logger, lines: string[] } {
  const lines: string[] = []
  return { lines, log: new Logger({ level: 'info', sink: { write: (l) => { lines.push(l) } } }) }
}

function parse (argv: string[]): Extract<ReturnType<typeof parseCommand>, { kind: 'run' }> {
  const cmd = parseCommand([...argv, '--state-dir', tempStateDir('runtime')], { netnsId: null })
  if (cmd.kind !== 'run') throw new Error(`not a run command: ${cmd.kind}`)
  return cmd
}

async function status (control: string): Promise<StatusReport> {
  return await controlRequest(control, { cmd: 'status' }) as StatusReport
}

/** Polls until `ok(status)` (bounded: 20 s); fails when the daemon returned first. */
async function waitFor (control: string, running: Promise<number>, ok: (s: StatusReport) => boolean, what: string): Promise<StatusReport> {
  let exited = false
  void running.then(() => { exited = true })
  const end = Date.now() + 20_000
  let last: unknown = null
  for (;;) {
    if (exited) throw new Error(`the daemon returned before: ${what}`)
    try {
      const s = await status(control)
      last = s
      if (ok(s)) return s
    } catch (err) { last = err }
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}; last: ${JSON.stringify(last)}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

async function waitLine (lines: string[], re: RegExp, what: string): Promise<void> {
  const end = Date.now() + 20_000
  while (!lines.some(l => re.test(l))) {
    if (Date.now() > end) throw new Error(`timed out waiting for the log line: ${what}\n${lines.join('')}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

function deviceExists (dev: string): boolean {
  return execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).split('\n').some((l) => l.split(':')[1]?.trim() === dev)
}

/** Runs a daemon; the test's teardown stops it (SIGTERM to every in-process daemon) if it is still running. */
function start (t: Test, argv: string[], opts: DaemonOptions = {}): { running: Promise<number>, lines: string[], control: string } {
  const cmd = parse(argv)
  const { log, lines } = capture()
  const running = runDaemon(cmd.config, log, { reload: cmd.reload, ...opts })
  let done = false
  void running.finally(() => { done = true })
  t.teardown(async () => { if (!done) { process.emit('SIGTERM'); await running } })
  return { running, lines, control: cmd.config.control }
}

if (ns !== null) {
  const dir = mkdtempSync(join(tmpdir(), 'lwt-drt-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const sock = (name: string): string => `/run/lightweight-tunnel/drt-${ns}-${name}.sock`

  t.test('SIGHUP reloads the server config file with a live client session', async t => {
    const file = join(dir, 'server.json')
    const serverJson = { mode: 'server', listen: '127.0.0.1:9000', tun: '10.93.0.1/24', key: KEY, dev: 'lwtr0', control: sock('rs'), placement: 'inline', keepalive: 10, maxClients: 5 }
    writeFileSync(file, JSON.stringify(serverJson), { mode: 0o600 })
    const hupListeners = process.listenerCount('SIGHUP')
    const srv = start(t, ['-c', file])
    await waitFor(srv.control, srv.running, s => s.state === 'running', 'server up')
    const cli = start(t, ['client', '--remote', '127.0.0.1:9000', '--tun', '10.93.0.2/24', '--key', KEY, '--dev', 'lwtr1', '--control', sock('rc'), '--keepalive', '1'])
    await waitFor(cli.control, cli.running, s => s.state === 'registered', 'client registered')
    const before = await waitFor(srv.control, srv.running, s => s.peers.length === 1, 'the server lists the client')
    const peerId = before.peers[0]!.peerId

    // Live: log level, keepalive, max clients; needs a restart: mtu and dev.
    writeFileSync(file, JSON.stringify({ ...serverJson, logLevel: 'debug', keepalive: 20, maxClients: 2, mtu: 1300, dev: 'lwtr9' }))
    process.emit('SIGHUP')
    await waitLine(srv.lines, /SIGHUP: config reloaded; applied/, 'applied')
    t.ok(srv.lines.some(l => /INFO {2}main: SIGHUP: config reloaded; applied maxClients 5 → 2, keepalive 10 → 20, logLevel info → debug/.test(l)), 'the live changes, in one line')
    const restart = srv.lines.filter(l => /need a restart/.test(l))
    t.equal(restart.length, 1, 'one line names what needs a restart')
    t.match(restart[0], /WARN {2}main: SIGHUP: these changes need a restart and are not applied \(the running values stay\): dev lwtr0 → lwtr9, mtu 1400 → 1300/)
    t.ok(cli.lines.some(l => /started without a config file \(-c\), so there is nothing to reload; running on/.test(l)), 'the flags-only client says there is nothing to reload')
    const after = await status(srv.control)
    t.equal(after.mtu, 1400, 'mtu kept')
    t.equal(after.dev, 'lwtr0', 'device kept')
    t.equal(after.peers.length, 1, 'the client is still registered on the server')
    t.equal(after.peers[0]!.peerId, peerId, 'the same registration (no session dropped)')
    t.equal((await status(cli.control)).state, 'registered', 'the client never left')

    // An invalid file: every problem logged, the running config kept.
    const errorsBefore = srv.lines.length
    writeFileSync(file, JSON.stringify({ ...serverJson, mtu: '1400', colour: 'blue' }))
    process.emit('SIGHUP')
    await waitLine(srv.lines, /the running config is kept/, 'refused reload')
    const refused = srv.lines.slice(errorsBefore)
    t.ok(refused.some(l => /ERROR main: SIGHUP: the config file has 2 problems; the running config is kept/.test(l)))
    t.ok(refused.some(l => /reload: .*"mtu": must be a number/.test(l)), 'the mtu problem')
    t.ok(refused.some(l => /reload: .*unknown key "colour"/.test(l)), 'the unknown key')
    // A JSON syntax error, too.
    writeFileSync(file, '{ "mode": "server", ')
    process.emit('SIGHUP')
    await waitLine(srv.lines, /reload: .*syntax error at line 1/, 'syntax error')
    t.equal((await status(srv.control)).peers.length, 1, 'still serving the client')

    process.emit('SIGTERM')
    t.equal(await srv.running, 0)
    t.equal(await cli.running, 0)
    t.notOk(existsSync(srv.control), 'server control socket removed')
    t.notOk(existsSync(cli.control), 'client control socket removed')
    t.equal(process.listenerCount('SIGHUP'), hupListeners, 'SIGHUP listeners taken back')
  })

  t.test('a --remote name that does not resolve yet: wait (status "resolving"), start once it does, follow a new address', async t => {
    const srv = start(t, ['server', '--listen', '127.0.0.1:9000', '--tun', '10.94.0.1/24', '--key', KEY, '--dev', 'lwtn0', '--control', sock('ns'), '--placement', 'inline'])
    await waitFor(srv.control, srv.running, s => s.state === 'running', 'server up')
    // The name fails twice (DNS not up yet), then points at an address where nobody answers, then at the server.
    const answers: Array<string | Error> = [
      Object.assign(new Error('getaddrinfo EAI_AGAIN vpn.test'), { code: 'EAI_AGAIN' }),
      Object.assign(new Error('getaddrinfo EAI_AGAIN vpn.test'), { code: 'EAI_AGAIN' }),
      '127.0.0.3',
      '127.0.0.1'
    ]
    const asked: string[] = []
    const resolve = async (host: string): Promise<string> => {
      asked.push(host)
      const a = answers.length > 1 ? answers.shift()! : answers[0]!
      if (a instanceof Error) throw a
      return a
    }
    const cli = start(t, ['client', '--remote', 'vpn.test:9000', '--tun', '10.94.0.2/24', '--key', KEY, '--dev', 'lwtn1', '--control', sock('nc')], { resolve, reresolveMs: 500 })
    const waiting = await waitFor(cli.control, cli.running, s => s.state === 'resolving', 'resolving')
    t.match(waiting.problem, /^waiting for the server name vpn\.test to resolve \(EAI_AGAIN\)/)
    t.equal(waiting.server, 'vpn.test:9000')
    t.ok(deviceExists('lwtn1'), 'the device is up while it waits')
    await waitFor(cli.control, cli.running, s => s.server === '127.0.0.3:9000', 'resolved to the first address')
    const reg = await waitFor(cli.control, cli.running, s => s.state === 'registered', 'followed the name to the server')
    t.equal(reg.server, '127.0.0.1:9000')
    t.equal(cli.lines.filter(l => /cannot resolve the server name vpn\.test \(EAI_AGAIN\); waiting for it/.test(l)).length, 1, 'the wait is logged once')
    t.ok(cli.lines.some(l => /the server name vpn\.test resolves now, to 127\.0\.0\.3/.test(l)))
    t.ok(cli.lines.some(l => /the server name vpn\.test now resolves to 127\.0\.0\.1 \(was 127\.0\.0\.3\); registering there/.test(l)))
    t.ok(asked.every(h => h === 'vpn.test'))
    process.emit('SIGTERM')
    t.equal(await cli.running, 0)
    t.equal(await srv.running, 0)
  })

  t.test('an IP literal is never looked up; a stop while waiting for a name is a clean stop', async t => {
    let lookups = 0
    const never = async (): Promise<string> => { lookups++; throw Object.assign(new Error('no DNS'), { code: 'EAI_AGAIN' }) }
    const lit = start(t, ['client', '--remote', '127.0.0.1:9999', '--tun', '10.95.0.2/24', '--key', KEY, '--dev', 'lwtl0', '--control', sock('lit')], { resolve: never, reresolveMs: 100 })
    await waitFor(lit.control, lit.running, s => s.state === 'registering', 'registering')
    await new Promise((resolve) => setTimeout(resolve, 1500))
    t.equal(lookups, 0, 'no look-up for 127.0.0.1, even while the server does not answer')
    process.emit('SIGTERM')
    t.equal(await lit.running, 0)
    const name = start(t, ['client', '--remote', 'nowhere.test:9000', '--tun', '10.95.0.2/24', '--key', KEY, '--dev', 'lwtl1', '--control', sock('name')], { resolve: never })
    await waitFor(name.control, name.running, s => s.state === 'resolving', 'resolving')
    process.emit('SIGTERM')
    t.equal(await name.running, 0, 'exit 0')
    t.notOk(existsSync(name.control), 'socket removed')
    t.notOk(deviceExists('lwtl1'), 'device removed')
  })

  t.test('exits remove the control socket: the TUN device vanishes; an uncaught exception', async t => {
    const gone = start(t, ['server', '--listen', '127.0.0.1:9100', '--tun', '10.96.0.1/24', '--key', KEY, '--dev', 'lwtg0', '--control', sock('gone'), '--placement', 'fused'])
    await waitFor(gone.control, gone.running, s => s.state === 'running', 'up')
    execFileSync('ip', ['link', 'del', 'lwtg0'])
    t.equal(await gone.running, 1, 'exit 1')
    t.ok(gone.lines.some(l => /the TUN device lwtg0 was removed/.test(l)), 'the cause is logged')
    t.notOk(existsSync(gone.control), 'control socket removed')

    const uncaughtListeners = process.listenerCount('uncaughtException')
    const boom = start(t, ['server', '--listen', '127.0.0.1:9200', '--tun', '10.96.0.1/24', '--key', KEY, '--dev', 'lwtg1', '--control', sock('boom'), '--placement', 'inline'])
    await waitFor(boom.control, boom.running, s => s.state === 'running', 'up')
    process.emit('uncaughtException', new Error('a bug somewhere'))
    t.equal(await boom.running, 1, 'exit 1')
    t.ok(boom.lines.some(l => /internal error \(a bug: please report it\); shutting down/.test(l)))
    t.notOk(existsSync(boom.control), 'control socket removed')
    t.notOk(deviceExists('lwtg1'), 'device removed')
    t.equal(process.listenerCount('uncaughtException'), uncaughtListeners, 'its uncaughtException listener is taken back')
  })
  t.test('strict mode: --authorized-nodes admits the listed key; SIGHUP with the key gone revokes it at once', async t => {
    const cli = start(t, ['client', '--remote', '127.0.0.1:9300', '--tun', '10.97.0.2/24', '--key', KEY, '--dev', 'lwta1', '--control', sock('ac'), '--keepalive', '1'])
    const pub = (await waitFor(cli.control, cli.running, s => s.nodeKey !== undefined, 'the client\'s key')).nodeKey!.publicKey
    const list = join(dir, 'authorized-nodes')
    writeFileSync(list, `# the one admitted client\n${pub} 10.97.0.2\n`)
    const file = join(dir, 'strict.json')
    writeFileSync(file, JSON.stringify({ mode: 'server', listen: '127.0.0.1:9300', tun: '10.97.0.1/24', key: KEY, dev: 'lwta0', control: sock('as'), placement: 'inline', authorizedNodes: list }), { mode: 0o600 })
    const srv = start(t, ['-c', file])
    await waitFor(cli.control, cli.running, s => s.state === 'registered', 'the listed client registers')
    t.ok(srv.lines.some(l => /strict mode: 1 node admitted by/.test(l)), 'the server says how many are admitted')
    // The client counts itself registered at the server's answer; the server binds the address at its Confirm, a moment later.
    await waitFor(srv.control, srv.running, s => s.peers.some(p => p.tunnelIp === '10.97.0.2'), 'the server lists the client')
    writeFileSync(list, '# nobody\n')
    process.emit('SIGHUP')
    await waitLine(srv.lines, /is no longer listed in .*: revoked, 10\.97\.0\.2 freed, disconnected/, 'revoked on reload')
    const st = await waitFor(cli.control, cli.running, s => s.state === 'rejected', 'the client refused')
    t.match(st.problem ?? '', /the server's operator revoked this node's key/)
    t.equal((await status(srv.control)).peers.length, 0, 'the server holds no client')
    process.emit('SIGTERM')
    t.equal(await srv.running, 0)
    t.equal(await cli.running, 0)
  })
}
