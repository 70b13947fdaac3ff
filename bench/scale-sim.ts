/**
 * The scale test's client simulator (bench/scale.ts starts it inside a lab
 * namespace). Simulates many clients from one process, each with its own UDP
 * socket (its own endpoint), speaking the real protocol to a real server
 * daemon: Noise registration (createInit / consumeResponse), Confirm,
 * keepalive Pings every 10 s (Pongs opened; peer-list updates counted, not
 * opened), relay envelopes to other clients, and an end-to-end relayed
 * peer handshake with data between two simulated clients.
 *
 * Commands arrive as JSON lines on stdin; every answer is one JSON line on
 * stdout:
 *   {"cmd":"register","total":N}   → {"ev":"registered", ...}  (registers clients until N are, all at once)
 *   {"cmd":"pingall"}              → {"ev":"pinged", ...}      (every client pings; time until every Pong)
 *   {"cmd":"relay","seconds":S,"size":B} → {"ev":"relayed", ...} (relay envelopes from every client to its partner)
 *   {"cmd":"e2e"}                  → {"ev":"e2e", ...}          (relayed peer handshake + 100 data packets, verified)
 *   {"cmd":"quit"}
 */
import { randomBytes } from 'node:crypto'
import { createInterface } from 'node:readline'
import DgramAsPromised, { type SocketAsPromised } from 'dgram-as-promised'
import { CookieGenerator, macKeys } from '../src/crypto/cookie.js'
import { stripMacs } from '../src/wire/cookie.js'
import { consumeInit, consumeResponse, createInit, createResponse, generateStaticKey, type InitiatorState, type SessionKeys, type StaticKey } from '../src/crypto/noise.js'
import { ControlChannel, openTransport, sealTransport } from '../src/crypto/control-channel.js'
import { derivePsk } from '../src/crypto/kdf.js'
import { decodeControl, encodeControl, CTL_CONFIRM, CTL_PING, CTL_PONG } from '../src/wire/control.js'
import { decodeRespPayload, encodeInitPayload, encodeRespPayload, RESP_OK } from '../src/wire/payloads.js'
import { MSG_DATA, MSG_HANDSHAKE_INIT, MSG_HANDSHAKE_RESP } from '../src/wire/messages.js'
import { intToIp, ipToInt } from '../src/wire/addr.js'
import { loadNative } from '../src/dataplane/native.js'
import { percentile } from './lib/parse.js'

process.noDeprecation = true

const [serverHost = '100.64.0.1', serverPortS = '9000', key = 'bench-network-key', localHost = '0.0.0.0', prefixS = '16'] = process.argv.slice(2)
const serverPort = Number(serverPortS)
const serverIpInt = ipToInt(serverHost)
const prefix = Number(prefixS)
const KEEPALIVE_MS = 10_000
const RETRY_MS = 1000
const PONG_LEN = 16 + 18 + 16

interface SimClient {
  i: number
  sock: SocketAsPromised
  fd: number
  tunnelIp: number
  nodeKey: StaticKey
  localIndex: number
  hs: InitiatorState | null
  initSentAt: number
  inits: number
  registeredAt: number
  peerId: number
  ctl: ControlChannel | null
  version: number
  pingSentAt: Map<number, number>
  lastRtt: number | null
  controlIn: number
  controlBytesIn: number
  refused: number | null
  /** Relayed peer sessions (e2e test). */
  peer: { state?: InitiatorState, keys?: SessionKeys, remoteIndex?: number, localIndex: number, got: number } | null
}

const clients: SimClient[] = []
let psk: Uint8Array
let onRegistered: (() => void) | null = null
let onPong: ((txid: number) => void) | null = null
const out = (o: unknown): void => { process.stdout.write(JSON.stringify(o) + '\n') }

/** mac1 on every init (docs/PROTOCOL.md §4.6); the simulator answers no cookie replies (one source: it stays below the server's load threshold only when its rate does). */
let macGen: CookieGenerator | null = null
function macs (): CookieGenerator { return (macGen ??= new CookieGenerator(macKeys(psk))) }

function tunnelIpOf (i: number): number {
  return (ipToInt('10.77.0.0') + 2 + i) >>> 0
}

