/**
 * writeAtomic: how every file in the state directory is replaced
 * (registry.json, peers.json). A reader, or a crash at any point, sees the
 * old file or the new one, never a mix:
 *
 *   FILE.tmp-PID (created 0600, never reused: a crash's leftover is removed
 *   first) ─ write all ─ fsync ─ rename ─▶ FILE ─ fsync(directory)
 *
 * The directory must exist (the daemon creates the state directory, 0700,
 * at start: identity/state-dir.ts); a missing one is an ENOENT error.
 */
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'

export function writeAtomic (path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`
  try { unlinkSync(tmp) } catch {} // a leftover of a crash: 'wx' below creates it 0600 afresh
  const fd = openSync(tmp, 'wx', 0o600)
  try {
    const buf = Buffer.from(text, 'utf8')
    let off = 0
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off)
    fsyncSync(fd)
    closeSync(fd)
    renameSync(tmp, path)
  } catch (err) {
    try { closeSync(fd) } catch {} // already closed when the rename failed
    try { unlinkSync(tmp) } catch {}
    throw err
  }
  try {
    const dfd = openSync(dirname(path), 'r')
    try { fsyncSync(dfd) } finally { closeSync(dfd) }
  } catch { /* some filesystems refuse fsync on a directory; the rename is done */ }
}
