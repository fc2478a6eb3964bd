// The only place that knows which statements exist in which block, their form (simple or
// block), whether they may repeat, and how their values are read. The grammar is generic;
// this table gives statements their meaning (as grecs' keyword tables do for pies).
import type { Location, Node, StatementNode } from './ast.js';
import type { AclRef, EnvOp, Flag, Limits, MatchRule, Mode, Redirect, ReturnCode, Acl, SocketAddress } from './model.js';
import { parseSocketAddress } from '../inetd/socket-address.js';
import { readAclRef, readDefacl } from './read/acl.js';
import { readEnv } from './read/env.js';
import { readLimits } from './read/limits.js';
import { SYSLOG_FACILITIES, readRedirect } from './read/redirect.js';
import { readReturnCode } from './read/return-code.js';
import { readMatch } from './read/match.js';
import {
  type BuildContext,
  badValue,
  enumValue,
  oneScalar,
  readBoolean,
  readEnum,
  readInteger,
  readList,
  readNumber,
  readOctal,
  readSeconds,
  readString,
  suggest,
  unsupportedValue,
} from './values.js';

/** How one statement is written and read. */
export interface StatementSpec<T = unknown> {
  readonly form: 'simple' | 'block' | 'either';
  readonly multiple: boolean;
  readonly read: (s: StatementNode, ctx: BuildContext) => T | undefined;
  /** Set for pies statements tpies refuses, with the reason. */
  readonly unsupported?: string;
}

type Once<T> = StatementSpec<T> & { readonly multiple: false };
type Many<T> = StatementSpec<T> & { readonly multiple: true };
export type BlockSpec = Readonly<Record<string, StatementSpec>>;

/** What readBlock returns for a spec: one value per singleton, arrays for repeatable ones. */
export type BlockValues<S extends BlockSpec> = {
  -readonly [K in keyof S]?: S[K] extends Many<infer T> ? T[] : S[K] extends Once<infer T> ? T : never;
};

const once = <T>(read: (s: StatementNode, ctx: BuildContext) => T | undefined, form: StatementSpec['form'] = 'simple'): Once<T> => ({ form, multiple: false, read });
const many = <T>(read: (s: StatementNode, ctx: BuildContext) => T | undefined, form: StatementSpec['form'] = 'simple'): Many<T> => ({ form, multiple: true, read });
const unsupported = (reason: string): Once<never> => ({ form: 'either', multiple: false, read: () => undefined, unsupported: reason });
// Obsolete in pies and ignored there too; any value and form, may repeat. The locations are
// kept so that each occurrence can be warned about.
const ignored = (): Many<Location> => ({ form: 'either', multiple: true, read: (s) => s.location });

export const MODES: Readonly<Record<string, Mode>> = {
  respawn: 'respawn', exec: 'respawn', inetd: 'inetd', nostartaccept: 'inetd', accept: 'accept', startup: 'startup', shutdown: 'shutdown',
};
const INIT_MODES = ['boot', 'bootwait', 'ctrlaltdel', 'kbrequest', 'once', 'ondemand', 'powerfail', 'powerfailnow', 'powerokwait', 'powerwait', 'sysinit', 'wait'];

export const FLAGS: readonly Flag[] = ['disable', 'precious', 'nullinput', 'wait', 'tcpmux', 'tcpmuxplus', 'internal', 'sockenv', 'resolve', 'shell', 'expandenv', 'siggroup'];

function readMode(s: StatementNode, ctx: BuildContext): Mode | undefined {
  const v = oneScalar(s, ctx);
  if (!v) return undefined;
  // Own properties only: `mode constructor;` must not find Object.prototype.constructor.
  if (Object.hasOwn(MODES, v.value)) return MODES[v.value];
  if (v.value === 'pass' || v.value === 'pass-fd') return unsupportedValue(ctx, v, `mode "${v.value}" is not supported: Node cannot pass descriptors over unix sockets (SCM_RIGHTS)`);
  if (INIT_MODES.includes(v.value)) return unsupportedValue(ctx, v, `mode "${v.value}" is not supported: it exists only when pies runs as init (PID 1)`);
  enumValue(v, ctx, 'mode', Object.keys(MODES));
  return undefined;
}

function readFlags(s: StatementNode, ctx: BuildContext): Flag[] | undefined {
  const items = readList(s, ctx);
  if (!items) return undefined;
  const flags: Flag[] = [];
  for (const item of items) {
    const f = enumValue(item, ctx, 'flag', FLAGS);
    if (!f) return undefined;
    flags.push(f);
  }
  return flags;
}

function readPrerequisites(s: StatementNode, ctx: BuildContext): 'all' | string[] | undefined {
  const items = readList(s, ctx);
  if (!items) return undefined;
  if (items.length === 1 && items[0]!.value === 'all') return 'all';
  if (items.length === 1 && items[0]!.value === 'none') return [];
  return items.map((i) => i.value);
}

