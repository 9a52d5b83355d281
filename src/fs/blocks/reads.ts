/**
 * Reading files kept in blocks: the interface the HTTP routes read through ({@link BlockReads}), the
 * buffers one streamed read cycles through ({@link ReadBuffers}), and the client side of the block-read
 * protocol ({@link readRemote}). The block manager (./manager.ts) picks the replicas.
 */
import { hopsd } from '../../proto/datanode.js'
import type { FileChecksum } from '../checksum.js'
import type { Caller } from '../permission.js'
import type { PeerStreams } from '../peers.js'
import { BLOCK_FRAME_BYTES_MAX, READ_PROTOCOL } from './protocol.js'

import pb = hopsd.datanode

export interface BlockReads {
  /**
   * A file's bytes [offset, offset+length) as a stream, after one read barrier: a file in blocks read
   * from its replicas, an inline file from the namespace (one piece). Undefined where this reader has no
   * namespace to read an inline file from. `stale`: no read barrier (this replica's state as it is).
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
    opts?: { stale?: boolean },
  ): Promise<{ length: number; stream: AsyncIterable<Uint8Array> } | undefined>
  /** The file checksum of a file in blocks; undefined for an inline file (the namespace has it). */
  checksum(caller: Caller, path: string, signal?: AbortSignal): Promise<FileChecksum | undefined>
}

/** Bytes of one piece read from a replica. */
export const READ_PIECE_BYTES = 4 << 20
/** How many pieces one read has out at once (read ahead of the socket). */
const READ_PIECES_MAX = 3

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

/** A remote replica that sends nothing for this long is given up (the reader tries the next one). */
export const READ_IDLE_MS = 30_000

/**
 * Reads [offset, offset+length) of a block from `peer`, yielding pieces; throws on an error frame. A
 * replica older than `minGenStamp` (or shorter than the range) is not served. The read is abandoned
 * when `signal` aborts (the client went away) or when no frame comes for READ_IDLE_MS.
 */
export async function* readRemote(
  streams: PeerStreams,
  peer: string,
  blockId: number,
  offset: number,
  length: number,
  minGenStamp: number,
  signal?: AbortSignal,
): AsyncGenerator<Uint8Array> {
  const idle = new AbortController()
  const both = signal === undefined ? idle.signal : AbortSignal.any([signal, idle.signal])
  let timer = setTimeout(
    () => idle.abort(new Error(`no data from ${peer} for ${READ_IDLE_MS} ms`)),
    READ_IDLE_MS,
  )
  const stream = await streams.openStream(peer, READ_PROTOCOL, { signal: both })
  const onAbort = (): void => stream.abort(new Error('read abandoned'))
  both.addEventListener('abort', onAbort, { once: true })
  try {
    await stream.send(pb.ReadRequest.encode({ blockId, offset, length, minGenStamp }).finish(), both)
    await stream.close(both)
    for await (const f of stream.frames(BLOCK_FRAME_BYTES_MAX)) {
      clearTimeout(timer)
      const r = pb.ReadFrame.decode(f)
      if (r.errorCode !== '') throw Object.assign(new Error(r.errorMessage), { code: r.errorCode })
      yield r.data
      timer = setTimeout(
        () => idle.abort(new Error(`no data from ${peer} for ${READ_IDLE_MS} ms`)),
        READ_IDLE_MS,
      )
    }
    both.throwIfAborted()
  } finally {
    clearTimeout(timer)
    both.removeEventListener('abort', onAbort)
    if (stream.open) stream.abort(new Error('read finished'))
  }
}
