/**
 * Bootstrapping the metadata group exactly once.
 *
 * With `--bootstrap-expect N`, metadata nodes wait until N of them see each other; then exactly one Raft
 * group must start, even when every node starts in the same second. Gossip views differ from node to
 * node for a while, so "the lowest id bootstraps" alone could start two groups. The protocol:
 *
 *  1. A node whose Raft storage is empty and that sees at least N live metadata nodes without a cluster
 *     picks the candidate set S = the N lowest ids it sees. Only S[0] (the initiator) acts.
 *  2. The initiator asks every member of S for a *promise*: "I will be bootstrapped into set S by
 *     initiator I with cluster id C". A node grants at most one promise in its life, persisted (fsync)
 *     before it answers, and never once its Raft storage holds state. Re-asking with the same (S, I, C)
 *     gets the same yes, so a retry or a restarted initiator goes on where it stopped.
 *  3. With every promise of S in hand, the initiator bootstraps the group with voters S; the others
 *     learn their membership from the leader's log.
 *  4. Views that differ can make two initiators each hold part of the promises they need, so neither
 *     completes. Ids break the tie: an initiator that learns of a lower-id initiator (a refusal names
 *     whom the refuser promised to, or its own view now shows a lower id) *withdraws*: it marks the
 *     proposal dead — so it can never bootstrap with it — and releases the promises it collected. A node
 *     drops a promise only on release by the initiator it promised to. The lowest initiator never meets
 *     a lower one, so it completes once the views converge.
 *
 * Two different sets would both need a promise from any node they share, so two bootstraps can happen
 * only from disjoint sets, i.e. only when more than 2N-1 metadata nodes start at once with
 * `--bootstrap-expect N` — an operator error that Consul's `bootstrap_expect` shares; we document it.
 * A node with Raft state never bootstraps again, whatever it sees.
 */
import { open, readFile, rename, mkdir, rm } from 'node:fs/promises'
import { dirname } from 'node:path'

export interface BootstrapPromise {
  readonly initiator: string
  readonly voters: readonly string[]
  readonly clusterId: string
}

export interface BootstrapRequest extends BootstrapPromise {
  /** `promise` asks for a promise; `release` gives back one the initiator no longer needs. */
  readonly kind: 'promise' | 'release'
}

export interface BootstrapReply {
  readonly accepted: boolean
  readonly reason: string
  /** On refusal: the initiator this node has promised to, if any. */
  readonly promisedTo?: string
}

/** Durable record of the one promise a node may give. */
export interface PromiseStore {
  load(): Promise<BootstrapPromise | undefined>
  /** Must be durable (fsync) before it resolves: a promise is only as good as its persistence. */
  save(promise: BootstrapPromise): Promise<void>
  /** Forgets the promise (durably). */
  clear(): Promise<void>
}

export interface BootstrapInit {
  readonly selfId: string
  readonly expect: number
  readonly store: PromiseStore
  /** True once the local Raft storage holds any state: then the node never bootstraps. */
  readonly hasRaftState: () => boolean
  /** Live metadata nodes (ids, including self) that report no cluster yet, from the gossip view. */
  readonly candidates: () => readonly string[]
  /** Asks a peer for its promise; rejects on network failure. */
  readonly request: (peerId: string, req: BootstrapRequest, signal?: AbortSignal) => Promise<BootstrapReply>
  /** Creates the group with the given voters (and records the cluster id in the replicated state). */
  readonly bootstrap: (promise: BootstrapPromise) => Promise<void>
  readonly newClusterId: () => string
}

export type BootstrapState =
  | { readonly phase: 'member' }
  | { readonly phase: 'waiting'; readonly reason: string }
  | { readonly phase: 'bootstrapped'; readonly promise: BootstrapPromise }

export class BootstrapCoordinator {
  readonly #init: BootstrapInit
  #promise: BootstrapPromise | undefined
  #loaded = false
  #done = false
  /** Set once the bootstrap callback has been entered: from then on the proposal can't be withdrawn. */
  #bootstrapping = false
  /** Peers that have not yet acknowledged the release of a withdrawn proposal. */
  #releasePending: string[] = []
  #lastWithdrawn: BootstrapPromise | undefined
  /** Serializes promise decisions: two requests must never both see "no promise yet". */
  #lock: Promise<unknown> = Promise.resolve()

