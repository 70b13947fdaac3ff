/**
 * The nftables rules fake TCP needs: no socket owns our fake flows' TCP port, so the kernel answers
 * each segment with an RST, which would reset every stateful firewall and NAT on the way. One table
 * per link drops those RSTs on output:
 *
 *   server  table inet lwt_faketcp_<port>    tcp sport <port> tcp flags rst → drop
 *   client  table inet lwt_faketcp_c<port>   ip daddr <server> tcp dport <port> tcp flags rst → drop
 *
 * install() replaces the table in one nft transaction (a table of the same name left by a run that was
 * killed is deleted first, and said); remove() deletes it at exit. The table's name is the whole state:
 * a restart after kill -9 finds and replaces it.
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { VpnError } from '../errors.js'
import { intToIp } from '../wire/addr.js'

const exec = promisify(execFile)

export interface RstRule { role: 'server' | 'client', port: number, serverIp?: number }

export function tableName (r: RstRule): string {
  return r.role === 'server' ? `lwt_faketcp_${r.port}` : `lwt_faketcp_c${r.port}`
}

/** The nft script that (re)creates the table. */
export function rulesScript (r: RstRule): string {
  const t = tableName(r)
  const match = r.role === 'server'
    ? `tcp sport ${r.port}`
    : `ip daddr ${intToIp(r.serverIp ?? 0)} tcp dport ${r.port}`
  return [
    `table inet ${t}`,
    `delete table inet ${t}`,
    `table inet ${t} {`,
    '  chain out {',
    '    type filter hook output priority filter; policy accept;',
    `    ${match} tcp flags & rst == rst counter drop comment "lightweight-tunnel fake TCP: the kernel's RSTs for our flows"`,
    '  }',
    '}',
    ''
  ].join('\n')
}

async function nft (args: string[], input?: string): Promise<{ stdout: string }> {
  if (input === undefined) return await exec('nft', args)
  return await new Promise((resolve, reject) => {
    const child = execFile('nft', args, (err, stdout) => { if (err) reject(err); else resolve({ stdout }) })
    child.stdin?.end(input)
  })
}

/** Installs the table; true when a stale one (a killed run's) was replaced. */
export async function installRstRules (r: RstRule): Promise<boolean> {
  let stale = false
  try {
    await nft(['list', 'table', 'inet', tableName(r)])
    stale = true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw noNft(err)
  }
  try {
    await nft(['-f', '-'], rulesScript(r))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw noNft(err)
    throw new VpnError('ERR_FAKETCP', `fake TCP: installing the nftables rules against the kernel's RSTs failed: ${String((err as { stderr?: string }).stderr ?? (err as Error).message).trim()}`, {
      cause: err, hint: 'fake TCP needs CAP_NET_ADMIN and an nftables-capable kernel (nf_tables); run as root or as the systemd service'
    })
  }
  return stale
}

export async function removeRstRules (r: RstRule): Promise<void> {
  await nft(['delete', 'table', 'inet', tableName(r)]).catch(() => {})
}

function noNft (cause: unknown): VpnError {
  return new VpnError('ERR_FAKETCP', 'fake TCP needs the nft command (nftables) to stop the kernel from resetting its flows, and it was not found', {
    cause, hint: 'install nftables (Debian/Ubuntu: apt install nftables), or use --transport udp'
  })
}
