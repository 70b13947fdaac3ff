// The "prepare" script: npm runs it after `npm ci` / `npm install` in a clone
// (build the TypeScript, bench/ included, with source maps: the developer's
// build) and again during `npm pack` / `npm publish`, right after "prepack".
// There it does nothing: packaging/prepack.mjs has just built the package's
// own dist/src (no source maps, no bench/), which a rebuild would overwrite.
import { execFileSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { join, resolve } from 'node:path'

if (process.env.npm_command === 'pack' || process.env.npm_command === 'publish') process.exit(0)
const root = resolve('.')
const tsc = createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc')
execFileSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' })