function readNames(s: StatementNode, ctx: BuildContext): string[] | undefined {
  return readList(s, ctx)?.map((i) => i.value);
}

function readSocket(s: StatementNode, ctx: BuildContext): SocketAddress | undefined {
  const v = oneScalar(s, ctx);
  if (!v) return undefined;
  const parsed = parseSocketAddress(v.value, ctx.services);
  if (!('error' in parsed)) return parsed.address;
  return parsed.unsupported ? unsupportedValue(ctx, v, parsed.error) : badValue(ctx, v, parsed.error);
}

function readSocketType(s: StatementNode, ctx: BuildContext): 'stream' | undefined {
  const t = readEnum(s, ctx, ['stream', 'dgram', 'raw', 'rdm', 'seqpacket'] as const);
  if (t === undefined || t === 'stream') return t;
  return unsupportedValue(ctx, s.values[0]!, `socket-type "${t}" is not supported: tpies serves stream sockets only`);
}

// The syslog block's facility, from the list `stdout syslog FACILITY.PRIORITY` accepts;
// case-insensitive, as there, and kept in lower case.
function readFacility(s: StatementNode, ctx: BuildContext): string | undefined {
  const v = oneScalar(s, ctx);
  if (!v) return undefined;
  return enumValue({ ...v, value: v.value.toLowerCase() }, ctx, 'syslog facility', SYSLOG_FACILITIES);
}

function readProxyProtocol(s: StatementNode, ctx: BuildContext): 1 | 2 | undefined {
  const version = readEnum(s, ctx, ['v1', 'v2'] as const);
  return version === undefined ? undefined : version === 'v1' ? 1 : 2;
}

const readText = (s: StatementNode, ctx: BuildContext): string | undefined => readString(s, ctx);
const readCount = (s: StatementNode, ctx: BuildContext): number | undefined => readInteger(s, ctx, 0);
const readPositive = (s: StatementNode, ctx: BuildContext): number | undefined => readInteger(s, ctx, 1);
const readFlag = (s: StatementNode, ctx: BuildContext): boolean | undefined => readBoolean(s, ctx);

/** `respawn { … }`: tpies' explicit respawn policy (global defaults or per component). */
export const RESPAWN_STATEMENTS = {
  'initial-delay': once(readSeconds),
  factor: once((s, ctx) => readNumber(s, ctx, 1, 100)),
  'max-delay': once(readSeconds),
  jitter: once((s, ctx) => readNumber(s, ctx, 0, 1)),
  window: once(readSeconds),
  // 0 turns the throttle off (supervisor/backoff.ts).
  limit: once(readCount),
  sleep: once(readSeconds),
} satisfies BlockSpec;

/** Statements shared by components and the global scope: how processes run. */
const PROCESS_STATEMENTS = {
  user: once(readText),
  group: once(readNames),
  allgroups: once(readFlag),
  umask: once(readOctal),
  limits: once<Limits>(readLimits),
  env: once<readonly EnvOp[]>(readEnv, 'either'),
  'return-code': many<ReturnCode>(readReturnCode, 'block'),
  'shutdown-timeout': once(readSeconds),
  respawn: once((s) => s, 'block'),
  'tcpmux-timeout': once(readSeconds),
  'tcpmux-line-max': once((s, ctx) => readInteger(s, ctx, 8, 65536)),
  'sniff-timeout': once(readSeconds),
  'sniff-limit': once((s, ctx) => readInteger(s, ctx, 16, 65536)),
} satisfies BlockSpec;

/** `component TAG { … }`. */
export const COMPONENT_STATEMENTS = {
  ...PROCESS_STATEMENTS,
  mode: once(readMode),
  program: once(readText),
  command: once(readText),
  flags: many(readFlags),
  prerequisites: once(readPrerequisites),
  dependents: once(readNames),
  socket: once(readSocket),
  'socket-type': once(readSocketType),
  service: once(readText),
  'tcpmux-master': once(readText),
  match: many<MatchRule>(readMatch, 'either'),
  'no-match-message': once(readText),
  forward: once(readSocket),
  'proxy-protocol': once(readProxyProtocol),
  'connect-timeout': once(readSeconds),
  'max-instances': once(readPositive),
  'max-instances-message': once(readText),
  'max-rate': once(readCount),
  'max-ip-connections': once(readPositive),
  'max-ip-connections-message': once(readText),
  'access-denied-message': once(readText),
  acl: once<AclRef>(readAclRef, 'either'),
  'list-acl': once<AclRef>(readAclRef, 'either'),
  'admin-acl': once<AclRef>(readAclRef, 'either'),
  chdir: once(readText),
  'remove-file': once(readText),
  stdout: once<Redirect>(readRedirect),
  stderr: once<Redirect>(readRedirect),
  'pass-fd-socket': unsupported('Node cannot pass descriptors over unix sockets (SCM_RIGHTS); use mode accept or inetd'),
  'pass-fd-timeout': unsupported('Node cannot pass descriptors over unix sockets (SCM_RIGHTS)'),
  runlevels: unsupported('runlevels exist only when pies runs as init (PID 1)'),
} satisfies BlockSpec;

