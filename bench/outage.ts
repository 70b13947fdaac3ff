/**
 * A real server outage, measured in the namespace lab (root, after `npm run build`):
 *
 *   npm run bench:outage -- [--minutes 10] [--interval 0.2]
 *
 * Two clients behind port-restricted NATs reach each other directly; the
 * server is killed and stays dead for --minutes (real timers: sessions
 * rekey every 120 s and expire at 180 s, so 10 minutes span 5 rekeys and 3+
 * lifetimes). Alice pings Bob's tunnel address every --interval seconds the
 * whole time. Prints pings sent/lost per minute and in total, and writes
 * bench/results/outage.json. Issue 10's goal: a 10-minute outage loses no
 * ping between two directly connected clients (before: every ping after
 * ~176 s was lost, when the session expired).
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { createTopology } from '../src/lab/topology.js'
import { tempStateDir } from '../src/lab/state-dirs.js'
import { runIn, spawnIn, waitFor, type LabProcess } from '../src/lab/exec.js'
import type { StatusReport } from '../src/control/status.js'

const BIN = fileURLToPath(new URL('../../bin/lightweight-tunnel', import.meta.url))
const KEY = 'bench-outage-key'
const RESULTS = fileURLToPath(new URL('../../bench/results/', import.meta.url))

interface Node { proc: LabProcess, ns: string, control: string }

function env (): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (k !== 'NODE_OPTIONS' && k !== 'LWT_TEST_TIME_SCALE') e[k] = v
  return e
}

function arg (name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`)
  if (i < 0) return dflt
  const v = Number(process.argv[i + 1])
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} needs a positive number`)
  return v
}

async function status (n: Node): Promise<StatusReport | null> {
  try {
    const r = await runIn(n.ns, BIN, ['status', '--json', '--control', n.control], { env: env() })
    return JSON.parse(r.stdout) as StatusReport
  } catch { return null }
}

async function main (): Promise<void> {
  const minutes = arg('minutes', 10)
  const interval = arg('interval', 0.2)
  const topo = await createTopology({ clients: [{ name: 'alice', nat: 'port-restricted' }, { name: 'bob', nat: 'port-restricted' }] })
  const nodes: Node[] = []
  const start = (ns: string, name: string, args: string[]): Node => {
    const control = `/run/lightweight-tunnel/bench-${topo.id}-${name}.sock`
    const n = { proc: spawnIn(ns, BIN, [...args, '--key', KEY, '--dev', 'lwt0', '--control', control, '--quiet', '--state-dir', tempStateDir(`bench-${name}`)], { env: env() }), ns, control }
    nodes.push(n)
    return n
  }
  try {
    const server = start(topo.serverNs, 'server', ['server', '--listen', '0.0.0.0:9000', '--tun', '10.77.0.1/24'])
    const alice = start(topo.client('alice').ns, 'alice', ['client', '--remote', `${topo.serverWanIp}:9000`, '--tun', '10.77.0.2/24'])
    const bob = start(topo.client('bob').ns, 'bob', ['client', '--remote', `${topo.serverWanIp}:9000`, '--tun', '10.77.0.3/24'])
    const direct = async (n: Node, peer: string): Promise<boolean> => (await status(n))?.peers.find(p => p.tunnelIp === peer)?.path === 'direct'
    await waitFor(async () => await direct(alice, '10.77.0.3') && await direct(bob, '10.77.0.2'), { timeoutMs: 30_000, intervalMs: 250, what: 'a direct path both ways' })
    await server.proc.stop('SIGKILL', 2000)
    console.log(`server killed; pinging 10.77.0.3 from alice every ${interval} s for ${minutes} min`)
    const perMinute: Array<{ minute: number, sent: number, lost: number }> = []
    const per = Math.round(60 / interval)
    for (let m = 1; m <= minutes; m++) {
      // One minute of pings; the lab's command timeout is raised to cover it.
      const r = await runIn(alice.ns, 'ping', ['-n', '-q', '-c', String(per), '-i', String(interval), '-W', '2', '10.77.0.3'], { timeoutMs: 90_000 })
        .catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }))
      const mm = /(\d+) packets transmitted, (\d+) received/.exec(r.stdout)
      const sent = mm ? Number(mm[1]) : per
      const lost = sent - (mm ? Number(mm[2]) : 0)
      perMinute.push({ minute: m, sent, lost })
      const s = await status(alice)
      const b = s?.peers.find(p => p.tunnelIp === '10.77.0.3')
      console.log(`minute ${String(m).padStart(2)}: ${sent} sent, ${lost} lost; alice: state ${s?.state}, peer path ${b?.path}, session ${b?.session}`)
    }
    const sent = perMinute.reduce((a, x) => a + x.sent, 0)
    const lost = perMinute.reduce((a, x) => a + x.lost, 0)
    console.log(`total: ${sent} pings sent over a ${minutes}-minute server outage, ${lost} lost (${(100 * lost / sent).toFixed(2)} %)`)
    mkdirSync(RESULTS, { recursive: true })
    writeFileSync(`${RESULTS}outage.json`, JSON.stringify({ minutes, interval, sent, lost, perMinute, at: new Date().toISOString() }, null, 2) + '\n')
  } finally {
    for (const n of nodes) await n.proc.stop('SIGKILL', 1000).catch(() => {})
    await topo.destroy()
  }
}

main().catch((e: unknown) => { console.error(e instanceof Error ? e.message : e); process.exitCode = 1 })
