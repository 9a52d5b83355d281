// The --gpus setting: its grammar (src/gpu/spec.ts) and how the config table reads it from a flag,
// HOPSD_GPUS and the config file, refusing bad values with BAD_GPU_SPEC at the edge.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { formatGpuSpec, GpuError, parseGpuSpec } from '../../src/gpu/index.js'
import { ConfigError, resolveConfig } from '../../src/node/index.js'
import { makeTempDir, removeTempDirs } from '../helpers/index.js'

afterAll(removeTempDirs)

function gpuErrorOf(fn: () => unknown): GpuError {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(GpuError)
    return err as GpuError
  }
  throw new Error('expected a GpuError')
}

describe('parseGpuSpec', () => {
  it('reads the keywords and the drivers', () => {
    expect(parseGpuSpec('auto')).toEqual({ kind: 'auto' })
    expect(parseGpuSpec(' none ')).toEqual({ kind: 'none' })
    expect(parseGpuSpec('nvidia-smi')).toEqual({ kind: 'driver', driver: 'nvidia-smi' })
    expect(parseGpuSpec('rocm-smi')).toEqual({ kind: 'driver', driver: 'rocm-smi' })
    expect(parseGpuSpec('amd-smi')).toEqual({ kind: 'driver', driver: 'amd-smi' })
  })

  it('reads declared:COUNT[:MODEL[:MEMORY_MIB]]', () => {
    expect(parseGpuSpec('declared:2')).toEqual({
      kind: 'declared',
      gpus: [
        { model: 'declared GPU', memoryMiB: null, uuid: null, vendor: 'nvidia' },
        { model: 'declared GPU', memoryMiB: null, uuid: null, vendor: 'nvidia' },
      ],
    })
    const spec = parseGpuSpec('declared:3:NVIDIA A100-SXM4-80GB:81920')
    expect(spec.kind === 'declared' && spec.gpus).toHaveLength(3)
    expect(spec.kind === 'declared' && spec.gpus[2]).toEqual({
      model: 'NVIDIA A100-SXM4-80GB',
      memoryMiB: 81920,
      uuid: null,
      vendor: 'nvidia',
    })
    expect(formatGpuSpec(spec)).toBe('declared:3:NVIDIA A100-SXM4-80GB:81920')
  })

  it('reads a list of declared GPUs (the config file form)', () => {
    expect(
      parseGpuSpec([
        { model: 'AMD Instinct MI300X', 'memory-mib': 196592, uuid: 'GPU-d4c4a2b1e39f6c01', vendor: 'amd' },
        { memoryMiB: '1024' },
      ]),
    ).toEqual({
      kind: 'declared',
      gpus: [
        { model: 'AMD Instinct MI300X', memoryMiB: 196592, uuid: 'GPU-d4c4a2b1e39f6c01', vendor: 'amd' },
        { model: 'declared GPU', memoryMiB: 1024, uuid: null, vendor: 'nvidia' },
      ],
    })
  })

  it.each([
    ['', /is not one of none, auto/],
    ['gpu', /'gpu' is not one of/],
    ['nvidia', /'nvidia' is not one of/],
    ['declared', /expected declared:COUNT\[:MODEL\[:MEMORY_MIB\]\]/],
    ['declared:0', /COUNT must be an integer in 1..64 \(use 'none' for no GPUs\)/],
    ['declared:-1', /COUNT must be/],
    ['declared:65', /COUNT must be/],
    ['declared:2.5', /COUNT must be/],
    ['declared:two', /COUNT must be/],
    ['declared:2:', /MODEL must be 1..128 printable characters/],
    ['declared:2:A100:80GB', /MEMORY_MIB must be an integer .* \(MiB, no unit\)/],
    ['declared:2:A100:0', /MEMORY_MIB must be/],
    ['declared:2:A100:81920:x', /a model may not contain ':'/],
    ['declared:2:A\u0007:1', /MODEL must be/],
  ])('refuses %j', (text, message) => {
    const err = gpuErrorOf(() => parseGpuSpec(text))
    expect(err.code).toBe('BAD_GPU_SPEC')
    expect(err.message).toMatch(message)
  })

  it.each([
    [[], /1..64 entries, got 0/],
    [Array.from({ length: 65 }, () => ({})), /1..64 entries, got 65/],
    [['declared:2'], /expected a mapping/],
    [[{ modle: 'x' }], /unknown key 'modle'/],
    [[{ vendor: 'intel' }], /vendor must be nvidia or amd/],
    [[{ uuid: 'GPU-1' }, { uuid: 'GPU-1' }], /'GPU-1' is declared twice/],
    [[{ uuid: 'a b' }], /uuid 'a b' must be/],
    [[{ 'memory-mib': -5 }], /MEMORY_MIB must be/],
    [42, /got 42/],
    [{ model: 'x' }, /got a mapping/],
  ])('refuses the list or value %j', (raw, message) => {
    const err = gpuErrorOf(() => parseGpuSpec(raw))
    expect(err.code).toBe('BAD_GPU_SPEC')
    expect(err.message).toMatch(message)
  })
})

