/**
 * Readiness for the service manager: sd_notify(3) over $NOTIFY_SOCKET
 * (systemd's Type=notify; packaging/systemd/lightweight-tunnel@.service).
 * The daemon says READY=1 once its TUN device, UDP socket and control socket
 * are up, STOPPING=1 when it begins to shut down, and STATUS=<one line> for
 * `systemctl status`. Outside systemd ($NOTIFY_SOCKET unset) every call does
 * nothing.
 *
 * Never throws: a failed send is logged once as a warning (systemd then
 * times the start out, which names the unit) and later sends are still
 * tried. The datagram goes out through the addon (native/notify.c): Node's
 * dgram has no unix datagram sockets.
 */
import type { Logger } from '../log.js'
import { loadNative, type Native } from '../dataplane/native.js'

export interface Notifier {
  /** READY=1 plus STATUS=status. */
  ready (status: string): void
  /** STOPPING=1 plus STATUS=status. */
  stopping (status: string): void
  /** STATUS=status alone. */
  status (status: string): void
}

/** A notifier that does nothing (no $NOTIFY_SOCKET). */
export const NO_NOTIFY: Notifier = { ready () {}, stopping () {}, status () {} }

/** STATUS= takes one line: newlines would start new assignments. */
function oneLine (s: string): string {
  return s.replace(/[\r\n]+/g, ' ').slice(0, 400)
}

/**
 * The notifier for this process: NO_NOTIFY when env.NOTIFY_SOCKET is unset
 * or empty. `native` is injectable for tests (default: the addon).
 */
export function createNotifier (env: NodeJS.ProcessEnv, log: Logger, native?: Pick<Native, 'sdNotify'>): Notifier {
  const socket = env.NOTIFY_SOCKET
  if (socket === undefined || socket === '') return NO_NOTIFY
  let warned = false
  const send = (message: string): void => {
    try {
      (native ?? loadNative()).sdNotify(socket, message)
    } catch (err) {
      if (warned) return
      warned = true
      log.warn(`cannot notify the service manager on ${socket}`, { err })
    }
  }
  return {
    ready: (status) => send(`READY=1\nSTATUS=${oneLine(status)}`),
    stopping: (status) => send(`STOPPING=1\nSTATUS=${oneLine(status)}`),
    status: (status) => send(`STATUS=${oneLine(status)}`)
  }
}
