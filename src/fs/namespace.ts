import {
  be64,
  childrenRange,
  inodeKey,
  type ApplyContext,
  type ClusterSettings,
  type CommandOp,
  type MetaModule,
  type MetaModuleFactory,
  type MetaStore,
  type Table,
  type metaProto,
} from '../meta/index.js'
import { md5md5crc32c, type FileChecksum } from './checksum.js'
import { FsError } from './errors.js'
import {
  counterCodec,
  DIRECTORY,
  EMPTY,
  FILE,
  inodeCodec,
  leaseCodec,
  ROOT_ID,
  type Block,
  type Inode,
  type Lease,
  type XAttr,
} from './inode.js'
import { isSameOrUnder, joinPath, parsePath } from './path.js'
import { actionOf, type Admitted, type PathRules } from './access.js'
import {
  addUsage,
  checkQuota,
  dirQuotaCodec,
  hasLimits,
  negate,
  QUOTA_KEEP,
  QUOTA_NONE,
  QUOTA_TYPES,
  sumUsage,
  typeUsed,
  type DirQuota,
  type Usage,
} from './quota.js'
import {
  lockLive,
  SUBTREE_LOCKS_MAX,
  SUBTREE_OP_KINDS,
  subtreeLockCodec,
  type SubtreeHeld,
  type SubtreeLock,
  type SubtreeOpKind,
  type SubtreeWalkStats,
} from './subtree.js'
import {
  ALL,
  allows,
  checkPermission,
  permissionDenied,
  READ,
  READ_EXECUTE,
  WRITE,
  type Caller,
  type Need,
  type Resolved,
} from './permission.js'

/** Hadoop's dfs.replication.max. */
export const REPLICATION_MAX = 512
/** Block sizes are multiples of this (HDFS: of bytesPerChecksum, 512). */
export const BLOCK_SIZE_MULTIPLE = 512
/** Hadoop's dfs.namenode.fs-limits.max-xattrs-per-inode and max-xattr-size (name + value bytes). */
export const XATTRS_PER_INODE_MAX = 32
export const XATTR_BYTES_MAX = 16_384
/** Hadoop's dfs.ls.limit: entries per listing page. */
export const LIST_PAGE_MAX = 1000
/** Open files (leases) kept at most; past it, hard-expired leases are swept before a new one is refused. */
export const LEASES_MAX = 100_000
/** Owner and group names. */
export const PRINCIPAL_BYTES_MAX = 255
/**
 * The parent id under which detached subtrees wait to be purged (below ROOT_ID: no directory has it).
 * A detached root is keyed `(DETACHED_PARENT, be64(its id))`, so the roots are one range in key order.
 */
export const DETACHED_PARENT = 1

export const XATTR_CREATE = 1
export const XATTR_REPLACE = 2

/** Mutating operations of the namespace (Command oneof names). */
export const FS_OPS = [
  'mkdirs',
  'createFile',
  'append',
  'closeFile',
  'rename',
  'delete',
  'setPermission',
  'setOwner',
  'setTimes',
  'setReplication',
  'setXAttr',
  'removeXAttr',
  'renewLease',
  'recoverLease',
  'concat',
  'truncate',
  'setQuota',
  'purgeDetached',
  'lockSubtree',
  'unlockSubtree',
] as const satisfies readonly CommandOp[]

export type FsOp = (typeof FS_OPS)[number]

/** An inode as reads present it. */
export interface FileStatus {
  readonly fileId: number
  /** The last path component ('' for the root). */
  readonly name: string
  readonly type: 'FILE' | 'DIRECTORY'
  readonly permission: number
  readonly owner: string
  readonly group: string
  readonly length: number
  readonly modificationTime: number
  readonly accessTime: number
  readonly replication: number
  readonly blockSize: number
  readonly childrenNum: number
  /** The content lives inside the metadata (small file). */
  readonly inlined: boolean
  /** Holder of the write lease when the file is open for writing. */
  readonly leaseHolder: string | null
  readonly hasXAttrs: boolean
}

export interface Listing {
  readonly entries: FileStatus[]
  /** Children after this page (LISTSTATUS_BATCH's remainingEntries). */
  readonly remaining: number
  /** The path is a file, listed as itself. */
  readonly ofFile: boolean
}

export interface ContentSummary {
  readonly length: number
  readonly fileCount: number
  readonly directoryCount: number
  readonly spaceConsumed: number
  /** -1: none. */
  readonly quota: number
  /** -1: none. */
  readonly spaceQuota: number
  /** Quotas by storage type, with what the subtree uses of each. */
  readonly typeQuota: Readonly<Record<string, { quota: number; consumed: number }>>
}

/** HDFS's QuotaUsage of a directory. */
export interface QuotaUsage {
  readonly fileAndDirectoryCount: number
  readonly quota: number
  readonly spaceConsumed: number
  readonly spaceQuota: number
  readonly typeQuota: Readonly<Record<string, { quota: number; consumed: number }>>
}

/** Results of the mutating ops (apply's `value`). */
export interface OpResults {
  mkdirs: { created: boolean }
  createFile: { fileId: number; size: number }
  /**
   * `path`: where the file is now. `inlineData`: when the append leaves an inline file open (a writer
   * that will move its bytes into a block), those bytes (base64: results travel as JSON between nodes),
   * if the caller may read them.
   */
  append: { size: number; inlined: boolean; fileId: number; path: string; inlineData?: string }
  closeFile: { closed: true }
  rename: { renamed: boolean }
  delete: { deleted: boolean }
  setPermission: null
  setOwner: null
  setTimes: null
  setReplication: { changed: boolean }
  setXAttr: null
  removeXAttr: null
  renewLease: { renewed: number }
  recoverLease: { closed: boolean }
  concat: null
  truncate: { done: boolean; size: number }
  setQuota: null
  /** Inodes freed by this step; detached subtrees left (0: all purged). */
  purgeDetached: { purged: number; remaining: number }
  /** The locked directory (src/fs/subtree.ts). */
  lockSubtree: { inodeId: number }
  unlockSubtree: { released: boolean }
}

/** How a content summary walks: the inodes it counts between two yields, and when to stop. */
export interface SummaryOpts {
  /** Inodes counted before yielding to the event loop (default: the contentSummaryBatchInodes setting). */
  readonly batchInodes?: number
  readonly signal?: AbortSignal
}

interface Op {
  /** The command's Raft index (generation stamps). */
  readonly index: number
  /** Who the command runs as for POSIX: what it creates is owned by this identity. */
  readonly caller: Caller
  /** The command's principal as proposed (its project too): what the path rules decide on. */
  readonly principal: Caller
  readonly su: boolean
  readonly now: number
  readonly clientName: string
  readonly settings: ClusterSettings
  /** The subtree lock this command holds and its walk's result (a subtree operation's commit). */
  readonly subtree?: SubtreeHeld
  emit(op: string, path: string, inodeId: number, dst?: string): void
}

/**
 * The file-system namespace: the `fs.inode`, `fs.lease` and `fs.counter` tables and the commands on
 * them. Commands are applied by the metadata state machine (all-or-nothing: a thrown FsError rolls the
 * command back); the query methods serve reads from this replica's state, with the same permission
 * checks.
 */
export class Namespace implements MetaModule {
  readonly name = 'fs'
  readonly ops = FS_OPS
  private readonly inodes: Table<Inode>
  private readonly leases: Table<Lease>
  private readonly counters: Table<{ value: number }>
  private readonly quotas: Table<DirQuota>
  private readonly locks: Table<SubtreeLock>
  /** inode id → key in `fs.inode` (derived; kept by the table's hooks through commits, rollbacks, restores). */
  private readonly keyById = new Map<number, string>()
  /** Ids of the directories with a row in `fs.quota` (derived, like keyById). */
  private readonly quotaIds = new Set<number>()
  /** Lease holder (clientName) → inode ids of its leases (derived, like keyById): RenewLease follows the client's files. */
  private readonly leasesByHolder = new Map<string, Set<number>>()
  /** Ids of the directories with a row in `fs.subtree`, live or not (derived, like keyById). */
  private readonly lockedIds = new Set<number>()
  /**
   * Inodes the subtree walks of the command being applied may still visit (subtreeBatchInodes inside
   * Namespace.apply; unbounded for asSystem, whose caller cannot run a subtree operation) and have
   * visited. Not state: reset by every apply.
   */
  private walkBudget = Number.POSITIVE_INFINITY
  private walkVisited = 0
  private walkStats: SubtreeWalkStats = { lastApplyInodes: 0, maxApplyInodes: 0 }

  constructor(private readonly store: MetaStore) {
    this.inodes = store.table(
      'fs.inode',
      inodeCodec,
      {
        onSet: (key, prev, next) => {
          if (prev !== undefined && prev.id !== next.id) this.keyById.delete(prev.id)
          this.keyById.set(next.id, key)
        },
        onDelete: (_key, prev) => this.keyById.delete(prev.id),
        onClear: () => this.keyById.clear(),
      },
      // A restart reads each inode without its inline bytes (the hook above needs only the id).
      { onDisk: true, slim: (inode: Inode): Inode => ({ ...inode, data: EMPTY }) },
    )
    const holderIndex = (l: Lease, add: boolean): void => {
      let ids = this.leasesByHolder.get(l.holder)
      if (add) {
        if (ids === undefined) this.leasesByHolder.set(l.holder, (ids = new Set()))
        ids.add(l.inodeId)
      } else {
        ids?.delete(l.inodeId)
        if (ids?.size === 0) this.leasesByHolder.delete(l.holder)
      }
    }
    this.leases = store.table('fs.lease', leaseCodec, {
      onSet: (_key, prev, next) => {
        if (prev !== undefined) holderIndex(prev, false)
        holderIndex(next, true)
      },
      onDelete: (_key, prev) => holderIndex(prev, false),
      onClear: () => this.leasesByHolder.clear(),
    })
    this.counters = store.table('fs.counter', counterCodec)
    this.quotas = store.table('fs.quota', dirQuotaCodec, {
      onSet: (key) => this.quotaIds.add(Number.parseInt(key, 16)),
      onDelete: (key) => this.quotaIds.delete(Number.parseInt(key, 16)),
      onClear: () => this.quotaIds.clear(),
    })
    this.locks = store.table('fs.subtree', subtreeLockCodec, {
      onSet: (key) => this.lockedIds.add(Number.parseInt(key, 16)),
      onDelete: (key) => this.lockedIds.delete(Number.parseInt(key, 16)),
      onClear: () => this.lockedIds.clear(),
    })
  }

  init({ settings }: { settings: ClusterSettings }): void {
    if (!this.inodes.has(inodeKey(0, ''))) {
      this.inodes.put(inodeKey(0, ''), {
        ...newInode(ROOT_ID, 0, '', DIRECTORY, 0o755, settings.superuser, settings.supergroup, 0),
      })
    }
    if (!this.counters.has('nextInodeId')) this.counters.put('nextInodeId', { value: ROOT_ID + 1 })
  }

  apply(ctx: ApplyContext): unknown {
    this.walkBudget = ctx.settings.subtreeBatchInodes
    this.walkVisited = 0
    const cmd = ctx.cmd
    const raw = cmd.delete?.subtree ?? cmd.rename?.subtree ?? cmd.setQuota?.subtree
    const held = raw == null ? undefined : subtreeHeld(raw)
    try {
      const result = this.applyOp(ctx, held)
      // A subtree operation's commit that committed gives its lock back, whatever it answered (a
      // legacy rename's false, too).
      if (held !== undefined) {
        const key = be64(held.inodeId)
        if (this.locks.get(key)?.opId === held.opId) this.locks.delete(key)
      }
      return result
    } finally {
      const visited = this.walkVisited
      this.walkStats = {
        lastApplyInodes: visited,
        maxApplyInodes: Math.max(this.walkStats.maxApplyInodes, visited),
      }
      this.walkBudget = Number.POSITIVE_INFINITY
      this.walkVisited = 0
    }
  }

