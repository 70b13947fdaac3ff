// The systemd service (packaging/systemd/) and install-service:
//   - the shipped unit, with ExecStart= pointing at this checkout's command,
//     passes `systemd-analyze verify` with no complaint, and its offline
//     security score is at most 2.5 ("OK"; it scores 2.0 today);
//   - install-service writes the unit, the sysusers.d file and the config
//     under --root with the stated modes, refuses an invalid config and never
//     overwrites a different one;
//   - where systemd is not running and systemd-sysusers is missing, it still
//     writes everything and prints the commands to run.
import t, { type Test } from 'tap'
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { main } from '../../src/cli/main.js'
import { installService, unitText, UNIT_SOURCE, type HostTools } from '../../src/cli/install-service.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const BIN = join(ROOT, 'bin', 'lightweight-tunnel')
const SECURITY_BAR = 2.5

function tmp (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'lwt-svc-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

function io (): { io: { stdout: { write(s: string): void }, stderr: { write(s: string): void } }, out: string[], err: string[] } {
  const out: string[] = []
  const err: string[] = []
  return { out, err, io: { stdout: { write: (s) => { out.push(s) } }, stderr: { write: (s) => { err.push(s) } } } }
}

const mode = (p: string): number => statSync(p).mode & 0o777

function serverConfig (dir: string, name = 'server.json', key = 'service-test-key-0123456789'): string {
  const p = join(dir, name)
  writeFileSync(p, JSON.stringify({ mode: 'server', listen: '0.0.0.0:9000', tun: '10.93.0.1/24', key }), { mode: 0o600 })
  return p
}

t.test('the shipped unit passes systemd-analyze verify and scores OK', async t => {
  const dir = tmp(t)
  const unit = join(dir, 'lightweight-tunnel@.service')
  writeFileSync(unit, unitText(readFileSync(join(ROOT, UNIT_SOURCE), 'utf8'), process.execPath, BIN))
  const instance = join(dir, 'lightweight-tunnel@office.service')
  const v = spawnSync('systemd-analyze', ['verify', '--man=no', instance], { encoding: 'utf8', cwd: dir })
  t.equal(v.error, undefined, 'systemd-analyze runs (.ci/run installs the systemd package)')
  t.equal(v.status, 0, `verify exit status (${v.stderr})`)
  t.equal(`${v.stdout}${v.stderr}`.trim(), '', 'verify says nothing: no unknown key, no bad value')

  const s = spawnSync('systemd-analyze', ['security', '--offline=yes', '--no-pager', instance], { encoding: 'utf8', cwd: dir })
  const m = /Overall exposure level for \S+: ([0-9.]+) (\S+)/.exec(`${s.stdout}${s.stderr}`)
  t.ok(m, 'an "Overall exposure level" line')
  t.ok(Number(m![1]) <= SECURITY_BAR, `exposure ${m![1]} ${m![2]} <= ${SECURITY_BAR}`)
  for (const line of ['AmbientCapabilities=CAP_NET_ADMIN', 'CapabilityBoundingSet=CAP_NET_ADMIN', 'Type=notify', 'Restart=on-failure',
    'RuntimeDirectory=lightweight-tunnel', 'StateDirectory=lightweight-tunnel', 'DeviceAllow=/dev/net/tun rw', 'ProtectSystem=strict',
    'NoNewPrivileges=yes', 'LoadCredential=config:/etc/lightweight-tunnel/%i.json', `ExecStart=${process.execPath} ${BIN} -c %d/config`]) {
    t.match(readFileSync(unit, 'utf8'), new RegExp(`^${line.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'), line)
  }
})

t.test('verify catches a broken unit (the check can fail)', async t => {
  const dir = tmp(t)
  const text = unitText(readFileSync(join(ROOT, UNIT_SOURCE), 'utf8'), process.execPath, BIN).replace('Restart=on-failure', 'Restart=on-failur')
  writeFileSync(join(dir, 'lightweight-tunnel@.service'), text)
  const v = spawnSync('systemd-analyze', ['verify', '--man=no', join(dir, 'lightweight-tunnel@x.service')], { encoding: 'utf8', cwd: dir })
  t.match(`${v.stdout}${v.stderr}`, /restart specifier/)
})

t.test('install-service --root writes the unit, the user and the config', async t => {
  const dir = tmp(t)
  const root = join(dir, 'root')
  const conf = serverConfig(dir)
  const c = io()
  t.equal(await main(['install-service', 'office', '-c', conf, '--root', root], c.io), 0, c.err.join(''))
  const unit = join(root, 'etc/systemd/system/lightweight-tunnel@.service')
  t.equal(mode(unit), 0o644, 'unit 0644')
  t.match(readFileSync(unit, 'utf8'), `\nExecStart=${process.execPath} ${BIN} -c %d/config\n`)
  const users = join(root, 'etc/sysusers.d/lightweight-tunnel.conf')
  t.equal(mode(users), 0o644, 'sysusers 0644')
  t.match(readFileSync(users, 'utf8'), /^u lightweight-tunnel /m)
  const installed = join(root, 'etc/lightweight-tunnel/office.json')
  t.equal(mode(installed), 0o600, 'config 0600')
  t.equal(mode(join(root, 'etc/lightweight-tunnel')), 0o700, 'config directory 0700')
  t.equal(readFileSync(installed, 'utf8'), readFileSync(conf, 'utf8'))
  const out = c.out.join('')
  t.match(out, `wrote ${unit}`)
  t.match(out, `wrote ${installed} (mode 0600, from ${conf})`)
  t.match(out, /nothing was run there/)
  t.match(out, /^ {2}systemctl enable --now lightweight-tunnel@office$/m)

  // Again with the same config: fine. With another: refused, the file kept.
  t.equal(await main(['install-service', 'office', '-c', conf, '--root', root], io().io), 0)
  const other = serverConfig(dir, 'other.json', 'another-key-0123456789abcdef')
  const c2 = io()
  t.equal(await main(['install-service', 'office', '-c', other, '--root', root], c2.io), 1)
  t.match(c2.err.join(''), `${installed} exists and differs from ${other}; not overwriting it`)
  t.equal(readFileSync(installed, 'utf8'), readFileSync(conf, 'utf8'), 'kept')
})

t.test('install-service refuses bad input before writing anything', async t => {
  const dir = tmp(t)
  const root = join(dir, 'root')
  const bad = join(dir, 'bad.json')
  writeFileSync(bad, JSON.stringify({ mode: 'server', tun: '10.93.0.1/24', mtu: 99 }))
  const cases: Array<[string, string[], RegExp]> = [
    ['no name', ['install-service', '--root', root], /expected the instance NAME/],
    ['bad name', ['install-service', 'a/b', '--root', root], /NAME must be 1 to 64 letters/],
    ['invalid config', ['install-service', 'x', '-c', bad, '--root', root], /mtu/],
    ['foreign option', ['install-service', 'x', '--mtu', '1300', '--root', root], /--mtu: not an option of install-service/],
    ['extra argument', ['install-service', 'x', 'y', '--root', root], /unexpected argument "y"/]
  ]
  for (const [name, argv, re] of cases) {
    const c = io()
    t.equal(await main(argv, c.io), 2, name)
    t.match(c.err.join(''), re, name)
  }
  t.throws(() => statSync(root), 'nothing written')
})

t.test('without systemd or systemd-sysusers: files written, the commands printed', async t => {
  const dir = tmp(t)
  const ran: string[] = []
  const host: HostTools = {
    systemdRunning: () => false,
    run: (cmd, args) => { ran.push([cmd, ...args].join(' ')); return { ok: false, missing: true, output: '' } }
  }
  const out = installService({ name: 'lab', configFile: null, root: dir, node: process.execPath, bin: BIN, packageRoot: ROOT, apply: true }, host)
  t.same(ran, [`systemd-sysusers ${join(dir, 'etc/sysusers.d/lightweight-tunnel.conf')}`], 'systemctl not run where systemd is not PID 1')
  t.match(out, /systemd is not running on this machine/)
  t.match(out, /^ {2}useradd --system --no-create-home --shell \/usr\/sbin\/nologin lightweight-tunnel$/m)
  t.match(out, /^ {2}systemctl daemon-reload$/m)
  t.match(out, /^ {2}systemctl enable --now lightweight-tunnel@lab$/m)
  t.match(out, `no config yet: write ${join(dir, 'etc/lightweight-tunnel/lab.json')}`)
  t.equal(mode(join(dir, 'etc/systemd/system/lightweight-tunnel@.service')), 0o644)

  // With systemd running, daemon-reload runs.
  const ran2: string[] = []
  installService({ name: 'lab', configFile: null, root: dir, node: process.execPath, bin: BIN, packageRoot: ROOT, apply: true }, {
    systemdRunning: () => true,
    run: (cmd, args) => { ran2.push([cmd, ...args].join(' ')); return { ok: true, missing: false, output: '' } }
  })
  t.same(ran2.map(r => r.split(' ')[0]), ['systemd-sysusers', 'systemctl'])
  t.equal(ran2[1], 'systemctl daemon-reload')
})

t.test('a node under /root or /home is named as unreadable by the service', async t => {
  const dir = tmp(t)
  const host: HostTools = { systemdRunning: () => false, run: () => ({ ok: true, missing: false, output: '' }) }
  const out = installService({ name: 'x', configFile: null, root: dir, node: '/root/.nvm/versions/node/v20/bin/node', bin: BIN, packageRoot: ROOT }, host)
  t.match(out, /warning: \/root\/\.nvm\/versions\/node\/v20\/bin\/node is under \/root, which the service cannot read/)
})

t.test('systemd-analyze is on PATH (else .ci/run must install the systemd package)', async t => {
  t.doesNotThrow(() => execFileSync('systemd-analyze', ['--version'], { stdio: 'ignore' }))
})
