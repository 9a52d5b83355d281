// The inventory: auto's order, health transitions over time (virtual clock, fixtures changing under
// it), what listeners hear, declared GPUs, stopping, and its bounds.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  createGpuInventory,
  isGpuError,
  visibleDevicesEnv,
  type CommandOutcome,
  type GpuSnapshot,
} from '../../src/gpu/index.js'
import { FakeClock, FIXTURES, fixtureRunner } from './helpers.js'

const A100 = 'nvidia-smi/a100x8-healthy'
const GPU5 = 'GPU-083904c0-9140-4a80-ae74-4c2682d585b3'

describe('auto', () => {
  it('tries nvidia-smi, rocm-smi, amd-smi in turn and keeps the first installed', async () => {
    const run = fixtureRunner({ 'amd-smi': 'amd-smi/wrapped-mi300x' })
    const inv = createGpuInventory({ spec: { kind: 'auto' }, run, clock: new FakeClock() })
    await inv.start()
    expect(run.calls.map((c) => c.command)).toEqual(['nvidia-smi', 'rocm-smi', 'amd-smi', 'amd-smi'])
    expect(inv.snapshot()).toMatchObject({ driver: 'amd-smi', driverHealthy: true })
    expect(inv.snapshot().devices).toHaveLength(2)
    await inv.stop()
  })

  it('keeps an installed driver that fails (exit 9) rather than trying the next', async () => {
    const run = fixtureRunner({
      'nvidia-smi': 'nvidia-smi/exit9-no-driver',
      'rocm-smi': 'rocm-smi/rocm5-mi250',
    })
    const inv = createGpuInventory({ spec: { kind: 'auto' }, run, clock: new FakeClock() })
    await inv.start()
    expect(run.calls.map((c) => c.command)).toEqual(['nvidia-smi'])
    expect(inv.snapshot()).toMatchObject({ driver: 'nvidia-smi', driverHealthy: false, devices: [] })
    await inv.stop()
  })

  it('finds no GPUs and samples nothing when no tool is installed', async () => {
    const clock = new FakeClock()
    const run = fixtureRunner({})
    const inv = createGpuInventory({ spec: { kind: 'auto' }, run, clock })
    await inv.start()
    expect(inv.snapshot()).toMatchObject({ driver: null, driverHealthy: true, devices: [] })
    expect(clock.pending).toBe(0)
    expect(run.calls).toHaveLength(3)
    await inv.stop()
  })

  it('with one driver named, reports it as not installed and keeps sampling for it', async () => {
    const clock = new FakeClock()
    const inv = createGpuInventory({
      spec: { kind: 'driver', driver: 'rocm-smi' },
      run: fixtureRunner({}),
      clock,
    })
    await inv.start()
    expect(inv.snapshot()).toMatchObject({ driver: 'rocm-smi', driverHealthy: false })
    expect(inv.snapshot().driverReason).toContain('rocm-smi is not installed')
    expect(clock.pending).toBe(1)
    await inv.stop()
    expect(clock.pending).toBe(0)
  })
})

