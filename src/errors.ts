/**
 * Typed error catalogue. Every condition a user can meet has a stable `code`;
 * callers match on `code`, never on message text. Per-packet rejects on the hot
 * path are counters (see dataplane/stats.ts), never thrown errors.
 */
export type ErrorCode =
  | 'ERR_CONFIG_INVALID'
  | 'ERR_USAGE'
  | 'ERR_TUN_UNAVAILABLE'
  | 'ERR_TUN_PERMISSION'
  | 'ERR_TUN_NAME_TAKEN'
  | 'ERR_TUN_GONE'
  | 'ERR_TUN_OPEN'
  | 'ERR_ADDRESS_IN_USE'
  | 'ERR_SOCKET'
  | 'ERR_NATIVE_ADDON'
  | 'ERR_IPROUTE'
  | 'ERR_IPV6_DISABLED'
  | 'ERR_CONTROL_SOCKET'
  | 'ERR_DAEMON_NOT_RUNNING'
  | 'ERR_WIRE_DECODE'
  | 'ERR_HANDSHAKE'
  | 'ERR_AUTH_FAILED'
  | 'ERR_WORKER'
  | 'ERR_INSTALL'
  | 'ERR_METRICS'
  | 'ERR_STATE'
  | 'ERR_STATE_DIR'
  | 'ERR_NODE_KEY'
  | 'ERR_FAKETCP'

export class VpnError extends Error {
  readonly code: ErrorCode
  /** A short hint telling the user what to do about it. */
  readonly hint: string | undefined
  constructor (code: ErrorCode, message: string, options: { cause?: unknown, hint?: string } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'VpnError'
    this.code = code
    this.hint = options.hint
  }
}

/** Raised by wire decoders: the input is not a valid message of the expected kind. */
export class WireError extends VpnError {
  constructor (message: string) {
    super('ERR_WIRE_DECODE', message)
    this.name = 'WireError'
  }
}

export function isVpnError (err: unknown, code?: ErrorCode): err is VpnError {
  return err instanceof VpnError && (code === undefined || err.code === code)
}

/** Formats an error for a human: message, then the hint on its own line. */
export function describeError (err: unknown): string {
  if (err instanceof VpnError) return err.hint ? `${err.message}\n  hint: ${err.hint}` : err.message
  if (err instanceof Error) return err.message
  return String(err)
}
