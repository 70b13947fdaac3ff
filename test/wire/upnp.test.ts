/**
 * wire/upnp.ts: the M-SEARCH text, SSDP answers, device descriptions (the
 * services found, URLBase and relative control URLs, another host refused,
 * oversize and malformed documents), SOAP requests and answers (out
 * arguments, UPnPError codes, the wrong action), and a fuzz loop: random
 * input never throws.
 */
import t from 'tap'
import {
  MAX_DOC, MAX_SSDP, addPortMappingArgs, decodeSoap, decodeSsdp, describeUpnpError, elements, encodeMSearch, encodeSoap, httpIpv4Host, parseDescription
} from '../../src/wire/upnp.js'
import { seededRandom } from '../../src/random.js'

const LOC = 'http://192.168.1.1:5000/rootDesc.xml'

function description (o: { urlBase?: string, services?: Array<[string, string]> } = {}): string {
  const svcs = (o.services ?? [['urn:schemas-upnp-org:service:WANIPConnection:1', '/ctl/IPConn']])
    .map(([type, ctl]) => `<service><serviceType>${type}</serviceType><serviceId>x</serviceId><controlURL>${ctl}</controlURL><eventSubURL>/evt</eventSubURL></service>`).join('')
  return `<?xml version="1.0"?><root xmlns="urn:schemas-upnp-org:device-1-0"><specVersion><major>1</major></specVersion>${o.urlBase === undefined ? '' : `<URLBase>${o.urlBase}</URLBase>`}` +
    `<device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType><serviceList><service><serviceType>urn:schemas-upnp-org:service:Layer3Forwarding:1</serviceType><controlURL>/ctl/L3F</controlURL></service></serviceList>` +
    `<deviceList><device><deviceList><device><serviceList>${svcs}</serviceList></device></deviceList></device></deviceList></device></root>`
}

t.test('encodeMSearch: the SSDP discover request', async t => {
  t.equal(Buffer.from(encodeMSearch('urn:schemas-upnp-org:device:InternetGatewayDevice:1')).toString(),
    'M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: "ssdp:discover"\r\nMX: 1\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n\r\n')
})

t.test('decodeSsdp: LOCATION and ST of a 200 answer, any header case; the rest refused with a reason', async t => {
  const ok = Buffer.from('HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nst: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\nUSN: uuid:x\r\nLocation: http://192.168.1.1:5000/rootDesc.xml \r\n\r\n')
  t.same(decodeSsdp(ok), { location: LOC, st: 'urn:schemas-upnp-org:device:InternetGatewayDevice:1' })
  t.equal(decodeSsdp(Buffer.from('NOTIFY * HTTP/1.1\r\nLOCATION: x\r\n\r\n')), 'not an HTTP 200 answer')
  t.equal(decodeSsdp(Buffer.from('HTTP/1.1 200 OK\r\nST: x\r\n\r\n')), 'no LOCATION header')
  t.equal(decodeSsdp(Buffer.from('HTTP/1.1 200 OK\r\nLOCATION: http://a/\r\n\r\n')), 'no ST header')
  t.equal(decodeSsdp(Buffer.alloc(MAX_SSDP + 1, 65)), 'oversize')
})

t.test('httpIpv4Host: only http URLs with an IPv4 literal', async t => {
  t.equal(httpIpv4Host(LOC), '192.168.1.1')
  t.equal(httpIpv4Host('https://192.168.1.1/x'), null)
  t.equal(httpIpv4Host('http://router.lan/x'), null)
  t.equal(httpIpv4Host('http://user:pw@192.168.1.1/x'), null)
  t.equal(httpIpv4Host('not a url'), null)
})

t.test('parseDescription: the mapping services best first, control URLs resolved', async t => {
  t.same(parseDescription(description(), LOC), [{ serviceType: 'urn:schemas-upnp-org:service:WANIPConnection:1', controlUrl: 'http://192.168.1.1:5000/ctl/IPConn' }])
  const both = parseDescription(description({
    services: [['urn:schemas-upnp-org:service:WANPPPConnection:1', 'ctl/PPP'], ['urn:schemas-upnp-org:service:WANIPConnection:2', 'http://192.168.1.1:5000/ctl/IP2?a=1&amp;b=2']]
  }), LOC)
  t.same(both, [
    { serviceType: 'urn:schemas-upnp-org:service:WANIPConnection:2', controlUrl: 'http://192.168.1.1:5000/ctl/IP2?a=1&b=2' },
    { serviceType: 'urn:schemas-upnp-org:service:WANPPPConnection:1', controlUrl: 'http://192.168.1.1:5000/ctl/PPP' }
  ], 'IGD:2 first; entities unescaped; a relative URL against LOCATION')
  t.same(parseDescription(description({ urlBase: 'http://192.168.1.1:49152/' }), LOC), [{ serviceType: 'urn:schemas-upnp-org:service:WANIPConnection:1', controlUrl: 'http://192.168.1.1:49152/ctl/IPConn' }], 'against URLBase')
  const prefixed = description().replace(/<(\/?)(service|serviceType|controlURL)>/g, '<$1d:$2>')
  t.equal((parseDescription(prefixed, LOC) as unknown[]).length, 1, 'namespace prefixes')
})

