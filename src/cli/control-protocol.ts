/**
 * The control protocol between the daemon and the CLI: JSON lines over a unix
 * stream socket. Defined here only; the daemon serves it, `lightweight-tunnel
 * status` (and tests) speak it.
 *
 *   request   {"cmd":"status"}\n             (extensible: {"cmd": NAME, ...args})
 *             {"cmd":"ping","peer":"10.0.0.3","timeoutMs":2000}\n
 *             {"cmd":"netcheck"}\n        (control/observe-requests.ts answers these two)
 *   response  {"ok":true,"result":...}\n
 *          |  {"ok":false,"error":{"code":"ERR_...","message":"..."}}\n
 *
 * One response per request line, in order; a connection may carry several
 * requests. The server is hardened against its clients: a line longer than
 * MAX_REQUEST_BYTES is answered with ERR_REQUEST_TOO_LARGE and the connection
 * closed; malformed JSON or a missing "cmd" is answered ok:false; an idle
 * connection is closed after CONNECTION_IDLE_MS; at most MAX_CONNECTIONS are
 * open at once; a throwing handler becomes an ok:false answer. Nothing a
 * client sends can crash the daemon.
 *
 * Socket file lifecycle: the directory is created 0755, the socket is bound
 * under umask 077 (so it never exists with a wider mode than 0700) and then
 * chmod 0600 (only its owner, normally root, may control the daemon). A socket file left
 * by a dead daemon (connect → ECONNREFUSED) is replaced; a live one is an
 * ERR_CONTROL_SOCKET error. close() removes the file if it is still ours.
 */
import { chmodSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { dirname } from 'node:path'
import { VpnError } from '../errors.js'
import type { Logger } from '../log.js'

export interface ControlRequest { cmd: string, [k: string]: unknown }

export type ControlResponse =
  | { ok: true, result: unknown }
  | { ok: false, error: { code: string, message: string } }

export type ControlHandler = (req: ControlRequest) => Promise<unknown>

export interface ControlServer { close(): Promise<void> }

/** Largest request line accepted (bytes, without the newline). Requests are tiny commands. */
export const MAX_REQUEST_BYTES = 64 * 1024
/** Largest response line the client accepts: a status report of thousands of peers fits. */
export const MAX_RESPONSE_BYTES = 16 * 1024 * 1024
/** A connection with no traffic for this long is closed (ms). */
export const CONNECTION_IDLE_MS = 10_000
/** A connection is closed after this long whatever it does (ms): bounds slow-trickle clients. */
export const CONNECTION_MAX_MS = 60_000
/** Concurrent connections served; more are closed at once. */
export const MAX_CONNECTIONS = 32

/** An ok:false answer from the daemon; `remoteCode` is the daemon's error code. */
export class ControlError extends VpnError {
  readonly remoteCode: string
  constructor (remoteCode: string, message: string) {
    super('ERR_CONTROL_SOCKET', message)
    this.name = 'ControlError'
    this.remoteCode = remoteCode
  }
}

function errno (err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code
}

/** Tries to connect: 'live', 'refused' (stale socket file) or 'absent'. */
function probe (path: string): Promise<'live' | 'refused' | 'absent'> {
  return new Promise((resolve, reject) => {
    const s = connect(path)
    s.once('connect', () => { s.destroy(); resolve('live') })
    s.once('error', (err) => {
      s.destroy()
      const code = errno(err)
      if (code === 'ECONNREFUSED') resolve('refused')
      else if (code === 'ENOENT') resolve('absent')
      else reject(err)
    })
  })
}

/**
 * Serves the control protocol on the unix socket `path`. Resolves once
 * listening. Rejects with ERR_CONTROL_SOCKET when another daemon is listening
 * there, the path is not a socket, or binding fails.
 */
export async function startControlServer (path: string, handler: ControlHandler, log: Logger): Promise<ControlServer> {
  const fail = (message: string, cause?: unknown, hint?: string): VpnError =>
    new VpnError('ERR_CONTROL_SOCKET', message, { cause, hint })
  try {
    // Created 0755 whatever the umask: the socket itself (0600) is the access check.
    if (mkdirSync(dirname(path), { recursive: true, mode: 0o755 }) !== undefined) chmodSync(dirname(path), 0o755)
  } catch (err) {
    throw fail(`cannot create the control socket directory ${dirname(path)}: ${(err as Error).message}`, err)
  }
  let existing = false
  try {
    existing = lstatSync(path).isSocket()
    if (!existing) throw fail(`cannot use ${path} as the control socket: it exists and is not a socket`, undefined, 'remove it or pass another --control path')
  } catch (err) {
    if (err instanceof VpnError) throw err
    if (errno(err) !== 'ENOENT') throw fail(`cannot use ${path} as the control socket: ${(err as Error).message}`, err)
  }
  if (existing) {
    let state: 'live' | 'refused' | 'absent'
    try {
      state = await probe(path)
    } catch (err) {
      throw fail(`cannot check the control socket ${path}: ${(err as Error).message}`, err)
    }
    if (state === 'live') {
      throw fail(`another daemon already listens on ${path}`, undefined,
        'stop it first, or give this daemon another --dev or --control')
    }
    if (state === 'refused') {
      log.info('removing stale control socket', { path })
      try { unlinkSync(path) } catch (err) { if (errno(err) !== 'ENOENT') throw fail(`cannot remove the stale control socket ${path}: ${(err as Error).message}`, err) }
    }
  }

  const conns = new Set<Socket>()
  const server: Server = createServer({ allowHalfOpen: true }, (conn) => {
    if (conns.size >= MAX_CONNECTIONS) {
      log.warn('control connection refused: too many open', { max: MAX_CONNECTIONS })
      conn.destroy()
      return
    }
    conns.add(conn)
    conn.once('close', () => conns.delete(conn))
    serveConnection(conn, handler, log)
  })
  server.on('error', (err) => { log.error('control socket error', { path, err }) })

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => {
      reject(errno(err) === 'EADDRINUSE'
        ? fail(`another daemon already listens on ${path}`, err, 'stop it first, or give this daemon another --dev or --control')
        : fail(`cannot listen on the control socket ${path}: ${err.message}`, err))
    }
    server.once('error', onError)
    // bind() creates the socket file with 0777 & ~umask, synchronously inside listen(): with umask 077 it is
    // 0700 from its first instant (never group/other-accessible, not even until the chmod below).
    const umask = process.umask(0o077)
    try {
      server.listen(path, () => { server.off('error', onError); resolve() })
    } finally {
      process.umask(umask)
    }
  })
  let ino: number | null = null
  try {
    chmodSync(path, 0o600)
    ino = lstatSync(path).ino
  } catch (err) {
    server.close()
    throw fail(`cannot restrict the control socket ${path} to its owner: ${(err as Error).message}`, err)
  }
  log.debug('control socket listening', { path })

  let closing: Promise<void> | null = null
  return {
    close (): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        for (const c of conns) c.destroy()
        server.close(() => {
          // libuv unlinks the path itself; remove it only if it is still our socket.
          try {
            if (lstatSync(path).ino === ino) unlinkSync(path)
          } catch { /* already gone */ }
          resolve()
        })
      })
      return closing
    }
  }
}

