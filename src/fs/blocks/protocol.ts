/**
 * The node-to-node protocols between datanodes and the block manager (wire formats: proto/datanode.proto;
 * unchanged by where the code lives).
 *
 *  - `/hopsd/block-report/1.0.0` (request/reply): a datanode's heartbeat with its block report
 *    (HeartbeatRequest → HeartbeatReply: replicas to delete, transfers to run, "send a full report").
 *  - `/hopsd/block-alloc/1.0.0` (request/reply, JSON {@link AllocRequest} → {@link AllocReply}): the
 *    next block of a file being written, placed and committed by the leader.
 *  - `/hopsd/block-health/1.0.0` (request/reply, empty → JSON {@link BlockHealth}): the leader's fsck
 *    report, for metadata nodes that are not the leader (only the leader knows the datanodes).
 *  - `/hopsd/block-read/1.0.0` (stream): one ReadRequest frame, then ReadFrames of ≤ 1 MiB until the
 *    range is sent, or one frame with an errorCode (CORRUPT_REPLICA: the chunk failed its CRC on that
 *    replica). Served by datanodes (src/fs/datanode), read by any node (./reads.ts).
 */
export const BLOCK_PROTOCOLS = {
  report: '/hopsd/block-report/1.0.0',
  alloc: '/hopsd/block-alloc/1.0.0',
  health: '/hopsd/block-health/1.0.0',
} as const

export const READ_PROTOCOL = '/hopsd/block-read/1.0.0'
/** Largest data in one ReadFrame a datanode sends. */
export const READ_FRAME_BYTES = 1024 * 1024
/** Largest frame a block stream accepts (a ReadFrame or a pipeline Packet with its header). */
export const BLOCK_FRAME_BYTES_MAX = 2 * 1024 * 1024

export interface AllocRequest {
  /** The file's path when it was opened (for messages; the file is `fileId`). */
  readonly path: string
  /** The file being written, by inode id (0: by path). */
  readonly fileId?: number
  /** The writer as the datanode knows it (from the Location's token); the grant decides. */
  readonly user: string
  readonly groups: readonly string[]
  /**
   * The token of the write (a grant the metadata node signed, src/api/routes/write-token.ts): the
   * leader allocates the block as the principal it proves, after checking its signature, signer,
   * expiry and scope (`addBlock` on `path`, and on `fileId` when the grant names its file).
   */
  readonly grant?: string
  readonly clientName: string
  /** The writing node (first target when it is a datanode). */
  readonly writer: string
  /** Datanodes that failed in this write's pipelines. */
  readonly exclude: readonly string[]
  /** An append: continue the file's last block when it is partial and has a live replica. */
  readonly continueLast?: boolean
  /** Hadoop's NO_LOCAL_WRITE: do not prefer the writer's node for the first replica. */
  readonly noLocalWrite?: boolean
}

export interface AllocReply {
  readonly blockId: number
  readonly genStamp: number
  readonly targets: string[]
  readonly blockSize: number
  /** Set when the file's last block is continued: its replicas at `fromGenStamp` keep `length` bytes. */
  readonly reopen?: { readonly fromGenStamp: number; readonly resumeFrom: number; readonly length: number }
}

/** Datanode heartbeats: 5 gossip intervals, within 0.3..3 s (HDFS: 3 s). */
export function heartbeatIntervalMs(gossipIntervalMs: number): number {
  return Math.min(3_000, Math.max(300, 5 * gossipIntervalMs))
}
