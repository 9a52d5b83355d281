// Python WebHDFS clients no one here wrote — HdfsCLI (`hdfs`) and fsspec + pandas over webhdfs:// —
// unmodified, against real daemons: every op each client supports on a one-node `hopsd start`, then
// written through one node of a 3-node, 3-zone cluster and read through another (and through a node
// without the metadata role, which forwards). The clients come from a venv the test makes from
// test/python/requirements.txt (test/helpers/tools.ts, cached under .cache/).
import { execFile } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateSwarmKey } from '../../src/node/p2p/index.js'
import {
  REPO_ROOT,
  makeTempDir,
  removeTempDirs,
  startNode,
  stopAllNodes,
  waitFor,
  type NodeHandle,
} from '../helpers/index.js'
import { startFsCluster, type FsCluster } from '../fs-cluster/cluster.js'
import { pythonEnv } from '../helpers/tools.js'

const run = promisify(execFile)
const PYTHON_TIMEOUT_MS = 120_000

async function python(script: string, ...args: string[]): Promise<string> {
  try {
    const { stdout } = await run(
      (await pythonEnv()).python,
      [join(REPO_ROOT, 'test/python', script), ...args],
      {
        timeout: PYTHON_TIMEOUT_MS,
      },
    )
    return stdout
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string }
    throw new Error(`${script} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`)
  }
}

describe('Python clients against one real hopsd node', () => {
  let node: NodeHandle
  let failed = false

  beforeAll(async () => {
    await pythonEnv() // made (or found) before any daemon starts: a cold pip install takes a while
    const dir = makeTempDir('hopsd-python-node-')
    const keyFile = join(dir, 'swarm.key')
    writeFileSync(keyFile, generateSwarmKey(), { mode: 0o600 })
    node = await startNode({
      dataDir: join(dir, 'n1'),
      zone: 'z1',
      bootstrapExpect: 1,
      extraArgs: ['--swarm-key', keyFile, '--raft-tick-ms', '20'],
      env: { HOPSD_LOG_LEVEL: 'warn' },
    })
    // /health answers before the one-node group has elected itself: wait until a read succeeds.
    await waitFor(
      async () => (await fetch(`${node.url}/webhdfs/v1/?op=GETFILESTATUS&user.name=hopsd`)).status === 200,
      { timeoutMs: 60_000, what: `${node.url} to serve the file system` },
    )
  }, 900_000)

  afterAll(async () => {
    if (failed && node !== undefined) {
      const { stdout, stderr } = node.logs()
      console.log(`node log tail:\n${(stdout + stderr).trimEnd().split('\n').slice(-40).join('\n')}`)
    }
    await stopAllNodes()
  })

  const tracked = (fn: () => Promise<void>) => async () => {
    try {
      await fn()
    } catch (err) {
      failed = true
      throw err
    }
  }

  it(
    'HdfsCLI: every op it supports',
    tracked(async () => {
      expect(await python('hdfscli_ops.py', node.url, '/hdfscli')).toContain('hdfscli ok')
    }),
    PYTHON_TIMEOUT_MS,
  )

  it(
    'fsspec WebHDFS filesystem and pandas.read_csv/to_csv over webhdfs://',
    tracked(async () => {
      const { hostname, port } = new URL(node.url)
      expect(await python('fsspec_ops.py', hostname, port, '/fsspec')).toContain('fsspec ok')
    }),
    PYTHON_TIMEOUT_MS,
  )
})

describe('Python clients against a 3-node, 3-zone cluster (+ a datanode-only node)', () => {
  let cluster: FsCluster
  let failed = false

  beforeAll(async () => {
    cluster = await startFsCluster({ metadata: 3, datanodes: 1, prefix: 'hopsd-python-cluster-' })
  }, 150_000)

  afterAll(async () => {
    if (failed && cluster !== undefined) console.log(cluster.logTails(30))
    await cluster?.stop()
    removeTempDirs()
  }, 60_000)

  it('written through one node, read at once through another (HdfsCLI, fsspec, pandas)', async () => {
    try {
      const [m1, m2, m3] = cluster.metadata
      const d1 = cluster.datanodes[0]!
      const pairs = [
        [m1!, m2!],
        [m3!, d1],
        [d1, m1!],
      ] as const
      for (const [w, r] of pairs) {
        const out = await python('cross_node.py', w.handle.url, r.handle.url, `/cross-${w.name}-${r.name}`)
        expect(out, `${w.name} -> ${r.name}`).toContain('cross-node ok')
      }
    } catch (err) {
      failed = true
      throw err
    }
  }, 240_000)
})
