// dataplane/route-table.ts: longest-prefix match over IPv4 and IPv6, named
// cases first, then random tables checked against a plain scan with
// wire/prefix.ts prefixContains (an independent reading of "contains").
import t from 'tap'
import { RouteTable } from '../../src/dataplane/route-table.js'
import { ipv4Bytes, parsePrefix, prefixContains, parseIp6, type IpPrefix } from '../../src/wire/prefix.js'
import { ipToInt } from '../../src/wire/addr.js'

const P = (s: string): IpPrefix => parsePrefix(s, { keepHostBits: true })
const v4 = (rt: RouteTable, s: string): number => rt.lookup4(ipToInt(s))
const v6 = (rt: RouteTable, s: string): number => rt.lookup6(parseIp6(s), 0)

t.test('IPv4: exact host, longer prefix wins, default route, miss', async t => {
  const rt = new RouteTable()
  rt.set(1, [P('10.77.0.2/32'), P('192.168.10.0/24')])
  rt.set(2, [P('10.77.0.3/32'), P('192.168.0.0/16')])
  rt.set(3, [P('0.0.0.0/0')])
  t.equal(v4(rt, '10.77.0.2'), 1)
  t.equal(v4(rt, '192.168.10.200'), 1, '/24 inside the /16: the /24')
  t.equal(v4(rt, '192.168.11.1'), 2, 'the /16')
  t.equal(v4(rt, '8.8.8.8'), 3, 'the default route')
  rt.removeSlot(3)
  t.equal(v4(rt, '8.8.8.8'), -1, 'no route')
  t.equal(rt.lookup4(0xc0a80a01 | 0), 1, 'an int32 (negative) key finds the same entry as the u32')
})

t.test('IPv6: /128 over /64 over /32, host bits of a tunnel address ignored for the mask', async t => {
  const rt = new RouteTable()
  rt.set(1, [P('fd00:77::2/128'), P('fd00:aa:1::/64')])
  rt.set(2, [P('fd00:aa::/32')])
  t.equal(v6(rt, 'fd00:77::2'), 1)
  t.equal(v6(rt, 'fd00:77::3'), -1)
  t.equal(v6(rt, 'fd00:aa:1::99'), 1)
  t.equal(v6(rt, 'fd00:aa:2::1'), 2)
  t.equal(v6(rt, '2001:db8::1'), -1)
  t.equal(v4(rt, '10.0.0.1'), -1, 'families are separate')
  const addr = parseIp6('fd00:aa:1::5')
  const mem = new Uint8Array(64)
  mem.set(addr, 24)
  t.equal(rt.lookup6(mem, 24), 1, 'read at an offset inside a packet')
})

t.test('the same prefix claimed twice: the latest claim wins; withdrawn, the earlier comes back', async t => {
  const rt = new RouteTable()
  rt.set(1, [P('10.1.0.0/16')])
  rt.set(2, [P('10.1.0.0/16')])
  t.equal(v4(rt, '10.1.2.3'), 2)
  rt.removeSlot(2)
  t.equal(v4(rt, '10.1.2.3'), 1)
  rt.set(1, []) // replaced by nothing
  t.equal(v4(rt, '10.1.2.3'), -1)
  t.equal(rt.size, 0)
})

t.test('set replaces a slot\'s prefixes; duplicates in one set count once', async t => {
  const rt = new RouteTable()
  rt.set(4, [P('fd00::/8'), P('fd00::/8'), P('10.0.0.0/8')])
  t.equal(rt.size, 2)
  rt.set(4, [P('10.0.0.0/8')])
  t.equal(v6(rt, 'fd00::1'), -1)
  t.equal(v4(rt, '10.9.9.9'), 4)
  rt.clear()
  t.equal(rt.size, 0)
  t.equal(v4(rt, '10.9.9.9'), -1)
})

t.test('random tables (growth, deletion by backward shift) agree with a plain longest-prefix scan', async t => {
  let seed = 12345
  const rnd = (n: number): number => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return (seed >>> 8) % n }
  const rt = new RouteTable()
  const owned = new Map<number, IpPrefix[]>()
  const randPrefix = (): IpPrefix => {
    // Few distinct networks so that prefixes nest and collide.
    if (rnd(2) === 0) return { family: 4, addr: ipv4Bytes(((10 << 24) | (rnd(4) << 16) | (rnd(4) << 8) | rnd(4)) >>> 0), len: [8, 16, 20, 24, 31, 32][rnd(6)]! }
    const a = parseIp6(`fd00:${rnd(3)}:${rnd(3)}::${rnd(3)}`)
    return { family: 6, addr: a, len: [16, 32, 48, 64, 127, 128][rnd(6)]! }
  }
  const expect = (family: 4 | 6, addr: Uint8Array): number => {
    // Latest claim wins among equal prefixes: walk slots in claim order.
    let best = -1; let bestLen = -1
    for (const slot of order.keys()) {
      for (const p of owned.get(slot) ?? []) if (prefixContains(p, family, addr) && p.len >= bestLen) { best = slot; bestLen = p.len }
    }
    return best
  }
  // Claim order: a slot re-set moves to the end.
  const order = new Map<number, true>()
  let mismatches = 0
  for (let round = 0; round < 400; round++) {
    const slot = rnd(24)
    if (rnd(5) === 0) { rt.removeSlot(slot); owned.delete(slot); order.delete(slot) } else {
      const ps = Array.from({ length: rnd(5) }, randPrefix)
      rt.set(slot, ps)
      owned.set(slot, ps)
      order.delete(slot)
      order.set(slot, true)
    }
    for (let q = 0; q < 20; q++) {
      if (rnd(2) === 0) {
        const ip = ((10 << 24) | (rnd(4) << 16) | (rnd(4) << 8) | rnd(4)) >>> 0
        if (rt.lookup4(ip) !== expect(4, ipv4Bytes(ip))) mismatches++
      } else {
        const a = parseIp6(`fd00:${rnd(3)}:${rnd(3)}::${rnd(3)}`)
        if (rt.lookup6(a, 0) !== expect(6, a)) mismatches++
      }
    }
  }
  t.equal(mismatches, 0, '8000 lookups, every one as the scan says')
})
