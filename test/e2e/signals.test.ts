// The real command in a throw-away network namespace (helpers/in-netns.ts):
// a daemon whose stderr reader goes away (`… 2>&1 | head -1`) keeps running;
// kill -HUP reloads its -c file (no exit 129, no stale socket); SIGTERM then
// exits 0 and removes the control socket. What the reload applies is
// test/daemon-runtime.test.ts; this checks the process as a user runs it.
import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { testNetns } from '../helpers/in-netns.js'
import { BIN, KEY, NODE_CMD, cleanEnv } from '../helpers/daemon.js'
import { controlRequest } from '../../src/cli/control-protocol.js'
import type { StatusReport } from '../../src/control/status.js'

const ns = await testNetns(t, import.meta.url, 'sig')

async function waitStatus (control: string, ok: (s: StatusReport) => boolean, what: string): Promise<StatusReport> {
  const end = Date.now() + 20_000
  for (;;) {
    try {
      const s = await controlRequest(control, { cmd: 'status' }) as StatusReport
      if (ok(s)) return s
    } catch (err) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${(err as Error).message}`)
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

if (ns !== null) {
  t.test('stderr reader gone, then SIGHUP, then SIGTERM: the daemon runs on, reloads, and exits 0 leaving no socket', async t => {
    const dir = mkdtempSync(join(tmpdir(), 'lwt-sig-'))
    t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
    const control = `/run/lightweight-tunnel/sig-${ns}.sock`
    const file = join(dir, 'server.json')
    const cfg = { mode: 'server', listen: '127.0.0.1:9000', tun: '10.98.0.1/24', key: KEY, dev: 'lwts0', control, keepalive: 10, stateDir: join(dir, 'state') }
    writeFileSync(file, JSON.stringify(cfg), { mode: 0o600 })
    const child = spawn(NODE_CMD[0], [...NODE_CMD.slice(1), BIN, '-c', file], { env: cleanEnv(), stdio: ['ignore', 'ignore', 'pipe'] })
    let exit: { code: number | null, signal: string | null } | null = null
    const exited = new Promise<void>((resolve) => child.on('exit', (code, signal) => { exit = { code, signal }; resolve() }))
    t.teardown(async () => { if (exit === null) { child.kill('SIGKILL'); await exited } rmSync(control, { force: true }) })
    // Like `| head -1`: read the first line, then close the pipe.
    const first = await new Promise<string>((resolve) => {
      let buf = ''
      child.stderr!.on('data', (d: Buffer) => { buf += d.toString(); if (buf.includes('\n')) resolve(buf.split('\n')[0]!) })
    })
    child.stderr!.destroy()
    t.match(first, /INFO {2}main: lightweight-tunnel \S+ starting mode=server/)
    await waitStatus(control, s => s.state === 'running', 'the server to run')

    writeFileSync(file, JSON.stringify({ ...cfg, keepalive: 20, logLevel: 'debug', mtu: 1300 }))
    child.kill('SIGHUP') // it logs the reload: writing to the closed pipe must not kill it either
    await new Promise((resolve) => setTimeout(resolve, 1000))
    t.equal(exit, null, 'still running after SIGHUP and writes to a closed stderr')
    const st = await waitStatus(control, () => true, 'status after SIGHUP')
    t.equal(st.mtu, 1400, 'mtu needs a restart: kept')
    t.ok(st.counters.logLinesLost! > 0, `the lines it could not write are counted (${st.counters.logLinesLost})`)

    child.kill('SIGTERM')
    await exited
    t.same(exit, { code: 0, signal: null }, 'exit 0 after SIGTERM')
    t.notOk(existsSync(control), 'the control socket is removed')
  })
}
