#!/usr/bin/env node
// Quick side-by-side speed check (the speed work's own probe; the product
// harness is `npm run bench`). One lab: a server and two clients on the WAN
// (no NAT). Measures, in one run:
//   ours   client→client (relayed through the server) and client→server,
//   fastd  and wireguard-go between the same two client namespaces (if installed),
// each: iperf3 TCP single stream, iperf3 UDP 64-byte packets/s received,
// idle ping p50, and our daemons' RSS.
//
// Usage: node scripts/perf/quick.mjs [--secs 5] [--ping-only (200 pings cold, then warm after 2 s of TCP)] [--settle SECONDS idle before the last RSS reading] [--only ours,fastd,wg] [--extra "--placement fused"]
//        [--bin path/to/lightweight-tunnel] [--extra-b "..."] (a second build/args to compare, run as "ours-b")
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const { createTopology } = await import(join(root, 'dist/src/lab/topology.js'))
const { runIn, spawnIn, waitFor, sleep } = await import(join(root, 'dist/src/lab/exec.js'))

const args = process.argv.slice(2)
const opt = (name, def) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : def }
const SECS = Number(opt('--secs', '5'))
const ONLY = opt('--only', 'ours,fastd,wg').split(',')
const variants = [{ name: 'ours', bin: opt('--bin', join(root, 'bin/lightweight-tunnel')), extra: (opt('--extra', '') || '').split(' ').filter(Boolean) }]
if (opt('--bin-b') || opt('--extra-b')) variants.push({ name: 'ours-b', bin: opt('--bin-b', variants[0].bin), extra: (opt('--extra-b', '') || '').split(' ').filter(Boolean) })
const KEY = 'perf-quick-key'
const env = { ...process.env }; delete env.NODE_OPTIONS
const results = []
const log = (...a) => console.error('[perf]', ...a)

