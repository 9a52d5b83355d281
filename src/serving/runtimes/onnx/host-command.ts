/**
 * How a replica starts its ONNX host process. The single binary starts itself with the hidden
 * subcommand `hopsd serving-runtime onnx` (src/cli/serving-runtime.ts), which loads ONNX Runtime's
 * native library from the binary's addon cache; from the sources, Node runs host-main.ts under tsx.
 */
import { createRequire } from 'node:module'
import { isSea } from 'node:sea'
import { fileURLToPath, pathToFileURL } from 'node:url'

/** The CLI subcommand that runs a runtime host: `hopsd serving-runtime onnx`. */
export const RUNTIME_HOST_SUBCOMMAND = 'serving-runtime'

export interface HostCommand {
  readonly command: string
  readonly args: readonly string[]
}

export function defaultOnnxHostCommand(): HostCommand {
  if (isSea()) return { command: process.execPath, args: [RUNTIME_HOST_SUBCOMMAND, 'onnx'] }
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href
  const entry = fileURLToPath(new URL('./host-main.ts', import.meta.url))
  return { command: process.execPath, args: ['--import', tsx, entry] }
}