  private applyOp(ctx: ApplyContext, held: SubtreeHeld | undefined): unknown {
    const cmd = ctx.cmd
    const principal: Caller =
      cmd.project === ''
        ? { user: cmd.user, groups: cmd.groups }
        : { user: cmd.user, groups: cmd.groups, project: cmd.project }
    const op: Op = {
      index: ctx.index,
      caller: this.rules?.identity(principal) ?? principal,
      principal,
      su: ctx.isSuperuser,
      now: cmd.nowMs,
      clientName: cmd.clientName,
      settings: ctx.settings,
      ...(held === undefined ? {} : { subtree: held }),
      emit: (name, path, inodeId, dst) => ctx.emit({ op: name, path, inodeId, dst }),
    }
    if (cmd.user === '') throw new FsError('ACCESS_DENIED', 'the command carries no user')
    switch (cmd.op as FsOp) {
      case 'mkdirs':
        return this.mkdirs(op, str(cmd.mkdirs?.path), num(cmd.mkdirs?.permission))
      case 'createFile': {
        const c = cmd.createFile!
        return this.createFile(op, str(c.path), bytes(c.data), {
          overwrite: !!c.overwrite,
          permission: num(c.permission),
          replication: num(c.replication),
          blockSize: num(c.blockSize),
          close: !!c.close,
          createParent: !!c.createParent,
          mustExist: !!c.mustExist,
        })
      }
      case 'append': {
        const fileId = num(cmd.append?.fileId)
        let path = str(cmd.append?.path)
        if (fileId > 0) {
          // Bound to the inode its WebHDFS step one found: wherever a rename has put it since.
          const f = this.fileById(fileId)
          if (f === undefined || f.type !== FILE)
            throw new FsError('FILE_NOT_FOUND', `File does not exist: ${path || `inode ${fileId}`}`)
          path = this.pathOf(fileId)
        }
        return this.append(op, path, bytes(cmd.append?.data), !!cmd.append?.close)
      }
      case 'closeFile':
        return this.closeFile(op, str(cmd.closeFile?.path))
      case 'rename': {
        const c = cmd.rename!
        return this.rename(op, str(c.src), str(c.dst), !!c.legacy, !!c.overwrite)
      }
      case 'delete': {
        const fileId = num(cmd.delete?.fileId)
        if (fileId > 0) {
          // A writer removing the file it failed to write, wherever it is now: only while its
          // clientName holds the file's lease (`path` names where the write began).
          const f = this.fileById(fileId)
          if (f === undefined || f.type !== FILE) return { deleted: false }
          this.fileUnderLease(ctx, { fileId })
          return this.delete(op, this.pathOf(fileId), false)
        }
        return this.delete(op, str(cmd.delete?.path), !!cmd.delete?.recursive)
      }
      case 'setPermission':
        return this.setPermission(op, str(cmd.setPermission?.path), num(cmd.setPermission?.permission))
      case 'setOwner':
        return this.setOwner(op, str(cmd.setOwner?.path), str(cmd.setOwner?.owner), str(cmd.setOwner?.group))
      case 'setTimes':
        return this.setTimes(op, str(cmd.setTimes?.path), num(cmd.setTimes?.mtime), num(cmd.setTimes?.atime))
      case 'setReplication':
        return this.setReplication(op, str(cmd.setReplication?.path), num(cmd.setReplication?.replication))
      case 'setXAttr': {
        const c = cmd.setXAttr!
        return this.setXAttr(op, str(c.path), str(c.name), bytes(c.value), num(c.flags))
      }
      case 'removeXAttr':
        return this.removeXAttr(op, str(cmd.removeXAttr?.path), str(cmd.removeXAttr?.name))
      case 'renewLease':
        return this.renewLease(op)
      case 'recoverLease':
        return this.recoverLease(op, str(cmd.recoverLease?.path))
      case 'concat':
        return this.concat(op, str(cmd.concat?.target), cmd.concat?.sources ?? [])
      case 'truncate':
        return this.truncate(op, str(cmd.truncate?.path), num(cmd.truncate?.newLength))
      case 'setQuota': {
        const c = cmd.setQuota!
        return this.setQuota(
          op,
          str(c.path),
          num(c.namespaceQuota),
          num(c.storagespaceQuota),
          str(c.storageType),
        )
      }
      case 'purgeDetached':
        if (!op.su) throw new FsError('ACCESS_DENIED', `${cmd.user} may not purge deleted subtrees`)
        return this.purgeDetached(op)
      case 'lockSubtree': {
        const c = cmd.lockSubtree!
        return this.lockSubtree(op, str(c.path), str(c.opId), str(c.op))
      }
      case 'unlockSubtree':
        return this.unlockSubtree(op, num(cmd.unlockSubtree?.inodeId), str(cmd.unlockSubtree?.opId))
      default:
        throw new Error(`fs: op ${String(cmd.op)} routed to the namespace`)
    }
  }

  // ---------------------------------------------------------------- mutations

  private mkdirs(op: Op, path: string, permission: number): OpResults['mkdirs'] {
    const r = this.resolve(parsePath(path))
    checkMode(permission)
    const missingFrom = firstMissing(r)
    if (r.fileAt >= 0) this.throwNotDir(r)
    const last = r.inodes[r.inodes.length - 1]
    if (last !== undefined) {
      this.check(op, r, {})
      if (last.type !== DIRECTORY)
        throw new FsError('FILE_ALREADY_EXISTS', `Path is not a directory: ${path}`)
      return { created: false }
    }
    this.check(op, r, { ancestor: WRITE })
    this.charge(this.quotaDirsOf(r, missingFrom), { ns: r.names.length - missingFrom + 1, ss: 0 })
    const id = this.createDirs(op, r, missingFrom, permission)
    op.emit('mkdirs', path, id)
    return { created: true }
  }

  private createFile(
    op: Op,
    path: string,
    data: Uint8Array,
    o: {
      overwrite: boolean
      permission: number
      replication: number
      blockSize: number
      close: boolean
      createParent: boolean
      mustExist: boolean
    },
  ): OpResults['createFile'] {
    const names = parsePath(path)
    if (names.length === 0) throw new FsError('FILE_ALREADY_EXISTS', '/ already exists as a directory')
    checkMode(o.permission)
    const replication = o.replication === 0 ? op.settings.defaultReplication : checkReplication(o.replication)
    const blockSize =
      o.blockSize === 0 ? op.settings.defaultBlockSize : checkBlockSize(o.blockSize, op.settings.minBlockSize)
    this.checkInlineSize(op, data.length, path)
    if (!o.close && op.clientName === '')
      throw new FsError('INVALID_ARGUMENT', 'a file left open needs a clientName to hold its lease')
    const r = this.resolve(names)
    if (r.fileAt >= 0) this.throwNotDir(r)
    this.check(op, r, { ancestor: WRITE })
    const existing = r.inodes[names.length]
    let parent = r.inodes[names.length - 1]
    // HDFS's order (FSDirWriteFileOp.resolvePathForStartFile, then startFile).
    if (existing !== undefined) {
      if (existing.type === DIRECTORY)
        throw new FsError('FILE_ALREADY_EXISTS', `${path} already exists as a directory`)
      if (o.overwrite) this.check(op, r, { access: WRITE })
    } else {
      if (parent === undefined && !o.createParent)
        throw new FsError('FILE_NOT_FOUND', `Parent directory doesn't exist: ${joinPath(names.slice(0, -1))}`)
      if (o.mustExist) throw new FsError('FILE_NOT_FOUND', `Can't overwrite non-existent ${path}`)
    }
    // The existing directories above the new file are charged: the file and any parents made for it.
    const existingUpTo = Math.min(firstMissing(r), names.length)
    const quotaDirs = this.quotaDirsOf(r, existingUpTo)
    let delta: Usage = { ns: names.length - existingUpTo + 1, ss: data.length * replication }
    if (existing !== undefined) {
      this.checkLeaseFree(op, existing, path)
      if (!o.overwrite)
        throw new FsError(
          'FILE_ALREADY_EXISTS',
          `${path} for client ${op.clientName || op.caller.user} already exists`,
        )
      // HDFS replaces an overwritten file by a new inode: readers holding the old id see it gone.
      delta = sumUsage(delta, negate(this.usageOf(existing)))
      this.leases.delete(leaseKey(existing.id))
      this.inodes.delete(this.keyOf(existing.id))
      this.touchDir(existing.parent, -1, op.now)
    }
    this.charge(quotaDirs, delta)
    if (parent === undefined) {
      const dirId = this.createDirs(op, r, firstMissing(r), 0o755, names.length - 1)
      parent = this.byId(dirId)
    }
    const id = this.nextId()
    const inode: Inode = {
      ...newInode(
        id,
        parent.id,
        names[names.length - 1]!,
        FILE,
        o.permission,
        op.caller.user,
        parent.group,
        op.now,
      ),
      replication,
      blockSize,
      size: data.length,
      inlined: true,
      data: copy(data),
    }
    this.inodes.put(inodeKey(parent.id, inode.name), inode)
    this.touchDir(parent.id, +1, op.now)
    if (!o.close) this.putLease(op, id)
    op.emit('create', path, id)
    return { fileId: id, size: data.length }
  }

  private append(op: Op, path: string, data: Uint8Array, close: boolean): OpResults['append'] {
    const r = this.resolve(parsePath(path))
    this.check(op, r, { access: WRITE })
    const file = this.requireFile(r, path)
    if (!close && op.clientName === '')
      throw new FsError('INVALID_ARGUMENT', 'a file left open needs a clientName to hold its lease')
    const lease = this.leases.get(leaseKey(file.id))
    if (lease !== undefined && !(lease.holder === op.clientName && op.clientName !== ''))
      this.checkLeaseFree(op, file, path)
    if (!file.inlined) {
      // A file in blocks: the append only takes the lease; the data goes to datanodes (src/fs/blocks/blockmap.ts).
      if (data.length > 0)
        throw new FsError('UNSUPPORTED_OPERATION', `${path} is stored in blocks: append through a datanode`)
      if (close) this.dropLease(file.id)
      else this.putLease(op, file.id)
      return { size: file.size, inlined: false, fileId: file.id, path }
    }
    const size = file.size + data.length
    this.checkInlineSize(op, size, path)
    this.charge(this.quotaDirsOf(r, r.names.length), { ns: 0, ss: data.length * file.replication })
    const joined = new Uint8Array(size)
    joined.set(file.data, 0)
    joined.set(data, file.size)
    this.putInode({ ...file, data: joined, size, mtime: op.now })
    if (close) this.dropLease(file.id)
    else this.putLease(op, file.id)
    op.emit('append', path, file.id)
    // The writer rewrites the inline bytes into the file's first block: it gets them with its lease, so
    // that nothing changes them in between (it reads them as the caller: READ is needed too).
    let inlineData: string | undefined
    if (!close && size > 0 && this.mayAccess(op, r, READ))
      inlineData = Buffer.from(joined.buffer, joined.byteOffset, joined.length).toString('base64')
    return { size, inlined: true, fileId: file.id, path, ...(inlineData === undefined ? {} : { inlineData }) }
  }

  private mayAccess(op: Op, r: Resolved, access: number): boolean {
    try {
      this.check(op, r, { access })
      return true
    } catch {
      return false
    }
  }

  private closeFile(op: Op, path: string): OpResults['closeFile'] {
    const r = this.resolve(parsePath(path))
    this.check(op, r, {})
    const file = this.requireFile(r, path)
    const lease = this.leases.get(leaseKey(file.id))
    if (
      lease === undefined ||
      lease.holder !== op.clientName ||
      op.clientName === '' ||
      this.leaseHardExpired(op, lease)
    ) {
      throw new FsError(
        'LEASE_NOT_HELD',
        `No lease on ${path}: ${op.clientName || '(no client)'} does not hold it`,
      )
    }
    this.dropLease(file.id)
    this.putInode({ ...file, mtime: op.now })
    op.emit('close', path, file.id)
    return { closed: true }
  }

