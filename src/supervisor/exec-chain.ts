// What to spawn for a component (pies.md §4.3-4.4, §5.3): its argv (shell, expandenv or
// plain), wrapped, only when needed, in one exec chain that keeps the child's pid and applies
// rlimits, priority, uid/gid/groups and umask. Pure, given the AccountDb.
import type { Flag, Limits } from '../config/model.js';
import { quoteWord, splitCommandLine } from '../config/command-line.js';
import { expandCommandLine } from './environment.js';
import { type AccountDb, systemAccounts } from './users.js';

export interface ExecSpec {
  readonly argv?: readonly string[];
  readonly command?: string;
  readonly program?: string;
  readonly flags: ReadonlySet<Flag>;
  readonly umask?: number;
  readonly limits?: Limits;
  readonly user?: string;
  readonly group?: readonly string[];
  readonly allgroups?: boolean;
  /** The component's environment (see componentEnv); expandenv expands against it. */
  readonly env: Record<string, string>;
  /**
   * tpies' own nice value (os.getPriority()). pies sets `P` as an absolute priority but
   * nice(1) adds to the current one, so the difference is what gets passed. Default 0.
   */
  readonly currentNice?: number;
}

/** Arguments for spawn(file, args, {argv0, env}). */
export interface ExecChain {
  readonly file: string;
  readonly args: readonly string[];
  /** Set when the program's argv[0] differs from `file` and no wrapper carries it. */
  readonly argv0?: string;
  readonly env: Record<string, string>;
  /** The program's own argv, argv[0] as written: for logs and messages. */
  readonly argv: readonly string[];
}

export type ExecChainResult = ExecChain | { readonly error: string };

/** Absolute paths, because a component's env may have no PATH at all. */
export interface ChainTools {
  readonly prlimit: string;
  readonly nice: string;
  readonly setpriv: string;
  readonly sh: string;
  /** Only for `exec -a`, which dash lacks: used when argv[0] must differ from the file. */
  readonly bash: string;
}

export const DEFAULT_CHAIN_TOOLS: ChainTools = {
  prlimit: '/usr/bin/prlimit',
  nice: '/usr/bin/nice',
  setpriv: '/usr/bin/setpriv',
  sh: '/bin/sh',
  bash: '/bin/bash',
};

export interface ExecChainDeps {
  readonly accounts?: AccountDb;
  readonly tools?: ChainTools;
}

// prlimit's option per pies limit letter; sizes are KiB in pies and bytes in prlimit.
const PRLIMIT_OPTIONS: readonly (readonly [keyof Limits, string, bigint])[] = [
  ['as', '--as', 1024n],
  ['core', '--core', 1024n],
  ['data', '--data', 1024n],
  ['fsize', '--fsize', 1024n],
  ['memlock', '--memlock', 1024n],
  ['nofile', '--nofile', 1n],
  ['rss', '--rss', 1024n],
  ['stack', '--stack', 1024n],
  ['cpu', '--cpu', 60n], // T is minutes, RLIMIT_CPU seconds
  ['nproc', '--nproc', 1n],
];

/**
 * Builds the spawn arguments for one process of a component. Steps, each present only when
 * needed: prlimit → nice → setpriv → sh (umask; bash when argv[0] must be set) → program.
 * Every step execs the next, so the pid spawn() reports is the program's. Problems (unknown
 * user, bad command line, `${V:?}` in an expandenv command) come back as `{error}`.
 */
