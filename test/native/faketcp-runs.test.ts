// How fake TCP cuts a batch of datagrams into TSO superpackets (native/faketcp-packet.c, ftp_run, through
// the test build's ftcpRunPlan): consecutive datagrams to one endpoint with the same length L make one
// run, a shorter one ends it (the kernel cuts every segment but the last at L), a longer one, another
// endpoint, an empty datagram, the payload limit and the segment limit each start a new run. Checked
// against an independent model of the same rule on random batches.
import t from 'tap'
import { loadTestingNative } from '../helpers/native-testing.js'

const native = loadTestingNative()
const H1 = 0xFD800001
const H2 = 0xFD800002

function plan (eps: Array<[number, number]>, lens: number[], maxLen = 65469, maxSegs = 64): number[] {
  const n = lens.length
  const addrs = new Uint32Array(2 * n)
  eps.forEach(([ip, port], i) => { addrs[2 * i] = ip; addrs[2 * i + 1] = port })
  const out = new Int32Array(Math.max(1, n))
  const runs = native.ftcpRunPlan(addrs, Int32Array.from(lens), n, maxLen, maxSegs, out)
  return [...out.subarray(0, runs)]
}

/** The rule, written out independently. */
function model (eps: Array<[number, number]>, lens: number[], maxLen: number, maxSegs: number): number[] {
  const runs: number[] = []
  let i = 0
  while (i < lens.length) {
    const L = lens[i]!
    let k = 1
    let total = L
    if (L > 0) {
      while (i + k < lens.length && k < maxSegs) {
        const l = lens[i + k]!
        const same = eps[i + k]![0] === eps[i]![0] && eps[i + k]![1] === eps[i]![1]
        if (!same || l === 0 || l > L || total + l > maxLen) break
        total += l
        k++
        if (l < L) break
      }
    }
    runs.push(k)
    i += k
  }
  return runs
}

t.test('a bulk stream: equal sizes and a shorter last one make one run', async t => {
  const e = (n: number): Array<[number, number]> => Array.from({ length: n }, () => [H1, 9000])
  t.same(plan(e(45), [...Array(44).fill(1432), 700]), [45], '44 × 1432 + 700: one superpacket')
  t.same(plan(e(4), [1432, 1432, 700, 1432]), [3, 1], 'a shorter one ends the run; the next starts another')
  t.same(plan(e(3), [700, 1432, 1432]), [1, 2], 'a longer one cannot follow (it would be cut)')
  t.same(plan(e(1), [1432]), [1], 'a lone datagram')
  t.same(plan(e(3), [0, 100, 100]), [1, 2], 'an empty datagram stands alone')
})

t.test('limits: another endpoint, the payload limit, the segment limit', async t => {
  t.same(plan([[H1, 9000], [H1, 9000], [H2, 9000], [H2, 9000]], [1000, 1000, 1000, 1000]), [2, 2], 'another flow starts a run')
  t.same(plan([[H1, 9000], [H1, 9001]], [1000, 1000]), [1, 1], 'another port is another endpoint')
  const e = Array.from({ length: 100 }, (): [number, number] => [H1, 9000])
  t.same(plan(e, Array(100).fill(1400)), [46, 46, 8], '46 × 1400 fit 65469 bytes of payload, 47 do not')
  t.same(plan(e, Array(100).fill(100)), [64, 36], 'at most 64 segments')
  t.same(plan(e.slice(0, 10), Array(10).fill(100), 65469, 4), [4, 4, 2], 'maxSegs is honoured')
})

t.test('random batches match the model', async t => {
  let seed = 12345
  const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n }
  for (let round = 0; round < 200; round++) {
    const n = 1 + rnd(120)
    const eps: Array<[number, number]> = []
    const lens: number[] = []
    for (let i = 0; i < n; i++) {
      eps.push(rnd(5) === 0 ? [H2, 9000] : [H1, 9000])
      lens.push(rnd(4) === 0 ? rnd(1500) : 1400)
    }
    const maxSegs = 1 + rnd(64)
    const maxLen = 1500 + rnd(64000)
    const got = plan(eps, lens, maxLen, maxSegs)
    if (JSON.stringify(got) !== JSON.stringify(model(eps, lens, maxLen, maxSegs))) {
      t.fail(`round ${round}: ${JSON.stringify(got)} vs ${JSON.stringify(model(eps, lens, maxLen, maxSegs))}`)
      return
    }
    t.equal(got.reduce((a, b) => a + b, 0), n)
  }
})

t.test('bad arguments are range errors', async t => {
  t.throws(() => native.ftcpRunPlan(new Uint32Array(2), Int32Array.of(-1), 1, 1000, 8, new Int32Array(1)), RangeError)
  t.throws(() => native.ftcpRunPlan(new Uint32Array(2), Int32Array.of(1), 1, 1000, 65, new Int32Array(1)), RangeError)
})
