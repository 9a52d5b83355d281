/**
 * A periodic task for background work (the metadata leader's reconcile, the block manager's
 * reconcile, datanode heartbeats, the block scanner): runs `tick` every `intervalMs`, one run at a time
 * (the next is scheduled after the previous settles, so a slow tick never overlaps itself), reports
 * failures through `onError` and never throws. `stop()` waits for a run in progress, so nothing of
 * the owner runs after its stop returns.
 */
export interface PeriodicInit {
  readonly intervalMs: number
  /** Delay of the first run (default 0). */
  readonly firstDelayMs?: number
  readonly tick: (signal: AbortSignal) => Promise<void>
  /** Called for a failed run, except when the failure comes from stopping. */
  readonly onError: (err: unknown) => void
  /**
   * Where the delays are scheduled (default: the process's timers). Any `Clock` of the areas fits
   * (src/consensus Clock): a simulator passes its virtual one.
   */
  readonly timers?: PeriodicTimers
}

/** The part of a Clock a Periodic uses. */
export interface PeriodicTimers {
  setTimeout(fn: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
}

const processTimers: PeriodicTimers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
}

export class Periodic {
  readonly #init: PeriodicInit
  readonly #timers: PeriodicTimers
  readonly #abort = new AbortController()
  #timer: unknown
  #running: Promise<void> | undefined

  constructor(init: PeriodicInit) {
    this.#init = init
    this.#timers = init.timers ?? processTimers
  }

  /** True once stop() was called: long ticks check it to end early. */
  get stopping(): boolean {
    return this.#abort.signal.aborted
  }

  start(): void {
    const signal = this.#abort.signal
    const run = (): void => {
      if (signal.aborted) return
      this.#running = this.#init
        .tick(signal)
        .catch((err: unknown) => {
          if (!signal.aborted) this.#init.onError(err)
        })
        .finally(() => {
          this.#running = undefined
          if (!signal.aborted) this.#timer = this.#timers.setTimeout(run, this.#init.intervalMs)
        })
    }
    this.#timer = this.#timers.setTimeout(run, this.#init.firstDelayMs ?? 0)
  }

  async stop(): Promise<void> {
    this.#abort.abort()
    if (this.#timer !== undefined) this.#timers.clearTimeout(this.#timer)
    await this.#running
  }
}
