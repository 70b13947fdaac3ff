/**
 * `lightweight-tunnel genkey` and `lightweight-tunnel pubkey`, as `wg genkey`
 * and `wg pubkey`: genkey prints a new node private key (base64, one line);
 * pubkey reads a private key on stdin and prints its public key. Both are
 * local (no daemon). Typical use:
 *
 *   umask 077; lightweight-tunnel genkey > node.key
 *   lightweight-tunnel pubkey < node.key
 */
import { generateStaticKey, staticKey } from '../crypto/noise.js'
import { VpnError } from '../errors.js'
import { keyFromText, keyToText } from '../identity/key-text.js'

/** A new private key, as one line. */
export function genkeyText (): string {
  return keyToText(generateStaticKey().secret) + '\n'
}

/** The public key of the private key in `input`, as one line; ERR_NODE_KEY when `input` is not one. */
export function pubkeyText (input: string): string {
  const secret = keyFromText(input)
  if (secret === null) {
    throw new VpnError('ERR_NODE_KEY', 'pubkey: standard input is not a private key: expected one line of base64 (44 characters, as "lightweight-tunnel genkey" prints)', {
      hint: 'lightweight-tunnel genkey | lightweight-tunnel pubkey'
    })
  }
  return keyToText(staticKey(secret).pub) + '\n'
}

/** All of standard input as text. */
export async function readStdin (): Promise<string> {
  const chunks: Buffer[] = []
  for await (const c of process.stdin) chunks.push(c as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}
