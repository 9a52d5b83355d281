// The block store continuing replicas it holds: an append (the partial last chunk completed, the
// older form readable until the new stamp is final), a truncate, a pipeline that failed and is
// recovered from what every replica acked, and a node that stops in the middle of any of them.
import { existsSync, readdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { afterAll, describe, expect, it, onTestFinished, vi } from 'vitest'
import { createBlockStore, CHUNK_BYTES, type BlockWriter } from '../../src/fs/datanode/index.js'
import { isFsError } from '../../src/fs/index.js'
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

/** Writes `data` as packets that end on chunk boundaries of the replica (as the pipeline sends them). */
async function feed(w: BlockWriter, data: Uint8Array): Promise<void> {
  let off = 0
  while (off < data.length) {
    const room = CHUNK_BYTES - (w.length % CHUNK_BYTES)
    await w.write(data.subarray(off, off + room))
    off += room
  }
}

async function fresh(): Promise<{ dir: string; store: ReturnType<typeof createBlockStore> }> {
  const dir = makeTempDir('store-continue-')
  const store = createBlockStore({ dirs: [dir], reservedBytes: 0 })
  await store.start()
  return { dir, store }
}

const whole = async (store: ReturnType<typeof createBlockStore>, id: number): Promise<Buffer> =>
  Buffer.from(await store.read(id, 0, store.info(id)!.length))

describe('continuing a replica', () => {
  it('an append completes the partial last chunk and goes on; the older form reads until it is final', async () => {
    const { store } = await fresh()
    const a = bytes(CHUNK_BYTES + 1000, 1)
    const b = bytes(2 * CHUNK_BYTES + 77, 2)
    const w = await store.createWriter(7, 10)
    await feed(w, a)
    await w.finish()
    const old = store.pathOf(7)
    const cont = await store.reopenWriter(7, 10, 11, a.length)
    expect(cont.length).toBe(a.length)
    await feed(cont, b)
    // Not final yet: readers still get the block as it was (its recorded length and stamp).
    expect(store.info(7)).toMatchObject({ genStamp: 10, length: a.length })
    expect((await whole(store, 7)).equals(Buffer.from(a))).toBe(true)
    const done = await cont.finish()
    expect(done.length).toBe(a.length + b.length)
    expect(store.info(7)).toMatchObject({ genStamp: 11, length: a.length + b.length })
    expect((await whole(store, 7)).equals(Buffer.concat([a, b]))).toBe(true)
    // Every chunk checks against its CRC, the one completed across the append included.
    expect(await store.verify(7)).toBe(true)
    expect(existsSync(old)).toBe(false)
    expect(readdirSync(dirname(old)).sort()).toEqual(['blk_7_11', 'blk_7_11.crc'])
  })

  it('an append that is dropped gives the replica its old form back', async () => {
    const { store } = await fresh()
    const a = bytes(5000, 3)
    const w = await store.createWriter(8, 1)
    await feed(w, a)
    await w.finish()
    const cont = await store.reopenWriter(8, 1, 2, a.length)
    await feed(cont, bytes(3 * CHUNK_BYTES, 4))
    await cont.abort()
    expect(store.info(8)).toMatchObject({ genStamp: 1, length: 5000 })
    expect((await whole(store, 8)).equals(Buffer.from(a))).toBe(true)
    expect(await store.verify(8)).toBe(true)
    expect(readdirSync(dirname(store.pathOf(8))).sort()).toEqual(['blk_8_1', 'blk_8_1.crc'])
  })

  it('truncate keeps a prefix at a new stamp, its last chunk re-checksummed', async () => {
    const { store } = await fresh()
    const a = bytes(3 * CHUNK_BYTES + 500, 5)
    const w = await store.createWriter(9, 3)
    await feed(w, a)
    await w.finish()
    await store.truncate(9, 3, 4, CHUNK_BYTES + 10)
    expect(store.info(9)).toMatchObject({ genStamp: 4, length: CHUNK_BYTES + 10 })
    expect((await whole(store, 9)).equals(Buffer.from(a.subarray(0, CHUNK_BYTES + 10)))).toBe(true)
    expect(await store.verify(9)).toBe(true)
    // A replica at another stamp is not there to continue.
    let err: unknown
    await store.truncate(9, 3, 5, 10).catch((e: unknown) => (err = e))
    expect(isFsError(err, 'BLOCK_NOT_FOUND')).toBe(true)
  })

  it('a pipeline that failed leaves its replica suspended; the recovery keeps what was acked and goes on', async () => {
    const { store } = await fresh()
    const a = bytes(4 * CHUNK_BYTES, 6)
    const w = await store.createWriter(10, 20)
    await feed(w, a.subarray(0, 3 * CHUNK_BYTES)) // three packets written, two acked upstream
    await w.suspend()
    expect(store.has(10)).toBe(false) // nothing final
    const r = await store.reopenWriter(10, 20, 21, 2 * CHUNK_BYTES)
    await feed(r, a.subarray(2 * CHUNK_BYTES))
    await r.finish()
    expect(store.info(10)).toMatchObject({ genStamp: 21, length: a.length })
    expect((await whole(store, 10)).equals(Buffer.from(a))).toBe(true)
    // Recovery at a stamp nobody holds fails: that node is left out.
    let err: unknown
    await store.reopenWriter(10, 20, 22, 0).catch((e: unknown) => (err = e))
    expect(isFsError(err, 'BLOCK_NOT_FOUND')).toBe(true)
  })

  it('a recovery stops the older writer its stage has not stopped yet, keeping what it wrote', async () => {
    const { store } = await fresh()
    const a = bytes(3 * CHUNK_BYTES, 9)
    const w = await store.createWriter(11, 30)
    await feed(w, a.subarray(0, 2 * CHUNK_BYTES))
    // The old stage is still running (it has not seen its upstream go): the recovery takes over.
    const r = await store.reopenWriter(11, 30, 31, CHUNK_BYTES)
    await expect(w.write(a.subarray(2 * CHUNK_BYTES))).rejects.toThrow()
    await w.abort() // the old stage's own cleanup afterwards changes nothing
    await feed(r, a.subarray(CHUNK_BYTES))
    await r.finish()
    expect(store.info(11)).toMatchObject({ genStamp: 31, length: a.length })
    expect((await whole(store, 11)).equals(Buffer.from(a))).toBe(true)
    // A writer under a newer stamp is not stopped by an older one.
    const n = await store.reopenWriter(11, 31, 33, a.length)
    let err: unknown
    await store.reopenWriter(11, 31, 32, a.length).catch((e: unknown) => (err = e))
    expect(isFsError(err, 'INVALID_ARGUMENT')).toBe(true)
    await n.abort()
  })

  it('an append whose writer went away is undone before the next append of the finalised replica', async () => {
    const { store } = await fresh()
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    onTestFinished(() => void vi.useRealTimers())
    const a = bytes(CHUNK_BYTES + 500, 10)
    const w = await store.createWriter(12, 40)
    await feed(w, a)
    await w.finish()
    // An append under stamp 41 is left suspended (its writer went away, the block stayed at 40) …
    const gone = await store.reopenWriter(12, 40, 41, a.length)
    await feed(gone, bytes(2 * CHUNK_BYTES, 11))
    await gone.suspend()
    // … and the next append continues the replica at 40: the suspended write cannot touch it later.
    const b = bytes(CHUNK_BYTES, 12)
    const next = await store.reopenWriter(12, 40, 42, a.length)
    await feed(next, b)
    // Nor when the time a suspended write waits for its recovery passes meanwhile.
    await vi.advanceTimersByTimeAsync(10 * 60_000)
    await new Promise((r) => setImmediate(r))
    await next.finish()
    expect(store.info(12)).toMatchObject({ genStamp: 42, length: a.length + b.length })
    expect((await whole(store, 12)).equals(Buffer.concat([a, b]))).toBe(true)
    expect(await store.verify(12)).toBe(true)
    expect(readdirSync(dirname(store.pathOf(12))).sort()).toEqual(['blk_12_42', 'blk_12_42.crc'])
  })

  it('a node that stops mid-append restarts with the replica as it was; one that stops mid-truncate drops it', async () => {
    const { dir, store } = await fresh()
    const a = bytes(CHUNK_BYTES + 3, 7)
    for (const id of [11, 12]) {
      const w = await store.createWriter(id, 1)
      await feed(w, a)
      await w.finish()
    }
    // Block 11: an append wrote bytes past the old end, then the process died (no finish, no abort).
    const cont = await store.reopenWriter(11, 1, 2, a.length)
    await feed(cont, bytes(CHUNK_BYTES, 8))
    // Block 12: a truncate was under way (its marker says so) when the process died.
    writeFileSync(`${store.pathOf(12)}.reopen`, JSON.stringify({ length: a.length, mode: 'truncate' }))
    const again = createBlockStore({ dirs: [dir], reservedBytes: 0 })
    await again.start()
    expect(again.info(11)).toMatchObject({ genStamp: 1, length: a.length })
    expect((await whole(again, 11)).equals(Buffer.from(a))).toBe(true)
    expect(await again.verify(11)).toBe(true)
    expect(again.has(12)).toBe(false)
    expect(readdirSync(join(dir, 'finalized', '12'))).toEqual([])
  })
})
