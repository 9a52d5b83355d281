import { CommandRejected, META_ERRORS } from '../meta/index.js'
import { authErrorFromResult } from '../auth/index.js'

/**
 * Errors of the file system, one row per stable code: the HTTP status, and how WebHDFS reports it —
 * Hadoop's exception simple name and javaClassName, so that Hadoop's own clients rethrow the right
 * Java exception (their status codes follow Hadoop's ExceptionHandler: FileNotFound 404,
 * IllegalArgument 400, other IOExceptions 403).
 */
export const FS_ERRORS = {
  FILE_NOT_FOUND: row(
    404,
    'FileNotFoundException',
    'java.io.FileNotFoundException',
    'The path does not exist.',
  ),
  FILE_ALREADY_EXISTS: row(
    403,
    'FileAlreadyExistsException',
    'org.apache.hadoop.fs.FileAlreadyExistsException',
    'The path already exists.',
  ),
  ACCESS_DENIED: row(
    403,
    'AccessControlException',
    'org.apache.hadoop.security.AccessControlException',
    'Permission denied for the calling user.',
  ),
  INVALID_PATH: row(
    400,
    'InvalidPathException',
    'org.apache.hadoop.fs.InvalidPathException',
    'The path is not absolute and normalized, or has a forbidden name.',
  ),
  NOT_A_DIRECTORY: row(
    403,
    'ParentNotDirectoryException',
    'org.apache.hadoop.fs.ParentNotDirectoryException',
    'A path component that must be a directory is a file.',
  ),
  IS_A_DIRECTORY: row(
    404,
    'FileNotFoundException',
    'java.io.FileNotFoundException',
    'The path is a directory where a file is needed.',
  ),
  DIRECTORY_NOT_EMPTY: row(
    403,
    'PathIsNotEmptyDirectoryException',
    'org.apache.hadoop.fs.PathIsNotEmptyDirectoryException',
    'The directory is not empty and the delete is not recursive.',
  ),
  FILE_TOO_LARGE_FOR_INLINE: row(
    413,
    'IOException',
    'java.io.IOException',
    'The bytes would exceed inlineThreshold where only inline bytes are taken (PUT /api/v1/fs/files, an inline concat); larger files go through WebHDFS CREATE to blocks.',
  ),
  LEASE_CONFLICT: row(
    403,
    'AlreadyBeingCreatedException',
    'org.apache.hadoop.hdfs.protocol.AlreadyBeingCreatedException',
    'Another client holds the write lease on the file.',
  ),
  LEASE_NOT_HELD: row(
    403,
    'LeaseExpiredException',
    'org.apache.hadoop.hdfs.server.namenode.LeaseExpiredException',
    'The caller holds no write lease on the file (never had one, or it expired and was taken).',
  ),
  INVALID_ARGUMENT: row(
    400,
    'IllegalArgumentException',
    'java.lang.IllegalArgumentException',
    'A parameter is missing, malformed or out of range.',
  ),
  UNSUPPORTED_OPERATION: row(
    400,
    'UnsupportedOperationException',
    'java.lang.UnsupportedOperationException',
    'The operation is not supported.',
  ),
  XATTR_EXISTS: row(
    403,
    'IOException',
    'java.io.IOException',
    'The xattr exists and the CREATE flag forbids replacing it.',
  ),
  XATTR_NOT_FOUND: row(
    403,
    'IOException',
    'java.io.IOException',
    'The xattr does not exist (REPLACE flag, remove or get).',
  ),
  XATTR_LIMIT: row(
    403,
    'IOException',
    'java.io.IOException',
    'Too many xattrs on the inode, or a name/value too large.',
  ),
  DISK_FULL: row(
    507,
    'DiskOutOfSpaceException',
    'org.apache.hadoop.util.DiskChecker$DiskOutOfSpaceException',
    'A datanode has no room for the block; the write failed and the file is left as it was.',
  ),
  CORRUPT_REPLICA: row(
    500,
    'ChecksumException',
    'org.apache.hadoop.fs.ChecksumException',
    'A block replica failed its CRC32C checksum (it is reported and replaced).',
  ),
  BLOCK_NOT_FOUND: row(
    404,
    'BlockMissingException',
    'org.apache.hadoop.hdfs.BlockMissingException',
    'No live datanode holds a good replica of a block of the file.',
  ),
  NS_QUOTA_EXCEEDED: row(
    403,
    'NSQuotaExceededException',
    'org.apache.hadoop.hdfs.protocol.NSQuotaExceededException',
    "A directory's namespace quota (files and directories under it, itself included) would be exceeded; nothing changed.",
  ),
  DS_QUOTA_EXCEEDED: row(
    403,
    'DSQuotaExceededException',
    'org.apache.hadoop.hdfs.protocol.DSQuotaExceededException',
    "A directory's storage space quota (bytes of replicas under it) would be exceeded; nothing changed.",
  ),
  TYPE_QUOTA_EXCEEDED: row(
    403,
    'QuotaByStorageTypeExceededException',
    'org.apache.hadoop.hdfs.protocol.QuotaByStorageTypeExceededException',
    "A directory's quota for a storage type (DISK: every replica hopsd stores) would be exceeded; nothing changed.",
  ),
  SUBTREE_LOCKED: row(
    503,
    'RetriableException',
    'org.apache.hadoop.ipc.RetriableException',
    'A subtree operation (a recursive delete, rename or first quota of a big directory) holds a lock on the directory or one above or below the path; retry once it ends (the fs service waits a while first). Also: the operation lost its own lock (it outlived subtreeLockTimeoutMs).',
  ),
  SUBTREE_TOO_LARGE: row(
    503,
    'RetriableException',
    'org.apache.hadoop.ipc.RetriableException',
    'The subtree has more inodes than one command may walk (subtreeBatchInodes): the fs service then runs the operation as a subtree operation, so callers of the service never see this code.',
  ),
  NOT_ENOUGH_DATANODES: row(
    503,
    'IOException',
    'java.io.IOException',
    'Too few live datanodes with free space to place a block.',
  ),
} as const

