/**
 * bench/lib/compare.ts: the regression gate's comparison of same-run ratios
 * with the committed baseline.
 */
import t from 'tap'
import { compare, failed, formatVerdicts, makeBaseline, type Baseline } from '../../bench/lib/compare.js'

const BASE: Baseline = {
  version: 1,
  tolerance: 0.15,
  recordedAt: '2026-01-01T00:00:00.000Z',
  metrics: {
    pipe: { ratio: 2 },
    tunnel: { ratio: 0.1, tolerance: 0.35, what: 'tunnel ÷ raw' },
    gone: { ratio: 1 }
  }
}

t.test('each metric: ok within tolerance, regression below, improved above, missing, new', async (t) => {
  const v = compare({ pipe: 1.8, tunnel: 0.07, gone: null, extra: 3 }, BASE)
  const by = Object.fromEntries(v.map((x) => [x.id, x]))
  t.equal(by.pipe!.status, 'ok', '-10% with 15% allowed')
  t.ok(Math.abs(by.pipe!.change! + 0.1) < 1e-12)
  t.equal(by.tunnel!.status, 'ok', '-30% with the metric\'s own 35% allowed')
  t.equal(by.gone!.status, 'missing')
  t.equal(by.extra!.status, 'new')
  t.equal(compare({ pipe: 1.6 }, BASE).find((x) => x.id === 'pipe')!.status, 'regression', '-20%')
  t.equal(compare({ pipe: 2.4 }, BASE).find((x) => x.id === 'pipe')!.status, 'improved', '+20%')
  t.equal(compare({ pipe: 2 * 0.85 }, BASE).find((x) => x.id === 'pipe')!.status, 'ok', 'exactly at the allowed drop')
  t.equal(compare({ tunnel: 0.06 }, BASE).find((x) => x.id === 'tunnel')!.status, 'regression', '-40% beyond 35%')
})

t.test('the gate fails on a regression or a metric that could not be measured, not on improvements or new metrics', async (t) => {
  t.equal(failed(compare({ pipe: 2, tunnel: 0.1, gone: 1 }, BASE)), false)
  t.equal(failed(compare({ pipe: 9, tunnel: 0.1, gone: 1, extra: 1 }, BASE)), false)
  t.equal(failed(compare({ pipe: 1, tunnel: 0.1, gone: 1 }, BASE)), true)
  t.equal(failed(compare({ pipe: 2, tunnel: 0.1 }, BASE)), true, 'gone is missing')
  t.equal(failed(compare({ pipe: 2, tunnel: 0.1, gone: Number.NaN }, BASE)), true, 'NaN counts as missing')
})

t.test('a new baseline keeps per-metric tolerances and descriptions and drops unmeasured metrics', async (t) => {
  const nb = makeBaseline({ pipe: 2.123456, tunnel: 0.2, gone: null }, BASE, 0.2, { pipe: 'pipeline ÷ calibration' }, '2026-02-02T00:00:00.000Z')
  t.same(nb, {
    version: 1,
    tolerance: 0.15,
    recordedAt: '2026-02-02T00:00:00.000Z',
    metrics: { pipe: { ratio: 2.123, what: 'pipeline ÷ calibration' }, tunnel: { ratio: 0.2, tolerance: 0.35 } }
  })
  t.equal(makeBaseline({ a: 1 }, null, 0.2, {}, 'x').tolerance, 0.2, 'default tolerance without an old baseline')
})

t.test('the table names every metric and its status', async (t) => {
  const text = formatVerdicts(compare({ pipe: 1, tunnel: 0.1, gone: 1 }, BASE))
  const lines = text.split('\n')
  t.equal(lines.length, 4)
  t.match(lines[0]!, /^metric\s+ratio\s+baseline\s+change\s+allowed drop\s+status$/)
  t.match(text, /pipe .*-50\.0%.*15%\s+REGRESSION/)
  t.match(text, /tunnel .*35%\s+OK/)
})
