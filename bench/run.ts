/**
 * `npm run bench`: the end-to-end benchmark harness.
 *
 * 0. Installs the Debian packages of missing peer tunnels (apt-get; --no-install skips).
 * 1. Builds a lab (src/lab/topology.ts): the server host S and client hosts
 *    A and B on one bridge, no NAT.
 * 2. For each tunnel (bench/tunnels): generate its config and keys, start it,
 *    wait for a ping through it, then run the tests, each after waiting for a
 *    quiet machine (the busy share is recorded with every figure):
 *      tcp1      iperf3 TCP, 1 stream, A → S; daemons' CPU s per GB carried
 *      tcp4      iperf3 TCP, 4 streams
 *      udp64     iperf3 UDP, 64-byte payloads, unlimited rate: packets/s received
 *      ping      200 pings, 10 ms apart: RTT p50/p99 idle
 *      pingload  the same during a 1-stream TCP transfer
 *    then read each daemon's peak RSS and stop it. A tunnel that is missing
 *    or fails to start is recorded as such; the run goes on.
 * 3. Writes bench/results/bench-<time>.{json,md,svg} (and docs/BENCHMARKS.md +
 *    docs/bench-chart.svg with --docs).
 *
 * Everything is removed at the end, on failure and on Ctrl-C (the lab's
 * signal cleanup kills every process in the namespaces and deletes them).
 *
 *   node dist/bench/run.js [--tunnels raw,ours,...] [--tests tcp1,tcp4,udp64,ping,pingload]
 *        [--seconds 4] [--max-busy 0.3] [--quiet-window 2] [--quiet-timeout 15] [--wait-budget 180]
 *        [--no-install] [--out bench/results] [--docs] [--json FILE] [--render FILE]
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, readdirSync } from 'node:fs'
import { cpus, release, tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { runIn, spawnIn, waitFor, sleep } from '../src/lab/exec.js'
import { createTopology, type Topology } from '../src/lab/topology.js'
import { cpuSeconds, peakRssKb, rssKb, waitQuiet, readProcStat, type QuietOptions } from './lib/machine.js'
import { busyBetween, parseIperfTcp, parseIperfUdp, parsePingRtts, percentile } from './lib/parse.js'
import { markdownTable, svgChart, type BenchReport, type Busy, type PingResult, type TcpResult, type TunnelResult, type UdpResult } from './lib/results.js'
import { ROOT, TUNNELS, installMissing, tunnelByName, type RunningTunnel, type TunnelSpec } from './tunnels/index.js'
import { Progress } from './lib/progress.js'
import { formatResults, type BenchResult } from './micro/timer.js'
import { scaleTable, type ScaleStep } from './scale.js'

export const ALL_TESTS = ['tcp1', 'tcp4', 'udp64', 'ping', 'pingload'] as const
export type TestName = typeof ALL_TESTS[number]

export interface HarnessOptions {
  tunnels: string[]
  tests: TestName[]
  testSeconds: number
  quiet: QuietOptions
  /** Install the Debian packages of missing peer tunnels first (default true). */
  install?: boolean
  /** Total time all quiet waits together may take, ms; afterwards each wait is one window (bounds the run on a busy machine). */
  waitBudgetMs?: number
}

const IPERF_PORT = 5301

// ---------------------------------------------------------------------------
// Measurement primitives

async function iperfServer (t: RunningTunnel): Promise<{ stop: () => Promise<void> }> {
  const srv = spawnIn(t.dst.ns, 'iperf3', ['-s', '-1', '-B', t.dst.ip, '-p', String(IPERF_PORT)])
  await waitFor(async () => {
    if (srv.exitInfo !== null) throw new Error(`iperf3 server exited: ${srv.tail(3)}`)
    const { stdout } = await runIn(t.dst.ns, 'ss', ['-Hltn', `sport = :${IPERF_PORT}`])
    return stdout.trim() !== ''
  }, { timeoutMs: 5000, intervalMs: 50, what: 'the iperf3 server' })
  return { stop: async () => { await srv.stop('SIGKILL', 1000) } }
}

