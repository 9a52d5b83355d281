import {
  encodeCommand,
  type ConsensusGroup,
  type MetaResult,
  type MetaStateMachine,
  type ChangeEvent,
  type metaProto,
} from '../meta/index.js'
import type { FileChecksum } from './checksum.js'
import { randomUUID } from 'node:crypto'
import { setTimeout as delay } from 'node:timers/promises'
import { errorFromResult, FsError, isFsError } from './errors.js'
import type { XAttr } from './inode.js'
import {
  XATTR_CREATE,
  XATTR_REPLACE,
  type ContentSummary,
  type FileStatus,
  type Listing,
  type Namespace,
  type OpResults,
  type QuotaUsage,
} from './namespace.js'
import { parsePath } from './path.js'
import type { Caller } from './permission.js'
import { commandIdentity, type Principal } from '../auth/index.js'
import { QUOTA_KEEP } from './quota.js'
import type { SubtreeOpKind } from './subtree.js'

type CommandProps = metaProto.meta.Command.$Properties

/** Options of every call: an abort signal; reads may also be `stale` (served from this replica without a barrier). */
export interface CallOpts {
  readonly signal?: AbortSignal
  /**
   * Writes only: exactly-once by client session. A retry with the same (clientId, seq), through any
   * node, is applied at most once and answers the first try's result (a create that did commit answers
   * success again, not FILE_ALREADY_EXISTS). Seqs start at 1 and increase per client; the cluster keeps
   * the last results of each client (older seqs answer SESSION_EXPIRED). Scoped by the caller's user.
   */
  readonly session?: { readonly clientId: string; readonly seq: number }
}

export interface ReadOpts extends CallOpts {
  /** Skip the linearizability barrier: may miss writes committed elsewhere a moment ago. */
  readonly stale?: boolean
}

export interface CreateOpts extends CallOpts {
  readonly overwrite?: boolean
  /** Default 0o644. */
  readonly permission?: number
  /** Default: the cluster's defaultReplication. */
  readonly replication?: number
  /** Default: the cluster's defaultBlockSize. */
  readonly blockSize?: number
  /** Create missing parent directories (default true, as WebHDFS). */
  readonly createParent?: boolean
  /** The file must exist already (Hadoop's createflag without CREATE); with `overwrite` it is replaced. */
  readonly mustExist?: boolean
  /** Close at once (default true): create+write+close is one command. False keeps a lease for `clientName`. */
  readonly close?: boolean
  /** Lease holder for writes that span requests. */
  readonly clientName?: string
}

export interface AppendOpts extends CallOpts {
  /** Close after this append (default true). False keeps (or takes) the lease for `clientName`. */
  readonly close?: boolean
  readonly clientName?: string
  /** The file by inode id (`path` then only names it in errors): a rename meanwhile keeps the append. */
  readonly fileId?: number
}

export interface FsServiceInit {
  /** The Raft group (or a local one in tests) that commits commands to `stateMachine`. */
  readonly consensus: ConsensusGroup
  /** This replica's state machine: reads are served from it after the barrier. */
  readonly stateMachine: MetaStateMachine
  /** Wall clock stamped into commands (ms since epoch). */
  readonly clock?: () => number
  /**
   * Re-checks a caller's credential against this replica after a read's barrier (src/auth
   * Authenticator.recheck): the API authenticated it without a barrier of its own, so that one barrier
   * serves both. Writes need none: the auth guard re-checks at commit.
   */
  readonly recheck?: (caller: Caller) => void
  /**
   * How long a write refused with SUBTREE_LOCKED (a subtree operation holds a lock on its path) is
   * retried before the refusal reaches the caller (default SUBTREE_LOCK_WAIT_MS; 0: at once).
   */
  readonly subtreeLockWaitMs?: number
}

export const SUBTREE_LOCK_WAIT_MS = 10_000

/**
 * The file-system service: every mutation is one command proposed to the metadata group (validated at
 * the edge first, so that obvious mistakes cost no Raft round), and its typed error rethrown when the
 * state machine refused it; reads are linearizable by default (a read barrier, then this replica) and
 * may opt into stale reads.
 *
 * Concurrency: calls may overlap freely; the group orders them.
 */