export type FsErrorCode = keyof typeof FS_ERRORS

export interface FsErrorRow {
  readonly httpStatus: number
  readonly exception: string
  readonly javaClassName: string
  readonly description: string
}

function row(httpStatus: number, exception: string, javaClassName: string, description: string): FsErrorRow {
  return { httpStatus, exception, javaClassName, description }
}

/**
 * A typed file-system error. Thrown inside apply() it refuses the command (extends CommandRejected);
 * thrown by the service it is what the caller catches. Branch on `code`.
 */
export class FsError extends CommandRejected {
  declare readonly code: FsErrorCode

  constructor(code: FsErrorCode, message?: string) {
    super(code, message ?? FS_ERRORS[code].description)
  }

  /** The WebHDFS `RemoteException` body for this error. */
  toRemoteException(): { RemoteException: { exception: string; javaClassName: string; message: string } } {
    const r = FS_ERRORS[this.code]
    return {
      RemoteException: { exception: r.exception, javaClassName: r.javaClassName, message: this.message },
    }
  }

  get httpStatus(): number {
    return FS_ERRORS[this.code].httpStatus
  }
}

export function isFsError(err: unknown, code?: FsErrorCode): err is FsError {
  return err instanceof FsError && (code === undefined || err.code === code)
}

export function isFsErrorCode(code: string): code is FsErrorCode {
  return Object.hasOwn(FS_ERRORS, code)
}

/**
 * The error to throw for a refused command's `{ code, message }` (from apply's result). Meta's own codes
 * map to the nearest fs code so that callers and WebHDFS see one family; anything else is a bug.
 */
export function errorFromResult(code: string, message: string): Error {
  if (isFsErrorCode(code)) return new FsError(code, message)
  // The auth guard refuses a command whose credential no longer holds (revoked, expired, removed).
  const auth = authErrorFromResult(code, message)
  if (auth !== undefined) return auth
  if (code === 'SUPERUSER_REQUIRED') return new FsError('ACCESS_DENIED', message)
  if (Object.hasOwn(META_ERRORS, code)) return new FsError('INVALID_ARGUMENT', `${code}: ${message}`)
  return new Error(`fs: unexpected result code ${code}: ${message}`)
}
