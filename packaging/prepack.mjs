// npm pack / npm publish (the "prepack" script): build what the package
// ships. Installing the package then only compiles the addon (the "install"
// script, node-gyp), so a user needs no TypeScript.
//   1. dist/src/ from scratch with tsconfig.build.json (src/ only: no bench/,
//      no test helpers, no source maps);
//   2. dist/BUILD_INFO.json: the commit this package was built from, which
//      `lightweight-tunnel --version` prints when there is no .git to read.
// Run from the package root (npm does).
import { rmSync, writeFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'
import { join, resolve } from 'node:path'

const root = resolve('.')
rmSync(join(root, 'dist', 'src'), { recursive: true, force: true })
const tsc = createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc')
execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' })

const { readGitCommit, BUILD_INFO_FILE } = await import(pathToFileURL(join(root, 'dist', 'src', 'cli', 'version.js')).href)
const git = readGitCommit(root)
const info = { commit: git?.commit ?? null, branch: git?.branch ?? null }
writeFileSync(join(root, BUILD_INFO_FILE), JSON.stringify(info, null, 2) + '\n')
process.stderr.write(`prepack: dist/src built, ${BUILD_INFO_FILE} commit ${info.commit ?? 'unknown'}\n`)
