// The ONNX host's entry when hopsd runs from its sources (`node --import tsx host-main.ts`, started by a
// replica with its channel on fd 3). The single binary starts the same host as `hopsd serving-runtime onnx`.
import { runOnnxHost } from './host.js'

runOnnxHost().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`onnx host: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
    process.exit(1)
  },
)
