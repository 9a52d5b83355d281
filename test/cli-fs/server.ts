// The server `hopsd fs` talks to in these tests: the real WebHDFS and native fs routes on a real socket,
// over the real file-system service and metadata state machine (one replica, committed in-process).
// TODO(fs): switch to a `hopsd start` node (test/helpers startNode) once src/node/modules.ts composes
// raft + meta + fs and the daemon serves these routes.
import { createApiServer, createMetricsRegistry } from '../../src/api/index.js'
import { fsRoutes } from '../../src/api/routes/fs.js'
import { webhdfsRoutes } from '../../src/api/routes/webhdfs.js'
import { createFsService, namespaceModule } from '../../src/fs/index.js'
import { createLocalGroup, createMetaStateMachine } from '../../src/meta/index.js'
import { silentLogger } from '../../src/node/index.js'

export interface FsServer {
  /** `http://127.0.0.1:PORT` */
  readonly url: string
  stop(): Promise<void>
}

export async function startFsServer(): Promise<FsServer> {
  const sm = createMetaStateMachine({ modules: [namespaceModule()] })
  const fs = createFsService({ consensus: createLocalGroup(sm), stateMachine: sm })
  const api = await createApiServer({
    logger: silentLogger(),
    registry: createMetricsRegistry(),
    openapi: { title: 'hopsd', version: 'test' },
    routes: [webhdfsRoutes({ fs }), fsRoutes({ fs })],
  })
  const { port } = await api.listen({ host: '127.0.0.1', port: 0 })
  return { url: `http://127.0.0.1:${port}`, stop: () => api.close() }
}
