// Consensus errors reach WebHDFS clients with the status of the one error table (src/errors.ts), as
// RemoteExceptions: a real Raft group (in-process, memory transport) under the fs service, the
// WebHDFS routes on a real socket, and the client's two-step write over HTTP.
import { afterEach, describe, expect, it } from 'vitest'
import { createApiServer, createMetricsRegistry, webhdfsRoutes, type ApiServer } from '../../src/api/index.js'
import {
  createMemoryNetwork,
  createMemoryStorage,
  createRaftGroup,
  createSeededRng,
  ConsensusError,
  type RaftGroup,
  type RaftGroupConfig,
} from '../../src/consensus/index.js'
import { ERROR_TABLE } from '../../src/errors.js'
import { createFsService, FsError, namespaceModule } from '../../src/fs/index.js'
import { createMetaStateMachine } from '../../src/meta/index.js'
import { silentLogger } from '../../src/node/index.js'
import { P2PError } from '../../src/node/p2p/index.js'
import { toRemoteException } from '../../src/api/remote-exception.js'
import { waitFor } from '../helpers/index.js'

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

/** Node `a` of a group whose voters are `voters` (only `a` runs), serving WebHDFS on loopback. */
async function webhdfsOver(voters: string[], config: Partial<RaftGroupConfig>) {
  const sm = createMetaStateMachine({ modules: [namespaceModule()] })
  const group: RaftGroup = createRaftGroup({
    id: 'a',
    storage: createMemoryStorage(),
    transport: createMemoryNetwork().transport('a'),
    stateMachine: sm,
    rng: createSeededRng(1),
    config: { tickMs: 10, ...config },
  })
  await group.start()
  await group.bootstrap(voters)
  cleanups.push(() => group.stop())
  const fs = createFsService({
    consensus: {
      propose: (cmd, opts) => group.propose(cmd, opts),
      readBarrier: (opts) => group.readBarrier(opts),
    },
    stateMachine: sm,
  })
  const api: ApiServer = await createApiServer({
    logger: silentLogger(),
    registry: createMetricsRegistry(),
    openapi: { title: 'hopsd', version: 'test' },
    routes: [webhdfsRoutes({ fs })],
  })
  cleanups.push(() => api.close())
  const { port } = await api.listen({ host: '127.0.0.1', port: 0 })
  return { group, base: `http://127.0.0.1:${port}/webhdfs/v1` }
}

/** A WebHDFS CREATE as Hadoop's client makes it: step one, then the data to the Location. */
async function create(base: string, path: string, data: Uint8Array): Promise<Response> {
  const step1 = await fetch(`${base}${path}?op=CREATE&user.name=hopsd`, { method: 'PUT', redirect: 'manual' })
  expect(step1.status).toBe(307)
  return fetch(step1.headers.get('location')!, {
    method: 'PUT',
    body: data,
    headers: { 'content-type': 'application/octet-stream' },
  })
}

describe('WebHDFS errors through the error table', () => {
  it('a command over the Raft batch limit: PROPOSAL_TOO_LARGE answers 413, as the table says', async () => {
    const { group, base } = await webhdfsOver(['a'], { maxBatchBytes: 16 * 1024 })
    await waitFor(() => group.status().role === 'leader', { timeoutMs: 10_000 })
    const ok = await create(base, '/small', new Uint8Array(1024))
    expect(ok.status).toBe(201)
    // 20 KiB is under inlineThreshold (64 KiB): one CreateFile command, refused by consensus.
    const res = await create(base, '/big', new Uint8Array(20 * 1024))
    expect(ERROR_TABLE.PROPOSAL_TOO_LARGE.httpStatus).toBe(413)
    expect(res.status).toBe(413)
    const body = (await res.json()) as { RemoteException: Record<string, string> }
    expect(body.RemoteException).toMatchObject({
      exception: 'IOException',
      javaClassName: 'java.io.IOException',
      message: expect.stringContaining('maxBatchBytes'),
    })
  })

  it('a group without a quorum: TIMEOUT answers 504, as the table says, and the client may retry', async () => {
    // Voters a and b; b never runs, so no leader is ever elected and nothing commits.
    const { base } = await webhdfsOver(['a', 'b'], { proposalTimeoutMs: 300 })
    expect(ERROR_TABLE.TIMEOUT.httpStatus).toBe(504)
    const write = await create(base, '/f', new Uint8Array(10)) // a proposal
    const read = await fetch(`${base}/?op=GETFILESTATUS&user.name=hopsd`) // a read barrier
    for (const res of [write, read]) {
      expect(res.status).toBe(504)
      expect(((await res.json()) as { RemoteException: unknown }).RemoteException).toEqual({
        exception: 'RetriableException',
        javaClassName: 'org.apache.hadoop.ipc.RetriableException',
        message: 'the operation did not complete before its deadline',
      })
    }
  })

  it('a stopped group: STOPPED answers 503', async () => {
    const { group, base } = await webhdfsOver(['a'], {})
    await group.stop()
    const res = await fetch(`${base}/d?op=MKDIRS&user.name=hopsd`, { method: 'PUT' })
    expect(res.status).toBe(ERROR_TABLE.STOPPED.httpStatus)
    expect(((await res.json()) as { RemoteException: { exception: string } }).RemoteException.exception).toBe(
      'RetriableException',
    )
  })
})

describe('toRemoteException', () => {
  it('gives every known code the status of the table; fs codes keep their Hadoop exceptions', () => {
    for (const [code, row] of Object.entries(ERROR_TABLE)) {
      if (code === 'INTERNAL') continue
      const { status, body } = toRemoteException(Object.assign(new Error('m'), { code }))
      expect(status, code).toBe(row.httpStatus)
      expect(body.RemoteException.message).toBe('m')
    }
    const notLeader = toRemoteException(new ConsensusError('NOT_LEADER'))
    expect(notLeader.status).toBe(ERROR_TABLE.NOT_LEADER.httpStatus)
    expect(notLeader.body.RemoteException.exception).toBe('RetriableException')
    const fsError = toRemoteException(new FsError('FILE_ALREADY_EXISTS', 'exists'))
    expect(fsError).toEqual({
      status: 403,
      body: {
        RemoteException: {
          exception: 'FileAlreadyExistsException',
          javaClassName: 'org.apache.hadoop.fs.FileAlreadyExistsException',
          message: 'exists',
        },
      },
    })
  })

  it("tells a peer's error by the peer's code; unknown errors stay internal", () => {
    const forwarded = new P2PError('REMOTE_ERROR', 'leader answered PROPOSAL_TOO_LARGE', {
      remoteCode: 'PROPOSAL_TOO_LARGE',
    })
    expect(toRemoteException(forwarded).status).toBe(413)
    const unknownRemote = new P2PError('REMOTE_ERROR', 'x', { remoteCode: 'NO_SUCH_CODE' })
    expect(toRemoteException(unknownRemote).status).toBe(ERROR_TABLE.REMOTE_ERROR.httpStatus)
    expect(toRemoteException(new TypeError('boom'))).toEqual({
      status: 500,
      body: {
        RemoteException: {
          exception: 'RuntimeException',
          javaClassName: 'java.lang.RuntimeException',
          message: 'internal error',
        },
      },
    })
  })
})
