/**
 * Tests of the namespace lab itself (src/lab/*), with plain UDP: a small
 * node:dgram "agent" runs inside each namespace and is driven over stdin.
 *
 * What is checked, per NAT kind (research/nat-anchors.md §7.2 classifier):
 * - mapping: one socket sends to S1:3478, S1:3479 and S2:3478; the server
 *   sees one external port (cone kinds, port preserved) or three (symmetric);
 * - filtering: a second socket contacts only S1:3478; the server then sends
 *   to that mapping from S1:3478 (the contacted ip:port), S1:3480 (same ip,
 *   other port) and S2:3481 (other ip); and to a port nobody inside has used
 *   (unsolicited);
 * - the mapping timeout (per-namespace conntrack sysctls + learned map);
 * - two hosts behind one router with the same source port;
 * - loss, block/unblock and link counters;
 * - cleanup: destroy(), failure midway, process exit and SIGTERM.
 *
 * Needs root, iproute2, nftables and ping. Traffic stays inside the lab's
 * namespaces. Target: well under 60 s.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { CommandError, run, runIn, sleep, spawnIn, waitFor, type LabProcess } from '../../src/lab/exec.js'
import { addAddress, createNs, deleteNs, LAB_PREFIX, linkStats, listNamespaces, nsExists, readSysctl } from '../../src/lab/netns.js'
import { blockBetween, NAT_BEHAVIOUR, natRuleset, setLoss, unblock, type NatKind } from '../../src/lab/nat.js'
import { createTopology, newLabId, type Topology, type TopologyClient } from '../../src/lab/topology.js'
import { formatTable, parseIperf, parsePing, runDemo } from '../../src/lab/demo.js'

// ---------------------------------------------------------------------------
// UDP agent: one process per namespace, JSON lines in and out.

const AGENT = String.raw`
const dgram = require('node:dgram')
const readline = require('node:readline')
const socks = new Map()
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n')
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  let c
  try { c = JSON.parse(line) } catch { return }
  try {
    if (c.op === 'bind') {
      const s = dgram.createSocket('udp4')
      s.on('message', (m, r) => out({ ev: 'recv', id: c.id, from: r.address, fromPort: r.port, msg: m.toString() }))
      s.on('error', (e) => out({ ev: 'error', id: c.id, msg: e.message }))
      s.bind({ port: c.port, address: c.host, exclusive: true }, () => { socks.set(c.id, s); out({ ev: 'bound', id: c.id, port: s.address().port }) })
    } else if (c.op === 'send') {
      socks.get(c.id).send(c.msg, c.port, c.host, (e) => out({ ev: 'sent', id: c.id, tag: c.tag, err: e ? e.message : null }))
    }
  } catch (e) { out({ ev: 'error', id: c.id, msg: String(e) }) }
})
out({ ev: 'ready' })
`

interface AgentEvent { ev: string, id?: string, port?: number, from?: string, fromPort?: number, msg?: string, err?: string | null, tag?: string }

class Agent {
  readonly proc: LabProcess
  readonly events: AgentEvent[] = []
  #partial = ''
  #waiters = new Set<() => void>()

  constructor (readonly ns: string) {
    this.proc = spawnIn(ns, process.execPath, ['-e', AGENT], {
      onOutput: (chunk, stream) => {
        if (stream !== 'stdout') return
        const lines = (this.#partial + chunk).split('\n')
        this.#partial = lines.pop() ?? ''
        for (const l of lines) {
          try { this.events.push(JSON.parse(l) as AgentEvent) } catch {}
        }
        for (const w of [...this.#waiters]) w()
      }
    })
  }

  async ready (): Promise<void> { await this.waitEvent((e) => e.ev === 'ready', 10_000) }

  waitEvent (pred: (e: AgentEvent) => boolean, timeoutMs = 3000, what = 'agent event'): Promise<AgentEvent> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const e = this.events.find(pred)
        if (e !== undefined) { this.#waiters.delete(check); clearTimeout(timer); resolve(e) }
      }
      const timer = setTimeout(() => {
        this.#waiters.delete(check)
        reject(new Error(`timed out after ${timeoutMs}ms waiting for ${what} in ${this.ns}; events: ${JSON.stringify(this.events.slice(-10))}; output: ${this.proc.tail(5)}`))
      }, timeoutMs)
      this.#waiters.add(check)
      check()
    })
  }

  async bind (id: string, port = 0, host?: string): Promise<number> {
    this.proc.write(JSON.stringify({ op: 'bind', id, port, host }) + '\n')
    const e = await this.waitEvent((x) => (x.ev === 'bound' || x.ev === 'error') && x.id === id, 3000, `bind ${id}`)
    if (e.ev === 'error') throw new Error(`bind ${id} in ${this.ns}: ${e.msg ?? ''}`)
    return e.port!
  }

  send (id: string, host: string, port: number, msg: string): void {
    this.proc.write(JSON.stringify({ op: 'send', id, host, port, msg }) + '\n')
  }

  received (id: string): AgentEvent[] {
    return this.events.filter((e) => e.ev === 'recv' && e.id === id)
  }

  /** Waits for message `msg` on socket `id` (seen by the agent). */
  waitRecv (id: string, msg: string, timeoutMs = 3000): Promise<AgentEvent> {
    return this.waitEvent((e) => e.ev === 'recv' && e.id === id && e.msg === msg, timeoutMs, `"${msg}" on socket ${id}`)
  }
}

