/**
 * IPv6 against IPv4 through the whole in-process pipeline
 * (pipeline.bench.ts directCase: the real Outbound and Inbound over the
 * addon's in-memory twin), printed side by side with the ratio. Goal of
 * issue 11: IPv6 within 10 % of IPv4.
 *
 *   node dist/bench/micro/family.js [--rounds 15] [--calls 40]
 *
 * Both cases run interleaved in one process, each round timed in CPU time
 * (process.cpuUsage: on a shared 2-core machine, wall time mostly measures
 * the neighbours), and the best round of each counts.
 */
import { parseArgs } from 'node:util'
import { directCase, type PipelineCase } from './pipeline.bench.js'

function cpuNsPerPacket (c: PipelineCase, calls: number): number {
  const a = process.cpuUsage()
  for (let i = 0; i < calls; i++) c.fn()
  const b = process.cpuUsage(a)
  return (b.user + b.system) * 1000 / (calls * c.packetsPerCall)
}

function main (): number {
  const { values } = parseArgs({ options: { rounds: { type: 'string' }, calls: { type: 'string' } } })
  const rounds = Number(values.rounds ?? 15)
  const calls = Number(values.calls ?? 40)
  console.log('case                       IPv4 ns/pkt   IPv6 ns/pkt   IPv6/IPv4')
  let worst = 0
  for (const size of [64, 1400]) {
    for (const full of [false, true]) {
      const cases = { 4: directCase(size, full, 4), 6: directCase(size, full, 6) }
      for (let i = 0; i < 50; i++) { cases[4].fn(); cases[6].fn() }
      if (full && (cases[4].delivered() === 0 || cases[6].delivered() === 0)) throw new Error('a case delivers nothing: the pipeline drops its packets')
      const best = { 4: Infinity, 6: Infinity }
      for (let r = 0; r < rounds; r++) {
        for (const f of [4, 6] as const) best[f] = Math.min(best[f], cpuNsPerPacket(cases[f], calls))
      }
      const ratio = best[6] / best[4]
      worst = Math.max(worst, ratio)
      const name = `${full ? 'full (out + in)' : 'outbound'} ${size} B`
      console.log(`${name.padEnd(26)} ${best[4].toFixed(0).padStart(11)} ${best[6].toFixed(0).padStart(13)} ${ratio.toFixed(3).padStart(11)}`)
    }
  }
  console.log(`worst IPv6/IPv4: ${worst.toFixed(3)} (goal ≤ 1.10)`)
  return 0
}

process.exitCode = main()
