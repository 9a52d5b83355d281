/**
 * Protocol Buffers wire format over a stream of byte pieces, for messages too large to hold whole (a
 * snapshot of a large namespace): read field by field from pieces of any size, and write a field's
 * header in front of bytes written separately. Only what snapshots need: varints and length-delimited
 * fields (wire types 0 and 2); protobufjs decodes each bounded sub-message.
 */

/** Wire types. */
export const WIRE_VARINT = 0
export const WIRE_LEN = 2

/** The varint encoding of a non-negative safe integer. */
export function encodeVarint(n: number): Uint8Array {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`varint: ${n}`)
  const out: number[] = []
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80)
    n = Math.floor(n / 0x80)
  }
  out.push(n)
  return Uint8Array.from(out)
}

/** A field's tag (and the length of a length-delimited one): what precedes its bytes. */
export function fieldHeader(field: number, wireType: number, length?: number): Uint8Array {
  const tag = encodeVarint(field * 8 + wireType)
  return length === undefined ? tag : joined(tag, encodeVarint(length))
}

/** A varint field whole (tag and value). */
export function varintField(field: number, value: number): Uint8Array {
  return joined(fieldHeader(field, WIRE_VARINT), encodeVarint(value))
}

/** A length-delimited field whole (tag, length, bytes). */
export function lenField(field: number, bytes: Uint8Array): Uint8Array {
  return joined(fieldHeader(field, WIRE_LEN, bytes.length), bytes)
}

function joined(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length)
  out.set(a)
  out.set(b, a.length)
  return out
}

/**
 * Reads protobuf fields from pieces of bytes (any split: a field may span pieces). Holds at most the
 * current piece and the bytes one call asks for.
 */
export class ProtoStreamReader {
  private readonly it: AsyncIterator<Uint8Array>
  private buf: Uint8Array = new Uint8Array(0)
  private pos = 0
  private ended = false
  /** Bytes consumed so far (for error messages). */
  offset = 0

  constructor(pieces: AsyncIterable<Uint8Array>) {
    this.it = pieces[Symbol.asyncIterator]()
  }

  /** The next field's number and wire type, or undefined at the end of the stream. */
  async nextField(): Promise<{ field: number; wireType: number } | undefined> {
    if (!(await this.fill())) return undefined
    const tag = await this.varint()
    return { field: Math.floor(tag / 8), wireType: tag % 8 }
  }

  async varint(): Promise<number> {
    let n = 0
    let mul = 1
    for (let i = 0; i < 8; i++) {
      const b = await this.byte()
      n += (b & 0x7f) * mul
      if ((b & 0x80) === 0) return n
      mul *= 0x80
    }
    throw new Error(`protobuf stream: varint too long at ${this.offset}`)
  }

  /** Exactly `n` bytes (a new array, or a view of the current piece when it holds them all). */
  async bytes(n: number): Promise<Uint8Array> {
    if (this.buf.length - this.pos >= n) return this.take(n)
    const out = new Uint8Array(n)
    let got = 0
    while (got < n) {
      if (!(await this.fill())) throw new Error(`protobuf stream: ended inside a field at ${this.offset}`)
      const part = this.take(Math.min(n - got, this.buf.length - this.pos))
      out.set(part, got)
      got += part.length
    }
    return out
  }

  /** `n` bytes in pieces of at most `max` (a field too large to hold whole). */
  async *pieces(n: number, max: number): AsyncIterable<Uint8Array> {
    let left = n
    while (left > 0) {
      if (!(await this.fill())) throw new Error(`protobuf stream: ended inside a field at ${this.offset}`)
      const part = this.take(Math.min(left, max, this.buf.length - this.pos))
      left -= part.length
      yield part
    }
  }

  /** Skips a field of the given wire type (a field this reader's caller does not know). */
  async skip(wireType: number): Promise<void> {
    if (wireType === WIRE_VARINT) await this.varint()
    else if (wireType === WIRE_LEN) for await (const _ of this.pieces(await this.varint(), 1 << 20));
    else if (wireType === 1) await this.bytes(8)
    else if (wireType === 5) await this.bytes(4)
    else throw new Error(`protobuf stream: wire type ${wireType} at ${this.offset}`)
  }

  private take(n: number): Uint8Array {
    const out = this.buf.subarray(this.pos, this.pos + n)
    this.pos += n
    this.offset += n
    return out
  }

  private async byte(): Promise<number> {
    if (!(await this.fill())) throw new Error(`protobuf stream: ended inside a varint at ${this.offset}`)
    this.offset++
    return this.buf[this.pos++]!
  }

  /** True when a byte is available. */
  private async fill(): Promise<boolean> {
    while (this.pos >= this.buf.length) {
      if (this.ended) return false
      const r = await this.it.next()
      if (r.done === true) {
        this.ended = true
        return false
      }
      this.buf = r.value
      this.pos = 0
    }
    return true
  }
}
