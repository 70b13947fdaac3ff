// The TUN offloads for IPv6 (native/offload.c through the test build's
// vnetSplit and vnetCoalesce): TSO TCPv6 and USO UDPv6 superpackets split
// into segments with their own payload length, sequence number / UDP length
// and a full checksum over the IPv6 pseudo-header, each verified by an
// independent computation (helpers/packets6.ts); extension headers dropped
// and counted rather than mis-split; runs of IPv6 TCP segments and UDP
// datagrams coalesced into one superpacket that splits back byte for byte;
// and a USO6 superpacket written to a real TUN device in a namespace reaching
// a udp6 socket as the same datagrams.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { execFileSync, spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { loadTestingNative } from '../helpers/native-testing.js'
import { a6, checksumOk6, ipv6 } from '../helpers/packets6.js'
import { newLabId } from '../../src/lab/topology.js'

const testing = loadTestingNative()
const VNET = 10
const SLOT = 2048
const CAP = 1900
const SRC = a6('fd00:77::1')
const DST = a6('fd00:77::2')

interface Built { buf: Uint8Array, payload: Uint8Array, hlen: number }

/** A superpacket as the kernel hands it over: vnet header, IPv6 header, TCP/UDP header with the partial (pseudo-header) checksum, payload. */
function build6 (o: { proto: 'tcp' | 'udp', payload: number, gsoSize: number, gsoType?: number, tcpFlags?: number, tcpOpts?: number, nextHeader?: number, flow?: number }): Built {
  const l4 = o.proto === 'tcp' ? 20 + (o.tcpOpts ?? 12) : 8
  const hlen = 40 + l4
  const payload = new Uint8Array(randomBytes(o.payload))
  const seg = new Uint8Array(l4 + o.payload)
  const sv = new DataView(seg.buffer)
  sv.setUint16(0, 40000); sv.setUint16(2, 5201)
  if (o.proto === 'tcp') {
    sv.setUint32(4, 0xfffffa00) // near the wrap
    sv.setUint32(8, 77)
    seg[12] = (l4 / 4) << 4
    seg[13] = o.tcpFlags ?? 0x18
    sv.setUint16(14, 0xffff)
    for (let i = 20; i < l4; i++) seg[i] = i < 22 ? 1 : 0x55
  } else sv.setUint16(4, l4 + o.payload)
  seg.set(payload, l4)
  const pkt = ipv6(SRC, DST, seg, o.nextHeader ?? (o.proto === 'tcp' ? 6 : 17))
  pkt[1] = 0x0a; pkt[2] = 0xbc; pkt[3] = o.flow ?? 0xde // traffic class 0, flow label 0xabcde
  // Partial checksum as the kernel leaves it: the folded pseudo-header sum (checksum field 0 while summing).
  const co = 40 + (o.proto === 'tcp' ? 16 : 6)
  const pv = new DataView(pkt.buffer)
  pv.setUint16(co, 0)
  let ps = 0
  for (let i = 8; i < 40; i += 2) ps += pv.getUint16(i)
  ps += (o.proto === 'tcp' ? 6 : 17) + (pkt.length - 40)
  while (ps > 0xffff) ps = (ps & 0xffff) + (ps >>> 16)
  pv.setUint16(co, ps)
  const buf = new Uint8Array(VNET + pkt.length)
  const h = new DataView(buf.buffer)
  buf[0] = 1 // NEEDS_CSUM
  buf[1] = o.gsoType ?? (o.proto === 'tcp' ? 4 : 5)
  h.setUint16(2, hlen, true)
  h.setUint16(4, o.gsoSize, true)
  h.setUint16(6, 40, true)
  h.setUint16(8, co - 40, true)
  buf.set(pkt, VNET)
  return { buf, payload, hlen }
}

