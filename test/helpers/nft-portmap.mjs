/**
 * The lab gateways' mapping table (pcp-responder.mjs, upnp-responder.mjs):
 * each port mapping is an element of an nftables DNAT map (table `ip lwt_pm`,
 * map `pm`: external UDP port → client address . port) whose rule sits before
 * the lab's own NAT in the router's prerouting hook, so the kernel forwards
 * WAN packets for the external port to the client. Mappings go away on
 * delete, at the end of their lifetime (0: never), and with the table at exit.
 * Plain JavaScript, run without the TypeScript loader.
 */
import { execFileSync } from 'node:child_process'

const nft = (script) => execFileSync('nft', ['-f', '-'], { input: script })

/** Creates (or recreates) the table; `say` gets one event object per change. */
export function createPortMapTable (wan, wanIp, say) {
  nft([
    'add table ip lwt_pm', 'delete table ip lwt_pm',
    'table ip lwt_pm {',
    '  map pm { type inet_service : ipv4_addr . inet_service; }',
    '  chain pre {',
    '    type nat hook prerouting priority dstnat - 10; policy accept;',
    `    iifname "${wan}" meta l4proto udp dnat ip to udp dport map @pm`,
    '  }',
    '}'
  ].join('\n') + '\n')

  /** external port → { client, internalPort, timer, proto } */
  const mappings = new Map()
  const keyOf = (client, port) => `${client}:${port}`
  const byClient = new Map() // client:internalPort → external port

  function unmap (ext, event) {
    const m = mappings.get(ext)
    if (!m) return false
    clearTimeout(m.timer)
    mappings.delete(ext)
    byClient.delete(keyOf(m.client, m.internalPort))
    nft(`delete element ip lwt_pm pm { ${ext} }\n`)
    say({ event, external: `${wanIp}:${ext}`, client: `${m.client}:${m.internalPort}`, proto: m.proto })
    return true
  }

  /**
   * Map (or renew) client:internalPort at `suggested` (another free port when
   * it is taken or below 1024, unless `exact`: then null); lifetime 0 never
   * expires. Returns the external port.
   */
  function map (client, internalPort, suggested, lifetime, proto, exact = false) {
    let ext = byClient.get(keyOf(client, internalPort))
    const renew = ext !== undefined
    if (renew && exact && ext !== suggested) return null
    if (!renew) {
      if (exact && (mappings.has(suggested) || suggested < 1)) return null
      ext = suggested >= 1024 && !mappings.has(suggested) ? suggested : 0
      if (exact) ext = suggested
      while (ext === 0 || mappings.has(ext)) ext = 20000 + Math.floor(Math.random() * 40000)
      nft(`add element ip lwt_pm pm { ${ext} : ${client} . ${internalPort} }\n`)
      byClient.set(keyOf(client, internalPort), ext)
    }
    const m = mappings.get(ext) ?? { client, internalPort, proto }
    clearTimeout(m.timer)
    m.timer = lifetime > 0 ? setTimeout(() => { unmap(ext, 'expire') }, lifetime * 1000) : undefined
    mappings.set(ext, m)
    say({ event: renew ? 'renew' : 'map', external: `${wanIp}:${ext}`, client: `${client}:${internalPort}`, lifetime, proto })
    return ext
  }

  return {
    map,
    unmap,
    /** The external port of client:internalPort, or undefined. */
    externalOf: (client, internalPort) => byClient.get(keyOf(client, internalPort)),
    /** The mapping at external port `ext`, or undefined. */
    at: (ext) => mappings.get(ext),
    destroy () { try { nft('add table ip lwt_pm\ndelete table ip lwt_pm\n') } catch { /* best effort */ } }
  }
}
