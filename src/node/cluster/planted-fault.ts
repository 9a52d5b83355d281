/**
 * A planted fatal apply error, for the test that proves a node whose Raft group dies on a bug in apply
 * reports it on /health and exits non-zero (test/node/fatal.test.ts). Off unless the daemon's own
 * environment names a marker path in `HOPSD_TEST_FAIL_APPLY`; then the state machine throws (as a bug
 * would: not a CommandRejected) when it applies a command on exactly that path.
 *
 * Who can trigger it:
 * - not a remote caller: the marker is read from the daemon's environment once, at start; a request can
 *   only create the path, and the path does nothing unless the node was started with that variable;
 * - not a production build: scripts/build-sea.mjs defines `process.env.HOPSD_TEST_FAIL_APPLY` as
 *   `undefined` in dist/hopsd, so the binary never reads the variable (the check below folds away).
 */
import type { AppliedEntry, StateMachine } from '../../consensus/index.js'
import { metaProto } from '../../meta/index.js'

/** The marker from the environment of a build from the sources; always undefined in dist/hopsd. */
export function plantedApplyFaultPath(): string | undefined {
  // Written out as `process.env.NAME` on purpose: that is the expression the build replaces.
  const marker = process.env.HOPSD_TEST_FAIL_APPLY
  return marker === undefined || marker === '' ? undefined : marker
}

/** What the Raft group drives: `sm` itself, or (with a marker) `sm` whose apply throws on `markerPath`. */
export function withPlantedApplyFault(sm: StateMachine, markerPath: string | undefined): StateMachine {
  if (markerPath === undefined) return sm
  const snapshotLater = sm.snapshotLater?.bind(sm)
  return {
    apply(entries: readonly AppliedEntry[]) {
      for (const e of entries) {
        let path: unknown
        try {
          const cmd = metaProto.meta.Command.decode(e.data)
          const op = cmd.op
          path = op === undefined ? undefined : (cmd[op] as { path?: unknown } | null)?.path
        } catch {
          continue // not a Command: the state machine answers MALFORMED_COMMAND itself
        }
        if (path === markerPath)
          throw new Error(`planted apply failure at entry ${e.index} (HOPSD_TEST_FAIL_APPLY=${markerPath})`)
      }
      return sm.apply(entries)
    },
    snapshot: () => sm.snapshot(),
    restore: (data) => sm.restore(data),
    ...(snapshotLater === undefined ? {} : { snapshotLater }),
  }
}
