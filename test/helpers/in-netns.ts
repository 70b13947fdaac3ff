/**
 * Run a test file inside a throw-away network namespace, so it can open a
 * real TUN device, configure it with `ip` and bind real ports in-process
 * without touching the host's network (tests run as root).
 *
 *   tap ──▶ this file (outer): createNs(lwt-<lab id>-<tag>) ──▶ t.spawn(ip netns exec NS node <same loader flags> <same file>)
 *                                                                   └─ inner: LWT_TEST_NETNS=NS, runs the tests; its TAP is a subtest
 *           t.teardown: deleteNs (kills anything left inside, removes every device with it)
 *
 * Usage, at the top of a test file:
 *   const ns = await testNetns(t, import.meta.url, 'dp')
 *   if (ns !== null) { ...the tests, in namespace `ns`... }
 */
import type { Test } from 'tap'
import { execFileSync } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { fileURLToPath } from 'node:url'
import { createNs, deleteNs } from '../../src/lab/netns.js'
import { newLabId } from '../../src/lab/topology.js'

const ENV = 'LWT_TEST_NETNS'

/**
 * In the inner process: the namespace's name (run the tests). In the outer
 * one: null, after spawning the inner process as a subtest of `t`.
 */
export async function testNetns (t: Test, fileUrl: string, tag: string): Promise<string | null> {
  const inner = process.env[ENV]
  if (inner !== undefined && inner !== '') return inner
  const ns = await createNs(`lwt-${newLabId()}-${tag}`)
  t.teardown(async () => { await deleteNs(ns) })
  t.spawn('ip', ['netns', 'exec', ns, process.execPath, ...process.execArgv, fileURLToPath(fileUrl)],
    { env: { ...process.env, [ENV]: ns } }, `in namespace ${ns}`)
  return null
}

/** Whether a network device of this name exists (in the namespace this process runs in). */
export function deviceExists (dev: string): boolean {
  return execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).split('\n').some((l) => l.split(':')[1]?.trim() === dev)
}

/** Can this UDP port be bound again on 0.0.0.0 (nobody holds it)? */
export async function portFree (port: number): Promise<boolean> {
  const s = createSocket('udp4')
  try {
    await new Promise<void>((resolve, reject) => { s.once('error', reject); s.bind(port, '0.0.0.0', () => resolve()) })
    return true
  } catch { return false } finally { try { s.close() } catch {} }
}