function split (b: { buf: Uint8Array }, max = 64): { segs: Uint8Array[], state: Int32Array } {
  const sbuf = new Uint8Array(65536 + 64)
  sbuf.set(b.buf)
  const mem = new Uint8Array(new SharedArrayBuffer(max * SLOT))
  const offsets = new Int32Array(max).map((_, i) => i * SLOT + 32)
  const lens = new Int32Array(max)
  const state = new Int32Array(4)
  state[0] = b.buf.length
  const segs: Uint8Array[] = []
  for (let calls = 0; state[0] !== 0 && calls < 1000; calls++) {
    const n = testing.vnetSplit(sbuf, mem, offsets, lens, max, CAP, state)
    for (let i = 0; i < n; i++) segs.push(mem.slice(offsets[i], offsets[i] + lens[i]))
  }
  return { segs, state }
}

function coalesce (list: Uint8Array[]): { w: number, out: Uint8Array, outLens: Int32Array } {
  const mem = new Uint8Array(new SharedArrayBuffer(64 * SLOT))
  const offsets = new Int32Array(64)
  const lens = new Int32Array(64)
  list.forEach((s, i) => { offsets[i] = i * SLOT + 48; mem.set(s, offsets[i]); lens[i] = s.length })
  const out = new Uint8Array(64 * SLOT)
  const outLens = new Int32Array(64)
  return { w: testing.vnetCoalesce(mem, offsets, lens, list.length, out, outLens), out, outLens }
}

function vnetFields (out: Uint8Array): number[] {
  const h = out.subarray(0, VNET)
  return [h[0], h[1], h[2] | (h[3] << 8), h[4] | (h[5] << 8), h[6] | (h[7] << 8), h[8] | (h[9] << 8)]
}

const u16 = (p: Uint8Array, o: number): number => (p[o]! << 8) | p[o + 1]!
const u32 = (p: Uint8Array, o: number): number => ((p[o]! << 24) | (p[o + 1]! << 16) | (p[o + 2]! << 8) | p[o + 3]!) >>> 0

t.test('TSO TCPv6 superpacket: segments with own payload length, seq, flags, valid checksums; payload intact', async t => {
  for (const [payload, mss] of [[64000, 1428], [5000, 1428], [1428 * 3, 1428], [1, 1428], [3001, 536]]) {
    const b = build6({ proto: 'tcp', payload, gsoSize: mss, tcpFlags: 0x80 | 0x18 | 0x01 })
    const { segs, state } = split(b)
    const n = Math.ceil(payload / mss)
    t.equal(segs.length, n, `${payload}/${mss}: ${n} segments`)
    t.equal(state[2], 0, 'nothing dropped')
    let bad = 0
    segs.forEach((s, k) => {
      if (u16(s, 4) !== s.length - 40) bad++
      if (!checksumOk6(s)) bad++
      if (u32(s, 44) !== ((0xfffffa00 + k * mss) >>> 0)) bad++
      const f = s[53]!
      const last = k === n - 1
      if (((f & 0x01) !== 0) !== last || ((f & 0x08) !== 0) !== last || ((f & 0x80) !== 0) !== (k === 0) || (f & 0x10) === 0) bad++
      if (Buffer.compare(s.subarray(0, 4), b.buf.subarray(VNET, VNET + 4)) !== 0 || Buffer.compare(s.subarray(6, 40), b.buf.subarray(VNET + 6, VNET + 40)) !== 0) bad++
    })
    t.equal(bad, 0, `${payload}/${mss}: every header and checksum right`)
    t.equal(Buffer.compare(Buffer.concat(segs.map((s) => s.subarray(b.hlen))), b.payload), 0, `${payload}/${mss}: payload intact`)
  }
})

t.test('USO UDPv6 superpacket: datagrams with own lengths and valid checksums (a zero sum sent as 0xffff)', async t => {
  const b = build6({ proto: 'udp', payload: 3000, gsoSize: 1200 })
  const { segs } = split(b)
  t.same(segs.map((s) => s.length), [1248, 1248, 648])
  t.ok(segs.every((s) => checksumOk6(s) && u16(s, 4) === s.length - 40 && u16(s, 44) === s.length - 40), 'payload length, UDP length, checksum')
  t.equal(Buffer.compare(Buffer.concat(segs.map((s) => s.subarray(48))), b.payload), 0, 'payload intact')
  t.ok(segs.every((s) => u16(s, 46) !== 0), 'no datagram carries checksum 0 (it means none, forbidden over IPv6)')
})

