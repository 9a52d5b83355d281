/**
 * Noise's crypto (@chainsafe/libp2p-noise's default) with one change: the ChaCha20-Poly1305 encryption
 * of a large message returns its ciphertext and tag as a list instead of concatenating them into a new
 * buffer. Noise's transport frames are up to 64 KiB, so the concatenation was one more short-lived
 * 64 KiB buffer per frame on the block pipeline, and such buffers are what drive V8's collections on
 * the data path. The interface allows a list (`ICryptoInterface`); the bytes on the wire are the same.
 */
import { createCipheriv } from 'node:crypto'
import type { ICryptoInterface } from '@chainsafe/libp2p-noise'
import { defaultCrypto } from '@chainsafe/libp2p-noise/crypto'
import { Uint8ArrayList } from 'uint8arraylist'

/** Below this the default uses its WebAssembly implementation (faster for small messages): kept. */
const NATIVE_MIN_BYTES = 1200
const TAG_BYTES = 16

export const noiseCrypto: ICryptoInterface = {
  ...defaultCrypto,
  chaCha20Poly1305Encrypt(plaintext, nonce, ad, k) {
    if (plaintext.byteLength < NATIVE_MIN_BYTES)
      return defaultCrypto.chaCha20Poly1305Encrypt(plaintext, nonce, ad, k)
    const cipher = createCipheriv('chacha20-poly1305', k, nonce, { authTagLength: TAG_BYTES })
    cipher.setAAD(ad, { plaintextLength: plaintext.byteLength })
    const out = new Uint8ArrayList()
    if (plaintext instanceof Uint8Array) out.append(cipher.update(plaintext))
    else for (const b of plaintext) out.append(cipher.update(b))
    const final = cipher.final()
    if (final.byteLength > 0) out.append(final)
    out.append(cipher.getAuthTag())
    // Noise depends on uint8arraylist 2 and this package on 3: the types differ, the objects do not
    // (both mark lists with the same Symbol.for and keep their parts in `bufs`, which is how noise's
    // list appends this one).
    return out as unknown as ReturnType<ICryptoInterface['chaCha20Poly1305Encrypt']>
  },
}