function randomPort (): number {
  return 20000 + Math.floor(Math.random() * 40000)
}

// ---------------------------------------------------------------------------
// The shared topology: one client per NAT kind, a shared LAN, short timeouts.

const S1 = '100.64.0.1'
const S2 = '100.64.0.2'
const SHORT_TIMEOUT_SEC = 2

const kinds: NatKind[] = ['none', 'full-cone', 'address-restricted', 'port-restricted', 'symmetric']
const shortName: Record<NatKind, string> = {
  none: 'open',
  'full-cone': 'fc',
  'address-restricted': 'ar',
  'port-restricted': 'pr',
  symmetric: 'sym'
}

const started = Date.now()
const topo: Topology = await createTopology({
  clients: [
    ...kinds.map((nat) => ({ name: shortName[nat], nat })),
    { name: 'h1', nat: 'full-cone', lan: 'home' },
    { name: 'h2', nat: 'full-cone', lan: 'home' },
    { name: 'fc-short', nat: 'full-cone', udpTimeoutSec: SHORT_TIMEOUT_SEC },
    { name: 'pr-short', nat: 'port-restricted', udpTimeoutSec: SHORT_TIMEOUT_SEC }
  ]
})
t.teardown(() => topo.destroy())
t.comment(`lab ${topo.id} built in ${Date.now() - started} ms`)

await addAddress(topo.serverNs, topo.serverLink, `${S2}/${topo.wanPrefix}`)
const server = new Agent(topo.serverNs)
const agents = new Map<string, Agent>(topo.clients.map((c) => [c.name, new Agent(c.ns)]))
await Promise.all([server.ready(), ...[...agents.values()].map((a) => a.ready())])
await Promise.all([
  server.bind('s1a', 3478, S1),
  server.bind('s1b', 3479, S1),
  server.bind('s1c', 3480, S1),
  server.bind('s2a', 3478, S2),
  server.bind('s2b', 3481, S2)
])

const agent = (name: string): Agent => agents.get(name)!

/** The source the server saw for message `msg` (on any of its sockets). */
async function seenAs (msg: string): Promise<{ ip: string, port: number }> {
  const e = await server.waitEvent((x) => x.ev === 'recv' && x.msg === msg, 3000, `server to receive "${msg}"`)
  return { ip: e.from!, port: e.fromPort! }
}

function publicIp (c: TopologyClient): string {
  return c.routerWanIp ?? c.lanIp
}

