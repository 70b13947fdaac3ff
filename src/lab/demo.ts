/**
 * `lightweight-tunnel demo`: a self-contained demonstration on this host.
 *
 * Steps (each announced in plain words through `log`):
 *   1. build a lab (topology.ts): a server and two clients, alice and bob,
 *      each behind its own port-restricted cone NAT router;
 *   2. start the daemon in each namespace (server, then both clients) with
 *      the CLI contract `server|client --tun --key --dev --control ...`;
 *   3. wait until both clients are registered: `status --json` inside the
 *      client's namespace lists the server among its `peers`;
 *   4. ping alice -> server and alice -> bob (bob is reached through the
 *      server's relay unless a direct path was punched; the path is shown);
 *   5. iperf3 TCP alice -> server and alice -> bob, if iperf3 is installed,
 *      and ping/iperf3 over the raw link (no tunnel) for comparison;
 *   6. print a table of RTT, loss and throughput and each daemon's RSS;
 *   7. stop the daemons with SIGTERM and remove the lab: always, also after a
 *      failure or Ctrl-C (the first Ctrl-C cleans up gracefully, a second one
 *      removes everything at once and exits).
 *
 * With `keepRunning`, step 7 waits for Ctrl-C so the lab can be explored.
 * Resolves with an exit code: 0 all good, 1 something failed, 130 interrupted.
 */
import { rmSync } from 'node:fs'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { run, runIn, spawnIn, sleep, waitFor, type LabProcess } from './exec.js'
import { destroyNamespacesSync, setSignalCleanup } from './netns.js'
import { createTopology, type Topology } from './topology.js'
import { DEMO_TOOLS, checkTools } from './tools.js'

export interface DemoOptions {
  /** Path of the `lightweight-tunnel` executable. */
  bin: string
  /** Where progress lines go (the CLI passes console.log). */
  log: (line: string) => void
  /** After the measurements, keep everything running until Ctrl-C. */
  keepRunning?: boolean
  /** The network key the daemons share. Default "demo-network-key". */
  key?: string
  /** Length of each iperf3 run, seconds. Default 5. */
  iperfSeconds?: number
  /** How long to wait for both clients to register, ms. Default 30 000. */
  registerTimeoutMs?: number
  /** Receives the measurements (for tests and scripts). */
  onReport?: (report: DemoReport) => void
  /** PATH searched for the tools (src/lab/tools.ts). Default process.env.PATH. */
  pathEnv?: string
}

export interface Measurement {
  /** e.g. "alice -> server". */
  what: string
  /** 'direct' | 'relay' | 'connecting' | 'server' (the server itself) | '?' */
  path: string
  rttAvgMs: number | null
  lossPct: number | null
  /** iperf3 TCP receive rate, bits/s; null when not measured. */
  bitsPerSecond: number | null
  /** Why a value is missing, in plain words. */
  note: string | null
}

export interface DemoReport {
  measurements: Measurement[]
  /** RSS of each daemon (process and its children), kB. */
  rssKb: Record<string, number | null>
  /** Problems met, in plain words (empty when all went well). */
  problems: string[]
}

const DEFAULT_KEY = 'demo-network-key'
const PORT = 9000
const TUN_PREFIX = '10.77.0'
const SERVER_TUN = `${TUN_PREFIX}.1`

class Interrupted extends Error {
  constructor () { super('interrupted'); this.name = 'Interrupted' }
}

interface Daemon {
  name: string
  ns: string
  tunIp: string
  control: string
  proc: LabProcess
}

