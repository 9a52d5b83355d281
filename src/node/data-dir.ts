/**
 * The data directory: created on first start, probed for writability, and locked so that only one
 * daemon uses it at a time.
 *
 * The lock is a file created with O_EXCL (`wx`) holding the owner's pid, the host's boot id and the
 * process start time. A lock left behind by a crash (kill -9, power loss) is stale when its owner is
 * gone: another boot, a dead pid, or a live pid that is a different process (the pid was reused, told
 * apart by its start time). Stale locks are taken over; live ones refuse the second daemon.
 */
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs'
import { join } from 'node:path'
import { errnoText } from './config.js'
import { StartupError } from './errors.js'

export const LOCK_FILE = 'hopsd.lock'

/** Attempts to take over a stale lock before giving up (another starter may race us for it). */
const LOCK_ATTEMPTS_MAX = 5

export interface LockOwner {
  readonly pid: number
  /** /proc/sys/kernel/random/boot_id (Linux), so a lock from before a reboot is stale. */
  readonly bootId?: string
  /** Start time of the owner process in clock ticks since boot (/proc/PID/stat field 22, Linux). */
  readonly startTicks?: number
  readonly createdAt: string
}

export interface DataDirLock {
  readonly path: string
  readonly owner: LockOwner
  /** Removes the lock file if it is still ours. Idempotent. */
  release(): void
}

/** Creates the directory (and parents) and checks that files can be created in it. */
export function prepareDataDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
  } catch (err) {
    throw new StartupError('DATA_DIR_UNWRITABLE', `data dir ${dir} cannot be created (${errnoText(err)})`, {
      cause: err,
    })
  }
  const probe = join(dir, `.write-probe-${process.pid}`)
  try {
    const fd = openSync(probe, 'w', 0o600)
    closeSync(fd)
    rmSync(probe, { force: true })
  } catch (err) {
    throw new StartupError('DATA_DIR_UNWRITABLE', `data dir ${dir} is not writable (${errnoText(err)})`, {
      cause: err,
    })
  }
}

/** Takes the data directory's lock or throws `DATA_DIR_LOCKED` naming the live owner. */
export function lockDataDir(dir: string): DataDirLock {
  const path = join(dir, LOCK_FILE)
  const owner = selfOwner()
  const text = JSON.stringify(owner) + '\n'
  for (let attempt = 0; attempt < LOCK_ATTEMPTS_MAX; attempt++) {
    let fd: number
    try {
      fd = openSync(path, 'wx', 0o600)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new StartupError(
          'DATA_DIR_UNWRITABLE',
          `data dir ${dir}: cannot create ${LOCK_FILE} (${errnoText(err)})`,
          {
            cause: err,
          },
        )
      }
      const existing = readOwner(path)
      if (existing !== undefined && isAlive(existing)) {
        throw new StartupError(
          'DATA_DIR_LOCKED',
          `data dir ${dir} is locked by another hopsd (pid ${existing.pid}); stop it or use another --data-dir`,
        )
      }
      removeStale(path, existing)
      continue
    }
    try {
      writeSync(fd, text)
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    let released = false
    return {
      path,
      owner,
      release() {
        if (released) return
        released = true
        const current = readOwner(path)
        if (current !== undefined && current.pid === owner.pid && current.createdAt === owner.createdAt) {
          rmSync(path, { force: true })
        }
      },
    }
  }
  throw new StartupError('DATA_DIR_LOCKED', `data dir ${dir}: could not take over the stale lock ${path}`)
}

/**
 * Removes a stale lock without removing a fresh one that a racing starter just created: move it aside
 * first (atomic), then check that what we moved is the stale lock we judged. If it is not (we lost a
 * race), put it back under its name when that name is still free.
 */
function removeStale(path: string, judged: LockOwner | undefined): void {
  const aside = `${path}.stale-${process.pid}`
  try {
    renameSync(path, aside)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return // someone else removed it: retry
    throw new StartupError(
      'DATA_DIR_UNWRITABLE',
      `cannot remove the stale lock ${path} (${errnoText(err)})`,
      {
        cause: err,
      },
    )
  }
  const moved = readOwner(aside)
  const same =
    judged === undefined
      ? moved === undefined
      : moved?.pid === judged.pid && moved.createdAt === judged.createdAt
  if (!same && moved !== undefined && isAlive(moved)) {
    try {
      // link-free "put back if free": rename would clobber, so re-create with wx.
      const fd = openSync(path, 'wx', 0o600)
      writeSync(fd, JSON.stringify(moved) + '\n')
      closeSync(fd)
    } catch {
      // The name is taken again: the next attempt reads it and decides.
    }
  }
  rmSync(aside, { force: true })
}

function readOwner(path: string): LockOwner | undefined {
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as LockOwner
    return Number.isInteger(parsed.pid) && parsed.pid > 0 ? parsed : undefined
  } catch {
    // Missing, empty (crash between create and write) or garbage: nobody holds it.
    return undefined
  }
}

function selfOwner(): LockOwner {
  const bootId = readBootId()
  const startTicks = readStartTicks(process.pid)
  return {
    pid: process.pid,
    ...(bootId === undefined ? {} : { bootId }),
    ...(startTicks === undefined ? {} : { startTicks }),
    createdAt: new Date().toISOString(),
  }
}

/** Whether the lock's owner is still running. */
export function isAlive(owner: LockOwner): boolean {
  const bootId = readBootId()
  if (owner.bootId !== undefined && bootId !== undefined && owner.bootId !== bootId) return false
  try {
    process.kill(owner.pid, 0)
  } catch (err) {
    // EPERM: the pid exists but belongs to another user — it is alive.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false
  }
  if (owner.startTicks !== undefined) {
    const ticks = readStartTicks(owner.pid)
    if (ticks !== undefined && ticks !== owner.startTicks) return false // pid reused by another process
  }
  return true
}

function readBootId(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
  } catch {
    return undefined
  }
}

function readStartTicks(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const ticks = Number(fields[19]) // field 22 overall; fields 1-2 are before ')'
    return Number.isFinite(ticks) ? ticks : undefined
  } catch {
    return undefined
  }
}
