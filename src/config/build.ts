// AST + schema → the typed Config model. Local problems (a missing command, a socket on a
// respawn component, a bad internal service) are reported here; cross-references between
// components are config/checks/. Every problem becomes a diagnostic; the walk goes on.
import type { Location, Node, StatementNode } from './ast.js';
import type {
  Acl,
  Component,
  Config,
  ControlSettings,
  Flag,
  InternalService,
  ProcessSettings,
  RespawnPolicy,
  SyslogSettings,
  TcpmuxSettings,
} from './model.js';
import { DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_RESPAWN_POLICY, DEFAULT_SHUTDOWN_TIMEOUT_MS, DEFAULT_TCPMUX_SETTINGS } from './model.js';
import { splitCommandLine } from './command-line.js';
import {
  type BlockValues,
  COMPONENT_STATEMENTS,
  CONTROL_STATEMENTS,
  GLOBAL_STATEMENTS,
  RESPAWN_STATEMENTS,
  SYSLOG_STATEMENTS,
  readBlock,
} from './schema.js';
import { type BuildContext, badValue, isScalar } from './values.js';

export const INTERNAL_SERVICES: readonly InternalService[] = ['echo', 'discard', 'daytime', 'time', 'chargen', 'qotd', 'tcpmux'];

// Build the model from a fully loaded statement list (includes already spliced in).
export function buildConfig(body: readonly Node[], ctx: BuildContext, files: readonly string[] = []): Config {
  const { values: g, locations, failed } = readBlock(body, GLOBAL_STATEMENTS, ctx, 'the top level');
  warnNoEffect(ctx, locations, failed, ['source-info', 'mailer-program', 'mailer-command-line']);
  for (const keyword of ['control-file', 'stat-file'] as const) for (const at of g[keyword] ?? []) noEffect(ctx, keyword, at);
  const respawn = readRespawn(g.respawn, ctx, DEFAULT_RESPAWN_POLICY);
  const tcpmux = tcpmuxSettings(g, DEFAULT_TCPMUX_SETTINGS);
  const shutdownTimeoutMs = g['shutdown-timeout'] ?? DEFAULT_SHUTDOWN_TIMEOUT_MS;
  const defaults = { respawn, tcpmux, shutdownTimeoutMs };

  const components: Component[] = [];
  for (const s of g.component ?? []) {
    const component = buildComponent(s, ctx, defaults, components);
    if (component) components.push(component);
  }
  return {
    files,
    components,
    defacls: collectDefacls(g.defacl ?? [], ctx),
    ...(g.acl ? { acl: g.acl } : {}),
    ...(g.pidfile !== undefined ? { pidfile: g.pidfile } : {}),
    ...(g['state-directory'] !== undefined ? { stateDirectory: g['state-directory'] } : {}),
    ...(g['qotd-file'] !== undefined ? { qotdFile: g['qotd-file'] } : {}),
    ...(g.debug !== undefined ? { debug: g.debug } : {}),
    shutdownTimeoutMs,
    process: processSettings(g),
    returnCodes: g['return-code'] ?? [],
    respawn,
    tcpmux,
    ...(g.control ? { control: buildControl(g.control, ctx) } : {}),
    ...(g.syslog ? { syslog: buildSyslog(g.syslog, ctx) } : {}),
  };
}

type Defaults = { readonly respawn: RespawnPolicy; readonly tcpmux: TcpmuxSettings; readonly shutdownTimeoutMs: number };
type ComponentValues = BlockValues<typeof COMPONENT_STATEMENTS>;

