/**
 * bench/lib/results.ts: the markdown table and the hand-drawn SVG chart of a
 * benchmark report (sanity: structure, escaping, no NaN, failed tunnels listed).
 */
import t from 'tap'
import { markdownTable, svgChart, type BenchReport, type TunnelResult } from '../../bench/lib/results.js'

const busy = { before: 0.1, during: 0.9, quiet: true }
function tunnel (name: string, kind: TunnelResult['kind'], mbps: number): TunnelResult {
  return {
    name, label: name, kind, status: 'ok', error: null, mtu: 1400, config: 'c',
    tcp1: { mbps, retransmits: 0, busy }, tcp4: { mbps: mbps * 1.5, retransmits: 0, busy: { ...busy, quiet: false } },
    udp64: { pps: 123_456, sentPps: 200_000, lostPct: 38, busy },
    pingIdle: { p50: 0.2, p99: 0.9, lossPct: 0, replies: 200, busy },
    pingLoad: { p50: 1.5, p99: 9, lossPct: 2, replies: 196, busy },
    cpuSecPerGB: 4.25, peakRssKb: { client: 40_960, server: 20_480 }, idleRssKb: { client: 30_720, server: 61_440 }, testErrors: {}
  }
}

const REP: BenchReport = {
  version: 1,
  startedAt: '2026-11-22T01:00:00.000Z',
  finishedAt: '2026-11-22T01:08:00.000Z',
  durationSec: 480,
  machine: { cpus: 2, model: 'AMD EPYC', kernel: '6.18', node: 'v20.20.2' },
  options: { testSeconds: 4, tests: ['tcp1', 'tcp4', 'udp64', 'ping', 'pingload'], quiet: { maxBusy: 0.3, windowMs: 2000, timeoutMs: 20000 } },
  meanBusyBefore: 0.25,
  tunnels: [
    tunnel('raw', 'limit', 15_000),
    tunnel('ours <&>', 'ours', 1_200),
    tunnel('fastd', 'peer', 600),
    { ...tunnel('tinc', 'peer', 0), status: 'failed', error: 'tincd exited | code 1\nmore', tcp1: null, tcp4: null, udp64: null, pingIdle: null, pingLoad: null }
  ]
}

t.test('markdown: a header, a separator and one row per tunnel', async (t) => {
  const lines = markdownTable(REP).split('\n')
  t.equal(lines.length, 2 + REP.tunnels.length)
  const cols = lines[0]!.split('|').length
  for (const l of lines) t.equal(l.split('|').length, cols, `same number of columns: ${l}`)
  t.match(lines[3]!, /\| ours <&> \| 1200 \| 1800\* \| 123\.5 \| 0\.200 \/ 0\.900 \| 1\.500 \/ 9\.000 \(2% lost\) \| 4\.25 \| 30\.0 \| 40\.0 \| 10 \|/, 'client RSS idle is the client\'s, not the largest')
  const old = markdownTable({ ...REP, tunnels: [{ ...REP.tunnels[1]!, idleRssKb: undefined }] }).split('\n')[2]!
  t.match(old, /\| 4\.25 \| – \| 40\.0 \|/, 'a report without idle RSS shows a dash')
  t.match(lines[5]!, /\| tinc \| failed: tincd exited \/ code 1 \|/, 'the first line of the error, pipes replaced')
})

t.test('svg: one document, escaped labels, bars for every measured tunnel, no NaN', async (t) => {
  const svg = svgChart(REP)
  t.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" width="\d+" height="\d+"/)
  t.ok(svg.trimEnd().endsWith('</svg>'))
  t.equal(svg.match(/<svg/g)!.length, 1)
  t.notMatch(svg, /NaN|undefined|Infinity/)
  t.match(svg, /ours &lt;&amp;&gt;/)
  t.notMatch(svg, /ours <&>/)
  // 3 measured tunnels × (2 throughput bars + 2 latency bars) + the background.
  t.equal(svg.match(/<rect /g)!.length, 1 + 3 * 4)
  t.match(svg, /not measured: tinc: failed/)
  // The raw link is off the tunnels' scale: its bar is capped to the panel and marked as broken.
  const widths = [...svg.matchAll(/<rect x="\d+" y="\d+" width="([\d.]+)" height="12" fill="#2b6cb0"/g)].map((m) => Number(m[1]))
  t.equal(widths.length, 3)
  t.ok(widths[0]! >= widths[1]! && widths[1]! > widths[2]!, 'bars ordered like the values')
  t.match(svg, /<path d="M/)
})

t.test('svg of a report where nothing ran is still a valid document', async (t) => {
  const svg = svgChart({ ...REP, tunnels: [REP.tunnels[3]!] })
  t.match(svg, /^<svg/)
  t.notMatch(svg, /NaN/)
})
