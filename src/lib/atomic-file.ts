/**
 * Writes a file so that a reader — or the node after a crash — sees the old content or the new one,
 * whole, never a mix: a temporary file beside it, fsync, rename over, fsync of the folder.
 */
import { chmodSync, closeSync, fsyncSync, openSync, renameSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'

/** Replaces `file` with `text` atomically and durably, with `mode` whatever the umask or an old file said. */
export function writeFileAtomic(file: string, text: string, mode: number): void {
  const tmp = `${file}.tmp-${process.pid}`
  const fd = openSync(tmp, 'w', mode)
  try {
    writeSync(fd, text)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  chmodSync(tmp, mode) // the umask may have narrowed or the file existed with another mode
  renameSync(tmp, file)
  const dirFd = openSync(dirname(file), 'r')
  try {
    fsyncSync(dirFd) // the rename itself survives a crash
  } finally {
    closeSync(dirFd)
  }
}
