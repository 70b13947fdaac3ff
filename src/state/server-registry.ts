/**
 * The server's registry as the daemon sets it up: FileRegistry in
 * <state-dir>/registry.json plus strict mode's list (--authorized-nodes),
 * opened at start and re-read on SIGHUP. daemon.ts calls these two and
 * nothing else; the server only sees the NodeRegistry interface.
 *
 *   start:  openServerRegistry(stateDir, authorizedFile)  → FileRegistry (+ list)
 *   SIGHUP: reloadAuthorized(registry, file, server)      → keys no longer listed revoked
 *           (removeNodes: unbound, refused, disconnected), keys listed anew
 *           re-admitted, live nodes the new list does not admit disconnected
 */
import { join } from 'node:path'
import type { Logger } from '../log.js'
import { describeError } from '../errors.js'
import { authorizedChanges, loadAuthorizedNodes, type AuthorizedNodes } from './authorized-nodes.js'
import { FileRegistry, REGISTRY_FILE } from './registry-file.js'
import { removeNodes, type NodesAdmin } from '../control/nodes.js'
import { fingerprint, keyToText } from '../identity/key-text.js'

/** Throws ERR_STATE (a damaged registry) or ERR_CONFIG_INVALID (a bad list), each naming the file. */
export function openServerRegistry (stateDir: string, authorizedFile: string | null, log: Logger): FileRegistry {
  const path = join(stateDir, REGISTRY_FILE)
  const registry = new FileRegistry(path, {
    onWriteError: (err) => { log.error(`cannot write the node registry ${path}: ${err.message}; it is kept in memory and written again at the next change`) }
  })
  if (authorizedFile !== null) {
    const list = loadAuthorizedNodes(authorizedFile)
    registry.setAuthorized(list)
    log.info(`strict mode: ${list.size} node${list.size === 1 ? '' : 's'} admitted by ${authorizedFile}`)
  }
  const n = registry.list().length
  const r = registry.revoked().length
  log.info(`node registry ${path}: ${n} address${n === 1 ? '' : 'es'} bound, ${r} key${r === 1 ? '' : 's'} revoked`)
  return registry
}

/** What the reload needs of the server. */
export interface ReloadTarget { nodesAdmin: NodesAdmin, dropUnadmitted(why: string): number }

/**
 * SIGHUP: reads the list again (`file` null: strict mode off). A list that
 * cannot be read keeps the running one (logged). Returns false then.
 */
export function reloadAuthorized (registry: FileRegistry, file: string | null, server: ReloadTarget, log: Logger): boolean {
  let next: AuthorizedNodes | null = null
  if (file !== null) {
    try {
      next = loadAuthorizedNodes(file)
    } catch (err) {
      log.error(`SIGHUP: the running list of admitted nodes is kept: ${describeError(err)}`)
      return false
    }
  }
  const old = registry.authorized as AuthorizedNodes | null
  const { gone, added } = authorizedChanges(old, next)
  registry.setAuthorized(next)
  for (const key of added) if (registry.allow(key)) log.info(`SIGHUP: ${fingerprint(key)} is listed again in ${file}: its revocation is lifted`)
  for (const key of gone) {
    const c = removeNodes(keyToText(key), server.nodesAdmin)
    log.warn(`SIGHUP: ${fingerprint(key)} is no longer listed in ${old!.file}: revoked${c.nodes.length > 0 ? `, ${c.nodes.map(n => n.address).join(', ')} freed` : ''}${c.disconnected > 0 ? ', disconnected' : ''}`)
  }
  const dropped = server.dropUnadmitted(next === null ? 'strict mode is off' : `not admitted by ${next.file}`)
  if (next !== null) log.info(`SIGHUP: ${next.size} node${next.size === 1 ? '' : 's'} admitted by ${next.file}${dropped > 0 ? `; ${dropped} live node${dropped === 1 ? '' : 's'} not listed disconnected` : ''}`)
  else if (old !== null) log.info('SIGHUP: strict mode is off: any holder of the network key may register a free address')
  return true
}
