/**
 * The control socket: JSON lines over a unix socket. Round trip, error
 * answers, stale socket replaced, live socket refused, malformed and
 * oversize input answered without harm, missing daemon reported.
 */
import t from 'tap'
import { execFile } from 'node:child_process'
import { existsSync, lstatSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  controlRequest, ControlError, MAX_REQUEST_BYTES, startControlServer, type ControlRequest
} from '../../src/cli/control-protocol.js'
import { isVpnError, VpnError } from '../../src/errors.js'
import { silentLogger } from '../../src/log.js'

/** A short temp dir: unix socket paths are limited to 107 bytes. */
function tempDir (t: { teardown(fn: () => unknown): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'lwt-ctl-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

const handler = async (req: ControlRequest): Promise<unknown> => {
  if (req.cmd === 'status') return { mode: 'server', peers: [] }
  if (req.cmd === 'echo') return req
  if (req.cmd === 'nothing') return undefined
  if (req.cmd === 'fail') throw new VpnError('ERR_AUTH_FAILED', 'no such luck')
  if (req.cmd === 'crash') throw new Error('boom')
  if (req.cmd === 'slow') return await new Promise(resolve => setTimeout(() => resolve('late'), 50))
  throw new VpnError('ERR_USAGE', `unknown control command "${req.cmd}"`)
}

/** Sends raw bytes and collects the answer lines until the server closes or `lines` arrived. */
function raw (path: string, data: string | Buffer, lines: number, end = false): Promise<{ lines: string[], closed: boolean }> {
  return new Promise((resolve, reject) => {
    const got: string[] = []
    let buf = ''
    const s = connect(path)
    const done = (closed: boolean): void => { s.destroy(); resolve({ lines: got, closed }) }
    s.on('error', (err) => { if (got.length > 0) done(true); else reject(err) })
    s.on('connect', () => { s.write(data); if (end) s.end() })
    s.on('data', (c) => {
      buf += c.toString()
      let nl
      while ((nl = buf.indexOf('\n')) !== -1) { got.push(buf.slice(0, nl)); buf = buf.slice(nl + 1) }
      if (got.length >= lines && !end) done(false)
    })
    s.on('end', () => done(true))
  })
}

t.test('the socket file never exists with a mode wider than 0700, not even between listen() and chmod', async t => {
  const path = join(tempDir(t), 'c.sock')
  const { Server } = await import('node:net')
  const listen = Server.prototype.listen
  const before = process.umask(0o022) // a usual umask, under which a plain bind() makes the socket 0755
  let seen: number | null = null
  Server.prototype.listen = function (this: InstanceType<typeof Server>, ...args: unknown[]) {
    const r = (listen as (...a: unknown[]) => unknown).apply(this, args)
    seen = lstatSync(path).mode & 0o777 // bind() ran synchronously; the chmod has not
    return r
  } as typeof Server.prototype.listen
  t.teardown(() => { Server.prototype.listen = listen; process.umask(before) })
  const srv = await startControlServer(path, handler, silentLogger)
  t.teardown(() => srv.close())
  t.not(seen, null, 'the mode right after bind was observed')
  t.equal(seen! & 0o077, 0, `no group/other bits right after creation (mode ${seen!.toString(8)})`)
  t.equal(lstatSync(path).mode & 0o777, 0o600, 'then 0600')
  t.equal(process.umask(0o022), 0o022, 'the process umask is restored')
})

t.test('round trip', async t => {
  const dir = tempDir(t)
  const path = join(dir, 'sub', 'dir', 'lwt0.1.sock')
  const srv = await startControlServer(path, handler, silentLogger)
  t.teardown(() => srv.close())
  t.ok(lstatSync(path).isSocket())
  t.equal(lstatSync(path).mode & 0o777, 0o600, 'socket is 0600')
  t.equal(statSync(join(dir, 'sub', 'dir')).mode & 0o777, 0o755, 'directory is 0755')
  t.same(await controlRequest(path, { cmd: 'status' }), { mode: 'server', peers: [] })
  t.same(await controlRequest(path, { cmd: 'echo', a: 1, b: [true] }), { cmd: 'echo', a: 1, b: [true] })
  t.equal(await controlRequest(path, { cmd: 'nothing' }), null)
})

t.test('handler errors become ok:false answers', async t => {
  const path = join(tempDir(t), 'c.sock')
  const srv = await startControlServer(path, handler, silentLogger)
  t.teardown(() => srv.close())
  for (const [cmd, code, msg] of [['fail', 'ERR_AUTH_FAILED', /no such luck/], ['crash', 'ERR_INTERNAL', /boom/], ['nope', 'ERR_USAGE', /unknown control command/]] as const) {
    try {
      await controlRequest(path, { cmd })
      t.fail(`${cmd} should reject`)
    } catch (err) {
      t.ok(err instanceof ControlError, cmd)
      t.ok(isVpnError(err, 'ERR_CONTROL_SOCKET'))
      t.equal((err as ControlError).remoteCode, code)
      t.match((err as Error).message, msg)
    }
  }
  t.same(await controlRequest(path, { cmd: 'status' }), { mode: 'server', peers: [] }, 'still serving')
})

t.test('several requests on one connection are answered in order', async t => {
  const path = join(tempDir(t), 'c.sock')
  const srv = await startControlServer(path, handler, silentLogger)
  t.teardown(() => srv.close())
  const r = await raw(path, '{"cmd":"slow"}\n{"cmd":"echo","n":2}\r\n{"cmd":"status"}', 3, true)
  t.same(r.lines.map(l => JSON.parse(l)), [
    { ok: true, result: 'late' },
    { ok: true, result: { cmd: 'echo', n: 2 } },
    { ok: true, result: { mode: 'server', peers: [] } }
  ], 'the last line needs no newline when the client half-closes')
})

t.test('malformed input is answered, never fatal', async t => {
  const path = join(tempDir(t), 'c.sock')
  const srv = await startControlServer(path, handler, silentLogger)
  t.teardown(() => srv.close())
  const r = await raw(path, 'not json\n{"nocmd":1}\n[1]\n{"cmd":7}\n\n\u0000\u00ff garbage\n{"cmd":"status"}\n', 7)
  const answers = r.lines.map(l => JSON.parse(l) as { ok: boolean, error?: { code: string, message: string } })
  t.equal(answers.length, 7)
  t.match(answers[0], { ok: false, error: { code: 'ERR_BAD_REQUEST', message: /malformed JSON/ } })
  for (const i of [1, 2, 3]) t.match(answers[i], { ok: false, error: { code: 'ERR_BAD_REQUEST', message: /"cmd"/ } })
  t.match(answers[4], { ok: false, error: { code: 'ERR_BAD_REQUEST', message: /empty request/ } })
  t.match(answers[5], { ok: false, error: { code: 'ERR_BAD_REQUEST' } })
  t.match(answers[6], { ok: true, result: { mode: 'server' } }, 'the connection still works')
})

t.test('an oversize request is cut off', async t => {
  const path = join(tempDir(t), 'c.sock')
  const srv = await startControlServer(path, handler, silentLogger)
  t.teardown(() => srv.close())
  const big = Buffer.alloc(MAX_REQUEST_BYTES + 10, 0x61)
  const r = await raw(path, big, 1, false)
  t.equal(r.lines.length, 1)
  t.match(JSON.parse(r.lines[0]!), { ok: false, error: { code: 'ERR_REQUEST_TOO_LARGE' } })
  const r2 = await raw(path, '{"cmd":"echo","pad":"' + 'x'.repeat(MAX_REQUEST_BYTES) + '"}\n', 1)
  t.match(JSON.parse(r2.lines[0]!), { ok: false, error: { code: 'ERR_REQUEST_TOO_LARGE' } }, 'also with a newline after it')
  t.same(await controlRequest(path, { cmd: 'status' }), { mode: 'server', peers: [] }, 'the server is unharmed')
})

t.test('a stale socket file is replaced', async t => {
  const path = join(tempDir(t), 'stale.sock')
  // A process that binds the socket and dies without cleaning up.
  await new Promise<void>((resolve) => {
    execFile(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`], () => resolve())
  })
  t.ok(lstatSync(path).isSocket(), 'the dead process left its socket file')
  try {
    await controlRequest(path, { cmd: 'status' })
    t.fail('nobody listens')
  } catch (err) {
    t.ok(isVpnError(err, 'ERR_DAEMON_NOT_RUNNING'), 'ECONNREFUSED is "not running"')
  }
  const srv = await startControlServer(path, handler, silentLogger)
  t.teardown(() => srv.close())
  t.same(await controlRequest(path, { cmd: 'status' }), { mode: 'server', peers: [] })
})

t.test('a live socket is refused', async t => {
  const path = join(tempDir(t), 'live.sock')
  const first = await startControlServer(path, handler, silentLogger)
  t.teardown(() => first.close())
  try {
    await startControlServer(path, handler, silentLogger)
    t.fail('a second daemon must not start')
  } catch (err) {
    t.ok(isVpnError(err, 'ERR_CONTROL_SOCKET'))
    t.equal((err as Error).message, `another daemon already listens on ${path}`)
  }
  t.same(await controlRequest(path, { cmd: 'status' }), { mode: 'server', peers: [] }, 'the first still serves')
})

t.test('a path that is not a socket is not replaced', async t => {
  const path = join(tempDir(t), 'file.sock')
  writeFileSync(path, 'precious')
  try {
    await startControlServer(path, handler, silentLogger)
    t.fail('should refuse')
  } catch (err) {
    t.ok(isVpnError(err, 'ERR_CONTROL_SOCKET'))
    t.match((err as Error).message, /exists and is not a socket/)
  }
  t.ok(existsSync(path))
})

t.test('close removes the socket file, is idempotent, and does not wait for clients', async t => {
  const path = join(tempDir(t), 'c.sock')
  const srv = await startControlServer(path, handler, silentLogger)
  const idle = connect(path)
  idle.on('error', () => {})
  await new Promise(resolve => idle.once('connect', resolve))
  const p1 = srv.close()
  const p2 = srv.close()
  t.equal(p1, p2, 'same promise')
  await p1
  t.notOk(existsSync(path), 'socket file removed')
  idle.destroy()
})

t.test('no daemon: ERR_DAEMON_NOT_RUNNING with a clear message', async t => {
  const path = join(tempDir(t), 'absent.sock')
  try {
    await controlRequest(path, { cmd: 'status' })
    t.fail('should reject')
  } catch (err) {
    t.ok(isVpnError(err, 'ERR_DAEMON_NOT_RUNNING'))
    t.equal((err as Error).message, `no lightweight-tunnel daemon is listening on ${path} — is it running? pass --control or --dev if it uses another device`)
  }
})

t.test('a daemon that never answers times out', async t => {
  const path = join(tempDir(t), 'mute.sock')
  const mute = createServer((c) => { c.on('error', () => {}); c.resume() })
  await new Promise<void>(resolve => mute.listen(path, resolve))
  t.teardown(() => new Promise<void>(resolve => { mute.close(() => resolve()) }))
  const started = Date.now()
  try {
    await controlRequest(path, { cmd: 'status' }, 200)
    t.fail('should time out')
  } catch (err) {
    t.ok(isVpnError(err, 'ERR_CONTROL_SOCKET'))
    t.match((err as Error).message, /did not answer within 200 ms/)
  }
  t.ok(Date.now() - started < 2000)
})

t.test('a garbled answer is an error, not a crash', async t => {
  const path = join(tempDir(t), 'garble.sock')
  const bad = createServer((c) => { c.on('error', () => {}); c.resume(); c.end('this is not json\n') })
  await new Promise<void>(resolve => bad.listen(path, resolve))
  t.teardown(() => new Promise<void>(resolve => { bad.close(() => resolve()) }))
  try {
    await controlRequest(path, { cmd: 'status' })
    t.fail('should reject')
  } catch (err) {
    t.ok(isVpnError(err, 'ERR_CONTROL_SOCKET'))
    t.match((err as Error).message, /malformed answer/)
  }
})
