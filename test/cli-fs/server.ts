// The server `hopsd fs` talks to in these tests, on a real socket:
//   - 'daemon' (default): a real `hopsd start` node (`--bootstrap-expect 1`): Raft + metadata state
//     machine + fs routes, as an operator runs it;
//   - 'inproc' (HOPSD_CLI_FS_TARGET=inproc, for quick iterations on the CLI): the same WebHDFS and native
//     fs routes over the real file-system service, one replica committed in-process.
import { join } from 'node:path'
import { createApiServer, createMetricsRegistry } from '../../src/api/index.js'
import { fsRoutes } from '../../src/api/routes/fs.js'
import { webhdfsRoutes } from '../../src/api/routes/webhdfs.js'
import { createFsService, namespaceModule } from '../../src/fs/index.js'
import { createLocalGroup, createMetaStateMachine } from '../../src/meta/index.js'
import { silentLogger } from '../../src/node/index.js'
import { makeTempDir, startNode, waitFor } from '../helpers/index.js'

export interface FsServer {
  /** `http://127.0.0.1:PORT` */
  readonly url: string
  /** What serves: 'inproc' or 'daemon'. */
  readonly kind: string
  stop(): Promise<void>
}

export async function startFsServer(
  kind = process.env['HOPSD_CLI_FS_TARGET'] ?? 'daemon',
): Promise<FsServer> {
  return kind === 'inproc' ? startInProcess() : startDaemon()
}

async function startInProcess(): Promise<FsServer> {
  const sm = createMetaStateMachine({ modules: [namespaceModule()] })
  const fs = createFsService({ consensus: createLocalGroup(sm), stateMachine: sm })
  const api = await createApiServer({
    logger: silentLogger(),
    registry: createMetricsRegistry(),
    openapi: { title: 'hopsd', version: 'test' },
    routes: [webhdfsRoutes({ fs }), fsRoutes({ fs })],
  })
  const { port } = await api.listen({ host: '127.0.0.1', port: 0 })
  return { url: `http://127.0.0.1:${port}`, kind: 'inproc', stop: () => api.close() }
}

async function startDaemon(): Promise<FsServer> {
  const dir = makeTempDir('hopsd-cli-fs-node-')
  const node = await startNode({
    dataDir: join(dir, 'n1'),
    zone: 'z1',
    bootstrapExpect: 1,
    env: { HOPSD_LOG_LEVEL: 'warn' },
  })
  // /health answers before the one-node group has elected itself: wait until a read succeeds.
  await waitFor(
    async () => (await fetch(`${node.url}/webhdfs/v1/?op=GETFILESTATUS&user.name=hopsd`)).status === 200,
    { timeoutMs: 30_000, what: `${node.url} to serve the file system` },
  )
  return {
    url: node.url,
    kind: 'daemon',
    stop: async () => {
      await node.stop()
    },
  }
}
