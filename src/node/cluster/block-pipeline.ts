/**
 * The block write pipeline and block reads between datanodes, over libp2p streams.
 *
 * `/hopsd/block-pipeline/1.0.0` — one stream per block and hop: the first frame is a PipelineHeader
 * (block, genStamp, the datanodes after the receiver), then Packets (seq, ≤ 64 KiB = one checksum
 * chunk, its CRC32C, `last`). A stage forwards each packet downstream before writing it locally, and
 * sends PacketAck{seq} upstream once its own write and the downstream ack of that seq are both done —
 * so an ack at the head means every replica wrote the packet, and the last packet's ack means every
 * replica fsynced and finalised the block. A failure acks `ok: false` naming the first datanode that
 * failed; the writer replaces it (pipeline recovery, datanode-module.ts). The writer bounds the
 * packets in flight (`PIPELINE_WINDOW_PACKETS`); each stage reads the next packet only after its local
 * write, so backpressure runs up the pipeline.
 *
 * `/hopsd/block-read/1.0.0` — one ReadRequest frame, then ReadFrames of ≤ 1 MiB until the range is
 * sent, or one frame with an errorCode (CORRUPT_REPLICA: the chunk failed its CRC on that replica).
 */
import type { Stream } from '@libp2p/interface'
import { Uint8ArrayList } from 'uint8arraylist'
import { crc32c } from '../../fs/index.js'
import { CHUNK_BYTES, type BlockStore } from '../../fs/blockstore/index.js'
import { hopsd } from '../../proto/datanode.js'
import { encodeFrame, readFrames, type P2PHost } from '../p2p/index.js'

import pb = hopsd.datanode

export const PIPELINE_PROTOCOL = '/hopsd/block-pipeline/1.0.0'
import { waitForDrain } from '../p2p/drain.js'
export const READ_PROTOCOL = '/hopsd/block-read/1.0.0'
export const PIPELINE_WINDOW_PACKETS = 64
const FRAME_BYTES_MAX = 2 * 1024 * 1024
const READ_FRAME_BYTES = 1024 * 1024

export interface Ack {
  readonly seq: number
  readonly ok: boolean
  readonly failedNode: string
  readonly error: string
  readonly length: number
  readonly checksum: number
}

export interface PacketIn {
  readonly seq: number
  readonly data: Uint8Array
  readonly crc: number
  readonly last: boolean
}

/** One hop of the pipeline as the sender sees it. */
export interface StageLink {
  send(p: PacketIn): Promise<void>
  /** Acks in seq order; ends after the last packet's ack or the first failure. */
  readonly acks: AsyncIterable<Ack>
  abort(): void
}

/** A tiny single-consumer async queue. */
class AsyncQueue<T> implements AsyncIterable<T> {
  private items: T[] = []
  private waiter: (() => void) | undefined
  private ended = false
  push(v: T): void {
    this.items.push(v)
    this.waiter?.()
  }
  end(): void {
    this.ended = true
    this.waiter?.()
  }
  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      if (this.items.length > 0) {
        yield this.items.shift()!
        continue
      }
      if (this.ended) return
      await new Promise<void>((r) => (this.waiter = r))
      this.waiter = undefined
    }
  }
}

function fail(seq: number, node: string, error: string): Ack {
  return { seq, ok: false, failedNode: node, error, length: 0, checksum: 0 }
}

/** Opens the pipeline at `targets[0]` (over libp2p), the rest downstream of it. */
export async function openRemoteStage(
  host: P2PHost,
  targets: readonly string[],
  blockId: number,
  genStamp: number,
  signal?: AbortSignal,
): Promise<StageLink> {
  const peer = targets[0]!
  const stream = await host.newStream(peer, PIPELINE_PROTOCOL, { signal })
  const send = async (bytes: Uint8Array): Promise<void> => {
    if (!stream.send(encodeFrame(bytes))) await waitForDrain(stream, signal)
  }
  await send(pb.PipelineHeader.encode({ blockId, genStamp, downstream: targets.slice(1) }).finish())
  const acks = new AsyncQueue<Ack>()
  void (async () => {
    let lastSeq = -1
    try {
      for await (const frame of readFrames(stream, FRAME_BYTES_MAX)) {
        const a = pb.PacketAck.decode(frame)
        const ack: Ack = {
          seq: Number(a.seq),
          ok: a.ok,
          failedNode: a.failedNode,
          error: a.error,
          length: Number(a.length),
          checksum: a.checksum,
        }
        lastSeq = ack.seq
        acks.push(ack)
        if (!ack.ok) break
      }
    } catch (err) {
      acks.push(fail(lastSeq + 1, peer, (err as Error).message))
    }
    acks.end()
  })()
  return {
    async send(p) {
      if (!stream.send(encodePacketFrame(p))) await waitForDrain(stream, signal)
      if (p.last) await stream.close({ signal }).catch(() => undefined)
    },
    acks,
    abort: () => stream.abort(new Error('pipeline aborted')),
  }
}

