/**
 * Where a daemon's CPU went during a measurement: the benchmark starts the daemon with
 * `NODE_OPTIONS=--inspect=127.0.0.1:0` (loopback, benchmarks only), finds the inspector's address in
 * its stderr, and records a V8 CPU profile over exactly the measured window through the DevTools
 * protocol (Node's own WebSocket client). The profile is summarised as self time per place — a hopsd
 * source folder (`src/api`, `src/consensus`, ...), an npm package, Node's internals, the garbage
 * collector — so that a benchmark that misses its goal says what the time was spent on, in the same run.
 *
 * @example
 * const stop = await startProfiling(inspectorUrlIn(handle.logs().stderr)!)
 * // ... the measured load ...
 * for (const p of summarizeProfile(await stop(), 12)) report.notes.push(`${p.place}: ${p.sharePct} %`)
 */

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string }
}

export interface CpuProfile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

export interface PlaceShare {
  /** `src/<area>`, `npm:<package>`, `node:<module>`, `(garbage collector)`, `(program)`, ... */
  readonly place: string
  readonly selfMs: number
  /** Share of the busy (non-idle) samples, in percent. */
  readonly sharePct: number
}

/** The place a frame's own time is booked to. */
function placeOf(frame: ProfileNode['callFrame']): string {
  const url = frame.url
  if (url === '')
    return frame.functionName.startsWith('(') ? frame.functionName : `native ${frame.functionName}`
  const nm = url.lastIndexOf('/node_modules/')
  if (nm >= 0) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/')
    return `npm:${rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]}`
  }
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/').slice(0, 2).join('/')}`
  const src = url.indexOf('/src/')
  if (src >= 0) {
    const parts = url.slice(src + 1).split('/')
    return parts.length > 2 ? `${parts[0]}/${parts[1]}` : parts.join('/')
  }
  return url.startsWith('wasm://') ? 'wasm' : url
}

/** The inspector's WebSocket address a Node process printed ("Debugger listening on ws://…"). */
export function inspectorUrlIn(stderr: string): string | undefined {
  return /Debugger listening on (ws:\/\/127\.0\.0\.1:\d+\/[\w-]+)/.exec(stderr)?.[1]
}

/** Starts the V8 sampling profiler in the process behind `wsUrl`; the function returned stops it. */
export async function startProfiling(wsUrl: string, intervalUs = 500): Promise<() => Promise<CpuProfile>> {
  const ws = new WebSocket(wsUrl)
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve()
    ws.onerror = () => reject(new Error(`cannot reach the inspector at ${wsUrl}`))
  })
  let seq = 0
  const pending = new Map<number, (m: { result?: unknown; error?: { message: string } }) => void>()
  ws.onmessage = (ev) => {
    const m = JSON.parse(String(ev.data)) as { id?: number; result?: unknown; error?: { message: string } }
    if (m.id !== undefined) pending.get(m.id)?.(m)
    if (m.id !== undefined) pending.delete(m.id)
  }
  const call = (method: string, params: Record<string, unknown> = {}): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const id = ++seq
      pending.set(id, (m) =>
        m.error ? reject(new Error(`${method}: ${m.error.message}`)) : resolve(m.result),
      )
      ws.send(JSON.stringify({ id, method, params }))
    })
  await call('Profiler.enable')
  await call('Profiler.setSamplingInterval', { interval: intervalUs })
  await call('Profiler.start')
  return async () => {
    const result = (await call('Profiler.stop')) as { profile: CpuProfile }
    ws.close()
    return result.profile
  }
}

/**
 * Self time in `profile`, the `top` largest first (idle left out): per place, or with `by: 'function'`
 * per function (`name place`), which says what inside a place costs.
 */
export function summarizeProfile(
  profile: CpuProfile,
  top = 12,
  by: 'place' | 'function' = 'place',
): PlaceShare[] {
  const byKey = new Map<string, number>()
  let busyUs = 0
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]))
  for (let i = 0; i < profile.samples.length; i++) {
    const frame = nodes.get(profile.samples[i]!)?.callFrame
    const dt = profile.timeDeltas[i] ?? 0
    if (frame === undefined || frame.functionName === '(idle)') continue
    const place = placeOf(frame)
    const key = by === 'place' ? place : `${frame.functionName || '(anonymous)'} ${place}`
    byKey.set(key, (byKey.get(key) ?? 0) + dt)
    busyUs += dt
  }
  return [...byKey.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([place, us]) => ({
      place,
      selfMs: Math.round(us / 1000),
      sharePct: busyUs === 0 ? 0 : Math.round((1000 * us) / busyUs) / 10,
    }))
}