function buildComponent(s: StatementNode, ctx: BuildContext, defaults: Defaults, before: readonly Component[]): Component | undefined {
  const tagNode = s.values[0];
  if (s.values.length !== 1 || !tagNode || !isScalar(tagNode)) {
    return badValue(ctx, s.values[1] ?? s, '"component" takes one tag: component TAG { … }');
  }
  const tag = tagNode.value;
  const where = `component "${tag}"`;
  const { values: v, locations, failed } = readBlock(s.block ?? [], COMPONENT_STATEMENTS, ctx, where);
  // A statement that was given but refused has been reported; what depends on it is not
  // reported again (one mistake, one error).
  const given = (keyword: string): boolean => v[keyword as keyof ComponentValues] !== undefined || failed.has(keyword);
  const flags = new Set<Flag>();
  for (const list of v.flags ?? []) for (const flag of list) flags.add(flag);
  const at = (keyword: string): Location => locations.get(keyword) ?? s.location;
  const report = (rule: string, keyword: string, message: string): void => ctx.diags.error(rule, `${where}: ${message}`, at(keyword));

  // pies reaches subordinates and internal services only through sockets, so when no mode
  // is given they are per-connection components.
  const mode = v.mode ?? (v['tcpmux-master'] !== undefined || v.socket || flags.has('internal') ? 'inetd' : 'respawn');
  const perConnection = mode === 'inetd';

  let internal: InternalService | undefined;
  if (flags.has('internal')) {
    if (v.service === undefined) {
      if (!given('service')) report('missing-service', 'flags', 'an internal component needs "service NAME" naming the built-in service');
    } else if (!(INTERNAL_SERVICES as readonly string[]).includes(v.service)) {
      report('bad-value', 'service', `"${v.service}" is not a built-in service (${INTERNAL_SERVICES.join(', ')})`);
    } else internal = v.service as InternalService;
    if (v.command !== undefined || v.program !== undefined) report('internal-command', v.command !== undefined ? 'command' : 'program', 'an internal service runs no program: drop "command"/"program" or the internal flag');
    if (!perConnection) report('bad-mode', 'mode', `internal services are per-connection (mode inetd), not mode ${mode}`);
    if (given('forward')) report('internal-command', 'forward', 'an internal service forwards nowhere: drop "forward" or the internal flag');
  } else if (given('forward')) {
    if (given('command') || given('program')) report('forward-command', given('command') ? 'command' : 'program', 'a component either runs a program or forwards: drop "command"/"program" or "forward"');
    if (!perConnection && !failed.has('mode')) report('bad-mode', 'mode', `"forward" serves connections (mode inetd), not mode ${mode}`);
    if (flags.has('wait')) report('bad-flag', 'flags', 'flag "wait" hands the listening socket to a program; a forwarding component has none');
  } else if (!given('command') && !given('program') && !failed.has('flags')) {
    // (A refused `flags` statement may have been meant to say `internal`.)
    report('missing-command', 'component', `no "command" to run`);
  }

  let argv: readonly string[] | undefined;
  if (v.command !== undefined && !flags.has('shell')) {
    const split = splitCommandLine(v.command);
    if ('error' in split) report('bad-value', 'command', split.error);
    else if (split.argv.length === 0 && v.program === undefined) report('missing-command', 'command', '"command" is empty');
    else argv = split.argv;
  }

  if (v.socket && v['tcpmux-master'] === undefined && !(perConnection || mode === 'accept')) {
    report('bad-socket', 'socket', `mode ${mode} takes no socket (sockets belong to inetd and accept components)`);
  }
  if (!given('socket') && !given('tcpmux-master') && (perConnection || mode === 'accept')) {
    report('missing-socket', 'mode', `mode ${mode} needs a "socket" to listen on`);
  }
  if (flags.has('wait') && !perConnection && !failed.has('mode')) report('bad-flag', 'flags', 'flag "wait" applies to inetd components only');
  if (flags.has('resolve') && !flags.has('sockenv')) ctx.diags.warning('flag-without-effect', `${where}: flag "resolve" has no effect without "sockenv"`, at('flags'));

  const prerequisites = v.prerequisites === 'all' ? before.map((c) => c.tag) : (v.prerequisites ?? []);
  const isMaster = internal === 'tcpmux';
  if (!isMaster) {
    for (const keyword of ['tcpmux-timeout', 'tcpmux-line-max', 'sniff-timeout', 'sniff-limit', 'no-match-message'] as const) {
      if (v[keyword] !== undefined) {
        ctx.diags.warning('no-effect', `${where}: "${keyword}" has no effect here: it applies only to a TCPMUX master (flags internal; service tcpmux;)`, at(keyword));
      }
    }
  }
  if (!given('forward')) {
    for (const keyword of ['proxy-protocol', 'connect-timeout'] as const) {
      if (v[keyword] !== undefined) ctx.diags.warning('no-effect', `${where}: "${keyword}" has no effect without "forward"`, at(keyword));
    }
  }
  // Even a component with errors is returned (best effort), so the cross-reference checks
  // still run and every problem is reported in one go; loadConfig returns no config then.

  // Optional properties are only set when they have a value (the model has no key for an
  // absent setting, and its JSON relies on the key order below). Set one by one rather than
  // spread from small literals: this runs for every component, and spreads cost.
  const c: Partial<Writable<Component>> = { tag, location: s.location, mode, flags };
  setProcessSettings(c, v);
  if (v.command !== undefined) c.command = v.command;
  if (argv) c.argv = argv;
  if (v.program !== undefined) c.program = v.program;
  c.prerequisites = prerequisites;
  c.dependents = v.dependents ?? [];
  if (v.socket) c.socket = v.socket;
  c.socketType = 'stream';
  if (v.service !== undefined) c.service = v.service;
  if (internal) c.internal = internal;
  if (v['tcpmux-master'] !== undefined) c.tcpmuxMaster = v['tcpmux-master'];
  if (isMaster) c.tcpmux = tcpmuxSettings(v, defaults.tcpmux);
  if (v.match) c.match = v.match;
  if (isMaster && v['no-match-message'] !== undefined) c.noMatchMessage = v['no-match-message'];
  if (v.forward) {
    c.forward = v.forward;
    if (v['proxy-protocol'] !== undefined) c.proxyProtocol = v['proxy-protocol'];
    c.connectTimeoutMs = v['connect-timeout'] ?? DEFAULT_CONNECT_TIMEOUT_MS;
  }
  if (v['max-instances'] !== undefined) c.maxInstances = v['max-instances'];
  if (v['max-instances-message'] !== undefined) c.maxInstancesMessage = v['max-instances-message'];
  if (v['max-rate'] !== undefined) c.maxRate = v['max-rate'];
  if (v['max-ip-connections'] !== undefined) c.maxIpConnections = v['max-ip-connections'];
  if (v['max-ip-connections-message'] !== undefined) c.maxIpConnectionsMessage = v['max-ip-connections-message'];
  if (v['access-denied-message'] !== undefined) c.accessDeniedMessage = v['access-denied-message'];
  if (v.acl) c.acl = v.acl;
  if (v['list-acl']) c.listAcl = v['list-acl'];
  if (v['admin-acl']) c.adminAcl = v['admin-acl'];
  if (v['remove-file'] !== undefined) c.removeFile = v['remove-file'];
  c.returnCodes = v['return-code'] ?? [];
  if (v.stdout) c.stdout = v.stdout;
  if (v.stderr) c.stderr = v.stderr;
  c.respawn = readRespawn(v.respawn, ctx, defaults.respawn);
  c.shutdownTimeoutMs = v['shutdown-timeout'] ?? defaults.shutdownTimeoutMs;
  c.statementLocations = locations;
  return c as Component;
}

