// lab/tools.ts and the demo's tool check: a tool is found only as an
// executable file on PATH; the demo, given a PATH without ping, stops before
// building anything and names the command and its Debian package; a missing
// iperf3 alone is a note, not a stop.
import t, { type Test } from 'tap'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DEMO_TOOLS, aptLine, checkTools, missingTools, onPath } from '../../src/lab/tools.js'
import { runDemo } from '../../src/lab/demo.js'

/** A directory with an executable stub for each of `cmds` (and a non-executable "nft" when asked). */
function fakeBin (t: Test, cmds: string[], opts: { plainNft?: boolean } = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'lwt-tools-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  for (const c of cmds) {
    writeFileSync(join(dir, c), '#!/bin/sh\nexit 0\n')
    chmodSync(join(dir, c), 0o755)
  }
  if (opts.plainNft === true) writeFileSync(join(dir, 'nft'), 'not executable')
  return dir
}

t.test('onPath: executable files only, every PATH entry', async t => {
  const a = fakeBin(t, ['ip'])
  const b = fakeBin(t, ['ping'], { plainNft: true })
  t.ok(onPath('ip', `${a}:${b}`))
  t.ok(onPath('ping', `${a}:${b}`))
  t.notOk(onPath('nft', `${a}:${b}`), 'a file without the x bit is not a command')
  t.notOk(onPath('ip', ''), 'empty PATH')
  t.notOk(onPath('ip', undefined), 'no PATH')
})

t.test('missingTools and the apt-get line', async t => {
  const dir = fakeBin(t, ['ip', 'ss', 'nft', 'sysctl'])
  const missing = missingTools(DEMO_TOOLS, dir)
  t.same(missing.map(m => m.cmd), ['ping', 'iperf3'])
  t.equal(aptLine(missing), 'apt-get install iputils-ping iperf3')
  t.equal(aptLine(DEMO_TOOLS), 'apt-get install iproute2 nftables procps iputils-ping iperf3', 'each package once')
  t.same(missingTools(DEMO_TOOLS, fakeBin(t, DEMO_TOOLS.map(x => x.cmd))), [])
})

t.test('the demo with ping missing stops first and names iputils-ping', async t => {
  const lines: string[] = []
  const code = await runDemo({ bin: '/nonexistent', log: (l) => { lines.push(l) }, pathEnv: fakeBin(t, ['ip', 'ss', 'nft', 'sysctl', 'iperf3']) })
  t.equal(code, 1)
  t.same(lines, [
    'The demo needs commands that are not installed:',
    '  ping    (package iputils-ping): latency and reachability through the tunnel',
    'Install them (Debian/Ubuntu): apt-get install iputils-ping'
  ])
})

t.test('checkTools: a missing optional tool is a note, a missing required one a stop', async t => {
  const onlyIperf = checkTools(DEMO_TOOLS, fakeBin(t, ['ip', 'ss', 'nft', 'sysctl', 'ping']))
  t.equal(onlyIperf.ok, true)
  t.same(onlyIperf.lines, ['Note: iperf3 is not installed (package iperf3), so that part is skipped: throughput through the tunnel. apt-get install iperf3 adds it.'])
  const none = checkTools(DEMO_TOOLS, fakeBin(t, []))
  t.equal(none.ok, false)
  t.equal(none.lines.at(-1), 'Install them (Debian/Ubuntu): apt-get install iproute2 nftables procps iputils-ping iperf3')
  t.equal(none.lines.length, 2 + 5, 'one line per missing required command')
  t.same(checkTools(DEMO_TOOLS, fakeBin(t, DEMO_TOOLS.map(x => x.cmd))), { ok: true, lines: [] })
})
