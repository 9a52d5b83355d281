// The baseline of bench/http: a bare node:http server answering GET /health with a body of the same
// shape as hopsd's, in its own process like the daemon. Prints its port on stdout once listening.
import { createServer } from 'node:http'

const startedAt = Date.now()
const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/health') {
    const body = JSON.stringify({
      status: 'ok',
      id: '12D3KooWBareServerBaselineNodeIdForTheHttpBenchmark0000',
      zone: 'z1',
      roles: ['metadata', 'datanode', 'gpu', 'serving'],
      version: '0.0.0',
      uptimeS: Math.floor((Date.now() - startedAt) / 1000),
    })
    res.writeHead(200, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
    })
    res.end(body)
  } else {
    res.writeHead(404).end()
  }
})
server.listen(0, '127.0.0.1', () => process.stdout.write(`${server.address().port}\n`))
process.on('SIGTERM', () => server.close(() => process.exit(0)))
