// WebHDFS clients no one here wrote — HdfsCLI (`hdfs`), fsspec + pandas over webhdfs://, and Hadoop's own
// Java client with FsShell — unmodified, against real daemons: every op each Python client supports on
// a one-node `hopsd start`; then, on a 4-node cluster (a datanode-only node among them, which forwards),
// files of every size written through one node and read through every other as a non-superuser, and
// the Java client's listFiles, concat, truncate, create options, appends, quotas and shell commands. The clients come from a venv the test makes from
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
import { startBlockCluster, type BCluster } from '../blocks/cluster.js'
import { hadoopClient, pythonEnv } from '../helpers/tools.js'

const run = promisify(execFile)
const PYTHON_TIMEOUT_MS = 120_000
/** The one large file of the run (MB): 300 by default; HOPSD_TEST_BIG_MB shrinks it for a quick run. */
const BIG_MB = Number(process.env['HOPSD_TEST_BIG_MB'] ?? 300)

async function python(script: string, ...args: string[]): Promise<string> {
  try {
    const { stdout } = await run(
      (await pythonEnv()).python,
      [join(REPO_ROOT, 'test/python', script), ...args],
      { timeout: 900_000, maxBuffer: 64 * 1024 * 1024 },
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

describe('clients against a 4-node cluster: 3 metadata + datanode in 3 zones, 1 datanode-only', () => {
  let cluster: BCluster
  let failed = false
  const tracked = (fn: () => Promise<void>) => async () => {
    try {
      await fn()
    } catch (err) {
      failed = true
      throw err
    }
  }

  beforeAll(async () => {
    await Promise.all([pythonEnv(), hadoopClient()])
    cluster = await startBlockCluster({ metadata: 3, datanodes: 1 })
    // A user who is not the superuser, with a home directory the superuser made for them.
    const n = cluster.nodes[0]!.handle.url
    for (const [op, method, q] of [
      ['MKDIRS', 'PUT', ''],
      ['SETOWNER', 'PUT', '&owner=alice&group=staff'],
    ] as const) {
      const r = await fetch(`${n}/webhdfs/v1/user/alice?op=${op}&user.name=hopsd${q}`, { method })
      expect(r.status).toBe(200)
    }
  }, 900_000)

  afterAll(async () => {
    if (failed && cluster !== undefined) console.log(cluster.logTails(30))
    await cluster?.stop()
    removeTempDirs()
  }, 60_000)

  it(
    'written through one node, read at once through another (HdfsCLI, fsspec, pandas)',
    tracked(async () => {
      const [m1, m2, m3, d1] = cluster.nodes
      const pairs = [
        [m1!, m2!],
        [m3!, d1!],
        [d1!, m1!],
      ] as const
      for (const [w, r] of pairs) {
        const out = await python('cross_node.py', w.handle.url, r.handle.url, `/cross-${w.name}-${r.name}`)
        expect(out, `${w.name} -> ${r.name}`).toContain('cross-node ok')
      }
    }),
    240_000,
  )

  it(
    'as a non-superuser: 1 KiB, 5 MiB, 12 MiB through every client and 300 MB once, byte-identical through every node; pandas to_csv of an 8 MB frame',
    tracked(async () => {
      const out = await python(
        'sizes.py',
        'alice',
        '/user/alice/sizes',
        String(BIG_MB),
        ...cluster.nodes.map((n) => n.handle.url),
      )
      expect(out).toContain('sizes ok')
    }),
    900_000,
  )

  it(
    "Hadoop's Java client over webhdfs://: listFiles with block locations, concat, truncate, createNonRecursive, createFile().overwrite(true), an append across a rename, quotas, FsShell -df -truncate -checksum",
    tracked(async () => {
      const { classpath } = await hadoopClient()
      const n = cluster.nodes[1]!
      const { port } = new URL(n.handle.url)
      try {
        const { stdout } = await run(
          'java',
          [
            // No /tmp/hsperfdata_* and no files in the system temp dir: the test leaves nothing behind.
            '-XX:-UsePerfData',
            `-Djava.io.tmpdir=${makeTempDir('hopsd-java-')}`,
            '-cp',
            classpath,
            'HadoopWebHdfsOps',
            `webhdfs://127.0.0.1:${port}`,
            '/user/alice/hadoop',
          ],
          {
            timeout: 300_000,
            maxBuffer: 64 * 1024 * 1024,
            env: { ...process.env, HADOOP_USER_NAME: 'alice' },
          },
        )
        expect(stdout).toContain('hadoop ok')
      } catch (err) {
        const e = err as { stdout?: string; stderr?: string; message: string }
        throw new Error(
          `HadoopWebHdfsOps failed: ${e.message}\n${e.stdout ?? ''}\n${(e.stderr ?? '').slice(-8000)}`,
        )
      }
    }),
    360_000,
  )
})