  private rename(op: Op, src: string, dst: string, legacy: boolean, overwrite: boolean): OpResults['rename'] {
    // Names as resolved (a shared dataset's alias stands for the dataset's own path).
    const sr = this.resolve(parsePath(src))
    const srcNames = sr.names
    let dr = this.resolve(parsePath(dst))
    let dstNames = dr.names
    const srcInode = sr.inodes[srcNames.length]
    // Hadoop's old rename: an existing directory as destination means "move into it".
    if (legacy && dr.inodes[dstNames.length]?.type === DIRECTORY && srcNames.length > 0) {
      dr = this.resolve(parsePath(joinPath([...dstNames, srcNames[srcNames.length - 1]!])))
      dstNames = dr.names
    }
    const dstPath = joinPath(dstNames)
    const srcPath = joinPath(srcNames)
    this.rules?.admitMove(op.principal, op.su, srcNames, dstNames)
    this.check(op, sr, { parent: WRITE })
    this.check(op, dr, { ancestor: WRITE })
    const fail = (
      code:
        | 'FILE_NOT_FOUND'
        | 'FILE_ALREADY_EXISTS'
        | 'INVALID_ARGUMENT'
        | 'NOT_A_DIRECTORY'
        | 'DIRECTORY_NOT_EMPTY',
      msg: string,
    ): OpResults['rename'] => {
      if (legacy) return { renamed: false }
      throw new FsError(code, msg)
    }
    if (srcInode === undefined) return fail('FILE_NOT_FOUND', `rename source ${src} is not found`)
    if (srcNames.length === 0) return fail('INVALID_ARGUMENT', 'rename source cannot be the root')
    // A subtree operation's commit holds the lock on the source; any other rename must find no lock
    // under the source (it would move a locked subtree).
    if (op.subtree !== undefined) this.requireHeld(op, srcInode, 'rename')
    else if (srcInode.type === DIRECTORY) this.checkNoLockBelow(op, srcInode, src)
    if (dstPath === srcPath) {
      if (legacy) return { renamed: true }
      throw new FsError('FILE_ALREADY_EXISTS', `The source ${src} and destination ${dstPath} are the same`)
    }
    if (isSameOrUnder(dstPath, srcPath))
      return fail(
        'INVALID_ARGUMENT',
        `Rename destination ${dstPath} is a directory or file under source ${src}`,
      )
    if (dr.fileAt >= 0)
      return fail(
        'NOT_A_DIRECTORY',
        `rename destination parent ${joinPath(dstNames.slice(0, dr.fileAt))} is a file`,
      )
    const dstParent = dr.inodes[dstNames.length - 1]
    if (dstParent === undefined)
      return fail('FILE_NOT_FOUND', `rename destination parent ${joinPath(dstNames.slice(0, -1))} not found`)
    const dstInode = dr.inodes[dstNames.length]
    if (dstInode !== undefined) {
      if (legacy || !overwrite)
        return fail('FILE_ALREADY_EXISTS', `rename destination ${dstPath} already exists`)
      if (dstInode.type !== srcInode.type) {
        throw new FsError(
          'FILE_ALREADY_EXISTS',
          `Source ${src} and destination ${dstPath} must both be directories or both files`,
        )
      }
      if (dstInode.type === DIRECTORY && dstInode.childrenNum > 0)
        throw new FsError('DIRECTORY_NOT_EMPTY', `rename destination directory ${dstPath} is not empty`)
      this.check(op, dr, { parent: WRITE })
      this.charge(this.quotaDirsOf(dr, dstNames.length), negate(this.usageOf(dstInode)))
      this.leases.delete(leaseKey(dstInode.id))
      this.quotas.delete(be64(dstInode.id))
      this.inodes.delete(this.keyOf(dstInode.id))
      this.touchDir(dstInode.parent, -1, op.now)
    }
    this.moveUsage(this.quotaDirsOf(sr, srcNames.length), this.quotaDirsOf(dr, dstNames.length), srcInode, op)
    this.dropLock(srcInode.id)
    // The subtree's children are keyed by the moved inode's id: moving one row moves the whole subtree.
    this.inodes.delete(this.keyOf(srcInode.id))
    this.touchDir(srcInode.parent, -1, op.now)
    const name = dstNames[dstNames.length - 1]!
    this.inodes.put(inodeKey(dstParent.id, name), { ...srcInode, parent: dstParent.id, name })
    this.touchDir(dstParent.id, +1, op.now)
    op.emit('rename', src, srcInode.id, dstPath)
    return { renamed: true }
  }

  private delete(op: Op, path: string, recursive: boolean): OpResults['delete'] {
    const names = parsePath(path)
    const r = this.resolve(names)
    const inode = r.inodes[names.length]
    if (inode !== undefined && inode.type === DIRECTORY && inode.childrenNum > 0 && !recursive) {
      throw new FsError('DIRECTORY_NOT_EMPTY', `\`${path} is non empty': Directory is not empty`)
    }
    if (op.subtree !== undefined) {
      // A subtree operation's commit: its walk checked the subtree under the lock it still holds.
      if (inode === undefined || names.length === 0)
        throw new FsError('SUBTREE_LOCKED', `${path}: the subtree operation's lock is gone`)
      this.requireHeld(op, inode, 'delete')
      this.check(
        op,
        r,
        op.subtree.checked ? { parent: WRITE } : { parent: WRITE, sub: ALL, ignoreEmptyDir: true },
      )
    } else {
      this.check(op, r, { parent: WRITE, sub: ALL, ignoreEmptyDir: true })
    }
    if (inode === undefined || names.length === 0) return { deleted: false }
    const quotaDirs = this.quotaDirsOf(r, names.length)
    if (inode.type === DIRECTORY && op.subtree === undefined) this.checkNoLockBelow(op, inode, path)
    this.dropLock(inode.id)
    if (inode.type === FILE || inode.childrenNum === 0) {
      this.charge(quotaDirs, negate(this.removeSubtree(inode)))
    } else {
      // A directory with children is detached, not removed: it leaves the namespace in this command
      // (invisible at once, by path and by inode id) and the metadata leader purges it in bounded
      // PurgeDetached steps, so that no single apply is as long as the subtree is large. Its usage
      // leaves the quotas above it now: read from its own quota row when it has one (O(1)), measured
      // only when a directory above has a quota and it has none.
      if (quotaDirs.length > 0) this.charge(quotaDirs, negate(this.usageOf(inode, op)))
      this.inodes.delete(this.keyOf(inode.id))
      const name = be64(inode.id)
      this.inodes.put(inodeKey(DETACHED_PARENT, name), { ...inode, parent: DETACHED_PARENT, name })
      this.onDetached?.()
    }
    this.touchDir(inode.parent, -1, op.now)
    op.emit('delete', path, inode.id)
    return { deleted: true }
  }

  /**
   * One bounded step of purging detached subtrees: frees up to `purgeBatchInodes` inodes (with their
   * leases and quota rows), deepest first, oldest subtree first — a directory goes after its children,
   * so a later step resumes by walking down from the subtree's root again (O(depth)). Their usage was
   * released when they were detached; their blocks became orphans then and the block manager's
   * reconcile loop forgets them. Deterministic: the order is key order.
   */
  private purgeDetached(op: Op): OpResults['purgeDetached'] {
    let budget = op.settings.purgeBatchInodes
    let purged = 0
    const [start, end] = childrenRange(DETACHED_PARENT)
    while (budget > 0) {
      const first = this.inodes.range(start, end).next()
      if (first.done === true) break
      const stack: Inode[] = [first.value[1]]
      while (stack.length > 0 && budget > 0) {
        const top = stack[stack.length - 1]!
        const child = top.type === DIRECTORY ? this.children(top).next() : undefined
        if (child !== undefined && child.done !== true) {
          if (child.value.type === DIRECTORY) {
            stack.push(child.value)
            continue
          }
          this.purgeOne(child.value)
        } else {
          this.purgeOne(top)
          stack.pop()
        }
        budget--
        purged++
      }
    }
    this.walkVisited += purged
    return { purged, remaining: this.inodes.countRange(start, end) }
  }

  private purgeOne(inode: Inode): void {
    this.leases.delete(leaseKey(inode.id))
    if (inode.type === DIRECTORY && this.quotaIds.has(inode.id)) this.quotas.delete(be64(inode.id))
    this.dropLock(inode.id)
    this.inodes.delete(this.keyOf(inode.id))
  }

  // ---- subtree locks (src/fs/subtree.ts)

  /**
   * Step 1 of a subtree operation: the operation's own checks on the path, then the lock — refused
   * when a live lock of another operation is on the directory, above it or below it.
   */
  private lockSubtree(op: Op, path: string, opId: string, kind: string): OpResults['lockSubtree'] {
    if (!(SUBTREE_OP_KINDS as readonly string[]).includes(kind))
      throw new FsError(
        'INVALID_ARGUMENT',
        `lockSubtree: op ${JSON.stringify(kind)} is not one of ${SUBTREE_OP_KINDS.join(', ')}`,
      )
    if (opId === '' || opId.length > 128)
      throw new FsError('INVALID_ARGUMENT', 'lockSubtree: an opId of 1..128 characters')
    const names = parsePath(path)
    const r = this.resolve(names)
    if ((kind as SubtreeOpKind) === 'setQuota') {
      if (!op.su)
        throw new FsError(
          'ACCESS_DENIED',
          `Access denied for user ${op.caller.user}. Superuser privilege is required`,
        )
      this.check(op, r, {})
    } else {
      this.check(op, r, { parent: WRITE })
    }
    const dir = r.inodes[names.length]
    if (dir === undefined) throw new FsError('FILE_NOT_FOUND', `File does not exist: ${path}`)
    if (dir.type !== DIRECTORY || names.length === 0)
      throw new FsError('INVALID_ARGUMENT', `lockSubtree: ${path} is not a directory below the root`)
    this.checkNoLockBelow(op, dir, path)
    let live = 0
    for (const [, l] of this.locks.range(''))
      if (lockLive(l, op.now, op.settings.subtreeLockTimeoutMs)) live++
    if (live >= SUBTREE_LOCKS_MAX)
      throw new FsError('SUBTREE_LOCKED', `${SUBTREE_LOCKS_MAX} subtree operations run already: retry later`)
    this.locks.put(be64(dir.id), {
      inodeId: dir.id,
      opId,
      op: kind,
      lockedMs: op.now,
      user: op.principal.user,
    })
    return { inodeId: dir.id }
  }

  /** Step 4: gives up the lock `opId` holds on `inodeId` (its user or the superuser); false when it held none. */
  private unlockSubtree(op: Op, inodeId: number, opId: string): OpResults['unlockSubtree'] {
    const lock = this.locks.get(be64(inodeId))
    if (lock === undefined || lock.opId !== opId) return { released: false }
    if (lock.user !== op.principal.user && !op.su)
      throw new FsError(
        'ACCESS_DENIED',
        `${op.principal.user} may not release a subtree lock of ${lock.user}`,
      )
    this.locks.delete(be64(inodeId))
    return { released: true }
  }

  /** A subtree operation's commit: the lock on `inode` must still be this operation's, live, for `kind`. */
  private requireHeld(op: Op, inode: Inode, kind: SubtreeOpKind): void {
    const held = op.subtree!
    const lock = this.locks.get(be64(inode.id))
    if (
      held.inodeId !== inode.id ||
      lock === undefined ||
      lock.opId !== held.opId ||
      lock.op !== kind ||
      // The walk checked the lock-taker's access: nobody else may commit with its result.
      lock.user !== op.principal.user ||
      !lockLive(lock, op.now, op.settings.subtreeLockTimeoutMs)
    )
      throw new FsError(
        'SUBTREE_LOCKED',
        `the ${kind} of ${this.pathOf(inode.id)} holds no subtree lock of ${op.principal.user} (expired after subtreeLockTimeoutMs, taken by another user, or the path now names another inode)`,
      )
  }

