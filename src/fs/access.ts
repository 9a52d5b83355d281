/**
 * The rules above POSIX permissions that the file system enforces without knowing them: the projects
 * area (src/projects) implements {@link PathRules} and attaches it to the namespace
 * (`Namespace.attachPathRules`), which calls it wherever it checks permissions — inside apply for
 * writes, after the read barrier for reads — and when it resolves a path (shared datasets are aliases
 * resolved here, nothing copied). Without rules attached the namespace is plain HDFS.
 */
import type { Inode } from './inode.js'
import { DIRECTORY } from './inode.js'
import { WRITE, READ, type Caller, type Need } from './permission.js'

/**
 * What an operation does to a path, as the rules see it:
 * - `read`: its metadata (status, listing, traversal, quota usage);
 * - `read-content`: a file's bytes leave the namespace (OPEN, checksums, xattrs of a file);
 * - `write`: creates, changes or removes something at or under the path;
 * - `change-permission`: its mode, owner or group (SETPERMISSION, SETOWNER).
 */
export type FsAction = 'read' | 'read-content' | 'write' | 'change-permission'

/** The identity and superuser flag the POSIX check runs with once the rules admitted an operation. */
export interface Admitted {
  readonly caller: Caller
  readonly su: boolean
}

/** Contract of the rules: deterministic, point lookups only (they run inside apply), never block. */
export interface PathRules {
  /**
   * `names` with an alias (`/Projects/<p>/<owner>::<dataset>`) replaced by the real path of the dataset
   * it stands for; names without one come back unchanged. FILE_NOT_FOUND when no share backs the alias.
   * The real path has as many names as the alias path.
   */
  resolveAlias(names: readonly string[]): readonly string[]
  /** The aliases shown in directory `names` (sorted by name), each with the real path it resolves to. */
  aliasesIn(
    names: readonly string[],
  ): readonly { readonly name: string; readonly target: readonly string[] }[]
  /** The identity that owns what `caller` creates. */
  identity(caller: Caller): Caller
  /**
   * Whether `caller` may do `action` on the real path `names`: throws FsError ACCESS_DENIED with the
   * reason when not, else returns the identity and superuser flag the POSIX check then uses.
   */
  admit(caller: Caller, su: boolean, names: readonly string[], action: FsAction): Admitted
  /** A rename, seen whole (real paths): ACCESS_DENIED when data may not move from `src` to `dst`. */
  admitMove(caller: Caller, su: boolean, src: readonly string[], dst: readonly string[]): void
}

/** The action a permission check stands for (its `need`, and the inode it ends on). */
export function actionOf(need: Need, last: Inode | undefined): FsAction {
  if (need.owner) return 'change-permission'
  const bits = (need.ancestor ?? 0) | (need.parent ?? 0) | (need.access ?? 0) | (need.sub ?? 0)
  if (bits & WRITE) return 'write'
  if ((need.access ?? 0) & READ && last !== undefined && last.type !== DIRECTORY) return 'read-content'
  return 'read'
}
