/**
 * Running real daemons in lab namespaces for end-to-end tests: start a
 * server or client through the CLI contract, read `status --json`, wait for
 * registration, ping, and move TCP bytes with a checksum.
 */
import { rmSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { runIn, spawnIn, waitFor, type LabProcess } from '../../src/lab/exec.js'
import type { StatusReport } from '../../src/control/status.js'
import { tempStateDir } from '../../src/lab/state-dirs.js'

export { tempStateDir } from '../../src/lab/state-dirs.js'

export const BIN = fileURLToPath(new URL('../../bin/lightweight-tunnel', import.meta.url))
export const KEY = 'e2e-test-network-key'

export interface Daemon {
  proc: LabProcess
  ns: string
  control: string
  dev: string
  /** Its --state-dir: a temporary folder (removed when the test process exits), or the one passed in to restart with the same node key. */
  stateDir: string
}

/**
 * The environment for child processes: without tap's loader hooks
 * (NODE_OPTIONS, TAP_*), so they run exactly as a user's shell would run them.
 * tap's process-info plugin wraps child_process and puts NODE_OPTIONS back
 * into every spawned environment, so node children are also started through
 * NODE_CMD (`env -u NODE_OPTIONS …`).
 */
export function cleanEnv (): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (k === 'NODE_OPTIONS' || k.startsWith('TAP') || k.startsWith('_TAPJS') || k.startsWith('NYC') || k.startsWith('TS_NODE')) continue
    env[k] = v
  }
  return env
}

/** Prefix for starting node programs in tests without tap's loader. */
export const NODE_CMD = ['env', '-u', 'NODE_OPTIONS'] as const

/** Control sockets handed out in this test process: a daemon killed with SIGKILL (or by its namespace's removal) leaves its socket behind. */
const controlPaths = new Set<string>()
process.once('exit', () => { for (const p of controlPaths) rmSync(p, { force: true }) })

/** A test daemon's control socket; whatever is left of it is removed when the test process exits, also on failure. */
export function controlPath (labId: string, name: string): string {
  const p = `/run/lightweight-tunnel/test-${labId}-${name}.sock`
  controlPaths.add(p)
  return p
}

export function startServer (ns: string, labId: string, opts: { tun?: string, key?: string, extra?: string[], dev?: string, stateDir?: string, listen?: string } = {}): Daemon {
  const control = controlPath(labId, 'server')
  const dev = opts.dev ?? 'lwt0'
  const stateDir = opts.stateDir ?? tempStateDir(`${labId}-server`)
  const proc = spawnIn(ns, 'env', ['-u', 'NODE_OPTIONS', BIN, 'server', '--listen', opts.listen ?? '0.0.0.0:9000', '--tun', opts.tun ?? '10.77.0.1/24', '--key', opts.key ?? KEY, '--dev', dev, '--control', control, '--state-dir', stateDir, ...(opts.extra ?? [])], { env: cleanEnv() })
  return { proc, ns, control, dev, stateDir }
}

export function startClient (ns: string, labId: string, name: string, tun: string, serverIp: string, opts: { key?: string, extra?: string[], dev?: string, stateDir?: string } = {}): Daemon {
  const control = controlPath(labId, name)
  const dev = opts.dev ?? 'lwt0'
  const stateDir = opts.stateDir ?? tempStateDir(`${labId}-${name}`)
  const proc = spawnIn(ns, 'env', ['-u', 'NODE_OPTIONS', BIN, 'client', '--remote', `${serverIp}:9000`, '--tun', tun, '--key', opts.key ?? KEY, '--dev', dev, '--control', control, '--state-dir', stateDir, ...(opts.extra ?? [])], { env: cleanEnv() })
  return { proc, ns, control, dev, stateDir }
}

export async function status (d: Daemon): Promise<StatusReport> {
  const r = await runIn(d.ns, 'env', ['-u', 'NODE_OPTIONS', BIN, 'status', '--json', '--control', d.control], { env: cleanEnv() })
  return JSON.parse(r.stdout) as StatusReport
}

export async function tryStatus (d: Daemon): Promise<StatusReport | null> {
  try { return await status(d) } catch { return null }
}

/** Wait until a client is registered and knows `peers` peers besides the server (or a server has `peers` clients). */
export async function waitReady (d: Daemon, peers: number, timeoutMs = 15_000): Promise<StatusReport> {
  let last: StatusReport | null = null
  await waitFor(async () => {
    if (d.proc.exitInfo !== null) throw new Error(`daemon in ${d.ns} exited early:\n${d.proc.tail(30)}`)
    last = await tryStatus(d)
    if (last === null) return false
    if (last.mode === 'server') return last.peers.length >= peers
    return last.state === 'registered' && last.peers.length >= peers + 1
  }, { timeoutMs, intervalMs: 200, what: `daemon in ${d.ns} to be ready with ${peers} peers (last status: ${JSON.stringify(last)?.slice(0, 400)})\n${d.proc.tail(20)}` })
  return last!
}

