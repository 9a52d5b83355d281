// Every captured tool output (fixtures/, see its README) through the real drivers, with the command
// runner injected: what is parsed, what is null (never 0), and what makes GPUs unhealthy with a reason.
import { describe, expect, it } from 'vitest'
import { createGpuInventory, type GpuSnapshot } from '../../src/gpu/index.js'
import {
  NVIDIA_QUERY_ARGS,
  NVIDIA_QUERY_FIELDS,
  parseNvidiaList,
  parseNvidiaQuery,
} from '../../src/gpu/nvidia.js'
import { parseAmdSmiStatic } from '../../src/gpu/amd-smi.js'
import { parseToolJson } from '../../src/gpu/json-output.js'
import { FakeClock, fixtureOutcome, fixtureRunner, FIXTURES, type Tool } from './helpers.js'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

async function discover(
  tool: Tool,
  fixture: string,
): Promise<{ snap: GpuSnapshot; calls: readonly string[] }> {
  const run = fixtureRunner({ [tool]: fixture })
  const inv = createGpuInventory({ spec: { kind: 'driver', driver: tool }, run, clock: new FakeClock() })
  await inv.start()
  const snap = inv.snapshot()
  await inv.stop()
  return { snap, calls: run.calls.map((c) => [c.command, ...c.args].join(' ')) }
}

