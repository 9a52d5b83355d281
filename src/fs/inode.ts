import { metaProto, protoCodec, type Codec } from '../meta/index.js'

/** Inode types, as proto/meta.proto's InodeType numbers them. */
export const DIRECTORY = 1
export const FILE = 2
export type InodeType = typeof DIRECTORY | typeof FILE

/** HDFS's root inode id (INodeId.ROOT_INODE_ID); new inodes count up from the next id. */
export const ROOT_ID = 16385

export interface XAttr {
  readonly name: string
  readonly value: Uint8Array
}

export interface Block {
  readonly id: number
  readonly length: number
  readonly genStamp: number
}

/**
 * An inode, stored in the `fs.inode` table under (parent, name). Immutable: a change puts a new object
 * (the undo journal holds the old one). Every field is always present so that encoding is identical on
 * every replica.
 */
export interface Inode {
  readonly id: number
  readonly parent: number
  readonly name: string
  readonly type: InodeType
  readonly permission: number
  readonly owner: string
  readonly group: string
  readonly mtime: number
  readonly atime: number
  readonly size: number
  readonly replication: number
  readonly blockSize: number
  /** Sorted by name. */
  readonly xattrs: readonly XAttr[]
  readonly inlined: boolean
  /** Inline content (files of at most inlineThreshold bytes). */
  readonly data: Uint8Array
  /** Block list (files stored on datanodes: part 2). */
  readonly blocks: readonly Block[]
  /** Directories: number of direct children. */
  readonly childrenNum: number
}

/** A write lease, in the `fs.lease` table under the file's inode id. */
export interface Lease {
  readonly inodeId: number
  readonly holder: string
  readonly renewedMs: number
  /** Storage space the file's blocks under construction hold against quotas (src/fs/quota.ts). */
  readonly chargedBytes: number
}

export const inodeCodec: Codec<Inode> = protoCodec<Inode>(metaProto.meta.Inode)
export const leaseCodec: Codec<Lease> = protoCodec<Lease>(metaProto.meta.Lease)
export const counterCodec: Codec<{ value: number }> = protoCodec<{ value: number }>(metaProto.meta.Counter)

export const EMPTY = new Uint8Array(0)