/** Reads request lines from one connection and answers each in order. */
function serveConnection (conn: Socket, handler: ControlHandler, log: Logger): void {
  let buffered: Buffer[] = []
  let bufferedLen = 0
  let queue: Promise<void> = Promise.resolve()
  /** Set once a request was too large: further input is discarded. */
  let rejected = false
  conn.setTimeout(CONNECTION_IDLE_MS, () => { log.debug('control connection idle, closing'); conn.destroy() })
  const lifetime = setTimeout(() => { log.debug('control connection open too long, closing'); conn.destroy() }, CONNECTION_MAX_MS)
  lifetime.unref()
  conn.on('error', (err) => { log.debug('control connection error', { err }) })
  conn.once('close', () => { clearTimeout(lifetime) })

  const send = (res: ControlResponse): void => {
    if (conn.destroyed || !conn.writable) return
    let line: string
    try {
      line = JSON.stringify(res)
    } catch (err) {
      line = JSON.stringify({ ok: false, error: { code: 'ERR_INTERNAL', message: `the answer could not be encoded: ${(err as Error).message}` } })
    }
    conn.write(line + '\n')
  }
  const enqueue = (line: Buffer): void => {
    queue = queue.then(async () => { send(await answer(line, handler, log)) })
  }

  conn.on('data', (chunk: Buffer) => {
    if (rejected) return
    let start = 0
    for (;;) {
      const nl = chunk.indexOf(0x0a, start)
      if (nl === -1) break
      const part = chunk.subarray(start, nl)
      start = nl + 1
      if (bufferedLen + part.length > MAX_REQUEST_BYTES) { tooLarge(); return }
      const line = bufferedLen === 0 ? part : Buffer.concat([...buffered, part])
      buffered = []
      bufferedLen = 0
      enqueue(line)
    }
    const rest = chunk.subarray(start)
    if (rest.length > 0) {
      if (bufferedLen + rest.length > MAX_REQUEST_BYTES) { tooLarge(); return }
      buffered.push(Buffer.from(rest))
      bufferedLen += rest.length
    }
  })
  conn.on('end', () => {
    if (rejected) return
    // The peer half-closed: a final line without newline still counts; answer, then close.
    if (bufferedLen > 0) { enqueue(Buffer.concat(buffered)); buffered = []; bufferedLen = 0 }
    void queue.then(() => { if (!conn.destroyed) conn.end() })
  })

  function tooLarge (): void {
    rejected = true
    buffered = []
    bufferedLen = 0
    log.warn('control request too large, closing the connection', { max: MAX_REQUEST_BYTES })
    void queue.then(() => {
      send({ ok: false, error: { code: 'ERR_REQUEST_TOO_LARGE', message: `request longer than ${MAX_REQUEST_BYTES} bytes` } })
      if (!conn.destroyed) conn.end()
      // Input is discarded from now on; do not wait for a client that keeps sending.
      setTimeout(() => conn.destroy(), 1000).unref()
    })
  }
}