describe('nvidia-smi', () => {
  it('runs exactly the query of the issue', async () => {
    const { calls } = await discover('nvidia-smi', 'nvidia-smi/a100x8-healthy')
    expect(calls).toEqual([
      'nvidia-smi --query-gpu=index,uuid,name,pci.bus_id,memory.total,memory.used,utilization.gpu,temperature.gpu,power.draw,compute_mode,mig.mode.current,driver_version --format=csv,noheader,nounits',
    ])
  })

  it('parses a healthy 8-GPU host, keyed by UUID, selected by UUID', async () => {
    const { snap } = await discover('nvidia-smi', 'nvidia-smi/a100x8-healthy')
    expect(snap).toMatchObject({
      driver: 'nvidia-smi',
      driverHealthy: true,
      driverReason: null,
      driverVersion: '460.32.03',
    })
    expect(snap.devices).toHaveLength(8)
    expect(snap.devices.map((d) => d.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7])
    expect(snap.devices[0]).toMatchObject({
      uuid: 'GPU-b01e9f90-c60c-4ad1-2052-154833662357',
      vendor: 'nvidia',
      model: 'A100-SXM4-40GB',
      busId: '00000001:00:00.0',
      memoryTotalMiB: 40536,
      memoryUsedMiB: 0,
      utilizationPct: 0,
      temperatureC: 41,
      powerW: 55.63,
      visible: { env: 'CUDA_VISIBLE_DEVICES', value: 'GPU-b01e9f90-c60c-4ad1-2052-154833662357' },
      mig: null,
      healthy: true,
      reason: null,
    })
    expect(snap.devices.every((d) => d.healthy)).toBe(true)
    expect(new Set(snap.devices.map((d) => d.uuid)).size).toBe(8)
  })

  // Captured on a real H200 (fixtures/README.md, `h200-real`): what the driver reads there.
  it('parses a real H200 (driver 580.159.04, MIG Disabled) as one whole GPU, selected by its UUID', async () => {
    const { snap, calls } = await discover('nvidia-smi', 'nvidia-smi/h200-real')
    expect(calls).toEqual([`nvidia-smi ${NVIDIA_QUERY_ARGS.join(' ')}`]) // MIG Disabled: no -L
    expect(snap).toMatchObject({
      driver: 'nvidia-smi',
      driverHealthy: true,
      driverReason: null,
      driverVersion: '580.159.04',
    })
    expect(snap.devices).toHaveLength(1)
    expect(snap.devices[0]).toMatchObject({
      uuid: 'GPU-f322c491-0efb-b99f-be8a-3edfdd2dc950',
      index: 0,
      vendor: 'nvidia',
      model: 'NVIDIA H200',
      busId: '00000000:00:06.0',
      memoryTotalMiB: 143771,
      memoryUsedMiB: 0,
      utilizationPct: 0,
      temperatureC: 37,
      powerW: 86.97,
      visible: { env: 'CUDA_VISIBLE_DEVICES', value: 'GPU-f322c491-0efb-b99f-be8a-3edfdd2dc950' },
      mig: null,
      healthy: true,
      reason: null,
    })
    const dir = join(FIXTURES, 'nvidia-smi/h200-real')
    const query = fixtureOutcome(dir, 'query')
    const rows = parseNvidiaQuery(query.kind === 'exited' ? query.stdout : '')
    expect(rows.ok && rows.value).toEqual([
      {
        index: 0,
        uuid: 'GPU-f322c491-0efb-b99f-be8a-3edfdd2dc950',
        name: 'NVIDIA H200',
        busId: '00000000:00:06.0',
        memoryTotalMiB: 143771,
        memoryUsedMiB: 0,
        utilizationPct: 0,
        temperatureC: 37,
        powerW: 86.97,
        computeMode: 'Default',
        migEnabled: false,
        driverVersion: '580.159.04',
        errors: [],
      },
    ])
    const list = fixtureOutcome(dir, 'list')
    expect(parseNvidiaList(list.kind === 'exited' ? list.stdout : '')).toEqual({
      ok: true,
      value: [{ index: 0, name: 'NVIDIA H200', uuid: 'GPU-f322c491-0efb-b99f-be8a-3edfdd2dc950', mig: [] }],
    })
  })

  it('asks its fields in the order the real driver prints them (the H200 capture with a header)', () => {
    // `--format=csv` of the same query: a header naming each column, units in brackets.
    const [header] = readFileSync(join(FIXTURES, 'nvidia-smi/h200-real/query-csv-header.txt'), 'utf8').split(
      '\n',
    )
    expect(header!.split(', ').map((h) => h.replace(/ \[.*\]$/, ''))).toEqual([...NVIDIA_QUERY_FIELDS])
  })

  it('keeps a model name with spaces whole, and [N/A] as null', async () => {
    const { snap } = await discover('nvidia-smi', 'nvidia-smi/rtx2080super-na')
    expect(snap.devices).toHaveLength(1)
    expect(snap.devices[0]).toMatchObject({
      model: 'NVIDIA GeForce RTX 2080 SUPER',
      memoryTotalMiB: 8192,
      memoryUsedMiB: 211,
      healthy: true,
    })
  })

  it('reads unified-memory [N/A] memory as null, never 0, and a real 0 as 0', async () => {
    const { snap } = await discover('nvidia-smi', 'nvidia-smi/gb10-memory-na')
    expect(snap.devices[0]).toMatchObject({
      model: 'NVIDIA GB10',
      memoryTotalMiB: null,
      memoryUsedMiB: null,
      utilizationPct: 0,
      temperatureC: 35,
      powerW: 11.17,
      healthy: true,
    })
  })

  it('reads [Not Supported] as null, and it is no error', async () => {
    const { snap } = await discover('nvidia-smi', 'nvidia-smi/not-supported')
    expect(snap.devices[0]).toMatchObject({
      utilizationPct: null,
      powerW: null,
      memoryTotalMiB: 8192,
      healthy: true,
      reason: null,
    })
  })

  it('makes a GPU whose fields print [Unknown Error] unhealthy, naming the fields; the others stay healthy', async () => {
    const { snap } = await discover('nvidia-smi', 'nvidia-smi/unknown-error')
    const bad = snap.devices.filter((d) => !d.healthy)
    expect(bad.map((d) => d.index)).toEqual([5])
    expect(bad[0]!.reason).toContain("memory.used is '[Unknown Error]'")
    expect(bad[0]!.reason).toContain("power.draw is '[Unknown Error]'")
    expect(bad[0]!.memoryUsedMiB).toBeNull()
    expect(snap.devices.filter((d) => d.healthy)).toHaveLength(7)
  })

  it('fails the whole reading on a line with the wrong number of fields', async () => {
    const { snap } = await discover('nvidia-smi', 'nvidia-smi/wrong-field-count')
    expect(snap.driverHealthy).toBe(false)
    expect(snap.driverReason).toMatch(/line with 5 fields, expected 12: '2, GPU-0b64e86a/)
    expect(snap.devices).toEqual([]) // nothing trusted at discovery
    const direct = parseNvidiaQuery('0, GPU-1, a, b\n')
    expect(direct.ok).toBe(false)
  })

  it('schedules the MIG instances of a GPU in MIG mode (MIG-<uuid> form), not the GPU', async () => {
    const { snap, calls } = await discover('nvidia-smi', 'nvidia-smi/mig-h100')
    expect(calls).toEqual([`nvidia-smi ${NVIDIA_QUERY_ARGS.join(' ')}`, 'nvidia-smi -L'])
    expect(snap.devices.map((d) => [d.uuid, d.mig?.profile, d.memoryTotalMiB])).toEqual([
      ['MIG-00000000-0000-0000-0000-000000000000', '3g.40gb', 40960],
      ['MIG-00000001-0000-0000-0000-000000000001', '2g.20gb', 20480],
      ['MIG-00000002-0000-0000-0000-000000000002', '1g.10gb', 10240],
      ['MIG-00000003-0000-0000-0000-000000000003', '1g.10gb', 10240],
    ])
    expect(snap.devices[0]).toMatchObject({
      index: 0,
      model: 'NVIDIA H100 80GB HBM3 MIG 3g.40gb',
      utilizationPct: null,
      visible: { env: 'CUDA_VISIBLE_DEVICES', value: 'MIG-00000000-0000-0000-0000-000000000000' },
      mig: { parentUuid: 'GPU-00000000-0000-0000-0000-000000000000', deviceIndex: 0 },
      healthy: true,
    })
  })

  it('reads the older MIG-GPU-<uuid>/<gi>/<ci> form beside whole GPUs', async () => {
    const { snap } = await discover('nvidia-smi', 'nvidia-smi/mig-legacy-a100')
    const whole = snap.devices.filter((d) => d.mig === null)
    const mig = snap.devices.filter((d) => d.mig !== null)
    expect(whole.map((d) => d.index)).toEqual([0, 1, 2, 3])
    expect(whole[1]).toMatchObject({ memoryUsedMiB: 6318, powerW: 37 })
    expect(mig.map((d) => d.uuid)).toEqual([
      'MIG-GPU-fb8bbc70-d551-45f9-43d4-9734f9cddb2c/1/0',
      'MIG-GPU-fb8bbc70-d551-45f9-43d4-9734f9cddb2c/2/0',
      'MIG-GPU-82864c44-d125-bf84-645f-e800925bf730/1/0',
      'MIG-GPU-82864c44-d125-bf84-645f-e800925bf730/2/0',
    ])
    expect(mig[2]).toMatchObject({
      index: 5,
      visible: { env: 'CUDA_VISIBLE_DEVICES', value: 'MIG-GPU-82864c44-d125-bf84-645f-e800925bf730/1/0' },
      mig: { parentUuid: 'GPU-82864c44-d125-bf84-645f-e800925bf730', profile: '3g.20gb', deviceIndex: 0 },
      memoryTotalMiB: 20480,
    })
    // The parents are not schedulable whole.
    expect(snap.devices.some((d) => d.uuid === 'GPU-82864c44-d125-bf84-645f-e800925bf730')).toBe(false)
  })

  it('parses both -L forms directly, and refuses an instance before any GPU', () => {
    const out = fixtureOutcome(join(FIXTURES, 'nvidia-smi/mig-legacy-a100'), 'list')
    const parsed = parseNvidiaList(out.kind === 'exited' ? out.stdout : '')
    expect(parsed.ok && parsed.value.map((g) => g.mig.length)).toEqual([0, 0, 0, 0, 2, 2])
    expect(
      parseNvidiaList('  MIG 1g.5gb Device 0: (UUID: MIG-GPU-abcdef01-0000-0000-0000-000000000000/7/0)\n').ok,
    ).toBe(false)
  })

  it.each([
    [
      'nvidia-smi/exit9-no-driver',
      9,
      'NVIDIA driver is not loaded',
      "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver",
    ],
    [
      'nvidia-smi/exit15-gpu-lost',
      15,
      'fallen off the bus',
      'Unable to determine the device handle for GPU 0000:02:00.0: GPU is lost',
    ],
    [
      'nvidia-smi/exit18-mismatch',
      18,
      'driver/library version mismatch',
      'Failed to initialize NVML: Driver/library version mismatch',
    ],
  ])(
    '%s: exit %i fails the driver with the meaning and the printed text',
    async (fixture, code, meaning, text) => {
      const { snap } = await discover('nvidia-smi', fixture)
      expect(snap.driver).toBe('nvidia-smi')
      expect(snap.driverHealthy).toBe(false)
      expect(snap.driverReason).toContain(`nvidia-smi exited ${code} (`)
      expect(snap.driverReason).toContain(meaning)
      expect(snap.driverReason).toContain(text)
    },
  )
})

describe('rocm-smi', () => {
  it('runs the JSON query with product name, memory, use, temperature, unique id, bus and power', async () => {
    const { calls } = await discover('rocm-smi', 'rocm-smi/rocm6-rx7900xt')
    expect(calls).toEqual([
      'rocm-smi --showproductname --showmeminfo vram --showuse --showtemp --showuniqueid --showbus --showpower --json',
    ])
  })

  it('reads ROCm 5 keys (Card series, Unique ID) and keys the GPU by GPU-<unique id>', async () => {
    const { snap } = await discover('rocm-smi', 'rocm-smi/rocm5-mi250')
    expect(snap).toMatchObject({ driver: 'rocm-smi', driverHealthy: true, driverVersion: '6.2.4' })
    expect(snap.devices).toHaveLength(1) // "system" is not a card
    expect(snap.devices[0]).toMatchObject({
      uuid: 'GPU-719d230578348e8c',
      index: 0,
      vendor: 'amd',
      model: 'AMD INSTINCT MI250 (MCM) OAM AC MBA',
      busId: '0000:2F:00.0',
      memoryTotalMiB: null,
      utilizationPct: 0,
      temperatureC: 32,
      powerW: 89,
      visible: { env: 'ROCR_VISIBLE_DEVICES', value: 'GPU-719d230578348e8c' },
      healthy: true,
    })
  })

  it('reads ROCm 6 keys (Card Series, VRAM bytes); without a unique id it selects by index', async () => {
    const { snap } = await discover('rocm-smi', 'rocm-smi/rocm6-rx7900xt')
    expect(snap.devices[0]).toMatchObject({
      uuid: 'AMD-card0',
      model: 'Radeon RX 7900 XT',
      memoryTotalMiB: 20464,
      memoryUsedMiB: 26,
      utilizationPct: 0,
      temperatureC: null,
      visible: { env: 'ROCR_VISIBLE_DEVICES', value: '0' },
      healthy: true,
    })
  })

  it('matches ROCm 2 keys with a lower-case unit, preferring the edge sensor', async () => {
    const { snap } = await discover('rocm-smi', 'rocm-smi/rocm2-sensors')
    expect(snap.devices[0]).toMatchObject({
      model: 'AMD GPU',
      temperatureC: 77,
      powerW: 222,
      utilizationPct: null,
    })
  })

  it('fails on exit 0 without JSON (no amdgpu driver), with its stderr', async () => {
    const { snap } = await discover('rocm-smi', 'rocm-smi/no-driver')
    expect(snap.driverHealthy).toBe(false)
    expect(snap.driverReason).toBe(
      'rocm-smi printed no JSON: ERROR:root:Driver not initialized (amdgpu not found in modules)',
    )
  })
})

describe('amd-smi', () => {
  it('reads the gpu_data-wrapped form (static, then metric) and keys GPUs by their ASIC serial', async () => {
    const { snap, calls } = await discover('amd-smi', 'amd-smi/wrapped-mi300x')
    expect(calls).toEqual([
      'amd-smi static --asic --bus --vram --json',
      'amd-smi metric --usage --mem-usage --temperature --power --json',
    ])
    expect(snap.devices.map((d) => [d.uuid, d.index, d.utilizationPct, d.memoryUsedMiB, d.powerW])).toEqual([
      ['GPU-d4c4a2b1e39f6c01', 0, 94, 17153, 612],
      ['GPU-5e0b1a77c2d84f93', 1, 0, 284, null],
    ])
    expect(snap.devices[0]).toMatchObject({
      model: 'AMD Instinct MI300X',
      busId: '0000:0c:00.0',
      memoryTotalMiB: 196592,
      temperatureC: null,
      visible: { env: 'ROCR_VISIBLE_DEVICES', value: 'GPU-d4c4a2b1e39f6c01' },
      healthy: true,
    })
  })

  it('reads the bare list form', async () => {
    const { snap } = await discover('amd-smi', 'amd-smi/bare-w7700')
    expect(snap.devices).toHaveLength(1)
    expect(snap.devices[0]).toMatchObject({
      uuid: 'GPU-8a1c3f05b7d2e964',
      model: 'AMD Radeon PRO W7700',
      memoryTotalMiB: 16368,
      memoryUsedMiB: 1131,
      utilizationPct: 42,
      temperatureC: 36,
      powerW: 23,
      healthy: true,
    })
  })

  it('parses a posted wrapped static document (serial in upper case, no VRAM section)', () => {
    const out = fixtureOutcome(join(FIXTURES, 'amd-smi/wrapped-rx7800xt'), 'static')
    const doc = parseToolJson('amd-smi static', out.kind === 'exited' ? out.stdout : '', '')
    expect(doc.ok).toBe(true)
    const parsed = parseAmdSmiStatic(doc.ok ? doc.value : null)
    expect(parsed).toEqual({
      ok: true,
      value: [
        {
          gpu: 0,
          model: 'AMD Radeon RX 7800 XT',
          uuid: 'GPU-4162405e51bb99b0',
          busId: '0000:03:00.0',
          memoryTotalMiB: null,
        },
      ],
    })
  })

  it('skips a warning banner printed before the JSON', () => {
    const doc = parseToolJson(
      'amd-smi metric',
      'WARNING: User is missing the following required groups: render\n[{"gpu": 0}]\n',
      '',
    )
    expect(doc).toEqual({ ok: true, value: [{ gpu: 0 }] })
  })

  it('fails on exit 255 without the amdgpu driver, with its stderr', async () => {
    const { snap } = await discover('amd-smi', 'amd-smi/no-driver')
    expect(snap.driverHealthy).toBe(false)
    expect(snap.driverReason).toBe(
      'amd-smi static exited 255: ERROR:root:Driver not loaded (amdgpu not found in modules)',
    )
  })
})
