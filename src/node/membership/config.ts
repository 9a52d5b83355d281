/**
 * Membership timings, memberlist-style presets with a comment on every knob.
 *
 * Failure detection is heartbeat-based (every node publishes its NodeInfo every `gossipIntervalMs`):
 * a node is `suspect` after `suspectAfterMs` without news and `dead` after `deadAfterMs`. As in
 * Lifeguard, suspicion waits for several missed heartbeats (not one), and a node that was itself stalled
 * (event loop blocked longer than `stallGraceMs` past a tick) doesn't blame peers for the silence it
 * caused: the stalled time is forgiven before judging.
 */
export interface MembershipConfig {
  /** Period of NodeInfo heartbeats on the gossip topic (also published at once on every change). */
  readonly gossipIntervalMs: number
  /** Period of the liveness check (how soon after a threshold a state change is seen). */
  readonly tickMs: number
  /** Silence after which a node is `suspect` (several heartbeats: one lost message is not a failure). */
  readonly suspectAfterMs: number
  /** Silence after which a node is `dead`. */
  readonly deadAfterMs: number
  /** How long `dead` and `left` nodes stay listed before they are forgotten (memberlist's GossipToTheDeadTime). */
  readonly reapAfterMs: number
  /** A tick later than this beyond its schedule means this node stalled: the excess is forgiven. */
  readonly stallGraceMs: number
  /** Deadline of one direct push of our NodeInfo to a newly connected peer. */
  readonly pushTimeoutMs: number
  /** How long a graceful `stop()` spends telling peers we leave. */
  readonly leaveTimeoutMs: number
  /** Most nodes kept in the view; NodeInfos of further unknown nodes are ignored (and counted). */
  readonly membersMax: number
}

/** One data centre / LAN (memberlist DefaultLANConfig-like: detect a failure in ~5-10 s, few false alarms). */
export const MEMBERSHIP_LAN: MembershipConfig = {
  gossipIntervalMs: 1_000, // one small signed message per node per second: negligible for tens of nodes
  tickMs: 250, // state changes are seen within a quarter second of their threshold
  suspectAfterMs: 4_000, // 4 missed heartbeats: a GC pause or a lost packet doesn't raise suspicion
  deadAfterMs: 10_000, // dead after 10 s of silence: Raft and the scheduler act on `dead`, so be sure
  reapAfterMs: 5 * 60_000, // keep the dead visible for 5 minutes so operators see what happened
  stallGraceMs: 1_000, // an event-loop stall beyond 1 s is ours, not the peers'
  pushTimeoutMs: 2_000, // a direct push to a LAN peer takes milliseconds; give up fast and rely on gossip
  leaveTimeoutMs: 1_000, // a graceful stop waits at most 1 s for the LEFT announcement to go out
  membersMax: 1_024, // far beyond any hopsd cluster; bounds memory against a misbehaving peer
}

/** Fast timings for tests on loopback (5 nodes converge in well under a second). */
export const MEMBERSHIP_TEST: MembershipConfig = {
  gossipIntervalMs: 200, // 5 nodes × 5 signed messages/s: cheap even on a loaded 2-core CI machine
  tickMs: 50,
  suspectAfterMs: 1_000,
  deadAfterMs: 2_000,
  reapAfterMs: 60_000,
  stallGraceMs: 500,
  pushTimeoutMs: 1_000,
  leaveTimeoutMs: 500,
  membersMax: 64,
}

/** Rejects settings that can't work, including rules that span fields. Throws RangeError (a bug in the caller). */
export function validateMembershipConfig(c: MembershipConfig): MembershipConfig {
  const positive: (keyof MembershipConfig)[] = [
    'gossipIntervalMs',
    'tickMs',
    'suspectAfterMs',
    'deadAfterMs',
    'reapAfterMs',
    'stallGraceMs',
    'pushTimeoutMs',
    'leaveTimeoutMs',
    'membersMax',
  ]
  for (const k of positive) {
    if (!Number.isFinite(c[k]) || c[k] <= 0)
      throw new RangeError(`membership config: ${k} must be > 0, got ${c[k]}`)
  }
  if (c.suspectAfterMs < 2 * c.gossipIntervalMs) {
    throw new RangeError(
      `membership config: suspectAfterMs (${c.suspectAfterMs}) must be at least 2 × gossipIntervalMs (${c.gossipIntervalMs})`,
    )
  }
  if (c.deadAfterMs <= c.suspectAfterMs) {
    throw new RangeError(
      `membership config: deadAfterMs (${c.deadAfterMs}) must exceed suspectAfterMs (${c.suspectAfterMs})`,
    )
  }
  if (c.tickMs > c.suspectAfterMs / 2) {
    throw new RangeError(`membership config: tickMs (${c.tickMs}) must be at most suspectAfterMs / 2`)
  }
  return c
}