/** `control { … }`. */
export const CONTROL_STATEMENTS = {
  socket: once(readSocket),
  acl: once<AclRef>(readAclRef, 'either'),
  'admin-acl': once<AclRef>(readAclRef, 'either'),
  'user-acl': once<AclRef>(readAclRef, 'either'),
  realm: once(readText),
  'idle-timeout': once(readCount),
} satisfies BlockSpec;

/** `syslog { … }`. */
export const SYSLOG_STATEMENTS = {
  facility: once(readFacility),
  tag: once(readText),
  dev: once(readText),
  'print-priority': once(readFlag),
} satisfies BlockSpec;

/** The top level of a config file. */
export const GLOBAL_STATEMENTS = {
  ...PROCESS_STATEMENTS,
  component: many((s) => s, 'block'),
  acl: once<AclRef>(readAclRef, 'block'),
  defacl: many<Acl>(readDefacl, 'block'),
  control: once((s) => s, 'block'),
  syslog: once((s) => s, 'block'),
  pidfile: once(readText),
  'state-directory': once(readText),
  'qotd-file': once(readText),
  'include-inetd': many(readText),
  debug: once(readCount),
  'source-info': once(readFlag),
  'mailer-program': once(readText),
  'mailer-command-line': once(readText),
  'control-file': ignored(),
  'stat-file': ignored(),
  'include-meta1': unsupported('MeTA1 configuration import is not implemented'),
  'meta1-queue-dir': unsupported('MeTA1 configuration import is not implemented'),
  'identity-provider': unsupported('identity providers (PAM, system) are not implemented'),
} satisfies BlockSpec;

/** What readBlock found in a block. */
export interface BlockResult<S extends BlockSpec> {
  readonly values: BlockValues<S>;
  /** Where each keyword was first given (also when its value was refused). */
  readonly locations: Map<string, Location>;
  /** Keywords given but refused, for their value or their form (already reported), so that
   * the builder does not report them a second time as missing. */
  readonly failed: Set<string>;
}

// Read a block's statements against `spec`: unknown statements (with a did-you-mean),
// wrong form, repeated singletons and unsupported ones become diagnostics; the rest is
// converted. `where` names the block in messages, e.g. `component "web"`.
export function readBlock<S extends BlockSpec>(body: readonly Node[], spec: S, ctx: BuildContext, where: string): BlockResult<S> {
  const values: Record<string, unknown> = {};
  const locations = new Map<string, Location>();
  const failed = new Set<string>();
  for (const node of body) {
    if (node.type === 'Include') {
      ctx.diags.error('include', `#include was not resolved here (${where})`, node.location);
      continue;
    }
    const s = node;
    const entry: StatementSpec | undefined = Object.hasOwn(spec, s.name) ? spec[s.name] : undefined;
    if (!entry) {
      const hint = suggest(s.name, Object.keys(spec));
      ctx.diags.error('unknown-statement', `unknown statement "${s.name}" in ${where}${hint ? ` (did you mean "${hint}"?)` : ''}`, s.location);
      continue;
    }
    if (entry.unsupported) {
      ctx.diags.error('unsupported', `"${s.name}" is not supported: ${entry.unsupported}`, s.location);
      continue;
    }
    if (entry.form === 'simple' && s.block) {
      ctx.diags.error('form', `"${s.name}" is a simple statement, not a block: end it with ";"`, s.location);
      failed.add(s.name);
      continue;
    }
    if (entry.form === 'block' && !s.block) {
      ctx.diags.error('form', `"${s.name}" needs a block: ${s.name} … { … }`, s.location);
      failed.add(s.name);
      continue;
    }
    const first = locations.get(s.name);
    if (first && !entry.multiple) {
      ctx.diags.error('repeated-statement', `"${s.name}" given twice in ${where}`, s.location, [{ message: 'first given here', location: first }]);
      continue;
    }
    if (!first) locations.set(s.name, s.location);
    const value = entry.read(s, ctx);
    if (value === undefined) {
      failed.add(s.name);
      continue;
    }
    if (entry.multiple) ((values[s.name] ??= []) as unknown[]).push(value);
    else values[s.name] = value;
  }
  return { values: values as BlockValues<S>, locations, failed };
}