  constructor(init: BootstrapInit) {
    if (!Number.isInteger(init.expect) || init.expect < 1)
      throw new RangeError('bootstrap expect must be ≥ 1')
    this.#init = init
  }

  /**
   * The cluster id of the promise this node holds, if any: every voter of the bootstrapped set promised
   * the same one, so whichever of them leads first can record it in the replicated state.
   */
  promisedClusterId(): string | undefined {
    return this.#promise?.clusterId
  }

  /** The responder side: answers an initiator's request. `from` is the authenticated peer. */
  handleRequest(from: string, req: BootstrapRequest): Promise<BootstrapReply> {
    return this.#serialized(async () => {
      if (from !== req.initiator)
        return { accepted: false, reason: 'request does not come from its initiator' }
      const mine = await this.#load()
      if (req.kind === 'release') {
        if (mine === undefined || mine.initiator !== from)
          return { accepted: true, reason: 'nothing to release' }
        if (this.#init.hasRaftState())
          return { accepted: false, reason: 'this node already belongs to a group' }
        await this.#clear()
        return { accepted: true, reason: 'released' }
      }
      if (!req.voters.includes(this.#init.selfId))
        return { accepted: false, reason: 'this node is not in the set' }
      if (this.#init.hasRaftState())
        return { accepted: false, reason: 'this node already belongs to a group' }
      if (mine !== undefined) {
        return samePromise(mine, req)
          ? { accepted: true, reason: 'promised already' }
          : {
              accepted: false,
              reason: `promised to initiator ${mine.initiator} already`,
              promisedTo: mine.initiator,
            }
      }
      await this.#save(req)
      return { accepted: true, reason: 'promised' }
    })
  }

  /**
   * The initiator side: one attempt. Call it on every reconcile tick until it answers `member` or
   * `bootstrapped`; it is idempotent and safe to call concurrently with `handleRequest`.
   */
  async step(signal?: AbortSignal): Promise<BootstrapState> {
    if (this.#done || this.#init.hasRaftState()) {
      this.#done = true
      return { phase: 'member' }
    }
    const { selfId, expect } = this.#init
    if (this.#releasePending.length > 0 && this.#lastWithdrawn !== undefined) {
      await this.#sendReleases(this.#lastWithdrawn, signal)
    }
    const seen = [...new Set(this.#init.candidates())].sort()
    if (!seen.includes(selfId)) {
      seen.push(selfId)
      seen.sort()
    }
    if (seen.length < expect)
      return { phase: 'waiting', reason: `sees ${seen.length} of ${expect} metadata nodes` }
    const voters = seen.slice(0, expect)
    if (voters[0] !== selfId) {
      await this.#withdraw(signal)
      return { phase: 'waiting', reason: `${voters[0]} initiates the bootstrap` }
    }

    const proposal = await this.#serialized(async () => {
      const mine = await this.#load()
      if (mine === undefined) {
        const fresh: BootstrapPromise = { initiator: selfId, voters, clusterId: this.#init.newClusterId() }
        await this.#save(fresh)
        return fresh
      }
      // Keep the set we promised ourselves to, even if the view changed since (a node we counted may be
      // slow now): changing it could strand promises others gave us.
      return mine.initiator === selfId ? mine : undefined
    })
    if (proposal === undefined) return { phase: 'waiting', reason: 'promised to another initiator' }

    const others = proposal.voters.filter((id) => id !== selfId)
    const replies = await Promise.allSettled(
      others.map((id) => this.#init.request(id, { ...proposal, kind: 'promise' }, signal)),
    )
    const refused = replies
      .map((r, i) => ({ id: others[i]!, r }))
      .filter(({ r }) => r.status === 'rejected' || !r.value.accepted)
    if (refused.length > 0) {
      const lower = refused.some(
        ({ r }) => r.status === 'fulfilled' && (r.value.promisedTo ?? selfId) < selfId,
      )
      if (lower) await this.#withdraw(signal)
      const why = refused
        .map(({ id, r }) => `${id}: ${r.status === 'rejected' ? String(r.reason) : r.value.reason}`)
        .join('; ')
      return { phase: 'waiting', reason: `promises missing (${why})` }
    }
    // The decision point: under the lock, so that a concurrent withdrawal and a bootstrap exclude each other.
    const go = await this.#serialized(async () => {
      const mine = await this.#load()
      const ok = mine !== undefined && samePromise(mine, proposal) && !this.#init.hasRaftState()
      if (ok) this.#bootstrapping = true
      return ok
    })
    if (!go)
      return this.#init.hasRaftState() ? { phase: 'member' } : { phase: 'waiting', reason: 'withdrawn' }
    await this.#init.bootstrap(proposal)
    this.#done = true
    return { phase: 'bootstrapped', promise: proposal }
  }

  /** Gives up a proposal this node initiated: it can never bootstrap with it afterwards. */
  async #withdraw(signal?: AbortSignal): Promise<void> {
    const withdrawn = await this.#serialized(async () => {
      const mine = await this.#load()
      if (mine === undefined || mine.initiator !== this.#init.selfId || this.#bootstrapping) return undefined
      await this.#clear()
      return mine
    })
    if (withdrawn === undefined) return
    const others = withdrawn.voters.filter((id) => id !== this.#init.selfId)
    // Best effort: a node that misses the release keeps refusing others until it hears it again — the
    // next withdrawal attempt (or a retry of this one from a later step) repeats it.
    this.#releasePending = [...new Set([...this.#releasePending, ...others])]
    await this.#sendReleases(withdrawn, signal)
  }

  async #sendReleases(proposal: BootstrapPromise, signal?: AbortSignal): Promise<void> {
    const targets = this.#releasePending
    const results = await Promise.allSettled(
      targets.map((id) => this.#init.request(id, { ...proposal, kind: 'release' }, signal)),
    )
    this.#releasePending = targets.filter((_, i) => results[i]!.status === 'rejected')
    this.#lastWithdrawn = proposal
  }

  async #load(): Promise<BootstrapPromise | undefined> {
    if (!this.#loaded) {
      this.#promise = await this.#init.store.load()
      this.#loaded = true
    }
    return this.#promise
  }

