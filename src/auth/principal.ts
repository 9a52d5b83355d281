/**
 * Who is calling: the verified result of authentication, the one identity every area authorizes on.
 * Structurally a file-system `Caller` ({user, groups}), so it passes straight into the fs service.
 */
export interface Principal {
  /** The user name (an existing user record, or any name under simple auth). */
  readonly user: string
  /** The user's groups, from its user record (never from the request). */
  readonly groups: readonly string[]
  /**
   * The project the principal acts in ('' or undefined: none). Acting in project A is a different
   * principal from acting in project B (Hopsworks' project-users); the projects issue gives it meaning.
   */
  readonly project?: string
  /** How it was authenticated (see {@link PrincipalVia}); for the record and the audit. */
  readonly via: PrincipalVia
  /** The key id, token sequence number, certificate serial or granting node: for the audit. */
  readonly credentialId?: string
  /**
   * The job whose task this credential was made for (a job key, made by the cluster only): inside its
   * project such a principal reads sensitive datasets, which the same Data Scientist cannot download.
   */
  readonly job?: string
  /** The user is the `superuser` setting, or in the `supergroup` setting's group or in `admin`. */
  readonly superuser: boolean
  /**
   * Set only for an inference key (via `inference-key`): the one deployment it may infer on. Such a
   * principal is no user (its `user` is `inference-key:<id>`, not a valid user name) and the API's auth
   * hook lets it reach only routes that declare `config.inferenceKey` (the /v2 model routes).
   */
  readonly deployment?: string
}

/**
 * - `certificate`: a TLS client certificate issued by the cluster CA for a user;
 * - `project-certificate`: a project-user certificate (CN=`<project>__<user>`) the cluster CA issued and
 *   the projects area recorded; acts in that project only;
 * - `key`: an API key (`Authorization: Bearer`, HTTP Basic's password, or `delegation=`);
 * - `token`: a WebHDFS delegation token;
 * - `assertion`: a grant signed by a metadata node (a write Location's second hop, forwarded commands);
 * - `simple`: WebHDFS `user.name` (or `dr.who`) while the cluster runs simple auth;
 * - `cluster`: the cluster acting for itself (leader housekeeping), never from a request;
 * - `inference-key`: an inference key a project issued for one deployment (src/serving), on the /v2
 *   model routes of that deployment only.
 */
export type PrincipalVia =
  | 'certificate'
  | 'project-certificate'
  | 'key'
  | 'token'
  | 'assertion'
  | 'simple'
  | 'cluster'
  | 'inference-key'

/** Hadoop's identity of an unauthenticated caller under simple auth (hadoop.http.staticuser.user). */
export const ANONYMOUS_USER = 'dr.who'

/** What `Command.authVia` records for a principal ("key:<id>", "token:<seq>", "simple", ...). */
export function authViaOf(p: Principal): string {
  return p.credentialId ? `${p.via}:${p.credentialId}` : p.via
}

/** User and group names: what HDFS accepts in practice, bounded, no separators or control characters. */
export const NAME_PATTERN = '^[A-Za-z_][A-Za-z0-9._-]{0,63}$'
const NAME_RE = new RegExp(NAME_PATTERN)

export function isValidName(name: string): boolean {
  return NAME_RE.test(name)
}
