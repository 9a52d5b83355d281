// Progress of a put/get that moves many bytes or files. On a terminal: one bar redrawn in place on
// stderr. Elsewhere (a log, a pipe): a plain line now and then, only if the transfer lasts that long,
// so scripts that finish quickly see nothing. stdout is never touched: `hopsd fs cat` and pipes stay clean.
import { humanBytes } from './format.js'

/** Transfers smaller than both of these show no progress at all. */
export const PROGRESS_BYTES_MIN = 4 * 1024 * 1024
export const PROGRESS_FILES_MIN = 100
/** Bar redraws per second at most. */
const TTY_REDRAW_MS = 100
/** Plain progress lines (not a terminal) at most this often. */
const PLAIN_LINE_MS = 5_000
const BAR_WIDTH = 30

export interface ProgressStream {
  readonly isTTY?: boolean
  readonly columns?: number
  write(s: string): unknown
}

export interface ProgressInit {
  /** The verb shown: `put`, `get`. */
  readonly label: string
  readonly totalBytes: number
  readonly totalFiles: number
  readonly stream?: ProgressStream
  /** Milliseconds clock (injected by tests). */
  readonly now?: () => number
}

export class Progress {
  private bytes = 0
  private files = 0
  private lastDrawMs = 0
  private drawn = false
  private readonly startMs: number
  private readonly enabled: boolean
  private readonly stream: ProgressStream
  private readonly now: () => number

  constructor(private readonly init: ProgressInit) {
    this.stream = init.stream ?? process.stderr
    this.now = init.now ?? Date.now
    this.startMs = this.now()
    this.lastDrawMs = this.startMs
    this.enabled = init.totalBytes >= PROGRESS_BYTES_MIN || init.totalFiles >= PROGRESS_FILES_MIN
  }

  addBytes(n: number): void {
    this.bytes += n
    this.tick()
  }

  fileDone(): void {
    this.files++
    this.tick()
  }

  /** Ends the bar (a final redraw and a newline on a terminal). */
  finish(): void {
    if (!this.enabled) return
    if (this.stream.isTTY === true) {
      if (this.drawn) this.stream.write(`\r${this.line()}\n`)
    } else if (this.drawn) {
      this.stream.write(`${this.plain()}\n`)
    }
  }

  private tick(): void {
    if (!this.enabled) return
    const t = this.now()
    if (this.stream.isTTY === true) {
      if (t - this.lastDrawMs < TTY_REDRAW_MS && this.drawn) return
      this.lastDrawMs = t
      this.drawn = true
      this.stream.write(`\r${this.line()}`)
    } else if (t - this.lastDrawMs >= PLAIN_LINE_MS) {
      this.lastDrawMs = t
      this.drawn = true
      this.stream.write(`${this.plain()}\n`)
    }
  }

  private fraction(): number {
    const { totalBytes, totalFiles } = this.init
    if (totalBytes > 0) return Math.min(1, this.bytes / totalBytes)
    return totalFiles > 0 ? Math.min(1, this.files / totalFiles) : 1
  }

  private rate(): string {
    const s = Math.max(0.001, (this.now() - this.startMs) / 1000)
    return `${humanBytes(this.bytes / s)}/s`
  }

  /** The terminal bar: `put [#####-----]  45% 12.3 M/27.0 M  34/80 files  5.1 M/s`. */
  line(): string {
    const f = this.fraction()
    const filled = Math.round(f * BAR_WIDTH)
    const text =
      `${this.init.label} [${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ` +
      `${String(Math.floor(f * 100)).padStart(3)}% ${humanBytes(this.bytes)}/${humanBytes(this.init.totalBytes)}  ` +
      `${this.files}/${this.init.totalFiles} files  ${this.rate()}`
    const width = this.stream.columns ?? 80
    // Pad over the previous draw; never wider than the terminal, or `\r` would not return to the start.
    return text.slice(0, width - 1).padEnd(Math.min(width - 1, text.length + 2))
  }

  /** The plain line: `hopsd fs put: 45% (12.3 M of 27.0 M, 34 of 80 files, 5.1 M/s)`. */
  plain(): string {
    return (
      `hopsd fs ${this.init.label}: ${Math.floor(this.fraction() * 100)}% (${humanBytes(this.bytes)} of ` +
      `${humanBytes(this.init.totalBytes)}, ${this.files} of ${this.init.totalFiles} files, ${this.rate()})`
    )
  }
}
