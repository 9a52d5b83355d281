/**
 * What signing a client certificate on a metadata node needs: the cluster CA (its certificate, from the
 * replicated state) and this node's unwrapped copy of its key (src/node/admission/keyring.ts), or the
 * reason there is none yet. User and project-user certificates are both signed through it.
 */
import { HopsError } from '../../errors.js'
import { AdmissionError } from '../admission/index.js'
import type { ClusterCaMaterial } from '../ca/index.js'
import type { MetadataNode } from './metadata-module.js'

export function signingCa(meta: MetadataNode): { ca: ClusterCaMaterial; caCertificatePem: string } {
  const info = meta.cluster.info()
  if (info === undefined) throw new HopsError('UNAVAILABLE', 'the cluster CA does not exist yet')
  // The CA key only in memory, unwrapped from this node's copy.
  const ca = meta.ca.material()
  if (ca === undefined)
    throw new AdmissionError('CA_KEY_UNAVAILABLE', 'this metadata node holds no copy of the CA key yet')
  return { ca, caCertificatePem: info.caCertPem }
}
