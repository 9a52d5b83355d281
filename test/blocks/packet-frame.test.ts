import * as lp from 'it-length-prefixed'
import { Uint8ArrayList } from 'uint8arraylist'
import { describe, expect, it } from 'vitest'
import { packetFrameParts } from '../../src/fs/datanode/index.js'
import { encodeFrame } from '../../src/node/p2p/index.js'
import { hopsd } from '../../src/proto/datanode.js'

describe('pipeline packet frames (encoded without copying the data)', () => {
  it('decode as the length-prefixed Packet they stand for, for any data length and seq', () => {
    for (const len of [0, 1, 127, 128, 300, 16_383, 16_384, 65_536]) {
      for (const seq of [0, 1, 200, 2 ** 31 + 5]) {
        const data = Buffer.alloc(len, (len + seq) & 0xff)
        const parts = packetFrameParts({ seq, data, crc: 0xdeadbeef, last: len === 300 })
        expect(parts[1]).toBe(data) // the data itself is a part: never copied
        // As the libp2p PeerStream sends a frame given in parts (src/node/p2p/peer-network.ts).
        const frame = encodeFrame(new Uint8ArrayList(...parts))
        const frames = [...lp.decode([frame.subarray()])]
        expect(frames).toHaveLength(1)
        const p = hopsd.datanode.Packet.decode(frames[0]!.subarray())
        expect(Number(p.seq)).toBe(seq)
        expect(p.crc).toBe(0xdeadbeef)
        expect(p.last).toBe(len === 300)
        expect(Buffer.from(p.data).equals(data)).toBe(true)
      }
    }
  })
})
