/**
 * Projects (Hopsworks' multi-tenancy): projects with Data Owners and Data Scientists, datasets under
 * `/Projects/<project>`, sharing without copying (`/Projects/<target>/<owner>::<dataset>`, an alias the
 * namespace resolves), and file access decided for the project-user principal (src/projects/rules.ts).
 *
 * @example
 * ```ts
 * import { createMetaStateMachine, createLocalGroup } from '../meta/index.js'
 * import { namespaceModule, type Namespace } from '../fs/index.js'
 * import { createProjectService, projectsModule } from '../projects/index.js'
 *
 * let ns: Namespace | undefined
 * const sm = createMetaStateMachine({
 *   modules: [(store) => (ns = namespaceModule()(store)), projectsModule(() => ns!)],
 * })
 * const projects = createProjectService({ consensus: createLocalGroup(sm), stateMachine: sm, nodeId: 'n1' })
 * const alice = { user: 'alice', groups: [], via: 'simple', superuser: false } as const
 * await projects.create(alice, 'fraud')                 // /Projects/fraud/{Resources,Logs,Models,...}
 * await projects.setMember(alice, 'fraud', 'bob', 'DATA_SCIENTIST')
 * await projects.createDataset(alice, 'fraud', 'cards', true) // sensitive: bob cannot download it
 * ```
 */
import type { MetaModuleFactory } from '../meta/index.js'
import type { Namespace } from '../fs/index.js'
import { projectPathRules } from './rules.js'
import { ProjectStore } from './store.js'

export { PROJECT_ERRORS, ProjectError, isProjectErrorCode, type ProjectErrorCode } from './errors.js'
export {
  DEFAULT_DATASETS,
  PROJECT_NAME_PATTERN,
  ROLES,
  aliasName,
  checkProjectName,
  datasetPath,
  projectPath,
  projectUserName,
  type ProjectRole,
  type ShareAccess,
} from './names.js'
export {
  ProjectStore,
  CERTS_PER_MEMBER_MAX,
  DATASETS_PER_PROJECT_MAX,
  MEMBERS_PER_PROJECT_MAX,
  PROJECTS_MAX,
  SHARES_PER_DATASET_MAX,
  type DatasetRecord,
  type MemberRecord,
  type ProjectCertificateRecord,
  type ProjectOpResults,
  type ProjectRecord,
  type ShareRecord,
} from './store.js'
export { projectPathRules } from './rules.js'
export {
  createProjectService,
  ProjectService,
  type IssuedProjectCertificate,
  type ProjectCertificateAsk,
  type ProjectCertificateSigner,
  type ProjectCertificateView,
  type ProjectQuotaView,
  type ProjectServiceInit,
  type ProjectView,
} from './service.js'

/**
 * The `projects` module's factory. `namespace` returns the state machine's fs module (registered
 * before this one); the module attaches its path rules to it, so the file system decides access for
 * project-user principals from this module's tables.
 */
export function projectsModule(namespace: () => Namespace): MetaModuleFactory<ProjectStore> {
  return (store) => {
    const projects = new ProjectStore(store, namespace)
    namespace().attachPathRules(projectPathRules(projects))
    return projects
  }
}