t.test('topology shape', async (t) => {
  t.equal(topo.serverWanIp, S1)
  t.ok(topo.serverLink.length <= 15)
  for (const c of topo.clients) {
    t.ok(c.ns.startsWith(`${LAB_PREFIX}${topo.id}-`), `${c.name}: namespace has the lab prefix`)
    t.ok(c.dev.length <= 15, `${c.name}: device name fits IFNAMSIZ`)
    t.equal(c.routerNs === undefined, c.nat === 'none', `${c.name}: router iff NAT`)
  }
  t.equal(topo.client('h1').routerNs, topo.client('h2').routerNs, 'shared LAN: one router')
  t.not(topo.client('fc').routerNs, topo.client('pr').routerNs, 'own LAN: own router')
  const all = await listNamespaces(`${LAB_PREFIX}${topo.id}-`)
  t.same(all.sort(), topo.namespaces().sort(), 'every namespace is listed by the topology')
})

t.test('natRuleset is pure text and names the interfaces', async (t) => {
  const r = natRuleset('address-restricted', { wan: 'w0', lan: 'l0', wanIp: '100.64.1.1', mappingTimeoutSec: 7 })
  t.match(r, /masquerade\n/)
  t.match(r, /timeout 7s/)
  t.match(r, /@peers dnat ip to udp dport map @fc/)
  t.match(natRuleset('symmetric', { wan: 'w0', lan: 'l0', wanIp: '100.64.1.1' }), /masquerade random/)
  t.throws(() => natRuleset('full-cone', { wan: 'bad"name', lan: 'l0', wanIp: '1.2.3.4' }))
})

// One subtest per NAT kind: mapping and filtering.
for (const kind of kinds) {
  t.test(`NAT ${kind}: mapping ${NAT_BEHAVIOUR[kind].mapping}, filtering ${NAT_BEHAVIOUR[kind].filtering}`, async (t) => {
    const c = topo.client(shortName[kind])
    const a = agent(c.name)
    const tag = c.name

    // Mapping: one socket, three destinations.
    const localPort = await a.bind('m', randomPort())
    a.send('m', S1, 3478, `${tag}-m1`)
    a.send('m', S1, 3479, `${tag}-m2`)
    a.send('m', S2, 3478, `${tag}-m3`)
    const seen = await Promise.all([seenAs(`${tag}-m1`), seenAs(`${tag}-m2`), seenAs(`${tag}-m3`)])
    for (const s of seen) t.equal(s.ip, publicIp(c), 'seen from the public address')
    const ports = seen.map((s) => s.port)
    if (kind === 'symmetric') {
      t.equal(new Set(ports).size, 3, `a new external port per destination (${ports.join(', ')})`)
    } else {
      t.same(ports, [localPort, localPort, localPort], `one external port for every destination, the local one (${localPort})`)
    }

    // Filtering: a fresh socket that contacts S1:3478 only.
    await a.bind('f', randomPort())
    a.send('f', S1, 3478, `${tag}-f`)
    const m = await seenAs(`${tag}-f`)
    // A port nobody inside has sent from.
    const quietPort = await a.bind('u', randomPort())

    server.send('s1c', m.ip, m.port, 'same-ip')
    server.send('s2b', m.ip, m.port, 'other-ip')
    server.send('s1a', publicIp(c), quietPort, 'unsolicited')
    await sleep(50)
    server.send('s1a', m.ip, m.port, 'reply')
    await a.waitRecv('f', 'reply')
    await sleep(250) // let anything else in flight arrive

    const got = new Set(a.received('f').map((e) => e.msg))
    const gotUnsolicited = a.received('u').some((e) => e.msg === 'unsolicited')
    const f = NAT_BEHAVIOUR[kind].filtering
    t.ok(got.has('reply'), 'the contacted ip:port can answer')
    t.equal(got.has('same-ip'), f === 'none' || f === 'EIF' || f === 'ADF', `same ip, other port ${f === 'APDF' ? 'dropped' : 'accepted'}`)
    t.equal(got.has('other-ip'), f === 'none' || f === 'EIF', `other ip ${f === 'none' || f === 'EIF' ? 'accepted' : 'dropped'}`)
    t.equal(gotUnsolicited, kind === 'none', `unsolicited inbound to an unused port ${kind === 'none' ? 'reaches the open host' : 'dropped'}`)
  })
}