/** Makes a fresh init (new index, ephemeral and timestamp), kept until sent. */
function prepareInit (c: SimClient): Uint8Array {
  c.localIndex = (randomBytes(4).readUInt32LE(0) >>> 0) || 1
  const payload = encodeInitPayload({ role: 1, prefixLen: prefix, mtu: 1400, tunnelIp: c.tunnelIp, timestamp: Date.now() + c.inits, lan: [] })
  const { message, state } = createInit(psk, c.nodeKey, c.localIndex, payload)
  c.hs = state
  return macs().addMacs(message, performance.now())
}

function sendInit (c: SimClient, message: Uint8Array = prepareInit(c)): void {
  c.initSentAt = Date.now()
  c.inits++
  c.sock.socket.send(message, serverPort, serverHost)
}

function onMessage (c: SimClient, msg: Buffer): void {
  const type = msg[0]
  if (type === MSG_HANDSHAKE_RESP && c.hs !== null) {
    const arrived = Date.now()
    let res
    try { res = consumeResponse(c.hs, msg) } catch { return }
    const resp = decodeRespPayload(res.payload)
    c.hs = null
    if (resp.status !== RESP_OK) { c.refused = resp.status; onRegistered?.(); return }
    c.peerId = resp.peerId
    c.ctl = new ControlChannel({ send: res.keys.ctlSend, recv: res.keys.ctlRecv }, res.senderIndex)
    c.sock.socket.send(c.ctl.seal(encodeControl({ kind: CTL_CONFIRM })), serverPort, serverHost)
    // The arrival time, not the end of our own processing: the rate measured is the server's.
    c.registeredAt = arrived
    onRegistered?.()
    return
  }
  if (type === 3 && c.ctl !== null) {
    c.controlIn++
    c.controlBytesIn += msg.length
    if (msg.length !== PONG_LEN) return // a peer-list update: counted, not opened (a real client would apply it)
    const plain = c.ctl.open(msg)
    if (plain === null) return
    const m = decodeControl(plain)
    if (m.kind !== CTL_PONG) return
    c.version = m.peerListVersion
    const t = c.pingSentAt.get(m.txid)
    if (t !== undefined) { c.pingSentAt.delete(m.txid); c.lastRtt = Date.now() - t; onPong?.(m.txid) }
    return
  }
  if (type === 5) onRelayed(c, msg)
}

function ping (c: SimClient): number {
  if (c.ctl === null) return 0
  const txid = randomBytes(4).readUInt32LE(0) >>> 0
  c.pingSentAt.set(txid, Date.now())
  c.sock.socket.send(c.ctl.seal(encodeControl({ kind: CTL_PING, txid, peerListVersion: c.version })), serverPort, serverHost)
  return txid
}

async function addClient (i: number): Promise<SimClient> {
  const c: SimClient = {
    i, sock: null as unknown as SocketAsPromised, fd: -1, tunnelIp: tunnelIpOf(i), nodeKey: generateStaticKey(), localIndex: 0, hs: null, initSentAt: 0,
    inits: 0, registeredAt: 0, peerId: 0, ctl: null, version: 0, pingSentAt: new Map(), lastRtt: null, controlIn: 0, controlBytesIn: 0, refused: null, peer: null
  }
  c.sock = DgramAsPromised.createSocket({ type: 'udp4' }, (msg) => { onMessage(c, msg) })
  await c.sock.bind(0, localHost)
  c.fd = (c.sock.socket as unknown as { _handle: { fd: number } })._handle.fd
  clients.push(c)
  // Keepalive at a random phase, like independent real clients.
  setTimeout(() => { ping(c); setInterval(() => { ping(c) }, KEEPALIVE_MS).unref() }, Math.random() * KEEPALIVE_MS).unref()
  return c
}

