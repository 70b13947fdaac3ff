// HandshakeInit flooder for test/e2e/robustness.test.ts and bench/flood.ts.
// Runs as a plain node program inside a lab namespace (imports the compiled
// protocol modules).
//
//   node init-flood.mjs HOST PORT MODE RATE SECONDS [KEY] [PORTS] [v1|v2] [TUN]
//
// MODE: junk       random bytes with the init type byte (148 bytes, the size of a real init)
//       wrong-key  well-formed inits (Noise + MAC trailer) under another network key (a random psk)
//       member     valid inits (mac1 right) under KEY, each a new handshake; answers
//                  cookie replies like a client would (mac2 on the next ones)
// RATE inits a second in total, spread over PORTS source sockets (default 8), sent in
// 5 ms batches. TUN (default 10.77.0.254/24): the address the inits claim; its network salts
// the psk as every node's does (crypto/kdf.ts). v1: no MAC trailer (against a build before it, for bench:flood's "before"). Prints a JSON summary: { sent, seconds, rate, cookies }.
import dgram from 'node:dgram'
// Stage markers on stderr: a run that never finishes (whole-suite CI, not reproduced alone) shows how far it got.
const t0 = performance.now()
const stage = (what) => { process.stderr.write(`init-flood ${process.argv[4] ?? ''}: ${what} at ${Math.round(performance.now() - t0)} ms\n`) }
stage('started')
// Watchdog: a run still going 40 s after the flood should have ended writes what the process waits on (its
// libuv handles and stacks) and exits 3. If even this never appears, the main thread itself is blocked.
const watchdog = setTimeout(() => {
  const r = process.report.getReport()
  const handles = r.libuv.filter(h => h.is_active).map(h => `${h.type}${h.is_referenced ? '' : ' (unref)'}${h.localEndpoint ? ` ${JSON.stringify(h.localEndpoint)}` : ''}`)
  stage(`watchdog: still running; active handles: ${handles.join(', ')}; js stack: ${(r.javascriptStack?.stack ?? []).slice(0, 6).join(' | ')}; native: ${r.nativeStack.slice(0, 12).map(f => f.symbol).join(' | ')}`)
  process.exit(3)
}, (Number(process.argv[6] ?? 12) + 40) * 1000)
watchdog.unref()
import { randomBytes } from 'node:crypto'
const dist = new URL('../../dist/src/', import.meta.url)
const { derivePsk } = await import(new URL('crypto/kdf.js', dist))
const { createInit, generateStaticKey } = await import(new URL('crypto/noise.js', dist))
const { CookieGenerator, macKeys } = await import(new URL('crypto/cookie.js', dist))
const { encodeInitPayload } = await import(new URL('wire/payloads.js', dist))
const { ipToInt } = await import(new URL('wire/addr.js', dist))
stage('modules loaded')

const [host, portS, mode, rateS, secondsS, key = 'flood-test-key', portsS = '8', wire = 'v2', tun = '10.77.0.254/24'] = process.argv.slice(2)
const port = Number(portS)
const rate = Number(rateS)
const seconds = Number(secondsS)
const nPorts = Number(portsS)
if (!['junk', 'wrong-key', 'member'].includes(mode)) throw new Error(`MODE must be junk, wrong-key or member: ${mode}`)

const socks = []
for (let i = 0; i < nPorts; i++) {
  const s = dgram.createSocket('udp4')
  await new Promise((resolve) => s.bind(0, resolve))
  socks.push(s)
}
stage(`${nPorts} sockets bound`)

// A pool of prebuilt messages (building each init costs more than sending it).
const pool = []
let cookies = 0
const gens = socks.map(() => null)
if (mode === 'junk') {
  for (let i = 0; i < 256; i++) { const b = randomBytes(148); b[0] = 1; pool.push(b) }
} else {
  const [tunIp, tunPrefix] = tun.split('/')
  const net = { ip: ipToInt(tunIp), prefix: Number(tunPrefix), name: null }
  // wrong-key: any other network key's psk is 32 bytes unrelated to ours, so a random one is exactly that
  // (and skips the scrypt run, one of the steps a whole-suite hang could have been stuck in).
  const psk = mode === 'member' ? await derivePsk(key, net) : new Uint8Array(randomBytes(32))
  stage('psk ready')
  const keys = macKeys(psk)
  const payload = encodeInitPayload({ role: 1, prefixLen: net.prefix, mtu: 1400, tunnelIp: net.ip, timestamp: Date.now(), lan: [] })
  const nodeKey = generateStaticKey()
  for (let i = 0; i < 256; i++) pool.push(createInit(psk, nodeKey, 0x5000000 + i, payload).message)
  if (wire !== 'v1') for (let i = 0; i < nPorts; i++) gens[i] = new CookieGenerator(keys)
  if (mode === 'member' && wire !== 'v1') {
    socks.forEach((s, i) => s.on('message', (m) => { if (m[0] === 7 && gens[i].consumeReply(new Uint8Array(m), performance.now())) cookies++ }))
  }
}

stage(`pool of ${pool.length} ready`)
let sent = 0
let k = 0
const start = performance.now()
const perTick = Math.max(1, Math.round(rate * 0.005))
await new Promise((resolve) => {
  const tick = () => {
    const el = performance.now() - start
    if (el >= seconds * 1000) { resolve(); return }
    // Catch up to the schedule: rate * elapsed.
    const due = Math.min(Math.floor(rate * el / 1000), sent + perTick * 4)
    while (sent < due) {
      const i = sent % nPorts
      const m = pool[k++ & 255]
      const b = gens[i] === null ? m : gens[i].addMacs(m, performance.now())
      socks[i].send(b, port, host)
      sent++
    }
    setTimeout(tick, 5)
  }
  tick()
})
stage(`sent ${sent}`)
const el = (performance.now() - start) / 1000
console.log(JSON.stringify({ mode, sent, seconds: Math.round(el * 10) / 10, rate: Math.round(sent / el), cookies }))
for (const s of socks) s.close()
clearTimeout(watchdog)
