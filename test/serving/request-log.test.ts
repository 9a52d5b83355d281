// The request log of deployments (src/serving/request-log.ts): seeded sampling, bounded buffer (drop and
// count), batches per deployment within a byte bound, a refused batch dropped and counted, and records
// whose tensors' data is left out beyond the record's byte bound.
import { describe, expect, it } from 'vitest'
import { createRequestLog, recordLine, type AnsweredRequest } from '../../src/serving/index.js'
import type { Tensor } from '../../src/serving/index.js'
import { createSeededRng } from '../../src/consensus/index.js'

/** A seeded uniform source in [0, 1), from the project's seeded generator. */
function seeded(seed: number): () => number {
  const rng = createSeededRng(seed)
  return () => rng.nextInt(2 ** 31) / 2 ** 31
}

const SEED = Number(process.env['REQUEST_LOG_SEED'] ?? 7)

function tensor(name: string, values: number[]): Tensor {
  return { name, datatype: 'FP32', shape: [1, values.length], data: Float32Array.from(values) }
}

function answered(i: number, extra: Partial<AnsweredRequest> = {}): AnsweredRequest {
  return {
    deployment: 'lin',
    project: 'demo',
    model: 'lin',
    modelVersion: '1',
    replica: 'lin-1',
    node: 'node-abcdefgh',
    id: `r-${i}`,
    status: 200,
    latencyMs: 1.5,
    startMs: 1_700_000_000_000 + i,
    request: { id: `r-${i}`, inputs: [tensor('x', [i, 2, 3])] },
    result: { outputs: [tensor('y', [i * 2, 1])] },
    ...extra,
  }
}

describe('request log', () => {
  it('samples with the injected random source: rate 0 none, 1 all, 0.25 the draws below it', () => {
    let rate = 0.25
    const draws = seeded(SEED)
    const mirror = seeded(SEED)
    const log = createRequestLog({ sink: async () => undefined, sampleRate: () => rate, random: draws })
    let n = 0
    let expected = 0
    for (let i = 0; i < 1000; i++) {
      if (log.sampled('lin')) n++
      if (mirror() < 0.25) expected++
    }
    expect(n, `seed ${SEED}`).toBe(expected)
    expect(n).toBeGreaterThan(150)
    expect(n).toBeLessThan(350)
    rate = 0
    expect(Array.from({ length: 100 }, () => log.sampled('lin')).some(Boolean)).toBe(false)
    rate = 1
    expect(Array.from({ length: 100 }, () => log.sampled('lin')).every(Boolean)).toBe(true)
  })

  it('writes JSON lines per deployment in order, in batches within the byte bound', async () => {
    const calls: { target: string; lines: string }[] = []
    const log = createRequestLog({
      sink: async (t, lines) => void calls.push({ target: `${t.project}/${t.deployment}`, lines }),
      sampleRate: () => 1,
      batchBytesMax: 1000,
    })
    for (let i = 0; i < 10; i++) log.record(answered(i))
    log.record(answered(10, { deployment: 'other' }))
    await log.flush()
    expect(log.stats()).toMatchObject({ written: 11, buffered: 0, droppedFull: 0, droppedFailed: 0 })
    expect(calls.length).toBeGreaterThan(2) // ~300 bytes a line: several batches of lin
    for (const c of calls) expect(c.lines.length).toBeLessThanOrEqual(1000)
    const lin = calls
      .filter((c) => c.target === 'demo/lin')
      .flatMap((c) => c.lines.trimEnd().split('\n'))
      .map((l) => JSON.parse(l))
    expect(lin.map((r) => r.requestId)).toEqual(Array.from({ length: 10 }, (_, i) => `r-${i}`))
    expect(lin[3]).toMatchObject({
      deployment: 'lin',
      project: 'demo',
      modelVersion: '1',
      replica: 'lin-1',
      status: 200,
      latencyMs: 1.5,
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], data: [3, 2, 3] }],
      outputs: [{ name: 'y', datatype: 'FP32', shape: [1, 2], data: [6, 1] }],
    })
    expect(calls.filter((c) => c.target === 'demo/other')).toHaveLength(1)
  })

  it('drops and counts records beyond the buffer bound and batches the sink refuses', async () => {
    let refuse = true
    const log = createRequestLog({
      sink: async () => {
        if (refuse) throw new Error('refused')
      },
      sampleRate: () => 1,
      bufferRecordsMax: 5,
    })
    for (let i = 0; i < 8; i++) log.record(answered(i))
    expect(log.stats()).toMatchObject({ buffered: 5, droppedFull: 3 })
    await log.flush()
    expect(log.stats()).toMatchObject({ buffered: 0, droppedFailed: 5, written: 0 })
    refuse = false
    log.record(answered(9))
    await log.flush()
    expect(log.stats()).toMatchObject({ written: 1, droppedFailed: 5, droppedFull: 3 })
  })

  it('keeps shapes but leaves data out beyond the record bound; errors and made-up ids are recorded', () => {
    const big = Array.from({ length: 5000 }, (_, i) => i)
    const line = recordLine(
      answered(1, {
        id: undefined,
        request: { inputs: [tensor('x', big)] },
        result: undefined,
        status: 400,
        error: 'TENSOR_SHAPE_INVALID: bad',
      }),
      2048,
      () => 'made-1',
    )
    expect(line.length).toBeLessThanOrEqual(2048)
    expect(line.endsWith('\n')).toBe(true)
    const r = JSON.parse(line)
    expect(r).toMatchObject({
      requestId: 'made-1',
      status: 400,
      error: 'TENSOR_SHAPE_INVALID: bad',
      dataOmitted: true,
    })
    expect(r.inputs).toEqual([{ name: 'x', datatype: 'FP32', shape: [1, 5000] }])
    expect(r.outputs).toBeUndefined()
  })
})
