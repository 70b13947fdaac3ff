/**
 * crypto/replay.ts: table of named sequences; each step is [counter, expected
 * accept() result] applied in order to a fresh window, plus a randomized
 * comparison against a naive model (a Set of seen counters + the window rule).
 */
import t from 'tap'
import { ReplayWindow } from '../../src/crypto/replay.js'
import { REJECT_AFTER_MESSAGES, REPLAY_WINDOW } from '../../src/wire/constants.js'

type Step = [counter: number, accepted: boolean]
const W = REPLAY_WINDOW // 2016

const CASES: Array<[string, Step[]]> = [
  ['counter 0 first', [[0, true], [0, false]]],
  ['counter 0 after others', [[5, true], [0, true], [0, false]]],
  ['in order', [[0, true], [1, true], [2, true], [3, true], [4, true]]],
  ['duplicate of the latest', [[0, true], [1, true], [1, false]]],
  ['duplicate of an older one', [[1, true], [2, true], [3, true], [2, false], [1, false]]],
  ['out of order within the window', [[10, true], [7, true], [9, true], [8, true], [7, false], [11, true], [8, false]]],
  ['reordering across a 32-bit word boundary', [[33, true], [31, true], [32, true], [30, true], [64, true], [63, true], [33, false]]],
  ['exactly at the window edge', [[W + 100, true], [100, true], [100, false]]],
  ['one past the window edge (too old)', [[W + 100, true], [99, false]]],
  ['too old after moving forward', [[0, true], [W + 1, true], [0, false], [1, true]]],
  ['big jump clears the ring', [[5, true], [1_000_000, true], [5, false], [999_999, true], [1_000_000 - W, true], [1_000_000 - W - 1, false]]],
  ['jump by exactly the ring size keeps no stale bits', [[3, true], [3 + 2048, true], [3 + 2048 - 32, true], [3 + 2048, false]]],
  ['jump of one word leaves the old word readable', [[31, true], [63, true], [31, false], [30, true]]],
  ['huge counters near the limit', [[REJECT_AFTER_MESSAGES - 2, true], [REJECT_AFTER_MESSAGES - 1, true], [REJECT_AFTER_MESSAGES - 1, false], [REJECT_AFTER_MESSAGES - 3, true]]],
  ['counter at the limit is rejected', [[REJECT_AFTER_MESSAGES, false], [2 ** 53, false], [0, true]]],
  ['negative, fractional and NaN are rejected without moving the window', [[-1, false], [1.5, false], [Number.NaN, false], [Infinity, false], [0, true], [1, true]]]
]

t.test('named cases', async t => {
  for (const [name, steps] of CASES) {
    t.test(name, async t => {
      const w = new ReplayWindow()
      steps.forEach(([c, expected], i) => t.equal(w.accept(c), expected, `step ${i}: accept(${c}) = ${expected}`))
    })
  }
})

t.test('reset forgets everything', async t => {
  const w = new ReplayWindow()
  t.ok(w.accept(5000))
  t.equal(w.highest, 5000)
  t.notOk(w.accept(5000))
  w.reset()
  t.equal(w.highest, 0)
  t.ok(w.accept(5000))
  t.notOk(w.accept(0), 'a fresh window still applies the window rule')
})

t.test('randomized against a naive model', async t => {
  let seed = 12345
  const rnd = (): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648 }
  for (let run = 0; run < 20; run++) {
    const w = new ReplayWindow()
    const seen = new Set<number>()
    let highest = 0
    let base = 0
    let mismatches = 0
    for (let i = 0; i < 5000; i++) {
      const r = rnd()
      let c: number
      if (r < 0.6) c = base + Math.floor(rnd() * 64) // mostly forward, some reordering
      else if (r < 0.9) c = Math.max(0, highest - Math.floor(rnd() * (W + 200))) // around the window edge
      else c = highest + Math.floor(rnd() * 5000) // jumps
      base = Math.max(base, c - 32)
      const expected = (c > highest || highest - c <= W) && !seen.has(c)
      if (w.accept(c) !== expected) mismatches++
      if (expected) { seen.add(c); highest = Math.max(highest, c) }
    }
    t.equal(mismatches, 0, `run ${run}`)
  }
})
