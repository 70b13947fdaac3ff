/**
 * log.ts: the three line shapes (text, journal, json) with the fields of
 * docs/LOGGING.md, one shared level for a logger and its children (reload),
 * the choice of format (JOURNAL_STREAM compared with stderr's dev:inode), and
 * a sink that survives its reader going away (EPIPE: counted, never thrown).
 */
import t from 'tap'
import { fstatSync, openSync, closeSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import { Logger, StderrSink, chooseFormat, underJournald, type LogFormat } from '../src/log.js'

function capture (format: LogFormat, level: 'error' | 'warn' | 'info' | 'debug' = 'debug'): { log: Logger, lines: string[] } {
  const lines: string[] = []
  return { lines, log: new Logger({ level, format, sink: { write: (l) => { lines.push(l) } } }) }
}

t.test('json: one object per line with time, level, component, msg and the fields as keys', async t => {
  const { log, lines } = capture('json')
  const server = log.child('server', { dev: 'lwt0' })
  server.info('client registered', { peer: '10.0.0.2', endpoint: '198.51.100.7:40000', clients: 3, skipped: undefined })
  server.error('start-up failed', { err: new Error('EADDRINUSE'), msg: 'not allowed to replace msg' })
  t.equal(lines.length, 2)
  for (const l of lines) t.ok(l.endsWith('\n') && !l.slice(0, -1).includes('\n'), 'one line each')
  const a = JSON.parse(lines[0]!)
  t.match(a, { level: 'info', component: 'server', msg: 'client registered', dev: 'lwt0', peer: '10.0.0.2', endpoint: '198.51.100.7:40000', clients: 3 })
  t.notOk('skipped' in a, 'undefined fields are left out')
  t.equal(new Date(a.time).toISOString(), a.time, 'time is ISO 8601')
  const b = JSON.parse(lines[1]!)
  t.match(b, { level: 'error', msg: 'start-up failed', err: 'EADDRINUSE' }, 'an Error field is its message; msg is not replaced')
})

t.test('text: time, level, component, message, key=value (quoted when needed)', async t => {
  const { log, lines } = capture('text')
  log.child('client').warn('no answer', { server: 'vpn.example.com:9000', err: 'a b' })
  t.match(lines[0], /^\d{4}-\d\d-\d\dT[\d:.]+Z WARN  client: no answer server=vpn\.example\.com:9000 err="a b"\n$/)
})

t.test('journal: sd-daemon priority prefix, no timestamp', async t => {
  const { log, lines } = capture('journal')
  const c = log.child('client')
  c.error('e'); c.warn('w'); c.info('i'); c.debug('d', { peer: '10.0.0.3' })
  t.same(lines, ['<3>client: e\n', '<4>client: w\n', '<6>client: i\n', '<7>client: d peer=10.0.0.3\n'])
})

t.test('setLevel on the root changes every child at once (reload); enabled() follows', async t => {
  const { log, lines } = capture('text', 'info')
  const child = log.child('dataplane')
  t.notOk(child.enabled('debug'))
  child.debug('hidden')
  log.setLevel('debug')
  t.ok(child.enabled('debug'))
  child.debug('shown')
  child.setLevel('error')
  log.warn('hidden too')
  t.equal(log.level, 'error')
  t.equal(lines.length, 1)
  t.match(lines[0], /DEBUG dataplane: shown/)
})

t.test('chooseFormat: json only when asked; journal under journald; text otherwise', async t => {
  t.equal(chooseFormat('json', true), 'json')
  t.equal(chooseFormat('json', false), 'json')
  t.equal(chooseFormat('text', true), 'journal')
  t.equal(chooseFormat(null, true), 'journal')
  t.equal(chooseFormat(null, false), 'text')
  t.equal(chooseFormat('text', false), 'text')
})

t.test('underJournald: JOURNAL_STREAM must match the dev:inode of the fd', async t => {
  const fd = openSync('/dev/null', 'w')
  t.teardown(() => closeSync(fd))
  const st = fstatSync(fd, { bigint: true })
  t.ok(underJournald({ JOURNAL_STREAM: `${st.dev}:${st.ino}` }, fd), 'matching stream')
  t.notOk(underJournald({ JOURNAL_STREAM: `${st.dev}:${st.ino + 1n}` }, fd), 'another stream (stderr redirected)')
  t.notOk(underJournald({}, fd), 'not set')
  t.notOk(underJournald({ JOURNAL_STREAM: `${st.dev}:${st.ino}` }, 987654), 'a closed fd')
})

t.test('StderrSink: EPIPE stops writing and counts lost lines, never throws', async t => {
  let calls = 0
  const sink = new StderrSink(2, () => {
    calls++
    throw Object.assign(new Error('write EPIPE'), { code: 'EPIPE' })
  })
  const log = new Logger({ format: 'text', sink })
  t.doesNotThrow(() => { log.info('one'); log.info('two'); log.error('three') })
  t.equal(sink.closedBy, 'EPIPE')
  t.equal(sink.lost, 3)
  t.equal(calls, 1, 'no further writes after the reader is gone')
  t.equal(log.child('x').linesLost, 3, 'the count, as status shows it (counters.logLinesLost)')
})

t.test('StderrSink: a full non-blocking pipe (EAGAIN) drops that line only; short writes are completed', async t => {
  const out: string[] = []
  let eagain = 1000
  const sink = new StderrSink(2, (_fd, b) => {
    if (eagain-- > 0) throw Object.assign(new Error('EAGAIN'), { code: 'EAGAIN' })
    const n = Math.min(3, b.length) // short writes
    out.push(Buffer.from(b.subarray(0, n)).toString())
    return n
  })
  sink.write('dropped\n')
  t.equal(sink.lost, 1)
  t.equal(sink.closedBy, null, 'still writing')
  eagain = 0
  sink.write('kept line\n')
  t.equal(out.join(''), 'kept line\n')
})

t.test('StderrSink on a real pipe whose reader exited: the writer process keeps running', async t => {
  // A child (the compiled logger: npm run build) writes a line every ms to its stderr, a pipe we close at once.
  const script = `
    const { Logger, StderrSink } = await import(${JSON.stringify(new URL('../dist/src/log.js', import.meta.url).href)})
    const sink = new StderrSink()
    const log = new Logger({ sink })
    for (let i = 0; i < 200; i++) { log.info('line ' + i); await new Promise(r => setTimeout(r, 1)) }
    process.stdout.write(JSON.stringify({ lost: sink.lost, closedBy: sink.closedBy }))
  `
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } })
  t.teardown(() => { if (child.exitCode === null) child.kill() })
  child.stderr.destroy()
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)))
  t.equal(code, 0, 'exit 0: the lost stderr did not kill it')
  const r = JSON.parse(out) as { lost: number, closedBy: string }
  t.equal(r.closedBy, 'EPIPE')
  t.ok(r.lost > 0, 'lost lines counted')
})

