/**
 * Waits until a libp2p stream that refused a `send()` can take more data.
 *
 * Not `stream.onDrain()`: in @libp2p/utils 7 (abstract-message-stream) the promise it returns is made
 * once per stream and never replaced after it resolves, so from the second time a stream fills up
 * `onDrain()` answers at once while `writableNeedsDrain` is still true. A loop that waits on it then
 * spins through microtasks, starving every socket and timer of the process (a surviving node froze
 * while a restarted peer reconnected). This waits for the 'drain' (or 'close') event itself.
 */
import type { Stream } from '@libp2p/interface'

export function waitForDrain(stream: Stream, signal?: AbortSignal): Promise<void> {
  if (!stream.writableNeedsDrain) return Promise.resolve()
  if (stream.status !== 'open') return Promise.reject(new Error(`stream is ${stream.status}`))
  return new Promise<void>((resolve, reject) => {
    const done = (err?: Error): void => {
      stream.removeEventListener('drain', onDrain)
      stream.removeEventListener('close', onClose)
      signal?.removeEventListener('abort', onAbort)
      if (err) reject(err)
      else resolve()
    }
    const onDrain = (): void => done()
    const onClose = (): void => done(new Error('stream closed while waiting for drain'))
    const onAbort = (): void => done(signal?.reason instanceof Error ? signal.reason : new Error('aborted'))
    if (signal?.aborted) return onAbort()
    stream.addEventListener('drain', onDrain)
    stream.addEventListener('close', onClose)
    signal?.addEventListener('abort', onAbort)
  })
}
