/**
 * Stretches the user's network secret (config `key`) into the 32-byte Noise
 * pre-shared key. Called once per daemon start, on the main thread, before
 * any handshake; the result is the only form of the secret the rest of the
 * daemon holds.
 *
 *   psk = scrypt(P = UTF-8(secret), S = "lightweight-tunnel/v1/psk",
 *                N = 2^15, r = 8, p = 1, dkLen = 32)          (RFC 7914)
 *
 * The secret is used byte-exactly: no trimming, no Unicode normalization.
 * The salt is fixed (not random) because every member of a network must
 * derive the same psk from the same secret without exchanging anything; it
 * still separates our psk from other uses of the same password.
 *
 * Cost, deliberately slow: measured 70-85 ms wall time and 32 MiB of memory
 * per call with Node 20.20 (OpenSSL scrypt) on the development machine
 * (x86-64 container; see test/crypto/kdf.test.ts, which logs the figure).
 * Never call it per packet or per handshake. Runs on libuv's thread pool, so
 * it does not block the event loop.
 */
import { scrypt } from 'node:crypto'
import { VpnError } from '../errors.js'
import { KEY_LEN, PSK_SALT, PSK_SCRYPT_MAXMEM, PSK_SCRYPT_N, PSK_SCRYPT_P, PSK_SCRYPT_R } from '../wire/constants.js'

/**
 * Derives the network psk (32 bytes) from `secret`. Rejects with
 * VpnError('ERR_CONFIG_INVALID') for an empty or non-string secret.
 */
export async function derivePsk (secret: string): Promise<Uint8Array> {
  if (typeof secret !== 'string' || secret.length === 0) {
    throw new VpnError('ERR_CONFIG_INVALID', 'the network key is empty',
      { hint: 'set the same non-empty key on the server and on every client' })
  }
  return await new Promise<Uint8Array>((resolve, reject) => {
    scrypt(Buffer.from(secret, 'utf8'), Buffer.from(PSK_SALT, 'ascii'), KEY_LEN,
      { N: PSK_SCRYPT_N, r: PSK_SCRYPT_R, p: PSK_SCRYPT_P, maxmem: PSK_SCRYPT_MAXMEM },
      (err, key) => {
        if (err !== null) {
          reject(new VpnError('ERR_CONFIG_INVALID', `cannot derive the network key: ${err.message}`, { cause: err }))
          return
        }
        // A plain Uint8Array (not a Buffer from the shared pool): safe to keep and to wipe.
        resolve(new Uint8Array(key))
      })
  })
}
