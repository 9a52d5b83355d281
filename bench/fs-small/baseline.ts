// The baseline of bench/fs-small, in its own process (so that UV_THREADPOOL_SIZE can match the client
// count and the bench process's own work does not skew it): C workers each write 4 KiB files into a
// local directory — open, write, fsync, close — for S seconds, then read random ones back (open, read,
// close). Prints one JSON line: { creates, seconds, readLatenciesMs }.
//
// Usage (from bench/fs-small/index.ts): node --import tsx baseline.ts DIR CLIENTS SECONDS READ_SECONDS FILE_BYTES
import { randomBytes } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { join } from 'node:path'

async function main(): Promise<void> {
  const [dir, clientsText, secondsText, readSecondsText, bytesText] = process.argv.slice(2)
  const clients = Number(clientsText)
  const seconds = Number(secondsText)
  const readSeconds = Number(readSecondsText)
  const data = randomBytes(Number(bytesText))
  const written: string[][] = Array.from({ length: clients }, () => [])
  for (let c = 0; c < clients; c++) mkdirSync(join(dir!, `w${c}`), { recursive: true })

  const t0 = performance.now()
  const deadline = t0 + seconds * 1000
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      for (let i = 0; performance.now() < deadline; i++) {
        const path = join(dir!, `w${c}`, `f${i}`)
        const fh = await open(path, 'w')
        await fh.write(data)
        await fh.sync()
        await fh.close()
        written[c]!.push(path)
      }
    }),
  )
  const createSeconds = (performance.now() - t0) / 1000
  const all = written.flat()

  const readLatenciesMs: number[] = []
  const readDeadline = performance.now() + readSeconds * 1000
  const buf = Buffer.alloc(data.length)
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < readDeadline) {
        const path = all[Math.floor(Math.random() * all.length)]!
        const start = performance.now()
        const fh = await open(path, 'r')
        await fh.read(buf, 0, buf.length, 0)
        await fh.close()
        readLatenciesMs.push(performance.now() - start)
      }
    }),
  )
  process.stdout.write(
    JSON.stringify({ creates: all.length, seconds: createSeconds, readLatenciesMs }) + '\n',
  )
}

main().catch((err: unknown) => {
  process.stderr.write(`baseline: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
