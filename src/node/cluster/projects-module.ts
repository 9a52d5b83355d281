/**
 * The `projects` module (role metadata): the projects service over the local metadata replica
 * (src/projects) and its routes (src/api/routes/projects.ts). Nodes without a replica forward
 * /api/v1/projects to a metadata node (fsProxyRoutes). The projects' state-machine module and its path
 * rules are registered by the metadata module, so that every replica decides file access alike.
 * Project-user certificates are signed here (this node's unwrapped copy of the CA key) and recorded
 * by a command; the authenticator (src/auth) checks the record on every request.
 */
import { projectsRoutes } from '../../api/index.js'
import { createProjectService, type ProjectCertificateSigner } from '../../projects/index.js'
import type { JobsModule } from '../../scheduler/index.js'
import { issueProjectUserCertificate, newSerial, normalizeSerial, publicKeyOfRequest } from '../ca/index.js'
import { requireService, type NodeModule } from '../module.js'
import { signingCa } from './ca-signing.js'

export function projectsNodeModule(): NodeModule<'projects'> {
  return {
    name: 'projects',
    roles: ['metadata'],
    create(components) {
      const meta = requireService(components, 'metadata')
      // Project-user certificates are signed here, with the CA key this metadata node unwrapped from
      // its own copy (src/node/admission/keyring.ts), as node and user certificates are.
      const certificates: ProjectCertificateSigner = {
        publicKeyOf: (req) => publicKeyOfRequest(req),
        newSerial: () => normalizeSerial(newSerial()),
        async sign(req) {
          const { ca, caCertificatePem } = signingCa(meta)
          return { certificatePem: await issueProjectUserCertificate(ca, req), caCertificatePem }
        },
      }
      const projects = createProjectService({
        consensus: {
          propose: (cmd, opts) => meta.group.propose(cmd, opts),
          readBarrier: (opts) => meta.group.readBarrier(opts),
        },
        stateMachine: meta.stateMachine,
        nodeId: components.identity.id,
        gpuUsageMs: (project) => meta.stateMachine.module<JobsModule>('jobs').usageGpuMs(project),
        certificates,
      })
      return { api: projects, routes: projectsRoutes({ projects }) }
    },
  }
}
