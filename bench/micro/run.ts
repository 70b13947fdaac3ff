/**
 * `npm run bench:micro`: the micro and pipeline benchmarks (bench/micro/*.bench.ts),
 * printed as a table and written as JSON (bench/results/micro-<time>.json, or --json FILE).
 *
 *   node dist/bench/micro/run.js [--only aead,ring,wire,pipeline,handshake,fec] [--rounds 5] [--min-ms 200] [--json FILE]
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { cpus } from 'node:os'
import * as aead from './aead.bench.js'
import * as ring from './ring.bench.js'
import * as wire from './wire.bench.js'
import * as pipeline from './pipeline.bench.js'
import * as handshake from './handshake.bench.js'
import * as fec from './fec.bench.js'
import { formatResults, type BenchResult, type TimerOptions } from './timer.js'
import { ROOT } from '../tunnels/index.js'

const SUITES: Record<string, (o: TimerOptions) => BenchResult[] | Promise<BenchResult[]>> = {
  aead: aead.run, ring: ring.run, wire: wire.run, pipeline: pipeline.run, handshake: handshake.run, fec: fec.run
}

async function main (): Promise<number> {
  const { values } = parseArgs({ options: { only: { type: 'string' }, rounds: { type: 'string' }, 'min-ms': { type: 'string' }, json: { type: 'string' }, help: { type: 'boolean', short: 'h' } } })
  if (values.help === true) { console.log(`npm run bench:micro -- [--only ${Object.keys(SUITES).join(',')}] [--rounds 5] [--min-ms 200] [--json FILE]`); return 0 }
  const opts: TimerOptions = { rounds: Number(values.rounds ?? 5), minMs: Number(values['min-ms'] ?? 200) }
  const names = values.only?.split(',') ?? Object.keys(SUITES)
  const results: BenchResult[] = []
  for (const n of names) {
    const s = SUITES[n]
    if (s === undefined) { console.error(`bench:micro: unknown suite "${n}"`); return 1 }
    process.stderr.write(`bench:micro: ${n}...\n`)
    results.push(...await s(opts))
  }
  console.log(formatResults(results))
  const file = values.json ?? join(ROOT, 'bench', 'results', `micro-${new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)}.json`)
  mkdirSync(join(file, '..'), { recursive: true })
  writeFileSync(file, JSON.stringify({ version: 1, at: new Date().toISOString(), cpus: cpus().length, node: process.version, opts, results }, null, 2) + '\n')
  console.log(`bench:micro: JSON in ${file}`)
  return 0
}

main().then((c) => { process.exitCode = c }, (err: unknown) => { console.error(err); process.exitCode = 1 })
