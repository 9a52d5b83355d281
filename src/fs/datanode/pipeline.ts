/**
 * The block write pipeline between datanodes, over {@link PeerStreams}.
 *
 * `/hopsd/block-pipeline/1.0.0` — one stream per block and hop: the first frame is a PipelineHeader
 * (block, genStamp, the datanodes after the receiver), then Packets (seq, ≤ 64 KiB = one checksum
 * chunk, its CRC32C, `last`). A stage forwards each packet downstream before writing it locally, and
 * sends PacketAck{seq} upstream once its own write and the downstream ack of that seq are both done —
 * so an ack at the head means every replica wrote the packet, and the last packet's ack means every
 * replica fsynced and finalised the block. A failure acks `ok: false` naming the first datanode that
 * failed. A stage that fails because of another node keeps what it wrote (the store suspends the
 * replica), so that the writer can go on with the survivors: a header with `reopen` continues the
 * replica a node holds at `fromGenStamp` from `resumeFrom` bytes under the new stamp (pipeline
 * recovery, ./write.ts; an append continuing a finalised replica is the same). The writer bounds the
 * packets in flight (`PIPELINE_WINDOW_PACKETS`): a stage holds at most that many, and a stage that
 * cannot forward waits (the transport's send resolves once it drained), so backpressure runs up the
 * pipeline to the writer's body.
 */
import { hopsd } from '../../proto/datanode.js'
import { BLOCK_FRAME_BYTES_MAX } from '../blocks/index.js'
import type { PeerStream, PeerStreams } from '../peers.js'
import type { BlockStore } from './store.js'

import pb = hopsd.datanode

export const PIPELINE_PROTOCOL = '/hopsd/block-pipeline/1.0.0'
export const PIPELINE_WINDOW_PACKETS = 64
/**
 * A hop that takes no packet (its transport does not drain) or sends no ack for this long has failed
 * (HDFS's socket timeout): a stalled datanode ends in a pipeline recovery, not in a write that hangs.
 */
export const PIPELINE_STALL_MS = 30_000
/** The failed node of a stage whose sender went away. */
const UPSTREAM = 'upstream'

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