t.test('two hosts behind one full-cone router, same source port', async (t) => {
  const port = randomPort()
  const h1 = agent('h1')
  const h2 = agent('h2')
  await h1.bind('x', port)
  await h2.bind('x', port)
  h1.send('x', S1, 3478, 'from-h1')
  const m1 = await seenAs('from-h1')
  h2.send('x', S1, 3478, 'from-h2')
  const m2 = await seenAs('from-h2')
  t.equal(m1.ip, m2.ip, 'same public address')
  t.equal(m1.port, port, 'the first host keeps its port')
  t.not(m2.port, port, 'the second host is remapped')
  // Full cone: anyone can reach each mapping, and it leads to the right host.
  server.send('s2b', m1.ip, m1.port, 'for-h1')
  server.send('s2b', m2.ip, m2.port, 'for-h2')
  await h1.waitRecv('x', 'for-h1')
  await h2.waitRecv('x', 'for-h2')
  await sleep(100)
  t.same(h1.received('x').map((e) => e.msg), ['for-h1'])
  t.same(h2.received('x').map((e) => e.msg), ['for-h2'])
})

t.test(`UDP mapping timeout (${SHORT_TIMEOUT_SEC}s) expires`, async (t) => {
  const fc = topo.client('fc-short')
  const pr = topo.client('pr-short')
  t.equal(await readSysctl(fc.routerNs!, 'net.netfilter.nf_conntrack_udp_timeout'), String(SHORT_TIMEOUT_SEC), 'set on the router')
  t.equal(await readSysctl(pr.routerNs!, 'net.netfilter.nf_conntrack_udp_timeout_stream'), String(SHORT_TIMEOUT_SEC), 'stream timeout too')
  t.equal(await readSysctl(topo.serverNs, 'net.netfilter.nf_conntrack_udp_timeout'), '30', 'other namespaces keep the default: the sysctl is per namespace')
  t.equal(await readSysctl(topo.client('pr').routerNs!, 'net.netfilter.nf_conntrack_udp_timeout'), '30', 'other routers keep the default')

  const fa = agent(fc.name)
  const pa = agent(pr.name)
  await fa.bind('t', randomPort())
  await pa.bind('t', randomPort())
  fa.send('t', S1, 3478, 'fc-short-out')
  pa.send('t', S1, 3478, 'pr-short-out')
  const fm = await seenAs('fc-short-out')
  const pm = await seenAs('pr-short-out')
  // Fresh mappings work.
  server.send('s1a', fm.ip, fm.port, 'fresh')
  server.send('s2b', fm.ip, fm.port, 'fresh-other-ip')
  server.send('s1a', pm.ip, pm.port, 'fresh')
  await fa.waitRecv('t', 'fresh')
  await fa.waitRecv('t', 'fresh-other-ip')
  await pa.waitRecv('t', 'fresh')
  // Idle past the timeout: nothing may touch the mappings meanwhile.
  await sleep(SHORT_TIMEOUT_SEC * 1000 + 1200)
  server.send('s1a', fm.ip, fm.port, 'stale')
  server.send('s2b', fm.ip, fm.port, 'stale-other-ip')
  server.send('s1a', pm.ip, pm.port, 'stale')
  await sleep(400)
  t.notOk(fa.received('t').some((e) => e.msg?.startsWith('stale') === true), 'full cone: expired mapping drops inbound')
  t.notOk(pa.received('t').some((e) => e.msg === 'stale'), 'port-restricted: expired mapping drops inbound')
  // A new outbound packet opens it again.
  pa.send('t', S1, 3478, 'pr-short-again')
  await seenAs('pr-short-again')
  server.send('s1a', pm.ip, pm.port, 'after')
  await pa.waitRecv('t', 'after')
  t.pass('a new outbound packet re-opens the mapping')
})

/** Loss percentage printed by ping (or 100 when ping fails outright). */
async function pingLoss (ns: string, dst: string, count: number, intervalSec: string): Promise<number> {
  let out: string
  try {
    out = (await runIn(ns, 'ping', ['-n', '-q', '-c', String(count), '-i', intervalSec, '-W', '1', dst])).stdout
  } catch (err) {
    out = err instanceof CommandError ? err.stdout : ''
  }
  const m = /([\d.]+)% packet loss/.exec(out)
  return m === null ? 100 : Number(m[1])
}

