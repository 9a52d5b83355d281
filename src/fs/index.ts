/**
 * The file system: the namespace module of the metadata state machine (inodes keyed by parent id and
 * name, small files inline, leases, POSIX permissions checked inside apply), and the service the API
 * and CLI call. Files in blocks: src/fs/blocks (leader side) and src/fs/datanode, each with its own
 * index.ts.
 *
 * @example
 * ```ts
 * import { createMetaStateMachine, createLocalGroup } from '../meta/index.js'
 * import { createFsService, namespaceModule, isFsError } from '../fs/index.js'
 *
 * const sm = createMetaStateMachine({ modules: [namespaceModule()] })
 * const fs = createFsService({ consensus: createLocalGroup(sm), stateMachine: sm })
 * const alice = { user: 'alice', groups: [] }
 * const hopsd = { user: 'hopsd', groups: [] } // the default superuser
 * await fs.mkdirs(hopsd, '/user/alice')
 * await fs.setOwner(hopsd, '/user/alice', 'alice', undefined)
 * await fs.create(alice, '/user/alice/a.csv', new TextEncoder().encode('x,y\n1,2\n')) // one command
 * const st = await fs.stat(alice, '/user/alice/a.csv') // st.inlined === true
 * try { await fs.mkdirs(alice, '/etc') } catch (err) { if (isFsError(err, 'ACCESS_DENIED')) { ... } }
 * ```
 */
export {
  createFsService,
  FsService,
  type AppendOpts,
  type CallOpts,
  type CreateOpts,
  type FsServiceInit,
  type ReadOpts,
} from './service.js'
export {
  namespaceModule,
  normalizeXAttrName,
  Namespace,
  FS_OPS,
  LIST_PAGE_MAX,
  REPLICATION_MAX,
  DETACHED_PARENT,
  type ContentSummary,
  type FileStatus,
  type FsOp,
  type Listing,
  type OpResults,
  type QuotaUsage,
  type BlockHooks,
  type FileRef,
  type SystemOps,
} from './namespace.js'
export {
  FsError,
  FS_ERRORS,
  errorFromResult,
  isFsError,
  type FsErrorCode,
  type FsErrorRow,
} from './errors.js'
export {
  parsePath,
  joinPath,
  parentPath,
  isAliasName,
  NAME_BYTES_MAX,
  PATH_BYTES_MAX,
  PROJECTS_DIR,
} from './path.js'
export { actionOf, type FsAction, type PathRules, type Admitted } from './access.js'
export { modeString, type Caller } from './permission.js'
export { crc32c } from './crc32c.js'
export { md5md5crc32c, BlockCrcMd5, fileChecksumOf, BYTES_PER_CRC, type FileChecksum } from './checksum.js'
export { ROOT_ID, type Block, type Inode, type XAttr } from './inode.js'
export {
  BlockMap,
  BLOCK_OPS,
  BLOCK_STATE,
  datanodeStateName,
  namespaceAndBlockModules,
  chooseTargets,
  type BlockRecord,
  type DatanodeRecord,
  type DatanodeState,
  type DatanodeCandidate,
  type PlacementRequest,
} from './blocks/index.js'
// What the area needs from outside (the daemon implements these): the network between nodes, the
// cluster view, a logger. Blocks (leader side) and the datanode have their own faces:
// src/fs/blocks/index.ts and src/fs/datanode/index.ts.
export type {
  ClusterMember,
  ClusterView,
  PeerNetwork,
  PeerRequestHandler,
  PeerRpc,
  PeerStream,
  PeerStreamHandler,
  PeerStreams,
} from './peers.js'
export { silentFsLogger, type FsLogger } from './logger.js'
export {
  createSubtreePurger,
  PURGE_INTERVAL_MS,
  type SubtreePurger,
  type SubtreePurgerInit,
} from './purge.js'
