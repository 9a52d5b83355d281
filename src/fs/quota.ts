/**
 * Directory quotas, as HDFS keeps them: a directory that carries a quota has a row in `fs.quota` with
 * its limits and what its subtree uses — the namespace (inodes, the directory itself included) and
 * the storage space (bytes of replicas: length × replication; a block being written counts at its full
 * block size until the file closes). Every command that changes a subtree updates the rows of the
 * quota directories above it (found in O(depth) through a derived set of their ids), checking them
 * first: a command that would exceed one is refused with NS/DS_QUOTA_EXCEEDED and changes nothing.
 * Checks never walk a subtree; only setting a quota on a directory for the first time measures it
 * once (as HDFS's INodeDirectory.setQuota does).
 */
import { metaProto, protoCodec, type Codec } from '../meta/index.js'
import { FsError } from './errors.js'

export interface TypeQuota {
  readonly type: string
  readonly quota: number
}

export interface DirQuota {
  /** -1: none. */
  readonly namespaceQuota: number
  /** -1: none. */
  readonly storagespaceQuota: number
  readonly namespaceUsed: number
  readonly storagespaceUsed: number
  readonly typeQuotas: readonly TypeQuota[]
}

export const dirQuotaCodec: Codec<DirQuota> = protoCodec<DirQuota>(metaProto.meta.DirQuota)

/** What a change adds to (or, negative, takes from) a subtree. */
export interface Usage {
  readonly ns: number
  readonly ss: number
}

export const NO_USAGE: Usage = { ns: 0, ss: 0 }

/** "Leave this quota as it is" in a SetQuota command (HDFS's QUOTA_DONT_SET). */
export const QUOTA_KEEP = -2
export const QUOTA_NONE = -1

/** Storage types that take a quota (Hadoop's non-transient types). hopsd stores every replica on DISK. */
export const QUOTA_TYPES = ['SSD', 'DISK', 'ARCHIVE', 'PROVIDED', 'NVDIMM'] as const

/** What a directory's subtree uses of a storage type: everything on DISK, nothing elsewhere. */
export function typeUsed(q: DirQuota, type: string): number {
  return type === 'DISK' ? q.storagespaceUsed : 0
}

/** Whether a row still limits anything (a directory without limits loses its row, as in HDFS). */
export function hasLimits(q: DirQuota): boolean {
  return q.namespaceQuota >= 0 || q.storagespaceQuota >= 0 || q.typeQuotas.length > 0
}

/**
 * Refuses `delta` on directory `path` when it would exceed a quota (only growth is checked: a subtree
 * already over its quota may always shrink, as in HDFS's verifyQuota).
 */
export function checkQuota(q: DirQuota, delta: Usage, path: string): void {
  if (delta.ns > 0 && q.namespaceQuota >= 0 && q.namespaceUsed + delta.ns > q.namespaceQuota) {
    throw new FsError(
      'NS_QUOTA_EXCEEDED',
      `The NameSpace quota (directories and files) of directory ${path} is exceeded: quota=${q.namespaceQuota} file count=${q.namespaceUsed + delta.ns}`,
    )
  }
  if (delta.ss > 0 && q.storagespaceQuota >= 0 && q.storagespaceUsed + delta.ss > q.storagespaceQuota) {
    const used = q.storagespaceUsed + delta.ss
    throw new FsError(
      'DS_QUOTA_EXCEEDED',
      `The DiskSpace quota of ${path} is exceeded: quota = ${q.storagespaceQuota} B = ${long2String(q.storagespaceQuota)} but diskspace consumed = ${used} B = ${long2String(used)}`,
    )
  }
  if (delta.ss > 0) {
    for (const t of q.typeQuotas) {
      const used = typeUsed(q, t.type) + (t.type === 'DISK' ? delta.ss : 0)
      if (t.type === 'DISK' && used > t.quota) {
        throw new FsError(
          'TYPE_QUOTA_EXCEEDED',
          `Quota by storage type : ${t.type} on path : ${path} is exceeded. quota = ${t.quota} B = ${long2String(t.quota)} but space consumed = ${used} B = ${long2String(used)}`,
        )
      }
    }
  }
}

/** `q` with `delta` added to its usage. */
export function addUsage(q: DirQuota, delta: Usage): DirQuota {
  return {
    ...q,
    namespaceUsed: Math.max(0, q.namespaceUsed + delta.ns),
    storagespaceUsed: Math.max(0, q.storagespaceUsed + delta.ss),
  }
}

export function sumUsage(a: Usage, b: Usage): Usage {
  return { ns: a.ns + b.ns, ss: a.ss + b.ss }
}

export function negate(u: Usage): Usage {
  return { ns: -u.ns, ss: -u.ss }
}

const PREFIXES = ['', 'K', 'M', 'G', 'T', 'P', 'E']

/** Hadoop's TraditionalBinaryPrefix.long2String(n, "B", 2): `1 MB`, `1.50 GB`, `512 B`. */
export function long2String(n: number): string {
  if (n < 1024) return `${n} B`
  let i = 0
  while (i + 1 < PREFIXES.length && n >= 1024 ** (i + 1)) i++
  const unit = 1024 ** i
  if (n % unit === 0) return `${n / unit} ${PREFIXES[i]}B`
  let s = (n / unit).toFixed(2)
  if (s.startsWith('1024') && i + 1 < PREFIXES.length) {
    i++
    s = (n / 1024 ** i).toFixed(2)
  }
  return `${s} ${PREFIXES[i]}B`
}
