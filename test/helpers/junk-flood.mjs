// Junk and replay generator for test/e2e/robustness.test.ts. Runs as a plain
// node program inside a lab namespace (imports the compiled protocol modules).
//
//   node junk-flood.mjs SERVER_IP PORT KEY TUNNEL_IP
//
// 1. random datagrams (0..1500 bytes), 2. truncated headers of every type,
// 3. valid type bytes with garbage bodies, 4. a real registration with the
// network key, then replays: the same init again, a data packet (an ICMP echo
// to the server) sent once and replayed, and a control ping replayed.
// Prints a JSON summary of what it sent.
import dgram from 'node:dgram'
import { randomBytes } from 'node:crypto'
const dist = new URL('../../dist/src/', import.meta.url)
const { derivePsk } = await import(new URL('crypto/kdf.js', dist))
const { createInit, consumeResponse, generateStaticKey } = await import(new URL('crypto/noise.js', dist))
const { sealTransport } = await import(new URL('crypto/control-channel.js', dist))
const { CookieGenerator, macKeys } = await import(new URL('crypto/cookie.js', dist))
const { encodeInitPayload, decodeRespPayload } = await import(new URL('wire/payloads.js', dist))
const { encodeControl, CTL_PING, CTL_CONFIRM } = await import(new URL('wire/control.js', dist))
const { ipToInt } = await import(new URL('wire/addr.js', dist))

const [host, portS, key, tunnelIp] = process.argv.slice(2)
const port = Number(portS)
const sock = dgram.createSocket('udp4')
await new Promise((resolve) => sock.bind(0, resolve))
const send = (b) => new Promise((resolve) => sock.send(b, port, host, () => resolve()))
const sent = { random: 0, truncated: 0, garbage: 0, replays: 0 }

for (let i = 0; i < 3000; i++) { await send(randomBytes(Math.floor(Math.random() * 1500))); sent.random++ }
for (let type = 0; type <= 8; type++) {
  for (let len = 1; len < 48; len++) { const b = randomBytes(len); b[0] = type; await send(b); sent.truncated++ }
}
for (let type = 1; type <= 6; type++) {
  for (let i = 0; i < 200; i++) { const b = randomBytes(8 + Math.floor(Math.random() * 200)); b[0] = type; await send(b); sent.garbage++ }
}
// Relay envelopes from an unregistered source, addressed to client ids 1..50.
for (let id = 1; id <= 50; id++) { const b = Buffer.alloc(64); b[0] = 5; b.writeUInt32LE(id, 4); b[8] = 4; await send(b); sent.garbage++ }

// A real registration, then replays. Like a real client, a new init every
// second until the server answers (a flood may cost the server the first
// one: counted drops, not silence); at most 5.
const psk = await derivePsk(key, { ip: ipToInt(tunnelIp), prefix: 24, name: null }) // the server's network (it registers as /24 below)
const macs = new CookieGenerator(macKeys(psk))
const nodeKey = generateStaticKey()
const states = new Map()
let init
let noiseInit
let tries = 0
const { resp, state } = await new Promise((resolve, reject) => {
  sock.on('message', (m) => {
    // Under load the server answers with a cookie: resend the same init at once with mac2, as a client does.
    if (m[0] === 7 && init !== undefined && macs.consumeReply(new Uint8Array(m), performance.now())) { init = macs.addMacs(noiseInit, performance.now()); void send(init); return }
    if (m[0] !== 2) return
    const st = states.get(m.readUInt32LE(8)) // the response's receiver index is our sender index
    if (st === undefined) return
    clearInterval(timer)
    resolve({ resp: new Uint8Array(m), state: st })
  })
  const attempt = () => {
    if (tries === 5) { clearInterval(timer); reject(new Error(`no handshake response to ${tries} inits`)); return }
    tries++
    const payload = encodeInitPayload({ role: 1, prefixLen: 24, mtu: 1400, tunnelIp: ipToInt(tunnelIp), timestamp: Date.now(), lan: [] })
    const index = 0x1234560 + tries
    const c = createInit(psk, nodeKey, index, payload)
    states.set(index, c.state)
    noiseInit = c.message
    init = macs.addMacs(noiseInit, performance.now())
    void send(init)
  }
  const timer = setInterval(attempt, 1000)
  attempt()
})
const hs = consumeResponse(state, resp)
const rp = decodeRespPayload(hs.payload)
const confirm = sealTransport(3, hs.keys.ctlSend, hs.senderIndex, 0, encodeControl({ kind: CTL_CONFIRM }))
await send(confirm)
await new Promise((r) => setTimeout(r, 300))
// An ICMP echo request from our tunnel address to the server's.
const icmp = Buffer.alloc(28)
icmp[0] = 0x45; icmp.writeUInt16BE(28, 2); icmp[8] = 64; icmp[9] = 1
icmp.writeUInt32BE(ipToInt(tunnelIp), 12); icmp.writeUInt32BE(rp.tunnelIp, 16)
let s = 0; for (let i = 0; i < 20; i += 2) s += icmp.readUInt16BE(i); while (s > 0xffff) s = (s & 0xffff) + (s >>> 16); icmp.writeUInt16BE(~s & 0xffff, 10)
icmp[20] = 8; icmp.writeUInt16BE(0x4242, 24); icmp.writeUInt16BE(1, 26)
s = 0; for (let i = 20; i < 28; i += 2) s += icmp.readUInt16BE(i); while (s > 0xffff) s = (s & 0xffff) + (s >>> 16); icmp.writeUInt16BE(~s & 0xffff, 22)
const data = sealTransport(4, hs.keys.dataSend, hs.senderIndex, 0, icmp)
const ping = sealTransport(3, hs.keys.ctlSend, hs.senderIndex, 1, encodeControl({ kind: CTL_PING, txid: 7, peerListVersion: 0 }))
await send(data)
await send(ping)
for (let i = 0; i < 500; i++) { await send(data); await send(ping); await send(init); sent.replays += 3 }
// Leave cleanly-ish: no bye, the server will expire us.
console.log(JSON.stringify({ sent, registeredAs: tunnelIp, peerId: rp.peerId, initTries: tries }))
sock.close()