async function iperfClient (t: RunningTunnel, args: string[], seconds: number): Promise<string> {
  return await runIn(t.src.ns, 'iperf3', ['-c', t.dst.ip, '-B', t.src.ip, '-p', String(IPERF_PORT), '-t', String(seconds), '-J', ...args], { timeoutMs: (seconds + 25) * 1000 })
    .then((r) => r.stdout, (err: unknown) => (err as { stdout?: string }).stdout ?? (err instanceof Error ? err.message : String(err)))
}

async function ping (t: RunningTunnel, count: number): Promise<{ rtts: number[], lossPct: number }> {
  const out = await runIn(t.src.ns, 'ping', ['-n', '-c', String(count), '-i', '0.01', '-W', '1', '-I', t.src.ip, t.dst.ip], { timeoutMs: count * 50 + 10_000 })
    .then((r) => r.stdout, (err: unknown) => (err as { stdout?: string }).stdout ?? '')
  const p = parsePingRtts(out)
  return { rtts: p.rtts, lossPct: p.transmitted === 0 ? 100 : 100 * (1 - p.received / p.transmitted) }
}

function sumCpu (t: RunningTunnel): number | null {
  if (t.daemons.length === 0) return null
  let s = 0
  for (const d of t.daemons) {
    const c = cpuSeconds(d.pid)
    if (c === null) return null
    s += c
  }
  return s
}

// ---------------------------------------------------------------------------

export class Harness {
  readonly opts: HarnessOptions
  readonly progress: Progress
  readonly busyBefore: number[] = []

  constructor (opts: HarnessOptions, progress: Progress) {
    this.opts = opts
    this.progress = progress
  }

  #budgetLeft = Infinity

