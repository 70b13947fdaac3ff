// Module hooks for dist-loader.mjs (they run on Node's loader thread).
//   resolve: "./x.js" that does not exist next to its importer resolves to "./x.ts" if that exists
//            (the sources import with .js, as NodeNext wants);
//   load:    a .ts file of this project loads the source tsc wrote to dist/<same path>.js, with
//            its source map inline (stack traces show the .ts lines).
import { existsSync } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import { fileURLToPath, pathToFileURL } from 'node:url'

const ROOT = new URL('../../', import.meta.url)
const DIST = new URL('dist/', ROOT)

export async function resolve (specifier, context, next) {
  try {
    return await next(specifier, context)
  } catch (err) {
    if (err?.code !== 'ERR_MODULE_NOT_FOUND' || !specifier.endsWith('.js')) throw err
    // A main entry (a worker's file, say) has no parent: relative to the working directory.
    const ts = new URL(`${specifier.slice(0, -3)}.ts`, context.parentURL ?? pathToFileURL(`${process.cwd()}/`))
    if (ts.protocol !== 'file:' || !existsSync(ts)) throw err
    return { url: ts.href, format: 'module', shortCircuit: true }
  }
}

export async function load (url, context, next) {
  if (!url.endsWith('.ts') || !url.startsWith(ROOT.href) || url.startsWith(DIST.href)) return await next(url, context)
  const js = new URL(`${url.slice(ROOT.href.length, -3)}.js`, DIST)
  const compile = 'run the tests with npm test, or compile them first (npx tsc -p tsconfig.test.json)'
  let source
  try {
    source = await readFile(js, 'utf8')
  } catch {
    throw new Error(`${fileURLToPath(url)} has no compiled ${fileURLToPath(js)}: ${compile}`)
  }
  // An edit after the last compile would otherwise run the old code without a word.
  if ((await stat(new URL(url))).mtimeMs > (await stat(js)).mtimeMs) {
    throw new Error(`${fileURLToPath(url)} changed after ${fileURLToPath(js)} was compiled: ${compile}`)
  }
  // The source map goes inline, naming the .ts source by its URL: stack traces and tap's failure
  // excerpts then show the TypeScript lines.
  const mapRef = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(source)
  if (mapRef !== null) {
    try {
      const map = JSON.parse(await readFile(new URL(mapRef[1], js), 'utf8'))
      map.sources = [url]
      delete map.sourceRoot
      source = `${source.slice(0, mapRef.index)}//# sourceMappingURL=data:application/json;base64,${Buffer.from(JSON.stringify(map)).toString('base64')}\n`
    } catch { /* no map: stack traces name the compiled lines */ }
  }
  return { format: 'module', source, shortCircuit: true }
}
