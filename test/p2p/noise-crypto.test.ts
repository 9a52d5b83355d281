import { randomBytes } from 'node:crypto'
import { defaultCrypto } from '@chainsafe/libp2p-noise/crypto'
import { describe, expect, it } from 'vitest'
import { noiseCrypto } from '../../src/node/p2p/noise-crypto.js'

const bytes = (x: Uint8Array | { subarray(): Uint8Array }): Buffer => Buffer.from(x.subarray())

describe('noise crypto (ciphertext and tag as a list)', () => {
  it('encrypts to the same bytes as the default, which decrypts them, at every size class', () => {
    const k = randomBytes(32)
    const nonce = randomBytes(12)
    const ad = randomBytes(32)
    for (const n of [0, 1, 1199, 1200, 4096, 65_519]) {
      const plain = randomBytes(n)
      const ours = bytes(noiseCrypto.chaCha20Poly1305Encrypt(plain, nonce, ad, k))
      expect(
        ours.equals(bytes(defaultCrypto.chaCha20Poly1305Encrypt(plain, nonce, ad, k))),
        `${n} bytes`,
      ).toBe(true)
      expect(ours.length).toBe(n + 16)
      expect(bytes(defaultCrypto.chaCha20Poly1305Decrypt(ours, nonce, ad, k)).equals(plain)).toBe(true)
    }
  })
})