  async #quiet (what: string): Promise<{ before: number, quiet: boolean }> {
    if (this.#budgetLeft === Infinity) this.#budgetLeft = this.opts.waitBudgetMs ?? Infinity
    const timeoutMs = Math.max(this.opts.quiet.windowMs, Math.min(this.opts.quiet.timeoutMs, this.#budgetLeft))
    const q = await waitQuiet({ ...this.opts.quiet, timeoutMs }, (busy, waited) => {
      this.progress.update(`${what}: waiting for a quiet machine (busy ${(100 * busy).toFixed(0)}%, ${(waited / 1000).toFixed(0)} s)`)
    })
    this.#budgetLeft -= q.waitedMs
    this.busyBefore.push(q.busy)
    return { before: q.busy, quiet: q.quiet }
  }

  /** Runs `fn` after a quiet wait and records the machine's busy share. */
  async #measure<T> (what: string, fn: () => Promise<T>): Promise<{ value: T, busy: Busy }> {
    const q = await this.#quiet(what)
    this.progress.update(`${what}: measuring`)
    const a = readProcStat()
    const value = await fn()
    return { value, busy: { before: q.before, during: busyBetween(a, readProcStat()), quiet: q.quiet } }
  }

  async #tcp (label: string, t: RunningTunnel, streams: number, r: TunnelResult): Promise<TcpResult | null> {
    const s = this.opts.testSeconds
    const { value, busy } = await this.#measure(`${label}: TCP ${streams} stream${streams > 1 ? 's' : ''} (${s + 1} s)`, async () => {
      const srv = await iperfServer(t)
      try {
        // The first second (slow start) is omitted from iperf3's figures; CPU is sampled over the same span.
        let cpu0: number | null = null
        const timer = setTimeout(() => { cpu0 = sumCpu(t) }, 1000)
        const out = await iperfClient(t, ['-O', '1', ...(streams > 1 ? ['-P', String(streams)] : [])], s)
        clearTimeout(timer)
        const cpu1 = sumCpu(t)
        return { out, cpu: cpu0 !== null && cpu1 !== null ? cpu1 - cpu0 : null }
      } finally {
        await srv.stop()
      }
    })
    const p = parseIperfTcp(value.out)
    if (!p.ok) { r.testErrors[`tcp${streams}`] = p.error; return null }
    if (streams === 1 && value.cpu !== null && p.value.bytes > 0) r.cpuSecPerGB = value.cpu / (p.value.bytes / 1e9)
    return { mbps: p.value.bps / 1e6, retransmits: p.value.retransmits, busy }
  }

  async #udp (label: string, t: RunningTunnel, r: TunnelResult): Promise<UdpResult | null> {
    const s = this.opts.testSeconds
    const { value, busy } = await this.#measure(`${label}: UDP 64-byte packets (${s} s)`, async () => {
      const srv = await iperfServer(t)
      try { return await iperfClient(t, ['-u', '-l', '64', '-b', '0'], s) } finally { await srv.stop() }
    })
    const p = parseIperfUdp(value)
    if (!p.ok) { r.testErrors.udp64 = p.error; return null }
    return { pps: p.value.pps, sentPps: p.value.sentPps, lostPct: p.value.lostPct, busy }
  }

  async #pingIdle (label: string, t: RunningTunnel): Promise<PingResult> {
    const { value, busy } = await this.#measure(`${label}: ping idle (2 s)`, () => ping(t, 200))
    return { p50: percentile(value.rtts, 50), p99: percentile(value.rtts, 99), lossPct: value.lossPct, replies: value.rtts.length, busy }
  }

  async #pingLoad (label: string, t: RunningTunnel, r: TunnelResult): Promise<PingResult | null> {
    const s = Math.max(3, this.opts.testSeconds)
    const { value, busy } = await this.#measure(`${label}: ping under TCP load (${s + 1} s)`, async () => {
      const srv = await iperfServer(t)
      try {
        const load = iperfClient(t, [], s + 1)
        await sleep(1000)
        const p = await ping(t, (s - 1) * 100)
        const out = await load
        return { p, ok: parseIperfTcp(out).ok }
      } finally {
        await srv.stop()
      }
    })
    if (!value.ok) r.testErrors.pingload = 'the TCP load did not run'
    return { p50: percentile(value.p.rtts, 50), p99: percentile(value.p.rtts, 99), lossPct: value.p.lossPct, replies: value.p.rtts.length, busy }
  }

  /** Measures one tunnel; never throws. */
  async runTunnel (spec: TunnelSpec, topo: Topology, index: number, total: number): Promise<TunnelResult> {
    const label = `[${index}/${total}] ${spec.label}`
    const r: TunnelResult = {
      name: spec.name, label: spec.label, kind: spec.kind, status: 'ok', error: null, mtu: null, config: '',
      tcp1: null, tcp4: null, udp64: null, pingIdle: null, pingLoad: null, cpuSecPerGB: null, peakRssKb: {}, idleRssKb: {}, testErrors: {}
    }
    const why = spec.available()
    if (why !== null) {
      r.status = 'unavailable'
      r.error = why
      this.progress.log(`${label}: not measured (${why})`)
      return r
    }
    const dir = mkdtempSync(join(tmpdir(), `lwt-bench-${spec.name}-`))
    scratchDirs.add(dir)
    let t: RunningTunnel | null = null
    try {
      this.progress.update(`${label}: starting`)
      t = await spec.start({ topo, dir, id: topo.id })
      r.mtu = t.mtu
      r.config = t.config
      const tests = this.opts.tests
      const step = async (name: string, fn: () => Promise<void>): Promise<void> => {
        try { await fn() } catch (err) { r.testErrors[name] = err instanceof Error ? err.message.split('\n')[0]! : String(err) }
      }
      const tun = t
      // Resident memory with the tunnel up and idle: after a 2 s settle, before any test traffic.
      await sleep(2000)
      for (const d of t.daemons) r.idleRssKb![d.role] = rssKb(d.pid)
      if (tests.includes('ping')) await step('ping', async () => { r.pingIdle = await this.#pingIdle(label, tun) })
      if (tests.includes('tcp1')) await step('tcp1', async () => { r.tcp1 = await this.#tcp(label, tun, 1, r) })
      if (tests.includes('tcp4')) await step('tcp4', async () => { r.tcp4 = await this.#tcp(label, tun, 4, r) })
      if (tests.includes('udp64')) await step('udp64', async () => { r.udp64 = await this.#udp(label, tun, r) })
      if (tests.includes('pingload')) await step('pingload', async () => { r.pingLoad = await this.#pingLoad(label, tun, r) })
      for (const d of t.daemons) r.peakRssKb[d.role] = peakRssKb(d.pid)
      for (const p of t.procs) {
        if (p.exitInfo !== null) r.testErrors.daemon = `${p.cmd} exited during the tests (code ${p.exitInfo.code}): ${p.tail(3)}`
      }
      this.progress.log(`${label}: ${summary(r)}`)
    } catch (err) {
      r.status = 'failed'
      r.error = err instanceof Error ? err.message : String(err)
      this.progress.log(`${label}: failed: ${r.error.split('\n')[0]}`)
    } finally {
      if (t !== null) await t.stop().catch(() => {})
      rmSync(dir, { recursive: true, force: true })
      scratchDirs.delete(dir)
    }
    return r
  }
}

function summary (r: TunnelResult): string {
  const parts: string[] = []
  if (r.tcp1 !== null) parts.push(`TCP ${r.tcp1.mbps.toFixed(0)} Mbit/s`)
  if (r.tcp4 !== null) parts.push(`4×TCP ${r.tcp4.mbps.toFixed(0)} Mbit/s`)
  if (r.udp64 !== null) parts.push(`UDP64 ${(r.udp64.pps / 1000).toFixed(0)} kpps`)
  if (r.pingIdle?.p50 != null) parts.push(`ping ${r.pingIdle.p50.toFixed(3)} ms`)
  const errs = Object.keys(r.testErrors)
  if (errs.length > 0) parts.push(`errors in ${errs.join(', ')}`)
  return parts.join(', ')
}

/** Builds the lab, runs every tunnel, removes the lab. */
export async function runHarness (opts: HarnessOptions, progress: Progress): Promise<BenchReport> {
  const startedAt = new Date()
  const specs = opts.tunnels.map((n) => {
    const s = tunnelByName(n)
    if (s === undefined) throw new Error(`unknown tunnel "${n}" (known: ${TUNNELS.map((t) => t.name).join(', ')})`)
    return s
  })
  if (opts.install !== false) {
    const line = await installMissing(specs, (l) => { progress.update(l) })
    if (line !== null) progress.log(line)
  }
  const threeHost = specs.some((s) => s.threeHost === true)
  progress.update('building the lab')
  const topo = await createTopology({ clients: [{ name: 'a', nat: 'none' }, ...(threeHost ? [{ name: 'b', nat: 'none' as const }] : [])] })
  currentLabId = topo.id
  const h = new Harness(opts, progress)
  const results: TunnelResult[] = []
  try {
    for (const [i, s] of specs.entries()) results.push(await h.runTunnel(s, topo, i + 1, specs.length))
  } finally {
    progress.update('removing the lab')
    await topo.destroy().catch(() => {})
    cleanupWireguardSockets(topo.id)
    progress.done()
  }
  const finishedAt = new Date()
  const mean = h.busyBefore.length === 0 ? 0 : h.busyBefore.reduce((a, b) => a + b, 0) / h.busyBefore.length
  return {
    version: 1,
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    durationSec: Math.round((finishedAt.getTime() - startedAt.getTime()) / 1000),
    machine: { cpus: cpus().length, model: cpus()[0]?.model ?? '?', kernel: release(), node: process.version },
    options: { testSeconds: opts.testSeconds, tests: opts.tests, quiet: opts.quiet },
    meanBusyBefore: mean,
    tunnels: results
  }
}

/** Scratch directories of running tunnels (keys, configs), removed on Ctrl-C too. */
const scratchDirs = new Set<string>()
let currentLabId: string | null = null

/**
 * Ctrl-C / SIGTERM: remove the scratch directories and exit; the lab's exit
 * hook (src/lab/netns.ts) then kills every process we started and deletes the
 * namespaces, which removes every tunnel device.
 */
export function installInterruptCleanup (): void {
  const onSignal = (sig: NodeJS.Signals): void => {
    process.stderr.write(`\nbench: ${sig}: stopping every tunnel and removing the lab\n`)
    for (const d of scratchDirs) rmSync(d, { recursive: true, force: true })
    if (currentLabId !== null) cleanupWireguardSockets(currentLabId)
    process.exit(130)
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
}

/** wireguard-go leaves its UAPI socket behind when killed. */
function cleanupWireguardSockets (id: string): void {
  try {
    for (const f of readdirSync('/var/run/wireguard')) if (f.startsWith(`lw${id}`)) rmSync(join('/var/run/wireguard', f), { force: true })
  } catch {}
}

/** The newest bench/results/<prefix>-*.json, parsed, or null. */
function latestResult (dir: string, prefix: string): Record<string, unknown> | null {
  try {
    const f = readdirSync(dir).filter((n) => n.startsWith(`${prefix}-`) && n.endsWith('.json')).sort().at(-1)
    return f === undefined ? null : JSON.parse(readFileSync(join(dir, f), 'utf8')) as Record<string, unknown>
  } catch {
    return null
  }
}

/** Sections for the latest micro/pipeline and scale results (bench:micro, bench:scale), when present. */
export function extraSections (dir: string): string[] {
  const out: string[] = []
  const micro = latestResult(dir, 'micro') as { at?: string, results?: BenchResult[] } | null
  if (micro?.results !== undefined) {
    out.push('## Micro and pipeline benchmarks', '', `\`npm run bench:micro\` at ${String(micro.at ?? '?').slice(0, 16).replace('T', ' ')} UTC, one core, best of the rounds (bench/micro/*.bench.ts). ` +
      'The pipeline rows drive the real Outbound and Inbound classes with a fake addon whose TUN and UDP calls are memory copies (the AEAD is the real addon\'s): packets per second per core without kernel I/O.', '',
      '```', formatResults(micro.results), '```', '')
  }
  const scale = latestResult(dir, 'scale') as { at?: string, steps?: ScaleStep[], e2e?: unknown, baseRssKb?: number, peakRssKb?: number } | null
  if (scale?.steps !== undefined) {
    out.push('## The server at scale', '', `\`npm run bench:scale\` at ${String(scale.at ?? '?').slice(0, 16).replace('T', ' ')} UTC: one real server daemon (\`--max-clients 1000\`), clients simulated from one process in another namespace, each with its own UDP socket, speaking the real protocol ` +
      '(registration handshake, Confirm, keepalive Pings, relay envelopes). Steps add clients to the same server. Handshakes/s: new clients ÷ time from the burst of inits to the last response. ' +
      'Relay: every client sends relay envelopes (1400-byte inner packets) to another for 3 s; forwarded = packets on the server\'s link.', '',
      scaleTable(scale.steps), '',
      `Server RSS with no client ${((scale.baseRssKb ?? 0) / 1024).toFixed(1)} MiB, peak ${((scale.peakRssKb ?? 0) / 1024).toFixed(1)} MiB. End-to-end relayed session between two simulated clients: \`${JSON.stringify(scale.e2e)}\`.`, '',
      'Reading the table: "inits per client" above 1 and "pongs" below the client count mean the server dropped control packets of the burst ' +
      '(its status counters say which: the step\'s `serverDrops` in bench/results/scale-*.json, e.g. `dropControlRingFull`); clients retransmit inits after 1 s. ' +
      'CPU time is counted in 10 ms ticks and RSS includes the garbage collector\'s slack, so the 10-client figures per handshake and per client are coarse; the 1,000-client row is the one to read. ' +
      'The relay figures are bounded by this 2-core machine: the simulator\'s sender and the server share it.', '')
  }
  return out
}

/** The markdown document for docs/BENCHMARKS.md. */
export function benchmarksDoc (rep: BenchReport, chartPath: string, extra: string[] = []): string {
  const ok = rep.tunnels.filter((t) => t.status === 'ok')
  const notes = rep.tunnels.flatMap((t) => {
    const n: string[] = []
    if (t.status !== 'ok') n.push(`- **${t.label}**: ${t.status} — ${(t.error ?? '').split('\n').slice(0, 3).join(' ').slice(0, 300)}`)
    for (const [k, v] of Object.entries(t.testErrors)) n.push(`- **${t.label}** ${k}: ${v.slice(0, 200)}`)
    return n
  })
  return [
    '# Benchmarks',
    '',
    `One run of \`npm run bench\` on ${rep.startedAt.slice(0, 16).replace('T', ' ')} UTC: ${rep.machine.cpus} × ${rep.machine.model}, Linux ${rep.machine.kernel}, Node ${rep.machine.node}. ` +
      `Each test ran ${rep.options.testSeconds} s; the whole run took ${Math.round(rep.durationSec / 60)} min. ` +
      `The machine is shared: before each measurement the harness waited until the whole machine was at most ${(100 * rep.options.quiet.maxBusy).toFixed(0)}% busy for ${rep.options.quiet.windowMs / 1000} s (giving up after ${rep.options.quiet.timeoutMs / 1000} s); ` +
      `it was ${(100 * rep.meanBusyBefore).toFixed(0)}% busy on average before the measurements. A \`*\` marks a figure taken when the machine never got quiet.`,
    '',
    `![throughput and latency per tunnel](${chartPath})`,
    '',
    markdownTable(rep),
    '',
    '## What is measured',
    '',
    '- Hosts A and S are network namespaces joined by veth pairs and a bridge (src/lab/topology.ts); every tunnel carries A → S. ' +
      '"lightweight-tunnel (relay)" adds host B and carries A → B through our server (`--no-p2p`): three hosts, two tunnel hops, end-to-end encryption.',
    '- **TCP**: iperf3, 1 and 4 streams, the first second omitted; the receiver\'s rate.',
    '- **UDP 64 B**: iperf3 with 64-byte payloads at unlimited rate; datagrams received per second.',
    '- **ping**: 200 echo requests 10 ms apart, idle and during a 1-stream TCP transfer; RTT p50 / p99.',
    '- **CPU s/GB**: user + system CPU seconds of all the tunnel\'s daemons (both ends; for the relay, all three) per GB carried during the 1-stream TCP test (/proc/PID/stat).',
    '- **client RSS idle**: VmRSS of the client-side daemon (host A) with the tunnel up, 2 s after start-up, before any test traffic. For ours this includes ~40 MiB of the node binary\'s own pages, shared with every other node process.',
    '- **peak RSS**: the largest VmHWM of the tunnel\'s daemons at the end of the tests. Ours peaks at start-up, not under traffic: stretching `-k` with scrypt (N = 2^15, r = 8) takes 32 MiB for a moment.',
    '- **machine busy before**: the highest whole-machine busy share (/proc/stat) over the quiet window before any of the tunnel\'s tests.',
    '',
    '## Configurations (generated per run, keys made by each tool)',
    '',
    ...ok.map((t) => `- **${t.label}**: ${t.config}${t.mtu !== null ? ` (inner MTU ${t.mtu})` : ''}`),
    '',
    ...(notes.length > 0 ? ['## Problems during this run', '', ...notes, ''] : []),
    ...extra,
    '## Reproduce',
    '',
    '`npm ci`, then as root `npm run bench:micro && npm run bench:scale && npm run bench -- --docs` (about 10 minutes; `--docs` rewrites this page, its chart and docs/bench-results.json, taking the newest micro and scale results from bench/results). ' +
      'The harness installs missing peer tunnels with `apt-get install -y` (`--no-install` to skip: then `apt-get install -y fastd wireguard-go wireguard-tools nebula openvpn tinc`); iperf3 must be there. A tunnel that fails to install or start is reported, not fatal. ' +
      'Options: `npm run bench -- --help`. The regression gate: `npm run bench:ci` (bench/baseline.json).',
    ''
  ].join('\n')
}

const HELP = `npm run bench -- [options]
  --tunnels LIST       comma-separated, default all: ${TUNNELS.map((t) => t.name).join(',')}
  --tests LIST         default all: ${ALL_TESTS.join(',')}
  --seconds N          length of each throughput test (default 4; +1 s omitted for TCP)
  --max-busy F         machine busy share counted as quiet, 0..1 (default 0.3)
  --quiet-window S     seconds the machine must stay quiet (default 2)
  --quiet-timeout S    measure anyway after waiting this long (default 15)
  --wait-budget S      all quiet waits together at most this long; then one window each (default 180)
  --no-install         do not apt-get install missing peer tunnels (default: install them)
  --out DIR            result directory (default bench/results)
  --docs               also write docs/BENCHMARKS.md and docs/bench-chart.svg (with the newest
                       bench:micro and bench:scale results from bench/results, if any)
  --json FILE          also write the JSON report to FILE
  --render FILE        only re-render docs/BENCHMARKS.md and the chart from a saved JSON report`

async function main (): Promise<number> {
  const { values } = parseArgs({
    options: {
      tunnels: { type: 'string' }, tests: { type: 'string' }, seconds: { type: 'string' },
      'max-busy': { type: 'string' }, 'quiet-window': { type: 'string' }, 'quiet-timeout': { type: 'string' }, 'wait-budget': { type: 'string' }, 'no-install': { type: 'boolean' },
      out: { type: 'string' }, docs: { type: 'boolean' }, json: { type: 'string' }, render: { type: 'string' }, help: { type: 'boolean', short: 'h' }
    }
  })
  if (values.help === true) { console.log(HELP); return 0 }
  if (values.render !== undefined) {
    // Re-render docs/BENCHMARKS.md and the chart from a saved report, measuring nothing.
    const rep = JSON.parse(readFileSync(values.render, 'utf8')) as BenchReport
    writeFileSync(join(ROOT, 'docs', 'bench-chart.svg'), svgChart(rep))
    writeFileSync(join(ROOT, 'docs', 'BENCHMARKS.md'), benchmarksDoc(rep, 'bench-chart.svg', extraSections(join(ROOT, 'bench', 'results'))))
    writeFileSync(join(ROOT, 'docs', 'bench-results.json'), JSON.stringify(rep, null, 2) + '\n')
    console.log(markdownTable(rep))
    return 0
  }
  if (typeof process.getuid === 'function' && process.getuid() !== 0) { console.error('bench: needs root (network namespaces, TUN devices)'); return 1 }
  const tests = (values.tests?.split(',') ?? [...ALL_TESTS]) as TestName[]
  for (const t of tests) if (!ALL_TESTS.includes(t)) { console.error(`bench: unknown test "${t}" (known: ${ALL_TESTS.join(', ')})`); return 1 }
  const opts: HarnessOptions = {
    tunnels: values.tunnels?.split(',') ?? TUNNELS.map((t) => t.name),
    tests,
    testSeconds: Number(values.seconds ?? 4),
    quiet: {
      maxBusy: Number(values['max-busy'] ?? 0.3),
      windowMs: Number(values['quiet-window'] ?? 2) * 1000,
      timeoutMs: Number(values['quiet-timeout'] ?? 15) * 1000
    },
    waitBudgetMs: Number(values['wait-budget'] ?? 180) * 1000,
    install: values['no-install'] !== true
  }
  const progress = new Progress()
  installInterruptCleanup()
  const rep = await runHarness(opts, progress)
  const outDir = values.out ?? join(ROOT, 'bench', 'results')
  mkdirSync(outDir, { recursive: true })
  const stamp = rep.startedAt.replace(/[:.]/g, '-').slice(0, 19)
  const base = join(outDir, `bench-${stamp}`)
  writeFileSync(`${base}.json`, JSON.stringify(rep, null, 2) + '\n')
  writeFileSync(`${base}.svg`, svgChart(rep))
  writeFileSync(`${base}.md`, benchmarksDoc(rep, `bench-${stamp}.svg`))
  if (values.json !== undefined) writeFileSync(values.json, JSON.stringify(rep, null, 2) + '\n')
  if (values.docs === true) {
    writeFileSync(join(ROOT, 'docs', 'bench-chart.svg'), svgChart(rep))
    writeFileSync(join(ROOT, 'docs', 'BENCHMARKS.md'), benchmarksDoc(rep, 'bench-chart.svg', extraSections(join(ROOT, 'bench', 'results'))))
    writeFileSync(join(ROOT, 'docs', 'bench-results.json'), JSON.stringify(rep, null, 2) + '\n')
  }
  console.log('')
  console.log(markdownTable(rep))
  console.log('')
  console.log(`bench: ${rep.durationSec} s; results in ${base}.{json,md,svg}${values.docs === true ? ' and docs/BENCHMARKS.md' : ''}`)
  return rep.tunnels.some((t) => t.kind === 'ours' && t.status !== 'ok') ? 1 : 0
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then((c) => { process.exitCode = c }, (err: unknown) => {
    console.error(`bench: ${err instanceof Error ? err.stack ?? err.message : String(err)}`)
    process.exitCode = 1
  })
}