export class FsService {
  private readonly consensus: ConsensusGroup
  private readonly sm: MetaStateMachine
  private readonly clock: () => number
  private readonly recheck: (caller: Caller) => void
  private readonly lockWaitMs: number
  private subtreeOps = 0

  constructor(init: FsServiceInit) {
    this.lockWaitMs = init.subtreeLockWaitMs ?? SUBTREE_LOCK_WAIT_MS
    this.consensus = init.consensus
    this.sm = init.stateMachine
    this.clock = init.clock ?? Date.now
    this.recheck = init.recheck ?? (() => undefined)
  }

  private get ns(): Namespace {
    return this.sm.module<Namespace>('fs')
  }

  // ---- writes

  /** Creates `path` and missing parents; true also when it already is a directory (Hadoop's mkdirs). */
  async mkdirs(caller: Caller, path: string, opts: CallOpts & { permission?: number } = {}): Promise<true> {
    parsePath(path)
    await this.propose<'mkdirs'>(caller, { mkdirs: { path, permission: opts.permission ?? 0o755 } }, opts)
    return true
  }

  /** Creates a file with `data` (create+write+close in one command unless `close: false`). */
  async create(
    caller: Caller,
    path: string,
    data: Uint8Array,
    opts: CreateOpts = {},
  ): Promise<OpResults['createFile']> {
    parsePath(path)
    this.checkInline(path, data.length)
    return this.propose<'createFile'>(
      caller,
      {
        clientName: opts.clientName ?? '',
        createFile: {
          path,
          data,
          overwrite: opts.overwrite ?? false,
          permission: opts.permission ?? 0o644,
          replication: opts.replication ?? 0,
          blockSize: opts.blockSize ?? 0,
          close: opts.close ?? true,
          createParent: opts.createParent ?? true,
          mustExist: opts.mustExist ?? false,
        },
      },
      opts,
    )
  }

  /** Appends `data` to a file (closed again afterwards unless `close: false`). */
  async append(
    caller: Caller,
    path: string,
    data: Uint8Array,
    opts: AppendOpts = {},
  ): Promise<OpResults['append']> {
    parsePath(path)
    return this.propose<'append'>(
      caller,
      {
        clientName: opts.clientName ?? '',
        append: { path, data, close: opts.close ?? true, ...(opts.fileId ? { fileId: opts.fileId } : {}) },
      },
      opts,
    )
  }

  /** Closes a file the caller's `clientName` holds the lease on. */
  async close(caller: Caller, path: string, opts: CallOpts & { clientName: string }): Promise<void> {
    parsePath(path)
    await this.propose<'closeFile'>(caller, { clientName: opts.clientName, closeFile: { path } }, opts)
  }

  /** Atomic rename of a file or a whole subtree (Hadoop's rename2: typed errors; `overwrite` replaces a file or empty dir). */
  async rename(
    caller: Caller,
    src: string,
    dst: string,
    opts: CallOpts & { overwrite?: boolean } = {},
  ): Promise<void> {
    parsePath(src)
    parsePath(dst)
    const rename = { src, dst, legacy: false, overwrite: opts.overwrite ?? false }
    await this.proposeSubtree<'rename'>(
      caller,
      'rename',
      src,
      (subtree) => ({ rename: { ...rename, subtree } }),
      opts,
    )
  }

  /** Hadoop's old rename (WebHDFS RENAME): into an existing directory; false instead of most errors. */
  async renameLegacy(caller: Caller, src: string, dst: string, opts: CallOpts = {}): Promise<boolean> {
    parsePath(src)
    parsePath(dst)
    return (
      await this.proposeSubtree<'rename'>(
        caller,
        'rename',
        src,
        (subtree) => ({ rename: { src, dst, legacy: true, subtree } }),
        opts,
      )
    ).renamed
  }

