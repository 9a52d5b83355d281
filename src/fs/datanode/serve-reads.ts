/**
 * The datanode's side of block reads (`/hopsd/block-read/1.0.0`, see src/fs/blocks/protocol.ts): one
 * ReadRequest frame in, ReadFrames of ≤ 1 MiB out until the range is sent, or one frame with an
 * errorCode (CORRUPT_REPLICA: the chunk failed its CRC on this replica, which is then reported).
 */
import { hopsd } from '../../proto/datanode.js'
import { READ_FRAME_BYTES, READ_PROTOCOL } from '../blocks/index.js'
import type { PeerStream, PeerStreams } from '../peers.js'
import type { BlockStore } from './store.js'

import pb = hopsd.datanode

/** Largest ReadRequest accepted. */
const REQUEST_FRAME_BYTES_MAX = 64 * 1024

/** Serves READ_PROTOCOL from `store`; `onCorrupt` hears of every replica that failed its checksum. */
export async function serveReads(
  streams: PeerStreams,
  store: BlockStore,
  onCorrupt: (blockId: number) => void,
): Promise<() => Promise<void>> {
  return streams.handleStreams(
    READ_PROTOCOL,
    async (stream: PeerStream) => {
      let req: pb.ReadRequest | undefined
      for await (const f of stream.frames(REQUEST_FRAME_BYTES_MAX)) {
        req = pb.ReadRequest.decode(f)
        break
      }
      if (req === undefined) return
      const id = Number(req.blockId)
      const info = store.info(id)
      const end = Math.min(info?.length ?? 0, Number(req.offset) + Number(req.length))
      // An older replica (a pipeline or an append went on without it) or a short one is never served.
      if (
        info !== undefined &&
        (info.genStamp < Number(req.minGenStamp) || info.length < Number(req.offset) + Number(req.length))
      ) {
        await stream
          .send(
            pb.ReadFrame.encode({
              errorCode: 'BLOCK_NOT_FOUND',
              errorMessage: `the replica of block ${id} here is at stamp ${info.genStamp} with ${info.length} bytes`,
            }).finish(),
          )
          .catch(() => undefined)
        await stream.close().catch(() => undefined)
        return
      }
      const out = (frame: pb.ReadFrame.$Properties): Promise<void> =>
        stream.send(pb.ReadFrame.encode(frame).finish())
      try {
        if (info === undefined) await store.read(id, 0, 0)
        for (let off = Number(req.offset); off < end; off += READ_FRAME_BYTES) {
          await out({ data: await store.read(id, off, Math.min(READ_FRAME_BYTES, end - off)) })
        }
      } catch (err) {
        const code = (err as { code?: string }).code ?? 'INTERNAL'
        if (code === 'CORRUPT_REPLICA') onCorrupt(id)
        await out({ errorCode: code, errorMessage: (err as Error).message })
      }
      await stream.close().catch(() => undefined)
    },
    { streamsMax: 256 },
  )
}