t.test('blockBetween / unblock, and link counters', async (t) => {
  const open = topo.client('open')
  const pr = topo.client('pr')
  const before = await linkStats(topo.serverNs, topo.serverLink)
  t.equal(await pingLoss(open.ns, S1, 3, '0.05'), 0, 'open client reaches the server')
  const after = await linkStats(topo.serverNs, topo.serverLink)
  t.ok(after.rxPackets - before.rxPackets >= 3, `server link counted the requests (${after.rxPackets - before.rxPackets})`)
  t.ok(after.txPackets - before.txPackets >= 3, 'and the replies')

  // On the internet bridge (bridge family).
  await blockBetween(topo.internetNs, open.lanIp, S1)
  t.equal(await pingLoss(open.ns, S1, 2, '0.05'), 100, 'blocked on the internet bridge')
  await unblock(topo.internetNs, open.lanIp, S1)
  t.equal(await pingLoss(open.ns, S1, 2, '0.05'), 0, 'unblocked')
  await unblock(topo.internetNs, open.lanIp, S1)
  t.pass('unblock twice is harmless')

  // On a router (routed path, inet family), by LAN address.
  await blockBetween(pr.routerNs!, pr.lanIp, S1)
  t.equal(await pingLoss(pr.ns, S1, 2, '0.05'), 100, 'blocked on the router')
  t.equal(await pingLoss(topo.client('open').ns, S1, 1, '0.05'), 0, 'other hosts unaffected')
  await unblock(pr.routerNs!, pr.lanIp, S1)
  t.equal(await pingLoss(pr.ns, S1, 2, '0.05'), 0, 'unblocked on the router')
})

t.test('setLoss drops about the given share', async (t) => {
  const open = topo.client('open')
  await setLoss(topo.internetNs, open.internetPort, 30)
  const loss = await pingLoss(open.ns, S1, 200, '0.002')
  // 30 % each way: ~51 % of round trips lost.
  t.ok(loss > 30 && loss < 72, `30% per direction gives ${loss}% round-trip loss`)
  await setLoss(topo.internetNs, open.internetPort, 100, 'egress')
  t.equal(await pingLoss(open.ns, S1, 2, '0.05'), 100, '100% egress: nothing passes')
  await setLoss(topo.internetNs, open.internetPort, 0)
  t.equal(await pingLoss(open.ns, S1, 20, '0.002'), 0, 'loss 0 removes it')
})

// ---------------------------------------------------------------------------
// exec helpers

t.test('exec helpers', async (t) => {
  await t.rejects(run('ip', ['netns', 'exec', `${LAB_PREFIX}does-not-exist`, 'true']), /ip netns exec lwt-does-not-exist true/, 'errors name the command')
  await t.rejects(waitFor(() => false, { timeoutMs: 150, intervalMs: 20, what: 'nothing' }), { message: 'timed out after 150ms waiting for nothing' })
  let n = 0
  await waitFor(() => ++n === 3, { timeoutMs: 1000, intervalMs: 10 })
  t.equal(n, 3, 'waitFor polls until true')

  const p = spawnIn(topo.serverNs, 'sh', ['-c', 'echo hello; exec sleep 30'])
  const m = await p.waitForOutput(/hel+o/, 3000)
  t.equal(m[0], 'hello')
  t.equal(await p.stop(), 143, 'SIGTERM: exit code 128+15')
  t.equal(await p.stop(), 143, 'stop twice is harmless')

  const stubborn = spawnIn(topo.serverNs, process.execPath, ['-e', "process.on('SIGTERM', () => {}); console.log('up'); setInterval(() => {}, 1000)"])
  await stubborn.waitForOutput(/up/, 5000)
  const t0 = Date.now()
  t.equal(await stubborn.stop('SIGTERM', 300), 137, 'ignores SIGTERM: SIGKILLed after the timeout')
  t.ok(Date.now() - t0 < 2000)

  const quitter = spawnIn(topo.serverNs, 'sh', ['-c', 'echo bye; exit 3'])
  await t.rejects(quitter.waitForOutput(/never/, 3000), /exited with code 3/, 'waitForOutput fails fast when the process exits')

  const parent = spawnIn(topo.serverNs, 'sh', ['-c', 'sleep 30 & echo $!'])
  const started = Date.now()
  await parent.exited
  t.ok(Date.now() - started < 2000, 'exit is seen although a background child keeps the output pipe open')
  const bg = Number((/^(\d+)$/m.exec(parent.output()) ?? [])[1])
  if (bg > 0) process.kill(bg, 'SIGKILL')

  const big = spawnIn(topo.serverNs, 'sh', ['-c', 'head -c 3000000 /dev/zero | tr "\\0" x; echo END'], { maxOutputBytes: 1000 })
  await big.exited
  t.ok(big.output().length < 1100, 'output buffer is bounded')
  t.match(big.output(), /END\n$/, 'and keeps the newest output')
})

