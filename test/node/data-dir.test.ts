// The data directory lock and the node identity.
import { readFileSync, statSync, writeFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import {
  KEY_FILE,
  LOCK_FILE,
  StartupError,
  isAlive,
  loadOrCreateIdentity,
  lockDataDir,
  prepareDataDir,
} from '../../src/node/index.js'
import { makeTempDir, removeTempDirs } from '../helpers/index.js'

afterAll(removeTempDirs)

function codeOf(fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(StartupError)
    return (err as StartupError).code
  }
  throw new Error('expected a StartupError')
}

/** A pid that is certainly not running: above the kernel's pid_max. */
const DEAD_PID = 4_194_305

describe('data dir lock', () => {
  it('creates the directory and refuses a second lock while the first is held', () => {
    const dir = join(makeTempDir(), 'a', 'b')
    prepareDataDir(dir)
    const lock = lockDataDir(dir)
    expect(JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')).pid).toBe(process.pid)
    expect(codeOf(() => lockDataDir(dir))).toBe('DATA_DIR_LOCKED')
    lock.release()
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false)
    lockDataDir(dir).release()
  })

  it('takes over a lock whose owner is dead (kill -9 leaves it behind)', () => {
    const dir = makeTempDir()
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: DEAD_PID, createdAt: 'then' }))
    const lock = lockDataDir(dir)
    expect(lock.owner.pid).toBe(process.pid)
    lock.release()
  })

  it('takes over an empty or garbage lock file (crash between create and write)', () => {
    const dir = makeTempDir()
    writeFileSync(join(dir, LOCK_FILE), '')
    lockDataDir(dir).release()
    writeFileSync(join(dir, LOCK_FILE), '{not json')
    lockDataDir(dir).release()
  })

  it('judges a lock from another boot, or from a reused pid, as stale', () => {
    expect(isAlive({ pid: process.pid, createdAt: 'x' })).toBe(true)
    expect(isAlive({ pid: DEAD_PID, createdAt: 'x' })).toBe(false)
    expect(isAlive({ pid: process.pid, bootId: 'another-boot', createdAt: 'x' })).toBe(false)
    const mine = lockDataDir(makeTempDir())
    expect(isAlive(mine.owner)).toBe(true)
    if (mine.owner.startTicks !== undefined) {
      expect(isAlive({ ...mine.owner, startTicks: mine.owner.startTicks + 1 })).toBe(false)
    }
    mine.release()
  })

  it('does not remove a lock that is no longer its own on release', () => {
    const dir = makeTempDir()
    const lock = lockDataDir(dir)
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: 1, createdAt: 'other' }))
    lock.release()
    expect(existsSync(join(dir, LOCK_FILE))).toBe(true)
  })

  it('reports a data dir that cannot be created', () => {
    const file = join(makeTempDir(), 'file')
    writeFileSync(file, '')
    expect(codeOf(() => prepareDataDir(join(file, 'sub')))).toBe('DATA_DIR_UNWRITABLE')
  })
})

describe('node identity', () => {
  it('creates an Ed25519 key once (mode 0600) and keeps the same id across loads', async () => {
    const dir = makeTempDir()
    const first = await loadOrCreateIdentity(dir)
    expect(first.id).toMatch(/^12D3KooW/) // Ed25519 peer ids
    expect(first.id).toBe(first.peerId.toString())
    expect(first.privateKey.type).toBe('Ed25519')
    expect(statSync(join(dir, KEY_FILE)).mode & 0o777).toBe(0o600)
    const second = await loadOrCreateIdentity(dir)
    expect(second.id).toBe(first.id)
  })

  it('refuses a corrupt key file with BAD_IDENTITY', async () => {
    const dir = makeTempDir()
    writeFileSync(join(dir, KEY_FILE), 'garbage')
    await expect(loadOrCreateIdentity(dir)).rejects.toMatchObject({ code: 'BAD_IDENTITY' })
  })
})