t.test('parseDescription: refusals, each with its reason', async t => {
  t.equal(parseDescription(description({ services: [['urn:schemas-upnp-org:service:WANIPConnection:1', 'http://10.9.9.9/ctl']] }), LOC),
    'no WANIPConnection or WANPPPConnection service with a control URL on the same host', 'a control URL on another host is not followed')
  t.equal(parseDescription(description({ urlBase: 'http://203.0.113.9/' }), LOC), 'no WANIPConnection or WANPPPConnection service with a control URL on the same host', 'nor a URLBase elsewhere')
  t.equal(parseDescription(description({ services: [['urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1', '/c']] }), LOC), 'no WANIPConnection or WANPPPConnection service with a control URL on the same host')
  t.equal(parseDescription('<html>hello</html>', LOC), 'not a UPnP device description (no <root>)')
  t.equal(parseDescription(description() + ' '.repeat(MAX_DOC), LOC), 'oversize')
  t.equal(parseDescription(description(), 'http://router.lan/x'), 'LOCATION is not an http URL with an IPv4 address')
  t.equal(parseDescription('<root><service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType><controlURL>/x', LOC),
    'no WANIPConnection or WANPPPConnection service with a control URL on the same host', 'truncated')
})

t.test('encodeSoap: envelope and SOAPAction; arguments escaped', async t => {
  const r = encodeSoap('urn:schemas-upnp-org:service:WANIPConnection:1', 'AddPortMapping', addPortMappingArgs(9000, 9000, '192.168.1.2', 7200))
  t.equal(r.soapAction, '"urn:schemas-upnp-org:service:WANIPConnection:1#AddPortMapping"')
  t.match(r.body, '<u:AddPortMapping xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:1"><NewRemoteHost></NewRemoteHost><NewExternalPort>9000</NewExternalPort><NewProtocol>UDP</NewProtocol><NewInternalPort>9000</NewInternalPort><NewInternalClient>192.168.1.2</NewInternalClient><NewEnabled>1</NewEnabled>')
  t.match(r.body, '<NewLeaseDuration>7200</NewLeaseDuration></u:AddPortMapping>')
  t.match(encodeSoap('x', 'A', [['K', '<&>']]).body, '<K>&lt;&amp;&gt;</K>')
})

t.test('decodeSoap: out arguments, UPnPError, and what is neither', async t => {
  const ok = '<s:Envelope><s:Body><u:GetExternalIPAddressResponse xmlns:u="x"><NewExternalIPAddress>100.64.1.1</NewExternalIPAddress></u:GetExternalIPAddressResponse></s:Body></s:Envelope>'
  const a = decodeSoap(200, ok, 'GetExternalIPAddress')
  t.same(a, { ok: true, args: new Map([['NewExternalIPAddress', '100.64.1.1']]) })
  t.same(decodeSoap(200, '<s:Body><u:AddPortMappingResponse xmlns:u="x"></u:AddPortMappingResponse></s:Body>', 'AddPortMapping'), { ok: true, args: new Map() })
  const fault = '<s:Envelope><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>725</errorCode><errorDescription>OnlyPermanentLeasesSupported</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>'
  t.same(decodeSoap(500, fault, 'AddPortMapping'), { ok: false, code: 725, description: 'OnlyPermanentLeasesSupported' })
  t.equal(decodeSoap(500, 'Internal error', 'AddPortMapping'), 'HTTP 500 without a UPnPError code')
  t.equal(decodeSoap(404, '', 'AddPortMapping'), 'HTTP 404 without a UPnPError code')
  t.equal(decodeSoap(200, ok, 'AddPortMapping'), 'answer to another action than AddPortMapping')
  t.equal(decodeSoap(200, '<html/>', 'AddPortMapping'), 'no AddPortMappingResponse element')
  t.equal(decodeSoap(200, ok + ' '.repeat(MAX_DOC), 'GetExternalIPAddress'), 'oversize')
  t.equal(describeUpnpError(718, ''), 'error 718 ConflictInMappingEntry')
  t.equal(describeUpnpError(899, 'Weird\u0007'), 'error 899 Weird?')
  t.same(elements('<a>1</a><x:a y="z">2</x:a>', 'a'), ['1', '2'])
  t.same(elements('<a>1</a><a>2<a>3', 'a'), ['1'], 'an unclosed element ends the scan')
  t.same(elements('<ab>1</ab><a >2</a ><a\n x="<">3</a>', 'a'), ['2'], 'another name; attributes stop at "<"')
})

t.test('fuzz: random and mutated input never throws', async t => {
  const r = seededRandom(11)
  const seeds = [description(), 'HTTP/1.1 200 OK\r\nST: a\r\nLOCATION: http://192.168.1.1/\r\n\r\n', '<u:AddPortMappingResponse><a>1</a></u:AddPortMappingResponse><errorCode>7</errorCode>']
  for (let i = 0; i < 2000; i++) {
    const s = seeds[i % seeds.length]!
    const chars = [...s]
    for (let k = 0; k < 1 + r.int(8); k++) chars.splice(r.int(chars.length), r.int(3), String.fromCharCode(r.int(128)))
    const text = chars.join('')
    decodeSsdp(Buffer.from(text))
    parseDescription(text, LOC)
    decodeSoap(r.int(2) === 0 ? 200 : 500, text, 'AddPortMapping')
  }
  t.pass('2000 inputs')
})
