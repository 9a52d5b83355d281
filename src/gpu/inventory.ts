/**
 * The GPU inventory of one host: discovers the GPUs once at start, then samples them every
 * `sampleIntervalMs`, keeps each device's health, and tells listeners when something a scheduler
 * publishes changes (a device added or gone, healthy or not, its model, memory or selector).
 *
 * Health:
 * - a reading in which the whole driver fails (non-zero exit, a malformed line, a timeout, no JSON)
 *   makes every known device unhealthy with that reason, and the snapshot's `driverHealthy` false;
 * - a device the driver reports in error (a field printed `[Unknown Error]`, compute mode Prohibited)
 *   is unhealthy with that reason;
 * - a known device missing from a successful reading is unhealthy ("no longer listed");
 * - a device that answers normally again is healthy again, at the next reading.
 * Devices found after start (a driver that failed at start and recovered) are added, up to `devicesMax`.
 *
 * Contracts: readings never overlap (the next one is scheduled when the previous ended); listeners are
 * called synchronously after a reading was applied, must not block, and are never called concurrently;
 * `snapshot()` is a consistent copy. Utilization, memory used, temperature and power change without
 * notification (read them from `snapshot()`), so that a scheduler's gossip is not driven by noise.
 */
import { systemClock, type Clock } from './clock.js'
import { AUTO_ORDER, createDeclaredDriver, createToolDriver, type GpuDriver } from './drivers.js'
import { GpuError } from './errors.js'
import { createSpawnRunner, type CommandRunner } from './run.js'
import type { GpuSpec, GpuToolDriver } from './spec.js'
import type { DeviceReading, DriverReading, GpuDevice, GpuSnapshot } from './types.js'

export interface GpuInventoryInit {
  /** What to discover with (from `--gpus`). */
  readonly spec: GpuSpec
  /** Default: the system clock. Timers of the sampling loop and health timestamps come from it. */
  readonly clock?: Clock
  /** Runs the vendor tools. Default: {@link createSpawnRunner} with this process's environment. */
  readonly run?: CommandRunner
  /** Pause between the end of one reading and the start of the next (default 10 s). */
  readonly sampleIntervalMs?: number
  /** A tool call that takes longer is killed and the reading fails (default 10 s). */
  readonly commandTimeoutMs?: number
  /** Output of one tool call beyond which it is killed and the reading fails (default 1 MiB). */
  readonly outputBytesMax?: number
  /** Devices kept at most; more are ignored (default 128: 16 GPUs × 7 MIG instances, with room). */
  readonly devicesMax?: number
  /** Listeners at most (default 64). */
  readonly listenersMax?: number
  /** Executables to run instead of the tools' names (e.g. `/usr/bin/nvidia-smi`). */
  readonly commands?: Partial<Record<GpuToolDriver, string>>
  /** Where a listener's exception goes (default: process.emitWarning). Listeners should not throw. */
  readonly onListenerError?: (err: unknown) => void
}

export type GpuChangeListener = (snapshot: GpuSnapshot) => void

export interface GpuInventory {
  /**
   * Discovers the GPUs (resolving `auto` to a driver) and starts sampling. Resolves when the first
   * reading is applied; a failing driver is not an error (its devices are unhealthy). Calling it again
   * returns the same promise. Throws GPU_DISCOVERY_ABORTED if `signal` aborts, or stop() is called,
   * before discovery ends (the inventory is then stopped), GPU_INVENTORY_STOPPED after stop().
   */
  start(signal?: AbortSignal): Promise<void>
  /** Stops sampling, kills a tool call in flight, and resolves when the reading in flight has ended. */
  stop(): Promise<void>
  snapshot(): GpuSnapshot
  get(uuid: string): GpuDevice | undefined
  /** Called after every change of devices or health; returns the unsubscribe function. */
  onChange(listener: GpuChangeListener): () => void
  /** Takes a reading now (after any in flight) and returns the snapshot after it. */
  sampleNow(signal?: AbortSignal): Promise<GpuSnapshot>
  /** Resolves when no reading is in flight (for tests driving a virtual clock). */
  idle(): Promise<void>
}

const DEFAULTS = {
  sampleIntervalMs: 10_000,
  commandTimeoutMs: 10_000,
  outputBytesMax: 1024 * 1024,
  devicesMax: 128,
  listenersMax: 64,
}