export function buildExecChain(spec: ExecSpec, deps: ExecChainDeps = {}): ExecChainResult {
  const tools = deps.tools ?? DEFAULT_CHAIN_TOOLS;
  const program = programArgv(spec);
  if ('error' in program) return program;
  const { file, argv } = program;
  const argv0 = argv[0]!;

  const prefix: string[] = [];
  if (spec.limits) {
    const limitArgs = prlimitArgs(spec.limits);
    if (limitArgs.length > 0) prefix.push(tools.prlimit, ...limitArgs, '--');
    // Before setpriv: only root may lower the nice value.
    if (spec.limits.nice !== undefined) {
      const increment = spec.limits.nice - (spec.currentNice ?? 0);
      if (increment !== 0) prefix.push(tools.nice, '-n', String(increment), '--');
    }
  }
  if (spec.user !== undefined) {
    const priv = setprivArgs(spec.user, spec.group ?? [], spec.allgroups ?? false, deps.accounts ?? systemAccounts);
    if ('error' in priv) return priv;
    prefix.push(tools.setpriv, ...priv.args, '--');
  }
  if (spec.umask !== undefined && !(Number.isInteger(spec.umask) && spec.umask >= 0 && spec.umask <= 0o777)) {
    return { error: `umask ${spec.umask} is out of range (000..777 octal)` };
  }
  const umask = spec.umask === undefined ? '' : `umask ${spec.umask.toString(8).padStart(3, '0')} && `;
  // Both shells export a PWD of their own; the child should see only what env ops made.
  const script = `${Object.hasOwn(spec.env, 'PWD') ? '' : 'unset PWD; '}${umask}`;
  const needsArgv0 = argv0 !== file;
  // The shell goes last so it can also set argv[0], which setpriv and prlimit cannot.
  if (needsArgv0 && (prefix.length > 0 || umask !== '')) {
    // bash would otherwise source startup files: $BASH_ENV (--posix stops that) and, since
    // Node's stdio pipes are sockets and bash then assumes rshd, ~/.bashrc (--norc). Its
    // exec still leaves SHLVL=0 behind when the env had none.
    prefix.push(tools.bash, '--norc', '--posix', '-c', `${script}exec -a "$0" "$@"`, argv0);
  } else if (umask !== '') {
    prefix.push(tools.sh, '-c', `${script}exec "$@"`, 'sh');
  }

  const env = { ...spec.env };
  if (prefix.length === 0) {
    return needsArgv0 ? { file, args: argv.slice(1), argv0, env, argv } : { file, args: argv.slice(1), env, argv };
  }
  const chain = [...prefix, file, ...argv.slice(1)];
  return { file: chain[0]!, args: chain.slice(1), env, argv };
}

/** prlimit options for `limits` (without nice, which is a priority, not an rlimit). */
export function prlimitArgs(limits: Limits): string[] {
  // pies sets soft and hard limit alike; a single prlimit value does the same.
  return PRLIMIT_OPTIONS.flatMap(([key, option, scale]) => {
    const value = limits[key];
    return value === undefined ? [] : [`${option}=${BigInt(Math.trunc(value)) * scale}`];
  });
}

// The program's file and argv: pies runs `program` (default argv[0]) with argv as written,
// or with flag `shell` the shell (`program`, default /bin/sh) with -c COMMAND.
function programArgv(spec: ExecSpec): { file: string; argv: readonly string[] } | { error: string } {
  if (spec.flags.has('shell')) {
    const command = spec.command ?? spec.argv?.map(quoteWord).join(' ');
    if (command === undefined || command.trim() === '') return { error: 'no command to run' };
    const shell = spec.program ?? '/bin/sh';
    return { file: shell, argv: [shell, '-c', command] };
  }
  let argv = spec.argv;
  if (spec.command !== undefined && (spec.flags.has('expandenv') || argv === undefined)) {
    const errors: string[] = [];
    // A copy: `${V:=w}` in a command sets a variable for the line, not for the child.
    const text = spec.flags.has('expandenv') ? expandCommandLine(spec.command, { ...spec.env }, { onError: (m) => errors.push(m) }) : spec.command;
    // As in a shell, where `${V:?}` aborts the command instead of running it without V.
    if (errors.length > 0) return { error: `command: ${errors.join('; ')}` };
    const split = splitCommandLine(text);
    if ('error' in split) return { error: `command: ${split.error}` };
    argv = split.argv;
  }
  if (argv === undefined || argv.length === 0) return { error: 'no command to run' };
  return { file: spec.program ?? argv[0]!, argv };
}

// setpriv options for pies' privilege model: uid and primary gid of `user`; supplementary
// groups are the primary group plus the `group` list, or with `allgroups` every group of
// the user (plus the list).
function setprivArgs(user: string, groupNames: readonly string[], allgroups: boolean, accounts: AccountDb): { args: string[] } | { error: string } {
  const entry = accounts.lookupUser(user);
  if (!entry) return { error: `unknown user "${user}"` };
  const gids: number[] = [];
  for (const name of groupNames) {
    const group = accounts.lookupGroup(name);
    if (!group) return { error: `unknown group "${name}"` };
    gids.push(group.gid);
  }
  const primary = entry.gid ?? gids[0];
  if (primary === undefined) return { error: `user "${user}" has no passwd entry, so its primary group is unknown; name one with "group"` };
  const args = [`--reuid=${entry.uid}`, `--regid=${primary}`];
  if (allgroups) {
    // initgroups(3) needs the passwd entry, and setpriv cannot combine it with a list.
    if (entry.gid === undefined) return { error: `"allgroups" needs a passwd entry for user "${user}"` };
    if (gids.length === 0) return { args: [...args, '--init-groups'] };
    gids.push(...accounts.groupsOf(entry.name).map((g) => g.gid));
  }
  return { args: [...args, `--groups=${[...new Set([primary, ...gids])].join(',')}`] };
}
