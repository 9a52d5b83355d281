// `hopsd fs put` and `hopsd fs get`: plan first (expand globs, walk directories, decide every target
// path, refuse clobbering), then move the files a few at a time with one progress display.
//
// Target rule (as `cp -r`): the destination is a directory to copy *into* when it already is one, when
// it ends in `/`, when there are several sources, or when a source was a glob; otherwise it is the new
// name of the single source. A missing directory destination is created.
import { createWriteStream } from 'node:fs'
import { mkdir, open, readFile, readdir, rename, rm, stat } from 'node:fs/promises'
import { basename, isAbsolute, join, sep } from 'node:path'
import { Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { RemoteError, type FsClient } from './client.js'
import { expandGlob, hasGlob } from './glob.js'
import { remoteBase, remoteJoin } from './format.js'
import { Progress } from './progress.js'

/**
 * Files up to this size go in one `PUT /api/v1/fs/files` (one request, one Raft command): the default
 * inlineThreshold. Larger ones go through WebHDFS CREATE + APPEND chunks, which is also what a cluster
 * with a raised threshold (or, from part 2, block storage) takes.
 */
export const NATIVE_PUT_BYTES_MAX = 64 * 1024
/** Bytes per WebHDFS CREATE/APPEND request: well under the server's 17 MiB body limit. */
export const CHUNK_BYTES = 4 * 1024 * 1024
/** Files in flight at once: enough to hide round trips, few enough not to flood a node. */
export const TRANSFERS_MAX = 8
/** Bound on files one put/get plans: a mistaken `/` should fail clearly, not exhaust memory. */
export const PLAN_FILES_MAX = 1_000_000

export type TransferErrorCode =
  'NO_SUCH_LOCAL' | 'NO_MATCH' | 'LOCAL_EXISTS' | 'NOT_A_DIRECTORY' | 'TOO_MANY_FILES'

/** A put/get refused before or while moving data, for a local reason. */
export class TransferError extends Error {
  constructor(
    readonly code: TransferErrorCode,
    message: string,
  ) {
    super(message)
    this.name = 'TransferError'
  }
}

interface FileJob {
  readonly local: string
  /** The local path as the user wrote it (relative stays relative), for messages. */
  readonly shown: string
  readonly remote: string
  readonly size: number
}

export interface TransferPlan {
  /** Directories to create (parents before children). */
  readonly dirs: string[]
  readonly files: FileJob[]
}

export interface TransferOutcome {
  /** One line per file that failed (the transfer went on with the others). */
  readonly failures: string[]
}

// ----------------------------------------------------------------------------------------------- put

export async function planPut(
  client: FsClient,
  patterns: readonly string[],
  dst: string,
  dstRaw: string,
  cwd: string,
): Promise<TransferPlan> {
  const sources: string[] = []
  for (const p of patterns) {
    const matches = await expandGlob(p, cwd)
    if (matches.length === 0) throw new TransferError('NO_MATCH', `${p}: no local file matches`)
    sources.push(...matches)
  }
  const dstStatus = await client.statusOrUndefined(dst)
  const intoDir =
    dstRaw.endsWith('/') ||
    dstStatus?.type === 'DIRECTORY' ||
    patterns.length > 1 ||
    patterns.some((p) => hasGlob(p))
  if (intoDir && dstStatus?.type === 'FILE')
    throw new TransferError('NOT_A_DIRECTORY', `${dst} is a file, not a directory to put into`)
  const plan: TransferPlan = { dirs: [], files: [] }
  if (intoDir && dstStatus === undefined) plan.dirs.push(dst)
  for (const src of sources) {
    const full = isAbsolute(src) ? src : join(cwd, src)
    const st = await stat(full).catch(() => undefined)
    if (st === undefined) throw new TransferError('NO_SUCH_LOCAL', `${src}: no such local file or directory`)
    const target = intoDir ? remoteJoin(dst, basename(full)) : dst
    if (st.isDirectory()) await walkLocal(full, src, target, plan)
    else plan.files.push({ local: full, shown: src, remote: target, size: st.size })
  }
  return plan
}

async function walkLocal(dir: string, shown: string, remote: string, plan: TransferPlan): Promise<void> {
  plan.dirs.push(remote)
  const entries = await readdir(dir, { withFileTypes: true })
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  for (const e of entries) {
    const local = join(dir, e.name)
    const target = remoteJoin(remote, e.name)
    // Follow symlinks as `hdfs dfs -put` does: what is copied is what a read of the path gives.
    const st = e.isSymbolicLink() ? await stat(local).catch(() => undefined) : e
    if (st === undefined) continue // a dangling link has nothing to copy
    if (st.isDirectory()) await walkLocal(local, join(shown, e.name), target, plan)
    else if (st.isFile()) {
      if (plan.files.length >= PLAN_FILES_MAX)
        throw new TransferError('TOO_MANY_FILES', `more than ${PLAN_FILES_MAX} files to put`)
      plan.files.push({ local, shown: join(shown, e.name), remote: target, size: (await stat(local)).size })
    }
  }
}

export async function runPut(
  client: FsClient,
  plan: TransferPlan,
  overwrite: boolean,
): Promise<TransferOutcome> {
  // mkdirs creates parents too: only the leaves need a request.
  for (const dir of leaves(plan.dirs)) await client.mkdirs(dir)
  const progress = new Progress({
    label: 'put',
    totalBytes: plan.files.reduce((a, f) => a + f.size, 0),
    totalFiles: plan.files.length,
  })
  const failures: string[] = []
  try {
    await eachLimited(plan.files, TRANSFERS_MAX, async (f) => {
      try {
        if (f.size <= NATIVE_PUT_BYTES_MAX) {
          const data = await readFile(f.local)
          await client.putSmall(f.remote, data, overwrite)
          progress.addBytes(data.length)
        } else {
          await client.putChunked(f.remote, readChunks(f.local), overwrite, (n) => progress.addBytes(n))
        }
        progress.fileDone()
      } catch (err) {
        failures.push(failureLine(f.shown, f.remote, err))
        if (isUnreachable(err)) throw err
      }
    })
  } finally {
    progress.finish()
  }
  return { failures }
}

async function* readChunks(path: string): AsyncIterable<Uint8Array> {
  const fh = await open(path, 'r')
  try {
    for (;;) {
      const buf = Buffer.allocUnsafe(CHUNK_BYTES)
      const { bytesRead } = await fh.read(buf, 0, CHUNK_BYTES, null)
      if (bytesRead === 0) return
      yield buf.subarray(0, bytesRead)
    }
  } finally {
    await fh.close()
  }
}

// ----------------------------------------------------------------------------------------------- get

export async function planGet(
  client: FsClient,
  sources: readonly string[],
  dst: string,
  force: boolean,
): Promise<TransferPlan> {
  const dstStat = await stat(dst).catch(() => undefined)
  const intoDir =
    dst.endsWith(sep) || dst.endsWith('/') || dstStat?.isDirectory() === true || sources.length > 1
  if (intoDir && dstStat !== undefined && !dstStat.isDirectory())
    throw new TransferError('NOT_A_DIRECTORY', `${dst} is a file, not a directory to get into`)
  const plan: TransferPlan = { dirs: [], files: [] }
  if (intoDir && dstStat === undefined) plan.dirs.push(dst)
  for (const src of sources) {
    const st = await client.status(src)
    const target = intoDir ? join(dst, remoteBase(src) || 'root') : dst
    if (st.type === 'DIRECTORY') await walkRemote(client, src, target, plan)
    else plan.files.push({ local: target, shown: target, remote: src, size: st.length })
  }
  if (!force) {
    for (const f of plan.files) {
      if ((await stat(f.local).catch(() => undefined)) !== undefined)
        throw new TransferError('LOCAL_EXISTS', `${f.local} already exists (use -f to overwrite)`)
    }
  }
  return plan
}

async function walkRemote(client: FsClient, dir: string, local: string, plan: TransferPlan): Promise<void> {
  plan.dirs.push(local)
  for (const e of await client.list(dir)) {
    const remote = remoteJoin(dir, e.pathSuffix)
    const target = join(local, e.pathSuffix)
    if (e.type === 'DIRECTORY') await walkRemote(client, remote, target, plan)
    else {
      if (plan.files.length >= PLAN_FILES_MAX)
        throw new TransferError('TOO_MANY_FILES', `more than ${PLAN_FILES_MAX} files to get`)
      plan.files.push({ local: target, shown: target, remote, size: e.length })
    }
  }
}

export async function runGet(client: FsClient, plan: TransferPlan): Promise<TransferOutcome> {
  for (const dir of plan.dirs) await mkdir(dir, { recursive: true })
  const progress = new Progress({
    label: 'get',
    totalBytes: plan.files.reduce((a, f) => a + f.size, 0),
    totalFiles: plan.files.length,
  })
  const failures: string[] = []
  try {
    await eachLimited(plan.files, TRANSFERS_MAX, async (f) => {
      // Written beside the target and renamed at the end: a failed get leaves no half file behind.
      const part = `${f.local}.hopsd-part`
      try {
        const body = await client.open(f.remote)
        const count = new Transform({
          transform(chunk: Buffer, _enc, done) {
            progress.addBytes(chunk.length)
            done(null, chunk)
          },
        })
        await pipeline(body, count, createWriteStream(part))
        await rename(part, f.local)
        progress.fileDone()
      } catch (err) {
        await rm(part, { force: true }).catch(() => undefined)
        failures.push(failureLine(f.remote, f.shown, err))
        if (isUnreachable(err)) throw err
      }
    })
  } finally {
    progress.finish()
  }
  return { failures }
}

// ----------------------------------------------------------------------------------------------- shared

/** Directories none of the others lies under (mkdirs makes the parents). */
function leaves(dirs: readonly string[]): string[] {
  const sorted = [...new Set(dirs)].sort()
  return sorted.filter((d, i) => {
    const next = sorted[i + 1]
    return !(next !== undefined && (next.startsWith(d + '/') || d === '/'))
  })
}

/** Runs `fn` over `items`, at most `limit` at a time; the first throw stops new starts and rethrows. */
export async function eachLimited<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0
  let failed: unknown
  const worker = async (): Promise<void> => {
    while (failed === undefined && next < items.length) {
      const item = items[next++]!
      try {
        await fn(item)
      } catch (err) {
        failed ??= err
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  if (failed !== undefined) throw failed
}

function isUnreachable(err: unknown): boolean {
  return err instanceof RemoteError && err.status === 0
}

function failureLine(from: string, to: string, err: unknown): string {
  if (err instanceof RemoteError) return `${from} -> ${to}: ${err.message} [${err.exception}]`
  const e = err as NodeJS.ErrnoException
  return `${from} -> ${to}: ${e.message ?? String(err)}${e.code ? ` [${e.code}]` : ''}`
}
