// TUN offload split (native vnetSplit, the core of tunReadSplit) against hand-built
// virtio_net_hdr superpackets: every segment's IPv4 header, TCP/UDP header and checksum
// is checked by an independent JS implementation, and the payloads must concatenate
// back to the original.
import t from 'tap'
import { randomBytes, randomInt } from 'node:crypto'
import { execFileSync, spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { loadNative } from '../../src/dataplane/native.js'
import { loadTestingNative } from '../helpers/native-testing.js'

const native = loadNative()
/** The test build (native/testing.c): vnetSplit, vnetCoalesce. */
const testing = loadTestingNative()
const VNET = 10
const SLOT = 2048
const CAP = 1900

function sum16 (b: Uint8Array, start: number, end: number, init = 0): number {
  let s = init
  for (let i = start; i + 1 < end; i += 2) s += (b[i] << 8) | b[i + 1]
  if ((end - start) % 2 === 1) s += b[end - 1] << 8
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16)
  return s
}
/** A valid IPv4 header sums to 0xffff. */
function ipCsumOk (p: Uint8Array): boolean { return sum16(p, 0, (p[0] & 15) * 4) === 0xffff }
/** A valid TCP/UDP checksum: pseudo header + segment sums to 0xffff. */
function l4CsumOk (p: Uint8Array): boolean {
  const ihl = (p[0] & 15) * 4
  const len = ((p[2] << 8) | p[3]) - ihl
  let s = sum16(p, 12, 20)
  s += p[9] + len
  return sum16(p, ihl, ihl + len, s) === 0xffff
}

interface Built { buf: Uint8Array, payload: Uint8Array, hlen: number }

function build (opts: { proto: 'tcp' | 'udp', payload: number, gsoSize: number, gsoType?: number, flags?: number, tcpFlags?: number, needsCsum?: boolean, tcpOpts?: number }): Built {
  const ihl = 20
  const l4 = opts.proto === 'tcp' ? 20 + (opts.tcpOpts ?? 12) : 8
  const hlen = ihl + l4
  const payload = randomBytes(opts.payload)
  const buf = new Uint8Array(VNET + hlen + opts.payload)
  const h = buf.subarray(0, VNET)
  h[0] = opts.needsCsum === false ? 0 : 1
  h[1] = opts.gsoType ?? (opts.proto === 'tcp' ? 1 : 5)
  const le16 = (o: number, v: number): void => { h[o] = v & 255; h[o + 1] = v >> 8 }
  le16(2, hlen)
  le16(4, opts.gsoSize)
  le16(6, ihl)
  le16(8, opts.proto === 'tcp' ? 16 : 6)
  const p = buf.subarray(VNET)
  const total = hlen + opts.payload
  p[0] = 0x45; p[2] = total >> 8; p[3] = total & 255
  p[4] = 0x12; p[5] = 0xfe // id 0x12fe: wraps past 0xffff for big splits
  p[6] = 0x40 // DF
  p[8] = 64; p[9] = opts.proto === 'tcp' ? 6 : 17
  p.set([10, 0, 0, 2, 10, 0, 0, 3], 12)
  const ic = 0xffff - sum16(p, 0, ihl) // the kernel's IPv4 header checksum is always complete
  p[10] = ic >> 8; p[11] = ic & 255
  const L = p.subarray(ihl)
  L[0] = 0x9c; L[1] = 0x40; L[2] = 0x14; L[3] = 0x51
  if (opts.proto === 'tcp') {
    L.set([0xff, 0xff, 0xfa, 0x00], 4) // seq near the wrap
    L.set([0, 0, 0, 77], 8)
    L[12] = (l4 / 4) << 4
    L[13] = opts.tcpFlags ?? 0x18 // PSH|ACK
    L[14] = 0xff; L[15] = 0xff
    for (let i = 20; i < l4; i++) L[i] = i === 20 || i === 21 ? 1 : 0x55 // NOP NOP then filler options
  } else {
    L[4] = (8 + opts.payload) >> 8; L[5] = (8 + opts.payload) & 255
  }
  // Partial checksum as the kernel leaves it: the folded pseudo-header sum, not complemented.
  const ps = sum16(p, 12, 20) + p[9] + (total - ihl)
  const folded = (ps & 0xffff) + (ps >>> 16)
  const co = opts.proto === 'tcp' ? 16 : 6
  L[co] = folded >> 8; L[co + 1] = folded & 255
  p.set(payload, hlen)
  return { buf, payload, hlen }
}

