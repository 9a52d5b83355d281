import { readFileSync, writeFileSync } from 'node:fs'
import { afterAll, describe, expect, it } from 'vitest'
import { createBlockStore, CHUNK_BYTES } from '../../src/fs/datanode/index.js'
import { crc32c, isFsError } from '../../src/fs/index.js'
import { makeTempDir, removeTempDirs } from '../helpers/index.js'

afterAll(() => removeTempDirs())

function bytes(n: number, seed = 1): Uint8Array {
  const b = new Uint8Array(n)
  let x = seed
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0
    b[i] = x >>> 24
  }
  return b
}

async function put(store: ReturnType<typeof createBlockStore>, id: number, data: Uint8Array) {
  const w = await store.createWriter(id, 1, data.length)
  for (let off = 0; off < data.length; off += CHUNK_BYTES)
    await w.write(data.subarray(off, off + CHUNK_BYTES))
  return w.finish()
}

describe('block store', () => {
  it('writes, lists, reads any range back, survives a restart', async () => {
    const dir = makeTempDir('blockstore-')
    const store = createBlockStore({ dirs: [dir], reservedBytes: 0 })
    await store.start()
    const data = bytes(3 * CHUNK_BYTES + 123)
    const r = await put(store, 5, data)
    expect(r.length).toBe(data.length)
    expect(store.list()).toEqual([{ id: 5, genStamp: 1, length: data.length, incarnation: 1 }])
    expect(Buffer.from(await store.read(5, 0, data.length)).equals(Buffer.from(data))).toBe(true)
    const mid = await store.read(5, CHUNK_BYTES - 10, CHUNK_BYTES + 20)
    expect(Buffer.from(mid).equals(Buffer.from(data.subarray(CHUNK_BYTES - 10, 2 * CHUNK_BYTES + 10)))).toBe(
      true,
    )
    expect((await store.usage()).usedBytes).toBe(data.length)
    const again = createBlockStore({ dirs: [dir], reservedBytes: 0 })
    await again.start()
    expect(again.list()).toEqual([{ id: 5, genStamp: 1, length: data.length, incarnation: 1 }])
    await again.delete(5)
    expect(again.list()).toEqual([])
    // Written again (a re-replication onto this node): the same id, generation and length, a new
    // incarnation — what lets the next incremental block report tell it from the deleted one.
    await put(again, 5, data)
    expect(again.list()).toEqual([{ id: 5, genStamp: 1, length: data.length, incarnation: 2 }])
  })

  it('a flipped byte fails the read of its chunk with CORRUPT_REPLICA, other chunks still read', async () => {
    const store = createBlockStore({ dirs: [makeTempDir('blockstore-')], reservedBytes: 0 })
    await store.start()
    const data = bytes(2 * CHUNK_BYTES, 7)
    await put(store, 9, data)
    const path = store.pathOf(9)
    const raw = readFileSync(path)
    raw[CHUNK_BYTES + 5]! ^= 0xff
    writeFileSync(path, raw)
    await expect(store.read(9, 0, CHUNK_BYTES)).resolves.toHaveLength(CHUNK_BYTES)
    const err = await store.read(9, CHUNK_BYTES, 10).catch((e: unknown) => e)
    expect(isFsError(err, 'CORRUPT_REPLICA')).toBe(true)
    expect(await store.verify(9)).toBe(false)
  })

  it('readChunk (replica copies) returns each chunk with the CRC it checked, and refuses a rotten one', async () => {
    const store = createBlockStore({ dirs: [makeTempDir('blockstore-')], reservedBytes: 0 })
    await store.start()
    const data = bytes(2 * CHUNK_BYTES + 100, 11)
    await put(store, 4, data)
    for (const i of [0, 1, 2]) {
      const { data: got, crc } = await store.readChunk(4, i)
      const want = data.subarray(i * CHUNK_BYTES, (i + 1) * CHUNK_BYTES)
      expect(Buffer.from(got).equals(Buffer.from(want))).toBe(true)
      expect(crc).toBe(crc32c(want))
    }
    const path = store.pathOf(4)
    const raw = readFileSync(path)
    raw[2 * CHUNK_BYTES + 3]! ^= 0xff
    writeFileSync(path, raw)
    const err = await store.readChunk(4, 2).catch((e: unknown) => e)
    expect(isFsError(err, 'CORRUPT_REPLICA')).toBe(true)
  })

  it('a packet with a wrong CRC is refused; a full disk is DISK_FULL and leaves nothing behind', async () => {
    const store = createBlockStore({
      dirs: [makeTempDir('blockstore-')],
      reservedBytes: 0,
      capacityBytesMax: CHUNK_BYTES,
    })
    await store.start()
    const w = await store.createWriter(1, 1)
    const err = await w.write(bytes(10), 1234).catch((e: unknown) => e)
    expect(isFsError(err, 'CORRUPT_REPLICA')).toBe(true)
    await w.abort()
    const full = await store.createWriter(2, 1, 1).catch((e: unknown) => e)
    const w2 = full as Awaited<ReturnType<typeof store.createWriter>>
    await w2.write(bytes(CHUNK_BYTES))
    const e2 = await w2.write(bytes(10)).catch((e: unknown) => e)
    expect(isFsError(e2, 'DISK_FULL')).toBe(true)
    expect(store.list()).toEqual([])
    const e3 = await store.createWriter(3, 1, 2 * CHUNK_BYTES).catch((e: unknown) => e)
    expect(isFsError(e3, 'DISK_FULL')).toBe(true)
  })

  it('a CRC taken without checking (verify false: a pipeline stage before the last) is the one reads check', async () => {
    const store = createBlockStore({ dirs: [makeTempDir('blockstore-')], reservedBytes: 0 })
    await store.start()
    const w = await store.createWriter(4, 1)
    await w.write(bytes(100), 1234, false)
    await w.finish()
    const err = await store.read(4, 0, 100).catch((e: unknown) => e)
    expect(isFsError(err, 'CORRUPT_REPLICA')).toBe(true)
  })

  it('packets handed in without waiting are written in order (coalesced); a failure fails every waiting packet', async () => {
    const dir = makeTempDir('blockstore-')
    const store = createBlockStore({ dirs: [dir], reservedBytes: 0, capacityBytesMax: 41 * CHUNK_BYTES })
    await store.start()
    const data = bytes(32 * CHUNK_BYTES + 99, 3)
    const w = await store.createWriter(11, 1, data.length)
    const writes: Promise<void>[] = []
    for (let off = 0; off < data.length; off += CHUNK_BYTES)
      writes.push(w.write(data.subarray(off, off + CHUNK_BYTES)))
    await Promise.all(writes)
    expect((await w.finish()).length).toBe(data.length)
    expect(Buffer.from(await store.read(11, 0, data.length)).equals(Buffer.from(data))).toBe(true)
    expect(await store.verify(11)).toBe(true)

    // 8 more chunks fit (41 - 32.x); the 9th is over capacity: the writer fails, and the 9th and every
    // packet after it fail with DISK_FULL (so do those still queued before it: the replica is dropped).
    const w2 = await store.createWriter(12, 1)
    const results = await Promise.allSettled(
      Array.from({ length: 12 }, (_, i) => w2.write(bytes(CHUNK_BYTES, 100 + i))),
    )
    expect(results[0]!.status).toBe('fulfilled') // in flight when the 9th arrived
    for (const r of results.slice(8)) {
      expect(r.status).toBe('rejected')
      expect(isFsError((r as PromiseRejectedResult).reason, 'DISK_FULL')).toBe(true)
    }
    await expect(w2.finish()).rejects.toThrow()
    expect(store.list().map((b) => b.id)).toEqual([11])
  })
})
