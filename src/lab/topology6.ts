/**
 * An IPv6 underlay for the lab (IPv6 outside, issue 11 item 2): one "internet" bridge, a server
 * and clients without NAT, each node's link given only the address families asked for.
 *
 *   createV6Lab({ clients: [{ name, family }] })
 *     inet ns: bridge ─┬─ server ns   SERVER6 (2001:db8:6::1/64) and, with serverV4, SERVER4 (100.64.6.1/24)
 *                      ├─ client i    family 6: 2001:db8:6::(i+2)/64 only · family 4: 100.64.6.(i+2)/24 only
 *                      │              · family 46: both
 *                      └─ ...
 * IPv6 stays on (it is the point) with DAD off (addresses usable at once); a family-6 node has no IPv4
 * address on its link, so every datagram it sends or receives outside the tunnel is IPv6. destroy()
 * removes every namespace, as createTopology's does (also when building fails halfway).
 */
import { addAddress, addBridge, addVeth, createNs, deleteNs, killNsProcesses, LAB_PREFIX, setMaster, sysctls } from './netns.js'
import { newLabId } from './topology.js'

export const V6_NET = '2001:db8:6::'
export const SERVER6 = `${V6_NET}1`
export const SERVER4 = '100.64.6.1'

export type LabFamily = 4 | 6 | 46
/** ip: its IPv6 address (family 6 or 46), else its IPv4 one; ip4: its IPv4 address (family 4 or 46), else null. */
export interface V6LabClient { name: string, family: LabFamily, ns: string, ip: string, ip4: string | null, /** its link device */ dev: string }
export interface V6Lab {
  id: string
  serverNs: string
  clients: V6LabClient[]
  client(name: string): V6LabClient
  destroy(): Promise<void>
}

export async function createV6Lab (opts: { clients: Array<{ name: string, family: LabFamily }>, serverV4?: boolean, id?: string }): Promise<V6Lab> {
  const id = opts.id ?? newLabId()
  const made: string[] = []
  const nsName = (role: string): string => `${LAB_PREFIX}${id}-${role}`
  const dev = (role: string): string => `lw${id}${role}`
  let destroyed: Promise<void> | null = null
  const destroy = (): Promise<void> => {
    destroyed ??= (async () => {
      await Promise.all(made.map((ns) => killNsProcesses(ns).catch(() => {})))
      await Promise.allSettled(made.map((ns) => deleteNs(ns)))
    })()
    return destroyed
  }
  const mk = async (role: string): Promise<string> => {
    const ns = nsName(role)
    await createNs(ns)
    made.push(ns)
    await sysctls(ns, { 'net.ipv6.conf.all.disable_ipv6': 0, 'net.ipv6.conf.default.disable_ipv6': 0, 'net.ipv6.conf.all.accept_dad': 0, 'net.ipv6.conf.default.accept_dad': 0 })
    return ns
  }
  try {
    const inet = await mk('inet')
    const br = dev('br')
    await addBridge(inet, br)
    const attach = async (ns: string, role: string, cidrs: string[]): Promise<void> => {
      await addVeth(ns, dev(role), inet, dev(`${role}p`))
      await setMaster(inet, dev(`${role}p`), br)
      for (const c of cidrs) await addAddress(ns, dev(role), c)
    }
    const serverNs = await mk('srv')
    await attach(serverNs, 's', [`${SERVER6}/64`, ...(opts.serverV4 === true ? [`${SERVER4}/24`] : [])])
    const clients: V6LabClient[] = []
    for (const [i, c] of opts.clients.entries()) {
      const ns = await mk(`c${i}`)
      const ip6 = c.family === 4 ? null : `${V6_NET}${(i + 2).toString(16)}`
      const ip4 = c.family === 6 ? null : `100.64.6.${i + 2}`
      await attach(ns, `c${i}`, [...(ip6 === null ? [] : [`${ip6}/64`]), ...(ip4 === null ? [] : [`${ip4}/24`])])
      clients.push({ name: c.name, family: c.family, ns, ip: ip6 ?? ip4!, ip4, dev: dev(`c${i}`) })
    }
    return {
      id,
      serverNs,
      clients,
      client: (name) => {
        const c = clients.find(x => x.name === name)
        if (c === undefined) throw new Error(`no client "${name}" in lab ${id}`)
        return c
      },
      destroy
    }
  } catch (err) {
    await destroy()
    throw err
  }
}