function split (b: Built, max = 64, cap = CAP): { segs: Uint8Array[], state: Int32Array, calls: number } {
  const sbuf = new Uint8Array(65536 + 64)
  sbuf.set(b.buf)
  const mem = new Uint8Array(new SharedArrayBuffer(max * SLOT))
  const offsets = new Int32Array(max).map((_, i) => i * SLOT + 32)
  const lens = new Int32Array(max)
  const state = new Int32Array(4)
  state[0] = b.buf.length
  const segs: Uint8Array[] = []
  let calls = 0
  while (state[0] !== 0 && calls < 1000) {
    const n = testing.vnetSplit(sbuf, mem, offsets, lens, max, cap, state)
    calls++
    for (let i = 0; i < n; i++) segs.push(mem.slice(offsets[i], offsets[i] + lens[i]))
  }
  return { segs, state, calls }
}

t.test('TSO TCPv4 superpacket: segments with own length, id, seq, flags, valid checksums; payload intact', async t => {
  for (const [payload, mss] of [[64000, 1448], [5000, 1448], [1448 * 3, 1448], [1, 1448], [3000, 536]]) {
    const b = build({ proto: 'tcp', payload, gsoSize: mss, tcpFlags: 0x80 | 0x18 | 0x01 }) // CWR|PSH|ACK|FIN
    const { segs, state } = split(b)
    const n = Math.ceil(payload / mss)
    t.equal(segs.length, n, `${payload}/${mss}: ${n} segments`)
    t.equal(state[2], 0, 'nothing dropped')
    const got: Uint8Array[] = []
    let bad = 0
    segs.forEach((s, k) => {
      const len = (s[2] << 8) | s[3]
      if (len !== s.length) bad++
      if (((s[4] << 8) | s[5]) !== ((0x12fe + k) & 0xffff)) bad++
      if (!ipCsumOk(s) || !l4CsumOk(s)) bad++
      const seq = ((s[24] << 24) | (s[25] << 16) | (s[26] << 8) | s[27]) >>> 0
      if (seq !== ((0xfffffa00 + k * mss) >>> 0)) bad++
      const f = s[33]
      const last = k === n - 1
      if (((f & 0x01) !== 0) !== last || ((f & 0x08) !== 0) !== last || ((f & 0x80) !== 0) !== (k === 0) || (f & 0x10) === 0) bad++
      if (Buffer.compare(s.subarray(20, 32), b.buf.subarray(VNET + 20, VNET + 32)) !== 0 && k === 0) bad++
      got.push(s.subarray(b.hlen))
    })
    t.equal(bad, 0, `${payload}/${mss}: every header and checksum right`)
    t.equal(Buffer.compare(Buffer.concat(got), b.payload), 0, `${payload}/${mss}: payload intact`)
  }
})

t.test('a superpacket larger than the slots left continues on the next call, in order', async t => {
  const b = build({ proto: 'tcp', payload: 20000, gsoSize: 1000 })
  const whole = split(b).segs
  const parts = split(b, 3)
  t.equal(parts.calls, 7, '20 segments over calls of 3')
  t.equal(parts.segs.length, 20)
  t.ok(parts.segs.every((s, i) => Buffer.compare(s, whole[i]) === 0), 'same segments as in one call')
})

t.test('USO UDPv4 superpacket: datagrams with own UDP length and valid checksums', async t => {
  const b = build({ proto: 'udp', payload: 3000, gsoSize: 1200 })
  const { segs } = split(b)
  t.equal(segs.length, 3)
  t.same(segs.map(s => s.length), [1228, 1228, 628])
  t.ok(segs.every(s => ipCsumOk(s) && l4CsumOk(s) && ((s[24] << 8) | s[25]) === s.length - 20), 'lengths and checksums')
  t.equal(Buffer.compare(Buffer.concat(segs.map(s => s.subarray(28))), b.payload), 0, 'payload intact')
})

t.test('plain packets: NEEDS_CSUM completed, no flag passed as is', async t => {
  for (const proto of ['tcp', 'udp'] as const) {
    const b = build({ proto, payload: 777, gsoSize: 0, gsoType: 0 })
    const { segs } = split(b)
    t.equal(segs.length, 1)
    t.ok(ipCsumOk(segs[0]) && l4CsumOk(segs[0]), `${proto}: checksum completed`)
  }
  const raw = build({ proto: 'udp', payload: 100, gsoSize: 0, gsoType: 0, needsCsum: false })
  const { segs } = split(raw)
  t.equal(Buffer.compare(segs[0], raw.buf.subarray(VNET)), 0, 'untouched')
})

