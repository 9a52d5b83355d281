// The `hopsd` command: dispatches to one subcommand per file (start, dev, version), and is the entry.
import { ConfigError } from '../node/index.js'
import { devHelp, runDev } from './dev.js'
import { runFs } from './fs.js'
import { jobHelp, runJob } from './job.js'
import { keyHelp, runKey } from './key.js'
import { keygenHelp, runKeygen } from './keygen.js'
import { nodeHelp, runNode } from './node.js'
import { deployHelp, modelHelp, runDeploy, runModel } from './model.js'
import { EXIT_OK, processIo, reportError, type CliIo } from './output.js'
import { projectHelp, runProject } from './project.js'
import { runServingRuntime } from './serving-runtime.js'
import { runStart, startHelp } from './start.js'
import { runStatus, statusHelp } from './status.js'
import { runToken, tokenHelp } from './token.js'
import { runUser, userHelp } from './user.js'
import { runVersion } from './version.js'

export function mainHelp(): string {
  return [
    'Usage: hopsd <command> [flags]',
    '',
    'Commands:',
    '  start     run a node (see hopsd start --help)',
    '  dev       run a local cluster of N nodes (see hopsd dev --help)',
    '  status    the cluster: leader, term, voters and learners by zone (see hopsd status --help)',
    '  keygen    print a new swarm key: hopsd keygen > swarm.key',
    '  user      users of the cluster: add, ls, rm (see hopsd user --help)',
    '  key       API keys: create, ls, revoke (see hopsd key --help)',
    '  token     join tokens for new nodes: create, ls, rm (see hopsd token --help)',
    '  node      node admission: ls (--pending), approve, revoke (see hopsd node --help)',
    '  project   projects: create, ls, rm, member, dataset, share, quota (see hopsd project --help)',
    '  job       GPU jobs: submit, ls, status, logs, kill (see hopsd job --help)',
    '  model     the model registry: register, ls, show, rm (see hopsd model --help)',
    '  deploy    model deployments: create, ls, show, update, rm (see hopsd deploy --help)',
    '  fs        the file system: ls, mkdir, put, get, cat, rm, mv, stat, chmod, chown, du (see hopsd fs --help)',
    '  version   print the version (also --version)',
    '',
    startHelp(),
    '',
    devHelp(),
    '',
    statusHelp(),
    '',
    keygenHelp(),
    '',
    userHelp(),
    '',
    keyHelp(),
    '',
    tokenHelp(),
    '',
    nodeHelp(),
    '',
    projectHelp(),
    '',
    jobHelp(),
    '',
    modelHelp(),
    '',
    deployHelp(),
  ].join('\n')
}

export async function main(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  const [command, ...rest] = argv
  switch (command) {
    case 'start':
      return runStart(rest, io)
    case 'dev':
      return runDev(rest, io)
    case 'fs':
      return runFs(rest, io)
    case 'status':
      return runStatus(rest, io)
    case 'user':
      return runUser(rest, io)
    case 'key':
      return runKey(rest, io)
    case 'token':
      return runToken(rest, io)
    case 'node':
      return runNode(rest, io)
    case 'job':
      return runJob(rest, io)
    case 'project':
      return runProject(rest, io)
    case 'model':
      return runModel(rest, io)
    case 'deploy':
      return runDeploy(rest, io)
    case 'keygen':
      if (rest.length > 0) {
        return reportError(
          io,
          new ConfigError('UNKNOWN_FLAG', `'hopsd keygen' takes no arguments (got ${rest[0]})`),
        )
      }
      return runKeygen(io)
    case 'serving-runtime': // hidden: a model replica's runtime host, started by the serving role
      return runServingRuntime(rest, io)
    case 'version':
    case '--version':
    case '-v':
      return runVersion(io)
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      io.out(mainHelp())
      return EXIT_OK
    default:
      return reportError(
        io,
        command.startsWith('-')
          ? new ConfigError('UNKNOWN_FLAG', `unknown flag ${command} (see hopsd --help)`)
          : new ConfigError(
              'UNKNOWN_COMMAND',
              `unknown command '${command}' (commands: start, dev, status, keygen, fs, user, key, token, node, project, model, deploy, job, version)`,
            ),
      )
  }
}

/** The process entry: run, then exit with the code (stdout is flushed first). */
export function runMain(argv: readonly string[]): void {
  main(argv).then(
    (code) => {
      process.exitCode = code
      // Daemons and dev keep handles open until they return; once they have, nothing should linger.
      setImmediate(() => process.exit(code))
    },
    (err: unknown) => {
      process.exit(reportError(processIo, err))
    },
  )
}

// This file is the entry of `npm run hopsd`, of bin/hopsd.js and of the single binary: it always runs.
// (Tests import the subcommand files, never this one.)
runMain(process.argv.slice(2))
