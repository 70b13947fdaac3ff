/**
 * A small UPnP IGD:1 responder for the lab's router namespaces (miniupnpd
 * refuses the lab's reserved WAN ranges; see pcp-responder.mjs): it answers
 * SSDP M-SEARCH on the router's LAN side (multicast 239.255.255.250:1900 and
 * unicast), serves a device description with one WANIPConnection:1 service,
 * and answers its SOAP actions GetExternalIPAddress, AddPortMapping (UDP
 * only, for the requesting host only, as miniupnpd's secure mode) and
 * DeletePortMapping. Each mapping is real: an nftables DNAT map element
 * (nft-portmap.mjs, table `ip lwt_pm`). Written independently of src/wire
 * (plain JavaScript, run without the TypeScript loader), so the e2e test
 * checks the client's texts against a second implementation.
 *
 *   node upnp-responder.mjs --lan-ip 192.168.1.1 --wan DEV --wan-ip 100.64.1.1
 *        [--max-lifetime SEC] [--only-permanent]
 *
 *   M-SEARCH ─▶ 200 OK, LOCATION http://LAN_IP:PORT/rootDesc.xml
 *   GET /rootDesc.xml ─▶ the description;  POST /ctl/IPConn ─▶ the action's answer or a UPnPError
 *
 * stdout: one JSON object per event: ready, search, map, renew, delete, expire, refused.
 */
import { createServer } from 'node:http'
import { createSocket } from 'node:dgram'
import { parseArgs } from 'node:util'
import { createPortMapTable } from './nft-portmap.mjs'

const { values: a } = parseArgs({
  options: {
    'lan-ip': { type: 'string' },
    wan: { type: 'string' },
    'wan-ip': { type: 'string' },
    'max-lifetime': { type: 'string', default: '604800' },
    'only-permanent': { type: 'boolean', default: false }
  }
})
const LAN_IP = a['lan-ip']
const WAN = a.wan
const WAN_IP = a['wan-ip']
const MAX_LIFETIME = Number(a['max-lifetime'])
const ONLY_PERMANENT = a['only-permanent']
if (!LAN_IP || !WAN || !WAN_IP || !/^[A-Za-z0-9_.-]{1,15}$/.test(WAN)) {
  console.error('usage: upnp-responder.mjs --lan-ip IP --wan DEV --wan-ip IP [--max-lifetime SEC] [--only-permanent]')
  process.exit(2)
}
const say = (o) => { process.stdout.write(JSON.stringify(o) + '\n') }
const table = createPortMapTable(WAN, WAN_IP, say)

const IGD = 'urn:schemas-upnp-org:device:InternetGatewayDevice:1'
const SVC = 'urn:schemas-upnp-org:service:WANIPConnection:1'
const TARGETS = new Set([IGD, SVC, 'upnp:rootdevice', 'ssdp:all'])

const DESCRIPTION = `<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0">
 <specVersion><major>1</major><minor>0</minor></specVersion>
 <device>
  <deviceType>${IGD}</deviceType><friendlyName>lab IGD</friendlyName><UDN>uuid:lab-igd</UDN>
  <serviceList><service><serviceType>urn:schemas-upnp-org:service:Layer3Forwarding:1</serviceType><serviceId>urn:upnp-org:serviceId:L3Forwarding1</serviceId><controlURL>/ctl/L3F</controlURL><eventSubURL>/evt/L3F</eventSubURL><SCPDURL>/L3F.xml</SCPDURL></service></serviceList>
  <deviceList><device>
   <deviceType>urn:schemas-upnp-org:device:WANDevice:1</deviceType><UDN>uuid:lab-wan</UDN>
   <deviceList><device>
    <deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:1</deviceType><UDN>uuid:lab-wanconn</UDN>
    <serviceList><service>
     <serviceType>${SVC}</serviceType><serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId>
     <controlURL>/ctl/IPConn</controlURL><eventSubURL>/evt/IPConn</eventSubURL><SCPDURL>/WANIPCn.xml</SCPDURL>
    </service></serviceList>
   </device></deviceList>
  </device></deviceList>
 </device>
</root>
`

const envelope = (inner) => `<?xml version="1.0"?>\r\n<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>${inner}</s:Body></s:Envelope>\r\n`
const response = (action, args = '') => [200, envelope(`<u:${action}Response xmlns:u="${SVC}">${args}</u:${action}Response>`)]
const upnpError = (code, description, client) => {
  say({ event: 'refused', client, code, description })
  return [500, envelope(`<s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>${code}</errorCode><errorDescription>${description}</errorDescription></UPnPError></detail></s:Fault>`)]
}
function argOf (body, name) {
  const m = new RegExp(`<(?:\\w+:)?${name}>([^<]*)</(?:\\w+:)?${name}>`).exec(body)
  return m === null ? undefined : m[1].trim()
}

