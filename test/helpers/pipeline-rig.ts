/**
 * The pipelines of a node over the in-memory twin of the addon's I/O
 * (helpers/fake-io.ts), for test/dataplane/pipelines*.test.ts: WorkerInit and
 * shared memory built as dataplane.ts builds them, one or two pipeline
 * threads (placement 'fused' or 'split') on this thread, control events in
 * as ToWorker messages (routed as Dataplane routes them), counters read from
 * the stats SharedArrayBuffer.
 */
import type { Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { FakeIo, type FakeTun, type FakeUdp } from './fake-io.js'
import { openTunVnet, openUdp } from '../../src/dataplane/native.js'
import { runPipelines, type PipelinePort } from '../../src/dataplane/pipelines.js'
import { SpscRing } from '../../src/dataplane/ring.js'
import { StatsReader, createStatsBuffer } from '../../src/dataplane/stats.js'
import {
  BATCH, CTRL_RING_SLOTS, CTRL_SLOT_SIZE, RX_BUF_SIZE, RX_BUFS, SLOT_SIZE, WORKER_ROLES,
  type CounterName, type FromWorker, type ToWorker, type WorkerInit, type WorkerKind
} from '../../src/workers/layout.js'

export const MAX_PEERS = 8
export const CLIENT_IP = 0x0a4d0002 // 10.77.0.2: our tunnel address (client)
export const SERVER_IP = 0x0a4d0001 // 10.77.0.1: the server's tunnel address
export const OTHER_IP = 0x0a4d0003 // 10.77.0.3: another client
export const SERVER_EP = { ip: 0x64400001, port: 9000 } // 100.64.0.1:9000
export const OTHER_EP = { ip: 0x64400202, port: 40002 }
export const REMOTE_INDEX = 0x11223344 // the server's receiver index for our data
export const LOCAL_INDEX = 0x55667788 // our receiver index for the server's data

/** A thread's port: ToWorker in (cloned, as a MessagePort does), FromWorker out, recorded. */
export class MemPort implements PipelinePort {
  readonly got: FromWorker[] = []
  readonly #fns: Array<(m: ToWorker) => void> = []
  closed = false
  postMessage (m: FromWorker): void { this.got.push(m) }
  on (_ev: 'message', fn: (m: ToWorker) => void): unknown { this.#fns.push(fn); return this }
  close (): void { this.closed = true }
  send (m: ToWorker): void { for (const fn of this.#fns) fn(structuredClone(m)) }
}

export interface Rig {
  io: FakeIo
  tun: FakeTun
  udp: FakeUdp
  udpFd: number
  stats: StatsReader
  ring: SpscRing
  /** Role → its thread's port (both roles share one with placement 'fused'). */
  ports: Map<'outbound' | 'inbound', MemPort>
  /** Route a control event as Dataplane does: PEER/PEER_REMOVE to every thread, keys to their direction. */
  post: (m: ToWorker) => void
  counters: () => Record<CounterName, number>
  messages: () => FromWorker[]
  stop: () => void
}

/** The daemon's dataplane over the twin: TUN and UDP opened as Dataplane.start opens them, one or two pipeline threads. */
export function rig (t: Test, mode: 'client' | 'server', placement: 'fused' | 'split' = 'fused', tunnelIp = mode === 'client' ? CLIENT_IP : SERVER_IP, extra: Partial<WorkerInit> = {}): Rig {
  const io = new FakeIo()
  const tunFd = openTunVnet(io, 'lwt0', true, true).fd
  const udpOpened = openUdp(io, '0.0.0.0', mode === 'server' ? 9000 : 0, 4 * 1024 * 1024)
  io.udpSetGro(udpOpened.fd, true)
  const statsSab = createStatsBuffer(MAX_PEERS)
  const ringSab = SpscRing.create(CTRL_RING_SLOTS, CTRL_SLOT_SIZE)
  const ports = new Map<'outbound' | 'inbound', MemPort>()
  const runs: Array<{ stop: () => void }> = []
  const start = (role: WorkerKind, statsIndex: number): void => {
    const init: WorkerInit = {
      role,
      statsIndex,
      mode,
      tunFd,
      tunVnet: true,
      udpFd: udpOpened.fd,
      tunnelIp,
      mtu: 1400,
      maxPeers: MAX_PEERS,
      packetMem: new SharedArrayBuffer(role === 'inbound' ? RX_BUFS * RX_BUF_SIZE : BATCH * SLOT_SIZE),
      packetMemIn: role === 'both' ? new SharedArrayBuffer(RX_BUFS * RX_BUF_SIZE) : null,
      stats: statsSab,
      ctrlRing: role !== 'outbound' ? ringSab : null,
      fastPath: true,
      ...extra
    }
    const port = new MemPort()
    runs.push(runPipelines(init, io, port, (err) => { t.fail(`pipeline failed: ${String(err)}`) }))
    for (const r of role === 'both' ? WORKER_ROLES : [role]) ports.set(r, port)
  }
  if (placement === 'fused') start('both', 0)
  else WORKER_ROLES.forEach((role, i) => { start(role, i) })
  const stats = new StatsReader(statsSab, MAX_PEERS)
  const r: Rig = {
    io,
    tun: io.tun(tunFd),
    udp: io.udp(udpOpened.fd),
    udpFd: udpOpened.fd,
    stats,
    ring: new SpscRing(ringSab, CTRL_RING_SLOTS, CTRL_SLOT_SIZE),
    ports,
    post: (m) => {
      if (m.code === 'SEND_KEY') ports.get('outbound')!.send(m)
      else if (m.code === 'RECV_KEY' || m.code === 'DROP_INDEX' || m.code === 'ADD_SOCKET') ports.get('inbound')!.send(m)
      else for (const p of new Set(ports.values())) p.send(m)
    },
    counters: () => stats.counters(),
    messages: () => [...new Set(ports.values())].flatMap((p) => p.got),
    stop: () => { for (const p of new Set(ports.values())) p.send({ code: 'STOP' }) }
  }
  t.teardown(() => { for (const x of runs) x.stop() })
  return r
}

/** A client's peer slot 1: the server, direct, with a send and a receive key. */
export function withServer (r: Rig): { sendKey: Uint8Array, recvKey: Uint8Array } {
  const sendKey = new Uint8Array(randomBytes(32))
  const recvKey = new Uint8Array(randomBytes(32))
  r.post({ code: 'PEER', slot: 1, peerId: 0, tunnelIp: SERVER_IP, endpointIp: SERVER_EP.ip, endpointPort: SERVER_EP.port, relayVia: false, fd: -1 })
  r.post({ code: 'SEND_KEY', slot: 1, key: sendKey, remoteIndex: REMOTE_INDEX })
  r.post({ code: 'RECV_KEY', slot: 1, localIndex: LOCAL_INDEX, key: recvKey })
  return { sendKey, recvKey }
}

export function nonZero (c: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(c).filter(([, v]) => v !== 0))
}