t.test('under journald (JOURNAL_STREAM = the dev:inode of stderr), the daemon-side choice gives priority-prefixed lines', async t => {
  // A child whose stderr is a file; JOURNAL_STREAM is set to that file's dev:inode, as systemd would for its stream.
  const dir = t.testdir({})
  const file = join(dir, 'stderr.log')
  const fd = openSync(file, 'w')
  const st = fstatSync(fd, { bigint: true })
  const script = `
    const { Logger, chooseFormat, underJournald } = await import(${JSON.stringify(new URL('../dist/src/log.js', import.meta.url).href)})
    const log = new Logger({ level: 'debug', format: chooseFormat('text', underJournald()) }).child('client')
    log.error('key rejected'); log.warn('no answer'); log.info('registered', { peer: '10.0.0.1' }); log.debug('detail')
  `
  const run = async (stderrFd: number, env: Record<string, string>): Promise<void> => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', stderrFd], env: { ...process.env, NODE_OPTIONS: '', ...env } })
    await new Promise((resolve) => child.on('exit', resolve))
    closeSync(stderrFd)
  }
  await run(fd, { JOURNAL_STREAM: `${st.dev}:${st.ino}` })
  t.equal(readFileSync(file, 'utf8'), '<3>client: key rejected\n<4>client: no answer\n<6>client: registered peer=10.0.0.1\n<7>client: detail\n')
  await run(openSync(file, 'w'), { JOURNAL_STREAM: '1:2' })
  t.match(readFileSync(file, 'utf8'), /^\d{4}-\d\d-\d\dT\S+Z ERROR client: key rejected\n/, 'another stream: timestamped text')
})