  /** Deletes a file or directory (non-empty ones only when `recursive`); false when there was nothing. */
  async delete(
    caller: Caller,
    path: string,
    opts: CallOpts & { recursive?: boolean } = {},
  ): Promise<boolean> {
    parsePath(path)
    const recursive = opts.recursive ?? false
    return (
      await this.proposeSubtree<'delete'>(
        caller,
        'delete',
        path,
        (subtree) => ({ delete: { path, recursive, subtree } }),
        opts,
      )
    ).deleted
  }

  async setPermission(caller: Caller, path: string, permission: number, opts: CallOpts = {}): Promise<void> {
    parsePath(path)
    await this.propose<'setPermission'>(caller, { setPermission: { path, permission } }, opts)
  }

  /** Changes owner and/or group ('' or undefined = unchanged). */
  async setOwner(
    caller: Caller,
    path: string,
    owner: string | undefined,
    group: string | undefined,
    opts: CallOpts = {},
  ): Promise<void> {
    parsePath(path)
    await this.propose<'setOwner'>(
      caller,
      { setOwner: { path, owner: owner ?? '', group: group ?? '' } },
      opts,
    )
  }

  /** -1 (or undefined) leaves a time unchanged. */
  async setTimes(
    caller: Caller,
    path: string,
    mtime: number | undefined,
    atime: number | undefined,
    opts: CallOpts = {},
  ): Promise<void> {
    parsePath(path)
    await this.propose<'setTimes'>(
      caller,
      { setTimes: { path, mtime: mtime ?? -1, atime: atime ?? -1 } },
      opts,
    )
  }

  /** True when `path` is a file (directories and missing paths: false, as Hadoop answers). */
  async setReplication(
    caller: Caller,
    path: string,
    replication: number,
    opts: CallOpts = {},
  ): Promise<boolean> {
    parsePath(path)
    return (await this.propose<'setReplication'>(caller, { setReplication: { path, replication } }, opts))
      .changed
  }

  /** `flag`: CREATE (must not exist), REPLACE (must exist), or either when undefined. */
  async setXAttr(
    caller: Caller,
    path: string,
    name: string,
    value: Uint8Array,
    flag?: 'CREATE' | 'REPLACE',
    opts: CallOpts = {},
  ): Promise<void> {
    parsePath(path)
    const flags =
      flag === 'CREATE' ? XATTR_CREATE : flag === 'REPLACE' ? XATTR_REPLACE : XATTR_CREATE | XATTR_REPLACE
    await this.propose<'setXAttr'>(caller, { setXAttr: { path, name, value, flags } }, opts)
  }

  async removeXAttr(caller: Caller, path: string, name: string, opts: CallOpts = {}): Promise<void> {
    parsePath(path)
    await this.propose<'removeXAttr'>(caller, { removeXAttr: { path, name } }, opts)
  }

  /** Renews every lease `clientName` holds; returns how many. */
  async renewLease(caller: Caller, clientName: string, opts: CallOpts = {}): Promise<number> {
    return (await this.propose<'renewLease'>(caller, { clientName, renewLease: {} }, opts)).renewed
  }

  /** Ends the write lease on `path` (whoever holds it); true when the file is closed. */
  async recoverLease(caller: Caller, path: string, opts: CallOpts = {}): Promise<boolean> {
    parsePath(path)
    return (await this.propose<'recoverLease'>(caller, { recoverLease: { path } }, opts)).closed
  }

  /** HDFS concat: appends the sources to `target` (all in one directory) and removes them. */
  async concat(
    caller: Caller,
    target: string,
    sources: readonly string[],
    opts: CallOpts = {},
  ): Promise<void> {
    parsePath(target)
    for (const s of sources) parsePath(s)
    await this.propose<'concat'>(caller, { concat: { target, sources: [...sources] } }, opts)
  }

  /** HDFS truncate: true when the file has its new length at once. */
  async truncate(caller: Caller, path: string, newLength: number, opts: CallOpts = {}): Promise<boolean> {
    parsePath(path)
    return (await this.propose<'truncate'>(caller, { truncate: { path, newLength } }, opts)).done
  }

