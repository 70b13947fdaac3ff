/**
 * Wire encode/decode (src/wire): the transport header (every data packet),
 * a control Ping (every keepalive), a handshake init (every registration)
 * and a 100-entry peer list (the server's fan-out on every change).
 */
import { randomBytes } from 'node:crypto'
import { readTransportHeader, writeTransportHeader, MSG_DATA, encodeHandshakeInit, decodeHandshakeInit } from '../../src/wire/messages.js'
import { encodeControl, decodeControl, encodePeerUpdates, CTL_PING, PEER_OP_UPSERT, type PeerEntry } from '../../src/wire/control.js'
import { time, type BenchResult, type TimerOptions, DEFAULT_TIMER } from './timer.js'

export function run (opts: TimerOptions = DEFAULT_TIMER): BenchResult[] {
  const out: BenchResult[] = []
  const buf = new Uint8Array(2048)
  let c = 0
  out.push(time('wire', 'transport header write', 1, () => { writeTransportHeader(buf, 0, MSG_DATA, 0x1234, c++) }, opts))
  let sink = 0
  out.push(time('wire', 'transport header read', 1, () => { sink += readTransportHeader(buf).counter }, opts))
  const ping = { kind: CTL_PING, txid: 1, peerListVersion: 9 } as const
  const pingBuf = new Uint8Array(12)
  out.push(time('wire', 'control ping encode (into buffer)', 1, () => { encodeControl(ping, pingBuf, 0) }, opts))
  out.push(time('wire', 'control ping decode', 1, () => { sink += (decodeControl(pingBuf) as { txid: number }).txid }, opts))
  const init = { senderIndex: 42, ephemeral: randomBytes(32), encStatic: randomBytes(48), ciphertext: randomBytes(17 + 16) }
  const initBuf = encodeHandshakeInit(init)
  out.push(time('wire', 'handshake init encode', 1, () => { encodeHandshakeInit(init, buf, 0) }, opts))
  out.push(time('wire', 'handshake init decode', 1, () => { sink += decodeHandshakeInit(initBuf).senderIndex }, opts))
  const entries: PeerEntry[] = Array.from({ length: 100 }, (_, i) => ({ op: PEER_OP_UPSERT, peerId: i + 1, tunnelIp: 0x0a000002 + i, publicIp: 0x64400000 + i, publicPort: 40000 + i, key: randomBytes(32), lan: [] }))
  out.push(time('wire', 'peer list encode (100 entries)', 1, () => { sink += encodePeerUpdates(entries, 7).length }, opts))
  if (sink === -1) console.log(sink)
  return out
}