export function createGpuInventory(init: GpuInventoryInit): GpuInventory {
  const clock = init.clock ?? systemClock
  const sampleIntervalMs = init.sampleIntervalMs ?? DEFAULTS.sampleIntervalMs
  const devicesMax = init.devicesMax ?? DEFAULTS.devicesMax
  const listenersMax = init.listenersMax ?? DEFAULTS.listenersMax
  assertPositive('sampleIntervalMs', sampleIntervalMs)
  assertPositive('devicesMax', devicesMax)
  assertPositive('listenersMax', listenersMax)
  const toolInit = {
    run: init.run ?? createSpawnRunner(),
    timeoutMs: init.commandTimeoutMs ?? DEFAULTS.commandTimeoutMs,
    outputBytesMax: init.outputBytesMax ?? DEFAULTS.outputBytesMax,
  }
  assertPositive('commandTimeoutMs', toolInit.timeoutMs)
  assertPositive('outputBytesMax', toolInit.outputBytesMax)
  const toolDriver = (name: GpuToolDriver): GpuDriver =>
    createToolDriver(name, { ...toolInit, command: init.commands?.[name] })
  const onListenerError =
    init.onListenerError ??
    ((err: unknown) => process.emitWarning(`GPU inventory listener threw: ${String(err)}`))

  let driver: GpuDriver | null = null
  let driverHealthy = true
  let driverReason: string | null = null
  let driverVersion: string | null = null
  let sampledAtMs: number | null = null
  let version = 0
  const devices = new Map<string, GpuDevice>()
  const listeners = new Set<GpuChangeListener>()

  let started: Promise<void> | null = null
  let stopped = false
  let timer: unknown = null
  let inFlight: Promise<void> = Promise.resolve()
  const lifetime = new AbortController()

  function snapshot(): GpuSnapshot {
    const list = [...devices.values()].sort(
      (a, b) =>
        a.index - b.index ||
        (a.mig?.deviceIndex ?? -1) - (b.mig?.deviceIndex ?? -1) ||
        a.uuid.localeCompare(b.uuid),
    )
    return {
      driver: driver?.name ?? null,
      driverHealthy,
      driverReason,
      driverVersion,
      devices: list,
      sampledAtMs,
      version,
    }
  }

  /** Applies one reading; returns whether something listeners care about changed. */
  function apply(reading: DriverReading): boolean {
    const now = clock.now()
    let changed = false
    sampledAtMs = now
    const setHealth = (prev: GpuDevice, next: Omit<GpuDevice, 'sinceMs'>): GpuDevice => {
      const same = prev.healthy === next.healthy && prev.reason === next.reason
      return { ...next, sinceMs: same ? prev.sinceMs : now }
    }
    if (!reading.ok) {
      if (driverHealthy || driverReason !== reading.reason) changed = true
      driverHealthy = false
      driverReason = reading.reason
      for (const [uuid, d] of devices) {
        if (d.healthy || d.reason !== reading.reason) changed = true
        devices.set(uuid, setHealth(d, { ...d, healthy: false, reason: reading.reason }))
      }
      return changed
    }
    if (!driverHealthy) changed = true
    driverHealthy = true
    driverReason = null
    driverVersion = reading.driverVersion
    const seen = new Set<string>()
    for (const r of reading.devices) {
      if (seen.has(r.uuid)) continue
      const prev = devices.get(r.uuid)
      if (prev === undefined && devices.size >= devicesMax) continue
      seen.add(r.uuid)
      const health = { healthy: r.error === null, reason: r.error }
      if (prev === undefined) {
        devices.set(r.uuid, { ...r, ...health, sinceMs: now })
        changed = true
      } else {
        if (publishedDiffers(prev, r, health)) changed = true
        devices.set(r.uuid, setHealth(prev, { ...r, ...health }))
      }
    }
    const gone = `no longer listed by ${driver?.name ?? 'the driver'}`
    for (const [uuid, d] of devices) {
      if (seen.has(uuid)) continue
      if (d.healthy || d.reason !== gone) changed = true
      devices.set(
        uuid,
        setHealth(d, { ...d, healthy: false, reason: gone, memoryUsedMiB: null, utilizationPct: null }),
      )
    }
    return changed
  }

  function notify(): void {
    version++
    const snap = snapshot()
    for (const l of [...listeners]) {
      try {
        l(snap)
      } catch (err) {
        onListenerError(err)
      }
    }
  }

  async function readOnce(d: GpuDriver, signal: AbortSignal): Promise<DriverReading> {
    try {
      return await d.read(signal)
    } catch (err) {
      // Drivers do not throw; if one does (a bug), the GPUs are reported down rather than the node.
      return {
        ok: false,
        kind: 'failed',
        reason: `internal error reading ${d.name}: ${(err as Error).message}`,
      }
    }
  }

  /** Queues one reading after any in flight; a timer's reading schedules the next when it ends. */
  function sample(signal?: AbortSignal, fromTimer = false): Promise<void> {
    const run = inFlight.then(async () => {
      try {
        if (stopped || driver === null) return
        const s = signal === undefined ? lifetime.signal : AbortSignal.any([signal, lifetime.signal])
        const reading = await readOnce(driver, s)
        if (s.aborted) return // a reading cut short by stop() or the caller says nothing about the GPUs
        if (apply(reading)) notify()
      } finally {
        if (fromTimer) schedule()
      }
    })
    // Readings never reject (drivers and listeners are fenced); if one did, the queue goes on.
    inFlight = run.catch((err: unknown) =>
      process.emitWarning(`GPU inventory reading failed: ${String(err)}`),
    )
    return run
  }

  function schedule(): void {
    if (stopped || driver === null || !driver.sampled) return
    timer = clock.setTimeout(() => {
      timer = null
      void sample(undefined, true).catch(() => {})
    }, sampleIntervalMs)
  }

  async function discover(signal: AbortSignal): Promise<void> {
    const spec = init.spec
    if (spec.kind === 'none') return
    if (spec.kind === 'declared') {
      driver = createDeclaredDriver(spec.gpus)
      apply(await driver.read(signal))
      return
    }
    const candidates = spec.kind === 'driver' ? [spec.driver] : AUTO_ORDER
    for (const name of candidates) {
      const d = toolDriver(name)
      const reading = await readOnce(d, signal)
      if (signal.aborted) return
      if (!reading.ok && reading.kind === 'missing' && spec.kind === 'auto') continue
      driver = d
      apply(reading)
      return
    }
  }

  async function stop(): Promise<void> {
    stopped = true
    if (timer !== null) clock.clearTimeout(timer)
    timer = null
    lifetime.abort()
    await inFlight
  }

  return {
    start(signal) {
      if (stopped)
        return Promise.reject(new GpuError('GPU_INVENTORY_STOPPED', 'the GPU inventory was stopped'))
      if (started !== null) return started
      const s = signal === undefined ? lifetime.signal : AbortSignal.any([signal, lifetime.signal])
      const run = (async () => {
        const discovery = discover(s)
        inFlight = discovery.catch(() => {})
        await discovery
        if (s.aborted) {
          await stop()
          throw new GpuError('GPU_DISCOVERY_ABORTED', 'GPU discovery was aborted', { cause: s.reason })
        }
        notify()
        schedule()
      })()
      started = run
      return run
    },
    stop,
    snapshot,
    get: (uuid) => devices.get(uuid),
    onChange(listener) {
      if (listeners.size >= listenersMax)
        throw new Error(`GPU inventory: more than ${listenersMax} listeners`)
      listeners.add(listener)
      return () => void listeners.delete(listener)
    },
    async sampleNow(signal) {
      await sample(signal)
      return snapshot()
    },
    idle: () => inFlight,
  }
}

/** Whether a reading changes what a scheduler publishes about a device. */
function publishedDiffers(
  prev: GpuDevice,
  r: DeviceReading,
  health: { healthy: boolean; reason: string | null },
): boolean {
  return (
    prev.healthy !== health.healthy ||
    prev.reason !== health.reason ||
    prev.model !== r.model ||
    prev.memoryTotalMiB !== r.memoryTotalMiB ||
    prev.visible.value !== r.visible.value ||
    prev.index !== r.index
  )
}

function assertPositive(name: string, n: number): void {
  if (!Number.isSafeInteger(n) || n <= 0)
    throw new Error(`GPU inventory: ${name} must be a positive integer, got ${n}`)
}
