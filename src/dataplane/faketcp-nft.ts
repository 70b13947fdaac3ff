/**
 * The nftables rules fake TCP needs: no socket owns our fake flows' TCP port, so the kernel answers
 * each segment with an RST, which would reset every stateful firewall and NAT on the way. One table
 * per link drops those RSTs on output:
 *
 *   server  table inet lwt_faketcp_<port>    tcp sport <port> tcp flags rst → drop
 *   client  table inet lwt_faketcp_c<port>   ip daddr <server> tcp dport <port> tcp flags rst → drop
 *
 * With the superpacket path (`dropData`: the link has its packet socket, native/faketcp-packet.c,
 * which taps the frames before IP), a second chain at prerouting priority raw (before conntrack)
 * drops the flows' data segments (no SYN/RST/FIN, longer than our 52 bytes of headers, to a local
 * address) once the tap has them, so the kernel's TCP never sees them: no conntrack entry, no RST
 * built. Handshake segments and pure ACKs go on to the raw control socket as before.
 *
 *   server  prerouting raw: fib daddr type local tcp dport <port> <data segment> → drop
 *   client  prerouting raw: fib daddr type local ip saddr <server> tcp sport <port> <data segment> → drop
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

export interface RstRule { role: 'server' | 'client', port: number, serverIp?: number, dropData?: boolean }

export function tableName (r: RstRule): string {
  return r.role === 'server' ? `lwt_faketcp_${r.port}` : `lwt_faketcp_c${r.port}`
}

/** The nft script that (re)creates the table. */
export function rulesScript (r: RstRule): string {
  const t = tableName(r)
  const match = r.role === 'server'
    ? `tcp sport ${r.port}`
    : `ip daddr ${intToIp(r.serverIp ?? 0)} tcp dport ${r.port}`
  const data = r.role === 'server'
    ? `tcp dport ${r.port}`
    : `ip saddr ${intToIp(r.serverIp ?? 0)} tcp sport ${r.port}`
  return [
    `table inet ${t}`,
    `delete table inet ${t}`,
    `table inet ${t} {`,
    '  chain out {',
    '    type filter hook output priority filter; policy accept;',
    `    ${match} tcp flags & rst == rst counter drop comment "lightweight-tunnel fake TCP: the kernel's RSTs for our flows"`,
    '  }',
    ...(r.dropData === true
      ? [
          '  chain pre {',
          '    type filter hook prerouting priority raw; policy accept;',
          `    fib daddr type local ${data} tcp flags & (fin | syn | rst) == 0 ip length > 52 counter drop comment "lightweight-tunnel fake TCP: data segments, taken by its packet socket"`,
          '  }'
        ]
      : []),
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
