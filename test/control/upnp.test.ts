/**
 * The UPnP IGD state machine (control/upnp.ts) on a manual clock against a
 * scripted IGD: the head start PCP/NAT-PMP get, discovery (answers from
 * outside our subnet or pointing elsewhere ignored; the gateway preferred),
 * description → GetExternalIPAddress → AddPortMapping, 725 / 718 / 724
 * answers, a service that fails → the next one, renewal at half the lease,
 * expiry, standing by while PCP/NAT-PMP map, the stale delete, stop's
 * DeletePortMapping, malformed and oversize answers; and the combined status.
 */
import t from 'tap'
import { seededRandom } from '../../src/random.js'
import {
  HEAD_START, LEASE_SEC, MAX_CONFLICTS, SSDP_TRIES, SSDP_WAIT, UpnpMapper, combinePortMapStatus, isPrivateIpv4,
  type HttpRequest, type HttpResult, type UpnpIo
} from '../../src/control/upnp.js'
import type { Endpoint } from '../../src/control/nat.js'
import type { PortMapStatus } from '../../src/control/port-mapping.js'
import { ipToInt } from '../../src/wire/addr.js'

const GW = ipToInt('192.168.1.1')
const ME = ipToInt('192.168.1.2')
const OTHER = ipToInt('192.168.1.7')
const NET = { gateway: GW, localIp: ME, mask: ipToInt('255.255.255.0') }
const PORT = 9000
const LOC = 'http://192.168.1.1:5000/rootDesc.xml'
const CTL = 'http://192.168.1.1:5000/ctl/IPConn'
const IP1 = 'urn:schemas-upnp-org:service:WANIPConnection:1'

const ssdpAnswer = (loc = LOC, st = 'urn:schemas-upnp-org:device:InternetGatewayDevice:1'): Uint8Array =>
  Buffer.from(`HTTP/1.1 200 OK\r\nST: ${st}\r\nLOCATION: ${loc}\r\nUSN: uuid:1\r\n\r\n`)
const desc = (services: Array<[string, string]> = [[IP1, '/ctl/IPConn']]): string =>
  '<root><device>' + services.map(([ty, c]) => `<service><serviceType>${ty}</serviceType><controlURL>${c}</controlURL></service>`).join('') + '</device></root>'
const ok = (action: string, inner = ''): HttpResult => ({ status: 200, body: `<s:Envelope><s:Body><u:${action}Response>${inner}</u:${action}Response></s:Body></s:Envelope>` })
const fault = (code: number): HttpResult => ({ status: 500, body: `<s:Envelope><s:Body><s:Fault><detail><UPnPError><errorCode>${code}</errorCode><errorDescription>x</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>` })
const extIp = (ip = '100.64.1.1'): HttpResult => ok('GetExternalIPAddress', `<NewExternalIPAddress>${ip}</NewExternalIPAddress>`)

class Harness {
  now = 1000
  ssdp: Array<{ ip: string, port: number, text: string }> = []
  http: Array<{ id: number, req: HttpRequest }> = []
  changes: Array<Endpoint | null> = []
  logs: string[] = []
  readonly m: UpnpMapper
  constructor () {
    const io: UpnpIo = {
      ssdp: (b, ip, port) => { this.ssdp.push({ ip, port, text: Buffer.from(b).toString() }) },
      http: (id, req) => { this.http.push({ id, req }) },
      changed: (ep) => { this.changes.push(ep) },
      log: (_l, msg) => { this.logs.push(msg) }
    }
    this.m = new UpnpMapper(io, seededRandom(3), PORT)
  }

  advance (ms: number): void {
    const end = this.now + ms
    for (;;) {
      const due = this.m.nextDue()
      if (due > end) break
      this.now = Math.max(this.now, due)
      this.m.tick(this.now)
    }
    this.now = end
  }

  /** Answer the oldest pending request; returns it. */
  answer (r: HttpResult): HttpRequest {
    const q = this.http.shift()!
    this.m.onHttp(q.id, r, this.now)
    return q.req
  }