type Writable<T> = { -readonly [K in keyof T]: T[K] };

function processSettings(v: BlockValues<typeof GLOBAL_STATEMENTS> | ComponentValues): ProcessSettings {
  const settings: Writable<ProcessSettings> = {};
  setProcessSettings(settings, v);
  return settings;
}

// The process settings `v` gives, added to `into` (only those given, as processSettings).
function setProcessSettings(into: Writable<ProcessSettings>, v: BlockValues<typeof GLOBAL_STATEMENTS> | ComponentValues): void {
  if (v.user !== undefined) into.user = v.user;
  if (v.group !== undefined) into.group = v.group;
  if (v.allgroups !== undefined) into.allgroups = v.allgroups;
  if (v.umask !== undefined) into.umask = v.umask;
  // Limits without a letter that counts (`limits "L5"`) limit nothing: no limits at all.
  if (v.limits !== undefined && Object.keys(v.limits).length > 0) into.limits = v.limits;
  if (v.env !== undefined) into.env = v.env;
  if ('chdir' in v && v.chdir !== undefined) into.chdir = v.chdir;
}

function tcpmuxSettings(v: BlockValues<typeof GLOBAL_STATEMENTS> | ComponentValues, base: TcpmuxSettings): TcpmuxSettings {
  return {
    maxLineBytes: v['tcpmux-line-max'] ?? base.maxLineBytes,
    timeoutMs: v['tcpmux-timeout'] ?? base.timeoutMs,
    sniffLimit: v['sniff-limit'] ?? base.sniffLimit,
    sniffTimeoutMs: v['sniff-timeout'] ?? base.sniffTimeoutMs,
  };
}

