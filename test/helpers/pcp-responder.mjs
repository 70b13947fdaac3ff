/**
 * A small NAT-PMP (RFC 6886) / PCP (RFC 6887) responder for the lab's router
 * namespaces (Debian's miniupnpd refuses the lab's reserved WAN ranges). It
 * answers MAP requests for UDP and makes each mapping real: an element of an
 * nftables DNAT map (nft-portmap.mjs, table `ip lwt_pm`), so the kernel
 * forwards WAN packets for the external port to the client, beside the lab's
 * NAT of any kind (src/lab/nat.ts; the symmetric one included). A mapping
 * goes away on a delete (lifetime 0), at the end of its lifetime, and with
 * the table when the responder exits. Written independently of src/wire (plain JavaScript,
 * run without the TypeScript loader), so the e2e test checks the client's
 * codecs against a second implementation.
 *
 *   node pcp-responder.mjs --lan-ip 192.168.1.1 --wan DEV --wan-ip 100.64.1.1
 *        [--proto both|pcp|natpmp] [--max-lifetime SEC]
 *
 * stdout: one JSON object per event: ready, map, renew, delete, expire, refused.
 */
import { createSocket } from 'node:dgram'
import { createPortMapTable } from './nft-portmap.mjs'
import { parseArgs } from 'node:util'

const { values: a } = parseArgs({
  options: {
    'lan-ip': { type: 'string' },
    wan: { type: 'string' },
    'wan-ip': { type: 'string' },
    proto: { type: 'string', default: 'both' },
    'max-lifetime': { type: 'string', default: '7200' }
  }
})
const LAN_IP = a['lan-ip']
const WAN = a.wan
const WAN_IP = a['wan-ip']
const PROTO = a.proto
const MAX_LIFETIME = Number(a['max-lifetime'])
if (!LAN_IP || !WAN || !WAN_IP || !/^[A-Za-z0-9_.-]{1,15}$/.test(WAN) || !['both', 'pcp', 'natpmp'].includes(PROTO)) {
  console.error('usage: pcp-responder.mjs --lan-ip IP --wan DEV --wan-ip IP [--proto both|pcp|natpmp] [--max-lifetime SEC]')
  process.exit(2)
}
const started = Date.now()
const epoch = () => Math.floor((Date.now() - started) / 1000)
const say = (o) => { process.stdout.write(JSON.stringify(o) + '\n') }

const table = createPortMapTable(WAN, WAN_IP, say)
const unmap = table.unmap

/** Map (or renew) client:internalPort; returns [external port, lifetime]. */
function map (client, internalPort, suggested, lifetime, proto) {
  const life = Math.min(lifetime, MAX_LIFETIME)
  return [table.map(client, internalPort, suggested, life, proto), life]
}

const ipBytes = (ip) => ip.split('.').map(Number)

function natpmp (msg, client) {
  const op = msg[1]
  const out = Buffer.alloc(op === 0 ? 12 : 16)
  out[0] = 0
  out[1] = 128 + op
  out.writeUInt32BE(epoch(), 4)
  if (op === 0) {
    out.set(ipBytes(WAN_IP), 8)
    return out
  }
  if (op !== 1 || msg.length < 12) { out.writeUInt16BE(5, 2); return out.subarray(0, 8) }
  const internal = msg.readUInt16BE(4)
  const suggested = msg.readUInt16BE(6)
  const lifetime = msg.readUInt32BE(8)
  out.writeUInt16BE(internal, 8)
  if (lifetime === 0) {
    const ext = table.externalOf(client, internal)
    if (ext !== undefined) unmap(ext, 'delete')
    return out
  }
  const [ext, life] = map(client, internal, suggested, lifetime, 'nat-pmp')
  out.writeUInt16BE(ext, 10)
  out.writeUInt32BE(life, 12)
  return out
}

function pcp (msg, client) {
  const out = Buffer.alloc(60)
  out[0] = 2
  out[1] = 0x80 | (msg[1] & 0x7f)
  out.writeUInt32BE(epoch(), 8)
  const fail = (code) => { out[3] = code; say({ event: 'refused', client, code }); return msg.length >= 60 ? (msg.copy(out, 24, 24, 60), out) : out.subarray(0, 24) }
  if (msg.length < 60) return fail(3)
  if ((msg[1] & 0x7f) !== 1) return fail(4)
  const claimed = `${msg[20]}.${msg[21]}.${msg[22]}.${msg[23]}`
  if (claimed !== client) return fail(12) // ADDRESS_MISMATCH
  if (msg[36] !== 17) return fail(9)
  msg.copy(out, 24, 24, 40) // nonce, protocol, reserved
  const internal = msg.readUInt16BE(40)
  const lifetime = msg.readUInt32BE(4)
  out.writeUInt16BE(internal, 40)
  if (lifetime === 0) {
    const ext = table.externalOf(client, internal)
    if (ext !== undefined) unmap(ext, 'delete')
    return out
  }
  const [ext, life] = map(client, internal, msg.readUInt16BE(42), lifetime, 'pcp')
  out.writeUInt32BE(life, 4)
  out.writeUInt16BE(ext, 42)
  out[54] = 0xff
  out[55] = 0xff
  out.set(ipBytes(WAN_IP), 56)
  return out
}

const sock = createSocket('udp4')
sock.on('message', (msg, rinfo) => {
  let reply = null
  try {
    if (msg.length < 2) return
    if (msg[0] === 2 && PROTO !== 'natpmp') reply = pcp(msg, rinfo.address)
    else if (msg[0] === 0 && PROTO !== 'pcp') reply = natpmp(msg, rinfo.address)
    else if (PROTO !== 'pcp') {
      // RFC 6887 §9: a NAT-PMP server answers other versions with "unsupported version".
      reply = Buffer.alloc(8)
      reply[1] = 128 + msg[1]
      reply.writeUInt16BE(1, 2)
      reply.writeUInt32BE(epoch(), 4)
    }
  } catch (err) {
    say({ event: 'error', message: String(err) })
  }
  if (reply !== null) sock.send(reply, rinfo.port, rinfo.address)
})

function shutdown () {
  table.destroy()
  process.exit(0)
}
process.on('SIGTERM', shutdown)
process.on('SIGINT', shutdown)
sock.bind(5351, LAN_IP, () => { say({ event: 'ready', lanIp: LAN_IP, wanIp: WAN_IP, proto: PROTO }) })
