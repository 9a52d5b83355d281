import { describe, expect, it } from 'vitest'
import { ReadBuffers } from '../../src/fs/blocks/index.js'

describe('ReadBuffers (the buffers one streamed read cycles through)', () => {
  it('hands out at most `max` buffers, waits for a release, and reuses the released one', async () => {
    const set = new ReadBuffers(1024, 2)
    const a = await set.take()
    const b = await set.take()
    expect(a).not.toBe(b)
    let third: Buffer | undefined
    const waiting = set.take().then((x) => (third = x))
    await Promise.resolve()
    expect(third).toBeUndefined()
    set.release(a.subarray(100, 200)) // a view of `a` gives `a` back
    await waiting
    expect(third).toBe(a)
  })

  it('ignores pieces it did not hand out and double releases; close fails the waiting takes', async () => {
    const set = new ReadBuffers(64, 1)
    const a = await set.take()
    set.release(Buffer.alloc(64)) // a remote replica's piece
    const waiting = set.take()
    set.close()
    await expect(waiting).rejects.toThrow(/closed/)
    set.release(a)
    await expect(set.take()).rejects.toThrow(/closed/)
    const other = new ReadBuffers(64, 1)
    const x = await other.take()
    other.release(x)
    other.release(x)
    expect(await other.take()).toBe(x)
    let second: Buffer | undefined
    void other.take().then((y) => (second = y))
    await Promise.resolve()
    expect(second, 'the double release did not free the buffer twice').toBeUndefined()
  })
})
