import { describe, expect, it } from 'vitest'
import { CoreNetwork, enc } from './core-harness.js'

describe('core: basics', () => {
  it('elects a leader and replicates', () => {
    const net = new CoreNetwork(['a', 'b', 'c'])
    net.elect('a')
    expect(net.leaders()).toEqual(['a'])
    net.get('a').node.propose(enc('x'))
    net.get('b').node.propose(enc('y')) // forwarded
    net.stabilize()
    for (const id of ['a', 'b', 'c']) expect(net.dataOf(id)).toEqual(['x', 'y'])
  })
})