t.test('malformed or oversized input is dropped and counted, never a crash', async t => {
  const cases: Array<[string, Uint8Array]> = []
  const tcpAsUdp = build({ proto: 'tcp', payload: 3000, gsoSize: 1000, gsoType: 5 })
  cases.push(['TSO type on a UDP header mismatch', tcpAsUdp.buf])
  cases.push(['gso size 0', build({ proto: 'tcp', payload: 3000, gsoSize: 0 }).buf])
  cases.push(['segment above cap', build({ proto: 'tcp', payload: 6000, gsoSize: 1890 }).buf])
  cases.push(['TCPv6 gso type on an IPv4 packet', build({ proto: 'tcp', payload: 3000, gsoSize: 1000, gsoType: 4 }).buf])
  const short = build({ proto: 'tcp', payload: 3000, gsoSize: 1000 }).buf
  short[VNET] = 0x4f // ihl 60 > a 20-byte header with options 32: still inside, then TCP header outside? keep: ihl 60
  cases.push(['ihl beyond the packet', short.subarray(0, VNET + 50)])
  const csumOut = build({ proto: 'udp', payload: 10, gsoSize: 0, gsoType: 0 }).buf
  csumOut[VNET + 8] = 200 // csum_offset far outside
  csumOut[8] = 200
  cases.push(['checksum offset outside', csumOut])
  // An IPv6 superpacket whose next header is 0 (hop-by-hop options: extension headers are never split).
  cases.push(['IPv6 superpacket with a hop-by-hop header', Uint8Array.from([1, 5, 48, 0, 100, 0, 40, 0, 6, 0, 0x60, ...new Array(400).fill(0)])])
  for (const [name, buf] of cases) {
    const { segs, state } = split({ buf, payload: new Uint8Array(0), hlen: 0 })
    t.equal(segs.length, 0, `${name}: no segment`)
    t.equal(state[2], 1, `${name}: counted`)
  }
  // A plain IPv6 packet is passed on unchanged: the pipeline routes it (or counts it as dropNotIp), not a split failure.
  const v6 = Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x60, ...Array.from({ length: 60 }, (_, i) => i)])
  const passed = split({ buf: v6, payload: new Uint8Array(0), hlen: 0 })
  t.equal(passed.segs.length, 1, 'plain IPv6: one packet out')
  t.same([...passed.segs[0]!], [...v6.subarray(VNET)], 'plain IPv6: unchanged')
  t.equal(passed.state[2], 0, 'plain IPv6: not counted as a split drop')
  // Fuzz: random bytes behind plausible and random vnet headers.
  let dropped = 0
  let out = 0
  for (let i = 0; i < 3000; i++) {
    const base = build({ proto: i % 2 === 0 ? 'tcp' : 'udp', payload: randomInt(0, 5000), gsoSize: randomInt(0, 2000) })
    const buf = base.buf
    for (let k = randomInt(1, 8); k > 0; k--) buf[randomInt(0, Math.min(buf.length, 80))] = randomInt(0, 256)
    const len = randomInt(1, buf.length + 1)
    const { segs, state } = split({ buf: buf.subarray(0, len), payload: new Uint8Array(0), hlen: 0 })
    dropped += state[2]
    out += segs.length
    if (segs.some(s => s.length > CAP)) t.fail('segment above cap')
  }
  t.ok(dropped + out > 0, `fuzz: ${out} segments out, ${dropped} dropped, no crash`)
})

t.test('argument validation', async t => {
  const sbuf = new Uint8Array(100)
  const state = new Int32Array(4)
  state[0] = 200
  t.throws(() => testing.vnetSplit(sbuf, new Uint8Array(4096), new Int32Array([0]), new Int32Array(1), 1, 2000, state), RangeError, 'pending beyond sbuf')
  t.throws(() => testing.vnetSplit(sbuf, new Uint8Array(100), new Int32Array([0]), new Int32Array(1), 1, 2000, new Int32Array(4)), RangeError, 'slot beyond mem')
  t.throws(() => native.tunReadSplit(0, sbuf, new Uint8Array(4096), new Int32Array([0]), new Int32Array(1), 1, 2000, new Int32Array(4)), RangeError, 'sbuf too small')
  t.throws(() => native.tunWriteBatchVnet(0, new Uint8Array(100), new Int32Array([5]), new Int32Array([10]), 1), RangeError, 'no room for the header')
})