t.test('plain IPv6 packets: NEEDS_CSUM completed over the IPv6 pseudo-header', async t => {
  for (const proto of ['tcp', 'udp'] as const) {
    const b = build6({ proto, payload: 777, gsoSize: 0, gsoType: 0 })
    const { segs } = split(b)
    t.equal(segs.length, 1)
    t.ok(checksumOk6(segs[0]!), `${proto}: checksum completed`)
  }
})

t.test('extension headers, or a GSO type of the other family: dropped and counted, never mis-split', async t => {
  const cases: Array<[string, Uint8Array]> = [
    ['hop-by-hop options header', build6({ proto: 'tcp', payload: 3000, gsoSize: 1000, nextHeader: 0 }).buf],
    ['routing header', build6({ proto: 'udp', payload: 3000, gsoSize: 1000, nextHeader: 43 }).buf],
    ['destination options', build6({ proto: 'tcp', payload: 3000, gsoSize: 1000, nextHeader: 60 }).buf],
    ['TCPV4 type on an IPv6 packet', build6({ proto: 'tcp', payload: 3000, gsoSize: 1000, gsoType: 1 }).buf],
    ['TCPV6 type on a UDP header', build6({ proto: 'udp', payload: 3000, gsoSize: 1000, gsoType: 4 }).buf],
    ['segment above cap', build6({ proto: 'tcp', payload: 6000, gsoSize: 1880 }).buf],
    ['cut inside the TCP header', build6({ proto: 'tcp', payload: 3000, gsoSize: 1000 }).buf.subarray(0, VNET + 50)]
  ]
  for (const [name, buf] of cases) {
    const { segs, state } = split({ buf })
    t.equal(segs.length, 0, `${name}: no segment`)
    t.equal(state[2], 1, `${name}: counted`)
  }
})

t.test('IPv6 TCP coalescing: split → coalesce → split round-trips; vnet TCPV6; what breaks a run', async t => {
  const b = build6({ proto: 'tcp', payload: 30000, gsoSize: 1428, tcpFlags: 0x18 })
  const segs = split(b).segs
  t.equal(segs.length, 22)
  let { w, out, outLens } = coalesce(segs)
  t.equal(w, 1, 'one write for the run')
  t.same(vnetFields(out), [1, 4, 40 + 32, 1428, 40, 16], 'vnet: NEEDS_CSUM, TCPV6, hdr_len, gso_size, csum_start, csum_offset')
  const sp = out.subarray(VNET, outLens[0])
  t.equal(u16(sp, 4), sp.length - 40, 'IPv6 payload length of the superpacket')
  // NEEDS_CSUM: the head's checksum field holds the folded pseudo-header sum (addresses, 6, TCP length), not complemented.
  let ps = 0
  for (let i = 8; i < 40; i += 2) ps += u16(sp, i)
  ps += 6 + sp.length - 40
  while (ps > 0xffff) ps = (ps & 0xffff) + (ps >>> 16)
  t.equal(u16(sp, 56), ps, 'TCP checksum field = the pseudo-header sum')
  const back = split({ buf: out.slice(0, outLens[0]) }).segs
  t.equal(back.length, segs.length)
  t.ok(back.every((s, i) => Buffer.compare(s, segs[i]!) === 0), 'splitting it again gives the same segments, byte for byte')

  const flow = segs[1]!.slice(); flow[3] ^= 1 // another flow label
  const hop = segs[2]!.slice(); hop[7] = 3
  const port = segs[3]!.slice(); port[41] ^= 1
  const v4head = Uint8Array.from(segs[4]!); v4head[0] = 0x45 // not a valid IPv4 packet either: written alone
  ;({ w, out, outLens } = coalesce([segs[0]!, flow, hop, port, v4head, segs[5]!, segs[6]!].map((s) => s.slice())))
  t.same([...outLens.subarray(0, w)].map((l) => l - VNET), [segs[0]!.length, flow.length, hop.length, port.length, v4head.length, 72 + 2 * 1428],
    'flow label, hop limit, port and family each break the run; 5 and 6 coalesce')
})

