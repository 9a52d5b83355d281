/**
 * Works around a memory leak in `xsalsa20` 1.2.0 (the cipher of @libp2p/pnet's private network):
 * every cipher instance keeps a view of the shared WebAssembly memory, and when one instance grows the
 * memory the others' views are detached (length 0); each of those then "reallocs" by growing the memory
 * again by its whole working size on its next update. With several connections carrying bulk data
 * (block pipelines) the memory grows on nearly every packet until `WebAssembly.Memory.grow()` fails
 * with "Maximum memory size exceeded" and the process dies. The patch refreshes a detached view with
 * `grow(0)` (which replaces the buffer without adding pages) before each update, so memory only grows
 * when a packet really needs more.
 */
import { createRequire } from 'node:module'

interface WasmXor {
  _memory?: Uint8Array
  realloc?(size: number): void
}
interface XSalsa20Ctor {
  prototype: { update(this: { _xor?: WasmXor }, input: Uint8Array, output?: Uint8Array): Uint8Array }
  __hopsdPatched?: boolean
}

export function patchPnetCipherMemory(): boolean {
  try {
    const pnetRequire = createRequire(import.meta.resolve('@libp2p/pnet'))
    const XSalsa20 = pnetRequire('xsalsa20') as XSalsa20Ctor
    if (XSalsa20.__hopsdPatched) return true
    const update = XSalsa20.prototype.update
    XSalsa20.prototype.update = function (input, output) {
      const x = this._xor
      if (x?._memory !== undefined && x._memory.length === 0 && typeof x.realloc === 'function') x.realloc(0)
      return update.call(this, input, output)
    }
    XSalsa20.__hopsdPatched = true
    return true
  } catch {
    return false
  }
}

patchPnetCipherMemory()
