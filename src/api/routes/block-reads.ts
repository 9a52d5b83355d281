/**
 * Reading files kept in blocks from the HTTP routes (WebHDFS OPEN and the native GET): the block
 * manager (src/node/cluster/blocks-module.ts) streams the bytes from the replicas, this turns them into
 * a response body.
 */
import { Readable } from 'node:stream'
import type { Caller, FileChecksum } from '../../fs/index.js'

export interface BlockReads {
  /** A file in blocks as a stream of its bytes [offset, offset+length); undefined for an inline file. */
  open(
    caller: Caller,
    path: string,
    offset: number,
    length: number,
    signal?: AbortSignal,
  ): Promise<{ length: number; stream: AsyncIterable<Uint8Array> } | undefined>
  /** The file checksum of a file in blocks; undefined for an inline file (the namespace has it). */
  checksum(caller: Caller, path: string, signal?: AbortSignal): Promise<FileChecksum | undefined>
}

/** Bytes of a file in blocks read ahead of the socket. */
const READ_AHEAD_BYTES = 8 << 20

/**
 * The response body for a file in blocks. Up to READ_AHEAD_BYTES are fetched from the replicas while
 * the socket sends what came before (Readable.from's default 16 KiB made disk and network take turns).
 */
export function blockedBody(blocked: { stream: AsyncIterable<Uint8Array> }): Readable {
  return Readable.from(blocked.stream, { objectMode: false, highWaterMark: READ_AHEAD_BYTES })
}
