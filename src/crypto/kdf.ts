/**
 * Stretches the user's network secret (config `key`) into the 32-byte Noise
 * pre-shared key. Called once per daemon start, on the main thread, before
 * any handshake; the result is the only form of the secret the rest of the
 * daemon holds.
 *
 *   psk  = scrypt(P = UTF-8(secret), S = salt, N = 2^15, r = 8, p = 1, dkLen = 32)   (RFC 7914)
 *   salt = "lightweight-tunnel/v2/psk/" || network "/" prefix [ || "/" || UTF-8(name) ]
 *          e.g. "lightweight-tunnel/v2/psk/10.0.0.0/24", "…/10.0.0.0/24/office"
 *
 * The secret is used byte-exactly: no trimming, no Unicode normalization.
 * The salt is per network but derived, not random: every member computes it
 * from what it already has (the tunnel network of its --tun address and
 * prefix, and the optional --network-name), so no config changes and
 * nothing is exchanged. Two networks with the same secret then get
 * different psks, and one precomputed guess table no longer serves every
 * network (it did with the v1 constant salt). Two networks with the same
 * secret AND the same CIDR still share a psk unless they are named apart.
 *
 * Cost, deliberately slow: measured 70-85 ms wall time and 32 MiB of memory
 * per call with Node 20.20 (OpenSSL scrypt) on the development machine
 * (x86-64 container; see test/crypto/kdf.test.ts, which logs the figure).
 * Never call it per packet or per handshake. Runs on libuv's thread pool, so
 * it does not block the event loop.
 */
import { scrypt } from 'node:crypto'
import { VpnError } from '../errors.js'
import { intToIp, networkAddress } from '../wire/addr.js'
import { KEY_LEN, PSK_SALT_PREFIX, PSK_SCRYPT_MAXMEM, PSK_SCRYPT_N, PSK_SCRYPT_P, PSK_SCRYPT_R } from '../wire/constants.js'

/** What a node knows of its network: its tunnel address and prefix (config `tun`), and the optional name. */
export interface PskNetwork {
  /** Any address of the network, host order (the node's own --tun address). */
  readonly ip: number
  readonly prefix: number
  /** --network-name, or null (unnamed). */
  readonly name: string | null
}

/** The scrypt salt of a network (bytes, as above): the same on every node of that network. */
export function pskSalt (net: PskNetwork): Uint8Array {
  if (!Number.isInteger(net.prefix) || net.prefix < 0 || net.prefix > 32) {
    throw new VpnError('ERR_CONFIG_INVALID', `network prefix must be 0..32, got ${String(net.prefix)}`)
  }
  const cidr = `${intToIp(networkAddress(net.ip >>> 0, net.prefix))}/${net.prefix}`
  return new Uint8Array(Buffer.from(`${PSK_SALT_PREFIX}${cidr}${net.name === null ? '' : `/${net.name}`}`, 'utf8'))
}

/**
 * Derives the network psk (32 bytes) from `secret` and the network's salt
 * (pskSalt). Rejects with VpnError('ERR_CONFIG_INVALID') for an empty or
 * non-string secret.
 */
export async function derivePsk (secret: string, net: PskNetwork): Promise<Uint8Array> {
  if (typeof secret !== 'string' || secret.length === 0) {
    throw new VpnError('ERR_CONFIG_INVALID', 'the network key is empty',
      { hint: 'set the same non-empty key on the server and on every client' })
  }
  return await new Promise<Uint8Array>((resolve, reject) => {
    const password = Buffer.from(secret, 'utf8')
    scrypt(password, pskSalt(net), KEY_LEN,
      { N: PSK_SCRYPT_N, r: PSK_SCRYPT_R, p: PSK_SCRYPT_P, maxmem: PSK_SCRYPT_MAXMEM },
      (err, key) => {
        password.fill(0) // our copy of the secret's bytes (the string itself cannot be wiped)
        if (err !== null) {
          reject(new VpnError('ERR_CONFIG_INVALID', `cannot derive the network key: ${err.message}`, { cause: err }))
          return
        }
        // A plain Uint8Array (not a Buffer from the shared pool): safe to keep and to wipe.
        const psk = new Uint8Array(key)
        key.fill(0)
        resolve(psk)
      })
  })
}