function soap (action, body, client) {
  switch (action) {
    case 'GetExternalIPAddress': return response(action, `<NewExternalIPAddress>${WAN_IP}</NewExternalIPAddress>`)
    case 'AddPortMapping': {
      const ext = Number(argOf(body, 'NewExternalPort'))
      const internal = Number(argOf(body, 'NewInternalPort'))
      const lease = Number(argOf(body, 'NewLeaseDuration') ?? 0)
      if ((argOf(body, 'NewProtocol') ?? '').toUpperCase() !== 'UDP') return upnpError(402, 'Invalid Args', client)
      if (argOf(body, 'NewInternalClient') !== client) return upnpError(606, 'Action not authorized', client)
      if (!Number.isInteger(internal) || internal < 1 || internal > 65535 || !Number.isInteger(ext) || ext > 65535 || !Number.isInteger(lease) || lease < 0) return upnpError(402, 'Invalid Args', client)
      if (ext === 0) return upnpError(716, 'WildCardNotPermittedInExtPort', client)
      if (ONLY_PERMANENT && lease !== 0) return upnpError(725, 'OnlyPermanentLeasesSupported', client)
      const got = table.map(client, internal, ext, Math.min(lease, MAX_LIFETIME), 'upnp', true)
      if (got === null) return upnpError(718, 'ConflictInMappingEntry', client)
      return response(action)
    }
    case 'DeletePortMapping': {
      const ext = Number(argOf(body, 'NewExternalPort'))
      const m = table.at(ext)
      if (m === undefined) return upnpError(714, 'NoSuchEntryInArray', client)
      if (m.client !== client) return upnpError(606, 'Action not authorized', client)
      table.unmap(ext, 'delete')
      return response(action)
    }
    default: return upnpError(401, 'Invalid Action', client)
  }
}

const http = createServer((req, res) => {
  const client = req.socket.remoteAddress.replace(/^::ffff:/, '')
  const chunks = []
  let size = 0
  req.on('data', (c) => { size += c.length; if (size <= 65536) chunks.push(c) })
  req.on('end', () => {
    let status = 404
    let body = ''
    try {
      if (req.method === 'GET' && req.url === '/rootDesc.xml') [status, body] = [200, DESCRIPTION]
      else if (req.method === 'POST' && req.url === '/ctl/IPConn') {
        const action = /#(\w+)"?\s*$/.exec(String(req.headers.soapaction ?? ''))?.[1] ?? ''
        ;[status, body] = soap(action, Buffer.concat(chunks).toString('utf8'), client)
      }
    } catch (err) {
      say({ event: 'error', message: String(err) })
      status = 500
    }
    res.writeHead(status, { 'content-type': 'text/xml; charset="utf-8"', 'content-length': Buffer.byteLength(body), connection: 'close' })
    res.end(body)
  })
})

const ssdp = createSocket({ type: 'udp4', reuseAddr: true })
ssdp.on('message', (msg, rinfo) => {
  const text = msg.toString('latin1')
  if (!text.startsWith('M-SEARCH * HTTP/1.1\r\n') || !/\r\nMAN:\s*"ssdp:discover"/i.test(text)) return
  const st = /\r\nST:\s*([^\r\n]*)/i.exec(text)?.[1]?.trim() ?? ''
  if (!TARGETS.has(st)) return
  say({ event: 'search', from: rinfo.address, st })
  const answer = `HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: ${st === 'ssdp:all' ? IGD : st}\r\nUSN: uuid:lab-igd::${st}\r\nEXT:\r\nSERVER: Linux UPnP/1.1 lab-igd/1.0\r\n` +
    `LOCATION: http://${LAN_IP}:${http.address().port}/rootDesc.xml\r\n\r\n`
  ssdp.send(answer, rinfo.port, rinfo.address)
})

function shutdown () {
  table.destroy()
  process.exit(0)
}
process.on('SIGTERM', shutdown)
process.on('SIGINT', shutdown)
http.listen(0, LAN_IP, () => {
  ssdp.bind(1900, () => {
    ssdp.addMembership('239.255.255.250', LAN_IP)
    say({ event: 'ready', lanIp: LAN_IP, wanIp: WAN_IP, httpPort: http.address().port, proto: 'upnp' })
  })
})
