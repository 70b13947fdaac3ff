/**
 * The tunnels the harness measures, each with a minimal correct
 * configuration generated at run time (keys made with each tool's own key
 * generator). Every tunnel runs between two lab hosts: the "client" host A
 * (100.64.2.1) and the "server" host S (100.64.0.1), connected through the
 * lab's internet bridge (a scenario may make another lab client host A:
 * TunnelContext.client); traffic flows A → S through the tunnel. `ours-relay`
 * adds host B (100.64.2.2) and measures A → B through our server's relay.
 *
 * A tunnel that is not installed or fails to start is reported by the
 * harness, never fatal: `available()` says why it cannot run, `start()`
 * throws with the daemon's last output.
 */
import { execFileSync } from 'node:child_process'
import { writeFileSync, mkdirSync, readFileSync, chmodSync, existsSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { run, runIn, spawnIn, waitFor, sleep, type LabProcess } from '../../src/lab/exec.js'
import type { Topology } from '../../src/lab/topology.js'

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
export const BIN = join(ROOT, 'bin', 'lightweight-tunnel')

export interface Endpoint { ns: string, ip: string }

export interface TunnelContext {
  topo: Topology
  /** Private scratch directory for this tunnel's configs and keys. */
  dir: string
  /** Lab id: unique device names are `lw<id><suffix>`. */
  id: string
  /** The lab client that is host A (default 'a'): a scenario can run a tunnel over another client's link. */
  client?: string
}

export interface RunningTunnel {
  src: Endpoint
  dst: Endpoint
  /** Daemons whose CPU time and peak RSS are reported, by role. */
  daemons: Array<{ role: string, pid: number }>
  /** Inner MTU, for the record. */
  mtu: number | null
  /** Configuration summary, for the record (cipher etc.). */
  config: string
  procs: LabProcess[]
  stop: () => Promise<void>
}

export interface TunnelSpec {
  name: string
  /** Table label. */
  label: string
  kind: 'limit' | 'ours' | 'peer'
  /** Needs host B (three-host topology). */
  threeHost?: boolean
  /** null when it can run; otherwise why not (e.g. "not installed: apt-get install fastd"). */
  available: () => string | null
  /** Debian packages that provide it (installed by the harness when missing, unless --no-install). */
  packages?: string[]
  start: (ctx: TunnelContext) => Promise<RunningTunnel>
}

function has (cmd: string): boolean {
  try { execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }); return true } catch { return false }
}

function hosts (ctx: TunnelContext): { a: Endpoint, s: Endpoint, b: Endpoint | null } {
  const t = ctx.topo
  const a = t.client(ctx.client ?? 'a')
  const b = t.clients.find((c) => c.name === 'b' && c !== a)
  return { a: { ns: a.ns, ip: a.lanIp }, s: { ns: t.serverNs, ip: t.serverWanIp }, b: b === undefined ? null : { ns: b.ns, ip: b.lanIp } }
}

