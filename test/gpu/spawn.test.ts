// The real spawn path: stand-in executables named nvidia-smi, rocm-smi and amd-smi, first on PATH in a
// temp dir, print the captured fixtures and exit with the recorded status — real processes, real exit
// codes, real parsing — and a hung one is killed (with its child) by the timeout.
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { createGpuInventory, createSpawnRunner, type GpuInventory } from '../../src/gpu/index.js'
import { isProcessAlive, makeTempDir, removeTempDirs, waitFor } from '../helpers/index.js'
import { writeStandIn, type Tool } from './helpers.js'

const inventories: GpuInventory[] = []
afterAll(async () => {
  await Promise.all(inventories.map((i) => i.stop()))
  removeTempDirs()
})

/** A bin dir with stand-ins for `tools`, each printing the fixture named in its own state file. */
function host(tools: Partial<Record<Tool, string>>) {
  const bin = makeTempDir('gpu-bin-')
  const states: Partial<Record<Tool, string>> = {}
  for (const [tool, fixture] of Object.entries(tools) as [Tool, string][]) {
    const state = join(bin, `${tool}.state`)
    writeFileSync(state, fixture)
    writeStandIn(bin, tool, state)
    states[tool] = state
  }
  return {
    bin,
    /** PATH with only the stand-ins and the basic utilities they use (no real vendor tool can win). */
    env: { PATH: `${bin}:/usr/bin:/bin` },
    set: (tool: Tool, fixture: string) => writeFileSync(states[tool]!, fixture),
    calls: (): string[] => readFileSync(join(bin, 'calls.log'), 'utf8').trim().split('\n'),
  }
}

function track(inv: GpuInventory): GpuInventory {
  inventories.push(inv)
  return inv
}

describe('real processes', () => {
  it('discovers NVIDIA GPUs through a real nvidia-smi run with the issue query, and follows its exit codes', async () => {
    const h = host({ 'nvidia-smi': 'nvidia-smi/a100x8-healthy' })
    const inv = track(
      createGpuInventory({
        spec: { kind: 'auto' },
        run: createSpawnRunner({ env: h.env }),
        sampleIntervalMs: 3_600_000,
      }),
    )
    await inv.start()
    expect(h.calls()).toEqual([
      'nvidia-smi --query-gpu=index,uuid,name,pci.bus_id,memory.total,memory.used,utilization.gpu,temperature.gpu,power.draw,compute_mode,mig.mode.current,driver_version --format=csv,noheader,nounits',
    ])
    expect(inv.snapshot().devices).toHaveLength(8)
    expect(inv.snapshot().devices.every((d) => d.healthy)).toBe(true)

    h.set('nvidia-smi', 'nvidia-smi/exit18-mismatch')
    const bad = await inv.sampleNow()
    expect(bad.driverHealthy).toBe(false)
    expect(bad.driverReason).toContain(
      'nvidia-smi exited 18 (driver/library version mismatch): Failed to initialize NVML',
    )
    expect(bad.devices.every((d) => !d.healthy)).toBe(true)

    h.set('nvidia-smi', 'nvidia-smi/exit9-no-driver')
    expect((await inv.sampleNow()).driverReason).toContain(
      'nvidia-smi exited 9 (NVIDIA driver is not loaded)',
    )

    h.set('nvidia-smi', 'nvidia-smi/mig-legacy-a100')
    const mig = await inv.sampleNow()
    expect(h.calls().at(-1)).toBe('nvidia-smi -L')
    expect(mig.devices.filter((d) => d.mig !== null && d.healthy)).toHaveLength(4)
    // The A100-SXM4 GPUs of the first host are not on this one.
    expect(inv.get('GPU-b01e9f90-c60c-4ad1-2052-154833662357')).toMatchObject({
      healthy: false,
      reason: 'no longer listed by nvidia-smi',
    })
    await inv.stop()
  })

  it('falls through to rocm-smi when nvidia-smi is not on PATH', async () => {
    const h = host({ 'rocm-smi': 'rocm-smi/rocm5-mi250' })
    const inv = track(
      createGpuInventory({
        spec: { kind: 'auto' },
        run: createSpawnRunner({ env: h.env }),
        sampleIntervalMs: 3_600_000,
      }),
    )
    await inv.start()
    expect(inv.snapshot()).toMatchObject({ driver: 'rocm-smi', driverHealthy: true })
    expect(inv.snapshot().devices[0]).toMatchObject({
      uuid: 'GPU-719d230578348e8c',
      visible: { env: 'ROCR_VISIBLE_DEVICES' },
    })
    h.set('rocm-smi', 'rocm-smi/no-driver')
    expect((await inv.sampleNow()).driverReason).toContain(
      'Driver not initialized (amdgpu not found in modules)',
    )
    await inv.stop()
  })

  it('runs amd-smi static and metric, and reads its exit 255', async () => {
    const h = host({ 'amd-smi': 'amd-smi/bare-w7700' })
    const inv = track(
      createGpuInventory({
        spec: { kind: 'driver', driver: 'amd-smi' },
        run: createSpawnRunner({ env: h.env }),
        sampleIntervalMs: 3_600_000,
      }),
    )
    await inv.start()
    expect(h.calls()).toEqual([
      'amd-smi static --asic --bus --vram --json',
      'amd-smi metric --usage --mem-usage --temperature --power --json',
    ])
    expect(inv.snapshot().devices[0]).toMatchObject({
      model: 'AMD Radeon PRO W7700',
      utilizationPct: 42,
      healthy: true,
    })
    h.set('amd-smi', 'amd-smi/no-driver')
    const down = await inv.sampleNow()
    expect(down.driverReason).toContain('exited 255')
    expect(down.devices[0]!.healthy).toBe(false)
    await inv.stop()
  })

  it('finds no GPUs when no tool is on PATH', async () => {
    const bin = makeTempDir('gpu-empty-')
    const inv = track(
      createGpuInventory({ spec: { kind: 'auto' }, run: createSpawnRunner({ env: { PATH: bin } }) }),
    )
    await inv.start()
    expect(inv.snapshot()).toMatchObject({ driver: null, devices: [] })
    await inv.stop()
  })

  it('kills a hung tool and its children at the timeout and marks the GPUs down; the GPUs come back after', async () => {
    const hang = makeTempDir('gpu-hang-')
    writeFileSync(join(hang, 'query.hang'), '')
    const h = host({ 'nvidia-smi': 'nvidia-smi/a100x8-healthy' })
    const inv = track(
      createGpuInventory({
        spec: { kind: 'auto' },
        run: createSpawnRunner({ env: h.env }),
        commandTimeoutMs: 500,
        sampleIntervalMs: 3_600_000,
      }),
    )
    await inv.start()
    h.set('nvidia-smi', hang)
    const hung = await inv.sampleNow()
    expect(hung.driverReason).toBe('nvidia-smi did not answer within 500 ms and was killed')
    expect(hung.devices.every((d) => !d.healthy)).toBe(true)
    const pids = readFileSync(join(h.bin, 'hang.pids'), 'utf8').trim().split('\n').map(Number)
    expect(pids).toHaveLength(2) // the script and its `sleep`
    await waitFor(() => pids.every((p) => !isProcessAlive(p)), { what: 'the hung tool and its child to die' })
    h.set('nvidia-smi', 'nvidia-smi/a100x8-healthy')
    expect((await inv.sampleNow()).devices.every((d) => d.healthy)).toBe(true)
    await inv.stop()
  })
})

