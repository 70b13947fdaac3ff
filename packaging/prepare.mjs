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
let tsc
try {
  tsc = createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc')
} catch {
  // `npm install --omit=dev` in a clone: no TypeScript to compile with.
  process.stderr.write('lightweight-tunnel: TypeScript is not installed, so the clone cannot be compiled ' +
    '(npm install --omit=dev leaves out the devDependencies that build it).\n' +
    '  In a clone run npm ci (all dependencies); to install without TypeScript use the package: ' +
    'npm pack here, then npm install -g ./lightweight-tunnel-VERSION.tgz\n')
  process.exit(1)
}
execFileSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' })
