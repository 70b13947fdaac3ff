// The npm package, as a user gets it: `npm pack` in a copy of this checkout
// (prepack compiles src/ into dist/src and writes dist/BUILD_INFO.json), then
// `npm install -g --prefix DIR TARBALL` (only the addon is compiled: no
// TypeScript at install) and the installed command run from DIR/bin.
// Checks the tarball's file list (dist/src, the unit, the completion script
// and the addon's sources in; test/, bench/, .ci/, native/testing.c, source
// maps and the build scripts out), that the install built only the
// production addon, and --version, --help, completion and install-service
// of the installed command. Works offline: the package has no runtime
// dependency.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { cleanEnv, NODE_CMD } from '../helpers/daemon.js'
import { readGitCommit } from '../../src/cli/version.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }

const work = mkdtempSync(join(tmpdir(), 'lwt-pack-'))
t.teardown(() => rmSync(work, { recursive: true, force: true }))

// A copy of the checkout, so packing does not rebuild this tree's dist/ under other tests' feet.
const tree = join(work, 'tree')
for (const e of ['package.json', 'tsconfig.json', 'tsconfig.build.json', 'README.md', 'binding.gyp', 'bin', 'src', 'native', 'packaging', 'docs']) {
  cpSync(join(ROOT, e), join(tree, e), { recursive: true })
}
symlinkSync(join(ROOT, 'node_modules'), join(tree, 'node_modules'))
if (existsSync(join(ROOT, '.git'))) symlinkSync(join(ROOT, '.git'), join(tree, '.git'))

const env = { ...cleanEnv(), npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' }
// tap puts its loader back into NODE_OPTIONS of every child: start children through NODE_CMD (env -u NODE_OPTIONS).
const npm = (args: string[], cwd: string): string => execFileSync(NODE_CMD[0], [...NODE_CMD.slice(1), 'npm', ...args], { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 180_000 })

const out = join(work, 'out')
mkdirSync(out)
npm(['pack', '--pack-destination', out], tree)
const tarball = join(out, readdirSync(out).find(f => f.endsWith('.tgz'))!)
const files = execFileSync('tar', ['tzf', tarball], { encoding: 'utf8' }).split('\n').filter(Boolean).map(f => f.replace(/^package\//, ''))

t.test('the tarball holds the compiled program and nothing of the development tree', async t => {
  for (const f of ['bin/lightweight-tunnel', 'dist/src/cli/main.js', 'dist/src/daemon.js', 'dist/src/workers/dataplane-worker.js', 'dist/BUILD_INFO.json',
    'binding.gyp', 'native/module.c', 'native/notify.c', 'native/napi_util.h', 'packaging/systemd/lightweight-tunnel@.service',
    'packaging/systemd/lightweight-tunnel.sysusers', 'packaging/completion/lightweight-tunnel.bash', 'README.md', 'package.json']) {
    t.ok(files.includes(f), `has ${f}`)
  }
  for (const [what, re] of [['test/', /^test\//], ['bench/', /^bench\//], ['.ci/', /^\.ci\//], ['dist/bench', /^dist\/bench\//],
    ['native/testing.*', /^native\/testing\./], ['source maps', /\.map$/], ['TypeScript sources', /\.ts$/],
    ['the build scripts', /^packaging\/(prepack|prepare)\.mjs$/], ['build/', /^build\//], ['node_modules/', /^node_modules\//]] as const) {
    t.same(files.filter(f => re.test(f)), [], `no ${what}`)
  }
})

const prefix = join(work, 'prefix')
npm(['install', '-g', '--prefix', prefix, tarball], work)
const installed = join(prefix, 'lib', 'node_modules', 'lightweight-tunnel')
const cmd = join(prefix, 'bin', 'lightweight-tunnel')
const run = (args: string[]): string => execFileSync(NODE_CMD[0], [...NODE_CMD.slice(1), cmd, ...args], { env, encoding: 'utf8' })

t.test('the install built the production addon only, without TypeScript', async t => {
  t.ok(existsSync(join(installed, 'build', 'Release', 'lwt_native.node')), 'lwt_native.node built')
  t.notOk(existsSync(join(installed, 'build', 'Release', 'lwt_native_testing.node')), 'no test addon')
  t.notOk(existsSync(join(prefix, 'lib', 'node_modules', 'typescript')), 'no typescript installed')
  t.same(readdirSync(join(prefix, 'lib', 'node_modules')), ['lightweight-tunnel'], 'no other package')
})

t.test('--version of the installed command', async t => {
  const lines = run(['--version']).trimEnd().split('\n')
  t.equal(lines[0], `lightweight-tunnel ${pkg.version}`)
  t.equal(lines[1], `node ${process.version} (modules ABI ${process.versions.modules}, N-API ${process.versions.napi}), ${process.platform} ${process.arch}`)
  t.match(lines[2], new RegExp(`^addon ${join(installed, 'build', 'Release', 'lwt_native.node').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(N-API 8, .+\\)$`))
  t.notMatch(lines[2], /test build/)
  const git = readGitCommit(ROOT)
  if (git?.commit) t.equal(lines[3], `commit ${git.commit} (package build${git.branch ? ` from branch ${git.branch}` : ''})`, 'the commit packed from')
  else t.equal(lines[3], 'commit unknown')
})

t.test('--help, completion and install-service of the installed command', async t => {
  const help = run(['--help'])
  t.match(help, /^SYNOPSIS$/m)
  t.match(help, /lightweight-tunnel install-service NAME/)
  t.equal(run(['completion', 'bash']), readFileSync(join(ROOT, 'packaging', 'completion', 'lightweight-tunnel.bash'), 'utf8'))
  const root = join(work, 'root')
  t.match(run(['install-service', 'office', '--root', root]), /systemctl enable --now lightweight-tunnel@office/)
  t.match(readFileSync(join(root, 'etc/systemd/system/lightweight-tunnel@.service'), 'utf8'),
    `\nExecStart=${process.execPath} ${join(installed, 'bin', 'lightweight-tunnel')} -c %d/config\n`)
})