async function answer (line: Buffer, handler: ControlHandler, log: Logger): Promise<ControlResponse> {
  const text = line.toString('utf8').replace(/\r$/, '')
  if (text.trim() === '') return { ok: false, error: { code: 'ERR_BAD_REQUEST', message: 'empty request; expected a JSON object such as {"cmd":"status"}' } }
  let req: unknown
  try {
    req = JSON.parse(text)
  } catch (err) {
    log.debug('malformed control request', { err })
    return { ok: false, error: { code: 'ERR_BAD_REQUEST', message: `malformed JSON: ${(err as Error).message}` } }
  }
  if (req === null || typeof req !== 'object' || Array.isArray(req) || typeof (req as { cmd?: unknown }).cmd !== 'string') {
    return { ok: false, error: { code: 'ERR_BAD_REQUEST', message: 'expected a JSON object with a string "cmd", such as {"cmd":"status"}' } }
  }
  try {
    const result = await handler(req as ControlRequest)
    return { ok: true, result: result === undefined ? null : result }
  } catch (err) {
    if (err instanceof VpnError) return { ok: false, error: { code: err.code, message: err.message } }
    log.warn('control command failed', { cmd: (req as ControlRequest).cmd, err })
    return { ok: false, error: { code: 'ERR_INTERNAL', message: err instanceof Error ? err.message : String(err) } }
  }
}

/** The message for "nobody listens on PATH" (also used by the CLI). */
export function notRunningMessage (path: string): string {
  return `no lightweight-tunnel daemon is listening on ${path} — is it running? pass --control or --dev if it uses another device`
}

/**
 * Sends one request and resolves with the daemon's `result`. Rejects with
 * ERR_DAEMON_NOT_RUNNING when nothing listens on `path` (ENOENT, ECONNREFUSED),
 * ControlError (ERR_CONTROL_SOCKET, `.remoteCode`) when the daemon answers
 * ok:false, and ERR_CONTROL_SOCKET on timeouts, permission errors and garbled answers.
 */
export function controlRequest (path: string, req: ControlRequest, timeoutMs = 3000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let len = 0
    let settled = false
    const sock = connect(path)
    const finish = (err: Error | null, value?: unknown): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      sock.destroy()
      if (err !== null) reject(err)
      else resolve(value)
    }
    const timer = setTimeout(() => {
      finish(new VpnError('ERR_CONTROL_SOCKET', `the daemon on ${path} did not answer within ${timeoutMs} ms`, {
        hint: 'it may be overloaded or stuck; check its log'
      }))
    }, timeoutMs)
    sock.once('connect', () => { sock.write(JSON.stringify(req) + '\n') })
    sock.on('error', (err) => {
      const code = errno(err)
      if (code === 'ENOENT' || code === 'ECONNREFUSED' || code === 'ENOTDIR') {
        finish(new VpnError('ERR_DAEMON_NOT_RUNNING', notRunningMessage(path), { cause: err }))
      } else if (code === 'EACCES' || code === 'EPERM') {
        finish(new VpnError('ERR_CONTROL_SOCKET', `permission denied on the control socket ${path}`, {
          cause: err, hint: 'run this as the daemon\'s user (normally root): the socket is mode 0600'
        }))
      } else {
        finish(new VpnError('ERR_CONTROL_SOCKET', `cannot talk to the daemon on ${path}: ${err.message}`, { cause: err }))
      }
    })
    sock.on('data', (chunk: Buffer) => {
      if (settled) return
      const nl = chunk.indexOf(0x0a)
      if (nl === -1) {
        chunks.push(chunk)
        len += chunk.length
        if (len > MAX_RESPONSE_BYTES) finish(new VpnError('ERR_CONTROL_SOCKET', `the daemon on ${path} sent an answer longer than ${MAX_RESPONSE_BYTES} bytes`))
        return
      }
      chunks.push(chunk.subarray(0, nl))
      parse(Buffer.concat(chunks).toString('utf8'))
    })
    sock.once('close', () => {
      finish(new VpnError('ERR_CONTROL_SOCKET', `the daemon on ${path} closed the connection without answering`))
    })

    function parse (text: string): void {
      let res: unknown
      try { res = JSON.parse(text) } catch {
        finish(new VpnError('ERR_CONTROL_SOCKET', `the daemon on ${path} sent a malformed answer`))
        return
      }
      const r = res as Partial<ControlResponse> | null
      if (r !== null && typeof r === 'object' && r.ok === true && 'result' in r) { finish(null, r.result); return }
      if (r !== null && typeof r === 'object' && r.ok === false && typeof r.error === 'object' && r.error !== null) {
        finish(new ControlError(String(r.error.code), String(r.error.message)))
        return
      }
      finish(new VpnError('ERR_CONTROL_SOCKET', `the daemon on ${path} sent an answer of an unknown shape`))
    }
  })
}