  /** SUBTREE_LOCKED when another operation holds a live lock on inode `id`. */
  private checkNotLocked(
    op: { now: number; settings: ClusterSettings; subtree?: SubtreeHeld },
    id: number,
  ): void {
    if (!this.lockedIds.has(id)) return
    const lock = this.locks.get(be64(id))!
    if (op.subtree?.opId === lock.opId || !lockLive(lock, op.now, op.settings.subtreeLockTimeoutMs)) return
    throw new FsError(
      'SUBTREE_LOCKED',
      `${this.pathOf(id)} is locked by a ${lock.op} of ${lock.user} (a subtree operation) until it ends or ${new Date(lock.lockedMs + op.settings.subtreeLockTimeoutMs).toISOString()}: retry`,
    )
  }

  /**
   * SUBTREE_LOCKED when another operation holds a live lock on a directory under `dir` (a delete or
   * rename of `dir` would take it along). O(live locks × depth): the lock table is small.
   */
  private checkNoLockBelow(op: Op, dir: Inode, path: string): void {
    if (this.lockedIds.size === 0) return
    for (const [, lock] of this.locks.range('')) {
      if (lock.opId === op.subtree?.opId || !lockLive(lock, op.now, op.settings.subtreeLockTimeoutMs))
        continue
      for (let cur = this.rawById(lock.inodeId); cur !== undefined; cur = this.rawById(cur.parent)) {
        if (cur.id === dir.id)
          throw new FsError(
            'SUBTREE_LOCKED',
            `${path} holds ${this.pathOf(lock.inodeId)}, locked by a ${lock.op} of ${lock.user} (a subtree operation): retry`,
          )
        if (cur.parent === 0) break
      }
    }
  }

  private dropLock(id: number): void {
    if (this.lockedIds.has(id)) this.locks.delete(be64(id))
  }

  /**
   * Step 2 of a subtree operation, outside apply (after a read barrier on this replica): walks the
   * locked directory `inodeId` in batches of `batchInodes` inodes with a yield to the event loop
   * between them, and answers what it uses. With `check`, refuses with ACCESS_DENIED unless `caller`
   * (as the path rules and POSIX judge it, exactly as the Delete command would) has ALL on every
   * non-empty directory of it (HDFS's subAccess of a delete). Nothing under the lock changes while it
   * runs; SUBTREE_LOCKED when the lock `opId` is no longer there at a batch boundary.
   */
  async walkLocked(
    caller: Caller,
    inodeId: number,
    opId: string,
    opts: { check: boolean; batchInodes?: number; signal?: AbortSignal },
  ): Promise<{ namespaceUsed: number; storagespaceUsed: number }> {
    const stillHeld = (): void => {
      if (this.locks.get(be64(inodeId))?.opId !== opId)
        throw new FsError('SUBTREE_LOCKED', `the subtree operation lost its lock on inode ${inodeId}`)
    }
    stillHeld()
    const root = this.rawById(inodeId)!
    const rootPath = this.pathOf(inodeId)
    const r = this.resolve(parsePath(rootPath))
    const need: Need = { parent: WRITE, sub: ALL, ignoreEmptyDir: true }
    const su = this.store.isSuperuser(caller.user, caller.groups)
    const posixCaller = this.rules?.identity(caller) ?? caller
    const posix = this.admit(caller, su, r, need) ?? { caller: posixCaller, su }
    const checking = opts.check && !posix.su
    const batch = Math.max(1, opts.batchInodes ?? this.store.settings().contentSummaryBatchInodes)
    let ns = 0
    let ss = 0
    const stack: { id: number; path: string; after: string | undefined }[] = []
    const visit = (inode: Inode, path: string): void => {
      ns++
      if (inode.type !== DIRECTORY) {
        ss += this.usageOf(inode).ss
        return
      }
      if (checking && inode.childrenNum > 0 && !allows(posix.caller, inode, ALL))
        throw permissionDenied(posix.caller, inode, ALL, path)
      stack.push({ id: inode.id, path, after: undefined })
    }
    visit(root, rootPath)
    await this.walkInBatches(stack, (child, parentPath) => visit(child, childPath(parentPath, child.name)), {
      batch,
      signal: opts.signal,
      afterYield: stillHeld,
    })
    return { namespaceUsed: ns, storagespaceUsed: ss }
  }