export async function runDemo (opts: DemoOptions): Promise<number> {
  const log = (line: string): void => { opts.log(line) }
  const key = opts.key ?? DEFAULT_KEY
  const iperfSeconds = opts.iperfSeconds ?? 5
  const problems: string[] = []
  const measurements: Measurement[] = []
  const rssKb: Record<string, number | null> = {}

  // Every tool first, before anything is built: name all the missing packages at once.
  const tools = checkTools(DEMO_TOOLS, opts.pathEnv ?? process.env.PATH)
  for (const line of tools.lines) log(line)
  if (!tools.ok) return 1
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    log('The demo needs root: it creates network namespaces, virtual links, NAT rules and TUN devices.')
    log('Run it again with sudo.')
    return 1
  }

  // --- Ctrl-C handling: first signal = graceful cleanup, second = immediate.
  let interrupted = false
  const abort = new AbortController()
  let wakeInterrupt: (() => void) | null = null
  const interruptedPromise = new Promise<never>((_resolve, reject) => {
    wakeInterrupt = () => reject(new Interrupted())
  })
  interruptedPromise.catch(() => {})
  let topo: Topology | null = null
  let tmp: string | null = null
  const daemons: Daemon[] = []
  const onSignal = (sig: NodeJS.Signals): void => {
    if (!interrupted) {
      interrupted = true
      log(`\n${sig === 'SIGINT' ? 'Ctrl-C' : sig}: stopping the demo and cleaning up (press Ctrl-C again to force)...`)
      abort.abort()
      wakeInterrupt?.()
      return
    }
    log('Forced stop: removing the lab namespaces now.')
    if (topo !== null) destroyNamespacesSync(topo.namespaces(), { killSpawned: true })
    if (tmp !== null) rmSync(tmp, { recursive: true, force: true })
    process.exit(130)
  }
  setSignalCleanup(false)
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  process.on('SIGHUP', onSignal)

  /** Runs a step, abandoning it when the user interrupts. */
  const step = async <T>(p: Promise<T>): Promise<T> => await Promise.race([p, interruptedPromise])

  let code = 0
  try {
    // 1. The lab.
    log('Building the lab: an "internet" namespace, a server, and two clients (alice and bob),')
    log('each behind its own home-router-like NAT (port-restricted cone: replies only from')
    log('the exact address and port a client sent to).')
    // Not abandoned on Ctrl-C: it takes well under a second, and then `finally` removes it.
    topo = await createTopology({
      clients: [{ name: 'alice', nat: 'port-restricted' }, { name: 'bob', nat: 'port-restricted' }],
      log: (l) => log(`  ${l}`)
    })
    if (interrupted) throw new Interrupted()
    const t = topo
    tmp = await mkdtemp(join(tmpdir(), 'lwt-demo-'))

    // 2. The daemons.
    const start = (name: string, ns: string, tunIp: string, n: number, args: string[]): Daemon => {
      const control = join(tmp!, `${name}.sock`)
      const full = [...args, '--tun', `${tunIp}/24`, '--key', key, '--dev', `lw${t.id}t${n}`, '--control', control, '--state-dir', join(tmp!, `${name}-state`)]
      const d: Daemon = { name, ns, tunIp, control, proc: spawnIn(ns, opts.bin, full, { maxOutputBytes: 256 * 1024, detached: true }) }
      daemons.push(d)
      return d
    }
    log(`Starting the server daemon in ${t.serverNs}: listening on ${t.serverWanIp}:${PORT}, tunnel address ${SERVER_TUN}.`)
    const server = start('server', t.serverNs, SERVER_TUN, 0, ['server', '--listen', `${t.serverWanIp}:${PORT}`])
    await step(sleep(300))
    failIfExited(server)
    const alice = t.client('alice')
    const bob = t.client('bob')
    log(`Starting client alice in ${alice.ns} (LAN ${alice.lanIp}, behind NAT ${alice.routerWanIp}), tunnel address ${TUN_PREFIX}.2.`)
    const a = start('alice', alice.ns, `${TUN_PREFIX}.2`, 1, ['client', '--remote', `${t.serverWanIp}:${PORT}`])
    log(`Starting client bob in ${bob.ns} (LAN ${bob.lanIp}, behind NAT ${bob.routerWanIp}), tunnel address ${TUN_PREFIX}.3.`)
    const b = start('bob', bob.ns, `${TUN_PREFIX}.3`, 2, ['client', '--remote', `${t.serverWanIp}:${PORT}`])

    // 3. Registration.
    log('Waiting for both clients to register with the server (polling "status --json")...')
    const t0 = Date.now()
    await step(Promise.all([
      waitForPeer(opts.bin, a, SERVER_TUN, opts.registerTimeoutMs ?? 30_000, [server, a, b], abort.signal),
      waitForPeer(opts.bin, b, SERVER_TUN, opts.registerTimeoutMs ?? 30_000, [server, a, b], abort.signal)
    ]))
    log(`Both clients are registered (after ${((Date.now() - t0) / 1000).toFixed(1)} s).`)
    // bob must be known to alice before alice can send to him; give it a few seconds.
    const knowsBob = await step(waitForPeer(opts.bin, a, b.tunIp, 10_000, [server, a, b], abort.signal).then(() => true, () => false))
    if (!knowsBob) log('alice does not list bob as a peer yet; trying anyway (the server may relay).')

    // 4. Pings.
    const ping = async (from: Daemon, toName: string, toIp: string): Promise<void> => {
      log(`Pinging ${toName} (${toIp}) from ${from.name} through the tunnel, 5 packets...`)
      const r = await step(pingStats(from.ns, toIp))
      const path = toIp === SERVER_TUN ? 'server' : await step(peerPath(opts.bin, from, toIp))
      measurements.push({ what: `${from.name} -> ${toName} (ping)`, path, rttAvgMs: r.avgMs, lossPct: r.lossPct, bitsPerSecond: null, note: r.note })
      if (r.avgMs === null) {
        problems.push(`${from.name} could not ping ${toName}: ${r.note ?? 'no reply'}`)
        log(`  no reply from ${toName}${r.note !== null ? ` (${r.note})` : ''}`)
      } else {
        log(`  ${toName} answered: average round trip ${r.avgMs.toFixed(2)} ms, ${r.lossPct}% lost, path ${path}`)
      }
    }
    await ping(a, 'server', SERVER_TUN)
    await ping(a, 'bob', b.tunIp)
    log(`Pinging the server's public address ${topo.serverWanIp} from alice without the tunnel (the raw link), for comparison...`)
    const rawPing = await step(pingStats(a.ns, topo.serverWanIp))
    measurements.push({ what: 'alice -> server (raw link, ping)', path: 'raw', rttAvgMs: rawPing.avgMs, lossPct: rawPing.lossPct, bitsPerSecond: null, note: rawPing.note })

    // 5. Throughput.
    if (await hasIperf3()) {
      const iperf = async (from: Daemon, to: Daemon, toName: string): Promise<void> => {
        log(`Measuring TCP throughput ${from.name} -> ${toName} with iperf3 for ${iperfSeconds} s...`)
        const r = await step(iperfRun({ ns: from.ns, ip: from.tunIp }, { ns: to.ns, ip: to.tunIp }, iperfSeconds))
        const path = to.name === 'server' ? 'server' : await step(peerPath(opts.bin, from, to.tunIp))
        measurements.push({ what: `${from.name} -> ${toName} (iperf3 TCP)`, path, rttAvgMs: null, lossPct: null, bitsPerSecond: r.bps, note: r.note })
        if (r.bps === null) {
          problems.push(`iperf3 ${from.name} -> ${toName} failed: ${r.note ?? 'no result'}`)
          log(`  iperf3 failed: ${r.note ?? 'no result'}`)
        } else {
          log(`  ${formatRate(r.bps)}${r.note !== null ? ` (${r.note})` : ''}`)
        }
      }
      await iperf(a, server, 'server')
      await iperf(a, b, 'bob')
      log(`Measuring the raw link alice -> server (no tunnel, through alice's NAT) with iperf3 for ${iperfSeconds} s, for comparison...`)
      const raw = await step(iperfRun({ ns: a.ns, ip: null }, { ns: server.ns, ip: topo.serverWanIp }, iperfSeconds))
      measurements.push({ what: 'alice -> server (raw link, iperf3)', path: 'raw', rttAvgMs: null, lossPct: null, bitsPerSecond: raw.bps, note: raw.note })
      log(raw.bps === null ? `  iperf3 failed: ${raw.note ?? 'no result'}` : `  ${formatRate(raw.bps)}`)
    } else {
      log('iperf3 is not installed, so throughput is not measured (apt-get install iperf3).')
    }

    // 6. Memory and the table.
    for (const d of daemons) rssKb[d.name] = d.proc.pid === undefined ? null : await treeRssKb(d.proc.pid)
    log('')
    for (const line of formatTable(measurements, rssKb)) log(line)
    log('')
    opts.onReport?.({ measurements, rssKb, problems })

    if (opts.keepRunning === true) {
      log('The lab keeps running. Explore it from another terminal, for example:')
      log(`  ip netns exec ${alice.ns} ping ${b.tunIp}`)
      log(`  ip netns exec ${alice.ns} ${opts.bin} status --control ${a.control}`)
      log(`  ip netns exec ${t.serverNs} ${opts.bin} status --control ${server.control}`)
      log('Press Ctrl-C to stop the daemons and remove the lab.')
      for (;;) {
        await step(sleep(1000))
        for (const d of daemons) failIfExited(d)
      }
    }
    code = problems.length === 0 ? 0 : 1
    if (problems.length > 0) {
      log('Some steps did not work:')
      for (const p of problems) log(`  - ${p}`)
    }
  } catch (err) {
    if (err instanceof Interrupted) {
      code = 130
    } else {
      code = 1
      log(`The demo failed: ${err instanceof Error ? err.message : String(err)}`)
      for (const d of daemons) {
        const tail = d.proc.tail(15)
        if (tail !== '') log(`Last output of the ${d.name} daemon:\n${indent(tail)}`)
      }
    }
  } finally {
    // 7. Cleanup, always.
    if (daemons.length > 0) {
      log('Stopping the daemons (SIGTERM)...')
      const codes = await Promise.all(daemons.map(async (d) => [d.name, await d.proc.stop('SIGTERM', 5000)] as const))
      log(`  ${codes.map(([n, c]) => `${n} exited with code ${c}`).join(', ')}`)
    }
    if (topo !== null) {
      log('Removing the lab namespaces...')
      try {
        await topo.destroy()
        log('  done: nothing is left behind.')
      } catch (err) {
        code = code === 0 ? 1 : code
        log(`  could not remove everything: ${err instanceof Error ? err.message : String(err)}`)
      }
    }
    if (tmp !== null) await rm(tmp, { recursive: true, force: true }).catch(() => {})
    process.removeListener('SIGINT', onSignal)
    process.removeListener('SIGTERM', onSignal)
    process.removeListener('SIGHUP', onSignal)
    setSignalCleanup(true)
  }
  if (code === 130) log('Demo interrupted.')
  else if (code === 0) log('Demo finished.')
  return code
}

