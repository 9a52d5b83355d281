/**
 * The `projects` module (role metadata): the projects service over the local metadata replica
 * (src/projects) and its routes (src/api/routes/projects.ts). Nodes without a replica forward
 * /api/v1/projects to a metadata node (fsProxyRoutes). The projects' state-machine module and its path
 * rules are registered by the metadata module, so that every replica decides file access alike.
 */
import { projectsRoutes } from '../../api/index.js'
import { createProjectService } from '../../projects/index.js'
import type { JobsModule } from '../../scheduler/index.js'
import { requireService, type NodeModule } from '../module.js'

export function projectsNodeModule(): NodeModule<'projects'> {
  return {
    name: 'projects',
    roles: ['metadata'],
    create(components) {
      const meta = requireService(components, 'metadata')
      const projects = createProjectService({
        consensus: {
          propose: (cmd, opts) => meta.group.propose(cmd, opts),
          readBarrier: (opts) => meta.group.readBarrier(opts),
        },
        stateMachine: meta.stateMachine,
        nodeId: components.identity.id,
        gpuUsageMs: (project) => meta.stateMachine.module<JobsModule>('jobs').usageGpuMs(project),
      })
      return { api: projects, routes: projectsRoutes({ projects }) }
    },
  }
}