  /**
   * The batched walk of contentSummary and walkLocked, outside apply: lists the directories on `stack`
   * (by id, going on after the key `after`, so a directory renamed meanwhile is still listed and one
   * deleted lists nothing), hands each child to `visit` with its parent's path (`visit` pushes the
   * directories it wants listed), and after every `batch` inodes yields to the event loop, then checks
   * `signal` and calls `afterYield`. The range iterator never stays open across a yield (the table may
   * change meanwhile).
   */
  private async walkInBatches(
    stack: { id: number; path: string; after: string | undefined }[],
    visit: (child: Inode, parentPath: string) => void,
    opts: { batch: number; signal?: AbortSignal; afterYield?: () => void },
  ): Promise<void> {
    let sinceYield = 0
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!
      const [start, end] = childrenRange(top.id)
      let listed = true
      for (const [key, child] of this.inodes.range(top.after ?? start, end, top.after !== undefined)) {
        top.after = key
        visit(child, top.path)
        sinceYield++
        if (child.type === DIRECTORY || sinceYield >= opts.batch) {
          listed = false
          break
        }
      }
      if (listed) stack.pop()
      if (sinceYield >= opts.batch) {
        sinceYield = 0
        await new Promise<void>((resolve) => setImmediate(resolve))
        opts.signal?.throwIfAborted()
        opts.afterYield?.()
      }
    }
  }

  /** Inodes the subtree walks of one apply visited: the last apply's and the most of any (this replica, since start). */
  get subtreeWalkStats(): SubtreeWalkStats {
    return this.walkStats
  }

  /** Subtree locks held now (live or expired, until a command drops them). */
  get subtreeLockCount(): number {
    return this.lockedIds.size
  }

  private setPermission(op: Op, path: string, permission: number): null {
    checkMode(permission)
    const r = this.resolve(parsePath(path))
    this.check(op, r, { owner: true })
    const inode = this.requireExisting(r, path)
    this.putInode({ ...inode, permission })
    op.emit('setPermission', path, inode.id)
    return null
  }

  private setOwner(op: Op, path: string, owner: string, group: string): null {
    if (owner === '' && group === '') throw new FsError('INVALID_ARGUMENT', 'owner and group are both empty')
    if (owner !== '') checkPrincipal(owner, 'owner')
    if (group !== '') checkPrincipal(group, 'group')
    const r = this.resolve(parsePath(path))
    this.check(op, r, { owner: true })
    const inode = this.requireExisting(r, path)
    if (!op.su) {
      if (owner !== '' && owner !== op.caller.user) {
        throw new FsError(
          'ACCESS_DENIED',
          `User ${op.caller.user} is not a super user (non-super user cannot change owner).`,
        )
      }
      if (group !== '' && !op.caller.groups.includes(group)) {
        throw new FsError('ACCESS_DENIED', `User ${op.caller.user} does not belong to ${group}`)
      }
    }
    this.putInode({ ...inode, owner: owner || inode.owner, group: group || inode.group })
    op.emit('setOwner', path, inode.id)
    return null
  }

  private setTimes(op: Op, path: string, mtime: number, atime: number): null {
    if (mtime < -1 || atime < -1)
      throw new FsError('INVALID_ARGUMENT', 'times must be -1 (unchanged) or ms since the epoch')
    const r = this.resolve(parsePath(path))
    this.check(op, r, { access: WRITE })
    const inode = this.requireExisting(r, path)
    this.putInode({
      ...inode,
      mtime: mtime === -1 ? inode.mtime : mtime,
      atime: atime === -1 ? inode.atime : atime,
    })
    op.emit('setTimes', path, inode.id)
    return null
  }

  private setReplication(op: Op, path: string, replication: number): OpResults['setReplication'] {
    checkReplication(replication)
    const r = this.resolve(parsePath(path))
    this.check(op, r, { access: WRITE })
    const inode = r.inodes[r.inodes.length - 1]
    if (inode === undefined || inode.type !== FILE) return { changed: false }
    this.charge(this.quotaDirsOf(r, r.names.length), {
      ns: 0,
      ss: inode.size * (replication - inode.replication),
    })
    this.putInode({ ...inode, replication })
    op.emit('setReplication', path, inode.id)
    return { changed: true }
  }

  private setXAttr(op: Op, path: string, rawName: string, value: Uint8Array, flags: number): null {
    const name = this.checkXAttrName(op, rawName)
    if (flags < 0 || flags > 3)
      throw new FsError('INVALID_ARGUMENT', `xattr flags ${flags}: CREATE=1, REPLACE=2`)
    if (byteLength(name) + value.length > XATTR_BYTES_MAX) {
      throw new FsError(
        'XATTR_LIMIT',
        `The XAttr is too big. The maximum combined size of the name and value is ${XATTR_BYTES_MAX}`,
      )
    }
    const r = this.resolve(parsePath(path))
    this.check(op, r, { access: WRITE })
    const inode = this.requireExisting(r, path)
    this.checkXAttrSticky(op, r, inode)
    const exists = inode.xattrs.some((x) => x.name === name)
    if (exists && flags === XATTR_CREATE)
      throw new FsError('XATTR_EXISTS', `XAttr: ${name} already exists. The REPLACE flag must be specified.`)
    if (!exists && flags === XATTR_REPLACE)
      throw new FsError(
        'XATTR_NOT_FOUND',
        `XAttr: ${name} does not exist. The CREATE flag must be specified.`,
      )
    const xattrs = inode.xattrs.filter((x) => x.name !== name)
    if (xattrs.length >= XATTRS_PER_INODE_MAX) {
      throw new FsError(
        'XATTR_LIMIT',
        `Cannot add additional XAttr to inode, would exceed limit of ${XATTRS_PER_INODE_MAX}`,
      )
    }
    xattrs.push({ name, value: copy(value) })
    xattrs.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    this.putInode({ ...inode, xattrs })
    op.emit('setXAttr', path, inode.id)
    return null
  }

  private removeXAttr(op: Op, path: string, rawName: string): null {
    const name = this.checkXAttrName(op, rawName)
    const r = this.resolve(parsePath(path))
    this.check(op, r, { access: WRITE })
    const inode = this.requireExisting(r, path)
    this.checkXAttrSticky(op, r, inode)
    if (!inode.xattrs.some((x) => x.name === name))
      throw new FsError('XATTR_NOT_FOUND', `No matching attributes found for remove operation`)
    this.putInode({ ...inode, xattrs: inode.xattrs.filter((x) => x.name !== name) })
    op.emit('removeXAttr', path, inode.id)
    return null
  }

  private renewLease(op: Op): OpResults['renewLease'] {
    if (op.clientName === '') throw new FsError('INVALID_ARGUMENT', 'renewLease needs a clientName')
    const mine: Lease[] = []
    // In id order, whatever order the derived index learnt them in.
    for (const id of [...(this.leasesByHolder.get(op.clientName) ?? [])].sort((a, b) => a - b)) {
      const l = this.leases.get(leaseKey(id))!
      if (!this.leaseHardExpired(op, l)) mine.push(l)
    }
    for (const l of mine) this.leases.put(leaseKey(l.inodeId), { ...l, renewedMs: op.now })
    return { renewed: mine.length }
  }

  /** HDFS recoverLease: closes the file at once (inline files have no replicas to synchronise). */
  private recoverLease(op: Op, path: string): OpResults['recoverLease'] {
    const r = this.resolve(parsePath(path))
    this.check(op, r, { access: WRITE })
    const file = this.requireFile(r, path)
    if (this.dropLease(file.id)) op.emit('recoverLease', path, file.id)
    return { closed: true }
  }

  /**
   * HDFS concat: the sources' bytes are appended to the target in order and the sources go. Target and
   * sources are closed, non-empty files of one directory, sources no larger in block size. Files kept
   * inline concatenate inline while the result stays within inlineThreshold.
   */
  private concat(op: Op, target: string, sources: readonly string[]): OpResults['concat'] {
    if (sources.length === 0) throw new FsError('INVALID_ARGUMENT', 'concat: no sources given')
    const tr = this.resolve(parsePath(target))
    this.check(op, tr, { access: WRITE })
    const t = this.requireFile(tr, target)
    if (this.leaseLive(op, t.id))
      throw new FsError('INVALID_ARGUMENT', `concat: target file ${target} is under construction`)
    const srcs: Inode[] = []
    for (const src of sources) {
      const sr = this.resolve(parsePath(src))
      this.check(op, sr, { access: READ, parent: WRITE })
      const f = this.requireFile(sr, src)
      if (f.parent !== t.parent)
        throw new FsError(
          'INVALID_ARGUMENT',
          `Source file ${src} is not in the same directory with the target ${target}`,
        )
      if (f.id === t.id)
        throw new FsError(
          'INVALID_ARGUMENT',
          `concat: the src file ${src} is the same with the target file ${target}`,
        )
      if (this.leaseLive(op, f.id) || f.size === 0)
        throw new FsError(
          'INVALID_ARGUMENT',
          `concat: source file ${src} is invalid or empty or underConstruction`,
        )
      if (f.blockSize > t.blockSize)
        throw new FsError(
          'INVALID_ARGUMENT',
          `concat: source file ${src} has preferred block size ${f.blockSize} which is greater than the target file's preferred block size ${t.blockSize}`,
        )
      if (srcs.some((x) => x.id === f.id))
        throw new FsError('INVALID_ARGUMENT', 'concat: at least two of the source files are the same')
      srcs.push(f)
    }
    const total = srcs.reduce((n, f) => n + f.size, t.size)
    let next: Inode
    if (t.inlined && srcs.every((f) => f.inlined)) {
      this.checkInlineSize(op, total, target)
      const data = new Uint8Array(total)
      data.set(t.data, 0)
      let off = t.size
      for (const f of srcs) {
        data.set(f.data, off)
        off += f.size
      }
      next = { ...t, data, size: total, mtime: op.now }
    } else if (!t.inlined && srcs.every((f) => !f.inlined) && this.blockHooks !== undefined) {
      const moved = srcs.flatMap((f) => f.blocks)
      this.blockHooks.moveBlocks(
        moved.map((b) => b.id),
        t.id,
      )
      next = { ...t, blocks: [...t.blocks, ...moved], size: total, mtime: op.now }
    } else {
      throw new FsError(
        'UNSUPPORTED_OPERATION',
        `concat: ${target} and its sources must all be kept inline (small files) or all in blocks`,
      )
    }
    const ss = srcs.reduce((n, f) => n + f.size * (t.replication - f.replication), 0)
    this.charge(this.quotaDirsAbove(t.id), { ns: -srcs.length, ss })
    for (const f of srcs) {
      this.dropLease(f.id)
      this.inodes.delete(this.keyOf(f.id))
    }
    this.putInode(next)
    this.touchDir(t.parent, -srcs.length, op.now)
    op.emit('concat', target, t.id)
    return null
  }

  /**
   * HDFS truncate: the file shrinks to `newLength`. Done at once (true) for a file kept inline and on
   * a block boundary (the blocks after it are forgotten, their replicas deleted by the block manager).
   */
  private truncate(op: Op, path: string, newLength: number): OpResults['truncate'] {
    const r = this.resolve(parsePath(path))
    this.check(op, r, { access: WRITE })
    const file = this.requireFile(r, path)
    if (!Number.isSafeInteger(newLength) || newLength < 0)
      throw new FsError('INVALID_ARGUMENT', `Cannot truncate to a negative file size: ${newLength}.`)
    if (newLength > file.size)
      throw new FsError(
        'INVALID_ARGUMENT',
        `Cannot truncate to a larger file size. Current size: ${file.size}, truncate size: ${newLength}.`,
      )
    this.checkLeaseFree(op, file, path)
    if (newLength === file.size) return { done: true, size: file.size }
    let next: Inode
    let done = true
    if (file.inlined) {
      next = { ...file, data: file.data.slice(0, newLength), size: newLength, mtime: op.now }
    } else {
      let end = 0
      let keep = 0
      while (keep < file.blocks.length && end < newLength) end += file.blocks[keep++]!.length
      const blocks = file.blocks.slice(0, keep)
      if (end !== newLength) {
        // Inside a block (HDFS's truncate recovery): the block keeps a prefix under a new stamp, and its
        // datanodes truncate their replicas; readers meanwhile read the prefix from the older replicas.
        if (this.blockHooks === undefined)
          throw new FsError('UNSUPPORTED_OPERATION', `truncate of ${path} inside a block: no block map`)
        const last = blocks[blocks.length - 1]!
        const length = last.length - (end - newLength)
        this.blockHooks.truncateBlock(last.id, length, op.index)
        blocks[blocks.length - 1] = { id: last.id, length, genStamp: op.index }
        done = false
      }
      next = { ...file, blocks, size: newLength, mtime: op.now }
    }
    this.charge(this.quotaDirsOf(r, r.names.length), {
      ns: 0,
      ss: (newLength - file.size) * file.replication,
    })
    this.putInode(next)
    op.emit('truncate', path, file.id)
    return { done, size: newLength }
  }

  /**
   * HDFS setQuota (superuser) on a directory. The first quota on a directory measures its subtree once;
   * from then on the usage is kept by every command under it. A directory left without any limit loses
   * its row; the root's namespace quota cannot be cleared (HDFS ignores that request).
   */
  private setQuota(op: Op, path: string, nsQuota: number, ssQuota: number, storageType: string): null {
    if (!op.su)
      throw new FsError(
        'ACCESS_DENIED',
        `Access denied for user ${op.caller.user}. Superuser privilege is required`,
      )
    const valid = (n: number): boolean => Number.isSafeInteger(n) && n >= QUOTA_KEEP
    if (!valid(nsQuota) || !valid(ssQuota))
      throw new FsError(
        'INVALID_ARGUMENT',
        `Illegal value for nsQuota or ssQuota : ${nsQuota} and ${ssQuota}`,
      )
    const type = storageType.toUpperCase()
    if (type !== '' && !(QUOTA_TYPES as readonly string[]).includes(type))
      throw new FsError(
        'INVALID_ARGUMENT',
        `Quota for storage type '${storageType}' is not supported (types: ${QUOTA_TYPES.join(', ')})`,
      )
    if (type !== '' && nsQuota !== QUOTA_KEEP)
      throw new FsError('INVALID_ARGUMENT', 'a storage type quota sets no namespace quota')
    const names = parsePath(path)
    const r = this.resolve(names)
    this.check(op, r, {})
    const dir = r.inodes[names.length]
    if (dir === undefined) throw new FsError('FILE_NOT_FOUND', `Directory does not exist: ${path}`)
    if (dir.type !== DIRECTORY) throw new FsError('NOT_A_DIRECTORY', `\`${path}': Is not a directory`)
    if (op.subtree !== undefined) this.requireHeld(op, dir, 'setQuota')
    const old = this.quotas.get(be64(dir.id))
    let ns = nsQuota
    if (names.length === 0 && ns === QUOTA_NONE) ns = QUOTA_KEEP
    if (ns === QUOTA_KEEP) ns = old?.namespaceQuota ?? QUOTA_NONE
    let ss = old?.storagespaceQuota ?? QUOTA_NONE
    let typeQuotas = old?.typeQuotas ?? []
    if (type === '') {
      if (ssQuota !== QUOTA_KEEP) ss = ssQuota
    } else if (ssQuota !== QUOTA_KEEP) {
      typeQuotas = typeQuotas.filter((t) => t.type !== type)
      if (ssQuota !== QUOTA_NONE) typeQuotas = [...typeQuotas, { type, quota: ssQuota }]
      typeQuotas = [...typeQuotas].sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : 0))
    }
    const held = op.subtree
    const used =
      old ??
      (held !== undefined
        ? { namespaceUsed: held.namespaceUsed, storagespaceUsed: held.storagespaceUsed }
        : this.measure(dir))
    this.dropLock(dir.id)
    const next: DirQuota = {
      namespaceQuota: ns,
      storagespaceQuota: ss,
      namespaceUsed: used.namespaceUsed,
      storagespaceUsed: used.storagespaceUsed,
      typeQuotas,
    }
    if (hasLimits(next)) this.quotas.put(be64(dir.id), next)
    else this.quotas.delete(be64(dir.id))
    op.emit('setQuota', path, dir.id)
    return null
  }

  // ---------------------------------------------------------------- reads

  /** The status of `path` (EXECUTE on its ancestors). */
  stat(caller: Caller, path: string): FileStatus {
    const r = this.resolve(parsePath(path))
    this.checkRead(caller, r, {})
    return this.status(this.requireExisting(r, path, true))
  }

  /**
   * A page of a directory's children after `startAfter` (a name; '' = from the start), in name order —
   * one range scan of the `fs.inode` table. A file lists as itself (Hadoop's listStatus).
   */
  list(caller: Caller, path: string, opts: { startAfter?: string; limit?: number } = {}): Listing {
    const r = this.resolve(parsePath(path))
    const inode = r.inodes[r.inodes.length - 1]
    this.checkRead(caller, r, inode?.type === DIRECTORY ? { access: READ_EXECUTE } : {})
    const target = this.requireExisting(r, path, true)
    if (target.type === FILE) return { entries: [this.status(target)], remaining: 0, ofFile: true }
    const limit = Math.max(1, Math.min(opts.limit ?? LIST_PAGE_MAX, LIST_PAGE_MAX))
    const [start, end] = childrenRange(target.id)
    const from = opts.startAfter ? inodeKey(target.id, opts.startAfter) : start
    const exclusive = !!opts.startAfter
    const entries: FileStatus[] = []
    let lastKey = from
    for (const [key, child] of this.inodes.range(from, end, exclusive)) {
      if (entries.length >= limit) break
      entries.push(this.status(child))
      lastKey = key
    }
    const remaining = entries.length === 0 ? 0 : this.inodes.countRange(lastKey, end, true)
    const aliases = this.rules?.aliasesIn(r.names) ?? []
    if (aliases.length === 0) return { entries, remaining, ofFile: false }
    return this.withAliases(entries, remaining, aliases, opts.startAfter ?? '', limit)
  }

  /**
   * A listing page merged with the aliases of shared datasets shown in the directory (their status is
   * the dataset's own, under the alias name), in name order.
   */
  private withAliases(
    entries: FileStatus[],
    remaining: number,
    aliases: readonly { readonly name: string; readonly target: readonly string[] }[],
    startAfter: string,
    limit: number,
  ): Listing {
    const shown: FileStatus[] = []
    for (const a of aliases) {
      if (a.name <= startAfter) continue
      const target = this.resolve(a.target).inodes[a.target.length]
      if (target !== undefined) shown.push({ ...this.status(target), name: a.name })
    }
    const merged = [...entries, ...shown].sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0))
    const page = merged.slice(0, limit)
    return { entries: page, remaining: remaining + merged.length - page.length, ofFile: false }
  }

  /** Bytes [offset, offset + length) of a file (length -1 = to the end). READ on the file. */
  read(caller: Caller, path: string, offset = 0, length = -1): Uint8Array {
    const r = this.resolve(parsePath(path))
    this.checkRead(caller, r, { access: READ })
    const file = this.requireFile(r, path, true)
    if (!Number.isSafeInteger(offset) || offset < 0)
      throw new FsError('INVALID_ARGUMENT', `offset ${offset} must be a non-negative integer`)
    if (!Number.isSafeInteger(length) || length < -1)
      throw new FsError('INVALID_ARGUMENT', `length ${length} must be a non-negative integer`)
    if (offset > file.size)
      throw new FsError('INVALID_ARGUMENT', `Offset=${offset} out of the range [0, ${file.size}]`)
    if (!file.inlined)
      throw new FsError('UNSUPPORTED_OPERATION', `${path} is stored in blocks: reading it comes with part 2`)
    const end = length === -1 ? file.size : Math.min(file.size, offset + length)
    return file.data.subarray(offset, end)
  }

  /**
   * Totals over the subtree (READ_EXECUTE on every directory in it, as HDFS checks).
   *
   * Runs outside apply (a read, after the caller's read barrier) and never holds the event loop for
   * long: it counts `contentSummaryBatchInodes` inodes, then yields (setImmediate) so that Raft
   * heartbeats and commands run, as HDFS releases its lock every dfs.content-summary.limit inodes.
   * Consistency, as HDFS's with that limit: not a snapshot. An inode whose path stays the same for the
   * whole walk is counted exactly once; one created, deleted, renamed or under a directory renamed
   * while the walk runs may be counted once, twice or not at all. A subtree of fewer inodes than the
   * batch is counted in one go, between two commands: a consistent answer.
   */
  async contentSummary(caller: Caller, path: string, opts: SummaryOpts = {}): Promise<ContentSummary> {
    const r = this.resolve(parsePath(path))
    const { su } = this.checkRead(caller, r, {})
    const root = this.requireExisting(r, path, true)
    const batch = Math.max(1, opts.batchInodes ?? this.store.settings().contentSummaryBatchInodes)
    let length = 0
    let fileCount = 0
    let directoryCount = 0
    let spaceConsumed = 0
    // Directories still to list: by id and the key after which to go on (children are keyed by their
    // parent's id, so a directory renamed meanwhile is still listed; one deleted lists nothing).
    const stack: { id: number; path: string; after: string | undefined }[] = []
    const visit = (inode: Inode, parentPath: string | undefined): void => {
      if (inode.type === DIRECTORY) {
        // Paths only for directories (an error names them); files make no garbage.
        const at = parentPath === undefined ? joinPath(r.names) : childPath(parentPath, inode.name)
        if (!su && !allows(caller, inode, READ_EXECUTE))
          throw permissionDenied(caller, inode, READ_EXECUTE, at)
        directoryCount++
        stack.push({ id: inode.id, path: at, after: undefined })
      } else {
        fileCount++
        length += inode.size
        spaceConsumed += inode.size * inode.replication
      }
    }
    visit(root, undefined)
    await this.walkInBatches(stack, visit, { batch, signal: opts.signal })
    const q = root.type === DIRECTORY ? this.quotas.get(be64(root.id)) : undefined
    return {
      length,
      fileCount,
      directoryCount,
      spaceConsumed,
      quota: q?.namespaceQuota ?? -1,
      spaceQuota: q?.storagespaceQuota ?? -1,
      typeQuota: q === undefined ? {} : typeQuotaOf(q),
    }
  }

  /**
   * HDFS's getQuotaUsage: a directory with a quota answers its kept counters at once (READ_EXECUTE on
   * it); anything else is counted as getContentSummary counts it.
   */
  async quotaUsage(caller: Caller, path: string, opts: SummaryOpts = {}): Promise<QuotaUsage> {
    const r = this.resolve(parsePath(path))
    const inode = r.inodes[r.inodes.length - 1]
    const q = inode?.type === DIRECTORY ? this.quotas.get(be64(inode.id)) : undefined
    if (q !== undefined) {
      this.checkRead(caller, r, { access: READ_EXECUTE })
      return {
        fileAndDirectoryCount: q.namespaceUsed,
        quota: q.namespaceQuota,
        spaceConsumed: q.storagespaceUsed,
        spaceQuota: q.storagespaceQuota,
        typeQuota: typeQuotaOf(q),
      }
    }
    const s = await this.contentSummary(caller, path, opts)
    return {
      fileAndDirectoryCount: s.fileCount + s.directoryCount,
      quota: -1,
      spaceConsumed: s.spaceConsumed,
      spaceQuota: -1,
      typeQuota: {},
    }
  }

  /** HDFS's checkAccess: throws ACCESS_DENIED unless the caller has `action` (rwx bits) on `path`. */
  checkAccess(caller: Caller, path: string, action: number): void {
    const r = this.resolve(parsePath(path))
    if (r.inodes[r.inodes.length - 1] === undefined)
      throw new FsError('FILE_NOT_FOUND', `Path not found: ${path}`)
    this.checkRead(caller, r, { access: action })
  }

  /** HDFS's MD5-of-MD5-of-CRC32C checksum of a file (READ on it). */
  checksum(caller: Caller, path: string): FileChecksum {
    const r = this.resolve(parsePath(path))
    this.checkRead(caller, r, { access: READ })
    const file = this.requireFile(r, path, true)
    if (!file.inlined)
      throw new FsError(
        'UNSUPPORTED_OPERATION',
        `${path} is stored in blocks: its checksum comes from the block manager (metadata nodes)`,
      )
    return md5md5crc32c(file.data, file.blockSize)
  }

  /**
   * The xattrs of `path` the caller may see (all, or those named; a missing named one is
   * XATTR_NOT_FOUND). READ on the path; trusted.* only for the superuser.
   */
  getXAttrs(caller: Caller, path: string, names?: readonly string[]): XAttr[] {
    const su = this.store.isSuperuser(caller.user, caller.groups)
    const r = this.resolve(parsePath(path))
    this.checkRead(caller, r, { access: READ })
    const inode = this.requireExisting(r, path, true)
    const visible = inode.xattrs.filter((x) => su || x.name.startsWith('user.'))
    if (names === undefined || names.length === 0) return visible
    const wanted = names.map((n) => normalizeXAttrName(n))
    const found = visible.filter((x) => wanted.includes(x.name))
    if (found.length !== new Set(wanted).size)
      throw new FsError('XATTR_NOT_FOUND', 'At least one of the attributes provided was not found.')
    return found
  }

  /** Names of the xattrs the caller may see (READ on the path). */
  listXAttrs(caller: Caller, path: string): string[] {
    return this.getXAttrs(caller, path).map((x) => x.name)
  }

  // ---- hooks of the block map (src/fs/blocks/blockmap.ts), called inside its apply

  /**
   * The file being written: by inode id when `ref.fileId` is set (a rename meanwhile keeps the write,
   * as HDFS binds a write to the inode), else by path; its lease must be held by the command's
   * clientName. FILE_NOT_FOUND or LEASE_NOT_HELD otherwise.
   */
  fileUnderLease(ctx: ApplyContext, ref: FileRef): Inode {
    let file: Inode
    let name: string
    if (ref.fileId !== undefined && ref.fileId > 0) {
      const f = this.fileById(ref.fileId)
      if (f === undefined || f.type !== FILE)
        throw new FsError('FILE_NOT_FOUND', `File does not exist: inode ${ref.fileId}`)
      file = f
      name = this.pathOf(f.id)
    } else {
      name = ref.path ?? ''
      file = this.requireFile(this.resolve(parsePath(name)), name)
    }
    const op = { now: ctx.cmd.nowMs, settings: ctx.settings } as Op
    // A writer of a file under a locked directory waits too (its blocks change what the subtree uses).
    if (this.lockedIds.size > 0)
      for (
        let cur: Inode | undefined = file;
        cur !== undefined && cur.parent !== 0;
        cur = this.rawById(cur.parent)
      )
        this.checkNotLocked(op, cur.parent)
    const lease = this.leases.get(leaseKey(file.id))
    if (
      lease === undefined ||
      ctx.cmd.clientName === '' ||
      lease.holder !== ctx.cmd.clientName ||
      this.leaseHardExpired(op, lease)
    ) {
      throw new FsError(
        'LEASE_NOT_HELD',
        `No lease on ${name}: ${ctx.cmd.clientName || '(no client)'} does not hold it`,
      )
    }
    return file
  }

  /**
   * Commits the blocks of a file under lease and closes it (the blocks become visible). A block whose
   * id is the file's last block's replaces it (an append that continued it: new length and stamp);
   * others are appended. With `dropInline` the inline bytes were rewritten into the blocks: the file's
   * size is the blocks' sum.
   */
  completeWithBlocks(ctx: ApplyContext, ref: FileRef, blocks: readonly Block[], dropInline: boolean): Inode {
    const file = this.fileUnderLease(ctx, ref)
    const path = this.pathOf(file.id)
    if (file.inlined && file.size > 0 && !dropInline)
      throw new FsError(
        'INVALID_ARGUMENT',
        `${path} has inline data: its blocks must replace it (dropInline)`,
      )
    // Inline bytes rewritten into blocks are counted in the blocks; otherwise the blocks extend the file.
    const kept = file.inlined ? [] : [...file.blocks]
    for (const b of blocks) {
      const last = kept[kept.length - 1]
      if (last !== undefined && last.id === b.id) kept[kept.length - 1] = b
      else kept.push(b)
    }
    const size = blocks.length === 0 ? file.size : kept.reduce((n, b) => n + b.length, 0)
    const next: Inode = {
      ...file,
      inlined: blocks.length === 0 && file.inlined,
      data: blocks.length === 0 ? file.data : EMPTY,
      blocks: kept,
      size,
      mtime: ctx.cmd.nowMs,
    }
    // Quota: the file now counts at its new length; what its blocks under construction held goes back.
    const charged = this.leases.get(leaseKey(file.id))?.chargedBytes ?? 0
    this.charge(this.quotaDirsAbove(file.id), {
      ns: 0,
      ss: (next.size - file.size) * file.replication - charged,
    })
    this.putInode(next)
    this.leases.delete(leaseKey(file.id))
    ctx.emit({ op: 'close', path, inodeId: file.id })
    return next
  }

  /** The path of inode `id` now (its names up to the root). */
  pathOf(id: number): string {
    const names: string[] = []
    let inode = this.rawById(id)
    while (inode !== undefined && inode.parent !== 0) {
      names.push(inode.name)
      inode = this.rawById(inode.parent)
    }
    return '/' + names.reverse().join('/')
  }

  /**
   * Charges a new block under construction of `file` (its full size times replication, as HDFS does at
   * addBlock) to the quotas above it; DS_QUOTA_EXCEEDED refuses the block. Given back on close.
   */
  chargeBlock(file: Inode, bytes: number): void {
    const key = leaseKey(file.id)
    const lease = this.leases.get(key)
    if (lease === undefined) throw new FsError('LEASE_NOT_HELD', `no lease on inode ${file.id}`)
    this.charge(this.quotaDirsAbove(file.id), { ns: 0, ss: bytes })
    this.leases.put(key, { ...lease, chargedBytes: lease.chargedBytes + bytes })
  }

  /**
   * An inode of the namespace by id (no permission check: the block map's bookkeeping); undefined when
   * it is gone or in a detached subtree waiting to be purged. O(depth): its parent links are followed
   * up to the root.
   */
  fileById(id: number): Inode | undefined {
    const inode = this.rawById(id)
    if (inode === undefined) return undefined
    for (let cur: Inode | undefined = inode; cur !== undefined; cur = this.rawById(cur.parent)) {
      if (cur.parent === 0) return inode
      if (cur.parent === DETACHED_PARENT) return undefined
    }
    return undefined
  }

  /** Detached subtrees not yet purged (the metadata leader purges while this is above 0). */
  get detachedCount(): number {
    const [start, end] = childrenRange(DETACHED_PARENT)
    return this.inodes.countRange(start, end)
  }

  /**
   * Called (outside the command's rollback) whenever a command may have left a detached subtree: the
   * purge loop wakes on it. Not part of the state; set by the node that purges.
   */
  onDetached: (() => void) | undefined

  private rawById(id: number): Inode | undefined {
    const key = this.keyById.get(id)
    return key === undefined ? undefined : this.inodes.get(key)
  }

  /** Whether a write lease is held on inode `id`. */
  hasLease(id: number): boolean {
    return this.leases.has(leaseKey(id))
  }

  /** The file at `path` for reading its content (READ on it): inline bytes or its block list. */
  fileForRead(caller: Caller, path: string): Inode {
    const r = this.resolve(parsePath(path))
    this.checkRead(caller, r, { access: READ })
    return this.requireFile(r, path, true)
  }

  /**
   * Whether `caller` may see the name `path` in a listing of its parent now: the parent exists, with
   * EXECUTE on every ancestor and READ_EXECUTE on the parent (the superuser sees everything). What
   * the change log shows a caller (src/fs/service.ts changesFor).
   */
  maySeeName(caller: Caller, path: string): boolean {
    let names: string[]
    try {
      names = parsePath(path)
    } catch {
      return false
    }
    if (names.length === 0) return true
    const r = this.resolve(names.slice(0, -1))
    if (r.inodes[r.inodes.length - 1] === undefined) return false
    try {
      this.checkRead(caller, r, { access: READ_EXECUTE })
      return true
    } catch {
      return false
    }
  }

  /** The inode id of `path`, or undefined (no permission check: for routing and caches). */
  idOf(path: string): number | undefined {
    const r = this.resolve(parsePath(path))
    return r.inodes[r.inodes.length - 1]?.id
  }

  /** Number of inodes (directories and files, root included). */
  get inodeCount(): number {
    return this.inodes.size
  }

  /**
   * The block map's side of commands that move blocks between files (concat): it re-points the
   * blocks' records at their new file inside the same apply. Set once by the block map.
   */
  attachBlockHooks(hooks: BlockHooks): void {
    this.blockHooks = hooks
  }

  // ---------------------------------------------------------------- internals

  private blockHooks: BlockHooks | undefined
  private rules: PathRules | undefined

  /**
   * The rules above POSIX permissions (src/fs/access.ts): set once, by the projects module, before the
   * state machine applies or serves anything.
   */
  attachPathRules(rules: PathRules): void {
    this.rules = rules
  }

  /**
   * Namespace changes another module makes inside its own apply (the projects module lays out
   * /Projects/<name>), as the cluster superuser: journaled with that module's command, so they commit or
   * roll back with it. The path rules do not apply (the calling module decided already).
   */
  asSystem(ctx: ApplyContext): SystemOps {
    const system: Caller = { user: ctx.settings.superuser, groups: [] }
    const op: Op = {
      index: ctx.index,
      caller: system,
      principal: system,
      su: true,
      now: ctx.cmd.nowMs,
      clientName: '',
      settings: ctx.settings,
      emit: (name, path, inodeId, dst) => ctx.emit({ op: name, path, inodeId, dst }),
    }
    const rules = this.rules
    const withoutRules = <T>(fn: () => T): T => {
      this.rules = undefined
      try {
        return fn()
      } finally {
        this.rules = rules
      }
    }
    return {
      exists: (path) => {
        const r = this.resolve(parsePath(path))
        return r.inodes[r.inodes.length - 1] !== undefined
      },
      mkdir: (path, o) =>
        withoutRules(() => {
          this.mkdirs(op, path, o.permission)
          this.setOwner(op, path, o.owner, o.group)
          this.setPermission(op, path, o.permission)
        }),
      deleteTree: (path) => withoutRules(() => this.delete(op, path, true).deleted),
      setQuota: (path, namespace, storagespace) =>
        withoutRules(() => {
          this.setQuota(op, path, namespace, storagespace, '')
        }),
      quota: (path) => {
        const r = this.resolve(parsePath(path))
        const dir = r.inodes[r.inodes.length - 1]
        const q = dir === undefined ? undefined : this.quotas.get(be64(dir.id))
        return q === undefined
          ? undefined
          : {
              namespaceQuota: q.namespaceQuota,
              storagespaceQuota: q.storagespaceQuota,
              namespaceUsed: q.namespaceUsed,
              storagespaceUsed: q.storagespaceUsed,
            }
      },
    }
  }

  // ---- quotas

  /** The quota directories among `r.inodes[0..upTo)` with their paths, deepest first. */
  private quotaDirsOf(r: Resolved, upTo: number): QuotaDir[] {
    if (this.quotaIds.size === 0) return []
    const out: QuotaDir[] = []
    for (let i = Math.min(upTo, r.inodes.length) - 1; i >= 0; i--) {
      const inode = r.inodes[i]
      if (inode !== undefined && this.quotaIds.has(inode.id))
        out.push({ id: inode.id, path: joinPath(r.names.slice(0, i)) })
    }
    return out
  }

  /** The quota directories above inode `id` (its ancestors, by their parent links), deepest first. */
  private quotaDirsAbove(id: number): QuotaDir[] {
    if (this.quotaIds.size === 0) return []
    const chain: Inode[] = []
    for (let cur = this.byId(id); cur.parent !== 0;) {
      cur = this.byId(cur.parent)
      chain.push(cur)
    }
    const out: QuotaDir[] = []
    for (let i = 0; i < chain.length; i++) {
      if (!this.quotaIds.has(chain[i]!.id)) continue
      const names = chain
        .slice(i, -1)
        .map((n) => n.name)
        .reverse()
      out.push({ id: chain[i]!.id, path: joinPath(names) })
    }
    return out
  }

  /** Checks `delta` against every directory of `dirs`, then adds it to each (nothing changes on a refusal). */
  private charge(dirs: readonly QuotaDir[], delta: Usage): void {
    if (dirs.length === 0 || (delta.ns === 0 && delta.ss === 0)) return
    for (const d of dirs) checkQuota(this.quotas.get(be64(d.id))!, delta, d.path)
    for (const d of dirs) this.quotas.put(be64(d.id), addUsage(this.quotas.get(be64(d.id))!, delta))
  }

  /** A rename: what `moved` uses leaves the quota directories only above the source for those only above the destination. */
  private moveUsage(src: readonly QuotaDir[], dst: readonly QuotaDir[], moved: Inode, op: Op): void {
    const srcOnly = src.filter((d) => !dst.some((e) => e.id === d.id))
    const dstOnly = dst.filter((d) => !src.some((e) => e.id === d.id))
    if (srcOnly.length === 0 && dstOnly.length === 0) return
    // A directory without a quota of its own is measured here, as HDFS's verifyQuotaForRename does:
    // only renames between different quota directories pay it.
    const u = this.usageOf(moved, op)
    this.charge(dstOnly, u)
    this.charge(srcOnly, negate(u))
  }

  /**
   * What an inode's subtree uses: a file at once, a quota directory from its row, another directory
   * measured — or, in a subtree operation's commit on that directory, what its walk measured.
   */
  private usageOf(inode: Inode, op?: Op): Usage {
    if (inode.type === FILE) {
      const charged = this.leases.get(leaseKey(inode.id))?.chargedBytes ?? 0
      return { ns: 1, ss: inode.size * inode.replication + charged }
    }
    const q = this.quotas.get(be64(inode.id))
    if (q !== undefined) return { ns: q.namespaceUsed, ss: q.storagespaceUsed }
    const held = op?.subtree
    if (held !== undefined && held.inodeId === inode.id)
      return { ns: held.namespaceUsed, ss: held.storagespaceUsed }
    const m = this.measure(inode)
    return { ns: m.namespaceUsed, ss: m.storagespaceUsed }
  }

  /** Walks a directory's subtree once (a first quota on it, a rename between quota directories). */
  private measure(dir: Inode): { namespaceUsed: number; storagespaceUsed: number } {
    let ns = 0
    let ss = 0
    const stack = [dir]
    this.walked(1)
    while (stack.length > 0) {
      const inode = stack.pop()!
      ns++
      if (inode.type === DIRECTORY) for (const child of this.walkChildren(inode)) stack.push(child)
      else ss += this.usageOf(inode).ss
    }
    return { namespaceUsed: ns, storagespaceUsed: ss }
  }

  /** Whether someone holds a lease on file `id` that is not past its soft limit. */
  private leaseLive(op: Op, id: number): boolean {
    const lease = this.leases.get(leaseKey(id))
    return lease !== undefined && !this.leaseSoftExpired(op, lease)
  }

  private resolve(path: readonly string[]): Resolved {
    const names = this.rules?.resolveAlias(path) ?? path
    const inodes: (Inode | undefined)[] = new Array(names.length + 1).fill(undefined)
    let cur = this.inodes.get(inodeKey(0, ''))!
    inodes[0] = cur
    let fileAt = -1
    for (let i = 0; i < names.length; i++) {
      if (cur.type !== DIRECTORY) {
        fileAt = i
        break
      }
      const next = this.inodes.get(inodeKey(cur.id, names[i]!))
      if (next === undefined) break
      inodes[i + 1] = next
      cur = next
    }
    return { names, inodes, fileAt }
  }

  private *children(dir: Inode): IterableIterator<Inode> {
    const [start, end] = childrenRange(dir.id)
    for (const [, child] of this.inodes.range(start, end)) yield child
  }

  /** The write-side check: no other operation's subtree lock on the path, then the permissions. */
  private check(op: Op, r: Resolved, need: Need): void {
    if (this.lockedIds.size > 0)
      for (const inode of r.inodes) if (inode !== undefined) this.checkNotLocked(op, inode.id)
    const posix = this.admit(op.principal, op.su, r, need) ?? op
    checkPermission(posix.caller, posix.su, r, need, (d) => this.walkChildren(d))
  }

  /** A directory's children, counted against the walk budget of the command being applied. */
  private *walkChildren(dir: Inode): IterableIterator<Inode> {
    for (const child of this.children(dir)) {
      this.walked(1)
      yield child
    }
  }

  /** Counts `n` inodes visited by a walk inside apply; SUBTREE_TOO_LARGE past the budget. */
  private walked(n: number): void {
    if (this.walkVisited + n <= this.walkBudget) {
      this.walkVisited += n
      return
    }
    throw new FsError(
      'SUBTREE_TOO_LARGE',
      `the subtree has more than subtreeBatchInodes (${this.walkBudget}) inodes to walk: run as a subtree operation`,
    )
  }

  /** The read-side check; answers the identity and superuser flag the POSIX check ran with. */
  private checkRead(caller: Caller, r: Resolved, need: Need): Admitted {
    const su = this.store.isSuperuser(caller.user, caller.groups)
    const posix = this.admit(caller, su, r, need) ?? { caller, su }
    checkPermission(posix.caller, posix.su, r, need, (d) => this.children(d))
    return posix
  }

  /** The path rules' verdict (src/fs/access.ts) before the POSIX check; undefined without rules. */
  private admit(caller: Caller, su: boolean, r: Resolved, need: Need): Admitted | undefined {
    return this.rules?.admit(caller, su, r.names, actionOf(need, r.inodes[r.inodes.length - 1]))
  }

  private requireExisting(r: Resolved, path: string, read = false): Inode {
    const inode = r.inodes[r.inodes.length - 1]
    if (inode !== undefined) return inode
    if (r.fileAt >= 0 && !read) this.throwNotDir(r)
    throw new FsError('FILE_NOT_FOUND', `File does not exist: ${path}`)
  }

  private requireFile(r: Resolved, path: string, read = false): Inode {
    const inode = this.requireExisting(r, path, read)
    if (inode.type !== FILE) throw new FsError('IS_A_DIRECTORY', `Path is not a file: ${path}`)
    return inode
  }

  private throwNotDir(r: Resolved): never {
    throw new FsError('NOT_A_DIRECTORY', `Path is not a directory: ${joinPath(r.names.slice(0, r.fileAt))}`)
  }

  /** Creates the directories `names[from-1 .. upTo-1]` (inodes[from..upTo]); returns the deepest id. */
  private createDirs(op: Op, r: Resolved, from: number, permission: number, upTo = r.names.length): number {
    let parent = r.inodes[from - 1]!
    for (let i = from; i <= upTo; i++) {
      // HDFS gives implicitly created parents u+wx so that the creator can go on creating under them.
      const mode = i === upTo ? permission : permission | 0o300
      const dir = newInode(
        this.nextId(),
        parent.id,
        r.names[i - 1]!,
        DIRECTORY,
        mode,
        op.caller.user,
        parent.group,
        op.now,
      )
      this.inodes.put(inodeKey(parent.id, dir.name), dir)
      this.touchDir(parent.id, +1, op.now)
      parent = dir
    }
    return parent.id
  }

  /** Removes `inode` and everything under it; returns what the subtree used (quota counts). */
  private removeSubtree(inode: Inode): Usage {
    const doomed: Inode[] = [inode]
    let ss = 0
    this.walked(1)
    for (let i = 0; i < doomed.length; i++) {
      const d = doomed[i]!
      if (d.type === DIRECTORY) for (const child of this.walkChildren(d)) doomed.push(child)
      else ss += this.usageOf(d).ss
    }
    for (let i = doomed.length - 1; i >= 0; i--) {
      const d = doomed[i]!
      this.leases.delete(leaseKey(d.id))
      if (d.type === DIRECTORY && this.quotaIds.has(d.id)) this.quotas.delete(be64(d.id))
      this.dropLock(d.id)
      this.inodes.delete(this.keyOf(d.id))
    }
    return { ns: doomed.length, ss }
  }

  private touchDir(id: number, childrenDelta: number, now: number): void {
    const dir = this.byId(id)
    this.putInode({ ...dir, childrenNum: dir.childrenNum + childrenDelta, mtime: now })
  }

  private putInode(inode: Inode): void {
    this.inodes.put(this.keyOf(inode.id), inode)
  }

  private keyOf(id: number): string {
    const key = this.keyById.get(id)
    if (key === undefined) throw new Error(`fs: inode ${id} has no key`)
    return key
  }

  private byId(id: number): Inode {
    return this.inodes.get(this.keyOf(id))!
  }

  private nextId(): number {
    const id = this.counters.get('nextInodeId')!.value
    this.counters.put('nextInodeId', { value: id + 1 })
    return id
  }

  private checkInlineSize(op: Op, size: number, path: string): void {
    if (size > op.settings.inlineThreshold) {
      throw new FsError(
        'FILE_TOO_LARGE_FOR_INLINE',
        `${path} would be ${size} bytes, over inlineThreshold (${op.settings.inlineThreshold}): kept inline only up to it`,
      )
    }
  }

  // ---- leases

  private leaseSoftExpired(op: Op, l: Lease): boolean {
    return op.now - l.renewedMs >= op.settings.leaseSoftLimitMs
  }

  private leaseHardExpired(op: Op, l: Lease): boolean {
    return op.now - l.renewedMs >= op.settings.leaseHardLimitMs
  }

  /**
   * Refuses a write while another client's lease on `file` is live; a lease past the soft limit is
   * recovered (dropped) so that this writer may take the file — HDFS's recoverLeaseInternal.
   */
  private checkLeaseFree(op: Op, file: Inode, path: string): void {
    const lease = this.leases.get(leaseKey(file.id))
    if (lease === undefined) return
    if (!this.leaseSoftExpired(op, lease)) {
      throw new FsError(
        'LEASE_CONFLICT',
        `Failed to create file [${path}] for [${op.clientName || op.caller.user}], because this file is already being created by [${lease.holder}]`,
      )
    }
    this.dropLease(file.id)
  }

  /**
   * Ends the lease on file `id` (if any) and gives back what its blocks under construction held
   * against the quotas above it. True when there was one.
   */
  private dropLease(id: number): boolean {
    const lease = this.leases.get(leaseKey(id))
    if (lease === undefined) return false
    if (lease.chargedBytes > 0) this.charge(this.quotaDirsAbove(id), { ns: 0, ss: -lease.chargedBytes })
    this.leases.delete(leaseKey(id))
    return true
  }

  private putLease(op: Op, inodeId: number): void {
    if (!this.leases.has(leaseKey(inodeId)) && this.leases.size >= LEASES_MAX) {
      const dead: string[] = []
      for (const [k, l] of this.leases.range('')) if (this.leaseHardExpired(op, l)) dead.push(k)
      for (const k of dead) this.leases.delete(k)
      if (this.leases.size >= LEASES_MAX)
        throw new FsError('INVALID_ARGUMENT', `too many files open for writing (${LEASES_MAX})`)
    }
    const prev = this.leases.get(leaseKey(inodeId))
    this.leases.put(leaseKey(inodeId), {
      inodeId,
      holder: op.clientName,
      renewedMs: op.now,
      chargedBytes: prev?.chargedBytes ?? 0,
    })
  }

  // ---- xattrs

  private checkXAttrName(op: Op, raw: string): string {
    const name = normalizeXAttrName(raw)
    if (!name.startsWith('user.') && !op.su) {
      throw new FsError('ACCESS_DENIED', `User doesn't have permission for xattr: ${name}`)
    }
    return name
  }

  /** HDFS: in a sticky directory, only the owner of an inode may change its xattrs. */
  private checkXAttrSticky(op: Op, r: Resolved, inode: Inode): void {
    if (op.su || inode.type !== DIRECTORY || (inode.permission & 0o1000) === 0) return
    if (inode.owner !== op.caller.user) {
      throw new FsError(
        'ACCESS_DENIED',
        `Permission denied: ${joinPath(r.names)} has the sticky bit and ${op.caller.user} is not its owner`,
      )
    }
  }

  private status(inode: Inode): FileStatus {
    const lease = inode.type === FILE ? this.leases.get(leaseKey(inode.id)) : undefined
    return {
      fileId: inode.id,
      name: inode.name,
      type: inode.type === DIRECTORY ? 'DIRECTORY' : 'FILE',
      permission: inode.permission,
      owner: inode.owner,
      group: inode.group,
      length: inode.type === FILE ? inode.size : 0,
      modificationTime: inode.mtime,
      accessTime: inode.type === FILE ? inode.atime : 0,
      replication: inode.type === FILE ? inode.replication : 0,
      blockSize: inode.type === FILE ? inode.blockSize : 0,
      childrenNum: inode.childrenNum,
      inlined: inode.inlined,
      leaseHolder: lease?.holder ?? null,
      hasXAttrs: inode.xattrs.length > 0,
    }
  }
}

