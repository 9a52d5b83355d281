/**
 * A bounded FIFO (ring buffer). When full, `push` drops by policy and says what it dropped: 'oldest'
 * keeps the newest frames (right for Raft: a newer message supersedes an older one, and Raft
 * retransmits), 'newest' refuses the incoming one (right when order of arrival matters more).
 */
export type DropPolicy = 'oldest' | 'newest'

export class BoundedQueue<T> {
  private readonly items: (T | undefined)[]
  private head = 0
  private size = 0

  constructor(
    readonly capacity: number,
    readonly policy: DropPolicy,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError(`queue capacity must be >= 1, got ${capacity}`)
    this.items = new Array<T | undefined>(capacity)
  }

  get length(): number {
    return this.size
  }

  /** Adds `item`; returns how many items were dropped to respect the bound (0 or 1). */
  push(item: T): number {
    if (this.size === this.capacity) {
      if (this.policy === 'newest') return 1
      this.shift() // make room: the oldest goes
      this.items[(this.head + this.size) % this.capacity] = item
      this.size++
      return 1
    }
    this.items[(this.head + this.size) % this.capacity] = item
    this.size++
    return 0
  }

  shift(): T | undefined {
    if (this.size === 0) return undefined
    const item = this.items[this.head]
    this.items[this.head] = undefined // release the reference
    this.head = (this.head + 1) % this.capacity
    this.size--
    return item
  }

  clear(): number {
    const n = this.size
    while (this.size > 0) this.shift()
    return n
  }
}
