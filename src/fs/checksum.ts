import { createHash } from 'node:crypto'
import { crc32c } from './crc32c.js'

/** HDFS's default dfs.bytes-per-checksum. */
export const BYTES_PER_CRC = 512

/** A file checksum as WebHDFS GETFILECHECKSUM answers it. */
export interface FileChecksum {
  /** e.g. `MD5-of-0MD5-of-512CRC32C`. */
  readonly algorithm: string
  /** Hex of the 28-byte serialized checksum: bytesPerCRC (int32 BE), crcPerBlock (int64 BE), MD5 (16 bytes). */
  readonly bytes: string
  readonly length: number
}

/**
 * HDFS's MD5MD5CRC32C file checksum (MD5MD5CRC32CastagnoliFileChecksum), computed the way the
 * NameNode assembles it from DataNodes' block checksums: each block's MD5 is taken over the block's
 * big-endian CRC32C values, one per `bytesPerCrc` chunk; the file MD5 is over the blocks' MD5s.
 * Two quirks of Hadoop's client are kept, because clients compare checksums across clusters:
 * - `crcPerBlock` is reported only for files of more than one block (0 otherwise);
 * - the file MD5 is taken over the whole backing array of the DataOutputBuffer the block MD5s were
 *   written to (`md5out.getData()`), i.e. the 16-byte MD5s zero-padded to its capacity: 32 bytes,
 *   doubled as it grows. Hence the empty file's well-known `MD5-of-0MD5-of-0CRC32` with
 *   `70bc8f4b72a86921468bf8e8441dce51`, the MD5 of 32 zero bytes.
 */
export function md5md5crc32c(data: Uint8Array, blockSize: number, bytesPerCrc = BYTES_PER_CRC): FileChecksum {
  if (data.length === 0) return fileChecksumOf([], blockSize, bytesPerCrc)
  const blockMd5s: Buffer[] = []
  for (let start = 0; start < data.length; start += blockSize) {
    const block = new BlockCrcMd5(bytesPerCrc)
    block.update(data.subarray(start, Math.min(start + blockSize, data.length)))
    blockMd5s.push(block.digest())
  }
  return fileChecksumOf(blockMd5s, blockSize, bytesPerCrc)
}

/**
 * One block's MD5 over the big-endian CRC32C of each `bytesPerCrc` chunk, fed in pieces of any size
 * (a block streamed from a replica); the last chunk may be short.
 */
export class BlockCrcMd5 {
  private readonly md5 = createHash('md5')
  private crc = 0
  private filled = 0
  private readonly out = Buffer.alloc(4)

  constructor(private readonly bytesPerCrc = BYTES_PER_CRC) {}

  update(piece: Uint8Array): this {
    for (let off = 0; off < piece.length;) {
      const n = Math.min(this.bytesPerCrc - this.filled, piece.length - off)
      this.crc = crc32c(piece.subarray(off, off + n), this.crc)
      this.filled += n
      off += n
      if (this.filled === this.bytesPerCrc) this.flushChunk()
    }
    return this
  }

  digest(): Buffer {
    if (this.filled > 0) this.flushChunk()
    return this.md5.digest()
  }

  private flushChunk(): void {
    this.out.writeUInt32BE(this.crc, 0)
    this.md5.update(this.out)
    this.crc = 0
    this.filled = 0
  }
}

/** The file checksum from its blocks' MD5s (see md5md5crc32c); no blocks is the empty file. */
export function fileChecksumOf(
  blockMd5s: readonly Buffer[],
  blockSize: number,
  bytesPerCrc = BYTES_PER_CRC,
): FileChecksum {
  if (blockMd5s.length === 0)
    return serialize('MD5-of-0MD5-of-0CRC32', 0, 0, createHash('md5').update(Buffer.alloc(32)).digest())
  let capacity = 32 // java.io.ByteArrayOutputStream's initial size, doubled when it fills
  while (capacity < blockMd5s.length * 16) capacity *= 2
  const md5out = Buffer.alloc(capacity)
  blockMd5s.forEach((md5, i) => md5.copy(md5out, i * 16))
  const crcPerBlock = blockMd5s.length > 1 ? Math.floor(blockSize / bytesPerCrc) : 0
  const fileMd5 = createHash('md5').update(md5out).digest()
  return serialize(`MD5-of-${crcPerBlock}MD5-of-${bytesPerCrc}CRC32C`, bytesPerCrc, crcPerBlock, fileMd5)
}

function serialize(algorithm: string, bytesPerCrc: number, crcPerBlock: number, md5: Buffer): FileChecksum {
  const out = Buffer.alloc(28)
  out.writeInt32BE(bytesPerCrc, 0)
  out.writeBigInt64BE(BigInt(crcPerBlock), 4)
  md5.copy(out, 12)
  return { algorithm, bytes: out.toString('hex'), length: 28 }
}
