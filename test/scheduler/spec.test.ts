// Validation of job submissions at the edge (schema + cross-field rules) and the refusal of jobs that
// could never fit, with the reason.
import { describe, expect, it } from 'vitest'
import {
  ResourceView,
  checkFits,
  validateJobSubmission,
  type GpuAd,
  type ResourceAd,
} from '../../src/scheduler/index.js'

/** Two workers: w1 with 8 A100, w2 with 4 H100 and 4 A100 (one of them unhealthy... and one allocated). */
function view(): ResourceView {
  const v = new ResourceView({ clock: { now: () => 0, setTimeout: () => 0, clearTimeout: () => undefined } })
  const gpu = (i: number, model: string, over: Partial<GpuAd> = {}): GpuAd => ({
    uuid: `GPU-${model}-${i}`,
    index: i,
    model,
    memoryMiB: 81920,
    allocated: false,
    healthy: true,
    vendor: 'nvidia',
    ...over,
  })
  const ad = (node: string, gpus: GpuAd[]): ResourceAd => ({
    node,
    zone: 'z1',
    gpus,
    cpus: 64,
    memoryMiB: 1 << 20,
    cpusFree: 64,
    memoryMiBFree: 1 << 20,
    runningJobs: [],
    seq: 1,
    incarnation: 1,
    addr: node,
  })
  v.apply(
    ad(
      'w1',
      [0, 1, 2, 3, 4, 5, 6, 7].map((i) => gpu(i, 'A100', { allocated: i < 2 })),
    ),
  )
  v.apply(
    ad('w2', [
      ...[0, 1, 2, 3].map((i) => gpu(i, 'H100')),
      ...[4, 5, 6, 7, 8].map((i) => gpu(i, 'A100', { healthy: i < 8 })),
    ]),
  )
  return v
}

const ok = { project: 'demo', name: 'train', command: ['python3', 'train.py'], gpus: 1 }

function code(fn: () => unknown): { code?: string; message?: string } {
  try {
    fn()
  } catch (err) {
    return err as { code?: string; message?: string }
  }
  return {}
}

describe('validateJobSubmission', () => {
  it('fills the defaults and sorts env', () => {
    const { project, name, spec } = validateJobSubmission({ ...ok, env: { B: '2', A: '1' } })
    expect(project).toBe('demo')
    expect(name).toBe('train')
    expect(spec).toEqual({
      command: ['python3', 'train.py'],
      script: '',
      env: [
        { name: 'A', value: '1' },
        { name: 'B', value: '2' },
      ],
      gpus: 1,
      gpuModel: '',
      cpus: 0,
      memoryMiB: 0,
      zone: '',
      retries: 0,
      timeoutS: 0,
      tasks: 1,
    })
    expect(
      validateJobSubmission({ project: 'p', name: 'n', script: '/Projects/p/train.py', gpus: 0 }).spec.script,
    ).toBe('/Projects/p/train.py')
  })

  const bad: [string, Record<string, unknown>, RegExp][] = [
    ['negative GPUs', { ...ok, gpus: -1 }, /gpus must be >= 0/],
    ['non-integer GPUs', { ...ok, gpus: 1.5 }, /gpus must be integer/],
    ['GPUs as a string', { ...ok, gpus: '2' }, /gpus must be integer/],
    ['no GPUs field', { project: 'p', name: 'n', command: ['x'] }, /missing field gpus/],
    ['unknown field', { ...ok, gpu: 1 }, /unknown field gpu/],
    ['no command', { project: 'p', name: 'n', gpus: 1 }, /no command/],
    ['command and script', { ...ok, script: '/a.py' }, /not both/],
    ['empty command', { ...ok, command: [] }, /command must NOT have fewer than 1 items/],
    ['empty program', { ...ok, command: [''] }, /command\[0\]/],
    ['relative script', { project: 'p', name: 'n', gpus: 0, script: 'a.py' }, /script must match/],
    ['script with ..', { project: 'p', name: 'n', gpus: 0, script: '/a/../b.py' }, /not a normalized/],
    [
      'reserved env',
      { ...ok, env: { CUDA_VISIBLE_DEVICES: '0' } },
      /CUDA_VISIBLE_DEVICES is set by the scheduler/,
    ],
    ['reserved env prefix', { ...ok, env: { HOPSD_TOKEN: 'x' } }, /HOPSD_TOKEN/],
    ['rendezvous env', { ...ok, env: { RANK: '3' } }, /RANK is set by the scheduler/],
    ['bad env name', { ...ok, env: { 'A-B': '1' } }, /env name/],
    ['non-string env value', { ...ok, env: { A: 1 } }, /env.A must be string/],
    ['bad job name', { ...ok, name: '../x' }, /name must match/],
    ['bad project', { ...ok, project: '' }, /project must match/],
    ['zero tasks', { ...ok, tasks: 0 }, /tasks must be >= 1/],
    ['negative retries', { ...ok, retries: -1 }, /retries must be >= 0/],
    ['fractional timeout', { ...ok, timeoutS: 0.5 }, /timeoutS must be integer/],
    ['not an object', [] as unknown as Record<string, unknown>, /must be object/],
  ]
  it.each(bad)('refuses %s with INVALID_JOB_SPEC', (_what, body, message) => {
    const err = code(() => validateJobSubmission(body))
    expect(err.code).toBe('INVALID_JOB_SPEC')
    expect(err.message).toMatch(message)
  })
})

describe('checkFits', () => {
  // Allocated GPUs count (they free up); unhealthy ones do not.
  const cap = view().capacity()
  const spec = (over: Record<string, unknown>) => validateJobSubmission({ ...ok, ...over }).spec

  it('accepts what the largest node can hold', () => {
    expect(() => checkFits(spec({ gpus: 8 }), cap)).not.toThrow()
    expect(() => checkFits(spec({ gpus: 4, gpuModel: 'H100' }), cap)).not.toThrow()
    expect(() => checkFits(spec({ gpus: 8, tasks: 2 }), cap)).not.toThrow()
  })

  const tooLarge: [string, Record<string, unknown>, RegExp][] = [
    ['more GPUs than any node', { gpus: 9 }, /asks 9 GPUs per task; the largest node has 8/],
    [
      'more of a model than any node',
      { gpus: 5, gpuModel: 'H100' },
      /asks 5 H100 GPUs per task; the largest node has 4/,
    ],
    ['a model nobody has', { gpus: 1, gpuModel: 'MI300X' }, /no worker has a healthy MI300X/],
    ['a gang larger than the cluster', { gpus: 8, tasks: 3 }, /asks 24 GPUs in all; the cluster has 16/],
    ['more CPUs', { cpus: 65 }, /asks 65 CPUs per task; the largest node has 64/],
    ['more memory', { memoryMiB: 1 << 21 }, /MiB per task/],
    ['an unknown zone', { zone: 'z9' }, /no worker in zone z9/],
  ]
  it.each(tooLarge)('refuses %s at once with JOB_TOO_LARGE and the reason', (_what, over, message) => {
    const err = code(() => checkFits(spec(over), cap))
    expect(err.code).toBe('JOB_TOO_LARGE')
    expect(err.message).toMatch(message)
  })

  it('refuses everything when no worker is in the view', () => {
    const err = code(() => checkFits(spec({ gpus: 0 }), { ...cap, nodes: 0 }))
    expect(err.code).toBe('JOB_TOO_LARGE')
  })
})
