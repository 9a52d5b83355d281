import {
  createLocalGroup,
  createMetaStateMachine,
  encodeCommand,
  type MetaStateMachine,
} from '../../src/meta/index.js'
import { expect } from 'vitest'
import {
  createFsService,
  isFsError,
  namespaceModule,
  type Caller,
  type FsErrorCode,
  type FsService,
  type Namespace,
} from '../../src/fs/index.js'

export const SU: Caller = { user: 'hopsd', groups: [] }
export const ALICE: Caller = { user: 'alice', groups: ['staff'] }
export const BOB: Caller = { user: 'bob', groups: ['staff'] }
export const EVE: Caller = { user: 'eve', groups: [] }

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s)
export const dec = (b: Uint8Array): string => new TextDecoder().decode(b)

/** A one-replica file system with a controllable clock (ms). */
export function makeFs(startMs = 1_700_000_000_000): {
  sm: MetaStateMachine
  fs: FsService
  clock: { now: number }
  propose(cmd: Parameters<typeof encodeCommand>[0]): Promise<unknown>
} {
  const sm = createMetaStateMachine({ modules: [namespaceModule()] })
  const group = createLocalGroup(sm)
  const clock = { now: startMs }
  const fs = createFsService({ consensus: group, stateMachine: sm, clock: () => clock.now })
  return { sm, fs, clock, propose: (cmd) => group.propose(encodeCommand(cmd)) }
}

/** /home/alice owned by alice (0755), /shared 1777 (sticky, world-writable). */
export async function withUsers(fs: FsService): Promise<void> {
  await fs.mkdirs(SU, '/home/alice')
  await fs.setOwner(SU, '/home/alice', 'alice', 'staff')
  await fs.mkdirs(SU, '/shared', { permission: 0o1777 })
}

/** Awaits `p`, asserts it failed with the typed fs error `code`, and answers the error's message. */
export async function fails(p: Promise<unknown>, code: FsErrorCode): Promise<string> {
  let err: unknown
  try {
    await p
  } catch (e) {
    err = e
  }
  expect(isFsError(err) ? err.code : err).toBe(code)
  return (err as Error).message
}

/** The namespace module of a state machine. */
export const nsOf = (sm: MetaStateMachine): Namespace => sm.module<Namespace>('fs')
