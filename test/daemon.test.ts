// daemon.ts, the composition root, in-process in a throw-away network
// namespace (helpers/in-netns.ts): runDaemon with a parsed server config runs
// until a SIGTERM-equivalent (process.emit), answers `status` on its control
// socket, and returns 0 having removed the device and the control socket,
// freed its ports and taken its signal listeners back, so a second daemon can
// run in the same process. Start-up errors (port in use, device name taken)
// return 1 with the clear error on the injected logger and leave nothing
// behind. (The CLI's view of the same errors, exit codes and messages on
// stderr, is test/e2e/robustness.test.ts.)
import t, { type Test } from 'tap'
import { execFileSync } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { existsSync } from 'node:fs'
import { deviceExists, portFree, testNetns } from './helpers/in-netns.js'
import { runDaemon, packageVersion } from '../src/daemon.js'
import { parseCommand } from '../src/cli/args.js'
import { tempStateDir } from '../src/lab/state-dirs.js'
import { controlRequest } from '../src/cli/control-protocol.js'
import { Logger } from '../src/log.js'
import type { Config } from '../src/config/schema.js'
import type { StatusReport } from '../src/control/status.js'

const ns = await testNetns(t, import.meta.url, 'daemon')

const DEV = 'lwtd0'
const PORT = 9000

function config (control: string, placement = 'inline'): Config {
  const cmd = parseCommand(['server', '--listen', `0.0.0.0:${PORT}`, '--tun', '10.92.0.1/24', '--key', 'daemon-test-key', '--dev', DEV,
    '--control', control, '--placement', placement, '--state-dir', tempStateDir('daemon-test')], { netnsId: null })
  if (cmd.kind !== 'run') throw new Error(`not a run command: ${cmd.kind}`)
  return cmd.config
}

function capture (): { log: Logger, lines: string[] } {
  const lines: string[] = []
  return { lines, log: new Logger({ level: 'info', sink: { write: (l) => { lines.push(l) } } }) }
}

function signalListeners (): { term: number, int: number } {
  return { term: process.listenerCount('SIGTERM'), int: process.listenerCount('SIGINT') }
}

async function waitStatus (control: string, running: Promise<number>): Promise<StatusReport> {
  let exited = false
  void running.then(() => { exited = true })
  const end = Date.now() + 20_000
  for (;;) {
    if (exited) throw new Error('the daemon returned before answering status')
    try { return await controlRequest(control, { cmd: 'status' }) as StatusReport } catch (err) {
      if (Date.now() > end) throw err
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
}

/** Nothing of a daemon may remain: device, control socket, UDP port and NAT-check port, signal listeners. */
async function nothingLeft (t: Test, control: string, listeners: { term: number, int: number }): Promise<void> {
  t.notOk(deviceExists(DEV), 'no TUN device left')
  t.notOk(existsSync(control), 'no control socket left')
  t.ok(await portFree(PORT), 'the UDP port is free')
  t.ok(await portFree(PORT + 1), 'the NAT-check port is free')
  t.same(signalListeners(), listeners, 'its SIGINT/SIGTERM listeners are removed')
}

if (ns !== null) {
  const control = `/run/lightweight-tunnel/test-${ns}.sock`

  for (const [signal, placement] of [['SIGTERM', 'inline'], ['SIGINT', 'fused']] as const) {
    t.test(`runs until ${signal} (placement ${placement}): status on its control socket, then exit 0 leaving nothing behind`, async t => {
      const before = signalListeners()
      const { log, lines } = capture()
      const running = runDaemon(config(control, placement), log)
      const st = await waitStatus(control, running)
      t.match(st, {
        mode: 'server',
        version: packageVersion(),
        dev: DEV,
        tunnelIp: '10.92.0.1',
        prefix: 24,
        mtu: 1400,
        listen: `0.0.0.0:${PORT}`,
        server: null,
        peers: [],
        dataplane: { placement, fastPath: true, tunOffload: /^(tso\+uso|tso|none)$/ }
      })
      t.type(st.counters.udpRxPackets, 'number', 'dataplane counters included')
      t.ok(deviceExists(DEV), 'the device exists while running')
      t.same(signalListeners(), { term: before.term + 1, int: before.int + 1 }, 'one listener per signal while running')
      const refused = await controlRequest(control, { cmd: 'reboot' }).then(() => null, (err: unknown) => err)
      t.match(refused, { remoteCode: 'ERR_USAGE' }, 'unknown commands are refused')
      t.ok(lines.some((l) => /server ready/.test(l)), 'logged "server ready"')

      process.emit(signal)
      t.equal(await running, 0, 'exit code 0')
      t.ok(lines.some((l) => l.includes(`${signal} received, shutting down`)), 'logged the signal')
      t.ok(lines.some((l) => /stopped; device and socket removed/.test(l)), 'logged the clean stop')
      await nothingLeft(t, control, before)
    })
  }

  t.test('start-up error: the UDP port is in use → 1, the error logged, nothing left behind', async t => {
    const before = signalListeners()
    const holder = createSocket('udp4')
    await new Promise<void>((resolve) => holder.bind(PORT, '0.0.0.0', () => resolve()))
    const { log, lines } = capture()
    const code = await runDaemon(config(control), log).finally(() => { holder.close() })
    t.equal(code, 1, 'exit code 1')
    t.ok(lines.some((l) => /UDP port 0\.0\.0\.0:9000 is already in use/.test(l)), 'the cause, in the log')
    t.notOk(lines.some((l) => /server ready/.test(l)), 'never ready')
    await nothingLeft(t, control, before)
  })

  t.test('start-up error: the device name is taken → 1, the error logged, nothing left behind', async t => {
    const before = signalListeners()
    execFileSync('ip', ['tuntap', 'add', 'dev', DEV, 'mode', 'tun'])
    const { log, lines } = capture()
    const code = await runDaemon(config(control), log).finally(() => { execFileSync('ip', ['link', 'del', DEV]) })
    t.equal(code, 1, 'exit code 1')
    t.ok(lines.some((l) => /the device name lwtd0 is already in use/.test(l)), 'the cause, in the log')
    await nothingLeft(t, control, before)
  })
}
