// The daemon as the systemd unit runs it, in a throw-away network namespace:
// an unprivileged user (nobody) with CAP_NET_ADMIN as its only, ambient
// capability (setpriv, as AmbientCapabilities= does), NOTIFY_SOCKET set.
//   - READY=1 arrives once the daemon is up: the control socket answers and
//     the device has its address (so `ip` got the capability too); the
//     STATUS= line says what it serves; SIGTERM brings STOPPING=1 and exit 0;
//   - a control socket directory the user cannot write: exit 1, the hint
//     names the fixes (install -d -o ..., --control, the service);
//   - /dev/net/tun of mode 0600: exit 1 naming the device's mode and the fix;
//   - no capability at all: exit 1, the hint names the service's
//     AmbientCapabilities= and systemd-run, and warns against setcap on node.
// The notify socket is a unix datagram socket a python3 child listens on
// (python3 is on every machine that builds the addon: node-gyp needs it).
import t, { type Test } from 'tap'
import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { testNetns } from '../helpers/in-netns.js'
import { BIN, cleanEnv } from '../helpers/daemon.js'
import { controlRequest } from '../../src/cli/control-protocol.js'

const ns = await testNetns(t, import.meta.url, 'svc')
const NOBODY = 65534

// Prints one JSON line per datagram received on the unix socket argv[1].
const LISTENER = `
import json, os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o666)
print(json.dumps("listening"), flush=True)
while True:
    print(json.dumps(s.recv(65536).decode()), flush=True)
`

interface Listener { messages: string[], next (pred: (m: string) => boolean, what: string): Promise<string> }

async function listen (t: Test, path: string): Promise<Listener> {
  const child = spawn('python3', ['-u', '-c', LISTENER, path], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { child.kill('SIGKILL') })
  const messages: string[] = []
  const waiters: Array<() => void> = []
  createInterface({ input: child.stdout! }).on('line', (l) => { messages.push(JSON.parse(l) as string); for (const w of waiters.splice(0)) w() })
  const next = async (pred: (m: string) => boolean, what: string): Promise<string> => {
    const deadline = Date.now() + 20_000
    for (;;) {
      const hit = messages.find(pred)
      if (hit !== undefined) return hit
      if (Date.now() > deadline) throw new Error(`no ${what} on ${path} within 20 s; got ${JSON.stringify(messages)}`)
      await new Promise<void>((resolve) => { waiters.push(resolve); setTimeout(resolve, 200) })
    }
  }
  await next(m => m === 'listening', 'listener start')
  return { messages, next }
}

/**
 * Starts the CLI as nobody (with CAP_NET_ADMIN as its ambient capability when
 * `caps`). tun: the mode of /dev/net/tun it sees. This machine's node may be
 * 0600 (containers; distributions make it 0666 through udev), so the daemon
 * runs in a private mount namespace with its own node (c 10 200) of that mode
 * bound over /dev/net/tun: the host's device is not touched.
 */
