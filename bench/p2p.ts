/**
 * Direct paths, measured in the namespace lab (run as root after `npm run build`):
 *
 *   node dist/bench/p2p.js figure [--seconds 8] [--reps 3]   direct vs relay: TCP throughput (iperf3) and RTT (ping), side by side (medians)
 *   node dist/bench/p2p.js matrix [--tries 5]     time to direct per NAT pair: median and worst over the tries
 *   node dist/bench/p2p.js birthday [--tries 20]  symmetric ↔ port-restricted alone: share direct within 5 s, times
 *   node dist/bench/p2p.js rebind [--runs 5] [--logs]  a client's NAT flushes its mappings and moves to a new port range: time until traffic flows again, and until direct again
 *   node dist/bench/p2p.js portmap [--tries 7] [--proto pcp|upnp]   symmetric ↔ symmetric, one router mapping (PCP, or UPnP IGD only): time to direct and to the mapping; the same pair without it
 *
 * Both print a table and write JSON to bench/results/p2p-<mode>.json.
 *
 * figure: one topology, four clients behind port-restricted NATs: a1 ↔ b1
 * run with --p2p (direct once punched), a2 ↔ b2 with --no-p2p (the relay),
 * measured one pair at a time.
 * matrix: two clients of every NAT kind (plus two on one LAN) all start at
 * once, so every cell punches at the same moment under the load of 12
 * daemons; "time to direct" is, per cell, the later side's time from
 * learning of the peer (the server's peer list: both clients registered) to
 * its first confirmed direct path (status: p2p.timeToDirectMs).
 * rebind: two port-restricted clients (30-s UDP mapping timeout) on a direct
 * path, one pinging the other every 50 ms (alice, the rebinding side, in odd
 * runs; bob in even ones, so alice only answers); per run, alice's router is given a
 * new public port range and its conntrack table is flushed (every mapping,
 * also the one to the server, moves to a new port on its next packet).
 * "traffic" = from the move to the first ping reply after the outage (the
 * longest gap between replies), "direct" = until both sides are direct again.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { createTopology, type Topology } from '../src/lab/topology.js'
import { applyNat, flushConntrack, type NatKind } from '../src/lab/nat.js'
import { runIn, sleep, spawnIn, waitFor, type LabProcess } from '../src/lab/exec.js'
import type { StatusReport } from '../src/control/status.js'
import { stateDirFor } from '../src/lab/state-dirs.js'
import { startPortMappingGateway } from '../src/lab/port-mapping-gateway.js'

const BIN = fileURLToPath(new URL('../../bin/lightweight-tunnel', import.meta.url))
const KEY = 'bench-p2p-key'
const RESULTS = fileURLToPath(new URL('../../bench/results/', import.meta.url))

interface Node { proc: LabProcess, ns: string, control: string }

function env (): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (k !== 'NODE_OPTIONS') e[k] = v
  return e
}

function start (ns: string, id: string, name: string, args: string[], quiet = true): Node {
  const control = `/run/lightweight-tunnel/bench-${id}-${name}.sock`
  const proc = spawnIn(ns, BIN, [...args, '--key', KEY, '--dev', 'lwt0', '--control', control, quiet ? '--quiet' : '--log-level=info', '--state-dir', stateDirFor(ns)], { env: env() })
  return { proc, ns, control }
}

async function status (n: Node): Promise<StatusReport | null> {
  try {
    const r = await runIn(n.ns, BIN, ['status', '--json', '--control', n.control], { env: env() })
    return JSON.parse(r.stdout) as StatusReport
  } catch { return null }
}

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

function save (mode: string, data: unknown): void {
  mkdirSync(RESULTS, { recursive: true })
  const file = `${RESULTS}p2p-${mode}.json`
  writeFileSync(file, JSON.stringify(data, null, 2) + '\n')
  console.log(`\nwrote ${file}`)
}

// ── figure: direct vs relay ──────────────────────────────────────────────────

async function figure (seconds: number, reps: number): Promise<void> {
  const topo = await createTopology({
    clients: [
      { name: 'a1', nat: 'port-restricted' }, { name: 'b1', nat: 'port-restricted' },
      { name: 'a2', nat: 'port-restricted' }, { name: 'b2', nat: 'port-restricted' }
    ]
  })
  try {
    start(topo.serverNs, topo.id, 'server', ['server', '--listen', '0.0.0.0:9000', '--tun', '10.88.0.1/24'])
    const ip: Record<string, string> = { a1: '10.88.0.2', b1: '10.88.0.3', a2: '10.88.0.4', b2: '10.88.0.5' }
    const nodes: Record<string, Node> = {}
    for (const name of ['a1', 'b1', 'a2', 'b2']) {
      const extra = name.endsWith('2') ? ['--no-p2p'] : []
      nodes[name] = start(topo.client(name).ns, topo.id, name, ['client', '--remote', `${topo.serverWanIp}:9000`, '--tun', `${ip[name]}/24`, ...extra])
    }
    await waitFor(async () => (await status(nodes.a1!))?.peers.find(p => p.tunnelIp === ip.b1)?.path === 'direct', { timeoutMs: 30_000, intervalMs: 300, what: 'a1 ↔ b1 direct' })
    await waitFor(async () => (await status(nodes.a2!))?.peers.find(p => p.tunnelIp === ip.b2)?.session === 'established' ||
      (await runIn(topo.client('a2').ns, 'ping', ['-c', '1', '-W', '1', ip.b2!]).then(() => true, () => false)), { timeoutMs: 30_000, intervalMs: 300, what: 'a2 ↔ b2 relay up' })
    const samples: Array<{ path: string, mbps: number, retransmits: number, rttAvgMs: number, rttMdevMs: number }> = []
    for (let rep = 0; rep < reps; rep++) for (const [path, a, b] of [['direct', 'a1', 'b1'], ['relay', 'a2', 'b2']] as const) {
      const ping = await runIn(topo.client(a).ns, 'ping', ['-n', '-q', '-c', '200', '-i', '0.01', ip[b]!])
      const m = /= ([\d.]+)\/([\d.]+)\/([\d.]+)\/([\d.]+)/.exec(ping.stdout)
      const srv = spawnIn(topo.client(b).ns, 'iperf3', ['-s', '-1', '-B', ip[b]!])
      await sleep(500)
      const r = await runIn(topo.client(a).ns, 'iperf3', ['-c', ip[b]!, '-t', String(seconds), '-J'], { timeoutMs: (seconds + 20) * 1000 })
      await srv.stop('SIGKILL', 1000).catch(() => {})
      const j = JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number }, sum_sent: { retransmits?: number } } }
      samples.push({ path, mbps: Math.round(j.end.sum_received.bits_per_second / 1e4) / 100, retransmits: j.end.sum_sent.retransmits ?? 0, rttAvgMs: Number(m?.[2] ?? NaN), rttMdevMs: Number(m?.[4] ?? NaN) })
    }
    // Median over the repetitions (alternating direct and relay, so background load hits both alike).
    const rows = (['direct', 'relay'] as const).map(path => {
      const xs = samples.filter(x => x.path === path)
      return { path, mbps: median(xs.map(x => x.mbps)), retransmits: median(xs.map(x => x.retransmits)), rttAvgMs: median(xs.map(x => x.rttAvgMs)), rttMdevMs: median(xs.map(x => x.rttMdevMs)) }
    })
    console.log('\npath     TCP Mbit/s   retransmits   RTT avg ms   RTT mdev ms')
    for (const r of rows) console.log(`${r.path.padEnd(8)} ${String(r.mbps).padStart(10)}   ${String(r.retransmits).padStart(11)}   ${String(r.rttAvgMs).padStart(10)}   ${String(r.rttMdevMs).padStart(11)}`)
    save('figure', { when: new Date().toISOString(), seconds, reps, nat: 'port-restricted ↔ port-restricted', rows, samples })
  } finally {
    await topo.destroy()
  }
}

// ── matrix: time to direct ───────────────────────────────────────────────────

const KINDS: Array<[string, NatKind]> = [['n', 'none'], ['f', 'full-cone'], ['a', 'address-restricted'], ['p', 'port-restricted'], ['s', 'symmetric']]

async function matrix (tries: number): Promise<void> {
  const specs: Array<{ name: string, nat: NatKind, lan?: string }> = []
  for (const [p, nat] of KINDS) specs.push({ name: `${p}1`, nat }, { name: `${p}2`, nat })
  specs.push({ name: 'l1', nat: 'port-restricted', lan: 'home' }, { name: 'l2', nat: 'port-restricted', lan: 'home' })
  const tun = (name: string): string => `10.88.0.${10 + specs.findIndex(s => s.name === name)}`
  const cells: Array<{ label: string, a: string, b: string }> = []
  for (let i = 0; i < KINDS.length; i++) {
    for (let j = i; j < KINDS.length; j++) {
      cells.push({ label: `${KINDS[i]![1]} ↔ ${KINDS[j]![1]}`, a: `${KINDS[i]![0]}1`, b: i === j ? `${KINDS[j]![0]}2` : `${KINDS[j]![0]}1` })
    }
  }
  cells.push({ label: 'same LAN (port-restricted)', a: 'l1', b: 'l2' })
  const samples = new Map<string, Array<number | null>>(cells.map(c => [c.label, []]))
  const topo: Topology = await createTopology({ clients: specs })
  try {
    const server = start(topo.serverNs, topo.id, 'server', ['server', '--listen', '0.0.0.0:9000', '--tun', '10.88.0.1/24'])
    void server
    for (let t = 0; t < tries; t++) {
      const nodes = new Map<string, Node>()
      for (const s of specs) nodes.set(s.name, start(topo.client(s.name).ns, topo.id, `${s.name}-${t}`, ['client', '--remote', `${topo.serverWanIp}:9000`, '--tun', `${tun(s.name)}/24`]))
      // Let every cell finish its first punch burst (5 s) after the last registration.
      const stats = new Map<string, StatusReport>()
      await waitFor(async () => {
        for (const [name, n] of nodes) {
          const s = await status(n)
          if (s === null || s.state !== 'registered' || s.peers.length < specs.length) return false
          stats.set(name, s)
        }
        return true
      }, { timeoutMs: 60_000, intervalMs: 500, what: 'all clients registered' })
      await sleep(8000)
      for (const [name, n] of nodes) stats.set(name, (await status(n))!)
      for (const c of cells) {
        const pa = stats.get(c.a)!.peers.find(p => p.tunnelIp === tun(c.b))
        const pb = stats.get(c.b)!.peers.find(p => p.tunnelIp === tun(c.a))
        const ta = pa?.p2p?.timeToDirectMs ?? null
        const tb = pb?.p2p?.timeToDirectMs ?? null
        samples.get(c.label)!.push(ta === null || tb === null ? null : Math.max(ta, tb))
      }
      process.stdout.write(`try ${t + 1}/${tries} done\n`)
      await Promise.all([...nodes.values()].map(n => n.proc.stop('SIGTERM', 3000).catch(() => {})))
      await sleep(1500) // the server forgets them (Bye) before the next try
    }
    const rows = cells.map(c => {
      const xs = samples.get(c.label)!
      const ok = xs.filter((x): x is number => x !== null)
      return { cell: c.label, tries: xs.length, direct: ok.length, medianMs: ok.length ? Math.round(median(ok)) : null, worstMs: ok.length ? Math.round(Math.max(...ok)) : null, samplesMs: xs.map(x => x === null ? null : Math.round(x)) }
    })
    console.log('\ncell                                        direct   median ms   worst ms')
    for (const r of rows) console.log(`${r.cell.padEnd(44)}${`${r.direct}/${r.tries}`.padStart(6)}   ${String(r.medianMs ?? '-').padStart(9)}   ${String(r.worstMs ?? '-').padStart(8)}`)
    save('matrix', { when: new Date().toISOString(), tries, note: 'all 12 clients start at once; per cell the later side; from learning of the peer to a confirmed direct path', rows })
  } finally {
    await topo.destroy()
  }
}

// ── birthday: symmetric ↔ port-restricted, one pair, many tries ─────────────

async function birthday (tries: number): Promise<void> {
  const topo = await createTopology({ clients: [{ name: 's', nat: 'symmetric' }, { name: 'p', nat: 'port-restricted' }] })
  const times: Array<number | null> = []
  try {
    start(topo.serverNs, topo.id, 'server', ['server', '--listen', '0.0.0.0:9000', '--tun', '10.88.0.1/24'])
    for (let t = 0; t < tries; t++) {
      const s = start(topo.client('s').ns, topo.id, `s-${t}`, ['client', '--remote', `${topo.serverWanIp}:9000`, '--tun', '10.88.0.2/24'])
      const p = start(topo.client('p').ns, topo.id, `p-${t}`, ['client', '--remote', `${topo.serverWanIp}:9000`, '--tun', '10.88.0.3/24'])
      let ms: number | null = null
      try {
        await waitFor(async () => {
          const [a, b] = [await status(s), await status(p)]
          const pa = a?.peers.find(x => x.tunnelIp === '10.88.0.3')?.p2p
          const pb = b?.peers.find(x => x.tunnelIp === '10.88.0.2')?.p2p
          if (pa?.timeToDirectMs != null && pb?.timeToDirectMs != null) { ms = Math.max(pa.timeToDirectMs, pb.timeToDirectMs); return true }
          return false
        }, { timeoutMs: 15_000, intervalMs: 300, what: 'direct' })
      } catch { /* stays null: not direct within 15 s */ }
      times.push(ms === null ? null : Math.round(ms))
      process.stdout.write(`try ${t + 1}/${tries}: ${ms === null ? 'relay' : `${Math.round(ms)} ms`}\n`)
      await Promise.all([s.proc.stop('SIGTERM', 3000).catch(() => {}), p.proc.stop('SIGTERM', 3000).catch(() => {})])
      await sleep(1000)
    }
  } finally {
    await topo.destroy()
  }
  const ok = times.filter((x): x is number => x !== null)
  const within5 = ok.filter(x => x <= 5000).length
  const row = { tries, direct: ok.length, directWithin5s: within5, medianMs: ok.length ? Math.round(median(ok)) : null, worstMs: ok.length ? Math.max(...ok) : null, samplesMs: times }
  console.log(`\nsymmetric ↔ port-restricted: direct ${ok.length}/${tries}, within 5 s ${within5}/${tries}, median ${row.medianMs} ms, worst ${row.worstMs} ms`)
  save('birthday', { when: new Date().toISOString(), note: 'time from learning of the peer to a confirmed direct path, later side', ...row })
}

