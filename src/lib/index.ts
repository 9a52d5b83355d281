/**
 * Small generic helpers that every area may import (the layer rule in eslint.config.js allows `lib`
 * everywhere). It imports nothing of the project, so it can never close a cycle; a helper belongs
 * here only when more than one area needs it and it knows nothing of any area.
 *
 * @example
 * ```ts
 * import { Periodic } from '../lib/index.js'
 *
 * const loop = new Periodic({
 *   intervalMs: 1_000,
 *   tick: async (signal) => reconcile(signal), // one run at a time; never overlaps itself
 *   onError: (err) => log.warn({ err }, 'reconcile step failed'),
 * })
 * loop.start()
 * await loop.stop() // waits for a run in progress
 * ```
 */
export { Periodic, type PeriodicInit, type PeriodicTimers } from './periodic.js'
export { writeFileAtomic } from './atomic-file.js'
export {
  ProtoStreamReader,
  encodeVarint,
  fieldHeader,
  lenField,
  varintField,
  WIRE_LEN,
  WIRE_VARINT,
} from './proto-stream.js'