describe('--gpus in the config table', () => {
  it('defaults to auto', () => {
    expect(resolveConfig({ cwd: '/srv' }).gpus).toEqual({ kind: 'auto' })
  })

  it('reads the flag, HOPSD_GPUS and the file, flags first', () => {
    const dir = makeTempDir('gpus-config-')
    const file = join(dir, 'hopsd.yaml')
    writeFileSync(
      file,
      'gpus:\n  - model: NVIDIA H100 80GB HBM3\n    memory-mib: 81559\n    uuid: GPU-00000000-0000-0000-0000-000000000000\n',
    )
    expect(resolveConfig({ cwd: dir, env: { HOPSD_GPUS: 'declared:2' } }).gpus).toMatchObject({
      kind: 'declared',
      gpus: [{}, {}],
    })
    expect(resolveConfig({ cwd: dir, configFile: file, env: { HOPSD_GPUS: 'declared:2' } }).gpus).toEqual({
      kind: 'declared',
      gpus: [
        {
          model: 'NVIDIA H100 80GB HBM3',
          memoryMiB: 81559,
          uuid: 'GPU-00000000-0000-0000-0000-000000000000',
          vendor: 'nvidia',
        },
      ],
    })
    expect(resolveConfig({ cwd: dir, configFile: file, flags: { gpus: 'none' } }).gpus).toEqual({
      kind: 'none',
    })
  })

  it('refuses a bad value with BAD_GPU_SPEC, naming where it came from', () => {
    const codeAndMessage = (fn: () => unknown): [string, string] => {
      try {
        fn()
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError)
        return [(err as ConfigError).code, (err as Error).message]
      }
      throw new Error('expected a ConfigError')
    }
    expect(codeAndMessage(() => resolveConfig({ cwd: '/', flags: { gpus: 'declared:0' } }))).toEqual([
      'BAD_GPU_SPEC',
      "--gpus: 'declared:0': COUNT must be an integer in 1..64 (use 'none' for no GPUs)",
    ])
    const [code, message] = codeAndMessage(() => resolveConfig({ cwd: '/', env: { HOPSD_GPUS: 'cuda' } }))
    expect(code).toBe('BAD_GPU_SPEC')
    expect(message).toMatch(/^HOPSD_GPUS: 'cuda' is not one of none, auto/)
  })

  it('on a node without the gpu role: auto and none find nothing, a driver or declared GPUs are refused', () => {
    expect(resolveConfig({ cwd: '/', flags: { roles: 'metadata' } }).gpus).toEqual({ kind: 'auto' })
    expect(resolveConfig({ cwd: '/', flags: { roles: 'metadata', gpus: 'none' } }).gpus).toEqual({
      kind: 'none',
    })
    for (const gpus of ['declared:2', 'nvidia-smi']) {
      let caught: unknown
      try {
        resolveConfig({ cwd: '/', flags: { roles: 'metadata,datanode', gpus } })
      } catch (err) {
        caught = err
      }
      expect(caught).toBeInstanceOf(ConfigError)
      expect((caught as ConfigError).code).toBe('BAD_GPU_SPEC')
      expect((caught as Error).message).toContain(
        `--gpus ${gpus} needs the gpu role (--roles is metadata,datanode)`,
      )
    }
  })
})