// ── rebind: the NAT flushes its mappings and moves to a new port range ──────

async function rebind (runs: number, logs: boolean): Promise<void> {
  const topo = await createTopology({ udpTimeoutSec: 30, clients: [{ name: 'alice', nat: 'port-restricted' }, { name: 'bob', nat: 'port-restricted' }] })
  const A = '10.88.0.2'
  const B = '10.88.0.3'
  const samples: Array<{ run: number, pinger: string, portRange: string, trafficMs: number | null, gapMs: number | null, lost: number, directMs: number | null }> = []
  try {
    start(topo.serverNs, topo.id, 'server', ['server', '--listen', '0.0.0.0:9000', '--tun', '10.88.0.1/24'])
    const alice = start(topo.client('alice').ns, topo.id, 'alice', ['client', '--remote', `${topo.serverWanIp}:9000`, '--tun', `${A}/24`], !logs)
    const bob = start(topo.client('bob').ns, topo.id, 'bob', ['client', '--remote', `${topo.serverWanIp}:9000`, '--tun', `${B}/24`], !logs)
    const views = async (): Promise<[StatusReport['peers'][number] | undefined, StatusReport['peers'][number] | undefined]> =>
      [(await status(alice))?.peers.find(p => p.tunnelIp === B), (await status(bob))?.peers.find(p => p.tunnelIp === A)]
    const c = topo.client('alice')
    for (let run = 0; run < runs; run++) {
      await waitFor(async () => { const [a, b] = await views(); return a?.path === 'direct' && b?.path === 'direct' }, { timeoutMs: 30_000, intervalMs: 200, what: 'both sides direct' })
      await sleep(1000)
      // Alternate who sends: the rebinding side (its packets keep it busy) or its peer (the rebinding side only answers).
      const from = run % 2 === 0 ? 'alice' : 'bob'
      const pinger = runIn(topo.client(from).ns, 'ping', ['-n', '-D', '-i', '0.05', '-c', '140', '-W', '1', from === 'alice' ? B : A], { timeoutMs: 20_000 })
        .catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? '' }))
      await sleep(1000)
      const lo = 20000 + 2000 * (run % 20)
      const portRange = [lo, lo + 999] as const
      // The new port range applies to new flows only: the move is the flush.
      await applyNat(c.routerNs!, 'port-restricted', { wan: c.routerWan!, lan: c.routerLan!, wanIp: c.routerWanIp!, mappingTimeoutSec: 30, portRange })
      const movedAt = Date.now()
      await flushConntrack(c.routerNs!)
      let directMs: number | null = null
      try {
        await waitFor(async () => {
          const [a, b] = await views()
          const now = Date.now() // after the status reads: an upper bound
          if (a?.path !== 'direct' || b?.path !== 'direct' || !/:(\d+)$/.test(b.endpoint ?? '')) return false
          const port = Number(/:(\d+)$/.exec(b.endpoint!)![1])
          if (port < lo || port > lo + 999) return false // still the old mapping
          directMs = now - 1000 * Math.min(a.p2p!.pathAgeSec, b.p2p!.pathAgeSec) - movedAt
          return true
        }, { timeoutMs: 15_000, intervalMs: 100, what: 'direct again' })
      } catch { /* stays null */ }
      const out = (await pinger).stdout
      const replies = [...out.matchAll(/^\[(\d+\.\d+)\] \d+ bytes from .* icmp_seq=(\d+)/gm)].map(m => Number(m[1]) * 1000)
      const sent = Number(/(\d+) packets transmitted/.exec(out)?.[1] ?? 0)
      // The outage: the longest gap between two replies after the move began.
      let gapMs: number | null = null
      let trafficMs: number | null = null
      for (let i = 1; i < replies.length; i++) {
        if (replies[i]! < movedAt) continue
        const g = replies[i]! - replies[i - 1]!
        if (gapMs === null || g > gapMs) { gapMs = Math.round(g); trafficMs = Math.round(replies[i]! - movedAt) }
      }
      const row = { run: run + 1, pinger: `${from} → ${from === 'alice' ? 'bob' : 'alice'}`, portRange: `${lo}-${lo + 999}`, trafficMs, gapMs, lost: sent - replies.length, directMs: directMs === null ? null : Math.round(directMs) }
      samples.push(row)
      if (logs) process.stdout.write(`moved at ${new Date(movedAt).toISOString()}\n--- alice\n${alice.proc.tail(15)}\n--- bob\n${bob.proc.tail(15)}\n`)
      process.stdout.write(`run ${row.run}: ${row.pinger}, ports ${row.portRange}: traffic after ${row.trafficMs} ms (gap ${row.gapMs} ms, ${row.lost} pings lost), direct after ${row.directMs} ms\n`)
    }
    const traffic = samples.map(x => x.trafficMs).filter((x): x is number => x !== null)
    const direct = samples.map(x => x.directMs).filter((x): x is number => x !== null)
    const summary = {
      runs,
      trafficMedianMs: traffic.length ? median(traffic) : null,
      trafficWorstMs: traffic.length ? Math.max(...traffic) : null,
      trafficWithin2s: traffic.filter(x => x <= 2000).length,
      directMedianMs: direct.length ? median(direct) : null,
      directWorstMs: direct.length ? Math.max(...direct) : null
    }
    console.log(`\nrebind: traffic again after ${traffic.join(', ')} ms (median ${summary.trafficMedianMs}, worst ${summary.trafficWorstMs}, ≤ 2 s in ${summary.trafficWithin2s}/${runs}); direct again after ${direct.join(', ')} ms`)
    save('rebind', { when: new Date().toISOString(), note: 'port-restricted ↔ port-restricted, 30-s mapping timeout; alice\'s NAT gets a new port range and its conntrack is flushed; ping every 50 ms alice → bob', ...summary, samples })
  } finally {
    await topo.destroy()
  }
}