async function register (total: number): Promise<void> {
  const fresh: SimClient[] = []
  for (let i = clients.length; i < total; i++) fresh.push(await addClient(i))
  // The inits are made first (X25519 in JS costs this process ~1 ms each), then sent in one burst.
  const inits = fresh.map((c) => prepareInit(c))
  const t0 = Date.now()
  const pending = new Set(fresh)
  await new Promise<void>((resolve) => {
    const check = (): void => {
      for (const c of pending) if (c.registeredAt > 0 || c.refused !== null) pending.delete(c)
      if (pending.size === 0) { onRegistered = null; clearInterval(retry); clearTimeout(limit); resolve() }
    }
    onRegistered = check
    // Retransmit like a real client: after 1 s + jitter without a response, a fresh init.
    const retry = setInterval(() => {
      const now = Date.now()
      for (const c of pending) if (c.registeredAt === 0 && c.refused === null && now - c.initSentAt > RETRY_MS + Math.random() * 250) sendInit(c)
    }, 100)
    const limit = setTimeout(() => { onRegistered = null; clearInterval(retry); resolve() }, 90_000)
    fresh.forEach((c, k) => { sendInit(c, inits[k]) })
    check()
  })
  const done = fresh.filter((c) => c.registeredAt > 0)
  const last = Math.max(t0, ...done.map((c) => c.registeredAt))
  const lat = done.map((c) => c.registeredAt - t0)
  out({
    ev: 'registered', n: clients.filter((c) => c.registeredAt > 0).length, added: fresh.length, ok: done.length,
    refused: fresh.filter((c) => c.refused !== null).length, ms: last - t0,
    inits: fresh.reduce((a, c) => a + c.inits, 0), latencyP50: percentile(lat, 50), latencyP99: percentile(lat, 99)
  })
}

async function pingAll (): Promise<void> {
  const live = clients.filter((c) => c.ctl !== null)
  for (const c of live) c.lastRtt = null
  const t0 = Date.now()
  const mine = new Map<number, SimClient>()
  const rtts: number[] = []
  let last = t0
  await new Promise<void>((resolve) => {
    const limit = setTimeout(() => { onPong = null; resolve() }, 10_000)
    // Only the Pongs of this round count (keepalive Pongs of the clients' own timers do not).
    onPong = (txid) => {
      const c = mine.get(txid)
      if (c === undefined) return
      mine.delete(txid)
      rtts.push(c.lastRtt ?? 0)
      last = Date.now()
      if (mine.size === 0) { clearTimeout(limit); onPong = null; resolve() }
    }
    for (const c of live) mine.set(ping(c), c)
  })
  out({ ev: 'pinged', n: live.length, pongs: rtts.length, ms: last - t0, p50: percentile(rtts, 50), p99: percentile(rtts, 99) })
}

/** Relay envelopes from every registered client to its partner (i xor 1), round robin, sendmmsg of 64 per call. */
function relayBlast (seconds: number, size: number): void {
  const native = loadNative()
  // Only clients the server has activated (it sent them their peer list): a client whose Confirm and
  // first Ping were both dropped is re-registered by a real client after a Reject; this simulator does not.
  const live = clients.filter((c) => c.ctl !== null && c.controlIn > 0)
  if (live.length < 2) { out({ ev: 'relayed', sent: 0, seconds: 0 }); return }
  // One envelope, sent 64 times per call: relay header (8) + a data message (16 + size + 16) the server cannot read.
  const mem = new Uint8Array(new SharedArrayBuffer(2048))
  const len = 8 + 16 + size + 16
  const v = new DataView(mem.buffer)
  v.setUint32(0, 5, true)
  v.setUint32(8, MSG_DATA, true)
  mem.set(randomBytes(len - 12), 12)
  const B = 64
  const offsets = new Int32Array(B)
  const lens = new Int32Array(B).fill(len)
  const addrs = new Uint32Array(B * 2)
  for (let k = 0; k < B; k++) { addrs[k * 2] = serverIpInt; addrs[k * 2 + 1] = serverPort }
  let sent = 0
  let calls = 0
  const t0 = process.hrtime.bigint()
  const end = t0 + BigInt(Math.round(seconds * 1e9))
  let i = 0
  // Synchronous on purpose: the event loop does not read replies meanwhile (the server's forwards are counted on its link).
  while (process.hrtime.bigint() < end) {
    const c = live[i]!
    const partner = live[i ^ 1] ?? live[0]!
    v.setUint32(4, partner.peerId, true)
    try { sent += native.udpSendBatch(c.fd, mem, offsets, lens, addrs, B) } catch {}
    calls++
    i = (i + 1) % live.length
  }
  const el = Number(process.hrtime.bigint() - t0) / 1e9
  out({ ev: 'relayed', sent, seconds: el, calls, clients: live.length, bytes: len })
}

