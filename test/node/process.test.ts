// Real `hopsd start` processes: the data dir lock across processes, crash recovery, graceful signals,
// JSON-lines logs.
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { makeTempDir, removeTempDirs, runHopsd, startNode, stopAllNodes, getJson } from '../helpers/index.js'

afterEach(stopAllNodes)
afterAll(removeTempDirs)

describe('hopsd start as a process', () => {
  it('refuses a second daemon on the same data dir with one line and exit 2', async () => {
    const dataDir = join(makeTempDir(), 'data')
    const first = await startNode({ dataDir, zone: 'z1' })
    const second = await runHopsd([
      'start',
      '--data-dir',
      dataDir,
      '--http',
      '127.0.0.1:0',
      '--p2p',
      '127.0.0.1:0',
    ])
    expect(second.code).toBe(2)
    expect(second.stderr).toBe(
      `hopsd: data dir ${dataDir} is locked by another hopsd (pid ${first.pid}); stop it or use another --data-dir [DATA_DIR_LOCKED]\n`,
    )
    // The first one is unharmed.
    expect((await fetch(`${first.url}/health`)).status).toBe(200)
  })

  it('exits 0 on SIGTERM and on SIGINT, well within the 10 s deadline', async () => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      const node = await startNode({ dataDir: join(makeTempDir(), 'data') })
      const t0 = Date.now()
      node.kill(signal)
      expect(await node.exited).toEqual({ code: 0, signal: null })
      expect(Date.now() - t0).toBeLessThan(10_000)
      expect(node.logs().stdout).toContain('"msg":"stopped"')
    }
  })

  it('restarts after kill -9 on the same data dir (stale lock) with the same node id', async () => {
    const dataDir = join(makeTempDir(), 'data')
    const first = await startNode({ dataDir, zone: 'z2' })
    first.kill('SIGKILL')
    expect((await first.exited).signal).toBe('SIGKILL')
    const second = await startNode({ dataDir, zone: 'z2' })
    expect(second.id).toBe(first.id)
    const node = await getJson(`${second.url}/api/v1/node`)
    expect(node).toMatchObject({ id: first.id, zone: 'z2', dataDir, pid: second.pid })
    expect(await second.stop()).toEqual({ code: 0, signal: null })
  })

  it('logs JSON lines, one per request', async () => {
    const node = await startNode({ dataDir: join(makeTempDir(), 'data'), roles: ['gpu'] })
    await fetch(`${node.url}/api/v1/node`)
    await node.stop()
    const lines = node.logs().stdout.trim().split('\n')
    const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>)
    expect(records.every((r) => typeof r['time'] === 'string' && typeof r['level'] === 'string')).toBe(true)
    const requests = records.filter((r) => r['msg'] === 'request' && r['route'] === '/api/v1/node')
    expect(requests).toHaveLength(1)
    expect(requests[0]).toMatchObject({ method: 'GET', status: 200, node: node.id })
    expect(node.logs().stderr).toBe('')
  })
})
