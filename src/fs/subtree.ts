/**
 * Subtree operations (HopsFS's protocol of small transactions), for the namespace operations whose
 * work inside one command would follow the size of a subtree: a recursive delete's permission check
 * of every directory under it (HDFS's subAccess), and the measurement of a subtree's usage when it
 * leaves or enters quota directories (a delete or rename of a directory without a quota of its own
 * under one with a quota; a first quota on a directory).
 *
 * Every Delete, Rename and SetQuota first runs as one command that may walk at most
 * `subtreeBatchInodes` inodes; a bigger subtree refuses it with SUBTREE_TOO_LARGE (nothing changed),
 * and the fs service (src/fs/service.ts) runs it as a subtree operation instead:
 *
 *  1. `LockSubtree{path, opId, op}` — a small command: the operation's own checks on the path (a
 *     delete's WRITE on the parent and the sticky bit, a setQuota's superuser), no live lock above,
 *     on or below the directory; then a row in `fs.subtree` names the operation, its user and the
 *     command's time. From then on every command that would change anything inside the directory or
 *     move it is refused with SUBTREE_LOCKED (paths through it, writers by inode id under it, a delete
 *     or rename of a directory above it).
 *  2. The walk, outside apply on the proposing node after a read barrier (`Namespace.walkLocked`):
 *     bounded batches of inodes between yields to the event loop, checking and measuring. Nothing
 *     inside changes meanwhile: the lock refuses it.
 *  3. The commit: the Delete, Rename or SetQuota again, carrying `SubtreeHeld{opId, inodeId, checked,
 *     usage}`. It verifies that the lock is still this operation's and live, runs the operation's
 *     checks but the walk, uses the walk's result and releases the lock — all in one command.
 *  4. On any failure after step 1 the service proposes `UnlockSubtree{inodeId, opId}`.
 *
 * A lock is void `subtreeLockTimeoutMs` after its command (time from the commands, never the apply's
 * clock): a node that dies between steps blocks the subtree that long at most, and a later lock or
 * command takes over. Every replica decides the same: the walk's results travel in the commit.
 */
import { metaProto, protoCodec, type Codec } from '../meta/index.js'

export type SubtreeOpKind = 'delete' | 'rename' | 'setQuota'
export const SUBTREE_OP_KINDS: readonly SubtreeOpKind[] = ['delete', 'rename', 'setQuota']

/** Live subtree locks kept at most (a lock beyond is refused with SUBTREE_LOCKED). */
export const SUBTREE_LOCKS_MAX = 1000

/** A row of `fs.subtree`, keyed by be64(inodeId). */
export interface SubtreeLock {
  readonly inodeId: number
  readonly opId: string
  readonly op: string
  readonly lockedMs: number
  readonly user: string
}

export const subtreeLockCodec: Codec<SubtreeLock> = protoCodec<SubtreeLock>(metaProto.meta.SubtreeLockRow)

/** What a subtree operation's commit carries (see proto SubtreeHeld). */
export interface SubtreeHeld {
  readonly opId: string
  readonly inodeId: number
  readonly checked: boolean
  readonly namespaceUsed: number
  readonly storagespaceUsed: number
}

/** Whether `lock` still holds at command time `nowMs`. */
export function lockLive(lock: SubtreeLock, nowMs: number, timeoutMs: number): boolean {
  return nowMs < lock.lockedMs + timeoutMs
}

/** Inodes a walk inside one apply has visited (the most of any apply, and the last one's). */
export interface SubtreeWalkStats {
  readonly lastApplyInodes: number
  readonly maxApplyInodes: number
}
