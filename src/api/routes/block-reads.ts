/**
 * Reading files kept in blocks from the HTTP routes (WebHDFS OPEN and the native GET): the block
 * manager (src/fs/blocks) streams the bytes from the replicas, this writes them to the response.
 */
import type { ServerResponse } from 'node:http'
import type { FastifyReply } from 'fastify'
import { READ_PIECE_BYTES, ReadBuffers, type BlockReads } from '../../fs/blocks/index.js'
import { readSpan } from '../../fs/datanode/index.js'

export { READ_PIECE_BYTES, ReadBuffers, type BlockReads }

/** Bytes queued on the socket beyond which reading waits for it to drain. */
const READ_AHEAD_BYTES = 8 << 20

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
