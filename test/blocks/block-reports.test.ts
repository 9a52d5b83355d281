import { describe, expect, it } from 'vitest'
import { BlockReporter } from '../../src/fs/datanode/index.js'

const b = (id: number, genStamp = 1, length = 100): { id: number; genStamp: number; length: number } => ({
  id,
  genStamp,
  length,
})

describe('block reports (full, then incremental)', () => {
  it('the first report is full; then only replicas added, changed or deleted since the last answered one', () => {
    const r = new BlockReporter(() => 0)
    const first = r.next([b(1), b(2)])
    expect(first).toMatchObject({ incremental: false, deleted: [] })
    expect(first.blocks.map((x) => x.id)).toEqual([1, 2])
    r.answered(first, false)

    const none = r.next([b(1), b(2)])
    expect(none).toMatchObject({ incremental: true, blocks: [], deleted: [] })
    r.answered(none, false)

    // 3 is new, 2 got a new generation stamp (a new replica under the same id), 1 was deleted
    const delta = r.next([b(2, 2), b(3)])
    expect(delta.incremental).toBe(true)
    expect(delta.blocks.map((x) => [x.id, x.genStamp])).toEqual([
      [2, 2],
      [3, 1],
    ])
    expect(delta.deleted).toEqual([1])
  })

  it('a report the leader never answered is sent again (the difference is still there)', () => {
    const r = new BlockReporter(() => 0)
    r.answered(r.next([b(1)]), false)
    const lost = r.next([b(1), b(2)])
    expect(lost.blocks.map((x) => x.id)).toEqual([2])
    // no answered(): the heartbeat failed
    const again = r.next([b(1), b(2), b(3)])
    expect(again.blocks.map((x) => x.id)).toEqual([2, 3])
  })

  it('a leader asking for a full report gets one next; and one every interval whatever it says', () => {
    let now = 0
    const r = new BlockReporter(() => now, 1000)
    r.answered(r.next([b(1)]), false)
    const inc = r.next([b(1), b(2)])
    expect(inc.incremental).toBe(true)
    r.answered(inc, true) // refused: the leader has no full report from this node in its term
    const full = r.next([b(1), b(2)])
    expect(full.incremental).toBe(false)
    expect(full.blocks.map((x) => x.id)).toEqual([1, 2])
    r.answered(full, false)
    now = 999
    expect(r.next([b(1), b(2)]).incremental).toBe(true)
    now = 1000
    expect(r.next([b(1), b(2)]).incremental).toBe(false)
  })

  it('a replica deleted and written again between two reports is reported again (a new incarnation)', () => {
    const r = new BlockReporter(() => 0)
    r.answered(r.next([{ ...b(1), incarnation: 1 }]), false)
    // Deleted on the leader's order, then copied here again by a re-replication, before the next report.
    const again = r.next([{ ...b(1), incarnation: 2 }])
    expect(again).toMatchObject({ incremental: true, deleted: [] })
    expect(again.blocks.map((x) => x.id)).toEqual([1])
  })
})
