/**
 * The audit trail of a node: authentication failures, key and token creation and revocation, admin
 * operations and permission denials, each with the caller, its source address, the route, the path and
 * the decision. Every event is written to the node's log (one JSON line, `"audit": true`) and kept in a
 * bounded ring (the newest `eventsMax`) that `GET /api/v1/audit` shows to admins.
 *
 * Per node: an event is recorded by the node that served the request (the edge), so the ring of one
 * node shows what that node saw; the logs of all nodes together are the cluster's trail.
 */
export type AuditKind =
  | 'auth.failure'
  | 'auth.rate-limited'
  | 'access.denied'
  | 'user.add'
  | 'user.remove'
  | 'user.update'
  | 'key.create'
  | 'key.revoke'
  | 'token.create'
  | 'token.renew'
  | 'token.cancel'
  | 'certificate.issue'
  | 'admin.operation'
  | 'node.approve'
  | 'node.revoke'
  | 'join-token.create'
  | 'join-token.delete'
  | 'project.create'
  | 'project.delete'
  | 'project.member.add'
  | 'project.member.remove'
  | 'project.role.change'
  | 'project.dataset.create'
  | 'project.dataset.delete'
  | 'project.share'
  | 'project.unshare'
  | 'project.quota'
  | 'project.cert.issue'
  | 'project.cert.revoke'

export const AUDIT_KINDS: readonly AuditKind[] = [
  'auth.failure',
  'auth.rate-limited',
  'access.denied',
  'user.add',
  'user.remove',
  'user.update',
  'key.create',
  'key.revoke',
  'token.create',
  'token.renew',
  'token.cancel',
  'certificate.issue',
  'admin.operation',
  'node.approve',
  'node.revoke',
  'join-token.create',
  'join-token.delete',
  'project.create',
  'project.delete',
  'project.member.add',
  'project.member.remove',
  'project.role.change',
  'project.dataset.create',
  'project.dataset.delete',
  'project.share',
  'project.unshare',
  'project.quota',
  'project.cert.issue',
  'project.cert.revoke',
]

export interface AuditEvent {
  /** Increasing per node (from 1 at start). */
  readonly seq: number
  readonly timeMs: number
  readonly kind: AuditKind
  readonly decision: 'allow' | 'deny'
  /** The principal, or '' when none was established. */
  readonly user: string
  /** How the principal was authenticated ("key:<id>", ...), or ''. */
  readonly via: string
  /** The client address. */
  readonly source: string
  readonly method: string
  /** The route pattern (`/api/v1/keys/:id`). */
  readonly route: string
  /** The path acted on (a file-system path, a key id, a user name, a setting), or ''. */
  readonly path: string
  /** The error code of a denial or failure, or ''. */
  readonly code: string
  /** A short reason or what was done (never a secret). */
  readonly detail: string
}

export type AuditInput = Omit<AuditEvent, 'seq' | 'timeMs'>

export interface AuditLog {
  record(event: AuditInput): AuditEvent
  /** Events after `afterSeq` (oldest first), at most `limit`, optionally of some kinds only. */
  list(opts?: { afterSeq?: number; limit?: number; kinds?: readonly AuditKind[] }): {
    events: AuditEvent[]
    lastSeq: number
  }
}

export interface AuditLogInit {
  /** Where each event is also written (the node's JSON log). */
  readonly log?: (event: AuditEvent) => void
  /** Events kept (default 10 000). */
  readonly eventsMax?: number
  readonly clock?: () => number
}

export function createAuditLog(init: AuditLogInit = {}): AuditLog {
  const max = init.eventsMax ?? 10_000
  const clock = init.clock ?? Date.now
  const ring: AuditEvent[] = []
  let seq = 0
  return {
    record(input) {
      const event: AuditEvent = { seq: ++seq, timeMs: clock(), ...input }
      ring.push(event)
      if (ring.length > max) ring.splice(0, ring.length - max)
      init.log?.(event)
      return event
    },
    list(opts = {}) {
      const after = opts.afterSeq ?? 0
      const limit = opts.limit ?? 1000
      const events: AuditEvent[] = []
      for (const e of ring) {
        if (e.seq <= after || (opts.kinds !== undefined && !opts.kinds.includes(e.kind))) continue
        if (events.length >= limit) break
        events.push(e)
      }
      return { events, lastSeq: seq }
    },
  }
}
