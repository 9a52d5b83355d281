// `hopsd --version`
import { VERSION } from '../version.js'
import type { CliIo } from './output.js'

export function runVersion(io: CliIo): number {
  io.out(`hopsd ${VERSION}`)
  return 0
}
