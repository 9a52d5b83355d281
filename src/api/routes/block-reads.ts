/**
 * Reading files kept in blocks from the HTTP routes (WebHDFS OPEN and the native GET): the block
 * manager (src/node/cluster/blocks-module.ts) streams the bytes from the replicas, this writes them to
 * the response.
 */
import type { ServerResponse } from 'node:http'
import type { FastifyReply } from 'fastify'
import { readSpan } from '../../fs/blockstore/index.js'
import type { Caller, FileChecksum } from '../../fs/index.js'

export interface BlockReads {
  /**
   * A file in blocks as a stream of its bytes [offset, offset+length); undefined for an inline file.
   * With `buffers`, pieces read from a local replica are read into buffers taken from it; the caller
   * gives each piece back (`buffers.release`) once it is done with it.
   */
  open(
    caller: Caller,
    path: string,
    offset: number,
    length: number,
    signal?: AbortSignal,
    buffers?: ReadBuffers,
  ): Promise<{ length: number; stream: AsyncIterable<Uint8Array> } | undefined>
  /** The file checksum of a file in blocks; undefined for an inline file (the namespace has it). */
  checksum(caller: Caller, path: string, signal?: AbortSignal): Promise<FileChecksum | undefined>
}

/** Bytes of one piece read from a replica, and how many pieces are read ahead of the socket. */
export const READ_PIECE_BYTES = 4 << 20
const READ_PIECES_MAX = 3
/** Bytes queued on the socket beyond which reading waits for it to drain. */
const READ_AHEAD_BYTES = 8 << 20

/**
 * The few buffers one read cycles through. A streamed 1 GiB file used to cost 256 fresh 4 MiB buffers:
 * each adds to V8's external memory, so the GC ran major collections back to back (about half of the
 * serving node's CPU in a profile of bench/fs-large's read). `take` waits while every buffer is out, so
 * the set also bounds how far reads run ahead of the socket.
 */
export class ReadBuffers {
  readonly #all: Buffer[] = []
  readonly #free: Buffer[] = []
  readonly #waiting: { resolve: (b: Buffer) => void; reject: (e: Error) => void }[] = []
  #closed = false

  constructor(
    readonly bytes: number,
    private readonly max = READ_PIECES_MAX,
  ) {}

  async take(): Promise<Buffer> {
    if (this.#closed) throw new Error('the read was closed')
    const free = this.#free.pop()
    if (free !== undefined) return free
    if (this.#all.length < this.max) {
      const b = Buffer.allocUnsafeSlow(this.bytes)
      this.#all.push(b)
      return b
    }
    return new Promise((resolve, reject) => this.#waiting.push({ resolve, reject }))
  }

  /** Gives back the buffer `piece` is a view of; pieces from elsewhere (remote replicas) are ignored. */
  release(piece: Uint8Array): void {
    const b = this.#all.find((x) => x.buffer === piece.buffer)
    if (b === undefined || this.#closed || this.#free.includes(b)) return
    const next = this.#waiting.shift()
    if (next !== undefined) next.resolve(b)
    else this.#free.push(b)
  }

  /** No more takes: those waiting fail. */
  close(): void {
    this.#closed = true
    for (const w of this.#waiting.splice(0)) w.reject(new Error('the read was closed'))
  }
}

/**
 * Answers 200 with the bytes of a file in blocks. The reply is written on the raw response (fastify's
 * onResponse hooks still run: the request log and metrics): each piece goes back to its ReadBuffers once
 * the socket has written it, which a piped stream would not tell. A read failing midway ends the
 * response early (the client sees fewer bytes than Content-Length), as a stream error does.
 */
export async function sendBlocked(
  reply: FastifyReply,
  open: (buffers: ReadBuffers) => ReturnType<BlockReads['open']>,
): Promise<boolean> {
  const buffers = new ReadBuffers(readSpan(READ_PIECE_BYTES))
  const blocked = await open(buffers)
  if (blocked === undefined) return false
  reply.hijack()
  const res = reply.raw
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': blocked.length })
  const closed = (): void => buffers.close()
  res.once('close', closed)
  try {
    for await (const piece of blocked.stream) {
      if (res.destroyed) break
      res.write(piece, () => buffers.release(piece))
      // Pieces from remote replicas come from no ReadBuffers: the socket's queue bounds them instead.
      if (res.writableLength > READ_AHEAD_BYTES) await drainedOrClosed(res)
    }
    res.end()
  } catch (err) {
    if (!res.destroyed) {
      reply.log.warn({ err: (err as Error).message }, 'read of a file in blocks failed midway')
      res.destroy(err as Error)
    }
  } finally {
    res.off('close', closed)
  }
  return true
}

function drainedOrClosed(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done)
      res.off('close', done)
      resolve()
    }
    res.on('drain', done)
    res.on('close', done)
  })
}
