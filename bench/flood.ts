/**
 * bench:flood — does the server keep serving under a HandshakeInit flood?
 * In network namespaces: a server, two registered clients (alice, bob), a
 * flooder (eve) and a namespace for newcomers (carol). For each round (idle,
 * then each flood of test/helpers/init-flood.mjs from 8 source ports) it
 * measures, while the flood runs:
 *   - status: the server's control-socket answer time (median and max of 10);
 *   - register: a new client's control socket up (start-up done, registering) → 'registered';
 *   - peer list: the newcomer appears in alice's status;
 *   - ping loss: alice → bob's tunnel address, 40 pings 0.1 s apart.
 * Prints a table. Goals (issue 10): status <= 100 ms, register <= 1 s, peer
 * list <= 1 s, no ping lost. Run: npm run build && npm run bench:flood [-- --rate 50000]
 */
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import { rmSync } from 'node:fs'
import { createTopology } from '../src/lab/topology.js'
import { tempStateDir } from '../src/lab/state-dirs.js'
import { runIn, sleep, spawnIn, type LabProcess } from '../src/lab/exec.js'
import { controlRequest } from '../src/cli/control-protocol.js'
import type { StatusReport } from '../src/control/status.js'
import { BIN as OWN_BIN, ROOT } from './tunnels/index.js'

const KEY = 'bench-flood-key'
const FLOOD = fileURLToPath(new URL('test/helpers/init-flood.mjs', `file://${ROOT}/`))

function env (): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (k !== 'NODE_OPTIONS') e[k] = v
  return e
}

interface Node { proc: LabProcess, control: string }
/** Each daemon its own state dir (its own node key); a v1 build (--v1) has no --state-dir. */
let v1 = false
function start (ns: string, control: string, args: string[]): Node {
  rmSync(control, { force: true })
  const state = v1 ? [] : ['--state-dir', tempStateDir(control.replace(/\W+/g, '-'))]
  return { proc: spawnIn(ns, 'env', ['-u', 'NODE_OPTIONS', BIN, ...args, '--key', KEY, '--dev', 'lwt0', '--control', control, '--quiet', ...state], { env: env(), maxOutputBytes: 64 * 1024 }), control }
}
async function status (n: Node, timeoutMs = 5000): Promise<StatusReport | null> {
  try { return await controlRequest(n.control, { cmd: 'status' }, timeoutMs) as StatusReport } catch { return null }
}
async function until (f: () => Promise<boolean>, timeoutMs: number): Promise<number | null> {
  const t0 = performance.now()
  while (performance.now() - t0 < timeoutMs) { if (await f()) return performance.now() - t0; await sleep(20) }
  return null
}

const { values } = parseArgs({ options: { rate: { type: 'string', default: '50000' }, seconds: { type: 'string', default: '14' }, bin: { type: 'string' }, v1: { type: 'boolean', default: false } } })
// --bin: another build's bin/lightweight-tunnel (e.g. main's, for the "before" column); --v1: its inits carry no MAC trailer.
const BIN = values.bin ?? OWN_BIN
v1 = values.v1 === true
const rate = Number(values.rate)
const seconds = Number(values.seconds)
const topo = await createTopology({ clients: [{ name: 'alice', nat: 'none' }, { name: 'bob', nat: 'none' }, { name: 'carol', nat: 'none' }, { name: 'eve', nat: 'none' }] })
const rows: string[][] = []
const nodes: Node[] = []
try {
  const sock = (n: string): string => `/run/lightweight-tunnel/bench-${topo.id}-${n}.sock`
  const server = start(topo.serverNs, sock('s'), ['server', '--listen', '0.0.0.0:9000', '--tun', '10.79.0.1/24'])
  nodes.push(server)
  await sleep(1500)
  const alice = start(topo.client('alice').ns, sock('a'), ['client', '--remote', `${topo.serverWanIp}:9000`, '--tun', '10.79.0.2/24'])
  const bob = start(topo.client('bob').ns, sock('b'), ['client', '--remote', `${topo.serverWanIp}:9000`, '--tun', '10.79.0.3/24'])
  nodes.push(alice, bob)
  if (await until(async () => (await status(alice))?.state === 'registered' && (await status(bob))?.state === 'registered', 20_000) === null) throw new Error('alice and bob did not register')
  let n = 10
  for (const mode of ['idle', 'junk', 'wrong-key', 'member']) {
    const flood = mode === 'idle' ? null : runIn(topo.client('eve').ns, 'env', ['-u', 'NODE_OPTIONS', process.execPath, FLOOD, topo.serverWanIp, '9000', mode, String(rate), String(seconds), KEY, '8', values.v1 ? 'v1' : 'v2', '10.79.0.254/24'], { timeoutMs: (seconds + 30) * 1000, env: env() })
    const before = await status(server)
    await sleep(1500)
    const pingRun = runIn(topo.client('alice').ns, 'ping', ['-q', '-c', '40', '-i', '0.1', '-W', '1', '10.79.0.3'], { timeoutMs: 30_000 }).then(r => r.stdout, (e: unknown) => (e as { stdout?: string }).stdout ?? '')
    const times: number[] = []
    for (let i = 0; i < 10; i++) { const t0 = performance.now(); const s = await status(server, 10_000); times.push(s === null ? Infinity : performance.now() - t0); await sleep(100) }
    times.sort((a, b) => a - b)
    const ip = `10.79.0.${n++}`
    const carol = start(topo.client('carol').ns, sock(`c${n}`), ['client', '--remote', `${topo.serverWanIp}:9000`, '--tun', `${ip}/24`])
    // From the newcomer's control socket answering (its start-up done, registering) to 'registered'.
    const up = await until(async () => (await status(carol, 2000)) !== null, 10_000)
    const reg = up === null ? null : await until(async () => (await status(carol, 2000))?.state === 'registered', 10_000)
    const list = reg === null ? null : await until(async () => (await status(alice, 2000))?.peers.some(p => p.tunnelIp === ip) === true, 10_000)
    const pingOut = await pingRun
    const m = /(\d+) packets transmitted, (\d+) received/.exec(pingOut)
    const after = await status(server)
    await carol.proc.stop('SIGTERM', 3000).catch(() => {})
    const sum = flood === null ? null : JSON.parse((await flood).stdout.trim().split('\n').pop()!) as { rate: number }
    const d = (k: string): number => (after?.counters[k] ?? 0) - (before?.counters[k] ?? 0)
    rows.push([mode, sum === null ? '-' : String(sum.rate), `${times[5].toFixed(1)} / ${times[9].toFixed(1)}`, reg === null ? 'never' : reg.toFixed(0), list === null ? 'never' : list.toFixed(0),
      m ? `${Number(m[1]) - Number(m[2])}/${m[1]}` : '?', String(d('dropInitMac1')), String(d('dropInitRateSource') + d('dropInitRateGlobal')), String(d('cookieReplies')), String(d('dropControlRingFull'))])
    await sleep(1500)
  }
} finally {
  for (const x of nodes) await x.proc.stop('SIGTERM', 3000).catch(() => {})
  await topo.destroy()
}
const head = ['flood', 'sent/s', 'status ms (med / max)', 'register ms', 'peer list ms', 'ping lost', 'drop mac1', 'drop rate', 'cookies', 'ring full']
const w = head.map((h, i) => Math.max(h.length, ...rows.map(r => r[i].length)))
for (const r of [head, ...rows]) console.log(r.map((c, i) => c.padEnd(w[i])).join('  '))
