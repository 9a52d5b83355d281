// Which hosts a node certificate may name: an IP only where the node answers when dialed back, a name
// only when it resolves to such an IP; anything else refuses the request. The dialing and resolving
// are injected here (the cluster test dials for real).
import { describe, expect, it } from 'vitest'
import { checkHosts, HOSTS_MAX } from '../../src/node/admission/index.js'

/** The requester listens on 127.0.0.2 only; 'localhost' is 127.0.0.1 (another node's address). */
const world = {
  dialBack: async (ip: string) => {
    if (ip !== '127.0.0.2') throw new Error(`${ip}: connection refused`)
  },
  resolve: async (name: string) => {
    const names: Record<string, string[]> = {
      localhost: ['127.0.0.1'],
      'me.example': ['10.9.9.9', '127.0.0.2'],
      'other.example': ['10.1.1.1'],
    }
    const ips = names[name]
    if (ips === undefined) throw new Error('ENOTFOUND')
    return ips
  },
}

describe('certificate hosts', () => {
  it('keeps what leads to the node, refuses the rest with a reason', async () => {
    const r = await checkHosts({
      ...world,
      hosts: [
        '127.0.0.2',
        'me.example',
        'localhost',
        '127.0.0.1',
        'other.example',
        'nowhere.example',
        '*.example',
        'a/b',
      ],
    })
    expect(r.verified).toEqual(['127.0.0.2', 'me.example'])
    expect(r.refused.map((x) => x.host)).toEqual([
      'localhost',
      '127.0.0.1',
      'other.example',
      'nowhere.example',
      '*.example',
      'a/b',
    ])
    expect(r.refused.find((x) => x.host === 'localhost')?.reason).toMatch(/resolves to 127.0.0.1/)
    expect(r.refused.find((x) => x.host === 'nowhere.example')?.reason).toMatch(/does not resolve/)
  })

  it('dials each IP once, and refuses more than HOSTS_MAX hosts', async () => {
    const dialed: string[] = []
    const many = Array.from({ length: HOSTS_MAX + 3 }, (_, i) => `n${i}.example`)
    const r = await checkHosts({
      hosts: many,
      resolve: async () => ['127.0.0.2'],
      dialBack: async (ip) => {
        dialed.push(ip)
      },
    })
    expect(dialed).toEqual(['127.0.0.2'])
    expect(r.verified).toHaveLength(HOSTS_MAX)
    expect(r.refused.map((x) => x.reason)).toEqual(Array(3).fill(`more than ${HOSTS_MAX} hosts`))
  })
})