describe('sampling and health', () => {
  /** An inventory over nvidia-smi whose host state the test sets between samples. */
  async function sampled(initial: string | CommandOutcome) {
    let state: string | CommandOutcome = initial
    const clock = new FakeClock()
    const run = fixtureRunner({ 'nvidia-smi': () => state })
    const inv = createGpuInventory({ spec: { kind: 'auto' }, run, clock, sampleIntervalMs: 5_000 })
    const heard: GpuSnapshot[] = []
    inv.onChange((s) => heard.push(s))
    await inv.start()
    return {
      inv,
      clock,
      run,
      heard,
      /** Sets the host state and lets the next sample run. */
      async next(s: string | CommandOutcome): Promise<GpuSnapshot> {
        state = s
        clock.advance(5_000)
        await inv.idle()
        return inv.snapshot()
      },
    }
  }

  it('samples every interval, marks every GPU down on a driver failure, and recovers them', async () => {
    const t = await sampled(A100)
    expect(t.heard).toHaveLength(1) // the discovery
    expect(t.heard[0]!.devices.every((d) => d.healthy)).toBe(true)

    const lost = await t.next('nvidia-smi/exit15-gpu-lost')
    expect(t.run.calls).toHaveLength(2)
    expect(lost.driverHealthy).toBe(false)
    expect(lost.devices).toHaveLength(8) // still listed, so jobs on them are known
    expect(lost.devices.every((d) => !d.healthy && d.reason === lost.driverReason)).toBe(true)
    expect(lost.driverReason).toContain('GPU is lost')
    expect(lost.devices[0]!.sinceMs).toBe(5_000)
    expect(t.heard).toHaveLength(2)

    const still = await t.next('nvidia-smi/exit15-gpu-lost')
    expect(t.heard).toHaveLength(2) // nothing changed: nobody is told
    expect(still.devices[0]!.sinceMs).toBe(5_000)

    const back = await t.next(A100)
    expect(back.driverHealthy).toBe(true)
    expect(back.devices.every((d) => d.healthy && d.reason === null)).toBe(true)
    expect(back.devices[0]!.sinceMs).toBe(15_000)
    expect(t.heard).toHaveLength(3)
    expect(t.heard.map((s) => s.version)).toEqual([1, 2, 3])
    await t.inv.stop()
  })

  it('marks only the GPU in error down, and brings it back', async () => {
    const t = await sampled(A100)
    const one = await t.next('nvidia-smi/unknown-error')
    expect(one.devices.filter((d) => !d.healthy).map((d) => d.uuid)).toEqual([GPU5])
    expect(t.inv.get(GPU5)!.reason).toContain('[Unknown Error]')
    expect(one.driverHealthy).toBe(true)
    const back = await t.next(A100)
    expect(back.devices.every((d) => d.healthy)).toBe(true)
    expect(t.heard).toHaveLength(3)
    await t.inv.stop()
  })

  it('marks every GPU down on a line with the wrong field count, then recovers', async () => {
    const t = await sampled(A100)
    const bad = await t.next('nvidia-smi/wrong-field-count')
    expect(bad.devices.every((d) => !d.healthy)).toBe(true)
    expect(bad.driverReason).toContain('5 fields, expected 12')
    expect((await t.next(A100)).devices.every((d) => d.healthy)).toBe(true)
    await t.inv.stop()
  })

  it('marks a GPU that disappears from the listing down, and up when it is listed again', async () => {
    const t = await sampled(A100)
    const without5 = (): CommandOutcome => ({
      kind: 'exited',
      code: 0,
      stderr: '',
      stdout: fixtureText(A100)
        .split('\n')
        .filter((l) => !l.includes(GPU5))
        .join('\n'),
    })
    const gone = await t.next(without5())
    expect(gone.devices).toHaveLength(8)
    expect(t.inv.get(GPU5)).toMatchObject({
      healthy: false,
      reason: 'no longer listed by nvidia-smi',
      utilizationPct: null,
    })
    expect(gone.devices.filter((d) => d.healthy)).toHaveLength(7)
    expect((await t.next(A100)).devices.every((d) => d.healthy)).toBe(true)
    await t.inv.stop()
  })

  it('marks the GPUs down when the tool hangs past its timeout', async () => {
    const t = await sampled(A100)
    const hung = await t.next({ kind: 'timed-out', timeoutMs: 10_000 })
    expect(hung.devices.every((d) => !d.healthy)).toBe(true)
    expect(hung.driverReason).toBe('nvidia-smi did not answer within 10000 ms and was killed')
    await t.inv.stop()
  })

  it('updates utilization and memory without telling listeners', async () => {
    const t = await sampled(A100)
    const busy: CommandOutcome = {
      kind: 'exited',
      code: 0,
      stderr: '',
      stdout: fixtureText(A100).replace(/^(0, GPU-[^,]+, [^,]+, [^,]+, 40536), 0, 0,/m, '$1, 30012, 97,'),
    }
    const s = await t.next(busy)
    expect(s.devices[0]).toMatchObject({ memoryUsedMiB: 30012, utilizationPct: 97, healthy: true })
    expect(s.sampledAtMs).toBe(5_000)
    expect(t.heard).toHaveLength(1)
    await t.inv.stop()
  })

  it('finds GPUs of a driver that failed at start once it answers', async () => {
    const t = await sampled('nvidia-smi/exit9-no-driver')
    expect(t.inv.snapshot().devices).toEqual([])
    const s = await t.next(A100)
    expect(s.devices).toHaveLength(8)
    expect(s.driverHealthy).toBe(true)
    await t.inv.stop()
  })

  it('never overlaps readings: the next is scheduled when one ends', async () => {
    let release: (() => void) | null = null
    let secondStarted: () => void = () => {}
    const started = new Promise<void>((r) => (secondStarted = r))
    const clock = new FakeClock()
    let calls = 0
    const run = async (): Promise<CommandOutcome> => {
      calls++
      if (calls === 2) {
        secondStarted()
        await new Promise<void>((r) => (release = r))
      }
      return { kind: 'exited', code: 0, stdout: fixtureText(A100), stderr: '' }
    }
    const inv = createGpuInventory({
      spec: { kind: 'driver', driver: 'nvidia-smi' },
      run,
      clock,
      sampleIntervalMs: 1_000,
    })
    await inv.start()
    clock.advance(1_000)
    await started
    clock.advance(10_000) // the second reading is still running: no timer is waiting
    expect(calls).toBe(2)
    expect(clock.pending).toBe(0)
    release!()
    await inv.idle()
    expect(clock.pending).toBe(1)
    await inv.stop()
  })
})

