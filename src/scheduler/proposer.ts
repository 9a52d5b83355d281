/**
 * How the scheduler commits job commands: a {@link JobProposer} stamps the time and the principal on a
 * command of the jobs module, proposes it to the metadata group, and resolves with the command's value or
 * rejects with the typed error of the refusal (a {@link SchedError} for the scheduler's codes). The node
 * integration builds one over its Raft group; tests and the bench over createLocalGroup.
 */
import {
  CommandRejected,
  encodeCommand,
  type ConsensusGroup,
  type MetaResult,
  metaProto,
} from '../meta/index.js'
import type { Credentials } from '../auth/index.js'
import { SCHED_ERRORS, SchedError, type SchedErrorCode } from './errors.js'
import type { Clock } from './world.js'

import pb = metaProto.meta

/**
 * Who a command is proposed as: a user (the API's verified principal, src/auth `Principal`, which has
 * this shape) or the node itself.
 */
export interface Caller {
  readonly user: string
  readonly groups: readonly string[]
  /** The project the principal acts in (a project-user; '' or undefined: none). */
  readonly project?: string
  /** The principal is the superuser or in the supergroup (as the API's authentication found). */
  readonly superuser?: boolean
}

/** The operation part of a Command (one of the jobs module's ops). */
export type JobCommand = Omit<pb.Command.$Properties, 'nowMs' | 'user' | 'groups' | 'clientName'>

export interface ProposeCallOpts {
  /** The principal; default the node's own identity (the superuser: placement, reports, reconcile). */
  readonly as?: Caller
  readonly signal?: AbortSignal
  /**
   * The credential the caller authenticated with (the API request's): a node without a metadata replica
   * forwards the command with it, and the metadata node proposes it as the principal it proves.
   */
  readonly credential?: Credentials
}

/**
 * Commits `cmd`; resolves with its value, rejects with the refusal's typed error (nothing changed then),
 * or with the consensus layer's error (NOT_LEADER, TIMEOUT, ...: the command may or may not commit).
 */
export type JobProposer = (cmd: JobCommand, opts?: ProposeCallOpts) => Promise<unknown>

export interface JobProposerInit {
  readonly group: ConsensusGroup
  readonly clock: Clock
  /** The node's identity: the cluster superuser (meta's `superuser` setting, 'hopsd' by default). */
  readonly node: Caller
}

export function createJobProposer(init: JobProposerInit): JobProposer {
  return async (cmd, opts) => {
    const who = opts?.as ?? init.node
    const bytes = encodeCommand({
      ...cmd,
      nowMs: init.clock.now(),
      user: who.user,
      groups: [...who.groups],
      // Acting in a project is another principal: the jobs module decides by it (access.ts).
      project: who.project ?? '',
    })
    const result = (await init.group.propose(bytes, { signal: opts?.signal })) as MetaResult
    if (result.ok) return result.value
    throw errorFromResult(result.code, result.message)
  }
}

/** The typed error of a refused command. */
export function errorFromResult(code: string, message: string): Error {
  if (Object.hasOwn(SCHED_ERRORS, code)) return new SchedError(code as SchedErrorCode, message)
  return new CommandRejected(code, message)
}
