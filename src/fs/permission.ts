import { FsError } from './errors.js'
import { joinPath } from './path.js'
import type { Inode } from './inode.js'

/** The identity an operation runs as: the principal the API verified (src/auth `Principal` is one). */
export interface Caller {
  readonly user: string
  readonly groups: readonly string[]
  /**
   * The project the caller acts in ('' or undefined: none). The path rules (src/fs/access.ts, given by
   * the projects area) decide what a project principal may do, and as whom POSIX checks it.
   */
  readonly project?: string
  /**
   * Set when the caller is a job's task acting in `project` (a job key): the project's rules let it read
   * what the same user may not take out of the project (sensitive datasets).
   */
  readonly job?: string
}

/** POSIX actions as permission bits (rwx = 4|2|1). */
export const READ = 4
export const WRITE = 2
export const EXECUTE = 1
export const READ_EXECUTE = READ | EXECUTE
export const ALL = READ | WRITE | EXECUTE
export const STICKY_BIT = 0o1000

/**
 * A path resolved the way HDFS's INodesInPath resolves it: `inodes[0]` is the root and `inodes[i]` the
 * inode of `names[i - 1]`; from the first missing component on, entries are undefined. When a
 * component other than the last is a file, `fileAt` is its index and nothing after it resolves.
 */
export interface Resolved {
  readonly names: readonly string[]
  readonly inodes: readonly (Inode | undefined)[]
  readonly fileAt: number
}

/** What an operation needs (HDFS FSPermissionChecker.checkPermission's arguments). */
export interface Need {
  /** The caller must own the last inode. */
  readonly owner?: boolean
  /** Access on the nearest existing ancestor of the last component. */
  readonly ancestor?: number
  /** Access on the last component's parent (WRITE here also applies the sticky-bit rule). */
  readonly parent?: number
  /** Access on the last inode itself. */
  readonly access?: number
  /** Access on every directory of the subtree under the last inode. */
  readonly sub?: number
  /** With `sub`: empty directories are not checked (HDFS's ignoreEmptyDir, used by delete). */
  readonly ignoreEmptyDir?: boolean
}

/**
 * HDFS's permission check, run inside apply (deterministic) and on reads: EXECUTE on every directory
 * traversed, then each requirement of `need`. The superuser passes everything. Throws ACCESS_DENIED
 * with HDFS's message shape.
 */
export function checkPermission(
  caller: Caller,
  isSuperuser: boolean,
  r: Resolved,
  need: Need,
  children: (dir: Inode) => Iterable<Inode>,
): void {
  if (isSuperuser) return
  const { inodes } = r
  const last = inodes.length - 1
  let ancestorIndex = last - 1
  while (ancestorIndex >= 0 && inodes[ancestorIndex] === undefined) ancestorIndex--
  // Traverse: x on every existing directory up to the last component's nearest existing ancestor.
  for (let i = 0; i <= ancestorIndex; i++) {
    const inode = inodes[i]
    if (inode === undefined) break
    if (inode.type !== 1) break // a file in the path: resolution fails later with NOT_A_DIRECTORY
    check(caller, inode, EXECUTE, r, i)
  }
  if (need.owner && inodes[last] !== undefined && inodes[last]!.owner !== caller.user) {
    throw new FsError(
      'ACCESS_DENIED',
      `Permission denied. user=${caller.user} is not the owner of inode=${pathAt(r, last)}`,
    )
  }
  if (need.ancestor && ancestorIndex >= 0)
    check(caller, inodes[ancestorIndex]!, need.ancestor, r, ancestorIndex)
  const parent = last >= 1 ? inodes[last - 1] : undefined
  if (need.parent && parent !== undefined) {
    check(caller, parent, need.parent, r, last - 1)
    const inode = inodes[last]
    if (need.parent & WRITE && inode !== undefined) checkStickyBit(caller, parent, inode, r)
  }
  const inode = inodes[last]
  if (need.access && inode !== undefined) check(caller, inode, need.access, r, last)
  if (need.sub && inode !== undefined && inode.type === 1)
    checkSubtree(caller, inode, need.sub, !!need.ignoreEmptyDir, r, children)
}

/** True when `caller` has every bit of `action` on `inode` (owner, else group, else other class). */
export function allows(caller: Caller, inode: Inode, action: number): boolean {
  const mode = inode.permission
  const bits =
    caller.user === inode.owner
      ? (mode >> 6) & 7
      : caller.groups.includes(inode.group)
        ? (mode >> 3) & 7
        : mode & 7
  return (bits & action) === action
}

function check(caller: Caller, inode: Inode, action: number, r: Resolved, index: number): void {
  if (!allows(caller, inode, action)) throw permissionDenied(caller, inode, action, pathAt(r, index))
}

function checkStickyBit(caller: Caller, parent: Inode, inode: Inode, r: Resolved): void {
  if ((parent.permission & STICKY_BIT) === 0) return
  if (parent.owner === caller.user || inode.owner === caller.user) return
  throw new FsError(
    'ACCESS_DENIED',
    `Permission denied by sticky bit: user=${caller.user}, path="${joinPath(r.names)}":${inode.owner}:${inode.group}, parent="${pathAt(r, r.inodes.length - 2)}":${parent.owner}:${parent.group}:${modeString(parent)}`,
  )
}

function checkSubtree(
  caller: Caller,
  root: Inode,
  action: number,
  ignoreEmptyDir: boolean,
  r: Resolved,
  children: (dir: Inode) => Iterable<Inode>,
): void {
  const stack: Array<{ dir: Inode; path: string }> = [{ dir: root, path: joinPath(r.names) }]
  while (stack.length > 0) {
    const { dir, path } = stack.pop()!
    if (ignoreEmptyDir && dir.childrenNum === 0) continue
    if (!allows(caller, dir, action)) throw permissionDenied(caller, dir, action, path)
    for (const child of children(dir)) {
      if (child.type === 1)
        stack.push({ dir: child, path: path === '/' ? `/${child.name}` : `${path}/${child.name}` })
    }
  }
}

/** HDFS's AccessControlException text for `action` refused on `inode` at `path`. */
export function permissionDenied(caller: Caller, inode: Inode, action: number, path: string): FsError {
  return new FsError(
    'ACCESS_DENIED',
    `Permission denied: user=${caller.user}, access=${actionName(action)}, inode="${path}":${inode.owner}:${inode.group}:${modeString(inode)}`,
  )
}

function pathAt(r: Resolved, index: number): string {
  return joinPath(r.names.slice(0, index))
}

const ACTION_NAMES = [
  'NONE',
  'EXECUTE',
  'WRITE',
  'WRITE_EXECUTE',
  'READ',
  'READ_EXECUTE',
  'READ_WRITE',
  'ALL',
]

function actionName(action: number): string {
  return ACTION_NAMES[action & 7]!
}

/** `drwxr-xr-x` / `-rw-r--r--` with `t`/`T` for the sticky bit, as `ls` and HDFS print it. */
export function modeString(inode: Pick<Inode, 'type' | 'permission'>): string {
  const m = inode.permission
  const rwx = (b: number): string => (b & 4 ? 'r' : '-') + (b & 2 ? 'w' : '-') + (b & 1 ? 'x' : '-')
  let s = (inode.type === 1 ? 'd' : '-') + rwx(m >> 6) + rwx(m >> 3) + rwx(m)
  if (m & STICKY_BIT) s = s.slice(0, 9) + (m & 1 ? 't' : 'T')
  return s
}
