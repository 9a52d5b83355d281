// A property-based fuzzer (schemathesis, from test/python/requirements.txt) against a real node's
// /openapi.json: every documented operation with generated parameters and bodies, and undocumented
// methods on documented paths. It must find no 5xx, no answer outside the document (status code,
// content type, headers, body schema) and no method answered but 405. Seeded: a failure prints the
// seed and the `curl` reproducing it.
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateSwarmKey } from '../../src/node/p2p/index.js'
import {
  makeTempDir,
  removeTempDirs,
  startNode,
  stopAllNodes,
  waitFor,
  type NodeHandle,
} from '../helpers/index.js'
import { pythonEnv } from '../helpers/tools.js'
import { writeFileSync } from 'node:fs'

const run = promisify(execFile)
const SEED = Number(process.env['FUZZ_SEED'] ?? 20260101)
const CHECKS = [
  'not_a_server_error',
  'status_code_conformance',
  'content_type_conformance',
  'response_headers_conformance',
  'response_schema_conformance',
  'unsupported_method',
].join(',')

describe('the OpenAPI document against the server (schemathesis)', () => {
  let node: NodeHandle
  let dir: string

  beforeAll(async () => {
    await pythonEnv()
    dir = makeTempDir('hopsd-fuzz-')
    const keyFile = join(dir, 'swarm.key')
    writeFileSync(keyFile, generateSwarmKey(), { mode: 0o600 })
    node = await startNode({
      dataDir: join(dir, 'n1'),
      zone: 'z1',
      bootstrapExpect: 1,
      extraArgs: ['--swarm-key', keyFile, '--raft-tick-ms', '20'],
      env: { HOPSD_LOG_LEVEL: 'warn' },
    })
    await waitFor(
      async () => (await fetch(`${node.url}/webhdfs/v1/?op=GETFILESTATUS&user.name=hopsd`)).status === 200,
      { timeoutMs: 60_000, what: `${node.url} to serve the file system` },
    )
  }, 900_000)

  afterAll(async () => {
    await stopAllNodes()
    removeTempDirs()
  })

  it('finds no 5xx and no answer that breaks the document', async () => {
    const { bin, python } = await pythonEnv()
    const workers = (await astIsThreadSafe(python)) ? '2' : '1'
    const args = [
      'run',
      `${node.url}/openapi.json`,
      '--checks',
      CHECKS,
      '--max-examples',
      '20',
      '--seed',
      String(SEED),
      '--generation-database',
      'none',
      '--workers',
      workers,
      '--no-color',
      // Long-polls wait up to 30 s per generated case (their bounds are tested in test/fs/http.test.ts).
      '--exclude-path',
      '/api/v1/fs/changes',
    ]
    try {
      const { stdout } = await run(join(bin, 'st'), args, {
        cwd: dir,
        timeout: 480_000,
        maxBuffer: 64 * 1024 * 1024,
      })
      expect(stdout).toMatch(/Test cases:/)
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string }
      const tail = (e.stdout ?? '').split('\n').slice(-200).join('\n')
      throw new Error(`schemathesis failed (FUZZ_SEED=${SEED}):\n${tail}\n${e.stderr ?? ''}`)
    }
  }, 540_000)
})

/**
 * CPython before 3.11.8 (and 3.12.0–3.12.1) shares one recursion counter between threads building
 * ASTs (python/cpython#106905), so Hypothesis describing a lambda in two of schemathesis's worker
 * threads at once can die with "AST constructor recursion depth mismatch", an error of the tool with
 * no request sent. On those versions the fuzzer runs one worker.
 */
async function astIsThreadSafe(python: string): Promise<boolean> {
  const { stdout } = await run(python, ['-c', 'import sys; print(*sys.version_info[:3])'])
  const [major, minor, micro] = stdout.trim().split(' ').map(Number) as [number, number, number]
  if (major !== 3) return major > 3
  if (minor === 11) return micro >= 8
  if (minor === 12) return micro >= 2
  return minor > 12
}