// ---------------------------------------------------------------------------
// Cleanup

/** True while `pid` runs (a zombie waiting to be reaped counts as dead). */
function isAlive (pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
    return state !== 'Z' && state !== 'X'
  } catch {
    return false
  }
}

t.test('destroy() removes everything and kills processes; idempotent', async (t) => {
  const lab = await createTopology({ clients: [{ name: 'a', nat: 'port-restricted' }, { name: 'b', nat: 'none' }] })
  t.teardown(() => lab.destroy())
  const orphan = spawnIn(lab.client('a').ns, 'sh', ['-c', 'sleep 60 & echo $!; wait'])
  const pid = Number((await orphan.waitForOutput(/^(\d+)$/m))[1])
  t.equal((await listNamespaces(`${LAB_PREFIX}${lab.id}-`)).length, 5)
  await Promise.all([lab.destroy(), lab.destroy()])
  await lab.destroy()
  t.same(await listNamespaces(`${LAB_PREFIX}${lab.id}-`), [], 'no namespace left')
  t.notOk(isAlive(pid), 'the background process inside was killed')
  t.ok(orphan.exitInfo !== null, 'the spawned process exited')
})

t.test('a build that fails midway removes what it made, and only that', async (t) => {
  const id = newLabId()
  const squatter = `${LAB_PREFIX}${id}-c-b`
  await createNs(squatter)
  t.teardown(() => deleteNs(squatter))
  await t.rejects(createTopology({ id, clients: [{ name: 'a', nat: 'symmetric' }, { name: 'b', nat: 'full-cone' }] }), /ip netns add/)
  t.same(await listNamespaces(`${LAB_PREFIX}${id}-`), [squatter], 'only the namespace it did not create remains')
})

// A child process that builds a lab and then dies without calling destroy().
const tsLoaderArgs = process.execArgv.filter((a) => /dist-loader/.test(a)) // the loader tap runs the tests' TypeScript with (package.json tap.node-arg)
const topologyUrl = new URL('../../src/lab/topology.js', import.meta.url).href
const execUrl = new URL('../../src/lab/exec.js', import.meta.url).href

function childScript (id: string, ending: string): string {
  return `
const { createTopology } = await import(${JSON.stringify(topologyUrl)})
const { spawnIn } = await import(${JSON.stringify(execUrl)})
const lab = await createTopology({ id: ${JSON.stringify(id)}, clients: [{ name: 'a', nat: 'port-restricted' }] })
spawnIn(lab.serverNs, 'sleep', ['60'])
console.log('READY')
${ending}
`
}

async function runChild (id: string, ending: string, signal?: NodeJS.Signals): Promise<{ code: number | null, signal: NodeJS.Signals | null, out: string }> {
  const child = spawn(process.execPath, [...tsLoaderArgs, '--input-type=module', '-e', childScript(id, ending)], {
    cwd: fileURLToPath(new URL('../..', import.meta.url)),
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  const ready = new Promise<void>((resolve) => {
    const on = (d: Buffer): void => { out += d.toString(); if (out.includes('READY')) resolve() }
    child.stdout.on('data', on)
    child.stderr.on('data', on)
  })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, sig) => resolve({ code, signal: sig })))
  if (signal !== undefined) {
    let timer: NodeJS.Timeout | undefined
    await Promise.race([ready, exited, new Promise((resolve) => { timer = setTimeout(resolve, 20_000) })])
    clearTimeout(timer)
    child.kill(signal)
  }
  const killer = setTimeout(() => child.kill('SIGKILL'), 20_000)
  const r = await exited
  clearTimeout(killer)
  return { ...r, out }
}