function sh (cmd) { const r = spawnSync('sh', ['-c', cmd], { encoding: 'utf8' }); return r.stdout.trim() }
async function iperfTcp (fromNs, toNs, ip, secs = SECS, extra = []) {
  const srv = spawnIn(toNs, 'iperf3', ['-s', '-1', '-B', ip, '-p', '5299'])
  await srv.waitForOutput(/listening/i, 5000).catch(() => {})
  await sleep(200)
  try {
    const r = await runIn(fromNs, 'iperf3', ['-c', ip, '-p', '5299', '-t', String(secs), '-J', ...extra], { timeoutMs: (secs + 20) * 1000 })
    const j = JSON.parse(r.stdout)
    return { mbps: j.end.sum_received.bits_per_second / 1e6, retr: j.end.sum_sent.retransmits ?? 0 }
  } catch (e) { return { mbps: 0, retr: -1, err: String(e.message ?? e).slice(0, 300) } } finally { await srv.stop('SIGKILL', 500).catch(() => {}) }
}
async function iperfUdp64 (fromNs, toNs, ip, secs = SECS) {
  const srv = spawnIn(toNs, 'iperf3', ['-s', '-1', '-B', ip, '-p', '5298'])
  await srv.waitForOutput(/listening/i, 5000).catch(() => {})
  await sleep(200)
  try {
    // 64-byte IP packets: 36-byte UDP payload (20 IP + 8 UDP + 36).
    const r = await runIn(fromNs, 'iperf3', ['-c', ip, '-p', '5298', '-u', '-l', '36', '-b', '0', '-t', String(secs), '-J'], { timeoutMs: (secs + 20) * 1000 })
    const j = JSON.parse(r.stdout)
    const s = j.end.sum_received ?? j.end.sum
    const pkts = (s.packets ?? 0) - (s.lost_packets ?? 0)
    return { pps: pkts / s.seconds, lossPct: s.lost_percent }
  } catch (e) { return { pps: 0, err: String(e.message ?? e).slice(0, 300) } } finally { await srv.stop('SIGKILL', 500).catch(() => {}) }
}
async function pingP50 (ns, ip, n = 50) {
  const r = await runIn(ns, 'ping', ['-n', '-c', String(n), '-i', '0.02', ip]).catch((e) => ({ stdout: e.stdout ?? '' }))
  const t = [...r.stdout.matchAll(/time=([\d.]+)/g)].map(m => Number(m[1])).sort((a, b) => a - b)
  return t.length ? t[Math.floor(t.length / 2)] : null
}
function rssOf (ns, comm) {
  const pids = sh(`ip netns pids ${ns}`).split('\n').filter(Boolean)
  let best = 0
  for (const p of pids) {
    try {
      const st = readFileSync(`/proc/${p}/status`, 'utf8')
      const name = /Name:\s+(\S+)/.exec(st)[1]
      if (!name.startsWith(comm)) continue
      const kb = Number(/VmRSS:\s+(\d+)/.exec(st)?.[1] ?? 0)
      best = Math.max(best, kb)
    } catch {}
  }
  return best / 1024
}
// CPU ticks per thread of every process in the given namespaces: { 'ns/comm/thread': ticks }
function threadTicks (nss) {
  const out = {}
  for (const ns of nss) {
    for (const p of sh(`ip netns pids ${ns}`).split('\n').filter(Boolean)) {
      let tasks = []
      try { tasks = sh(`ls /proc/${p}/task`).split('\n').filter(Boolean) } catch {}
      for (const t of tasks) {
        try {
          const st = readFileSync(`/proc/${p}/task/${t}/stat`, 'utf8')
          const name = st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'))
          const f = st.slice(st.lastIndexOf(')') + 2).split(' ')
          const key = `${ns.split('-').pop()}/${name}/${t === p ? 'main' : t}`
          out[key] = (out[key] ?? 0) + Number(f[11]) + Number(f[12])
        } catch {}
      }
    }
  }
  return out
}
// CPU seconds (user+system, all threads) of our daemons (node processes) in the namespaces.
function daemonCpu (nss) {
  let ticks = 0
  for (const ns of nss) {
    for (const p of sh(`ip netns pids ${ns}`).split('\n').filter(Boolean)) {
      try {
        const st = readFileSync(`/proc/${p}/stat`, 'utf8')
        if (!st.includes('(node)') && !st.includes('(fastd)') && !st.includes('(wireguard-go)')) continue
        const f = st.slice(st.lastIndexOf(')') + 2).split(' ')
        ticks += Number(f[11]) + Number(f[12])
      } catch {}
    }
  }
  return ticks / 100
}
function softirqTicks () { const l = readFileSync('/proc/stat', 'utf8').split('\n')[0].split(/\s+/); return { softirq: Number(l[7]), total: l.slice(1).reduce((a, b) => a + Number(b || 0), 0), idle: Number(l[4]) } }
function cpuLoad () { return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ') }

const topo = await createTopology({ clients: [{ name: 'a', nat: 'none' }, { name: 'b', nat: 'none' }] })
const cleanup = async () => { await topo.destroy().catch(() => {}) }
process.on('SIGINT', () => { void cleanup().then(() => process.exit(130)) })
try {
  const A = topo.client('a'); const B = topo.client('b')
  for (const v of variants) {
    if (!ONLY.includes('ours')) break
    const ctl = (n) => `/run/lightweight-tunnel/perfq-${topo.id}-${v.name}-${n}.sock`
    const srv = spawnIn(topo.serverNs, 'env', ['-u', 'NODE_OPTIONS', v.bin, 'server', '--listen', '0.0.0.0:9000', '--tun', '10.77.0.1/24', '--key', KEY, '--dev', 'lwt0', '--control', ctl('s'), ...v.extra], { env })
    const ca = spawnIn(A.ns, 'env', ['-u', 'NODE_OPTIONS', v.bin, 'client', '--remote', `${topo.serverWanIp}:9000`, '--tun', '10.77.0.2/24', '--key', KEY, '--dev', 'lwt0', '--control', ctl('a'), ...v.extra], { env })
    const cb = spawnIn(B.ns, 'env', ['-u', 'NODE_OPTIONS', v.bin, 'client', '--remote', `${topo.serverWanIp}:9000`, '--tun', '10.77.0.3/24', '--key', KEY, '--dev', 'lwt0', '--control', ctl('b'), ...v.extra], { env })
    await waitFor(async () => { const r = await runIn(A.ns, 'ping', ['-c', '1', '-W', '1', '10.77.0.3']).catch(() => null); return r !== null }, { timeoutMs: 30000, intervalMs: 300, what: 'tunnel up' })
    await waitFor(async () => { const r = await runIn(A.ns, 'ping', ['-c', '1', '-W', '1', '10.77.0.1']).catch(() => null); return r !== null }, { timeoutMs: 30000, intervalMs: 300, what: 'tunnel up to server' })
    await sleep(2000)
    const rssIdle = { server: rssOf(topo.serverNs, 'node'), client: rssOf(A.ns, 'node') }
    if (args.includes('--ping-only')) {
      const cold = await pingP50(A.ns, '10.77.0.1', 200)
      await iperfTcp(A.ns, topo.serverNs, '10.77.0.1', 2)
      const warm = await pingP50(A.ns, '10.77.0.1', 200)
      results.push({ tunnel: v.name, extra: v.extra.join(' '), pingCold: cold, pingWarm: warm, rssIdle })
      for (const p of [ca, cb, srv]) await p.stop('SIGTERM', 3000).catch(() => {})
      continue
    }
    const pingRelay = await pingP50(A.ns, '10.77.0.3')
    const pingSrv = await pingP50(A.ns, '10.77.0.1')
    log(v.name, 'load', cpuLoad())
    let t0, s0, t1, s1
    setTimeout(() => { t0 = threadTicks([A.ns, topo.serverNs, B.ns]); s0 = softirqTicks() }, 1500)
    setTimeout(() => { t1 = threadTicks([A.ns, topo.serverNs, B.ns]); s1 = softirqTicks() }, SECS * 1000)
    const c0 = daemonCpu([A.ns, topo.serverNs, B.ns])
    const tcpRelay = await iperfTcp(A.ns, B.ns, '10.77.0.3')
    tcpRelay.cpuSecPerGB = (daemonCpu([A.ns, topo.serverNs, B.ns]) - c0) / (tcpRelay.mbps * SECS / 8000)
    if (args.includes('--threads')) {
      const span = (s1.total - s0.total) / 2 // ticks per CPU
      const rows = Object.entries(t1).map(([k, v]) => [k, Math.round(100 * (v - (t0[k] ?? 0)) / span)]).filter(([, v]) => v > 2).sort((a, b) => b[1] - a[1])
      log(v.name, 'tcpRelay thread CPU % of one core:', JSON.stringify(rows), 'machine softirq %', Math.round(100 * (s1.softirq - s0.softirq) / (s1.total - s0.total) * 2), 'idle %', Math.round(100 * (s1.idle - s0.idle) / (s1.total - s0.total) * 2))
    }
    const c1 = daemonCpu([A.ns, topo.serverNs])
    const tcpSrv = await iperfTcp(A.ns, topo.serverNs, '10.77.0.1')
    tcpSrv.cpuSecPerGB = (daemonCpu([A.ns, topo.serverNs]) - c1) / (tcpSrv.mbps * SECS / 8000)
    const udpRelay = await iperfUdp64(A.ns, B.ns, '10.77.0.3')
    if (args.includes('--threads')) {
      setTimeout(() => { t0 = threadTicks([A.ns, topo.serverNs]); s0 = softirqTicks() }, 1500)
      setTimeout(() => { t1 = threadTicks([A.ns, topo.serverNs]); s1 = softirqTicks() }, SECS * 1000)
    }
    const udpSrv = await iperfUdp64(A.ns, topo.serverNs, '10.77.0.1')
    if (args.includes('--threads')) {
      const span = (s1.total - s0.total) / 2
      const rows = Object.entries(t1).map(([k, v]) => [k, Math.round(100 * (v - (t0[k] ?? 0)) / span)]).filter(([, v]) => v > 2).sort((a, b) => b[1] - a[1])
      log(v.name, 'udpSrv thread CPU % of one core:', JSON.stringify(rows), 'machine softirq %', Math.round(100 * (s1.softirq - s0.softirq) / (s1.total - s0.total) * 2), 'idle %', Math.round(100 * (s1.idle - s0.idle) / (s1.total - s0.total) * 2))
    }
    const kd = async (ns) => {
      const l = await runIn(ns, 'ip', ['-s', '-j', 'link', 'show', 'lwt0']).then(r => JSON.parse(r.stdout)[0].stats64).catch(() => null)
      const snmp = await runIn(ns, 'cat', ['/proc/net/snmp']).then(r => r.stdout.split('\n').filter(x => x.startsWith('Udp:'))).catch(() => [])
      const u = snmp.length === 2 ? Object.fromEntries(snmp[0].split(/\s+/).slice(1).map((k, i) => [k, Number(snmp[1].split(/\s+/)[i + 1])])) : {}
      return { tunTxDrop: l?.tx.dropped, tunRxDrop: l?.rx.dropped, udpRcvbufErr: u.RcvbufErrors, udpSndbufErr: u.SndbufErrors, udpInErr: u.InErrors }
    }
    const kdrops = { a: await kd(A.ns), server: await kd(topo.serverNs), b: await kd(B.ns) }
    // After the tests (VmRSS now, not a true peak).
    const rssPeak = { server: rssOf(topo.serverNs, 'node'), client: rssOf(A.ns, 'node') }
    await sleep(Number(opt('--settle', '0')) * 1000)
    const rssSettled = { server: rssOf(topo.serverNs, 'node'), client: rssOf(A.ns, 'node') }
    const st = await runIn(A.ns, 'env', ['-u', 'NODE_OPTIONS', v.bin, 'status', '--json', '--control', ctl('a')], { env }).then(r => JSON.parse(r.stdout)).catch(() => null)
    const stS = await runIn(topo.serverNs, 'env', ['-u', 'NODE_OPTIONS', v.bin, 'status', '--json', '--control', ctl('s')], { env }).then(r => JSON.parse(r.stdout)).catch(() => null)
    const stB = await runIn(B.ns, 'env', ['-u', 'NODE_OPTIONS', v.bin, 'status', '--json', '--control', ctl('b')], { env }).then(r => JSON.parse(r.stdout)).catch(() => null)
    const drops = (s) => s ? Object.fromEntries(Object.entries(s.counters ?? {}).filter(([k, x]) => (k.startsWith('drop') || k === 'tunRxSuperpackets' || k === 'tunRxPackets') && x > 0)) : null
    results.push({ tunnel: v.name, extra: v.extra.join(' '), tcpRelay, tcpSrv, udpRelay, udpSrv, pingRelay, pingSrv, rssIdle, rssPeak, rssSettled, kdrops, drops: { a: drops(st), server: drops(stS), b: drops(stB) } })
    for (const p of [ca, cb, srv]) await p.stop('SIGTERM', 3000).catch(() => {})
    await sleep(500)
  }
  const dir = mkdtempSync(join(tmpdir(), 'perfq-'))
  const pa = '10.99.0.1'; const pb = '10.99.0.2'
  if (ONLY.includes('fastd') && existsSync('/usr/bin/fastd')) {
    const ka = sh('fastd --generate-key --machine-readable'); const kb = sh('fastd --generate-key --machine-readable')
    const pub = (k) => sh(`printf 'secret "%s";' ${k} > ${dir}/k.conf; fastd --config ${dir}/k.conf --show-key --machine-readable`)
    const conf = (me, sec, peerPub, peerIp, name) => `log level error;\ninterface "${name}";\nmode tun;\nmethod "salsa2012+umac";\nsecret "${sec}";\nmtu 1420;\nbind ${me}:10000;\npeer "p" { key "${peerPub}"; remote ${peerIp}:10000; }\n`
    writeFileSync(`${dir}/a.conf`, conf(A.lanIp, ka, pub(kb), B.lanIp, 'fda')); writeFileSync(`${dir}/b.conf`, conf(B.lanIp, kb, pub(ka), A.lanIp, 'fdb'))
    const fa = spawnIn(A.ns, 'fastd', ['--config', `${dir}/a.conf`]); const fb = spawnIn(B.ns, 'fastd', ['--config', `${dir}/b.conf`])
    await sleep(1000)
    await runIn(A.ns, 'sh', ['-c', `ip addr add ${pa}/24 dev fda && ip link set fda up`]); await runIn(B.ns, 'sh', ['-c', `ip addr add ${pb}/24 dev fdb && ip link set fdb up`])
    await waitFor(async () => (await runIn(A.ns, 'ping', ['-c', '1', '-W', '1', pb]).catch(() => null)) !== null, { timeoutMs: 20000, intervalMs: 300, what: 'fastd up' }).catch((e) => log('fastd', e.message))
    const rssIdle = rssOf(A.ns, 'fastd')
    const ping = await pingP50(A.ns, pb, args.includes('--ping-only') ? 200 : 50)
    if (args.includes('--ping-only')) {
      results.push({ tunnel: 'fastd', ping, rssIdle })
      for (const p of [fa, fb]) await p.stop('SIGTERM', 2000).catch(() => {})
    } else {
    log('fastd load', cpuLoad())
    const c0 = daemonCpu([A.ns, B.ns])
    const tcp = await iperfTcp(A.ns, B.ns, pb); tcp.cpuSecPerGB = (daemonCpu([A.ns, B.ns]) - c0) / (tcp.mbps * SECS / 8000); const udp = await iperfUdp64(A.ns, B.ns, pb)
    results.push({ tunnel: 'fastd', tcp, udp, ping, rssIdle, rssPeak: rssOf(A.ns, 'fastd') })
    for (const p of [fa, fb]) await p.stop('SIGTERM', 2000).catch(() => {})
    }
  }
  if (ONLY.includes('wg') && existsSync('/usr/bin/wireguard-go')) {
    const ka = sh('wg genkey'); const kb = sh('wg genkey')
    const pubk = (k) => sh(`echo ${k} | wg pubkey`)
    writeFileSync(`${dir}/wa`, ka); writeFileSync(`${dir}/wb`, kb)
    const na = `wq${topo.id}a`.slice(0, 15); const nb = `wq${topo.id}b`.slice(0, 15)
    const wa = spawnIn(A.ns, 'env', ['LOG_LEVEL=error', 'wireguard-go', '-f', na]); const wb = spawnIn(B.ns, 'env', ['LOG_LEVEL=error', 'wireguard-go', '-f', nb])
    await sleep(1000)
    await runIn(A.ns, 'sh', ['-c', `wg set ${na} private-key ${dir}/wa listen-port 51820 peer ${pubk(kb)} endpoint ${B.lanIp}:51820 allowed-ips 10.98.0.2/32 && ip addr add 10.98.0.1/24 dev ${na} && ip link set ${na} up`])
    await runIn(B.ns, 'sh', ['-c', `wg set ${nb} private-key ${dir}/wb listen-port 51820 peer ${pubk(ka)} endpoint ${A.lanIp}:51820 allowed-ips 10.98.0.1/32 && ip addr add 10.98.0.2/24 dev ${nb} && ip link set ${nb} up`])
    await waitFor(async () => (await runIn(A.ns, 'ping', ['-c', '1', '-W', '1', '10.98.0.2']).catch(() => null)) !== null, { timeoutMs: 20000, intervalMs: 300, what: 'wg up' }).catch((e) => log('wg', e.message))
    const rssIdle = rssOf(A.ns, 'wireguard')
    const ping = await pingP50(A.ns, '10.98.0.2')
    log('wg load', cpuLoad())
    const c0 = daemonCpu([A.ns, B.ns])
    const tcp = await iperfTcp(A.ns, B.ns, '10.98.0.2'); tcp.cpuSecPerGB = (daemonCpu([A.ns, B.ns]) - c0) / (tcp.mbps * SECS / 8000); const udp = await iperfUdp64(A.ns, B.ns, '10.98.0.2')
    results.push({ tunnel: 'wireguard-go', tcp, udp, ping, rssIdle, rssPeak: rssOf(A.ns, 'wireguard') })
    for (const p of [wa, wb]) await p.stop('SIGTERM', 2000).catch(() => {})
  }
  if (ONLY.includes('raw')) {
    const tcp = await iperfTcp(A.ns, B.ns, B.lanIp); const ping = await pingP50(A.ns, B.lanIp)
    results.push({ tunnel: 'raw', tcp, ping })
  }
} finally {
  await cleanup()
}
console.log(JSON.stringify(results, null, 1))
