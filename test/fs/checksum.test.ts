import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { crc32c, md5md5crc32c } from '../../src/fs/index.js'

const enc = (s: string): Uint8Array => new TextEncoder().encode(s)

describe('crc32c', () => {
  it('matches the standard check value and RFC 3720 vectors', () => {
    expect(crc32c(enc('123456789'))).toBe(0xe3069283)
    expect(crc32c(new Uint8Array(0))).toBe(0)
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa) // 32 bytes of zeros
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43) // 32 bytes of ones
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i))).toBe(0x46dd794e) // incrementing
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i))).toBe(0x113fdb5c) // decrementing
  })

  it('the word path agrees with a bytewise reference at every alignment and length', () => {
    const reference = (d: Uint8Array): number => {
      let c = ~0
      for (const b of d) {
        c ^= b
        for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1
      }
      return ~c >>> 0
    }
    const data = Uint8Array.from({ length: 300 }, (_, i) => (i * 131 + 17) & 0xff)
    for (let off = 0; off < 8; off++)
      for (const len of [0, 1, 3, 15, 16, 17, 31, 64, 100, 255]) {
        const view = data.subarray(off, off + len)
        expect(crc32c(view), `offset ${off}, length ${len}`).toBe(reference(view))
      }
  })

  it('continues across chunks', () => {
    const data = Uint8Array.from({ length: 1000 }, (_, i) => (i * 7) & 0xff)
    expect(crc32c(data.subarray(300), crc32c(data.subarray(0, 300)))).toBe(crc32c(data))
  })
})

describe('md5md5crc32c (HDFS file checksum)', () => {
  it('empty file: HDFS magic value', () => {
    expect(md5md5crc32c(new Uint8Array(0), 128 << 20)).toEqual({
      algorithm: 'MD5-of-0MD5-of-0CRC32',
      bytes: '00000000' + '0000000000000000' + '70bc8f4b72a86921468bf8e8441dce51',
      length: 28,
    })
  })

  it('one block: MD5 over the CRCs, padded as Hadoop pads it', () => {
    const data = Uint8Array.from({ length: 1300 }, (_, i) => i & 0xff)
    const crcs = Buffer.alloc(12)
    crcs.writeUInt32BE(crc32c(data.subarray(0, 512)), 0)
    crcs.writeUInt32BE(crc32c(data.subarray(512, 1024)), 4)
    crcs.writeUInt32BE(crc32c(data.subarray(1024)), 8)
    const blockMd5 = createHash('md5').update(crcs).digest()
    const fileMd5 = createHash('md5')
      .update(Buffer.concat([blockMd5, Buffer.alloc(16)]))
      .digest('hex')
    const sum = md5md5crc32c(data, 128 << 20)
    expect(sum.algorithm).toBe('MD5-of-0MD5-of-512CRC32C')
    expect(sum.bytes).toBe('00000200' + '0000000000000000' + fileMd5)
    expect(sum.length).toBe(28)
  })

  it('several blocks report crcPerBlock and grow the padding buffer', () => {
    const data = new Uint8Array(3 * 1024 + 10).fill(7)
    const sum = md5md5crc32c(data, 1024)
    expect(sum.algorithm).toBe('MD5-of-2MD5-of-512CRC32C')
    expect(sum.bytes.slice(0, 24)).toBe('00000200' + '0000000000000002')
    const blockMd5 = (b: Uint8Array): Buffer => {
      const crcs = Buffer.alloc(Math.ceil(b.length / 512) * 4)
      for (let i = 0; i * 512 < b.length; i++)
        crcs.writeUInt32BE(crc32c(b.subarray(i * 512, (i + 1) * 512)), i * 4)
      return createHash('md5').update(crcs).digest()
    }
    const md5s = [0, 1, 2, 3].map((i) => blockMd5(data.subarray(i * 1024, (i + 1) * 1024)))
    expect(sum.bytes.slice(24)).toBe(createHash('md5').update(Buffer.concat(md5s)).digest('hex')) // 4×16 = 64 bytes: no padding
  })
})
