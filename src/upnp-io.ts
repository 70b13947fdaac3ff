/**
 * UPnP IGD's I/O (port-mapping-io.ts owns one beside the PCP/NAT-PMP
 * socket): one dgram socket for SSDP (M-SEARCH out to the group and the
 * gateway, answers in), and node:http for the description and the SOAP
 * calls, each bounded by HTTP_TIMEOUT and MAX_DOC. All decisions are
 * control/upnp.ts's; this file only moves bytes and reports each request's
 * outcome exactly once.
 *
 *   UpnpMapper.ssdp(bytes, ip, port) ─▶ socket.send (multicast out of our LAN address)
 *   socket 'message' ─▶ onSsdp(bytes, source ip)
 *   UpnpMapper.http(id, req) ─▶ http.request ─▶ onHttp(id, { status, body } | { error })
 *   close(flushMs) ─▶ waits (bounded) for the requests in flight (a DeletePortMapping) ─▶ socket closed
 */
import { createSocket, type Socket } from 'node:dgram'
import { request } from 'node:http'
import type { Logger } from './log.js'
import type { HttpRequest, HttpResult } from './control/upnp.js'
import { MAX_DOC } from './wire/upnp.js'
import { ipToInt } from './wire/addr.js'

/** One HTTP exchange's bound (ms): a LAN router answers in milliseconds. */
export const HTTP_TIMEOUT = 2000

/** Runs one request; `done` is called exactly once. */
export function httpExchange (req: HttpRequest, done: (r: HttpResult) => void, timeoutMs = HTTP_TIMEOUT): void {
  let settled = false
  let timer: NodeJS.Timeout | undefined
  const finish = (r: HttpResult): void => {
    if (settled) return
    settled = true
    clearTimeout(timer)
    done(r)
  }
  const headers: Record<string, string> = { connection: 'close' }
  if (req.method === 'POST') {
    headers['content-type'] = 'text/xml; charset="utf-8"'
    headers.soapaction = req.soapAction ?? '""'
    headers['content-length'] = String(Buffer.byteLength(req.body ?? ''))
  }
  let r: ReturnType<typeof request>
  try {
    r = request(req.url, { method: req.method, headers, agent: false })
  } catch (err) {
    queueMicrotask(() => { finish({ error: `bad URL: ${(err as Error).message}` }) })
    return
  }
  timer = setTimeout(() => { finish({ error: `no answer in ${timeoutMs} ms` }); r.destroy() }, timeoutMs)
  r.on('error', (err: NodeJS.ErrnoException) => { finish({ error: err.code ?? err.message }) })
  r.on('response', (res) => {
    const declared = Number(res.headers['content-length'] ?? 0)
    if (declared > MAX_DOC) { finish({ error: `oversize (${declared} bytes; at most ${MAX_DOC})` }); r.destroy(); return }
    const chunks: Buffer[] = []
    let size = 0
    res.on('data', (c: Buffer) => {
      size += c.length
      if (size > MAX_DOC) { finish({ error: `oversize (more than ${MAX_DOC} bytes)` }); r.destroy(); return }
      chunks.push(c)
    })
    res.on('end', () => { finish({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }) })
    res.on('error', (err: NodeJS.ErrnoException) => { finish({ error: err.code ?? err.message }) })
  })
  r.end(req.method === 'POST' ? req.body : undefined)
}

export class UpnpTransport {
  readonly #sock: Socket
  readonly #log: Logger
  #inFlight = new Set<Promise<void>>()
  #closed = false
  #localIp: string | null = null

  /** `onSsdp`: a datagram on the SSDP socket; `onHttp`: a request's outcome. */
  constructor (log: Logger, onSsdp: (b: Uint8Array, ip: number) => void, readonly onHttp: (id: number, r: HttpResult) => void) {
    this.#log = log
    this.#sock = createSocket({ type: 'udp4' })
    this.#sock.on('message', (msg, rinfo) => {
      if (!this.#closed) onSsdp(new Uint8Array(msg.buffer, msg.byteOffset, msg.length), ipToInt(rinfo.address))
    })
    // A unicast M-SEARCH to a gateway without SSDP comes back as ICMP port unreachable: not fatal.
    this.#sock.on('error', (err) => { this.#log.debug('ssdp socket error', { err }) })
  }

  async start (): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#sock.once('error', reject)
      this.#sock.bind(0, () => { this.#sock.off('error', reject); resolve() })
    })
    this.#sock.setMulticastTTL(2)
  }

  /** Multicast leaves from this address (our address towards the gateway). */
  setLocalIp (ip: string): void {
    if (this.#closed || ip === this.#localIp) return
    try { this.#sock.setMulticastInterface(ip); this.#localIp = ip } catch (err) { this.#log.debug('ssdp: setMulticastInterface failed', { err, ip }) }
  }

  ssdp (b: Uint8Array, ip: string, port: number): void {
    if (this.#closed) return
    this.#sock.send(b, port, ip, (err) => { if (err != null) this.#log.debug('ssdp send failed', { err, to: ip }) })
  }

  http (id: number, req: HttpRequest): void {
    if (this.#closed) return
    const p = new Promise<void>(resolve => {
      httpExchange(req, (r) => {
        resolve()
        if (!this.#closed) this.onHttp(id, r)
      })
    })
    this.#inFlight.add(p)
    void p.then(() => this.#inFlight.delete(p))
  }

  /** Waits up to `flushMs` for the requests in flight (a delete sent by stop), then closes. Idempotent. */
  async close (flushMs: number): Promise<void> {
    if (this.#closed) return
    if (this.#inFlight.size > 0) {
      let t: NodeJS.Timeout | undefined
      await Promise.race([Promise.all([...this.#inFlight]), new Promise<void>(resolve => { t = setTimeout(resolve, flushMs) })])
      clearTimeout(t)
    }
    this.#closed = true
    this.#sock.close()
  }
}
