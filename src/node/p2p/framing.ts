/**
 * Length-prefixed frames on libp2p 3 message streams: an unsigned varint length, then the bytes
 * (it-length-prefixed), with a bound on the frame size so a peer can't make us buffer without limit.
 */
import type { Stream } from '@libp2p/interface'
import * as lp from 'it-length-prefixed'
import type { Uint8ArrayList } from 'uint8arraylist'

export function encodeFrame(bytes: Uint8Array | Uint8ArrayList): Uint8ArrayList {
  return lp.encode.single(bytes)
}

/**
 * The frames arriving on `stream`, in order, until the remote closes its end. Throws when a frame
 * announces more than `frameBytesMax` bytes (the caller aborts the stream).
 */
export async function* readFrames(stream: Stream, frameBytesMax: number): AsyncGenerator<Uint8Array> {
  for await (const frame of lp.decode(stream, { maxDataLength: frameBytesMax })) {
    yield frame.subarray()
  }
}