  /**
   * HDFS setQuota (superuser): `namespace` names and `storagespace` bytes of replicas under a directory;
   * -1 clears a quota, 'keep' leaves it. With `storageType`, `storagespace` is that type's quota.
   */
  async setQuota(
    caller: Caller,
    path: string,
    quota: {
      namespace?: number | 'keep'
      storagespace?: number | 'keep'
      storageType?: string
    },
    opts: CallOpts = {},
  ): Promise<void> {
    parsePath(path)
    const v = (q: number | 'keep' | undefined): number => (q === undefined || q === 'keep' ? QUOTA_KEEP : q)
    const setQuota = {
      path,
      namespaceQuota: v(quota.namespace),
      storagespaceQuota: v(quota.storagespace),
      storageType: quota.storageType ?? '',
    }
    await this.proposeSubtree<'setQuota'>(
      caller,
      'setQuota',
      path,
      (subtree) => ({ setQuota: { ...setQuota, subtree } }),
      opts,
    )
  }

  /** Changes a cluster setting (superuser only). */
  async setSetting(caller: Caller, name: string, value: string, opts: CallOpts = {}): Promise<void> {
    await this.proposeRaw(caller, { setSetting: { name, value } }, opts)
  }

  // ---- reads

  async stat(caller: Caller, path: string, opts: ReadOpts = {}): Promise<FileStatus> {
    await this.barrier(opts, caller)
    return this.ns.stat(caller, path)
  }

  async list(
    caller: Caller,
    path: string,
    opts: ReadOpts & { startAfter?: string; limit?: number } = {},
  ): Promise<Listing> {
    await this.barrier(opts, caller)
    return this.ns.list(caller, path, opts)
  }

  /** Bytes [offset, offset + length) (length -1 or undefined = to the end). The view must not be mutated. */
  async read(
    caller: Caller,
    path: string,
    opts: ReadOpts & { offset?: number; length?: number } = {},
  ): Promise<Uint8Array> {
    await this.barrier(opts, caller)
    return this.ns.read(caller, path, opts.offset ?? 0, opts.length ?? -1)
  }

  async contentSummary(caller: Caller, path: string, opts: ReadOpts = {}): Promise<ContentSummary> {
    await this.barrier(opts, caller)
    return this.ns.contentSummary(caller, path, { signal: opts.signal })
  }

  async quotaUsage(caller: Caller, path: string, opts: ReadOpts = {}): Promise<QuotaUsage> {
    await this.barrier(opts, caller)
    return this.ns.quotaUsage(caller, path, { signal: opts.signal })
  }

  /** Throws ACCESS_DENIED unless the caller may `action` (rwx bits: 4, 2, 1) on `path`. */
  async checkAccess(caller: Caller, path: string, action: number, opts: ReadOpts = {}): Promise<void> {
    await this.barrier(opts, caller)
    this.ns.checkAccess(caller, path, action)
  }

  async checksum(caller: Caller, path: string, opts: ReadOpts = {}): Promise<FileChecksum> {
    await this.barrier(opts, caller)
    return this.ns.checksum(caller, path)
  }

  async getXAttrs(
    caller: Caller,
    path: string,
    names?: readonly string[],
    opts: ReadOpts = {},
  ): Promise<XAttr[]> {
    await this.barrier(opts, caller)
    return this.ns.getXAttrs(caller, path, names)
  }

  async listXAttrs(caller: Caller, path: string, opts: ReadOpts = {}): Promise<string[]> {
    await this.barrier(opts, caller)
    return this.ns.listXAttrs(caller, path)
  }

  /** Hadoop's home directory convention. */
  homeDirectory(caller: Caller): string {
    return `/user/${caller.user}`
  }

  /** Hadoop's trash root (no encryption zones or snapshot trash here): `<home>/.Trash`. */
  trashRoot(caller: Caller): string {
    return `${this.homeDirectory(caller)}/.Trash`
  }

  /** The cluster's defaults for new files, as this replica knows them. */
  get defaults(): { blockSize: number; replication: number; minBlockSize: number } {
    const s = this.sm.settings()
    return { blockSize: s.defaultBlockSize, replication: s.defaultReplication, minBlockSize: s.minBlockSize }
  }

