// Python WebHDFS clients no one here wrote (HdfsCLI and fsspec + pandas), unmodified, against hopsd's
// WebHDFS routes served on a real socket. Needs `pip install -r test/python/requirements.txt`.
// TODO(fs): run against a real daemon once src/node composes raft + meta + fs (see the report).
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createApiServer, createMetricsRegistry, type ApiServer } from '../../src/api/index.js'
import { fsRoutes } from '../../src/api/routes/fs.js'
import { webhdfsRoutes } from '../../src/api/routes/webhdfs.js'
import { silentLogger } from '../../src/node/index.js'
import { REPO_ROOT } from '../helpers/index.js'
import { makeFs } from './harness.js'

const run = promisify(execFile)
let api: ApiServer
let port = 0

beforeAll(async () => {
  const { fs } = makeFs(Date.now())
  api = await createApiServer({
    logger: silentLogger(),
    registry: createMetricsRegistry(),
    openapi: { title: 'hopsd', version: 'test' },
    routes: [webhdfsRoutes({ fs }), fsRoutes({ fs })],
  })
  port = (await api.listen({ host: '127.0.0.1', port: 0 })).port
})
afterAll(async () => {
  await api?.close()
})

async function python(script: string, ...args: string[]): Promise<string> {
  try {
    const { stdout } = await run('python3', [join(REPO_ROOT, 'test/python', script), ...args], {
      timeout: 60_000,
    })
    return stdout
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string }
    throw new Error(`${script} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`)
  }
}

describe('Python WebHDFS clients', () => {
  it('HdfsCLI: every op it supports', async () => {
    expect(await python('hdfscli_ops.py', `http://127.0.0.1:${port}`, '/hdfscli')).toContain('hdfscli ok')
  })

  it('fsspec WebHDFS filesystem and pandas.read_csv("webhdfs://...")', async () => {
    expect(await python('fsspec_ops.py', '127.0.0.1', String(port), '/fsspec')).toContain('fsspec ok')
  })
})
