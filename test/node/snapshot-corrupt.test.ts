/**
 * Issue 13 (tests): a corrupted store file is detected at start with a clear error, never silently
 * served. A one-node cluster holds enough files for its Raft driver to take a snapshot (10,000 entries);
 * the node is stopped, one byte of a file's content inside the snapshot file is flipped, and the next
 * start must refuse with SNAPSHOT_CORRUPT instead of serving the damaged bytes. Put back, the same data
 * dir starts and serves the file intact. Without the envelope's checksum the flipped byte decodes as
 * well as the right one and the file is served damaged (the test fails). The intact restart must open
 * the metadata store (its applied index at or past the snapshot's) rather than restore the snapshot.
 * Then one bit of the file's bytes is flipped inside its row in that store: the next start must stop
 * with STORE_CORRUPT (each row carries a checksum over its key and value, checked when read and by the
 * background check after start; without it the row decodes and is served).
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ClassicLevel } from 'classic-level'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import {
  FAST_TIMING_ARGS,
  makeTempDir,
  removeTempDirs,
  startNode,
  stopAllNodes,
  waitFor,
  type NodeHandle,
} from '../helpers/index.js'

afterEach(stopAllNodes)
afterAll(removeTempDirs)

const SU = 'hopsd'
const READY_MS = 90_000
/** Past the Raft driver's snapshotEntries (10,000). */
const FILES = 10_500
const WRITERS = 16

async function put(node: NodeHandle, path: string, data: Buffer): Promise<void> {
  const res = await fetch(`${node.url}/api/v1/fs/files?path=${encodeURIComponent(path)}&user.name=${SU}`, {
    method: 'PUT',
    body: data,
    headers: { 'content-type': 'application/octet-stream' },
    signal: AbortSignal.timeout(20_000),
  })
  if (res.status !== 201) throw new Error(`PUT ${path}: ${res.status} ${await res.text()}`)
}

async function get(node: NodeHandle, path: string): Promise<Buffer> {
  const res = await fetch(`${node.url}/api/v1/fs/files?path=${encodeURIComponent(path)}&user.name=${SU}`)
  if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${await res.text()}`)
  return Buffer.from(await res.arrayBuffer())
}

async function snapshotIndex(node: NodeHandle): Promise<number> {
  const text = await (await fetch(`${node.url}/metrics`)).text()
  const line = text.split('\n').find((l) => l.startsWith('hopsd_raft_snapshot_index '))
  return line === undefined ? 0 : Number(line.split(' ')[1])
}

describe('a corrupted snapshot file, a damaged metadata store', { timeout: 240_000 }, () => {
  it('stop the node (SNAPSHOT_CORRUPT at start, STORE_CORRUPT at start or by the check after it); intact, the node opens its store and serves the file', async () => {
    const dataDir = join(makeTempDir('hopsd-snapcorrupt-'), 'n1')
    const start = (): Promise<NodeHandle> =>
      startNode({ dataDir, bootstrapExpect: 1, extraArgs: [...FAST_TIMING_ARGS], readyTimeoutMs: READY_MS })
    const node = await start()
    await waitFor(
      async () => {
        const doc = (await (await fetch(`${node.url}/api/v1/cluster`)).json()) as { clusterId: string }
        return doc.clusterId !== ''
      },
      { timeoutMs: 60_000, intervalMs: 100, what: 'a cluster id' },
    )
    // A file whose bytes can be found in the snapshot file: a pattern no other file has.
    const marked = Buffer.alloc(2048)
    for (let i = 0; i < marked.length; i++) marked[i] = (i * 7 + 13) & 0xff
    await put(node, '/marked', marked)
    let next = 0
    await Promise.all(
      Array.from({ length: WRITERS }, async () => {
        for (let i = next++; i < FILES; i = next++)
          await put(node, `/fill/d${i % 10}/f${i}`, Buffer.alloc(64, i & 0xff))
      }),
    )
    await waitFor(async () => (await snapshotIndex(node)) >= 10_000, {
      timeoutMs: 60_000,
      what: 'a snapshot',
    })
    await node.stop()

    const snapDir = `${join(dataDir, 'raft')}.snap`
    const files = readdirSync(snapDir)
    expect(files.length).toBe(1)
    const file = join(snapDir, files[0]!)
    const original = readFileSync(file)
    const at = original.indexOf(marked)
    expect(at).toBeGreaterThan(0)
    const damaged = Buffer.from(original)
    damaged[at + 1000]! ^= 0x40
    writeFileSync(file, damaged)

    const refused = await start().then(
      (n) => ({ started: n }),
      (err: Error) => ({ err }),
    )
    if ('started' in refused) {
      const served = await get(refused.started, '/marked').catch((e: Error) => e.message)
      throw new Error(
        `the node started on a corrupted snapshot; /marked served as ${JSON.stringify(served).slice(0, 80)}`,
      )
    }
    expect(refused.err.message).toContain('SNAPSHOT_CORRUPT')

    writeFileSync(file, original)
    const again = await start()
    expect((await get(again, '/marked')).equals(marked)).toBe(true)
    // The restart opened the metadata store at or after the snapshot: nothing was restored or replayed
    // from before the store's index.
    const openedLine = again
      .logs()
      .stdout.split('\n')
      .find((l) => l.includes('raft state opened from the state machine store'))
    expect(openedLine, 'the restart opens the store').toBeDefined()
    expect(Number(/"storeIndex":(\d+)/.exec(openedLine!)?.[1])).toBeGreaterThanOrEqual(10_000)
    await again.stop()

    // One bit of the file's inline bytes flipped inside its row in the metadata store (LevelDB does not
    // check its blocks' checksums on reads): refused at start with STORE_CORRUPT, never served.
    const db = new ClassicLevel<string, Uint8Array>(join(dataDir, 'meta-values'), {
      keyEncoding: 'utf8',
      valueEncoding: 'view',
    })
    let rotted = 0
    for await (const [key, value] of db.iterator()) {
      const i = Buffer.from(value).indexOf(marked)
      if (i < 0) continue
      const copy = Uint8Array.from(value)
      copy[i + 100]! ^= 0x10
      await db.put(key, copy)
      rotted++
    }
    await db.close()
    expect(rotted).toBe(1)
    // A restart reads only what it needs of the store (the inodes without their bytes), then checks
    // every row in the background: the node stops with STORE_CORRUPT at once, and /marked is never
    // served damaged meanwhile (a row read before the check is checked when read).
    const rotStart = await start().then(
      (n) => ({ started: n }),
      (err: Error) => ({ err }),
    )
    if ('started' in rotStart) {
      const n = rotStart.started
      const served = await get(n, '/marked').catch((e: Error) => e)
      if (!(served instanceof Error)) expect(served.equals(marked), 'served damaged bytes').toBe(true)
      const exit = await Promise.race([
        n.exited,
        new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 60_000).unref()),
      ])
      expect(exit, 'the node stops on the damaged store').toMatchObject({ code: 1 })
      expect(n.logs().stdout + n.logs().stderr).toContain('STORE_CORRUPT')
    } else {
      expect(rotStart.err.message).toContain('STORE_CORRUPT')
    }
  })
})