describe('declared GPUs', () => {
  it('lists them healthy, selected by index, and never samples', async () => {
    const clock = new FakeClock()
    const run = fixtureRunner({ 'nvidia-smi': A100 })
    const inv = createGpuInventory({
      spec: {
        kind: 'declared',
        gpus: [0, 1].map(() => ({ model: 'A100', memoryMiB: 81920, uuid: null, vendor: 'nvidia' as const })),
      },
      run,
      clock,
    })
    await inv.start()
    const s = inv.snapshot()
    expect(s.driver).toBe('declared')
    expect(s.devices.map((d) => [d.uuid, d.visible.value, d.healthy, d.memoryTotalMiB])).toEqual([
      ['declared-0', '0', true, 81920],
      ['declared-1', '1', true, 81920],
    ])
    expect(visibleDevicesEnv(s.devices)).toEqual({ CUDA_VISIBLE_DEVICES: '0,1' })
    expect(run.calls).toEqual([])
    expect(clock.pending).toBe(0)
    await inv.stop()
  })

  it('selects AMD GPUs with ROCR_VISIBLE_DEVICES, by UUID when one is declared', async () => {
    const inv = createGpuInventory({
      spec: {
        kind: 'declared',
        gpus: [{ model: 'MI300X', memoryMiB: null, uuid: 'GPU-d4c4a2b1e39f6c01', vendor: 'amd' }],
      },
      clock: new FakeClock(),
    })
    await inv.start()
    expect(visibleDevicesEnv(inv.snapshot().devices)).toEqual({
      ROCR_VISIBLE_DEVICES: 'GPU-d4c4a2b1e39f6c01',
    })
    await inv.stop()
  })
})

describe('visibleDevicesEnv', () => {
  it('joins the selectors; an empty set hides every device; vendors are not mixed', () => {
    const nv = { visible: { env: 'CUDA_VISIBLE_DEVICES' as const, value: 'GPU-a' } }
    const mig = { visible: { env: 'CUDA_VISIBLE_DEVICES' as const, value: 'MIG-GPU-b/1/0' } }
    const amd = { visible: { env: 'ROCR_VISIBLE_DEVICES' as const, value: '1' } }
    expect(visibleDevicesEnv([nv, mig])).toEqual({ CUDA_VISIBLE_DEVICES: 'GPU-a,MIG-GPU-b/1/0' })
    expect(visibleDevicesEnv([])).toEqual({ CUDA_VISIBLE_DEVICES: '' })
    expect(visibleDevicesEnv([], 'ROCR_VISIBLE_DEVICES')).toEqual({ ROCR_VISIBLE_DEVICES: '' })
    expect(() => visibleDevicesEnv([nv, amd])).toThrow(/different vendors/)
  })
})