// ---------------------------------------------------------------------------
// Helpers

function indent (text: string): string {
  return text.split('\n').map((l) => `    ${l}`).join('\n')
}

function failIfExited (d: Daemon): void {
  const e = d.proc.exitInfo
  if (e !== null) throw new Error(`the ${d.name} daemon stopped unexpectedly (exit code ${e.code})`)
}

interface PeerView { tunnelIp?: unknown, path?: unknown }

async function status (bin: string, d: Daemon): Promise<{ peers: PeerView[] } | null> {
  try {
    const { stdout } = await runIn(d.ns, bin, ['status', '--json', '--control', d.control], { timeoutMs: 5000 })
    const parsed = JSON.parse(stdout) as { peers?: unknown }
    return Array.isArray(parsed.peers) ? { peers: parsed.peers as PeerView[] } : null
  } catch {
    return null
  }
}

/** Polls `status --json` of `d` until a peer with tunnel address `ip` is listed. */
async function waitForPeer (bin: string, d: Daemon, ip: string, timeoutMs: number, all: Daemon[], signal: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (signal.aborted) throw new Interrupted()
    for (const x of all) failIfExited(x)
    const s = await status(bin, d)
    if (s !== null && s.peers.some((p) => p.tunnelIp === ip)) return
    if (Date.now() > deadline) throw new Error(`${d.name} did not list ${ip} among its peers within ${timeoutMs / 1000} s`)
    await sleep(300)
  }
}

