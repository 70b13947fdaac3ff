/**
 * The lab's delay line alone (src/lab/delay-line.ts), on loopback: how many
 * datagrams a second it carries one way, against an older build of it given
 * with --old, side by side in one run (runs alternate, medians).
 *
 *   this process: sender ──udpSendBatch (64 a call, as fast as the loop turns)──▶
 *     the line (a child process, --delay MS) ──▶ this process: sink (udpRecvBatch on a poll)
 *
 * Each run lasts SECONDS; the figure is datagrams received by the sink a
 * second (1400-byte payloads; Mbit/s of payload beside it) and the line's
 * counters. The sender and the sink share this process's core, the line has
 * its own: the sender offers more than the line carries (the rest is lost in
 * the line's socket buffer), so the figure is the line's ceiling on this
 * machine, as far as the machine's load lets it run.
 *
 *   node dist/bench/delay-line.js [--old FILE] [--seconds 3] [--reps 3] [--delay 5]
 *
 * FILE: a compiled delay-line.js of another commit (same command line).
 */
import { spawn } from 'node:child_process'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import { loadNative } from '../src/dataplane/native.js'
import { ipToInt } from '../src/wire/addr.js'

const NEW = fileURLToPath(new URL('../src/lab/delay-line.js', import.meta.url))
const LEN = 1400
const BATCH = 64

interface RunResult { pps: number, stats: string }

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

async function run (script: string, seconds: number, delay: number): Promise<RunResult> {
  const native = loadNative()
  const sink = native.udpOpen('127.0.0.1', 0, 4 << 20)
  const src = native.udpOpen('127.0.0.1', 0, 4 << 20)
  const probe = native.udpOpen('127.0.0.1', 0, 0)
  const port = probe.port // a free port for the line (closed just before it binds)
  native.close(probe.fd)
  const child = spawn(process.execPath, [script, '--listen', `127.0.0.1:${port}`, '--upstream', `127.0.0.1:${sink.port}`, '--delay', String(delay)], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  try {
    for (let i = 0; i < 100 && !out.includes('ready'); i++) await new Promise((resolve) => setTimeout(resolve, 50))
    if (!out.includes('ready')) throw new Error(`the delay line ${script} did not start`)
    const rx = { mem: new Uint8Array(BATCH * 2048), offs: Int32Array.from({ length: BATCH }, (_, i) => i * 2048), lens: new Int32Array(BATCH), addrs: new Uint32Array(2 * BATCH) }
    const tx = { mem: new Uint8Array(BATCH * LEN), offs: Int32Array.from({ length: BATCH }, (_, i) => i * LEN), lens: new Int32Array(BATCH).fill(LEN), addrs: new Uint32Array(2 * BATCH) }
    for (let i = 0; i < BATCH; i++) { tx.addrs[2 * i] = ipToInt('127.0.0.1'); tx.addrs[2 * i + 1] = port }
    let received = 0
    let counting = false
    const poll = native.pollStart(sink.fd, () => {
      for (let r = 0; r < 8; r++) {
        const n = native.udpRecvBatch(sink.fd, rx.mem, rx.offs, rx.lens, rx.addrs, BATCH, 2048)
        if (counting) received += n
        if (n < BATCH) return
      }
    })
    let sending = true
    const pump = (): void => {
      if (!sending) return
      for (let i = 0; i < 4; i++) native.udpSendBatch(src.fd, tx.mem, tx.offs, tx.lens, tx.addrs, BATCH)
      setImmediate(pump)
    }
    pump()
    await new Promise((resolve) => setTimeout(resolve, 500 + delay)) // warm up: the line's first datagrams are due
    counting = true
    const t0 = performance.now()
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000))
    counting = false
    const pps = received / ((performance.now() - t0) / 1000)
    sending = false
    native.pollStop(poll)
    child.kill('SIGTERM')
    await new Promise((resolve) => child.once('exit', resolve))
    return { pps, stats: out.split('\n').find(l => l.startsWith('{')) ?? '' }
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL')
    native.close(sink.fd)
    native.close(src.fd)
  }
}

async function main (): Promise<void> {
  const { values } = parseArgs({ options: { old: { type: 'string' }, seconds: { type: 'string', default: '3' }, reps: { type: 'string', default: '3' }, delay: { type: 'string', default: '5' } } })
  const seconds = Number(values.seconds)
  const reps = Number(values.reps)
  const delay = Number(values.delay)
  const lines: Array<[string, string]> = [...(values.old !== undefined ? [['old', values.old] as [string, string]] : []), ['new', NEW]]
  const pps: Record<string, number[]> = {}
  for (let rep = 0; rep < reps; rep++) {
    for (const [label, script] of lines) {
      const r = await run(script, seconds, delay)
      ;(pps[label] ??= []).push(r.pps)
      console.log(`${label} rep ${rep + 1}: ${Math.round(r.pps)} datagrams/s (${(r.pps * LEN * 8 / 1e6).toFixed(0)} Mbit/s of payload); line: ${r.stats}`)
    }
  }
  console.log(`\none way through the delay line on loopback (+${delay} ms), ${LEN}-byte datagrams, medians of ${reps} runs of ${seconds} s`)
  for (const [label] of lines) {
    const m = median(pps[label]!)
    console.log(`${label.padEnd(4)} ${String(Math.round(m)).padStart(8)} datagrams/s  ${(m * LEN * 8 / 1e6).toFixed(0).padStart(6)} Mbit/s${label === 'new' && pps.old !== undefined ? `  ${(m / median(pps.old)).toFixed(2)}× old` : ''}`)
  }
}

main().catch((err) => { console.error(err); process.exitCode = 1 })