/** The namespace as a module of the metadata state machine. */
export function namespaceModule(): MetaModuleFactory<Namespace> {
  return (store) => new Namespace(store)
}

const XATTR_NAMESPACES = ['user', 'trusted', 'system', 'security', 'raw']

/** `USER.foo` → `user.foo`; INVALID_ARGUMENT without a known namespace prefix or a name after it. */
export function normalizeXAttrName(raw: string): string {
  const dot = raw.indexOf('.')
  const ns = dot > 0 ? raw.slice(0, dot).toLowerCase() : ''
  if (!XATTR_NAMESPACES.includes(ns) || dot === raw.length - 1) {
    throw new FsError(
      'INVALID_ARGUMENT',
      `An XAttr name must be prefixed with user/trusted/security/system/raw, followed by a '.': ${JSON.stringify(raw.slice(0, 300))}`,
    )
  }
  if (/[\u0000-\u001f]/.test(raw)) throw new FsError('INVALID_ARGUMENT', 'control character in an xattr name')
  return ns + raw.slice(dot)
}

function newInode(
  id: number,
  parent: number,
  name: string,
  type: typeof DIRECTORY | typeof FILE,
  permission: number,
  owner: string,
  group: string,
  now: number,
): Inode {
  return {
    id,
    parent,
    name,
    type,
    permission,
    owner,
    group,
    mtime: now,
    atime: type === FILE ? now : 0,
    size: 0,
    replication: 0,
    blockSize: 0,
    xattrs: [],
    inlined: false,
    data: EMPTY,
    blocks: [],
    childrenNum: 0,
  }
}

