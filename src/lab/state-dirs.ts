/**
 * Temporary state directories (--state-dir) for lab daemons: every daemon the
 * tests, the demo and the benchmarks start gets its own, so no two share a
 * node key (namespaces share the filesystem, and the default
 * /var/lib/lightweight-tunnel/<dev> would be the same for all). They live
 * under one folder per process, removed when the process exits.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

let root: string | null = null

/** A fresh, empty state directory named after `name` (created 0700). */
export function tempStateDir (name: string): string {
  if (root === null) {
    const r = mkdtempSync(join(tmpdir(), 'lwt-state-'))
    root = r
    process.on('exit', () => { rmSync(r, { recursive: true, force: true }) })
  }
  return mkdtempSync(join(root, `${name.replace(/[^A-Za-z0-9_.-]/g, '_')}-`))
}

/** Remove one state directory now (a test that is done with a daemon). */
export function removeStateDir (dir: string): void {
  rmSync(dir, { recursive: true, force: true })
}

const byName = new Map<string, string>()

/** The same state directory for the same `name` within this process (a node restarted by a benchmark keeps its key). */
export function stateDirFor (name: string): string {
  let d = byName.get(name)
  if (d === undefined) { d = tempStateDir(name); byName.set(name, d) }
  return d
}