async function peerPath (bin: string, d: Daemon, ip: string): Promise<string> {
  const s = await status(bin, d)
  const p = s?.peers.find((x) => x.tunnelIp === ip)
  return typeof p?.path === 'string' ? p.path : '?'
}

/** Parses `ping` output; never throws. */
export function parsePing (out: string): { avgMs: number | null, lossPct: number | null } {
  const loss = /([\d.]+)% packet loss/.exec(out)
  const rtt = /= [\d.]+\/([\d.]+)\/[\d.]+\/[\d.]+ ms/.exec(out)
  return { avgMs: rtt === null ? null : Number(rtt[1]), lossPct: loss === null ? null : Number(loss[1]) }
}

async function pingStats (ns: string, ip: string): Promise<{ avgMs: number | null, lossPct: number | null, note: string | null }> {
  try {
    const { stdout } = await runIn(ns, 'ping', ['-n', '-c', '5', '-i', '0.2', '-W', '2', ip], { timeoutMs: 20_000 })
    return { ...parsePing(stdout), note: null }
  } catch (err) {
    const out = (err as { stdout?: string }).stdout ?? ''
    const r = parsePing(out)
    return { ...r, note: r.lossPct !== null ? `${r.lossPct}% packet loss` : (err instanceof Error ? err.message.split('\n')[0] ?? null : null) }
  }
}

async function hasIperf3 (): Promise<boolean> {
  try { await run('iperf3', ['--version']); return true } catch { return false }
}

