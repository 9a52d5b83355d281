import { CommandRejected } from '../meta/index.js'

/**
 * Errors of projects (src/projects): one row per stable code (HTTP status, meaning), joined into the
 * daemon's table in src/errors.ts. {@link ProjectError} extends meta's CommandRejected, so the projects
 * module refuses a command by throwing one inside apply (the command is rolled back and changes nothing).
 * Denials of file access inside projects are the file system's ACCESS_DENIED (with the reason).
 */
export const PROJECT_ERRORS = {
  INVALID_PROJECT_NAME: {
    httpStatus: 400,
    description:
      'A project or dataset name outside [a-z][a-z0-9_]{0,62}, or with "__" inside (names become path segments and Kafka prefixes); "::" names a shared dataset and is never a name.',
  },
  INVALID_PROJECT_REQUEST: {
    httpStatus: 400,
    description:
      "A member's user name or role, a share's access, or a quota value that is not allowed (roles: DATA_OWNER, DATA_SCIENTIST; access: read, write; quotas: positive, or -1 for none).",
  },
  PROJECT_NOT_FOUND: {
    httpStatus: 404,
    description: 'No such project, or the caller is not a member of it (a non-member learns nothing of it).',
  },
  PROJECT_EXISTS: { httpStatus: 409, description: 'A project of that name exists already.' },
  DATASET_NOT_FOUND: { httpStatus: 404, description: 'The project has no dataset of that name.' },
  DATASET_EXISTS: { httpStatus: 409, description: 'The project has a dataset of that name already.' },
  MEMBER_NOT_FOUND: { httpStatus: 404, description: 'The user is not a member of the project.' },
  SHARE_NOT_FOUND: { httpStatus: 404, description: 'The dataset is not shared with that project.' },
  SHARE_REFUSED: {
    httpStatus: 400,
    description:
      'The share cannot be made: a project shares with itself, or the dataset named is an alias of a dataset shared into the project (no chains).',
  },
  CONFIRM_REQUIRED: {
    httpStatus: 400,
    description: 'Deleting a project needs the parameter confirm=<its name>.',
  },
  LAST_DATA_OWNER: {
    httpStatus: 409,
    description: 'The change would leave the project without a Data Owner.',
  },
  PROJECT_ACCESS_DENIED: {
    httpStatus: 403,
    description:
      'The caller may not do this in the project: only Data Owners (and admins) manage members, datasets, shares and deletion.',
  },
  INVALID_CERTIFICATE_REQUEST: {
    httpStatus: 400,
    description:
      'A project-user certificate cannot be issued as asked: the public key or CSR is not a P-256 key (or its signature does not verify), or the lifetime is over the setting projectCertValidityMaxS.',
  },
  CERTIFICATE_NOT_FOUND: {
    httpStatus: 404,
    description:
      'The project has no certificate of that serial that the caller may see (members see their own; Data Owners and admins all).',
  },
  PROJECT_LIMIT: {
    httpStatus: 409,
    description:
      'A bound of projects was reached: projects, members or datasets per project, shares per dataset, live certificates per member.',
  },
} as const

export type ProjectErrorCode = keyof typeof PROJECT_ERRORS

/** A refusal of the projects area, with one of its stable codes. */
export class ProjectError extends CommandRejected {
  declare readonly code: ProjectErrorCode

  constructor(code: ProjectErrorCode, message?: string) {
    super(code, message ?? PROJECT_ERRORS[code].description)
  }
}

export function isProjectErrorCode(code: string): code is ProjectErrorCode {
  return Object.hasOwn(PROJECT_ERRORS, code)
}
