// service/notify.ts and the addon's sdNotify (native/notify.c): nothing
// without $NOTIFY_SOCKET; the sd_notify(3) lines; STATUS= kept to one line;
// a failed send logged once and never thrown; a real datagram to an abstract
// ('@') and a path socket, received by a python3 listener; bad socket paths
// rejected with RangeError.
import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createNotifier, NO_NOTIFY } from '../../src/service/notify.js'
import { loadNative } from '../../src/dataplane/native.js'
import { Logger } from '../../src/log.js'

function capture (): { log: Logger, lines: string[] } {
  const lines: string[] = []
  return { lines, log: new Logger({ level: 'info', sink: { write: (l) => { lines.push(l) } } }) }
}

t.test('no NOTIFY_SOCKET: the no-op notifier', async t => {
  t.equal(createNotifier({}, capture().log), NO_NOTIFY)
  t.equal(createNotifier({ NOTIFY_SOCKET: '' }, capture().log), NO_NOTIFY)
})

t.test('the messages, one STATUS line, failures logged once', async t => {
  const sent: Array<[string, string]> = []
  const c = capture()
  const n = createNotifier({ NOTIFY_SOCKET: '/run/systemd/notify' }, c.log, { sdNotify: (p, m) => { sent.push([p, m]); return m.length } })
  n.ready('serving on 0.0.0.0:9000')
  n.status('two\nlines')
  n.stopping('shutting down')
  t.same(sent, [
    ['/run/systemd/notify', 'READY=1\nSTATUS=serving on 0.0.0.0:9000'],
    ['/run/systemd/notify', 'STATUS=two lines'],
    ['/run/systemd/notify', 'STOPPING=1\nSTATUS=shutting down']
  ])
  let calls = 0
  const failing = createNotifier({ NOTIFY_SOCKET: '/nonexistent' }, c.log, { sdNotify: () => { calls++; throw Object.assign(new Error('sendto failed'), { code: 'ENOENT' }) } })
  t.doesNotThrow(() => { failing.ready('x'); failing.stopping('y') })
  t.equal(calls, 2, 'every send is tried')
  t.equal(c.lines.filter(l => l.includes('cannot notify the service manager')).length, 1, 'one warning')
})

t.test('sdNotify delivers to path and abstract sockets', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'lwt-notify-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'n.sock')
  const abstract = `lwt-notify-test-${process.pid}`
  const py = spawn('python3', ['-u', '-c', `
import json, socket, sys
a = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); a.bind(sys.argv[1])
b = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); b.bind("\\0" + sys.argv[2])
print(json.dumps("listening"), flush=True)
print(json.dumps(a.recv(4096).decode()), flush=True)
print(json.dumps(b.recv(4096).decode()), flush=True)
`, path, abstract], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { py.kill('SIGKILL') })
  const lines: string[] = []
  const got = new Promise<void>((resolve) => {
    createInterface({ input: py.stdout! }).on('line', (l) => { lines.push(JSON.parse(l) as string); if (lines.length === 3) resolve() })
  })
  await new Promise<void>((resolve) => { const i = setInterval(() => { if (lines.length > 0) { clearInterval(i); resolve() } }, 20) })
  const native = loadNative()
  t.equal(native.sdNotify(path, 'READY=1'), 7)
  t.equal(native.sdNotify(`@${abstract}`, 'STOPPING=1'), 10)
  await got
  t.same(lines, ['listening', 'READY=1', 'STOPPING=1'])
})

t.test('sdNotify rejects bad paths and reports send errors', async t => {
  const native = loadNative()
  t.throws(() => native.sdNotify('relative/path', 'READY=1'), RangeError)
  t.throws(() => native.sdNotify('@', 'READY=1'), RangeError)
  t.throws(() => native.sdNotify('/' + 'x'.repeat(120), 'READY=1'), RangeError)
  t.throws(() => native.sdNotify('/nonexistent-dir/notify.sock', 'READY=1'), { code: 'ENOENT', syscall: 'sendto' })
})