  async #clear(): Promise<void> {
    await this.#init.store.clear()
    this.#promise = undefined
    this.#loaded = true
  }

  async #save(promise: BootstrapPromise): Promise<void> {
    await this.#init.store.save(promise)
    this.#promise = promise
    this.#loaded = true
  }

  #serialized<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#lock.then(fn, fn)
    this.#lock = run.catch(() => undefined)
    return run
  }
}

function samePromise(a: BootstrapPromise, b: BootstrapPromise): boolean {
  return (
    a.initiator === b.initiator &&
    a.clusterId === b.clusterId &&
    a.voters.length === b.voters.length &&
    a.voters.every((v, i) => v === b.voters[i])
  )
}

/** A promise store in one JSON file, written atomically (temp file, fsync, rename). */
export function filePromiseStore(path: string): PromiseStore {
  return {
    async load() {
      let text: string
      try {
        text = await readFile(path, 'utf8')
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
        throw err
      }
      const parsed = JSON.parse(text) as BootstrapPromise
      return { initiator: parsed.initiator, voters: [...parsed.voters], clusterId: parsed.clusterId }
    },
    async clear() {
      await rm(path, { force: true })
      await syncDir(dirname(path))
    },
    async save(promise) {
      await mkdir(dirname(path), { recursive: true })
      const tmp = `${path}.tmp`
      const fh = await open(tmp, 'w', 0o600)
      try {
        await fh.writeFile(JSON.stringify(promise))
        await fh.sync()
      } finally {
        await fh.close()
      }
      await rename(tmp, path)
      await syncDir(dirname(path))
    },
  }
}

async function syncDir(path: string): Promise<void> {
  const dir = await open(path, 'r')
  try {
    await dir.sync()
  } finally {
    await dir.close()
  }
}