/** Waits until `from` gets a ping reply from `to` through the tunnel; throws with the daemons' output. */
async function waitUp (from: Endpoint, to: Endpoint, procs: LabProcess[], timeoutMs = 20_000): Promise<void> {
  try {
    await waitFor(async () => {
      for (const p of procs) if (p.exitInfo !== null) throw new Error(`${p.cmd} exited with code ${p.exitInfo.code}`)
      const r = await runIn(from.ns, 'ping', ['-n', '-c', '1', '-W', '1', to.ip], { timeoutMs: 3000 }).then(() => true, () => false)
      return r
    }, { timeoutMs, intervalMs: 200, what: `a ping reply from ${to.ip} through the tunnel` })
  } catch (err) {
    const tails = procs.map((p) => `--- ${p.cmd} (${p.ns}):\n${p.tail(8)}`).join('\n')
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n${tails}`)
  }
}

function pidOf (p: LabProcess): number {
  if (p.pid === undefined) throw new Error(`${p.cmd} did not start`)
  return p.pid
}

async function stopAll (procs: LabProcess[]): Promise<void> {
  await Promise.all(procs.map((p) => p.stop('SIGTERM', 3000).catch(() => 0)))
}

/** Starts the processes and waits for the tunnel; stops them all when that fails. */
async function bringUp (procs: LabProcess[], from: Endpoint, to: Endpoint, timeoutMs?: number): Promise<void> {
  try {
    await waitUp(from, to, procs, timeoutMs)
  } catch (err) {
    await stopAll(procs)
    throw err
  }
}

const NO_NODE_OPTIONS = (): NodeJS.ProcessEnv => {
  const env = { ...process.env }
  delete env.NODE_OPTIONS
  return env
}

// ---------------------------------------------------------------------------

const raw: TunnelSpec = {
  name: 'raw',
  label: 'raw link (limit)',
  kind: 'limit',
  available: () => null,
  start: async (ctx) => {
    const { a, s } = hosts(ctx)
    return { src: a, dst: s, daemons: [], mtu: 1500, config: 'veth → bridge → veth, no tunnel', procs: [], stop: async () => {} }
  }
}

function oursStart (relay: boolean, extra: readonly string[] = []) {
  return async (ctx: TunnelContext): Promise<RunningTunnel> => {
    const { a, s, b } = hosts(ctx)
    const key = 'bench-network-key'
    const start = (ns: string, name: string, args: string[], tun: string, n: number): LabProcess =>
      spawnIn(ns, 'env', ['-u', 'NODE_OPTIONS', BIN, ...args, ...extra, '--tun', tun, '--key', key, '--dev', `lw${ctx.id}o${n}`, '--control', join(ctx.dir, `${name}.sock`), '--state-dir', join(ctx.dir, `${name}-state`)], { env: NO_NODE_OPTIONS(), maxOutputBytes: 64 * 1024 })
    const srv = start(s.ns, 'server', ['server', '--listen', `${s.ip}:9000`], '10.77.0.1/24', 0)
    await sleep(300)
    const ca = start(a.ns, 'a', ['client', '--remote', `${s.ip}:9000`, ...(relay ? ['--no-p2p'] : [])], '10.77.0.2/24', 1)
    const procs = [srv, ca]
    let dst: Endpoint = { ns: s.ns, ip: '10.77.0.1' }
    if (relay) {
      if (b === null) throw new Error('the relay test needs host B')
      const cb = start(b.ns, 'b', ['client', '--remote', `${s.ip}:9000`, '--no-p2p'], '10.77.0.3/24', 2)
      procs.push(cb)
      dst = { ns: b.ns, ip: '10.77.0.3' }
    }
    await bringUp(procs, { ns: a.ns, ip: '10.77.0.2' }, dst, 30_000)
    const daemons = [{ role: 'client', pid: pidOf(ca) }, { role: 'server', pid: pidOf(srv) }]
    if (relay) daemons.push({ role: 'client-b', pid: pidOf(procs[2]!) })
    return {
      src: { ns: a.ns, ip: '10.77.0.2' },
      dst,
      daemons,
      mtu: 1400,
      config: (relay ? 'defaults, --no-p2p: A → server relay → B, end-to-end ChaCha20-Poly1305' : 'defaults: ChaCha20-Poly1305, MTU 1400') + (extra.length > 0 ? `, ${extra.join(' ')}` : ''),
      procs,
      stop: () => stopAll(procs)
    }
  }
}

const ours: TunnelSpec = { name: 'ours', label: 'lightweight-tunnel', kind: 'ours', available: () => existsSync(join(ROOT, 'dist', 'src', 'cli', 'main.js')) ? null : 'not built (npm ci)', start: oursStart(false) }
/** Not in the default set: ours with every packet through the batched JS pipelines (bench:ci's idle-ping reference). */
const oursNoFast: TunnelSpec = { name: 'ours-nofast', label: 'lightweight-tunnel (--no-fast-path)', kind: 'ours', available: ours.available, start: oursStart(false, ['--no-fast-path']) }
const oursRelay: TunnelSpec = { name: 'ours-relay', label: 'lightweight-tunnel (relay)', kind: 'ours', threeHost: true, available: ours.available, start: oursStart(true) }

// --- wireguard-go + wireguard-tools ---------------------------------------

const wireguard: TunnelSpec = {
  name: 'wireguard-go',
  label: 'wireguard-go',
  kind: 'peer',
  available: () => has('wireguard-go') && has('wg') ? null : 'not installed: apt-get install wireguard-go wireguard-tools',
  packages: ['wireguard-go', 'wireguard-tools'],
  start: async (ctx) => {
    const { a, s } = hosts(ctx)
    const side = [{ h: s, dev: `lw${ctx.id}wg0`, ip: '10.88.0.1' }, { h: a, dev: `lw${ctx.id}wg1`, ip: '10.88.0.2' }]
    const keys = await Promise.all(side.map(async () => {
      const priv = (await run('wg', ['genkey'])).stdout.trim()
      const pub = (await run('wg', ['pubkey'], { input: priv + '\n' })).stdout.trim()
      return { priv, pub }
    }))
    const procs: LabProcess[] = []
    try {
      for (const [i, x] of side.entries()) {
        const env = { ...NO_NODE_OPTIONS(), WG_PROCESS_FOREGROUND: '1', LOG_LEVEL: 'error' }
        procs.push(spawnIn(x.h.ns, 'wireguard-go', ['-f', x.dev], { env }))
        await waitFor(async () => (await runIn(x.h.ns, 'ip', ['link', 'show', x.dev]).then(() => true, () => false)) || procs[i]!.exitInfo !== null, { timeoutMs: 5000, what: `${x.dev}` })
        const keyFile = join(ctx.dir, `wg${i}.key`)
        writeFileSync(keyFile, keys[i]!.priv + '\n', { mode: 0o600 })
        const other = side[1 - i]!
        await runIn(x.h.ns, 'wg', ['set', x.dev, 'private-key', keyFile, 'listen-port', '51820', 'peer', keys[1 - i]!.pub, 'allowed-ips', `${other.ip}/32`, 'endpoint', `${other.h.ip}:51820`])
        await runIn(x.h.ns, 'ip', ['addr', 'add', `${x.ip}/24`, 'dev', x.dev])
        await runIn(x.h.ns, 'ip', ['link', 'set', x.dev, 'up'])
      }
    } catch (err) {
      await stopAll(procs)
      throw err
    }
    await bringUp(procs, { ns: a.ns, ip: '10.88.0.2' }, { ns: s.ns, ip: '10.88.0.1' })
    return {
      src: { ns: a.ns, ip: '10.88.0.2' },
      dst: { ns: s.ns, ip: '10.88.0.1' },
      daemons: [{ role: 'client', pid: pidOf(procs[1]!) }, { role: 'server', pid: pidOf(procs[0]!) }],
      mtu: 1420,
      config: 'wg set: one peer each side, ChaCha20-Poly1305, default MTU 1420',
      procs,
      stop: () => stopAll(procs)
    }
  }
}

// --- fastd ------------------------------------------------------------------

const fastd: TunnelSpec = {
  name: 'fastd',
  label: 'fastd',
  kind: 'peer',
  available: () => has('fastd') ? null : 'not installed: apt-get install fastd',
  packages: ['fastd'],
  start: async (ctx) => {
    const { a, s } = hosts(ctx)
    const side = [{ h: s, dev: `lw${ctx.id}fd0`, ip: '10.89.0.1' }, { h: a, dev: `lw${ctx.id}fd1`, ip: '10.89.0.2' }]
    const keys = await Promise.all(side.map(async () => {
      const out = (await run('fastd', ['--generate-key'])).stdout
      const sec = /Secret:\s*([0-9a-f]{64})/.exec(out)
      const pub = /Public:\s*([0-9a-f]{64})/.exec(out)
      if (sec === null || pub === null) throw new Error(`fastd --generate-key printed no key pair: ${out}`)
      return { sec: sec[1]!, pub: pub[1]! }
    }))
    const procs = side.map((x, i) => {
      const other = side[1 - i]!
      const conf = join(ctx.dir, `fastd${i}.conf`)
      writeFileSync(conf, [
        'log level warn;',
        `interface "${x.dev}";`,
        'mode tun;',
        'method "salsa2012+umac";',
        `bind ${x.h.ip}:10000;`,
        `secret "${keys[i]!.sec}";`,
        'mtu 1426;',
        `on up sync "ip addr add ${x.ip}/24 dev $INTERFACE && ip link set $INTERFACE up";`,
        `peer "p${1 - i}" {`,
        `  key "${keys[1 - i]!.pub}";`,
        // Only the client initiates: when both sides do, their handshakes cross and fastd takes ~20 s to settle.
        ...(i === 1 ? [`  remote ${other.h.ip}:10000;`] : []),
        '}',
        ''
      ].join('\n'), { mode: 0o600 })
      return spawnIn(x.h.ns, 'fastd', ['--config', conf], { env: NO_NODE_OPTIONS() })
    })
    await bringUp(procs, { ns: a.ns, ip: '10.89.0.2' }, { ns: s.ns, ip: '10.89.0.1' }, 45_000)
    return {
      src: { ns: a.ns, ip: '10.89.0.2' },
      dst: { ns: s.ns, ip: '10.89.0.1' },
      daemons: [{ role: 'client', pid: pidOf(procs[1]!) }, { role: 'server', pid: pidOf(procs[0]!) }],
      mtu: 1426,
      config: 'mode tun, method salsa2012+umac (fastd\'s recommended), MTU 1426',
      procs,
      stop: () => stopAll(procs)
    }
  }
}

// --- nebula -----------------------------------------------------------------

const nebula: TunnelSpec = {
  name: 'nebula',
  label: 'nebula',
  kind: 'peer',
  available: () => has('nebula') && has('nebula-cert') ? null : 'not installed: apt-get install nebula',
  packages: ['nebula'],
  start: async (ctx) => {
    const { a, s } = hosts(ctx)
    const d = ctx.dir
    await run('nebula-cert', ['ca', '-name', 'bench', '-out-crt', join(d, 'ca.crt'), '-out-key', join(d, 'ca.key')])
    const side = [{ h: s, dev: `lw${ctx.id}nb0`, ip: '10.90.0.1', n: 'n0' }, { h: a, dev: `lw${ctx.id}nb1`, ip: '10.90.0.2', n: 'n1' }]
    for (const x of side) {
      await run('nebula-cert', ['sign', '-name', x.n, '-ip', `${x.ip}/24`, '-ca-crt', join(d, 'ca.crt'), '-ca-key', join(d, 'ca.key'), '-out-crt', join(d, `${x.n}.crt`), '-out-key', join(d, `${x.n}.key`)])
    }
    const procs = side.map((x, i) => {
      const other = side[1 - i]!
      const conf = join(d, `${x.n}.yml`)
      writeFileSync(conf, [
        'pki:',
        `  ca: ${join(d, 'ca.crt')}`,
        `  cert: ${join(d, `${x.n}.crt`)}`,
        `  key: ${join(d, `${x.n}.key`)}`,
        'static_host_map:',
        `  "${other.ip}": ["${other.h.ip}:4242"]`,
        'lighthouse:',
        '  am_lighthouse: false',
        'listen:',
        `  host: ${x.h.ip}`,
        '  port: 4242',
        'punchy:',
        '  punch: false',
        'tun:',
        `  dev: ${x.dev}`,
        'logging:',
        '  level: warning',
        'firewall:',
        '  outbound:',
        '    - port: any',
        '      proto: any',
        '      host: any',
        '  inbound:',
        '    - port: any',
        '      proto: any',
        '      host: any',
        ''
      ].join('\n'))
      return spawnIn(x.h.ns, 'nebula', ['-config', conf], { env: NO_NODE_OPTIONS() })
    })
    await bringUp(procs, { ns: a.ns, ip: '10.90.0.2' }, { ns: s.ns, ip: '10.90.0.1' })
    return {
      src: { ns: a.ns, ip: '10.90.0.2' },
      dst: { ns: s.ns, ip: '10.90.0.1' },
      daemons: [{ role: 'client', pid: pidOf(procs[1]!) }, { role: 'server', pid: pidOf(procs[0]!) }],
      mtu: 1300,
      config: 'own CA, static host map, no lighthouse, default cipher (AES-256-GCM) and MTU 1300',
      procs,
      stop: () => stopAll(procs)
    }
  }
}

// --- openvpn ----------------------------------------------------------------

const openvpn: TunnelSpec = {
  name: 'openvpn',
  label: 'openvpn',
  kind: 'peer',
  available: () => has('openvpn') && has('openssl') ? null : 'not installed: apt-get install openvpn openssl',
  packages: ['openvpn', 'openssl'],
  start: async (ctx) => {
    const { a, s } = hosts(ctx)
    const d = ctx.dir
    const side = [{ h: s, dev: `lw${ctx.id}ov0`, ip: '10.91.0.1', n: 'o0' }, { h: a, dev: `lw${ctx.id}ov1`, ip: '10.91.0.2', n: 'o1' }]
    const fps: string[] = []
    for (const x of side) {
      await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-keyout', join(d, `${x.n}.key`), '-out', join(d, `${x.n}.crt`), '-nodes', '-days', '2', '-subj', `/CN=${x.n}`])
      const fp = (await run('openssl', ['x509', '-fingerprint', '-sha256', '-noout', '-in', join(d, `${x.n}.crt`)])).stdout
      fps.push(fp.split('=')[1]!.trim())
    }
    const procs = side.map((x, i) => {
      const other = side[1 - i]!
      const args = [
        '--dev', x.dev, '--dev-type', 'tun', '--proto', 'udp', '--local', x.h.ip, '--lport', '1194',
        '--remote', other.h.ip, '1194',
        i === 0 ? '--tls-server' : '--tls-client',
        ...(i === 0 ? ['--dh', 'none'] : []),
        '--cert', join(d, `${x.n}.crt`), '--key', join(d, `${x.n}.key`), '--peer-fingerprint', fps[1 - i]!,
        '--ifconfig', x.ip, other.ip, '--verb', '1', '--writepid', join(d, `${x.n}.pid`)
      ]
      return spawnIn(x.h.ns, 'openvpn', args, { env: NO_NODE_OPTIONS() })
    })
    await bringUp(procs, { ns: a.ns, ip: '10.91.0.2' }, { ns: s.ns, ip: '10.91.0.1' }, 30_000)
    return {
      src: { ns: a.ns, ip: '10.91.0.2' },
      dst: { ns: s.ns, ip: '10.91.0.1' },
      daemons: [{ role: 'client', pid: pidOf(procs[1]!) }, { role: 'server', pid: pidOf(procs[0]!) }],
      mtu: 1500,
      config: 'peer-to-peer TLS with --peer-fingerprint (self-signed P-256), negotiated data cipher (AES-256-GCM), default MTU',
      procs,
      stop: () => stopAll(procs)
    }
  }
}

// --- tinc 1.0 ---------------------------------------------------------------

const tinc: TunnelSpec = {
  name: 'tinc',
  label: 'tinc',
  kind: 'peer',
  available: () => has('tincd') ? null : 'not installed: apt-get install tinc',
  packages: ['tinc'],
  start: async (ctx) => {
    const { a, s } = hosts(ctx)
    const side = [{ h: s, dev: `lw${ctx.id}tc0`, ip: '10.92.0.1', n: 't0' }, { h: a, dev: `lw${ctx.id}tc1`, ip: '10.92.0.2', n: 't1' }]
    // Each node's directory holds tinc.conf, tinc-up, its key and both host files.
    for (const x of side) {
      const dir = join(ctx.dir, x.n)
      mkdirSync(join(dir, 'hosts'), { recursive: true })
      writeFileSync(join(dir, 'tinc.conf'), `Name = ${x.n}\nInterface = ${x.dev}\nDevice = /dev/net/tun\nMode = router\nAddressFamily = ipv4\nBindToAddress = ${x.h.ip}\n${x === side[1] ? `ConnectTo = ${side[0]!.n}\n` : ''}`)
      const up = join(dir, 'tinc-up')
      writeFileSync(up, `#!/bin/sh\nip addr add ${x.ip}/24 dev $INTERFACE\nip link set $INTERFACE up\n`)
      chmodSync(up, 0o755)
      writeFileSync(join(dir, 'hosts', x.n), `Address = ${x.h.ip}\nPort = 655\nSubnet = ${x.ip}/32\nCipher = aes-256-cbc\nDigest = sha256\n`)
      await run('tincd', ['-c', dir, '-K2048'], { input: '\n\n' })
    }
    // Exchange host files (with the public keys appended by -K).
    for (const x of side) {
      const other = side.find((y) => y !== x)!
      writeFileSync(join(ctx.dir, other.n, 'hosts', x.n), readFileSync(join(ctx.dir, x.n, 'hosts', x.n)))
    }
    const procs = side.map((x) => spawnIn(x.h.ns, 'tincd', ['-c', join(ctx.dir, x.n), '-D', '-d0', `--pidfile=${join(ctx.dir, x.n, 'pid')}`], { env: NO_NODE_OPTIONS() }))
    await bringUp(procs, { ns: a.ns, ip: '10.92.0.2' }, { ns: s.ns, ip: '10.92.0.1' }, 30_000)
    return {
      src: { ns: a.ns, ip: '10.92.0.2' },
      dst: { ns: s.ns, ip: '10.92.0.1' },
      daemons: [{ role: 'client', pid: pidOf(procs[1]!) }, { role: 'server', pid: pidOf(procs[0]!) }],
      mtu: 1500,
      config: 'tinc 1.0, router mode, RSA-2048, Cipher aes-256-cbc, Digest sha256',
      procs,
      stop: () => stopAll(procs)
    }
  }
}

