// Placement 'inline' (dataplane/inline-host.ts): the pipelines on the main
// thread behave like a worker towards dataplane.ts: READY, control events in
// order, STOP → STOPPED then exit 0, a pipeline failure → ERROR then exit 1
// with every poll stopped. The addon is the real one except pollStart/
// pollStop (recorded, so the test fires "readable" itself) and the TUN read
// (made to fail like a deleted device).
import t from 'tap'
import { once } from 'node:events'
import { InlineHost } from '../../src/dataplane/inline-host.js'
import { loadNative, type Native } from '../../src/dataplane/native.js'
import { createStatsBuffer, StatsReader } from '../../src/dataplane/stats.js'
import { SpscRing } from '../../src/dataplane/ring.js'
import { BATCH, CTRL_RING_SLOTS, CTRL_SLOT_SIZE, RX_BUF_SIZE, RX_BUFS, SLOT_SIZE, type FromWorker, type WorkerInit } from '../../src/workers/layout.js'

const MAX_PEERS = 4

function setup (readFails: boolean): { native: Native, polls: Map<number, () => void>, stopped: number[], init: WorkerInit } {
  const real = loadNative()
  const polls = new Map<number, () => void>()
  const stopped: number[] = []
  const handles = new Map<object, number>()
  const native: Native = {
    ...real,
    pollStart: (fd: number, cb: () => void) => { const h = {}; handles.set(h, fd); polls.set(fd, cb); return h },
    pollStop: (h: object) => { stopped.push(handles.get(h)!) },
    tunReadSplit: (...args: Parameters<Native['tunReadSplit']>) => {
      if (!readFails) return 0
      void args
      throw Object.assign(new Error('tunReadSplit: read: EBADFD'), { code: 'EBADFD', syscall: 'read', errno: -77 })
    },
    udpRecvGro: (...a: Parameters<Native['udpRecvGro']>) => { a[9][0] = 0; return 0 }
  }
  const init: WorkerInit = {
    role: 'both', statsIndex: 0, mode: 'client', tunFd: 1001, tunVnet: true, udpFd: 1002, tunnelIp: 0x0a000002, mtu: 1400,
    maxPeers: MAX_PEERS, packetMem: new SharedArrayBuffer(BATCH * SLOT_SIZE), packetMemIn: new SharedArrayBuffer(RX_BUFS * RX_BUF_SIZE),
    stats: createStatsBuffer(MAX_PEERS), ctrlRing: SpscRing.create(CTRL_RING_SLOTS, CTRL_SLOT_SIZE), fastPath: false
  }
  return { native, polls, stopped, init }
}

function collect (h: InlineHost): FromWorker[] {
  const got: FromWorker[] = []
  h.on('message', (m: FromWorker) => { got.push(m) })
  return got
}

t.test('READY, control events, STOP: STOPPED then exit 0, polls stopped', async t => {
  const { native, polls, stopped, init } = setup(false)
  const h = new InlineHost(init, native)
  const got = collect(h)
  await once(h, 'message')
  t.same(got, [{ code: 'READY' }])
  t.same([...polls.keys()].sort(), [1001, 1002], 'one poll on the TUN fd, one on the UDP fd')
  // A peer and its send key reach the outbound pipeline (visible as a peer row in the stats).
  h.postMessage({ code: 'PEER', slot: 1, peerId: 7, tunnelIp: 0x0a000003, endpointIp: 0x7f000001, endpointPort: 9, relayVia: false, fd: -1 })
  h.postMessage({ code: 'SEND_KEY', slot: 1, key: new Uint8Array(32).fill(1), remoteIndex: 5 })
  polls.get(1001)!() // readable: the (fake) read returns nothing; nothing breaks
  const exit = once(h, 'exit')
  h.postMessage({ code: 'STOP' })
  const [code] = await exit
  t.equal(code, 0, 'exit code 0')
  t.same(got.map(m => m.code), ['READY', 'STOPPED'])
  t.same(stopped.sort(), [1001, 1002], 'both polls stopped')
  h.postMessage({ code: 'STOP' }) // after exit: ignored, no throw
  t.equal(new StatsReader(init.stats, MAX_PEERS).counters().tunRxPackets, 0)
})

t.test('a pipeline that throws: ERROR (TUN gone) then exit 1, polls stopped, no throw into the caller', async t => {
  const { native, polls, stopped, init } = setup(true)
  const h = new InlineHost(init, native)
  const got = collect(h)
  await once(h, 'message')
  const exit = once(h, 'exit')
  t.doesNotThrow(() => { polls.get(1001)!() }, 'the failure stays inside the host')
  const [code] = await exit
  t.equal(code, 1)
  t.equal(got.length, 2)
  t.match(got[1], { code: 'ERROR', message: 'EBADFD', tunGone: true })
  t.same(stopped.sort(), [1001, 1002])
})

t.test('terminate: exit 1 at once, polls stopped', async t => {
  const { native, stopped, init } = setup(false)
  const h = new InlineHost(init, native)
  await once(h, 'message')
  const exit = once(h, 'exit')
  t.equal(await h.terminate(), 1)
  t.same((await exit)[0], 1)
  t.same(stopped.sort(), [1001, 1002])
})