describe('lifecycle and bounds', () => {
  it('stops sampling, kills the reading in flight, and does not start again', async () => {
    const clock = new FakeClock()
    let seenSignal: AbortSignal | undefined
    let calls = 0
    let secondStarted: () => void = () => {}
    const started = new Promise<void>((r) => (secondStarted = r))
    const run = async (
      _c: string,
      _a: readonly string[],
      opts: { signal?: AbortSignal },
    ): Promise<CommandOutcome> => {
      calls++
      if (calls === 1) return { kind: 'exited', code: 0, stdout: fixtureText(A100), stderr: '' }
      seenSignal = opts.signal
      secondStarted()
      await new Promise<void>((r) => opts.signal!.addEventListener('abort', () => r()))
      return { kind: 'aborted' }
    }
    const inv = createGpuInventory({
      spec: { kind: 'driver', driver: 'nvidia-smi' },
      run,
      clock,
      sampleIntervalMs: 1_000,
    })
    await inv.start()
    clock.advance(1_000)
    await started
    expect(calls).toBe(2)
    await inv.stop()
    expect(seenSignal?.aborted).toBe(true)
    expect(inv.snapshot().devices.every((d) => d.healthy)).toBe(true) // an aborted reading says nothing
    expect(clock.pending).toBe(0)
    await expect(inv.start()).rejects.toSatisfy((e) => isGpuError(e, 'GPU_INVENTORY_STOPPED'))
  })

  it('ignores a reading its caller aborted', async () => {
    let calls = 0
    const run = async (
      _c: string,
      _a: readonly string[],
      opts: { signal?: AbortSignal },
    ): Promise<CommandOutcome> => {
      if (++calls === 1) return { kind: 'exited', code: 0, stdout: fixtureText(A100), stderr: '' }
      if (!opts.signal!.aborted)
        await new Promise<void>((r) => opts.signal!.addEventListener('abort', () => r()))
      return { kind: 'aborted' }
    }
    const inv = createGpuInventory({
      spec: { kind: 'driver', driver: 'nvidia-smi' },
      run,
      clock: new FakeClock(),
    })
    await inv.start()
    const ac = new AbortController()
    const pending = inv.sampleNow(ac.signal)
    ac.abort()
    const s = await pending
    expect(s.driverHealthy).toBe(true)
    expect(s.devices.every((d) => d.healthy)).toBe(true)
    await inv.stop()
  })

  it('throws GPU_DISCOVERY_ABORTED when the caller aborts discovery', async () => {
    const ac = new AbortController()
    const run = async (
      _c: string,
      _a: readonly string[],
      opts: { signal?: AbortSignal },
    ): Promise<CommandOutcome> => {
      ac.abort()
      return opts.signal?.aborted ? { kind: 'aborted' } : { kind: 'exited', code: 0, stdout: '', stderr: '' }
    }
    const inv = createGpuInventory({ spec: { kind: 'auto' }, run, clock: new FakeClock() })
    await expect(inv.start(ac.signal)).rejects.toSatisfy((e) => isGpuError(e, 'GPU_DISCOVERY_ABORTED'))
  })

  it('keeps at most devicesMax devices and listenersMax listeners', async () => {
    const inv = createGpuInventory({
      spec: { kind: 'driver', driver: 'nvidia-smi' },
      run: fixtureRunner({ 'nvidia-smi': A100 }),
      clock: new FakeClock(),
      devicesMax: 3,
      listenersMax: 2,
    })
    inv.onChange(() => {})
    const off = inv.onChange(() => {})
    expect(() => inv.onChange(() => {})).toThrow(/more than 2 listeners/)
    off()
    inv.onChange(() => {})
    await inv.start()
    expect(inv.snapshot().devices.map((d) => d.index)).toEqual([0, 1, 2])
    await inv.stop()
    expect(() => createGpuInventory({ spec: { kind: 'none' }, sampleIntervalMs: 0 })).toThrow(
      /sampleIntervalMs/,
    )
  })

  it('passes a listener that throws to onListenerError and tells the others', async () => {
    const errors: unknown[] = []
    const inv = createGpuInventory({
      spec: { kind: 'driver', driver: 'nvidia-smi' },
      run: fixtureRunner({ 'nvidia-smi': A100 }),
      clock: new FakeClock(),
      onListenerError: (e) => errors.push(e),
    })
    let told = 0
    inv.onChange(() => {
      throw new Error('listener bug')
    })
    inv.onChange(() => told++)
    await inv.start()
    expect(told).toBe(1)
    expect(String(errors[0])).toContain('listener bug')
    await inv.stop()
  })
})

function fixtureText(dir: string): string {
  return readFileSync(join(FIXTURES, dir, 'query.stdout'), 'utf8')
}
