/**
 * `lightweight-tunnel --version`: what is running, for a bug report.
 *
 *   lightweight-tunnel 0.1.0
 *   node v20.20.2 (modules ABI 115, N-API 9), linux x64
 *   addon /usr/lib/node_modules/lightweight-tunnel/build/Release/lwt_native.node (N-API 8, gcc 12.2.0)
 *   commit 0123abcd… (git checkout, branch main)   |  (package build)  |  unknown
 *
 * The commit comes from the git checkout the command runs from (read from
 * .git without spawning git: HEAD, a worktree's gitdir file, loose refs and
 * packed-refs), else from dist/BUILD_INFO.json, which packaging/prepack.mjs
 * writes when the npm package is packed; else "unknown". Nothing here throws:
 * each line says what it could not find.
 */
import { existsSync, readFileSync, statSync } from 'node:fs'
import { isAbsolute, join, resolve } from 'node:path'
import { ADDON, loadNative } from '../dataplane/native.js'

/** dist/BUILD_INFO.json, written at pack time. */
export interface BuildInfo {
  commit: string | null
  branch: string | null
}

export const BUILD_INFO_FILE = join('dist', 'BUILD_INFO.json')

function readText (path: string): string | null {
  try { return readFileSync(path, 'utf8') } catch { return null }
}

/**
 * The commit checked out in the git repository at `root` (a clone or a git
 * worktree), or null when `root` holds no readable .git. Never spawns git.
 */
export function readGitCommit (root: string): BuildInfo | null {
  const dotGit = join(root, '.git')
  let gitDir: string
  try {
    if (statSync(dotGit).isDirectory()) gitDir = dotGit
    else {
      // A worktree or submodule: ".git" is a file "gitdir: PATH".
      const m = /^gitdir:\s*(.+?)\s*$/m.exec(readText(dotGit) ?? '')
      if (m === null) return null
      gitDir = isAbsolute(m[1]!) ? m[1]! : resolve(root, m[1]!)
    }
  } catch {
    return null
  }
  const head = readText(join(gitDir, 'HEAD'))?.trim()
  if (head === undefined || head === '') return null
  if (/^[0-9a-f]{40,64}$/.test(head)) return { commit: head, branch: null }
  const ref = /^ref:\s*(\S+)$/.exec(head)?.[1]
  if (ref === undefined) return null
  // Refs live in the common dir of a worktree (its "commondir" file), loose or packed.
  const common = readText(join(gitDir, 'commondir'))?.trim()
  const dirs = [gitDir, ...(common ? [isAbsolute(common) ? common : resolve(gitDir, common)] : [])]
  const branch = ref.startsWith('refs/heads/') ? ref.slice('refs/heads/'.length) : ref
  for (const d of dirs) {
    const loose = readText(join(d, ref))?.trim()
    if (loose !== undefined && /^[0-9a-f]{40,64}$/.test(loose)) return { commit: loose, branch }
  }
  for (const d of dirs) {
    for (const line of (readText(join(d, 'packed-refs')) ?? '').split('\n')) {
      const [sha, name] = line.split(' ')
      if (name === ref && sha !== undefined && /^[0-9a-f]{40,64}$/.test(sha)) return { commit: sha, branch }
    }
  }
  return { commit: null, branch } // a branch with no commit yet
}

/** dist/BUILD_INFO.json under `root`, or null. */
export function readBuildInfo (root: string): BuildInfo | null {
  const text = readText(join(root, BUILD_INFO_FILE))
  if (text === null) return null
  try {
    const v = JSON.parse(text) as Partial<BuildInfo>
    return { commit: typeof v.commit === 'string' ? v.commit : null, branch: typeof v.branch === 'string' ? v.branch : null }
  } catch {
    return null
  }
}

/** The "commit ..." line's value. */
export function describeCommit (root: string): string {
  const git = readGitCommit(root)
  if (git !== null && git.commit !== null) return `${git.commit} (git checkout${git.branch ? `, branch ${git.branch}` : ''})`
  const built = readBuildInfo(root)
  if (built !== null && built.commit !== null) return `${built.commit} (package build${built.branch ? ` from branch ${built.branch}` : ''})`
  return 'unknown'
}

/** The "addon ..." line's value: where it is and what it is, or why it did not load. */
export function describeAddon (root: string): string {
  const path = join(root, ADDON)
  if (!existsSync(path)) return `not built (${path} is missing; the daemon cannot run: sudo npm rebuild -g lightweight-tunnel, or reinstall; needs python3, make and g++)`
  try {
    const info = loadNative().buildInfo()
    return `${path} (N-API ${info.napiVersion}, ${info.compiler}${info.testing ? ', test build' : ''})`
  } catch (err) {
    return `${path} does not load: ${(err instanceof Error ? err.message : String(err)).split('\n')[0]!}`
  }
}

/** The whole --version text, lines ending in "\n". */
export function versionText (root: string, version: string): string {
  return [
    `lightweight-tunnel ${version}`,
    `node ${process.version} (modules ABI ${process.versions.modules}, N-API ${process.versions.napi}), ${process.platform} ${process.arch}`,
    `addon ${describeAddon(root)}`,
    `commit ${describeCommit(root)}`
  ].join('\n') + '\n'
}