  /** The cluster's inline threshold as this replica knows it. */
  get inlineThreshold(): number {
    return this.sm.settings().inlineThreshold
  }

  // ---- change log

  /**
   * Events after Raft index `since` (see MetaStateMachine.changesSince). Linearizable unless `stale`:
   * after a read barrier, so a client that wrote through another node sees its own change here too.
   */
  async changes(
    since: number,
    limit?: number,
    opts: ReadOpts = {},
  ): Promise<{ events: ChangeEvent[]; truncated: boolean; lastIndex: number }> {
    await this.barrier(opts)
    return this.sm.changesSince(since, limit)
  }

  /**
   * One bounded step of purging the subtrees recursive deletes detached (src/fs/purge.ts), proposed as
   * the cluster's superuser: the metadata leader's purge loop calls it.
   */
  async purgeDetachedStep(opts: CallOpts = {}): Promise<OpResults['purgeDetached']> {
    const su = { user: this.sm.settings().superuser, groups: [] }
    return this.propose<'purgeDetached'>(su, { purgeDetached: {} }, opts)
  }

  /**
   * The events after `since` that `caller` may see (see {@link Namespace.maySeeName}: the event's path,
   * and a rename's destination, are names the caller could list now; the superuser sees all), at most
   * `limit`, scanning at most `scanMax` events. `nextSince` is where the caller continues from: past
   * the events it may not see, so a reader never spins on a page of hidden events.
   */
  async changesFor(
    caller: Caller,
    since: number,
    limit = 1000,
    opts: ReadOpts & { scanMax?: number } = {},
  ): Promise<{ events: ChangeEvent[]; truncated: boolean; lastIndex: number; nextSince: number }> {
    await this.barrier(opts, caller)
    const scanMax = opts.scanMax ?? Math.max(limit * 10, 10_000)
    const su = this.sm.isSuperuser(caller.user, caller.groups)
    const events: ChangeEvent[] = []
    let cursor = since
    let scanned = 0
    let truncated = false
    let lastIndex = 0
    while (events.length < limit && scanned < scanMax) {
      const page = this.sm.changesSince(cursor, Math.min(1000, scanMax - scanned))
      if (scanned === 0) truncated = page.truncated
      lastIndex = page.lastIndex
      if (page.events.length === 0) break
      for (const e of page.events) {
        scanned++
        // Events of one index (a multi-event command) are taken or left together, so that a
        // `nextSince` at an index never splits one.
        if (events.length >= limit && e.index !== cursor) break
        cursor = e.index
        if (su || (this.ns.maySeeName(caller, e.path) && (e.dst === '' || this.ns.maySeeName(caller, e.dst))))
          events.push(e)
      }
      if (page.events.length < 1000) break
    }
    return { events, truncated, lastIndex, nextSince: cursor }
  }

  /** Resolves when an event after `since` exists, or when `signal` aborts (long-poll). */
  waitForChanges(since: number, signal?: AbortSignal): Promise<void> {
    return this.sm.waitForChanges(since, signal)
  }

  /** Subtree operations this service ran (locked, walked, committed or given up) since it started. */
  get subtreeOpCount(): number {
    return this.subtreeOps
  }

  // ---- internals

