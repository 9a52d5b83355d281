// Bind tests run before the daemon starts, so that "port in use" is one clear line and exit 2 instead
// of a failure halfway through startup. (The p2p listener itself belongs to src/node/p2p.)
import { createServer } from 'node:net'
import { formatAddress, type HostPort } from './config.js'
import { StartupError } from './errors.js'

/** Resolves when `addr` can be bound (then releases it); throws `PORT_IN_USE`, or `BAD_ADDRESS` when it cannot be bound here at all. */
export async function checkPortFree(addr: HostPort, what: string): Promise<void> {
  if (addr.port === 0) return
  await new Promise<void>((resolve, reject) => {
    const server = createServer()
    server.once('error', (err: NodeJS.ErrnoException) => {
      const where = `${what} address ${formatAddress(addr)}`
      if (err.code === 'EADDRINUSE')
        reject(new StartupError('PORT_IN_USE', `${where} is already in use`, { cause: err }))
      // Not a local address, no permission for a low port, unknown host: the address itself is wrong.
      else
        reject(
          new StartupError('BAD_ADDRESS', `${where} cannot be bound (${err.code ?? err.message})`, {
            cause: err,
          }),
        )
    })
    // exclusive: a cluster-mode shared handle must not hide another process's socket.
    server.listen({ host: addr.host, port: addr.port, exclusive: true }, () => server.close(() => resolve()))
  })
}
