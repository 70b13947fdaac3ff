/**
 * Interface configuration through iproute2: address, MTU, link up. Runs once
 * at start on the main thread. Errors name the command and what to do.
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { VpnError } from '../errors.js'

const exec = promisify(execFile)

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

export async function configureTun (dev: string, cidr: string, mtu: number): Promise<void> {
  await ip(['link', 'set', 'dev', dev, 'mtu', String(mtu)])
  await ip(['addr', 'add', cidr, 'dev', dev])
  await ip(['link', 'set', 'dev', dev, 'up'])
}