export const TUNNELS: readonly TunnelSpec[] = [raw, ours, oursRelay, fastd, wireguard, nebula, openvpn, tinc]

/** Tunnels run only when named (not part of the default "all"). */
export const EXTRA_TUNNELS: readonly TunnelSpec[] = [oursNoFast]

export function tunnelByName (name: string): TunnelSpec | undefined {
  return TUNNELS.find((t) => t.name === name) ?? EXTRA_TUNNELS.find((t) => t.name === name)
}

/**
 * Installs the Debian packages of the selected tunnels that are missing
 * (`apt-get install -y --no-install-recommends`, retried while another apt
 * holds the lock). Never throws: what could not be installed is reported by
 * the tunnel's `available()` afterwards. Returns a line for the log, or null
 * when nothing was missing.
 */
export async function installMissing (specs: readonly TunnelSpec[], log: (l: string) => void): Promise<string | null> {
  const pkgs = [...new Set(specs.filter((s) => s.available() !== null).flatMap((s) => s.packages ?? []))]
  if (pkgs.length === 0) return null
  if (!has('apt-get')) return `missing ${pkgs.join(' ')} and no apt-get to install them`
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  const deadline = Date.now() + 240_000
  for (let attempt = 1; ; attempt++) {
    log(`installing ${pkgs.join(' ')} (apt-get, attempt ${attempt})`)
    try {
      await run('apt-get', ['install', '-y', '--no-install-recommends', ...pkgs], { env, timeoutMs: Math.max(10_000, deadline - Date.now()) })
      return `installed ${pkgs.join(' ')}`
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err)
      if (/lock/i.test(msg) && Date.now() + 5000 < deadline) { await sleep(5000); continue }
      // Unknown package lists on a fresh machine: one apt-get update, then one more try.
      if (/Unable to locate package/i.test(msg) && attempt === 1) {
        await run('apt-get', ['update'], { env, timeoutMs: 120_000 }).catch(() => {})
        continue
      }
      return `could not install ${pkgs.join(' ')}: ${msg.split('\n').slice(-2).join(' ').slice(0, 300)}`
    }
  }
}
