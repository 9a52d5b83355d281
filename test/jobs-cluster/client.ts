// The jobs cluster tests' HTTP client: a request to a node as `user` (simple auth's `user.name`), the
// answer read whole.
import type { LoopbackNode } from '../helpers/index.js'

export interface Reply {
  status: number
  text: string
  json(): any
}

/** `method path` on `node` as `user`, with a JSON body when given; `timeoutMs` bounds the whole exchange. */
export async function call(
  node: LoopbackNode,
  method: string,
  path: string,
  user: string,
  body?: unknown,
  timeoutMs = 20_000,
): Promise<Reply> {
  const sep = path.includes('?') ? '&' : '?'
  const res = await fetch(`${node.handle.url}${path}${sep}user.name=${encodeURIComponent(user)}`, {
    method,
    headers: body === undefined ? undefined : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    redirect: 'follow',
    signal: AbortSignal.timeout(timeoutMs),
  })
  const text = await res.text()
  return { status: res.status, text, json: () => JSON.parse(text) }
}
