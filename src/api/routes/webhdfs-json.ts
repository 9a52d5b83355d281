/**
 * WebHDFS's JSON shapes, as Hadoop's JsonUtil writes them and its JsonUtilClient reads them, for what
 * hopsd answers: FileStatus, ContentSummary, QuotaUsage, BlockLocations, LocatedBlocks, FsStatus,
 * FsServerDefaults.
 */
import type { ContentSummary, FileStatus, QuotaUsage } from '../../fs/index.js'

/** A replica's node as block locations name it. */
export interface LocatedReplica {
  readonly node: string
  /** Host of the node's HTTP API (what serves the block's bytes). */
  readonly host: string
  readonly port: number
  readonly zone: string
}

/** One block (or, for a file kept inline, the file as one piece) and where it can be read. */
export interface LocatedBlock {
  readonly blockId: number
  readonly genStamp: number
  readonly offset: number
  readonly length: number
  /** Every replica known is corrupt. */
  readonly corrupt: boolean
  readonly replicas: readonly LocatedReplica[]
}

export interface LocatedFile {
  readonly length: number
  readonly underConstruction: boolean
  readonly blocks: readonly LocatedBlock[]
}

/** The blocks of `file` that overlap [offset, offset + length) (HDFS's getBlockLocations). */
export function blocksInRange(file: LocatedFile, offset: number, length: number): LocatedBlock[] {
  const end = length < 0 ? Number.POSITIVE_INFINITY : offset + length
  return file.blocks.filter((b) => b.offset + b.length > offset && b.offset < end)
}

/** A FileStatus as WebHDFS's JsonUtil writes it. */
export function fileStatusJson(s: FileStatus, pathSuffix: string): Record<string, unknown> {
  return {
    accessTime: s.accessTime,
    blockSize: s.blockSize,
    childrenNum: s.childrenNum,
    fileId: s.fileId,
    group: s.group,
    length: s.length,
    modificationTime: s.modificationTime,
    owner: s.owner,
    pathSuffix,
    permission: (s.permission & 0o1777).toString(8),
    replication: s.replication,
    storagePolicy: 0,
    type: s.type,
  }
}

export function contentSummaryJson(s: ContentSummary): Record<string, unknown> {
  return {
    ContentSummary: {
      directoryCount: s.directoryCount,
      ecPolicy: '',
      fileCount: s.fileCount,
      length: s.length,
      quota: s.quota,
      snapshotDirectoryCount: 0,
      snapshotFileCount: 0,
      snapshotLength: 0,
      snapshotSpaceConsumed: 0,
      spaceConsumed: s.spaceConsumed,
      spaceQuota: s.spaceQuota,
      typeQuota: s.typeQuota,
    },
  }
}

export function quotaUsageJson(q: QuotaUsage): Record<string, unknown> {
  return {
    QuotaUsage: {
      fileAndDirectoryCount: q.fileAndDirectoryCount,
      quota: q.quota,
      spaceConsumed: q.spaceConsumed,
      spaceQuota: q.spaceQuota,
      typeQuota: q.typeQuota,
    },
  }
}

/** GETFILEBLOCKLOCATIONS: `{"BlockLocations":{"BlockLocation":[…]}}` (JsonUtil.toJsonString(BlockLocation[])). */
export function blockLocationsJson(blocks: readonly LocatedBlock[]): Record<string, unknown> {
  return {
    BlockLocations: {
      BlockLocation: blocks.map((b) => ({
        cachedHosts: [],
        corrupt: b.corrupt,
        hosts: b.replicas.map((r) => r.host),
        length: b.length,
        names: b.replicas.map((r) => `${r.host}:${r.port}`),
        offset: b.offset,
        storageIds: b.replicas.map((r) => `DS-${r.node}`),
        storageTypes: b.replicas.map(() => 'DISK'),
        topologyPaths: b.replicas.map((r) => `${rackOf(r)}/${r.host}:${r.port}`),
      })),
    },
  }
}

/** GET_BLOCK_LOCATIONS: `{"LocatedBlocks":{…}}` (JsonUtil.toJsonString(LocatedBlocks)). */
export function locatedBlocksJson(
  file: LocatedFile,
  blocks: readonly LocatedBlock[],
  nowMs: number,
): Record<string, unknown> {
  const located = (b: LocatedBlock): Record<string, unknown> => ({
    block: {
      blockId: b.blockId,
      blockPoolId: BLOCK_POOL_ID,
      generationStamp: b.genStamp,
      numBytes: b.length,
    },
    // An empty token, as a NameNode without security writes it (identifier, password, kind, service: 0 bytes each).
    blockToken: { urlString: 'AAAAAA' },
    cachedLocations: [],
    isCorrupt: b.corrupt,
    locations: b.replicas.map((r) => datanodeInfoJson(r, nowMs)),
    startOffset: b.offset,
    storageTypes: b.replicas.map(() => 'DISK'),
  })
  const last = file.blocks[file.blocks.length - 1]
  return {
    LocatedBlocks: {
      fileLength: file.length,
      isLastBlockComplete: !file.underConstruction,
      isUnderConstruction: file.underConstruction,
      lastLocatedBlock: last === undefined ? null : located(last),
      locatedBlocks: blocks.map(located),
    },
  }
}

/** A DatanodeInfo as JsonUtil writes it; hopsd serves block bytes over the node's HTTP API. */
function datanodeInfoJson(r: LocatedReplica, nowMs: number): Record<string, unknown> {
  return {
    adminState: 'NORMAL',
    blockPoolUsed: 0,
    cacheCapacity: 0,
    cacheUsed: 0,
    capacity: 0,
    dfsUsed: 0,
    hostName: r.host,
    infoPort: r.port,
    infoSecurePort: 0,
    ipAddr: r.host,
    ipcPort: r.port,
    lastBlockReportMonotonic: 0,
    lastBlockReportTime: 0,
    lastUpdate: nowMs,
    lastUpdateMonotonic: 0,
    name: `${r.host}:${r.port}`,
    networkLocation: rackOf(r),
    remaining: 0,
    storageID: `DS-${r.node}`,
    xceiverCount: 0,
    xferPort: r.port,
  }
}

/** A zone is what a rack is to HDFS's topology. */
function rackOf(r: LocatedReplica): string {
  return `/${r.zone || 'default-rack'}`
}

const BLOCK_POOL_ID = 'BP-hopsd'

/** GETSTATUS: `{"FsStatus":{capacity, used, remaining}}`. */
export function fsStatusJson(s: {
  capacity: number
  used: number
  remaining: number
}): Record<string, unknown> {
  return { FsStatus: { capacity: s.capacity, remaining: s.remaining, used: s.used } }
}

/**
 * GETSERVERDEFAULTS (JsonUtil.toJsonString(FsServerDefaults)). Checksums are presented as HDFS's CRC32C
 * per 512 bytes (type 2), as GETFILECHECKSUM computes them; no trash emptier (interval 0), no KMS.
 */
export function serverDefaultsJson(d: { blockSize: number; replication: number }): Record<string, unknown> {
  return {
    FsServerDefaults: {
      blockSize: d.blockSize,
      bytesPerChecksum: 512,
      checksumType: 2,
      defaultStoragePolicyId: 7,
      encryptDataTransfer: false,
      fileBufferSize: 4096,
      keyProviderUri: '',
      replication: d.replication,
      trashInterval: 0,
      writePacketSize: 65536,
    },
  }
}