describe('the spawn runner', () => {
  it('kills a command that prints more than outputBytesMax', async () => {
    const bin = makeTempDir('gpu-big-')
    writeFileSync(join(bin, 'big'), '#!/bin/sh\nwhile :; do echo 0123456789abcdef0123456789abcdef; done\n', {
      mode: 0o755,
    })
    const run = createSpawnRunner({ env: { PATH: `${bin}:/usr/bin:/bin` } })
    expect(await run('big', [], { timeoutMs: 10_000, outputBytesMax: 64 * 1024 })).toEqual({
      kind: 'too-large',
      outputBytesMax: 65536,
    })
  })

  it('answers busy instead of starting more processes than liveChildrenMax, and aborts on the signal', async () => {
    const hang = makeTempDir('gpu-busy-')
    writeFileSync(join(hang, 'query.hang'), '')
    const h = host({ 'nvidia-smi': hang })
    const run = createSpawnRunner({ env: h.env, liveChildrenMax: 1 })
    const ac = new AbortController()
    const first = run('nvidia-smi', ['--query-gpu=index'], {
      timeoutMs: 60_000,
      outputBytesMax: 1024,
      signal: ac.signal,
    })
    await waitFor(() => readFileSync(join(h.bin, 'calls.log'), 'utf8').includes('nvidia-smi'), {
      what: 'the first run to start',
    })
    expect(await run('nvidia-smi', ['-L'], { timeoutMs: 60_000, outputBytesMax: 1024 })).toEqual({
      kind: 'busy',
      liveChildren: 1,
    })
    ac.abort()
    expect(await first).toEqual({ kind: 'aborted' })
    // Once the killed process is reaped, runs start again.
    await waitFor(
      async () => (await run('true', [], { timeoutMs: 5_000, outputBytesMax: 1024 })).kind === 'exited',
      {
        what: 'the runner to accept runs again',
      },
    )
  })

  it('reports a missing executable as missing', async () => {
    const run = createSpawnRunner({ env: { PATH: makeTempDir('gpu-none-') } })
    expect(await run('nvidia-smi', ['-L'], { timeoutMs: 5_000, outputBytesMax: 1024 })).toMatchObject({
      kind: 'missing',
    })
  })
})