function subtreeHeld(h: metaProto.meta.ISubtreeHeld): SubtreeHeld {
  return {
    opId: h.opId ?? '',
    inodeId: Number(h.inodeId ?? 0),
    checked: !!h.checked,
    namespaceUsed: Number(h.namespaceUsed ?? 0),
    storagespaceUsed: Number(h.storagespaceUsed ?? 0),
  }
}

function firstMissing(r: Resolved): number {
  const i = r.inodes.indexOf(undefined)
  return i === -1 ? r.inodes.length : i
}

function leaseKey(inodeId: number): string {
  return inodeKey(inodeId, '')
}

function checkMode(permission: number): void {
  if (!Number.isInteger(permission) || permission < 0 || permission > 0o1777) {
    throw new FsError(
      'INVALID_ARGUMENT',
      `permission ${permission.toString(8)} is not an octal mode in 0..1777`,
    )
  }
}

function checkReplication(replication: number): number {
  if (!Number.isInteger(replication) || replication < 1 || replication > REPLICATION_MAX) {
    throw new FsError(
      'INVALID_ARGUMENT',
      `Requested replication factor of ${replication} is outside 1..${REPLICATION_MAX}`,
    )
  }
  return replication
}

/** HDFS's checks: at least dfs.namenode.fs-limits.min-block-size (the minBlockSize setting), a multiple of 512. */
function checkBlockSize(blockSize: number, min: number): number {
  if (!Number.isSafeInteger(blockSize) || blockSize < min)
    throw new FsError(
      'INVALID_ARGUMENT',
      `Specified block size is less than configured minimum value (minBlockSize): ${blockSize} < ${min}`,
    )
  if (blockSize % BLOCK_SIZE_MULTIPLE !== 0)
    throw new FsError('INVALID_ARGUMENT', `Specified block size ${blockSize} is not a multiple of 512`)
  return blockSize
}