t.test('IPv6 UDP coalescing: split → coalesce → split round-trips; vnet UDP_L4 at csum_start 40', async t => {
  const b = build6({ proto: 'udp', payload: 40 * 64 + 17, gsoSize: 64 })
  const segs = split(b).segs
  t.equal(segs.length, 41)
  const { w, out, outLens } = coalesce(segs)
  t.equal(w, 1, 'one write for the run (the short last datagram included)')
  t.same(vnetFields(out), [1, 5, 48, 64, 40, 6])
  const sp = out.subarray(VNET, outLens[0])
  t.equal(u16(sp, 4), sp.length - 40, 'IPv6 payload length')
  t.equal(u16(sp, 44), sp.length - 40, 'UDP length')
  const back = split({ buf: out.slice(0, outLens[0]) }).segs
  t.ok(back.length === segs.length && back.every((s, i) => Buffer.compare(s, segs[i]!) === 0), 'splitting it again gives the same datagrams')
})

t.test('a USO superpacket of IPv6 datagrams written to a real TUN device reaches a udp6 socket as the same datagrams', async t => {
  const ns = `lwt-${newLabId()}-uso6`
  execFileSync('ip', ['netns', 'add', ns])
  t.teardown(() => { try { execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' }) } catch { /* gone */ } })
  const addon = fileURLToPath(new URL('../../build/Release/lwt_native.node', import.meta.url))
  const script = `
    const n = require(${JSON.stringify(addon)}); const { execFileSync } = require('child_process'); const dgram = require('dgram')
    const tun = n.tunOpenVnet('lwtuso6', false, true)
    execFileSync('ip', ['-6', 'addr', 'add', 'fd00:99::1/64', 'dev', 'lwtuso6', 'nodad']); execFileSync('ip', ['link', 'set', 'lwtuso6', 'up'])
    const s = dgram.createSocket('udp6'); const got = []
    s.on('message', (m, r) => { got.push({ len: m.length, ok: m.every(v => v === got.length + 1), from: r.address + ':' + r.port }) })
    s.bind(0, 'fd00:99::1', () => {
      const port = s.address().port, N = 10, SLOT = 2048, mem = new Uint8Array(N * SLOT), offsets = new Int32Array(N), lens = new Int32Array(N)
      for (let i = 0; i < N; i++) {
        const len = 48 + 100, p = mem.subarray(i * SLOT + 48, i * SLOT + 48 + len)
        p.set([0x60, 0, 0, 0, 0, 108, 17, 64]); p.set([0xfd, 0, 0, 0x99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2], 8); p.set([0xfd, 0, 0, 0x99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 24)
        p.set([0x0f, 0xa0, port >> 8, port & 255, 0, 108, 0, 0], 40); p.fill(i + 1, 48)
        let sum = 0; for (let k = 8; k < 40; k += 2) sum += (p[k] << 8) | p[k + 1]; sum += 17 + 108; for (let k = 40; k < len; k += 2) sum += (p[k] << 8) | p[k + 1]
        while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16); const c = (~sum & 0xffff) || 0xffff; p[46] = c >> 8; p[47] = c & 255
        offsets[i] = i * SLOT + 48; lens[i] = len
      }
      const wrote = n.tunWriteBatchGro(tun.fd, mem, offsets, lens, N)
      setTimeout(() => {
        const st = JSON.parse(execFileSync('ip', ['-s', '-j', 'link', 'show', 'lwtuso6'], { encoding: 'utf8' }))[0].stats64
        console.log(JSON.stringify({ wrote, got: got.length, ok: got.every(g => g.len === 100 && g.ok && g.from === 'fd00:99::2:4000'), tunRxPackets: st.rx.packets }))
        process.exit(0)
      }, 300)
    })
  `
  const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, '-e', script], { encoding: 'utf8', timeout: 20000, env: { ...process.env, NODE_OPTIONS: '' } })
  t.equal(r.status, 0, r.stderr)
  const res = JSON.parse(r.stdout.trim().split('\n').pop()!)
  t.equal(res.wrote, 10, 'all 10 written')
  t.equal(res.got, 10, 'all 10 received')
  t.ok(res.ok, 'same payloads, in order, from [fd00:99::2]:4000')
  t.equal(res.tunRxPackets, 1, 'the kernel took them as ONE superpacket')
})