// ── portmap: symmetric ↔ symmetric with one side's router mapping ───────────

/** Runs s1 (behind the mapping router) and s2 once; the later side's time to direct and the wall time from start, or null (relay after `limitMs`). */
async function portmapTry (topo: Topology, t: number, extra: string[], limitMs: number): Promise<{ toDirectMs: number | null, fromStartMs: number | null, reason: string | null, mappedMs: number | null }> {
  const t0 = Date.now()
  let mappedMs: number | null = null
  const a = start(topo.client('s1').ns, topo.id, `s1-${t}`, ['client', '--remote', `${topo.serverWanIp}:9000`, '--tun', '10.88.0.2/24', ...extra])
  const b = start(topo.client('s2').ns, topo.id, `s2-${t}`, ['client', '--remote', `${topo.serverWanIp}:9000`, '--tun', '10.88.0.3/24'])
  let r: { toDirectMs: number | null, fromStartMs: number | null, reason: string | null } = { toDirectMs: null, fromStartMs: null, reason: null }
  try {
    await waitFor(async () => {
      const [sa, sb] = [await status(a), await status(b)]
      // When s1's status first shows the mapping (sampled every 100 ms; includes process start).
      if (mappedMs === null && sa?.portMapping?.state === 'mapped') mappedMs = Date.now() - t0
      const pa = sa?.peers.find(x => x.tunnelIp === '10.88.0.3')?.p2p
      const pb = sb?.peers.find(x => x.tunnelIp === '10.88.0.2')?.p2p
      r.reason = pa?.relayReason ?? null
      if (pa?.timeToDirectMs != null && pb?.timeToDirectMs != null) {
        r = { toDirectMs: Math.round(Math.max(pa.timeToDirectMs, pb.timeToDirectMs)), fromStartMs: Date.now() - t0, reason: null }
        return true
      }
      return false
    }, { timeoutMs: limitMs, intervalMs: 100, what: 'direct' })
  } catch { /* stays null: relayed */ }
  await Promise.all([a.proc.stop('SIGTERM', 3000).catch(() => {}), b.proc.stop('SIGTERM', 3000).catch(() => {})])
  await sleep(1000)
  return { ...r, mappedMs }
}