  action (req: HttpRequest): string { return /#(\w+)"$/.exec(req.soapAction ?? '')?.[1] ?? req.method }
  arg (req: HttpRequest, name: string): string | undefined { return new RegExp(`<${name}>([^<]*)</${name}>`).exec(req.body ?? '')?.[1] }

  /** setNetwork with PCP/NAT-PMP failed: discovering at once. */
  discovering (): void {
    this.m.setNetwork(NET, this.now)
    this.m.otherProtocols('failed', this.now)
    this.advance(0)
  }

  /** Discovering, and the gateway answered SSDP: its description is asked for. */
  found (): void {
    this.discovering()
    this.m.onSsdp(ssdpAnswer(), GW)
  }

  /** With a plain IGD up to the AddPortMapping request (pending in http[0]). */
  asking (): void {
    this.found()
    this.answer({ status: 200, body: desc() })
    this.answer(extIp())
  }

  /** From setNetwork to mapped with a plain IGD. */
  mapped (): void {
    this.asking()
    this.answer(ok('AddPortMapping'))
  }
}

t.test('isPrivateIpv4', async t => {
  for (const ip of ['10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '100.64.0.1', '169.254.1.1']) t.ok(isPrivateIpv4(ipToInt(ip)), ip)
  for (const ip of ['8.8.8.8', '172.32.0.1', '192.169.0.1', '100.128.0.1']) t.notOk(isPrivateIpv4(ipToInt(ip)), ip)
})

t.test('PCP/NAT-PMP get a head start; then SSDP, description, external address, mapping', async t => {
  const h = new Harness()
  h.m.setNetwork(NET, h.now)
  h.m.otherProtocols('probing', h.now)
  t.equal(h.m.state, 'waiting')
  h.advance(HEAD_START - 1)
  t.equal(h.ssdp.length, 0, 'nothing during the head start')
  h.advance(1)
  t.equal(h.m.state, 'discovering')
  t.equal(h.ssdp.length, 8, '4 search targets, to the group and to the gateway')
  t.same(new Set(h.ssdp.map(s => `${s.ip}:${s.port}`)), new Set(['239.255.255.250:1900', '192.168.1.1:1900']))
  t.match(h.ssdp[0]!.text, /^M-SEARCH \* HTTP\/1\.1\r\n/)
  h.m.onSsdp(ssdpAnswer(), GW)
  t.equal(h.m.state, 'describing')
  t.same(h.http[0]!.req, { method: 'GET', url: LOC })
  h.answer({ status: 200, body: desc() })
  t.equal(h.m.state, 'querying')
  t.equal(h.http[0]!.req.url, CTL)
  t.equal(h.action(h.http[0]!.req), 'GetExternalIPAddress')
  h.answer(extIp())
  const add = h.http[0]!.req
  t.equal(h.action(add), 'AddPortMapping')
  t.equal(h.arg(add, 'NewExternalPort'), '9000')
  t.equal(h.arg(add, 'NewInternalPort'), '9000')
  t.equal(h.arg(add, 'NewInternalClient'), '192.168.1.2')
  t.equal(h.arg(add, 'NewProtocol'), 'UDP')
  t.equal(h.arg(add, 'NewLeaseDuration'), String(LEASE_SEC))
  h.answer(ok('AddPortMapping'))
  t.equal(h.m.state, 'mapped')
  t.same(h.changes, [{ ip: ipToInt('100.64.1.1'), port: 9000 }])
  const s = h.m.status(h.now)
  t.equal(s.protocol, 'upnp')
  t.equal(s.external, '100.64.1.1:9000')
  t.equal(s.lifetimeLeftSec, LEASE_SEC)
  t.same(h.m.record(), { gateway: GW, internalPort: PORT, protocol: 'upnp', nonce: '', external: { ip: ipToInt('100.64.1.1'), port: 9000 }, upnp: { controlUrl: CTL, serviceType: IP1 } })
})

t.test('PCP/NAT-PMP failing ends the head start; their mapping puts UPnP on standby (deleting its own)', async t => {
  const h = new Harness()
  h.discovering()
  t.equal(h.m.state, 'discovering', 'no wait after a failure')
  const g = new Harness()
  g.m.setNetwork(NET, g.now)
  g.m.otherProtocols('mapping', g.now)
  g.advance(HEAD_START * 10)
  t.equal(g.m.state, 'waiting', 'NAT-PMP answered: its mapping request is awaited')
  g.m.otherProtocols('mapped', g.now)
  t.equal(g.m.state, 'standby')
  g.m.otherProtocols('probing', g.now)
  t.equal(g.m.state, 'waiting', 'their mapping lost: UPnP may be needed again')

  const m = new Harness()
  m.mapped()
  m.m.otherProtocols('mapped', m.now)
  t.equal(m.m.state, 'standby')
  t.equal(m.action(m.http[0]!.req), 'DeletePortMapping')
  t.equal(m.arg(m.http[0]!.req, 'NewExternalPort'), '9000')
  t.same(m.changes.at(-1), null)
})

t.test('SSDP: answers from outside the subnet, ourselves, or with a LOCATION elsewhere are ignored; the gateway preferred over another LAN host', async t => {
  const h = new Harness()
  h.discovering()
  h.m.onSsdp(ssdpAnswer('http://203.0.113.5:5000/d.xml'), ipToInt('203.0.113.5'))
  h.m.onSsdp(ssdpAnswer('http://192.168.2.1:5000/d.xml'), ipToInt('192.168.2.1'))
  h.m.onSsdp(ssdpAnswer(), ME)
  h.m.onSsdp(ssdpAnswer('http://10.0.0.9:5000/d.xml'), GW)
  h.m.onSsdp(ssdpAnswer(LOC, 'upnp:rootdevice'), GW)
  h.m.onSsdp(Buffer.from('garbage'), GW)
  t.equal(h.m.counters.upnpSsdpIgnored, 5)
  t.equal(h.m.counters.upnpMalformed, 1)
  t.equal(h.m.state, 'discovering')
  h.m.onSsdp(ssdpAnswer('http://192.168.1.7:49152/igd.xml'), OTHER)
  t.equal(h.m.state, 'discovering', 'another LAN host: kept for the end of the try')
  h.m.onSsdp(ssdpAnswer(), GW)
  t.equal(h.m.state, 'describing', 'the gateway: at once')
  t.equal(h.http[0]!.req.url, LOC)

  const o = new Harness()
  o.discovering()
  o.m.onSsdp(ssdpAnswer('http://192.168.1.7:49152/igd.xml'), OTHER)
  o.advance(SSDP_WAIT)
  t.equal(o.http[0]!.req.url, 'http://192.168.1.7:49152/igd.xml', 'no gateway answer: the other LAN host')

  const n = new Harness()
  n.discovering()
  n.m.onSsdp(ssdpAnswer('http://192.168.1.1:5000/a\u001b[31mb.xml'), GW)
  t.equal(n.http[0]!.req.url, 'http://192.168.1.1:5000/a%1B[31mb.xml', 'LOCATION normalized: control characters percent-encoded before notes and logs')
})

t.test('no IGD: SSDP_TRIES tries, then failed with the reason; refresh asks again', async t => {
  const h = new Harness()
  h.m.setNetwork(NET, h.now)
  h.m.otherProtocols('failed', h.now)
  h.advance(SSDP_WAIT * SSDP_TRIES + 10)
  t.equal(h.ssdp.length, 8 * SSDP_TRIES)
  t.equal(h.m.state, 'failed')
  t.equal(h.m.status(h.now).note, `no IGD answered SSDP in ${SSDP_TRIES} tries`)
  t.equal(h.m.nextDue(), Infinity)
  h.m.refresh(h.now)
  t.equal(h.m.state, 'discovering')
})

t.test('725 OnlyPermanentLeasesSupported: again with lease 0; no renewal; deleted on stop', async t => {
  const h = new Harness()
  h.asking()
  h.answer(fault(725))
  t.equal(h.arg(h.http[0]!.req, 'NewLeaseDuration'), '0')
  h.answer(ok('AddPortMapping'))
  t.equal(h.m.state, 'mapped')
  t.equal(h.m.nextDue(), Infinity, 'a permanent mapping is not renewed')
  t.match(h.m.status(h.now).note, /permanent lease/)
  t.equal(h.m.stop(), true)
  t.equal(h.action(h.http[0]!.req), 'DeletePortMapping')
  t.equal(h.m.state, 'off')
})

t.test('718 ConflictInMappingEntry: another external port, at most MAX_CONFLICTS; 724: the internal port', async t => {
  const h = new Harness()
  h.asking()
  const ports = [h.arg(h.http[0]!.req, 'NewExternalPort')]
  for (let i = 1; i < MAX_CONFLICTS; i++) { h.answer(fault(718)); ports.push(h.arg(h.http[0]!.req, 'NewExternalPort')) }
  t.equal(new Set(ports).size, MAX_CONFLICTS, `${ports.join(', ')}: a new port each time`)
  t.ok(ports.slice(1).every(p => Number(p) >= 1024 && Number(p) < 65536))
  h.answer(fault(718))
  t.equal(h.m.state, 'failed')
  t.match(h.m.status(h.now).note, `AddPortMapping: error 718 ConflictInMappingEntry for ${MAX_CONFLICTS} ports`)

  const s = new Harness()
  s.asking()
  s.answer(fault(718))
  s.answer(fault(724))
  t.equal(s.arg(s.http[0]!.req, 'NewExternalPort'), String(PORT), '724: external = internal')
  s.answer(ok('AddPortMapping'))
  t.equal(s.m.external?.port, PORT)
})

t.test('a service that fails (error, no WAN address) → the next; the last one\'s reason is shown', async t => {
  const h = new Harness()
  h.found()
  h.answer({ status: 200, body: desc([['urn:schemas-upnp-org:service:WANPPPConnection:1', '/ppp'], [IP1, '/ip']]) })
  t.equal(h.http[0]!.req.url, 'http://192.168.1.1:5000/ip', 'WANIPConnection before WANPPPConnection')
  h.answer(extIp('0.0.0.0'))
  t.equal(h.http[0]!.req.url, 'http://192.168.1.1:5000/ppp', 'no address on the IP connection: the PPP one')
  h.answer(fault(606))
  t.equal(h.m.state, 'failed')
  t.equal(h.m.status(h.now).note, 'WANPPPConnection:1 at http://192.168.1.1:5000/ppp: GetExternalIPAddress: error 606 ActionNotAuthorized (the router allows no changes through UPnP)')
})

t.test('malformed, oversize and failed HTTP answers fail with a named reason', async t => {
  const cases: Array<[string, HttpResult, RegExp]> = [
    ['not a description', { status: 200, body: '<html/>' }, /description at .*: not a UPnP device description/],
    ['HTTP 404', { status: 404, body: '' }, /description at .*: HTTP 404/],
    ['oversize (the I/O cut it)', { error: 'oversize (more than 65536 bytes)' }, /description at .*: oversize/],
    ['timeout', { error: 'no answer in 2000 ms' }, /description at .*: no answer in 2000 ms/]
  ]
  for (const [name, r, note] of cases) {
    const h = new Harness()
    h.found()
    h.answer(r)
    t.equal(h.m.state, 'failed', name)
    t.match(h.m.status(h.now).note, note, name)
  }
  const h = new Harness()
  h.found()
  h.answer({ status: 200, body: desc() })
  h.answer({ status: 200, body: '<nonsense>' })
  t.equal(h.m.status(h.now).note, `WANIPConnection:1 at ${CTL}: GetExternalIPAddress: no GetExternalIPAddressResponse element`)
  t.equal(h.m.counters.upnpMalformed, 1)
  h.m.onHttp(999, extIp(), h.now)
  t.equal(h.m.state, 'failed', 'an answer to a request not outstanding is ignored')
})

t.test('renewal at half the lease with the same port; a failed renewal retries; expiry withdraws and asks again', async t => {
  const h = new Harness()
  h.mapped()
  const t0 = h.now
  h.advance(LEASE_SEC * 500 - 1)
  t.equal(h.http.length, 0)
  h.advance(1)
  t.equal(h.action(h.http[0]!.req), 'GetExternalIPAddress')
  t.not(h.m.external, null, 'the mapping stays offered while renewing')
  h.answer(extIp())
  t.equal(h.arg(h.http[0]!.req, 'NewExternalPort'), '9000')
  h.answer(ok('AddPortMapping'))
  t.equal(h.m.counters.upnpRenewals, 1)
  t.equal(h.changes.length, 1, 'same endpoint: not announced again')
  // A new WAN address at the next renewal is announced.
  h.advance(LEASE_SEC * 500)
  h.answer(extIp('100.64.1.99'))
  h.answer(ok('AddPortMapping'))
  t.same(h.changes.at(-1), { ip: ipToInt('100.64.1.99'), port: 9000 })
  // The gateway stops answering: retries until expiry, then withdrawn and discovery again.
  h.advance(LEASE_SEC * 500)
  h.answer({ error: 'no answer in 2000 ms' })
  t.equal(h.m.state, 'mapped')
  let guard = 0
  while (h.m.state !== 'discovering' && guard++ < 1000) {
    h.advance(Math.max(0, h.m.nextDue() - h.now))
    if (h.http.length > 0) h.answer({ error: 'ECONNREFUSED' })
  }
  t.equal(h.m.state, 'discovering')
  t.equal(h.m.counters.upnpExpired, 1)
  t.same(h.changes.at(-1), null)
  t.ok(h.now - t0 >= LEASE_SEC * 2000, 'not before the lease ran out')
})

t.test('a stale UPnP mapping is deleted at its control URL on the same gateway, before asking', async t => {
  const h = new Harness()
  h.m.forgetStale({ gateway: GW, internalPort: 4000, protocol: 'upnp', nonce: '', external: { ip: 1, port: 4000 }, upnp: { controlUrl: CTL, serviceType: IP1 } })
  h.m.setNetwork({ ...NET, gateway: ipToInt('192.168.1.254') }, h.now)
  t.equal(h.http.length, 0, 'another gateway: not sent there')
  h.m.setNetwork(NET, h.now)
  t.equal(h.http.length, 1)
  t.equal(h.http[0]!.req.url, CTL)
  t.equal(h.action(h.http[0]!.req), 'DeletePortMapping')
  t.equal(h.arg(h.http[0]!.req, 'NewExternalPort'), '4000')
  t.equal(h.m.counters.upnpStaleDeleted, 1)
  h.answer(ok('DeletePortMapping'))
  t.equal(h.m.state, 'waiting', 'its answer does not disturb the mapping flow')
  const bad = new Harness()
  bad.m.forgetStale({ gateway: GW, internalPort: 4000, protocol: 'upnp', nonce: '', external: { ip: 1, port: 4000 }, upnp: { controlUrl: 'file:///etc/passwd', serviceType: IP1 } })
  bad.m.setNetwork(NET, bad.now)
  t.equal(bad.http.length, 0, 'a record with a non-http control URL is dropped')
})

t.test('a network change drops the mapping; stop without one sends nothing', async t => {
  const h = new Harness()
  h.mapped()
  h.m.setNetwork({ ...NET, localIp: ipToInt('192.168.1.3') }, h.now)
  t.same(h.changes.at(-1), null)
  t.equal(h.m.state, 'waiting')
  t.equal(h.m.stop(), false)
  t.equal(h.http.length, 0)
})

t.test('combinePortMapStatus', async t => {
  const st = (state: PortMapStatus['state'], note: string, protocol: PortMapStatus['protocol'] = null): PortMapStatus =>
    ({ state, note, protocol, gateway: '192.168.1.1', external: protocol === null ? null : '1.2.3.4:5', internalPort: 9000, lifetimeSec: null, lifetimeLeftSec: null })
  t.equal(combinePortMapStatus(st('mapped', 'p', 'pcp'), st('idle', 'u')).protocol, 'pcp')
  t.equal(combinePortMapStatus(st('failed', 'p'), st('mapped', 'u', 'upnp')).protocol, 'upnp')
  t.same(combinePortMapStatus(st('failed', 'no PCP'), st('failed', 'no IGD')), st('failed', 'no PCP; UPnP: no IGD'))
  t.same(combinePortMapStatus(st('failed', 'no PCP'), st('probing', 'searching')), st('probing', 'no PCP; UPnP: searching'))
  t.same(combinePortMapStatus(st('probing', 'asking'), st('idle', 'waiting')), st('probing', 'asking'))
})
