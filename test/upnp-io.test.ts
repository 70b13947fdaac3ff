/**
 * upnp-io.ts over real loopback sockets: httpExchange reports a GET and a
 * SOAP POST (headers as sent), refuses an oversize answer (declared or
 * streamed), gives up on a silent server after its timeout, and reports a
 * refused connection, each exactly once; UpnpTransport sends SSDP and hands
 * answers back, and close() waits (bounded) for a request in flight.
 */
import t from 'tap'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { createSocket } from 'node:dgram'
import type { AddressInfo } from 'node:net'
import { UpnpTransport, httpExchange } from '../src/upnp-io.js'
import type { HttpRequest, HttpResult } from '../src/control/upnp.js'
import { MAX_DOC } from '../src/wire/upnp.js'
import type { Logger } from '../src/log.js'

const quiet: Logger = new Proxy({}, { get: (_o, k) => k === 'child' ? () => quiet : () => {} }) as Logger

async function server (t: { teardown: (fn: () => void) => void }, handler: (req: IncomingMessage, res: ServerResponse, body: string) => void): Promise<string> {
  const s = createServer((req, res) => {
    let body = ''
    req.on('data', (c: Buffer) => { body += c.toString() })
    req.on('end', () => { handler(req, res, body) })
  })
  await new Promise<void>(resolve => s.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { s.closeAllConnections(); s.close() })
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`
}

function exchange (req: HttpRequest, timeoutMs?: number): Promise<{ r: HttpResult, calls: number }> {
  return new Promise(resolve => {
    let calls = 0
    let first: HttpResult | null = null
    httpExchange(req, (r) => {
      calls++
      first ??= r
      // Wait a moment for a second (wrong) call before resolving.
      setTimeout(() => { resolve({ r: first!, calls }) }, 50)
    }, timeoutMs)
  })
}

t.test('GET and SOAP POST: status and body; the SOAP headers as sent', async t => {
  let seen: { method?: string, soapaction?: string, type?: string, body?: string } = {}
  const base = await server(t, (req, res, body) => {
    seen = { method: req.method, soapaction: req.headers.soapaction as string, type: req.headers['content-type'], body }
    res.writeHead(req.method === 'GET' ? 200 : 500)
    res.end(req.method === 'GET' ? '<root/>' : '<errorCode>718</errorCode>')
  })
  const g = await exchange({ method: 'GET', url: `${base}/d.xml` })
  t.same(g, { r: { status: 200, body: '<root/>' }, calls: 1 })
  const p = await exchange({ method: 'POST', url: `${base}/ctl`, soapAction: '"urn:x#AddPortMapping"', body: '<x/>' })
  t.same(p, { r: { status: 500, body: '<errorCode>718</errorCode>' }, calls: 1 })
  t.same(seen, { method: 'POST', soapaction: '"urn:x#AddPortMapping"', type: 'text/xml; charset="utf-8"', body: '<x/>' })
})

t.test('oversize answers are refused, declared or streamed', async t => {
  const base = await server(t, (req, res) => {
    if (req.url === '/declared') { res.writeHead(200, { 'content-length': String(MAX_DOC + 1) }); res.write('x'); return }
    res.writeHead(200)
    const chunk = 'y'.repeat(16384)
    for (let i = 0; i < 6; i++) res.write(chunk)
    res.end()
  })
  const d = await exchange({ method: 'GET', url: `${base}/declared` })
  t.same(d, { r: { error: `oversize (${MAX_DOC + 1} bytes; at most ${MAX_DOC})` }, calls: 1 })
  const s = await exchange({ method: 'GET', url: `${base}/streamed` })
  t.same(s, { r: { error: `oversize (more than ${MAX_DOC} bytes)` }, calls: 1 })
})

t.test('a silent server: given up after the timeout; a closed port: refused; a bad URL: named', async t => {
  const base = await server(t, () => { /* never answers */ })
  const started = Date.now()
  const s = await exchange({ method: 'GET', url: `${base}/x` }, 200)
  t.same(s, { r: { error: 'no answer in 200 ms' }, calls: 1 })
  t.ok(Date.now() - started >= 200)
  const c = await exchange({ method: 'GET', url: 'http://127.0.0.1:1/x' })
  t.same(c, { r: { error: 'ECONNREFUSED' }, calls: 1 })
  const b = await exchange({ method: 'GET', url: 'nonsense' })
  t.equal(b.calls, 1)
  t.match((b.r as { error: string }).error, /^bad URL: /)
})

t.test('UpnpTransport: SSDP out and back; close waits for a request in flight', async t => {
  const igd = createSocket('udp4')
  await new Promise<void>(resolve => igd.bind(0, '127.0.0.1', resolve))
  t.teardown(() => { igd.close() })
  igd.on('message', (msg, rinfo) => { igd.send(Buffer.from(`HTTP/1.1 200 OK\r\nGOT: ${msg.length}\r\n\r\n`), rinfo.port, rinfo.address) })
  let release: (() => void) | null = null
  const base = await server(t, (_req, res) => { release = () => { res.writeHead(200); res.end('<done/>') } })
  const answers: Array<{ text: string, ip: number }> = []
  const results: Array<[number, HttpResult]> = []
  const tr = new UpnpTransport(quiet, (b, ip) => { answers.push({ text: Buffer.from(b).toString(), ip }) }, (id, r) => { results.push([id, r]) })
  await tr.start()
  tr.setLocalIp('127.0.0.1')
  tr.ssdp(Buffer.from('M-SEARCH'), '127.0.0.1', (igd.address() as AddressInfo).port)
  for (let i = 0; i < 100 && answers.length === 0; i++) await new Promise(resolve => setTimeout(resolve, 10))
  t.same(answers, [{ text: 'HTTP/1.1 200 OK\r\nGOT: 8\r\n\r\n', ip: 0x7f000001 }])
  tr.http(7, { method: 'GET', url: `${base}/slow` })
  for (let i = 0; i < 100 && release === null; i++) await new Promise(resolve => setTimeout(resolve, 10))
  const closing = tr.close(2000)
  setTimeout(() => { release!() }, 100)
  await closing
  t.same(results, [[7, { status: 200, body: '<done/>' }]], 'close returned once the request in flight had finished')
  await tr.close(2000)
})
