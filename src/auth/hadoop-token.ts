/**
 * WebHDFS delegation tokens in Hadoop's own wire form, so that any Hadoop client can carry them and
 * Hadoop's `Token.decodeFromUrlString` can read them: the URL string is URL-safe base64 without padding
 * (commons-codec `Base64(0, null, true)`) of the `Token` Writable —
 *   vint len, identifier · vint len, password · Text kind · Text service
 * — whose identifier is `AbstractDelegationTokenIdentifier`'s:
 *   byte version (0) · Text owner · Text renewer · Text realUser · vlong issueDate · vlong maxDate ·
 *   vint sequenceNumber · vint masterKeyId
 * (Text = vint length + UTF-8 bytes; vint/vlong = Hadoop's WritableUtils zero-compressed encoding).
 * The password is 32 random bytes; the cluster keeps only its SHA-256 and finds the row by the
 * sequence number.
 */
export interface HadoopTokenIdentifier {
  readonly owner: string
  readonly renewer: string
  readonly realUser: string
  readonly issueDate: number
  readonly maxDate: number
  readonly sequenceNumber: number
  readonly masterKeyId: number
}

export interface HadoopToken {
  readonly identifier: HadoopTokenIdentifier
  readonly password: Uint8Array
  readonly kind: string
  readonly service: string
}

/** Hadoop's kinds for tokens a WebHDFS server hands out (WebHdfsConstants). */
export const WEBHDFS_TOKEN_KIND = 'WEBHDFS delegation'
export const SWEBHDFS_TOKEN_KIND = 'SWEBHDFS delegation'
/** The largest URL string accepted (a real token is ~100 characters). */
export const TOKEN_URL_CHARS_MAX = 1024

export function encodeTokenUrlString(t: HadoopToken): string {
  const w = new WritableOut()
  const id = new WritableOut()
  id.byte(0)
  id.text(t.identifier.owner)
  id.text(t.identifier.renewer)
  id.text(t.identifier.realUser)
  id.vlong(t.identifier.issueDate)
  id.vlong(t.identifier.maxDate)
  id.vlong(t.identifier.sequenceNumber)
  id.vlong(t.identifier.masterKeyId)
  w.bytes(id.finish())
  w.bytes(t.password)
  w.text(t.kind)
  w.text(t.service)
  return Buffer.from(w.finish()).toString('base64url')
}

/** Decodes a URL string; undefined when it is not a well-formed token (never throws). */
export function decodeTokenUrlString(s: string): HadoopToken | undefined {
  if (s.length === 0 || s.length > TOKEN_URL_CHARS_MAX || !/^[A-Za-z0-9_+/=-]+$/.test(s)) return undefined
  try {
    // Hadoop's decoder accepts both alphabets; so does Node's base64url decoder for '-' '_', and base64 for '+' '/'.
    const raw = Buffer.from(s.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, ''), 'base64url')
    const r = new WritableIn(raw)
    const idBytes = r.bytes()
    const password = r.bytes()
    const kind = r.text()
    const service = r.text()
    if (!r.atEnd()) return undefined
    const id = new WritableIn(idBytes)
    if (id.byte() !== 0) return undefined
    const identifier: HadoopTokenIdentifier = {
      owner: id.text(),
      renewer: id.text(),
      realUser: id.text(),
      issueDate: id.vlong(),
      maxDate: id.vlong(),
      sequenceNumber: id.vlong(),
      masterKeyId: id.vlong(),
    }
    if (!id.atEnd()) return undefined
    return { identifier, password: Uint8Array.from(password), kind, service }
  } catch {
    return undefined
  }
}

class WritableOut {
  private readonly parts: number[] = []

  byte(b: number): void {
    this.parts.push(b & 0xff)
  }

  /** WritableUtils.writeVLong (writeVInt is the same encoding). */
  vlong(value: number): void {
    if (!Number.isSafeInteger(value)) throw new RangeError(`vlong ${value} is not a safe integer`)
    let i = BigInt(value)
    if (i >= -112n && i <= 127n) {
      this.byte(Number(i))
      return
    }
    let len = -112
    if (i < 0n) {
      i = ~i
      len = -120
    }
    let tmp = i
    while (tmp !== 0n) {
      tmp >>= 8n
      len--
    }
    this.byte(len)
    const n = len < -120 ? -(len + 120) : -(len + 112)
    for (let idx = n; idx !== 0; idx--) this.byte(Number((i >> BigInt((idx - 1) * 8)) & 0xffn))
  }

  bytes(b: Uint8Array): void {
    this.vlong(b.length)
    for (const x of b) this.parts.push(x)
  }

  text(s: string): void {
    this.bytes(new TextEncoder().encode(s))
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.parts)
  }
}

/** Reads what WritableOut writes; throws RangeError past the end or on absurd lengths. */
class WritableIn {
  private pos = 0
  constructor(private readonly buf: Uint8Array) {}

  byte(): number {
    if (this.pos >= this.buf.length) throw new RangeError('token: unexpected end')
    return this.buf[this.pos++]!
  }

  private signedByte(): number {
    const b = this.byte()
    return b > 127 ? b - 256 : b
  }

  /** WritableUtils.readVLong. */
  vlong(): number {
    const first = this.signedByte()
    if (first >= -112) return first
    const negative = first < -120
    const len = negative ? -(first + 120) : -(first + 112)
    if (len > 8) throw new RangeError('token: vlong too long')
    let i = 0n
    for (let k = 0; k < len; k++) i = (i << 8n) | BigInt(this.byte())
    if (negative) i = ~i
    const n = Number(BigInt.asIntN(64, i))
    if (!Number.isSafeInteger(n)) throw new RangeError('token: vlong out of range')
    return n
  }

  bytes(): Uint8Array {
    const len = this.vlong()
    if (len < 0 || len > this.buf.length - this.pos) throw new RangeError('token: bad length')
    const out = this.buf.subarray(this.pos, this.pos + len)
    this.pos += len
    return out
  }

  text(): string {
    return new TextDecoder('utf-8', { fatal: true }).decode(this.bytes())
  }

  atEnd(): boolean {
    return this.pos === this.buf.length
  }
}