function startAsNobody (args: string[], env: NodeJS.ProcessEnv, caps: boolean, tun: '0666' | '0600' = '0666'): { child: ChildProcess, output: () => string, exit: Promise<number | null> } {
  const node = join(devDir, `tun-${++nodes}`)
  const priv = ['--reuid', String(NOBODY), '--regid', String(NOBODY), '--clear-groups',
    ...(caps ? ['--inh-caps=+net_admin', '--ambient-caps=+net_admin'] : ['--inh-caps=-all'])]
  const script = 'mknod -m "$1" "$2" c 10 200 && mount --bind "$2" /dev/net/tun && shift 2 && exec "$@"'
  const child = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', tun, node,
    'setpriv', ...priv, 'env', '-u', 'NODE_OPTIONS', process.execPath, BIN, ...args], { env: { ...cleanEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout!.on('data', (b: Buffer) => { out += b.toString() })
  child.stderr!.on('data', (b: Buffer) => { out += b.toString() })
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  return { child, output: () => out, exit }
}

let devDir = ''
let nodes = 0

if (ns !== null) {
  const dir = mkdtempSync(join(tmpdir(), 'lwt-svcd-'))
  chmodSync(dir, 0o755)
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const runDir = join(dir, 'run')
  mkdirSync(runDir, { mode: 0o755 })
  chownSync(runDir, NOBODY, NOBODY)
  devDir = join(dir, 'dev')
  mkdirSync(devDir, { mode: 0o700 })
  const lockedDir = join(dir, 'locked') // root's, 0755: nobody cannot create a socket in it
  mkdirSync(lockedDir, { mode: 0o755 })
  const server = (dev: string, control: string): string[] =>
    ['server', '--listen', '127.0.0.1:9100', '--tun', '10.94.0.1/24', '--key', 'service-daemon-test-key', '--dev', dev, '--control', control, '--placement', 'inline', '--state-dir', join(runDir, `state-${dev}`)]

  t.test('Type=notify: READY=1 once up, STOPPING=1 at SIGTERM, as nobody with ambient CAP_NET_ADMIN', async t => {
    const notify = join(dir, 'notify.sock')
    const l = await listen(t, notify)
    const control = join(runDir, 'svc.sock')
    const d = startAsNobody(server('lwtsv0', control), { NOTIFY_SOCKET: notify }, true)
    t.teardown(() => { d.child.kill('SIGKILL') })
    const ready = await l.next(m => m.includes('READY=1'), 'READY=1').catch((err: Error) => { throw new Error(`${err.message}\ndaemon output:\n${d.output()}`) })
    t.match(ready, /^READY=1\nSTATUS=serving on 127\.0\.0\.1:9100, lwtsv0 10\.94\.0\.1\/24$/, 'READY=1 with a STATUS= line')
    // Ready means ready: the control socket answers and ip configured the device.
    const report = await controlRequest(control, { cmd: 'status' }) as { mode: string, tunnelIp: string }
    t.equal(report.mode, 'server')
    t.equal(report.tunnelIp, '10.94.0.1')
    t.match(execFileSync('ip', ['-o', '-4', 'addr', 'show', 'dev', 'lwtsv0'], { encoding: 'utf8' }), /inet 10\.94\.0\.1\/24/, 'ip ran with the capability')
    const status = execFileSync('cat', [`/proc/${d.child.pid}/status`], { encoding: 'utf8' })
    t.match(status, new RegExp(`^Uid:\\s+${NOBODY}\\s`, 'm'), 'runs as nobody')
    t.match(status, /^CapAmb:\s+0000000000001000$/m, 'with CAP_NET_ADMIN only, ambient')
    t.notOk(l.messages.some(m => m.includes('STOPPING=1')), 'no STOPPING=1 yet')
    d.child.kill('SIGTERM')
    const stopping = await l.next(m => m.includes('STOPPING=1'), 'STOPPING=1')
    t.match(stopping, /^STOPPING=1\nSTATUS=shutting down$/)
    t.equal(await d.exit, 0, 'exit 0')
    t.notOk(existsSync(control), 'control socket removed')
    t.ok(l.messages.indexOf(ready) < l.messages.indexOf(stopping), 'READY before STOPPING')
  })

  t.test('a control directory the user cannot write: the hint names the fixes', async t => {
    const d = startAsNobody(server('lwtsv1', join(lockedDir, 'svc.sock')), {}, true)
    t.teardown(() => { d.child.kill('SIGKILL') })
    t.equal(await d.exit, 1)
    const out = d.output()
    t.match(out, `cannot listen on the control socket ${join(lockedDir, 'svc.sock')}`)
    t.match(out, `hint: this user cannot write ${lockedDir}`)
    t.match(out, `sudo install -d -o "$(id -un)" -m 0755 ${lockedDir}`)
    t.match(out, 'lightweight-tunnel install-service NAME')
  })

  t.test('no capability: the hint names the service and systemd-run, not setcap', async t => {
    const d = startAsNobody(server('lwtsv2', join(runDir, 'nocap.sock')), {}, false)
    t.teardown(() => { d.child.kill('SIGKILL') })
    t.equal(await d.exit, 1)
    const out = d.output()
    t.match(out, 'opening a TUN device needs root or CAP_NET_ADMIN')
    t.match(out, 'AmbientCapabilities=')
    t.match(out, 'systemd-run -p AmbientCapabilities=CAP_NET_ADMIN')
    t.match(out, 'do not setcap the node binary')
  })

  t.test('/dev/net/tun closed to the user (0600): the message says so and how to open it', async t => {
    const d = startAsNobody(server('lwtsv3', join(runDir, 'closed.sock')), {}, true, '0600')
    t.teardown(() => { d.child.kill('SIGKILL') })
    t.equal(await d.exit, 1)
    const out = d.output()
    t.match(out, 'this user cannot open /dev/net/tun (mode 0600, EACCES)')
    t.match(out, 'chmod 0666 /dev/net/tun')
  })
}