/** Lays packets out like the inbound pipeline (each behind a 16-byte header in its own slot) and runs vnetCoalesce. */
function coalesce (list: Uint8Array[]): { w: number, out: Uint8Array, outLens: Int32Array } {
  const mem = new Uint8Array(new SharedArrayBuffer(64 * SLOT))
  const offsets = new Int32Array(64)
  const lens = new Int32Array(64)
  list.forEach((s, i) => { offsets[i] = i * SLOT + 48; mem.set(s, offsets[i]); lens[i] = s.length })
  const out = new Uint8Array(64 * SLOT)
  const outLens = new Int32Array(64)
  return { w: testing.vnetCoalesce(mem, offsets, lens, list.length, out, outLens), out, outLens }
}

/** [flags, gso type, hdr_len, gso_size, csum_start, csum_offset] of the vnet header at out[0]. */
function vnetFields (out: Uint8Array): number[] {
  const h = out.subarray(0, VNET)
  return [h[0], h[1], h[2] | (h[3] << 8), h[4] | (h[5] << 8), h[6] | (h[7] << 8), h[8] | (h[9] << 8)]
}

t.test('TCP coalescing (GRO) on write: split → coalesce → split round-trips; headers and vnet fields right', async t => {
  const b = build({ proto: 'tcp', payload: 30000, gsoSize: 1448, tcpFlags: 0x18 })
  const segs = split(b).segs
  t.equal(segs.length, 21)
  let { w, out, outLens } = coalesce(segs)
  t.equal(w, 1, 'one write for the run')
  t.same(vnetFields(out), [1, 1, 52, 1448, 20, 16], 'vnet: NEEDS_CSUM, TCPV4, hdr_len, gso_size, csum_start, csum_offset')
  const sp = out.subarray(VNET, outLens[0])
  t.equal((sp[2] << 8) | sp[3], sp.length, 'IPv4 total length of the superpacket')
  t.ok(ipCsumOk(sp), 'IPv4 header checksum')
  const back = split({ buf: out.slice(0, outLens[0]), payload: b.payload, hlen: b.hlen }).segs
  t.equal(back.length, segs.length)
  t.ok(back.every((s, i) => Buffer.compare(s, segs[i]) === 0), 'splitting it again gives the same segments, byte for byte')

  // Not coalesced: another flow in between, a gap in sequence, a different ACK, SYN, non-TCP.
  const other = split(build({ proto: 'tcp', payload: 2896, gsoSize: 1448 })).segs
  other.forEach(s => { s[21] ^= 1 }) // another source port (checksum stale: GRO does not check it)
  const mixed = [segs[0], segs[1], other[0], segs[2], segs[4], segs[5]]
  ;({ w, out, outLens } = coalesce(mixed.map(s => s.slice())))
  t.same([...outLens.subarray(0, w)], [10 + 52 + 2 * 1448, 10 + other[0].length, 10 + segs[2].length, 10 + 52 + 2 * 1448], 'runs break at another flow and at a sequence gap')
  const ack = segs[1].slice(); ack[31] ^= 1
  const syn = segs[2].slice(); syn[33] |= 0x02
  const udp = split(build({ proto: 'udp', payload: 500, gsoSize: 0, gsoType: 0 })).segs[0]
  ;({ w, out, outLens } = coalesce([segs[0].slice(), ack, syn, udp.slice()]))
  t.equal(w, 4, 'different ACK, SYN and UDP are written one by one')
  t.ok([...outLens.subarray(0, 4)].every((l, i) => l === 10 + [segs[0], ack, syn, udp][i].length), 'unchanged lengths')
  t.ok(out.subarray(0, VNET).every(x => x === 0), 'zero vnet header on a single packet')
})

t.test('UDP coalescing (USO) on write: split → coalesce → split round-trips; what breaks a run', async t => {
  const b = build({ proto: 'udp', payload: 40 * 64 + 17, gsoSize: 64 })
  const segs = split(b).segs
  t.equal(segs.length, 41)
  let { w, out, outLens } = coalesce(segs)
  t.equal(w, 1, 'one write for the run (the short last datagram included)')
  t.same(vnetFields(out), [1, 5, 28, 64, 20, 6], 'vnet: NEEDS_CSUM, UDP_L4, hdr_len, gso_size, csum_start, csum_offset')
  const sp = out.subarray(VNET, outLens[0])
  t.equal((sp[2] << 8) | sp[3], sp.length, 'IPv4 total length')
  t.equal((sp[24] << 8) | sp[25], sp.length - 20, 'UDP length')
  t.ok(ipCsumOk(sp), 'IPv4 header checksum')
  const back = split({ buf: out.slice(0, outLens[0]), payload: b.payload, hlen: b.hlen }).segs
  t.equal(back.length, segs.length)
  t.ok(back.every((s, i) => Buffer.compare(s, segs[i]) === 0), 'splitting it again gives the same datagrams, byte for byte')

  // Runs break at: another port, no DF, a fragment, another TTL, a longer datagram after a shorter one, TCP.
  const port = segs[1].slice(); port[23] ^= 1
  const noDf = segs[2].slice(); noDf[6] &= ~0x40
  const frag = segs[3].slice(); frag[6] |= 0x20
  const ttl = segs[4].slice(); ttl[8] = 3
  const tcp = split(build({ proto: 'tcp', payload: 100, gsoSize: 0, gsoType: 0 })).segs[0]
  const list = [segs[0], port, noDf, frag, ttl, tcp, segs[5], segs[6], segs[40], segs[7]].map(s => s.slice())
  ;({ w, out, outLens } = coalesce(list))
  t.same([...outLens.subarray(0, w)].map(l => l - VNET), [segs[0].length, port.length, noDf.length, frag.length, ttl.length, tcp.length, 28 + 64 + 64 + 17, segs[7].length],
    'single writes, then one run of 5, 6 and the short 40; 7 after the short one starts anew')
})