async function portmap (tries: number, proto: 'pcp' | 'upnp'): Promise<void> {
  const topo = await createTopology({ clients: [{ name: 's1', nat: 'symmetric' }, { name: 's2', nat: 'symmetric' }] })
  const runs: Array<{ toDirectMs: number | null, fromStartMs: number | null, mappedMs: number | null }> = []
  let without: { toDirectMs: number | null, reason: string | null }
  try {
    // pcp: the responder speaks PCP and NAT-PMP (PCP wins); upnp: only UPnP IGD (after PCP/NAT-PMP's head start).
    await startPortMappingGateway(topo.client('s1'), { proto: proto === 'upnp' ? 'upnp' : 'both' })
    start(topo.serverNs, topo.id, 'server', ['server', '--listen', '0.0.0.0:9000', '--tun', '10.88.0.1/24'])
    for (let t = 0; t < tries; t++) {
      const r = await portmapTry(topo, t, [], 15_000)
      runs.push(r)
      process.stdout.write(`try ${t + 1}/${tries}: ${r.toDirectMs === null ? 'relay' : `direct ${r.toDirectMs} ms after learning of the peer, ${r.fromStartMs} ms after start`}; mapped ${r.mappedMs ?? '-'} ms after start
`)
    }
    without = await portmapTry(topo, tries, ['--no-port-mapping'], 10_000)
  } finally {
    await topo.destroy()
  }
  const ok = runs.map(r => r.toDirectMs).filter((x): x is number => x !== null)
  const fromStart = runs.map(r => r.fromStartMs).filter((x): x is number => x !== null)
  const mapped = runs.map(r => r.mappedMs).filter((x): x is number => x !== null)
  const row = {
    proto, tries, direct: ok.length, medianMs: ok.length ? median(ok) : null, worstMs: ok.length ? Math.max(...ok) : null,
    medianFromStartMs: fromStart.length ? median(fromStart) : null, samplesMs: runs.map(r => r.toDirectMs),
    mappedMedianFromStartMs: mapped.length ? median(mapped) : null, mappedWorstFromStartMs: mapped.length ? Math.max(...mapped) : null,
    withoutMapping: without.toDirectMs === null ? `relay (${without.reason ?? 'no reason reported'}) after 10 s` : `direct in ${without.toDirectMs} ms`
  }
  const label = `with one router mapping (${proto === 'upnp' ? 'UPnP' : 'PCP'})`.padEnd(30)
  console.log('\nsymmetric ↔ symmetric          direct   median ms   worst ms   median ms from daemon start   mapped after start: median / worst ms')
  console.log(`${label}${`${ok.length}/${tries}`.padStart(7)}   ${String(row.medianMs ?? '-').padStart(9)}   ${String(row.worstMs ?? '-').padStart(8)}   ${String(row.medianFromStartMs ?? '-').padStart(9)}                     ${row.mappedMedianFromStartMs ?? '-'} / ${row.mappedWorstFromStartMs ?? '-'}`)
  console.log(`--no-port-mapping             ${row.withoutMapping}`)
  save(proto === 'upnp' ? 'portmap-upnp' : 'portmap', { when: new Date().toISOString(), note: 'time from learning of the peer to a confirmed direct path, later side; fromStart includes registration', ...row })
}

const [mode = 'figure', ...rest] = process.argv.slice(2)
const opt = (name: string, dflt: number): number => {
  const i = rest.indexOf(`--${name}`)
  return i >= 0 ? Number(rest[i + 1]) : dflt
}
if (mode === 'figure') await figure(opt('seconds', 8), opt('reps', 3))
else if (mode === 'matrix') await matrix(opt('tries', 5))
else if (mode === 'birthday') await birthday(opt('tries', 20))
else if (mode === 'rebind') await rebind(opt('runs', 5), rest.includes('--logs'))
else if (mode === 'portmap') {
  const i = rest.indexOf('--proto')
  const proto = i >= 0 ? rest[i + 1] : 'pcp'
  if (proto !== 'pcp' && proto !== 'upnp') throw new Error(`--proto ${String(proto)}: expected pcp or upnp`)
  await portmap(opt('tries', 7), proto)
}
else { console.error('usage: node dist/bench/p2p.js figure [--seconds N] | matrix [--tries N] | birthday [--tries N] | rebind [--runs N] | portmap [--tries N]'); process.exitCode = 2 }
