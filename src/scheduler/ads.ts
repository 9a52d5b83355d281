/**
 * Resource advertisements: what every gpu node publishes about itself on the gossip topic
 * {@link ADS_TOPIC}, periodically and on every change (proto/sched.proto ResourceAd). Soft state: a
 * placer samples from it, and the worker revalidates every reservation against its own table.
 */
import { hopsd } from '../proto/sched.js'
import type { GpuVendor } from './types.js'

import pb = hopsd.sched

export const ADS_TOPIC = 'hopsd/sched/ads/1'

export interface GpuAd {
  readonly uuid: string
  readonly index: number
  readonly model: string
  readonly memoryMiB: number
  /** Held by a reservation or bound to a task. */
  readonly allocated: boolean
  readonly healthy: boolean
  readonly vendor: GpuVendor
}

export interface ResourceAd {
  readonly node: string
  readonly zone: string
  readonly gpus: readonly GpuAd[]
  readonly cpus: number
  readonly memoryMiB: number
  readonly cpusFree: number
  readonly memoryMiBFree: number
  /** Job ids with tasks bound on the node. */
  readonly runningJobs: readonly number[]
  /** The worker's state version: bumped on every change, within one incarnation. */
  readonly seq: number
  /** Changes on every start of the worker. */
  readonly incarnation: number
  /** Address of the node for peers (a gang's MASTER_ADDR). */
  readonly addr: string
}

const VENDOR_TO_PB: Record<GpuVendor, pb.GpuVendor> = {
  nvidia: pb.GpuVendor.NVIDIA,
  amd: pb.GpuVendor.AMD,
  declared: pb.GpuVendor.DECLARED,
}

function vendorFromPb(v: number | null | undefined): GpuVendor {
  return v === pb.GpuVendor.AMD ? 'amd' : v === pb.GpuVendor.NVIDIA ? 'nvidia' : 'declared'
}

/** Ads are immutable: the proto shape of one is built once (a worker sends the same ad in many replies). */
const protoCache = new WeakMap<ResourceAd, pb.ResourceAd.$Properties>()

export function adToProto(ad: ResourceAd): pb.ResourceAd.$Properties {
  let m = protoCache.get(ad)
  if (m === undefined) {
    m = {
      ...ad,
      gpus: ad.gpus.map((g) => ({ ...g, vendor: VENDOR_TO_PB[g.vendor] })),
      runningJobs: [...ad.runningJobs],
    }
    protoCache.set(ad, m)
  }
  return m
}

export function adFromProto(m: pb.ResourceAd.$Properties): ResourceAd {
  return {
    node: m.node ?? '',
    zone: m.zone ?? '',
    gpus: (m.gpus ?? []).map((g) => ({
      uuid: g.uuid ?? '',
      index: g.index ?? 0,
      model: g.model ?? '',
      memoryMiB: Number(g.memoryMiB ?? 0),
      allocated: g.allocated ?? false,
      healthy: g.healthy ?? false,
      vendor: vendorFromPb(g.vendor),
    })),
    cpus: m.cpus ?? 0,
    memoryMiB: Number(m.memoryMiB ?? 0),
    cpusFree: m.cpusFree ?? 0,
    memoryMiBFree: Number(m.memoryMiBFree ?? 0),
    runningJobs: (m.runningJobs ?? []).map(Number),
    seq: Number(m.seq ?? 0),
    incarnation: Number(m.incarnation ?? 0),
    addr: m.addr ?? '',
  }
}

export function encodeAd(ad: ResourceAd): Uint8Array {
  return pb.ResourceAd.encode(adToProto(ad)).finish()
}

/** Decodes an ad; throws on bytes that are not one (the caller drops the message). */
export function decodeAd(bytes: Uint8Array): ResourceAd {
  const ad = adFromProto(pb.ResourceAd.decode(bytes))
  if (ad.node === '') throw new Error('resource ad without a node')
  return ad
}

/** Healthy, unallocated GPUs of an ad (matching `model` when not ''). */
export function freeGpus(ad: ResourceAd, model = ''): number {
  let n = 0
  for (const g of ad.gpus) if (g.healthy && !g.allocated && (model === '' || g.model === model)) n++
  return n
}