/** Where a pipeline continues replicas the nodes hold instead of starting them. */
export interface Resume {
  /** The stamp of the replicas continued. */
  readonly fromGenStamp: number
  /** Bytes every one of them keeps; the packets go on after them. */
  readonly resumeFrom: number
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

/** Opens the pipeline at `targets[0]`, the rest downstream of it. */
export async function openRemoteStage(
  streams: PeerStreams,
  targets: readonly string[],
  blockId: number,
  genStamp: number,
  signal?: AbortSignal,
  resume?: Resume,
): Promise<StageLink> {
  const peer = targets[0]!
  const stream = await streams.openStream(peer, PIPELINE_PROTOCOL, { signal })
  await stream.send(
    pb.PipelineHeader.encode({
      blockId,
      genStamp,
      downstream: targets.slice(1),
      ...(resume === undefined
        ? {}
        : { reopen: true, fromGenStamp: resume.fromGenStamp, resumeFrom: resume.resumeFrom }),
    }).finish(),
    signal,
  )
  const acks = new AsyncQueue<Ack>()
  void (async () => {
    let lastSeq = -1
    try {
      for await (const frame of stream.frames(BLOCK_FRAME_BYTES_MAX)) {
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
  const deadline = (): AbortSignal =>
    signal === undefined
      ? AbortSignal.timeout(PIPELINE_STALL_MS)
      : AbortSignal.any([signal, AbortSignal.timeout(PIPELINE_STALL_MS)])
  return {
    async send(p) {
      await stream.send(packetFrameParts(p), deadline())
      if (p.last) await stream.close(deadline()).catch(() => undefined)
    },
    acks,
    abort: () => stream.abort(new Error('pipeline aborted')),
  }
}

/** `p`, or a failed ack of `node` when it does not settle within PIPELINE_STALL_MS. */
export function withStallDeadline(p: Promise<Ack>, seq: number, node: string): Promise<Ack> {
  let timer: NodeJS.Timeout | undefined
  const stalled = new Promise<Ack>((resolve) => {
    timer = setTimeout(
      () => resolve(fail(seq, node, `no ack from ${node} within ${PIPELINE_STALL_MS} ms`)),
      PIPELINE_STALL_MS,
    )
  })
  return Promise.race([p, stalled]).finally(() => clearTimeout(timer))
}

/**
 * Runs this node's stage of a pipeline: writes `packets` to the local store, forwards them to
 * `downstream`, and emits one ack per packet in order (see the file comment). Never throws: failures
 * become a failed ack, after which it stops.
 */
export async function runStage(opts: {
  selfId: string
  store: BlockStore
  streams: PeerStreams
  blockId: number
  genStamp: number
  downstream: readonly string[]
  packets: AsyncIterable<PacketIn>
  onAck: (a: Ack) => Promise<void> | void
  signal?: AbortSignal
  /** Continue the replica this node holds instead of starting one. */
  resume?: Resume
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
    writer =
      opts.resume === undefined
        ? await store.createWriter(blockId, genStamp)
        : await store.reopenWriter(blockId, opts.resume.fromGenStamp, genStamp, opts.resume.resumeFrom)
    if (opts.downstream.length > 0) {
      try {
        link = await openRemoteStage(
          opts.streams,
          opts.downstream,
          blockId,
          genStamp,
          opts.signal,
          opts.resume,
        )
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
      // through every stage before it (a stage forwards what it writes), the transport authenticates
      // each hop, and every replica keeps the CRC for reads and the block scanner to check against.
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
          const r = await withStallDeadline(remote, p.seq, opts.downstream[0]!)
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
    const finished = writer !== undefined && store.info(blockId)?.genStamp === genStamp && !failed
    if (!finished) {
      // Our own write failed: what we wrote goes. Another node failed (or the writer went away): what we
      // wrote is kept for a pipeline recovery under a new stamp.
      if (failed?.failedNode === selfId) await writer?.abort().catch(() => undefined)
      else await writer?.suspend().catch(() => undefined)
      link?.abort()
    }
  }
}

/** Serves PIPELINE_PROTOCOL: each inbound stream is one stage of some block's pipeline. */
export async function servePipeline(
  streams: PeerStreams,
  selfId: string,
  store: BlockStore,
): Promise<() => Promise<void>> {
  return streams.handleStreams(
    PIPELINE_PROTOCOL,
    async (stream: PeerStream) => {
      const frames = stream.frames(BLOCK_FRAME_BYTES_MAX)[Symbol.asyncIterator]()
      const first = await frames.next()
      if (first.done) return
      const h = pb.PipelineHeader.decode(first.value)
      const packets: AsyncIterable<PacketIn> = {
        async *[Symbol.asyncIterator]() {
          for (;;) {
            let f: IteratorResult<Uint8Array>
            try {
              f = await frames.next()
            } catch (err) {
              // The writer (or the stage before) went away: not this node's failure, so what it wrote
              // is kept for a pipeline recovery.
              throw Object.assign(new Error(`upstream: ${(err as Error).message}`), { failedNode: UPSTREAM })
            }
            if (f.done) return
            const p = pb.Packet.decode(f.value)
            yield { seq: Number(p.seq), data: p.data, crc: p.crc, last: p.last }
          }
        },
      }
      await runStage({
        selfId,
        store,
        streams,
        blockId: Number(h.blockId),
        genStamp: Number(h.genStamp),
        downstream: h.downstream,
        resume: h.reopen
          ? { fromGenStamp: Number(h.fromGenStamp), resumeFrom: Number(h.resumeFrom) }
          : undefined,
        packets,
        onAck: async (a) => {
          if (!stream.open) return
          await stream.send(pb.PacketAck.encode(a).finish())
        },
      })
      await stream.close().catch(() => undefined)
    },
    { streamsMax: 256 },
  )
}

/** A stage run on this node, fed from memory (the writer is itself the first target). */
export function localStage(opts: {
  selfId: string
  store: BlockStore
  streams: PeerStreams
  targets: readonly string[]
  blockId: number
  genStamp: number
  resume?: Resume
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
 * A Packet as the parts of one frame, without copying its data: protobufjs encodes seq, crc and last,
 * then the data field's key and length, and the data itself is the frame's last part (protobuf reads
 * fields in any order). Encoding it whole copied every 64 KiB on every hop, and the short-lived 64 KiB
 * buffers kept V8 marking the old generation.
 */
export function packetFrameParts(p: PacketIn): [Uint8Array, Uint8Array] {
  const head = pb.Packet.encode({ seq: p.seq, crc: p.crc, last: p.last })
    .uint32(PACKET_DATA_KEY)
    .uint32(p.data.length)
    .finish()
  return [head, p.data]
}

/** Field 2 (data), wire type 2 (length-delimited). */
const PACKET_DATA_KEY = (2 << 3) | 2
