// cli/version.ts: the commit read from .git without git (a clone, a
// worktree's gitdir file, loose and packed refs, a detached HEAD), from
// dist/BUILD_INFO.json in a package, else "unknown"; the whole --version text.
import t, { type Test } from 'tap'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describeAddon, describeCommit, readBuildInfo, readGitCommit, versionText } from '../../src/cli/version.js'

const A = 'a'.repeat(40)
const B = 'b'.repeat(40)

function dir (t: Test): string {
  const d = mkdtempSync(join(tmpdir(), 'lwt-ver-'))
  t.teardown(() => rmSync(d, { recursive: true, force: true }))
  return d
}
function put (path: string, text: string): void {
  mkdirSync(join(path, '..'), { recursive: true })
  writeFileSync(path, text)
}

t.test('a clone: loose ref, packed ref, detached HEAD', async t => {
  const root = dir(t)
  put(join(root, '.git/HEAD'), 'ref: refs/heads/main\n')
  put(join(root, '.git/refs/heads/main'), `${A}\n`)
  t.same(readGitCommit(root), { commit: A, branch: 'main' })
  rmSync(join(root, '.git/refs/heads/main'))
  put(join(root, '.git/packed-refs'), `# pack-refs with: peeled fully-peeled sorted\n${B} refs/heads/main\n`)
  t.same(readGitCommit(root), { commit: B, branch: 'main' })
  put(join(root, '.git/HEAD'), `${A}\n`)
  t.same(readGitCommit(root), { commit: A, branch: null })
  t.equal(describeCommit(root), `${A} (git checkout)`)
})

t.test('a worktree: .git is a gitdir file, refs in the common dir', async t => {
  const base = dir(t)
  const root = join(base, 'wt')
  put(join(root, '.git'), `gitdir: ${join(base, 'main/.git/worktrees/wt')}\n`)
  put(join(base, 'main/.git/worktrees/wt/HEAD'), 'ref: refs/heads/feature\n')
  put(join(base, 'main/.git/worktrees/wt/commondir'), '../..\n')
  put(join(base, 'main/.git/refs/heads/feature'), `${B}\n`)
  t.same(readGitCommit(root), { commit: B, branch: 'feature' })
  t.equal(describeCommit(root), `${B} (git checkout, branch feature)`)
})

t.test('a package: BUILD_INFO.json, else unknown', async t => {
  const root = dir(t)
  t.equal(readGitCommit(root), null)
  t.equal(describeCommit(root), 'unknown')
  put(join(root, 'dist/BUILD_INFO.json'), JSON.stringify({ commit: A, branch: 'main' }))
  t.same(readBuildInfo(root), { commit: A, branch: 'main' })
  t.equal(describeCommit(root), `${A} (package build from branch main)`)
  put(join(root, 'dist/BUILD_INFO.json'), '{ not json')
  t.equal(describeCommit(root), 'unknown', 'a broken file is not a crash')
})

t.test('the addon line: missing, or loaded with its build', async t => {
  t.match(describeAddon(dir(t)), /^not built \(.*lwt_native\.node is missing/)
  const here = fileURLToPath(new URL('../../', import.meta.url))
  t.match(describeAddon(here), /lwt_native\.node \(N-API 8, .+\)$/)
})

t.test('versionText: four lines', async t => {
  const text = versionText(dir(t), '9.8.7')
  const lines = text.trimEnd().split('\n')
  t.equal(lines.length, 4)
  t.equal(lines[0], 'lightweight-tunnel 9.8.7')
  t.match(lines[1], `node ${process.version} (modules ABI ${process.versions.modules}`)
  t.match(lines[2], /^addon not built/)
  t.equal(lines[3], 'commit unknown')
})