/** Client 0 and client 1: a relayed Noise handshake (role 2), then 100 data packets 0 → 1, opened and counted. */
async function e2e (): Promise<void> {
  const a = clients[0]
  const b = clients[1]
  if (a === undefined || b === undefined || a.ctl === null || b.ctl === null) { out({ ev: 'e2e', ok: false, why: 'fewer than 2 clients' }); return }
  const t0 = Date.now()
  a.peer = { localIndex: 0x11111111, got: 0 }
  b.peer = { localIndex: 0x22222222, got: 0 }
  const payload = encodeInitPayload({ role: 2, prefixLen: prefix, mtu: 1400, tunnelIp: a.tunnelIp, timestamp: Date.now(), lan: [] })
  const { message: noise, state } = createInit(psk, a.nodeKey, a.peer.localIndex, payload)
  const message = macs().addMacs(noise, performance.now())
  a.peer.state = state
  relaySend(a, b.peerId, message)
  const ok = await waitUntil(() => a.peer?.keys !== undefined, 5000)
  if (!ok) { out({ ev: 'e2e', ok: false, why: 'no relayed handshake response within 5 s' }); return }
  const hsMs = Date.now() - t0
  const pkt = new Uint8Array(100)
  pkt[0] = 0x45
  for (let n = 0; n < 100; n++) relaySend(a, b.peerId, sealTransport(MSG_DATA, a.peer.keys!.dataSend, a.peer.remoteIndex!, n, pkt))
  await waitUntil(() => (b.peer?.got ?? 0) >= 100, 3000)
  out({ ev: 'e2e', ok: b.peer.got === 100, handshakeMs: hsMs, delivered: b.peer.got })
}

function relaySend (from: SimClient, toPeerId: number, inner: Uint8Array): void {
  const buf = Buffer.alloc(8 + inner.length)
  buf.writeUInt32LE(5, 0)
  buf.writeUInt32LE(toPeerId, 4)
  buf.set(inner, 8)
  from.sock.socket.send(buf, serverPort, serverHost)
}

function onRelayed (c: SimClient, msg: Buffer): void {
  const via = msg.readUInt32LE(4)
  const inner = new Uint8Array(msg.subarray(8))
  if (c.peer === null) return
  if (inner[0] === MSG_HANDSHAKE_INIT) {
    try {
      const hs = consumeInit(psk, c.nodeKey, stripMacs(inner))
      const resp = createResponse(hs.state, c.peer.localIndex, encodeRespPayload({ status: RESP_OK, prefixLen: prefix, mtu: 1400, tunnelIp: c.tunnelIp, peerId: c.peerId, observedIp: 0, observedPort: 0 }))
      c.peer.keys = resp.keys
      c.peer.remoteIndex = hs.senderIndex
      relaySend(c, via, resp.message)
    } catch {}
  } else if (inner[0] === MSG_HANDSHAKE_RESP && c.peer.state !== undefined) {
    try {
      const res = consumeResponse(c.peer.state, inner)
      c.peer.keys = res.keys
      c.peer.remoteIndex = res.senderIndex
    } catch {}
  } else if (inner[0] === MSG_DATA && c.peer.keys !== undefined) {
    if (openTransport(c.peer.keys.dataRecv, inner) !== null) c.peer.got++
  }
}

async function waitUntil (fn: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (fn()) return true
    await new Promise((r) => setTimeout(r, 10))
  }
  return fn()
}

async function main (): Promise<void> {
  psk = await derivePsk(key, { ip: tunnelIpOf(0), prefix, name: null }) // the server's network (its --tun prefix must be `prefix`)
  out({ ev: 'ready', server: `${serverHost}:${serverPort}`, firstTunnelIp: intToIp(tunnelIpOf(0)) })
  const rl = createInterface({ input: process.stdin })
  for await (const line of rl) {
    if (line.trim() === '') continue
    const cmd = JSON.parse(line) as { cmd: string, total?: number, seconds?: number, size?: number }
    try {
      if (cmd.cmd === 'register') await register(cmd.total ?? 10)
      else if (cmd.cmd === 'pingall') await pingAll()
      else if (cmd.cmd === 'relay') relayBlast(cmd.seconds ?? 3, cmd.size ?? 1400)
      else if (cmd.cmd === 'e2e') await e2e()
      else if (cmd.cmd === 'quit') break
      else out({ ev: 'error', message: `unknown command ${cmd.cmd}` })
    } catch (err) {
      out({ ev: 'error', message: err instanceof Error ? err.stack ?? err.message : String(err) })
    }
  }
  await Promise.all(clients.map((c) => c.sock.close().catch(() => {})))
  process.exit(0)
}

void main()
