// The ONNX host in a worker thread instead of a child process — for bench/serving-runtime only, which
// measures what the child process costs against it (src/serving runs hosts as child processes).
import { parentPort } from 'node:worker_threads'
import { runOnnxHost, type HostChannel } from '../../src/serving/runtimes/onnx/host.js'

const port = parentPort!
const channel = {
  send: (message: unknown) => port.postMessage(message),
  on: (event: 'message' | 'disconnect', fn: (m?: unknown) => void) =>
    void port.on(event === 'message' ? 'message' : 'close', fn),
} as HostChannel
await runOnnxHost(channel)