// Statements tpies reads (and checks) for pies compatibility but does nothing with. One
// refused for its value has its error, and no warning on top.
function warnNoEffect(ctx: BuildContext, locations: ReadonlyMap<string, Location>, failed: ReadonlySet<string>, keywords: readonly string[]): void {
  for (const keyword of keywords) {
    const at = locations.get(keyword);
    if (at && !failed.has(keyword)) noEffect(ctx, keyword, at);
  }
}

function noEffect(ctx: BuildContext, keyword: string, at: Location): void {
  ctx.diags.warning('no-effect', `"${keyword}" is accepted for pies compatibility; it has no effect in tpies`, at);
}

// `respawn { … }`, `control { … }`, `syslog { … }`: blocks without a name or value.
function noValue(s: StatementNode, ctx: BuildContext): void {
  if (s.values.length > 0) ctx.diags.error('arity', `"${s.name}" takes no value: ${s.name} { … }`, s.values[0]!.location);
}

function readRespawn(s: StatementNode | undefined, ctx: BuildContext, base: RespawnPolicy): RespawnPolicy {
  if (!s) return base;
  noValue(s, ctx);
  const { values: r } = readBlock(s.block ?? [], RESPAWN_STATEMENTS, ctx, 'respawn');
  const policy: RespawnPolicy = {
    initialDelayMs: r['initial-delay'] ?? base.initialDelayMs,
    factor: r.factor ?? base.factor,
    maxDelayMs: r['max-delay'] ?? base.maxDelayMs,
    jitter: r.jitter ?? base.jitter,
    windowMs: r.window ?? base.windowMs,
    limit: r.limit ?? base.limit,
    sleepMs: r.sleep ?? base.sleepMs,
  };
  if (policy.maxDelayMs < policy.initialDelayMs) ctx.diags.error('bad-value', '"max-delay" is shorter than "initial-delay"', s.location);
  return policy;
}

function collectDefacls(list: readonly Acl[], ctx: BuildContext): Map<string, Acl> {
  const defacls = new Map<string, Acl>();
  for (const acl of list) {
    const name = acl.name ?? '';
    const first = defacls.get(name);
    if (first) {
      ctx.diags.error('duplicate-name', `defacl "${name}" is defined twice`, acl.location, [{ message: 'first defined here', location: first.location }]);
    } else defacls.set(name, acl);
  }
  return defacls;
}

function buildControl(s: StatementNode, ctx: BuildContext): ControlSettings {
  noValue(s, ctx);
  const { values: c, locations, failed } = readBlock(s.block ?? [], CONTROL_STATEMENTS, ctx, 'control');
  warnNoEffect(ctx, locations, failed, ['realm', 'idle-timeout']);
  const socketLocation = locations.get('socket');
  return {
    location: s.location,
    ...(c.socket ? { socket: c.socket, ...(socketLocation ? { socketLocation } : {}) } : {}),
    ...(c.acl ? { acl: c.acl } : {}),
    ...(c['admin-acl'] ? { adminAcl: c['admin-acl'] } : {}),
    ...(c['user-acl'] ? { userAcl: c['user-acl'] } : {}),
  };
}

function buildSyslog(s: StatementNode, ctx: BuildContext): SyslogSettings {
  noValue(s, ctx);
  const { values: l, locations, failed } = readBlock(s.block ?? [], SYSLOG_STATEMENTS, ctx, 'syslog');
  warnNoEffect(ctx, locations, failed, ['print-priority']);
  return {
    ...(l.facility !== undefined ? { facility: l.facility } : {}),
    ...(l.tag !== undefined ? { tag: l.tag } : {}),
    ...(l.dev !== undefined ? { dev: l.dev } : {}),
  };
}
