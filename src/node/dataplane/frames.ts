/**
 * Frames on a data-plane TLS connection: a 4-byte big-endian length, then that many bytes. The length
 * {@link EOF_MARK} (no bytes follow) ends the sender's side of the stream: the data plane marks the end
 * itself rather than relying on TLS half-close, so that "the peer closed its side" and "the connection
 * broke" never look alike (a connection that ends without the mark is a reset).
 */
import { P2PError } from '../p2p/index.js'

/** The length that marks the end of the sender's side. */
export const EOF_MARK = 0xffff_ffff

/** The 4-byte header of a frame of `bytes` bytes (or of the end mark). */
export function frameHeader(bytes: number): Buffer {
  const h = Buffer.allocUnsafe(4)
  h.writeUInt32BE(bytes, 0)
  return h
}

/**
 * Reads frames from a byte source (a socket's async iterator). Holds only what one frame needs: a
 * frame in one chunk is a view of it; one spread over chunks (TLS records are ≤ 16 KiB) is copied once.
 */
export class FrameReader {
  readonly #source: AsyncIterator<Buffer>
  #chunks: Buffer[] = []
  #bytes = 0

  constructor(source: AsyncIterator<Buffer>) {
    this.#source = source
  }

  /**
   * The next frame; `'eof'` at the sender's end mark. Throws when the connection ends without the mark
   * or a frame announces more than `frameBytesMax` bytes.
   */
  async next(frameBytesMax: number): Promise<Buffer | 'eof'> {
    if (!(await this.#fill(4))) throw new P2PError('PEER_UNREACHABLE', 'the data-plane connection was reset')
    const len = this.#take(4).readUInt32BE(0)
    if (len === EOF_MARK) return 'eof'
    if (len > frameBytesMax)
      throw new P2PError('FRAME_TOO_LARGE', `a frame of ${len} bytes is larger than ${frameBytesMax}`)
    if (!(await this.#fill(len)))
      throw new P2PError('PEER_UNREACHABLE', 'the data-plane connection was reset inside a frame')
    return this.#take(len)
  }

  async #fill(n: number): Promise<boolean> {
    while (this.#bytes < n) {
      const r = await this.#source.next()
      if (r.done === true) return false
      this.#chunks.push(r.value)
      this.#bytes += r.value.length
    }
    return true
  }

  #take(n: number): Buffer {
    const first = this.#chunks[0]!
    this.#bytes -= n
    if (first.length >= n) {
      if (first.length === n) this.#chunks.shift()
      else this.#chunks[0] = first.subarray(n)
      return first.subarray(0, n)
    }
    const out = Buffer.allocUnsafe(n)
    for (let off = 0; off < n;) {
      const c = this.#chunks[0]!
      const k = Math.min(c.length, n - off)
      c.copy(out, off, 0, k)
      off += k
      if (k === c.length) this.#chunks.shift()
      else this.#chunks[0] = c.subarray(k)
    }
    return out
  }
}