export interface PingResult { sent: number, received: number, avgMs: number | null }

export async function ping (ns: string, ip: string, count = 3, intervalSec = 0.2): Promise<PingResult> {
  const r = await runIn(ns, 'ping', ['-n', '-q', '-c', String(count), '-i', String(intervalSec), '-W', '2', ip]).catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? '' }))
  const out = r.stdout
  const m = /(\d+) packets transmitted, (\d+) received/.exec(out)
  const a = /= [\d.]+\/([\d.]+)\//.exec(out)
  return { sent: m ? Number(m[1]) : count, received: m ? Number(m[2]) : 0, avgMs: a ? Number(a[1]) : null }
}

/** Ping until one reply arrives (the first packets to a new peer may wait for its session). */
export async function waitPing (ns: string, ip: string, timeoutMs = 10_000): Promise<void> {
  await waitFor(async () => (await ping(ns, ip, 1)).received === 1, { timeoutMs, intervalMs: 100, what: `a ping reply from ${ip} in ${ns}` })
}

const RECEIVER = `
const net = require('node:net'); const { createHash } = require('node:crypto');
const [host, port] = process.argv.slice(1);
const srv = net.createServer((s) => { const h = createHash('sha256'); let n = 0;
  s.on('data', (d) => { h.update(d); n += d.length });
  s.on('end', () => { console.log(JSON.stringify({ bytes: n, sha256: h.digest('hex') })); s.end(); srv.close() }) });
srv.listen(Number(port), host, () => console.log('listening'));
setTimeout(() => { console.error('receiver timeout'); process.exit(3) }, 60000).unref();
`

const SENDER = `
const net = require('node:net'); const { createHash } = require('node:crypto');
const [host, port, size] = process.argv.slice(1);
const total = Number(size); const h = createHash('sha256'); const chunks = []; let seed = Buffer.from('lightweight-tunnel');
for (let made = 0; made < total;) { seed = createHash('sha512').update(seed).digest(); const c = Buffer.alloc(Math.min(65536, total - made));
  for (let i = 0; i < c.length; i += 64) seed.copy(c, i, 0, Math.min(64, c.length - i)); c[0] ^= made & 255; chunks.push(c); made += c.length }
for (const c of chunks) h.update(c);
const s = net.connect(Number(port), host, () => { for (const c of chunks) s.write(c); s.end() });
s.on('error', (e) => { console.error(e.message); process.exit(2) });
s.on('close', () => console.log(JSON.stringify({ bytes: total, sha256: h.digest('hex') })));
setTimeout(() => { console.error('sender timeout'); process.exit(3) }, 60000).unref();
`

/** Send `size` deterministic bytes over TCP from one namespace to another; returns both sides' byte counts and hashes. */
export async function tcpTransfer (fromNs: string, toNs: string, toIp: string, size: number, port = 5201): Promise<{ sent: { bytes: number, sha256: string }, received: { bytes: number, sha256: string } }> {
  const rx = spawnIn(toNs, 'env', ['-u', 'NODE_OPTIONS', process.execPath, '-e', RECEIVER, toIp, String(port)], { env: cleanEnv() })
  try {
    await rx.waitForOutput(/listening/, 5000)
    const tx = await runIn(fromNs, 'env', ['-u', 'NODE_OPTIONS', process.execPath, '-e', SENDER, toIp, String(port), String(size)], { timeoutMs: 60_000, env: cleanEnv() })
    const sent = JSON.parse(tx.stdout.trim().split('\n').pop()!) as { bytes: number, sha256: string }
    await rx.waitForOutput(/sha256/, 10_000)
    const line = rx.output().split('\n').find(l => l.includes('sha256'))!
    return { sent, received: JSON.parse(line) as { bytes: number, sha256: string } }
  } finally {
    await rx.stop('SIGKILL', 1000).catch(() => {})
  }
}

/** Does a network device exist in the namespace? */
export async function deviceExists (ns: string, dev: string): Promise<boolean> {
  const r = await runIn(ns, 'ip', ['-o', 'link', 'show']).catch(() => ({ stdout: '' }))
  return r.stdout.split('\n').some(l => l.split(':')[1]?.trim().split('@')[0] === dev)
}
