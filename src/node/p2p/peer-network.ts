/**
 * The fs area's PeerNetwork (src/fs/peers.ts) over this node's libp2p host: streams are libp2p streams
 * carrying length-prefixed frames (./framing.ts), requests are ./rpc.ts. The wire is what the block
 * protocols always spoke; only the code that speaks it moved behind the interface.
 */
import type { Stream } from '@libp2p/interface'
import { Uint8ArrayList } from 'uint8arraylist'
import type { PeerNetwork, PeerStream } from '../../fs/index.js'
import { waitForDrain } from './drain.js'
import { encodeFrame, readFrames } from './framing.js'
import type { P2PHost } from './host.js'
import { handleRequests, request } from './rpc.js'

/** `host()` is called on each use: the host exists only once the p2p module has started. */
export function libp2pPeerNetwork(host: () => P2PHost): PeerNetwork {
  return {
    async openStream(peer, protocol, opts) {
      return framedStream(await host().newStream(peer, protocol, { signal: opts?.signal }))
    },
    async handleStreams(protocol, handler, opts) {
      const h = host()
      await h.handle(
        protocol,
        (stream, from) => handler(framedStream(stream), from),
        opts?.streamsMax === undefined ? undefined : { maxInboundStreams: opts.streamsMax },
      )
      return () => h.unhandle(protocol)
    },
    request: (peer, protocol, body, opts) => request(host(), peer, protocol, body, opts),
    handleRequests: (protocol, handler, opts) => handleRequests(host(), protocol, handler, opts),
  }
}

function framedStream(stream: Stream): PeerStream {
  return {
    async send(frame, signal) {
      const payload = frame instanceof Uint8Array ? frame : new Uint8ArrayList(...frame)
      if (!stream.send(encodeFrame(payload))) await waitForDrain(stream, signal)
    },
    frames: (frameBytesMax) => readFrames(stream, frameBytesMax),
    close: (signal) => stream.close({ signal }),
    abort: (err) => stream.abort(err),
    get open() {
      return stream.status === 'open'
    },
  }
}
