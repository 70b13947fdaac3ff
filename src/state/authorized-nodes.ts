/**
 * Strict mode's list of admitted nodes (`--authorized-nodes FILE`, config
 * `authorizedNodes`): one `PUBKEY ADDRESS` per line, tinc/WireGuard style.
 *
 *   # laptop
 *   mJ0cW5n1…base64…=  10.0.0.2
 *   xq9sP0…base64…=    10.0.0.3   # build box
 *
 * `#` starts a comment (whole line or the rest of one); blank lines are
 * skipped. A key appears once and an address once. Any malformed line makes
 * the whole file invalid: the error names FILE:LINE and the expected form,
 * so a typo never admits or locks out a node silently.
 *
 * Flow: daemon.ts loads the file at start and on SIGHUP
 * (loadAuthorizedNodes) → FileRegistry.setAuthorized (check answers
 * 'not-authorized' for any key/address pair not listed) → on reload,
 * `changes(old, next)` names the keys that disappeared (the server revokes
 * them) and the ones that came (their revocation, if any, is lifted).
 */
import { readFileSync } from 'node:fs'
import { VpnError } from '../errors.js'
import { intToIp, ipToInt, isIpv4 } from '../wire/addr.js'
import { keyFromText } from '../identity/key-text.js'
import { keyId } from '../control/registry.js'

export interface AuthorizedNode { readonly key: Uint8Array, readonly address: number, readonly line: number }

/** The expected form, as error messages state it. */
export const AUTHORIZED_LINE_FORM = '"PUBKEY ADDRESS": a node\'s public key in base64 (lightweight-tunnel pubkey < node.key prints it; so do the node\'s status and start-up log) and its tunnel IPv4 address, e.g. "mJ0c…= 10.0.0.2"'

/** Largest file accepted (bytes): 65,536 lines of ~60 bytes fit. */
export const AUTHORIZED_MAX_BYTES = 8 * 1024 * 1024

export class AuthorizedNodes {
  readonly file: string
  readonly #byKey: Map<string, AuthorizedNode>
  constructor (file: string, nodes: readonly AuthorizedNode[]) {
    this.file = file
    this.#byKey = new Map(nodes.map(n => [keyId(n.key), n]))
  }

  get size (): number { return this.#byKey.size }
  /** The address listed for this key, or null when the key is not listed. */
  addressOf (key: Uint8Array): number | null { return this.#byKey.get(keyId(key))?.address ?? null }
  admits (key: Uint8Array, address: number): boolean { return this.addressOf(key) === address >>> 0 }
  nodes (): AuthorizedNode[] { return [...this.#byKey.values()] }
}

/**
 * Parses the file's text. Throws ERR_CONFIG_INVALID listing every bad line
 * (FILE:LINE: what is wrong; the expected form).
 */
export function parseAuthorizedNodes (text: string, file: string): AuthorizedNodes {
  const problems: string[] = []
  const nodes: AuthorizedNode[] = []
  const keyLine = new Map<string, number>()
  const addrLine = new Map<number, number>()
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const n = i + 1
    const body = lines[i]!.replace(/\r$/, '').replace(/#.*$/, '').trim()
    if (body === '') continue
    const fields = body.split(/[ \t]+/)
    const at = `${file}:${n}`
    if (fields.length !== 2) { problems.push(`${at}: expected ${AUTHORIZED_LINE_FORM}; got ${fields.length} field${fields.length === 1 ? '' : 's'}`); continue }
    const key = keyFromText(fields[0]!)
    const addrOk = isIpv4(fields[1]!)
    if (key === null) problems.push(`${at}: ${JSON.stringify(fields[0]!.slice(0, 60))} is not a public key (44 characters of base64 encoding 32 bytes); expected ${AUTHORIZED_LINE_FORM}`)
    if (!addrOk) problems.push(`${at}: ${JSON.stringify(fields[1]!.slice(0, 60))} is not an IPv4 address; expected ${AUTHORIZED_LINE_FORM}`)
    if (key === null || !addrOk) continue
    const address = ipToInt(fields[1]!) >>> 0
    const id = keyId(key)
    const k = keyLine.get(id)
    if (k !== undefined) { problems.push(`${at}: this key is already listed on line ${k}; a node key holds one address`); continue }
    const a = addrLine.get(address)
    if (a !== undefined) { problems.push(`${at}: ${intToIp(address)} is already listed on line ${a} for another key; an address belongs to one node`); continue }
    keyLine.set(id, n)
    addrLine.set(address, n)
    nodes.push({ key, address, line: n })
  }
  if (problems.length > 0) {
    throw new VpnError('ERR_CONFIG_INVALID', problems.slice(0, 20).join('\n') + (problems.length > 20 ? `\n… and ${problems.length - 20} more` : ''), {
      hint: `fix ${file} (one "PUBKEY ADDRESS" per line, # for comments): a list with a bad line is never used`
    })
  }
  return new AuthorizedNodes(file, nodes)
}

/** Reads and parses FILE; a missing or unreadable file is ERR_CONFIG_INVALID naming it. */
export function loadAuthorizedNodes (file: string): AuthorizedNodes {
  let text: string
  try {
    const buf = readFileSync(file)
    if (buf.length > AUTHORIZED_MAX_BYTES) throw new Error(`larger than ${AUTHORIZED_MAX_BYTES} bytes`)
    text = buf.toString('utf8')
  } catch (err) {
    throw new VpnError('ERR_CONFIG_INVALID', `cannot read the authorized nodes file ${file}: ${(err as Error).message}`, {
      cause: err, hint: 'create it (one "PUBKEY ADDRESS" per line) or drop --authorized-nodes / "authorizedNodes" to admit every holder of the network key'
    })
  }
  return parseAuthorizedNodes(text, file)
}

/**
 * What a reload of the list changed: keys no longer listed (the server
 * revokes them: sessions torn down, peers told, refused from now on) and keys
 * newly listed (listing a key is an explicit admission: a revocation of it is
 * lifted). Only between two lists: turning strict mode on or off revokes and
 * admits nobody (the server still drops live nodes the new list does not admit).
 */
export function authorizedChanges (old: AuthorizedNodes | null, next: AuthorizedNodes | null): { gone: Uint8Array[], added: Uint8Array[] } {
  const gone: Uint8Array[] = []
  const added: Uint8Array[] = []
  if (old === null || next === null) return { gone, added }
  for (const n of old.nodes()) if (next.addressOf(n.key) === null) gone.push(n.key)
  for (const n of next.nodes()) if (old.addressOf(n.key) === null) added.push(n.key)
  return { gone, added }
}