  /**
   * A Delete, Rename or SetQuota: first as one command (`build(undefined)`); when its subtree is larger
   * than one command may walk (SUBTREE_TOO_LARGE, nothing changed), as a subtree operation
   * (src/fs/subtree.ts): lock `root`, walk it here in batches after a read barrier, commit with the
   * walk's result, and unlock when anything after the lock fails. The commit goes without the call's
   * session: the session's seq answers the first try (only creates use sessions today).
   */
  private async proposeSubtree<K extends 'delete' | 'rename' | 'setQuota'>(
    caller: Caller,
    kind: SubtreeOpKind,
    root: string,
    build: (subtree: metaProto.meta.ISubtreeHeld | undefined) => CommandProps,
    opts: CallOpts,
  ): Promise<OpResults[K]> {
    try {
      return await this.propose<K>(caller, build(undefined), opts)
    } catch (err) {
      if (!isFsError(err, 'SUBTREE_TOO_LARGE')) throw err
    }
    this.subtreeOps++
    const signal = opts.signal
    const opId = randomUUID()
    const { inodeId } = await this.propose<'lockSubtree'>(
      caller,
      { lockSubtree: { path: root, opId, op: kind } },
      { signal },
    )
    try {
      await this.consensus.readBarrier({ signal })
      const used = await this.ns.walkLocked(caller, inodeId, opId, { check: kind === 'delete', signal })
      const held = { opId, inodeId, checked: kind === 'delete', ...used }
      return await this.propose<K>(caller, build(held), { signal }, false)
    } catch (err) {
      await this.propose<'unlockSubtree'>(caller, { unlockSubtree: { inodeId, opId } }, {}, false).catch(
        () => undefined,
      )
      throw err
    }
  }

  private async barrier(opts: ReadOpts, caller?: Caller): Promise<void> {
    if (!opts.stale) await this.consensus.readBarrier({ signal: opts.signal })
    if (caller !== undefined) this.recheck(caller)
  }

  private checkInline(path: string, size: number): void {
    const limit = this.sm.settings().inlineThreshold
    if (size > limit) {
      throw new FsError(
        'FILE_TOO_LARGE_FOR_INLINE',
        `${path} would be ${size} bytes, over inlineThreshold (${limit}): write it through WebHDFS CREATE (stored in blocks)`,
      )
    }
  }

  /**
   * Proposes `cmd`; a refusal with SUBTREE_LOCKED (a subtree operation holds its path) is retried with
   * a growing pause for up to subtreeLockWaitMs (`waitForLocks`; not with a session, whose seq answers
   * the first try).
   */
  private async propose<K extends keyof OpResults>(
    caller: Caller,
    cmd: CommandProps,
    opts: CallOpts,
    waitForLocks = true,
  ): Promise<OpResults[K]> {
    const deadline = Date.now() + this.lockWaitMs
    for (let pauseMs = 5; ; pauseMs = Math.min(pauseMs * 2, 500)) {
      try {
        return (await this.proposeRaw(caller, cmd, opts)) as OpResults[K]
      } catch (err) {
        if (!waitForLocks || opts.session !== undefined || !isFsError(err, 'SUBTREE_LOCKED')) throw err
        if (Date.now() + pauseMs > deadline) throw err
        // Aborted while waiting: the signal's own reason, as every other wait of the service rejects.
        await delay(pauseMs, undefined, { signal: opts.signal }).catch((e: unknown) => {
          throw opts.signal?.aborted === true ? (opts.signal.reason as Error) : e
        })
      }
    }
  }

  private async proposeRaw(caller: Caller, cmd: CommandProps, opts: CallOpts): Promise<unknown> {
    if (caller.user === '') throw new FsError('ACCESS_DENIED', 'no user given')
    // A verified principal (src/auth) also names its project and how it was authenticated, for the record.
    const identity = isPrincipal(caller)
      ? commandIdentity(caller, '')
      : { user: caller.user, groups: [...caller.groups], project: caller.project ?? '' }
    const data = encodeCommand({ ...cmd, nowMs: this.clock(), ...identity })
    // Sessions are per user: another user's clientId names another session (no replayed results).
    const session =
      opts.session === undefined
        ? undefined
        : { clientId: `${caller.user}\u0000${opts.session.clientId}`, seq: opts.session.seq }
    const result = (await this.consensus.propose(data, { signal: opts.signal, session })) as MetaResult
    if (!result.ok) throw errorFromResult(result.code, result.message)
    return result.value
  }
}

function isPrincipal(c: Caller): c is Principal {
  return typeof (c as Partial<Principal>).via === 'string'
}

/** Creates the file-system service over a consensus group and this replica's state machine. */
export function createFsService(init: FsServiceInit): FsService {
  return new FsService(init)
}