t.test('a USO superpacket written to a real TUN device reaches a UDP socket as the same datagrams', async t => {
  const ns = `lwt-uso-${process.pid}`
  execFileSync('ip', ['netns', 'add', ns])
  t.teardown(() => { try { execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' }) } catch { /* gone */ } })
  const addon = fileURLToPath(new URL('../../build/Release/lwt_native.node', import.meta.url))
  const script = `
    const n = require(${JSON.stringify(addon)}); const { execFileSync } = require('child_process')
    const tun = n.tunOpenVnet('lwtuso0', false, true)
    execFileSync('ip', ['addr', 'add', '10.9.0.1/24', 'dev', 'lwtuso0']); execFileSync('ip', ['link', 'set', 'lwtuso0', 'up'])
    const s = n.udpOpen('10.9.0.1', 0, 1 << 20)
    const N = 10, SLOT = 2048, mem = new Uint8Array(N * SLOT), offsets = new Int32Array(N), lens = new Int32Array(N)
    for (let i = 0; i < N; i++) {
      const len = 28 + 100, p = mem.subarray(i * SLOT + 48, i * SLOT + 48 + len)
      p.set([0x45, 0, len >> 8, len & 255, 0, i, 0x40, 0, 64, 17, 0, 0, 10, 9, 0, 2, 10, 9, 0, 1])
      let sum = 0; for (let k = 0; k < 20; k += 2) sum += (p[k] << 8) | p[k + 1]; while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16)
      p[10] = (~sum >> 8) & 255; p[11] = ~sum & 255
      p.set([0x0f, 0xa0, s.port >> 8, s.port & 255, (len - 20) >> 8, (len - 20) & 255, 0, 0], 20)
      p.fill(i + 1, 28)
      offsets[i] = i * SLOT + 48; lens[i] = len
    }
    const wrote = n.tunWriteBatchGro(tun.fd, mem, offsets, lens, N)
    const rx = new Uint8Array(N * 2 * 256), rOff = new Int32Array(2 * N).map((_, i) => i * 256), rLens = new Int32Array(2 * N), rAddrs = new Uint32Array(4 * N)
    let got = 0
    for (let tries = 0; tries < 100 && got < N; tries++) { got += n.udpRecvBatch(s.fd, rx, rOff.subarray(got), rLens.subarray(got), rAddrs.subarray(2 * got), 2 * N - got, 256); if (got < N) execFileSync('sleep', ['0.01']) }
    const ok = Array.from({ length: got }, (_, i) => rLens[i] === 100 && rx.subarray(rOff[i], rOff[i] + 100).every(v => v === i + 1) && rAddrs[2 * i] === 0x0a090002 && rAddrs[2 * i + 1] === 4000).every(Boolean)
    const st = JSON.parse(execFileSync('ip', ['-s', '-j', 'link', 'show', 'lwtuso0'], { encoding: 'utf8' }))[0].stats64
    console.log(JSON.stringify({ wrote, got, ok, tunRxPackets: st.rx.packets }))
  `
  const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, '-e', script], { encoding: 'utf8', timeout: 20000, env: { ...process.env, NODE_OPTIONS: '' } })
  t.equal(r.status, 0, r.stderr)
  const res = JSON.parse(r.stdout.trim().split('\n').pop()!)
  t.equal(res.wrote, 10, 'all 10 written')
  t.equal(res.got, 10, 'all 10 received')
  t.ok(res.ok, 'same payloads, in order, from 10.9.0.2:4000')
  t.equal(res.tunRxPackets, 1, 'the kernel took them as ONE superpacket')
})
