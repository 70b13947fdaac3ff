/**
 * Interface configuration through iproute2: address(es), MTU, link up. Runs
 * once at start on the main thread. Errors name the command and what to do.
 *
 * IPv6 (a tunnel address from config tun6): before touching the device the
 * host's IPv6 state is checked (ipv6Blocker: /proc/sys/net/ipv6 present,
 * net.ipv6.conf.all.disable_ipv6 and the device's disable_ipv6 both 0; the
 * device inherits net.ipv6.conf.default when it is created), so a
 * host with IPv6 off fails with the sysctl to change instead of an opaque
 * `ip` error. The address is added with `nodad`: the tunnel is point to
 * multipoint with addresses the server hands out, duplicate address
 * detection could only delay the address (it would be "tentative" for a
 * second, and packets from it refused).
 */
import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { promisify } from 'node:util'
import { VpnError } from '../errors.js'
import { formatPrefix, type IpPrefix } from '../wire/prefix.js'

const exec = promisify(execFile)

/** RFC 8200 §5: the smallest MTU of a link that carries IPv6. */
export const IPV6_MIN_MTU = 1280

async function ip (args: string[]): Promise<void> {
  try {
    await exec('ip', args, { timeout: 10_000 })
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string }
    if (e.code === 'ENOENT') {
      throw new VpnError('ERR_IPROUTE', 'the `ip` command (iproute2) was not found', { hint: 'install iproute2 (apt-get install iproute2)', cause: err })
    }
    throw new VpnError('ERR_IPROUTE', `\`ip ${args.join(' ')}\` failed: ${(e.stderr ?? e.message).trim()}`, { cause: err })
  }
}

/** Reads a sysctl file; null when it does not exist. */
export type SysctlReader = (path: string) => Promise<string | null>

const readSysctl: SysctlReader = async (path) => {
  try { return await readFile(path, 'utf8') } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw err
  }
}

/**
 * Why IPv6 cannot be configured on `dev`, as a VpnError naming the sysctl
 * and the fix, or null when it can. `root` is /proc/sys (tests pass a
 * directory of their own through `read`).
 */
export async function ipv6Blocker (dev: string, read: SysctlReader = readSysctl, root = '/proc/sys'): Promise<VpnError | null> {
  const hint = 'or remove the IPv6 tunnel address (tun6) from the configuration'
  if (await read(`${root}/net/ipv6/conf/all/disable_ipv6`) === null) {
    return new VpnError('ERR_IPV6_DISABLED', `IPv6 is not available on this host (${root}/net/ipv6 is missing: the kernel was booted with ipv6.disable=1 or built without IPv6), so the IPv6 tunnel address cannot be set`,
      { hint: `boot without ipv6.disable=1, ${hint}` })
  }
  const off = async (scope: string): Promise<boolean> => (await read(`${root}/net/ipv6/conf/${scope}/disable_ipv6`))?.trim() === '1'
  if (await off('all')) {
    return new VpnError('ERR_IPV6_DISABLED', `IPv6 is disabled (net.ipv6.conf.all.disable_ipv6 = 1), so the IPv6 tunnel address cannot be set on ${dev}`,
      { hint: `run \`sysctl -w net.ipv6.conf.all.disable_ipv6=0\` (and set it in /etc/sysctl.d to keep it), ${hint}` })
  }
  if (await off(dev)) {
    // The device is created at every start and inherits net.ipv6.conf.default: that is the setting to change, if it is the cause.
    const scope = await off('default') ? 'default' : dev
    return new VpnError('ERR_IPV6_DISABLED', `IPv6 is disabled on ${dev} (net.ipv6.conf.${dev}.disable_ipv6 = 1${scope === 'default' ? ', inherited from net.ipv6.conf.default.disable_ipv6 = 1' : ''}), so the IPv6 tunnel address cannot be set`,
      { hint: `run \`sysctl -w net.ipv6.conf.${scope}.disable_ipv6=0\`${scope === 'default' ? ' (new devices inherit it; set it in /etc/sysctl.d to keep it)' : ' (something on this host disables IPv6 on new devices)'}, ${hint}` })
  }
  return null
}

/**
 * MTU, the IPv4 address (`cidr`), the IPv6 address `tun6` if any, link up.
 * The IPv6 check runs first, before the device is changed.
 */
export async function configureTun (dev: string, cidr: string, mtu: number, tun6: IpPrefix | null = null, read: SysctlReader = readSysctl): Promise<void> {
  if (tun6 !== null) {
    // RFC 8200 §5: an IPv6 link carries at least 1280 bytes; Linux removes IPv6 from a device with a smaller MTU.
    if (mtu < IPV6_MIN_MTU) {
      throw new VpnError('ERR_CONFIG_INVALID', `the MTU ${mtu} is below ${IPV6_MIN_MTU}, the IPv6 minimum, so the IPv6 tunnel address cannot be used`,
        { hint: `set mtu to ${IPV6_MIN_MTU} or more, or remove the IPv6 tunnel address (tun6)` })
    }
    const blocked = await ipv6Blocker(dev, read)
    if (blocked !== null) throw blocked
  }
  await ip(['link', 'set', 'dev', dev, 'mtu', String(mtu)])
  await ip(['addr', 'add', cidr, 'dev', dev])
  if (tun6 !== null) await ip(['-6', 'addr', 'add', formatPrefix(tun6), 'dev', dev, 'nodad'])
  await ip(['link', 'set', 'dev', dev, 'up'])
}
