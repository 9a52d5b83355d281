// `hopsd serving-runtime onnx`: the ONNX host process of a model replica (src/serving/runtimes/onnx),
// started by the serving role with its channel on fd 3 — not a command for people, and not in --help. In
// the single binary it is how the host runs: this same executable, loading ONNX Runtime's native library
// from the addon cache. Started by hand (no channel) it says so and exits 2.
import { ConfigError } from '../node/index.js'
import { RUNTIME_HOST_SUBCOMMAND, hasHostChannel, runOnnxHost } from '../serving/index.js'
import { EXIT_OK, reportError, type CliIo } from './output.js'

export async function runServingRuntime(args: readonly string[], io: CliIo): Promise<number> {
  if (args.length !== 1 || args[0] !== 'onnx') {
    return reportError(
      io,
      new ConfigError(
        'UNKNOWN_FLAG',
        `usage: hopsd ${RUNTIME_HOST_SUBCOMMAND} onnx (started by the serving role)`,
      ),
    )
  }
  if (!hasHostChannel()) {
    return reportError(
      io,
      new ConfigError(
        'UNKNOWN_COMMAND',
        `hopsd ${RUNTIME_HOST_SUBCOMMAND} runs a model replica's runtime and is started by the serving role with its channel on fd 3, not by hand`,
      ),
    )
  }
  await runOnnxHost()
  return EXIT_OK
}
