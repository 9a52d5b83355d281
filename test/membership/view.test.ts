// The pure membership view: ordering of news, liveness from silence, leave, restart, stall forgiveness.
import { describe, expect, it } from 'vitest'
import {
  EMPTY_CAPACITY,
  MEMBERSHIP_TEST,
  MembershipView,
  validateMembershipConfig,
  type NodeInfo,
} from '../../src/node/membership/index.js'

// Fixed timings, independent of the preset, so expected times below read directly.
const cfg = validateMembershipConfig({
  ...MEMBERSHIP_TEST,
  gossipIntervalMs: 100,
  tickMs: 50,
  suspectAfterMs: 600,
  deadAfterMs: 1_500,
  stallGraceMs: 400,
})

function info(id: string, over: Partial<NodeInfo> = {}): NodeInfo {
  return {
    id,
    zone: 'z1',
    roles: ['metadata'],
    httpAddr: '127.0.0.1:1',
    p2pAddrs: [],
    dataAddr: '',
    version: '0.1.0',
    capacity: EMPTY_CAPACITY,
    state: 'active',
    incarnation: 1_000,
    seq: 1,
    sentAtMs: 0,
    ...over,
  }
}

/** Ticks every tickMs from `from` to `to` (as the real timer would), collecting changes. */
function run(view: MembershipView, from: number, to: number): string[] {
  const out: string[] = []
  for (let t = from; t <= to; t += cfg.tickMs) {
    for (const c of view.tick(t)) out.push(`${t}:${c.id}:${c.kind}:${c.node.liveness}`)
  }
  return out
}

describe('membership view', () => {
  it('lists a node on first news and ignores stale and duplicate news', () => {
    const v = new MembershipView('me', cfg)
    expect(v.ingest(info('a', { seq: 5 }), 0).outcome).toBe('joined')
    expect(v.ingest(info('a', { seq: 5 }), 10).outcome).toBe('stale')
    expect(v.ingest(info('a', { seq: 4, zone: 'z9' }), 20).outcome).toBe('stale')
    expect(v.get('a')?.zone).toBe('z1')
    expect(v.get('a')?.lastSeenMs).toBe(0) // stale news is no evidence of life
    expect(v.ingest(info('a', { seq: 6 }), 30).outcome).toBe('refreshed')
    const upd = v.ingest(info('a', { seq: 7, zone: 'z2' }), 40)
    expect(upd.outcome).toBe('updated')
    expect(upd.changes.map((c) => c.kind)).toEqual(['updated'])
    expect(v.ingest(info('me'), 50).outcome).toBe('self')
    expect(v.staleCount).toBe(2)
  })

  it('suspects after suspectAfterMs and declares dead after deadAfterMs of silence, then revives on news', () => {
    const v = new MembershipView('me', cfg)
    v.ingest(info('a'), 0)
    expect(run(v, 0, 2_000)).toEqual(['600:a:liveness:suspect', '1500:a:liveness:dead'])
    const back = v.ingest(info('a', { seq: 2 }), 2_010)
    expect(back.changes.map((c) => `${c.kind}:${c.node.liveness}:${c.previous}`)).toEqual([
      'liveness:alive:dead',
    ])
  })

  it('never states a dead node as active: its state is unknown while it is dead', () => {
    const v = new MembershipView('me', cfg)
    v.ingest(info('a', { state: 'draining' }), 0)
    run(v, 0, 1_000)
    expect(v.get('a')).toMatchObject({ liveness: 'suspect', state: 'draining' })
    run(v, 1_000, 2_000)
    expect(v.get('a')).toMatchObject({ liveness: 'dead', state: 'unknown' })
    v.ingest(info('a', { seq: 2 }), 2_010)
    expect(v.get('a')).toMatchObject({ liveness: 'alive', state: 'active' })
  })

  it('keeps a heartbeating node alive', () => {
    const v = new MembershipView('me', cfg)
    const changes: string[] = []
    for (let t = 0, seq = 1; t <= 5_000; t += cfg.tickMs) {
      if (t % 100 === 0) v.ingest(info('a', { seq: seq++ }), t)
      changes.push(...v.tick(t).map((c) => c.kind))
    }
    expect(changes).toEqual([])
    expect(v.get('a')?.liveness).toBe('alive')
  })

  it('shows a graceful leave as left (never suspect), and reaps it after reapAfterMs', () => {
    const v = new MembershipView('me', cfg)
    v.ingest(info('a'), 0)
    const left = v.ingest(info('a', { seq: 2, state: 'left' }), 100)
    expect(left.changes.map((c) => `${c.kind}:${c.node.liveness}`)).toEqual(['updated:left', 'liveness:left'])
    expect(run(v, 100, 5_000)).toEqual([])
    expect(v.tick(100 + cfg.reapAfterMs).map((c) => `${c.id}:${c.kind}`)).toEqual(['a:removed'])
    expect(v.list()).toEqual([])
  })

  it('accepts a restarted node: a higher incarnation, or any other incarnation once it is dead', () => {
    const v = new MembershipView('me', cfg)
    v.ingest(info('a', { incarnation: 1_000, seq: 50 }), 0)
    expect(v.ingest(info('a', { incarnation: 2_000, seq: 1 }), 10).outcome).toBe('updated') // a restart is news
    expect(v.ingest(info('a', { incarnation: 1_500, seq: 99 }), 20).outcome).toBe('stale')
    run(v, 20, 2_000)
    expect(v.get('a')?.liveness).toBe('dead')
    // Restarted with its clock set back: still accepted, since the entry is dead.
    expect(v.ingest(info('a', { incarnation: 1_200, seq: 1 }), 2_010).outcome).toBe('updated')
    expect(v.get('a')?.liveness).toBe('alive')
  })

  it('forgives its own stall instead of declaring peers dead (Lifeguard local health)', () => {
    const v = new MembershipView('me', cfg)
    v.ingest(info('a'), 0)
    v.tick(50)
    // Our event loop was blocked for 3 s: the next tick comes late. Peers are not to blame.
    expect(v.tick(3_050).map((c) => c.node.liveness)).toEqual([])
    expect(v.get('a')?.liveness).toBe('alive')
  })

  it('bounds the number of members', () => {
    const v = new MembershipView('me', { ...cfg, membersMax: 2 })
    expect(v.ingest(info('a'), 0).outcome).toBe('joined')
    expect(v.ingest(info('b'), 0).outcome).toBe('joined')
    expect(v.ingest(info('c'), 0).outcome).toBe('full')
  })

  it('rejects inconsistent timings', () => {
    expect(() => validateMembershipConfig({ ...cfg, deadAfterMs: cfg.suspectAfterMs })).toThrow(RangeError)
    expect(() => validateMembershipConfig({ ...cfg, suspectAfterMs: cfg.gossipIntervalMs })).toThrow(
      RangeError,
    )
    expect(() => validateMembershipConfig({ ...cfg, tickMs: 0 })).toThrow(RangeError)
  })
})