/**
 * Runs this node's stage of a pipeline: writes `packets` to the local store, forwards them to
 * `downstream`, and emits one ack per packet in order (see the file comment). Never throws: failures
 * become a failed ack, after which it stops.
 */
export async function runStage(opts: {
  selfId: string
  store: BlockStore
  host: P2PHost
  blockId: number
  genStamp: number
  downstream: readonly string[]
  packets: AsyncIterable<PacketIn>
  onAck: (a: Ack) => Promise<void> | void
  signal?: AbortSignal
}): Promise<void> {
  const { selfId, store, blockId, genStamp } = opts
  let failed: Ack | undefined
  let writer: Awaited<ReturnType<BlockStore['createWriter']>> | undefined
  let link: StageLink | undefined
  const remoteAcks = new Map<number, (a: Ack) => void>()
  const remoteWaits = new Map<number, Promise<Ack>>()
  const waitRemote = (seq: number): Promise<Ack> => {
    let p = remoteWaits.get(seq)
    if (p === undefined && remoteFailure !== undefined) return Promise.resolve(remoteFailure)
    if (p === undefined) {
      p = new Promise<Ack>((r) => remoteAcks.set(seq, r))
      remoteWaits.set(seq, p)
    }
    return p
  }
  let remoteFailure: Ack | undefined
  let chain: Promise<void> = Promise.resolve()
  try {
    writer = await store.createWriter(blockId, genStamp)
    if (opts.downstream.length > 0) {
      try {
        link = await openRemoteStage(opts.host, opts.downstream, blockId, genStamp, opts.signal)
      } catch (err) {
        throw Object.assign(new Error((err as Error).message), { failedNode: opts.downstream[0] })
      }
      const l = link
      void (async () => {
        for await (const a of l.acks) {
          if (!a.ok) {
            remoteFailure = a
            for (const [, r] of remoteAcks) r(a)
            break
          }
          waitRemote(a.seq)
          remoteAcks.get(a.seq)?.(a)
        }
        remoteFailure ??= fail(-1, opts.downstream[0]!, 'downstream closed early')
        for (const [, r] of remoteAcks) r(remoteFailure)
      })()
    }
    const w = writer
    for await (const p of opts.packets) {
      if (failed) break
      const remote = link ? waitRemote(p.seq) : undefined
      if (link && !remoteFailure) await link.send(p).catch(() => undefined)
      // The local write is not awaited here: the next packet is read (and forwarded) while this one
      // is being written, and the writer joins packets that queue up into one writev. The ack, in
      // order on `chain`, still waits for it.
      // Only the last stage checks the packet's CRC, as HDFS's pipeline does: the bytes it got passed
      // through every stage before it (a stage forwards what it writes), Noise authenticates each hop,
      // and every replica keeps the CRC for reads and the block scanner to check against.
      const written = w.write(p.data, p.crc, opts.downstream.length === 0)
      written.catch(() => undefined) // observed on the chain; not an unhandled rejection meanwhile
      const local = async (): Promise<{ ok: true; length: number; checksum: number } | Ack> => {
        try {
          await written
          if (p.last) return { ok: true, ...(await w.finish()) }
          return { ok: true, length: 0, checksum: 0 }
        } catch (err) {
          return fail(
            p.seq,
            selfId,
            `${(err as { code?: string }).code ?? 'ERROR'}: ${(err as Error).message}`,
          )
        }
      }
      chain = chain.then(async () => {
        if (failed) return
        const l = await local()
        let ack: Ack
        if (!l.ok) ack = l as Ack
        else if (remote) {
          const r = await remote
          ack = r.ok ? { ...r, seq: p.seq, length: l.length, checksum: l.checksum } : { ...r, seq: p.seq }
        } else
          ack = { seq: p.seq, ok: true, failedNode: '', error: '', length: l.length, checksum: l.checksum }
        if (!ack.ok) failed = ack
        remoteAcks.delete(p.seq)
        remoteWaits.delete(p.seq)
        await opts.onAck(ack)
      })
      if (p.last) break
    }
    await chain
  } catch (err) {
    await chain.catch(() => undefined)
    const node = (err as { failedNode?: string }).failedNode ?? selfId
    if (!failed)
      await opts.onAck(
        fail(-1, node, `${(err as { code?: string }).code ?? 'ERROR'}: ${(err as Error).message}`),
      )
    failed ??= fail(-1, node, (err as Error).message)
  } finally {
    if (failed || !(writer && store.has(blockId))) {
      await writer?.abort().catch(() => undefined)
      link?.abort()
    }
  }
}

