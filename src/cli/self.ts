// How this program starts another copy of itself (`hopsd dev` → `hopsd start`): the single binary runs
// itself; under Node it re-runs the same entry script with the same loader flags (`--import tsx`).
import { isSea } from 'node:sea'

export function selfCommand(): { command: string; args: string[] } {
  if (isSea()) return { command: process.execPath, args: [] }
  const entry = process.argv[1]
  if (entry === undefined) throw new Error('cannot tell how this process was started (no entry script)')
  return { command: process.execPath, args: [...process.execArgv, entry] }
}