function typeQuotaOf(q: DirQuota): Record<string, { quota: number; consumed: number }> {
  const out: Record<string, { quota: number; consumed: number }> = {}
  for (const t of q.typeQuotas) out[t.type] = { quota: t.quota, consumed: typeUsed(q, t.type) }
  return out
}

/** A quota directory found above a change, with its path (for the error message). */
interface QuotaDir {
  readonly id: number
  readonly path: string
}

/** See {@link Namespace.asSystem}: paths are real paths; every op is refused with the fs's own errors. */
export interface SystemOps {
  exists(path: string): boolean
  /** Makes the directory (and missing parents) with this owner, group and mode. */
  mkdir(path: string, o: { owner: string; group: string; permission: number }): void
  /** Removes a file or a whole subtree (detached, purged by the leader); false when there was nothing. */
  deleteTree(path: string): boolean
  /** HDFS setQuota: namespace names and storage bytes (-1 clears one; QUOTA_KEEP leaves it). */
  setQuota(path: string, namespace: number, storagespace: number): void
  /** The kept quota counters of a directory with a quota; undefined for one without. */
  quota(
    path: string,
  ):
    | { namespaceQuota: number; storagespaceQuota: number; namespaceUsed: number; storagespaceUsed: number }
    | undefined
}

/** What the namespace asks of the block map inside an apply (see Namespace.attachBlockHooks). */
export interface BlockHooks {
  /** The blocks `ids` now belong to file `inodeId`. */
  moveBlocks(ids: readonly number[], inodeId: number): void
  /**
   * Block `id` keeps its first `length` bytes from now on, at generation stamp `genStamp` (a truncate
   * inside it); its replicas are truncated by their datanodes.
   */
  truncateBlock(id: number, length: number, genStamp: number): void
}

/** A file being written, by inode id (what writers use) or by path. */
export interface FileRef {
  readonly fileId?: number
  readonly path?: string
}

function checkPrincipal(name: string, what: string): void {
  if (byteLength(name) > PRINCIPAL_BYTES_MAX || /[\u0000-\u001f\u007f:/]/.test(name)) {
    throw new FsError('INVALID_ARGUMENT', `invalid ${what} name ${JSON.stringify(name.slice(0, 300))}`)
  }
}

const encoder = new TextEncoder()
function byteLength(s: string): number {
  return encoder.encode(s).length
}

function copy(data: Uint8Array): Uint8Array {
  return data.length === 0 ? EMPTY : new Uint8Array(data)
}

function str(v: string | null | undefined): string {
  return v ?? ''
}

function num(v: number | null | undefined): number {
  return v ?? 0
}

function bytes(v: Uint8Array | null | undefined): Uint8Array {
  return v ?? EMPTY
}

function childPath(parent: string, name: string): string {
  return parent === '/' ? `/${name}` : `${parent}/${name}`
}
