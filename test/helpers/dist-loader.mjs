// Runs the tests' TypeScript from the JavaScript tsc already wrote to dist/ (npm test compiles
// src/, bench/ and test/ with tsconfig.test.json before tap starts). Registered by tap for every
// test process (package.json tap.node-arg) instead of a TypeScript loader: loading one cost ~1.4 s
// per test file. Module URLs stay the .ts paths, so import.meta.url and relative paths are those
// of the sources.
import { register } from 'node:module'

register('./dist-hooks.mjs', import.meta.url)