/** One iperf3 TCP run from `from` to `to` (over the tunnel, or over the raw link when given the WAN address). */
async function iperfRun (from: { ns: string, ip: string | null }, to: { ns: string, ip: string }, seconds: number): Promise<{ bps: number | null, note: string | null }> {
  const port = 5201
  const srv = spawnIn(to.ns, 'iperf3', ['-s', '-1', '-B', to.ip, '-p', String(port)], { detached: true })
  try {
    // iperf3 buffers its "Server listening" line when stdout is a pipe: look at the socket instead.
    await waitFor(async () => {
      if (srv.exitInfo !== null) throw new Error(`iperf3 server exited: ${srv.tail(3)}`)
      const { stdout } = await runIn(to.ns, 'ss', ['-Hltn', `sport = :${port}`])
      return stdout.trim() !== ''
    }, { timeoutMs: 5000, intervalMs: 50, what: `the iperf3 server in ${to.ns}` })
    const res = await runIn(from.ns, 'iperf3', ['-c', to.ip, ...(from.ip === null ? [] : ['-B', from.ip]), '-p', String(port), '-t', String(seconds), '-J'], { timeoutMs: (seconds + 20) * 1000 })
      .then((r) => r.stdout, (err: unknown) => (err as { stdout?: string }).stdout ?? '')
    return parseIperf(res)
  } catch (err) {
    return { bps: null, note: err instanceof Error ? err.message.split('\n')[0] ?? 'failed' : 'failed' }
  } finally {
    await srv.stop('SIGTERM', 2000)
  }
}

/** Reads iperf3 -J output; never throws. */
export function parseIperf (json: string): { bps: number | null, note: string | null } {
  try {
    const j = JSON.parse(json) as { error?: string, end?: { sum_received?: { bits_per_second?: number }, sum_sent?: { retransmits?: number } } }
    if (typeof j.error === 'string') return { bps: null, note: j.error }
    const bps = j.end?.sum_received?.bits_per_second
    if (typeof bps !== 'number') return { bps: null, note: 'iperf3 gave no result' }
    const re = j.end?.sum_sent?.retransmits
    return { bps, note: typeof re === 'number' && re > 0 ? `${re} TCP retransmits` : null }
  } catch {
    return { bps: null, note: 'iperf3 printed no JSON' }
  }
}

/** VmRSS of `pid` plus all its descendants, kB (null if unreadable). */
async function treeRssKb (pid: number): Promise<number | null> {
  const rss = async (p: number): Promise<number> => {
    const text = await readFile(`/proc/${p}/status`, 'utf8')
    const m = /^VmRSS:\s+(\d+) kB/m.exec(text)
    return m === null ? 0 : Number(m[1])
  }
  const children = async (p: number): Promise<number[]> => {
    const out: number[] = []
    try {
      for (const task of await readdir(`/proc/${p}/task`)) {
        const c = await readFile(`/proc/${p}/task/${task}/children`, 'utf8').catch(() => '')
        for (const s of c.split(/\s+/)) if (/^\d+$/.test(s)) out.push(Number(s))
      }
    } catch {}
    return out
  }
  try {
    let total = 0
    const queue = [pid]
    const seen = new Set<number>()
    while (queue.length > 0) {
      const p = queue.shift()!
      if (seen.has(p)) continue
      seen.add(p)
      total += await rss(p).catch(() => 0)
      queue.push(...await children(p))
    }
    return total > 0 ? total : null
  } catch {
    return null
  }
}

export function formatRate (bps: number): string {
  if (bps >= 1e9) return `${(bps / 1e9).toFixed(2)} Gbit/s`
  if (bps >= 1e6) return `${(bps / 1e6).toFixed(1)} Mbit/s`
  return `${(bps / 1e3).toFixed(0)} kbit/s`
}

/** The result table, as lines. */
export function formatTable (rows: Measurement[], rssKb: Record<string, number | null>): string[] {
  const cells = [['measurement', 'path', 'avg RTT', 'loss', 'throughput'], ...rows.map((r) => [
    r.what,
    r.path,
    r.rttAvgMs === null ? '-' : `${r.rttAvgMs.toFixed(2)} ms`,
    r.lossPct === null ? '-' : `${r.lossPct}%`,
    r.bitsPerSecond === null ? (r.note !== null && r.what.includes('iperf') ? 'failed' : '-') : formatRate(r.bitsPerSecond)
  ])]
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((row) => row[i]!.length)))
  const line = (row: string[]): string => '  ' + row.map((c, i) => c.padEnd(widths[i]!)).join('   ').trimEnd()
  const out = [line(cells[0]!), '  ' + widths.map((w) => '-'.repeat(w)).join('   '), ...cells.slice(1).map(line)]
  out.push('')
  out.push('  daemon memory (resident set size)')
  for (const [name, kb] of Object.entries(rssKb)) {
    out.push(`  ${name.padEnd(8)} ${kb === null ? 'unknown' : `${(kb / 1024).toFixed(1)} MiB`}`)
  }
  return out
}
