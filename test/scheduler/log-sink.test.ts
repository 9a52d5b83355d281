// A task's output stream into a file-system file (src/scheduler/log-sink.ts): output gathered into few
// appends, in order; bounded memory (a writer is held back while the file system is behind); a failing
// append retried, then the stream fails instead of buffering forever.
import { describe, expect, it } from 'vitest'
import { createFsLogStream, realClock } from '../../src/scheduler/index.js'

const enc = (s: string): Uint8Array => new TextEncoder().encode(s)
const dec = (parts: Uint8Array[]): string => parts.map((p) => new TextDecoder().decode(p)).join('')

describe('createFsLogStream', () => {
  it('gathers writes into one append per flushBytes, keeps their order, and close appends the rest', async () => {
    const appends: Uint8Array[] = []
    const stream = createFsLogStream({
      clock: realClock,
      flushBytes: 10,
      flushDelayMs: 60_000, // only size and close flush here
      append: async (data) => {
        appends.push(data)
      },
    })
    for (const w of ['abc', 'def', 'ghij', 'kl', 'mn']) await stream.write(enc(w))
    // 'abcdefghij' reached 10 bytes: one append; 'klmn' waits.
    await new Promise((r) => setImmediate(r))
    expect(appends.map((a) => dec([a]))).toEqual(['abcdefghij'])
    await stream.close()
    expect(appends.map((a) => dec([a]))).toEqual(['abcdefghij', 'klmn'])
    expect(stream.appendedBytes).toBe(14)
    expect(stream.appends).toBe(2)
  })

  it('appends what waits after flushDelayMs even below flushBytes', async () => {
    const appends: Uint8Array[] = []
    const stream = createFsLogStream({
      clock: realClock,
      flushBytes: 1 << 20,
      flushDelayMs: 20,
      append: async (data) => {
        appends.push(data)
      },
    })
    await stream.write(enc('tick\n'))
    expect(appends).toHaveLength(0)
    await new Promise((r) => setTimeout(r, 200))
    expect(dec(appends)).toBe('tick\n')
    await stream.close()
  })

  it('holds a writer back while more than bufferBytesMax bytes wait, and lets it go when the append lands', async () => {
    let release: (() => void) | undefined
    const appends: Uint8Array[] = []
    const stream = createFsLogStream({
      clock: realClock,
      flushBytes: 4,
      bufferBytesMax: 8,
      flushDelayMs: 60_000,
      append: (data) =>
        new Promise<void>((resolve) => {
          appends.push(data)
          release = resolve
        }),
    })
    expect(stream.write(enc('aaaa'))).toBeUndefined() // in flight: 4 waiting
    expect(stream.write(enc('bbbb'))).toBeUndefined() // 8 waiting: at the bound
    const held = stream.write(enc('cccc')) // 12 > 8: held
    expect(held).toBeInstanceOf(Promise)
    let settled = false
    void (held as Promise<void>).then(() => (settled = true))
    await new Promise((r) => setTimeout(r, 20))
    expect(settled).toBe(false)
    expect(appends).toHaveLength(1) // one append in flight at a time
    release!()
    await held
    expect(settled).toBe(true)
    // Drain the rest, then everything landed in order.
    const closing = stream.close()
    while (stream.appendedBytes < 12) {
      await new Promise((r) => setTimeout(r, 5))
      release?.()
    }
    await closing
    expect(dec(appends)).toBe('aaaabbbbcccc')
  })

  it('retries a failed append, then fails the stream: write and close reject', async () => {
    let calls = 0
    const stream = createFsLogStream({
      clock: realClock,
      flushBytes: 1,
      appendRetries: 2,
      append: async () => {
        calls++
        throw new Error('file system away')
      },
    })
    await stream.write(enc('x'))
    await expect(stream.close()).rejects.toThrow('file system away')
    expect(calls).toBe(3) // the first try and two retries
    await expect(stream.write(enc('y')) as Promise<void>).rejects.toThrow('file system away')
  })

  it('a retried append that then succeeds loses nothing', async () => {
    let calls = 0
    const appends: Uint8Array[] = []
    const stream = createFsLogStream({
      clock: realClock,
      flushBytes: 1,
      appendRetries: 3,
      append: async (data) => {
        if (++calls === 1) throw new Error('once')
        appends.push(data)
      },
    })
    await stream.write(enc('hello'))
    await stream.close()
    expect(dec(appends)).toBe('hello')
    expect(calls).toBe(2)
  })
})