t.test('process exit without destroy() still removes the namespaces', async (t) => {
  const id = newLabId()
  t.teardown(async () => { for (const ns of await listNamespaces(`${LAB_PREFIX}${id}-`)) await deleteNs(ns) })
  const r = await runChild(id, 'process.exit(0)')
  t.match(r.out, /READY/, 'the child built its lab')
  t.equal(r.code, 0)
  t.same(await listNamespaces(`${LAB_PREFIX}${id}-`), [], 'exit hook removed them')
})

t.test('SIGTERM without destroy() still removes the namespaces', async (t) => {
  const id = newLabId()
  t.teardown(async () => { for (const ns of await listNamespaces(`${LAB_PREFIX}${id}-`)) await deleteNs(ns) })
  const r = await runChild(id, 'setInterval(() => {}, 1000)', 'SIGTERM')
  t.match(r.out, /READY/, 'the child built its lab')
  t.equal(r.signal, 'SIGTERM', 'the child still dies of the signal')
  t.same(await listNamespaces(`${LAB_PREFIX}${id}-`), [], 'signal handler removed them')
  t.notOk(await nsExists(`${LAB_PREFIX}${id}-srv`))
})

// ---------------------------------------------------------------------------
// The demo's plumbing (the real daemon is exercised by the daemon's own e2e tests).

t.test('demo: parsers and table', async (t) => {
  t.same(parsePing('5 packets transmitted, 5 received, 0% packet loss, time 804ms\nrtt min/avg/max/mdev = 0.105/0.291/0.477/0.186 ms\n'), { avgMs: 0.291, lossPct: 0 })
  t.same(parsePing('3 packets transmitted, 0 received, 100% packet loss, time 2040ms\n'), { avgMs: null, lossPct: 100 })
  t.same(parseIperf('{"end":{"sum_received":{"bits_per_second":1.5e9},"sum_sent":{"retransmits":0}}}'), { bps: 1.5e9, note: null })
  t.same(parseIperf('{"error":"unable to connect to server"}'), { bps: null, note: 'unable to connect to server' })
  t.same(parseIperf('garbage'), { bps: null, note: 'iperf3 printed no JSON' })
  const lines = formatTable([{ what: 'alice -> bob (ping)', path: 'relay', rttAvgMs: 1.234, lossPct: 0, bitsPerSecond: null, note: null }], { server: 70_000, alice: null })
  t.match(lines.join('\n'), /alice -> bob \(ping\)\s+relay\s+1\.23 ms\s+0%/)
  t.match(lines.join('\n'), /server\s+68\.4 MiB/)
})

t.test('demo: a daemon that cannot start is reported and the lab is removed', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lwt-fakebin-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const bin = join(dir, 'fake-daemon')
  writeFileSync(bin, '#!/bin/sh\necho "fake daemon: cannot open the TUN device" >&2\nexit 1\n')
  chmodSync(bin, 0o755)
  const mine = `${LAB_PREFIX}${process.pid.toString(36).padStart(5, '0').slice(-5)}`
  const before = (await listNamespaces(mine)).sort()
  const lines: string[] = []
  const sigint = process.listenerCount('SIGINT')
  const code = await runDemo({ bin, log: (l) => lines.push(l), registerTimeoutMs: 3000 })
  const text = lines.join('\n')
  t.equal(code, 1, 'exit code 1')
  t.match(text, /Building the lab/, 'says what it does')
  t.match(text, /the server daemon stopped unexpectedly \(exit code 1\)/, 'names the failure')
  t.match(text, /fake daemon: cannot open the TUN device/, 'quotes the daemon output')
  t.match(text, /nothing is left behind/)
  t.same((await listNamespaces(mine)).sort(), before, 'no namespace left')
  t.equal(process.listenerCount('SIGINT'), sigint, 'its signal handlers are removed')
})