/** Serves PIPELINE_PROTOCOL: each inbound stream is one stage of some block's pipeline. */
export async function servePipeline(
  host: P2PHost,
  selfId: string,
  store: BlockStore,
): Promise<() => Promise<void>> {
  await host.handle(
    PIPELINE_PROTOCOL,
    async (stream: Stream) => {
      const frames = readFrames(stream, FRAME_BYTES_MAX)[Symbol.asyncIterator]()
      const first = await frames.next()
      if (first.done) return
      const h = pb.PipelineHeader.decode(first.value)
      const packets: AsyncIterable<PacketIn> = {
        async *[Symbol.asyncIterator]() {
          for (;;) {
            const f = await frames.next()
            if (f.done) return
            const p = pb.Packet.decode(f.value)
            yield { seq: Number(p.seq), data: p.data, crc: p.crc, last: p.last }
          }
        },
      }
      await runStage({
        selfId,
        store,
        host,
        blockId: Number(h.blockId),
        genStamp: Number(h.genStamp),
        downstream: h.downstream,
        packets,
        onAck: async (a) => {
          if (stream.status !== 'open') return
          if (!stream.send(encodeFrame(pb.PacketAck.encode(a).finish()))) await waitForDrain(stream)
        },
      })
      await stream.close().catch(() => undefined)
    },
    { maxInboundStreams: 256 },
  )
  return () => host.unhandle(PIPELINE_PROTOCOL)
}

/** A stage run on this node, fed from memory (the writer is itself the first target). */
export function localStage(opts: {
  selfId: string
  store: BlockStore
  host: P2PHost
  targets: readonly string[]
  blockId: number
  genStamp: number
}): StageLink {
  const packets = new AsyncQueue<PacketIn>()
  const acks = new AsyncQueue<Ack>()
  void runStage({
    ...opts,
    downstream: opts.targets.slice(1),
    packets,
    onAck: (a) => {
      acks.push(a)
      if (!a.ok || a.seq === -1) acks.end()
    },
  }).finally(() => acks.end())
  return {
    async send(p) {
      packets.push(p)
      if (p.last) packets.end()
    },
    acks,
    abort: () => packets.end(),
  }
}

/**
 * A Packet as one length-prefixed frame without copying its data: protobufjs encodes seq, crc and last,
 * then the data field's key and length, and the data itself is the frame's last part (protobuf reads
 * fields in any order). Encoding it whole copied every 64 KiB on every hop, and the short-lived 64 KiB
 * buffers kept V8 marking the old generation.
 */
export function encodePacketFrame(p: PacketIn): Uint8ArrayList {
  const head = pb.Packet.encode({ seq: p.seq, crc: p.crc, last: p.last })
    .uint32(PACKET_DATA_KEY)
    .uint32(p.data.length)
    .finish()
  return encodeFrame(new Uint8ArrayList(head, p.data))
}

/** Field 2 (data), wire type 2 (length-delimited). */
const PACKET_DATA_KEY = (2 << 3) | 2

/** Splits `data` into packets from `seq0`; the last is marked when `final`. */
export function toPackets(data: Uint8Array, seq0: number, final: boolean): PacketIn[] {
  const out: PacketIn[] = []
  for (let off = 0; off < data.length || (final && out.length === 0); off += CHUNK_BYTES) {
    const chunk = data.subarray(off, off + CHUNK_BYTES)
    out.push({ seq: seq0 + out.length, data: chunk, crc: crc32c(chunk), last: false })
    if (off + CHUNK_BYTES >= data.length) break
  }
  if (final && out.length > 0) out[out.length - 1] = { ...out[out.length - 1]!, last: true }
  return out
}

// ---------------------------------------------------------------------------------- reads

/** Serves READ_PROTOCOL from `store`; `onCorrupt` hears of every replica that failed its checksum. */
export async function serveReads(
  host: P2PHost,
  store: BlockStore,
  onCorrupt: (blockId: number) => void,
): Promise<() => Promise<void>> {
  await host.handle(
    READ_PROTOCOL,
    async (stream: Stream) => {
      let req: pb.ReadRequest | undefined
      for await (const f of readFrames(stream, 64 * 1024)) {
        req = pb.ReadRequest.decode(f)
        break
      }
      if (req === undefined) return
      const id = Number(req.blockId)
      const info = store.info(id)
      const end = Math.min(info?.length ?? 0, Number(req.offset) + Number(req.length))
      const out = async (frame: pb.ReadFrame.$Properties): Promise<void> => {
        if (!stream.send(encodeFrame(pb.ReadFrame.encode(frame).finish()))) await waitForDrain(stream)
      }
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
    { maxInboundStreams: 256 },
  )
  return () => host.unhandle(READ_PROTOCOL)
}

/** Reads [offset, offset+length) of a block from `peer`, yielding pieces; throws on an error frame. */
export async function* readRemote(
  host: P2PHost,
  peer: string,
  blockId: number,
  offset: number,
  length: number,
  signal?: AbortSignal,
): AsyncGenerator<Uint8Array> {
  const stream = await host.newStream(peer, READ_PROTOCOL, { signal })
  try {
    if (!stream.send(encodeFrame(pb.ReadRequest.encode({ blockId, offset, length }).finish())))
      await waitForDrain(stream, signal)
    await stream.close({ signal })
    for await (const f of readFrames(stream, FRAME_BYTES_MAX)) {
      const r = pb.ReadFrame.decode(f)
      if (r.errorCode !== '') throw Object.assign(new Error(r.errorMessage), { code: r.errorCode })
      yield r.data
    }
  } finally {
    if (stream.status === 'open') stream.abort(new Error('read finished'))
  }
}
