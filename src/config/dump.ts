// The Config model as canonical pies text (`tpies --dump-config`): every setting explicit,
// defaults filled in, includes spliced. Loading what it prints gives the same model back,
// so socket URLs and ACL addresses are printed as they were written (the model keeps that
// text), and env operations in the form that reads back as the same operations.
import type { Location, Node, StatementNode, ValueNode } from './ast.js';
import type { Acl, AclAddress, AclRef, Component, Config, EnvOp, ExitMatch, Limits, MatchRule, ProcessSettings, Redirect, RespawnPolicy, ReturnCode, TcpmuxSettings } from './model.js';
import { EXIT_CODES } from './read/return-code.js';
import { isBareWord, printTree } from './print.js';

const NOWHERE: Location = { file: '<dump>', line: 0, column: 0 };
const CODE_NAMES = new Map(Object.entries(EXIT_CODES).map(([name, code]) => [code, name]));
const LIMIT_LETTERS: ReadonlyArray<[keyof Limits, string]> = [
  ['as', 'A'], ['core', 'C'], ['data', 'D'], ['fsize', 'F'], ['memlock', 'M'], ['nofile', 'N'], ['rss', 'R'], ['stack', 'S'], ['cpu', 'T'], ['nproc', 'U'], ['nice', 'P'],
];

// Canonical text of a whole config.
export function dumpConfig(config: Config): string {
  return printTree(configStatements(config));
}

function configStatements(config: Config): Node[] {
  const out: Node[] = [];
  if (config.pidfile !== undefined) out.push(st('pidfile', [config.pidfile]));
  if (config.stateDirectory !== undefined) out.push(st('state-directory', [config.stateDirectory]));
  if (config.qotdFile !== undefined) out.push(st('qotd-file', [config.qotdFile]));
  if (config.debug !== undefined) out.push(st('debug', [String(config.debug)]));
  out.push(st('shutdown-timeout', [seconds(config.shutdownTimeoutMs)]));
  out.push(...processStatements(config.process));
  out.push(...tcpmuxStatements(config.tcpmux));
  out.push(respawnStatement(config.respawn));
  out.push(...config.returnCodes.map(returnCodeStatement));
  if (config.syslog) {
    const s = config.syslog;
    out.push(block('syslog', [], [
      ...(s.facility !== undefined ? [st('facility', [s.facility])] : []),
      ...(s.tag !== undefined ? [st('tag', [s.tag])] : []),
      ...(s.dev !== undefined ? [st('dev', [s.dev])] : []),
    ]));
  }
  if (config.control) {
    const c = config.control;
    out.push(block('control', [], [
      ...(c.socket ? [st('socket', [c.socket.url])] : []),
      ...aclRefStatements('acl', c.acl),
      ...aclRefStatements('admin-acl', c.adminAcl),
      ...aclRefStatements('user-acl', c.userAcl),
    ]));
  }
  for (const acl of config.defacls.values()) out.push(block('defacl', [acl.name ?? ''], aclEntries(acl)));
  out.push(...aclRefStatements('acl', config.acl));
  for (const c of config.components) out.push(componentStatement(c, config));
  return out;
}

// Settings a component inherits unchanged from the top level are left out of its block.
function componentStatement(c: Component, config: Config): StatementNode {
  const body: Node[] = [st('mode', [c.mode])];
  if (c.flags.size > 0) body.push(st('flags', [list([...c.flags])]));
  if (c.program !== undefined) body.push(st('program', [c.program]));
  if (c.command !== undefined) body.push(st('command', [c.command]));
  if (c.prerequisites.length > 0) body.push(st('prerequisites', [list(c.prerequisites)]));
  if (c.dependents.length > 0) body.push(st('dependents', [list(c.dependents)]));
  if (c.socket) body.push(st('socket', [c.socket.url]));
  if (c.service !== undefined) body.push(st('service', [c.service]));
  if (c.tcpmuxMaster !== undefined) body.push(st('tcpmux-master', [c.tcpmuxMaster]));
  if (c.tcpmux && !sameJson(c.tcpmux, config.tcpmux)) body.push(...tcpmuxStatements(c.tcpmux));
  body.push(...(c.match ?? []).map(matchStatement));
  if (c.forward) body.push(st('forward', [c.forward.url]));
  if (c.proxyProtocol !== undefined) body.push(st('proxy-protocol', [`v${c.proxyProtocol}`]));
  if (c.connectTimeoutMs !== undefined) body.push(st('connect-timeout', [seconds(c.connectTimeoutMs)]));
  const numbers: ReadonlyArray<[string, number | undefined]> = [
    ['max-instances', c.maxInstances], ['max-rate', c.maxRate], ['max-ip-connections', c.maxIpConnections],
  ];
  for (const [name, n] of numbers) if (n !== undefined) body.push(st(name, [String(n)]));
  const texts: ReadonlyArray<[string, string | undefined]> = [
    ['max-instances-message', c.maxInstancesMessage], ['max-ip-connections-message', c.maxIpConnectionsMessage],
    ['access-denied-message', c.accessDeniedMessage], ['remove-file', c.removeFile], ['no-match-message', c.noMatchMessage],
  ];
  for (const [name, t] of texts) if (t !== undefined) body.push(st(name, [t]));
  body.push(...aclRefStatements('acl', c.acl), ...aclRefStatements('list-acl', c.listAcl), ...aclRefStatements('admin-acl', c.adminAcl));
  body.push(...processStatements(c));
  if (c.stdout) body.push(st('stdout', redirectValues(c.stdout)));
  if (c.stderr) body.push(st('stderr', redirectValues(c.stderr)));
  body.push(...c.returnCodes.map(returnCodeStatement));
  if (!sameJson(c.respawn, config.respawn)) body.push(respawnStatement(c.respawn));
  if (c.shutdownTimeoutMs !== config.shutdownTimeoutMs) body.push(st('shutdown-timeout', [seconds(c.shutdownTimeoutMs)]));
  return block('component', [c.tag], body);
}

function sameJson(a: object, b: object): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function processStatements(p: ProcessSettings): StatementNode[] {
  const out: StatementNode[] = [];
  if (p.user !== undefined) out.push(st('user', [p.user]));
  if (p.group !== undefined) out.push(st('group', [list(p.group)]));
  if (p.allgroups !== undefined) out.push(st('allgroups', [p.allgroups ? 'yes' : 'no']));
  if (p.umask !== undefined) out.push(st('umask', [p.umask.toString(8).padStart(3, '0')]));
  const limits = p.limits !== undefined ? LIMIT_LETTERS.flatMap(([k, l]) => (p.limits?.[k] !== undefined ? [`${l}${p.limits[k]}`] : [])) : [];
  // No letter, no limit: `limits "";` would not load.
  if (limits.length > 0) out.push(st('limits', [limits.join(' ')]));
  if (p.chdir !== undefined) out.push(st('chdir', [p.chdir]));
  if (p.env !== undefined) out.push(envStatements(p.env));
  return out;
}

// The block form has no append/prepend, so env with those is printed in the legacy
// one-line form, which has them, when every operation can be written there; only if not,
// append and prepend become `set` with pies' own ${…} expansion.
function envStatements(ops: readonly EnvOp[]): StatementNode {
  const legacy = ops.some((op) => op.op === 'append' || op.op === 'prepend') ? legacyEnvItems(ops) : undefined;
  return legacy ? st('env', [list(legacy)]) : block('env', [], ops.map(envStatement));
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

// `env - NAME -NAME -NAME=VAL NAME=VAL NAME+=VAL NAME=+VAL` items that read back as exactly
// `ops`, or undefined. The reader puts clear and keep first, as the model already has them.
function legacyEnvItems(ops: readonly EnvOp[]): string[] | undefined {
  const items: string[] = [];
  for (const [i, op] of ops.entries()) {
    switch (op.op) {
      case 'clear':
        if (i !== 0) return undefined;
        items.push('-');
        break;
      case 'keep':
        if (!ENV_NAME.test(op.pattern) || op.value !== undefined) return undefined;
        items.push(op.pattern);
        break;
      case 'unset':
        if (!ENV_NAME.test(op.pattern)) return undefined;
        items.push(op.value === undefined ? `-${op.pattern}` : `-${op.pattern}=${op.value}`);
        break;
      case 'set':
        // NAME=+VALUE would read back as prepend.
        if (op.value.startsWith('+')) return undefined;
        items.push(`${op.name}=${op.value}`);
        break;
      case 'append':
        items.push(`${op.name}+=${op.value}`);
        break;
      case 'prepend':
        items.push(`${op.name}=+${op.value}`);
        break;
      case 'eval':
        return undefined;
    }
  }
  return items;
}

function envStatement(op: EnvOp): StatementNode {
  switch (op.op) {
    case 'clear':
      return st('clear', []);
    case 'keep':
    case 'unset':
      return st(op.op, [op.value === undefined ? op.pattern : `${op.pattern}=${op.value}`]);
    case 'set':
      return st('set', [`${op.name}=${op.value}`]);
    case 'eval':
      return st('eval', [op.expression]);
    case 'append':
    case 'prepend':
      // The block form has no append/prepend; pies' own expansion expresses them (the
      // operation then reads back as a `set`; see envStatements).
      return st('set', [op.op === 'append' ? `${op.name}=\${${op.name}:+\${${op.name}}}${op.value}` : `${op.name}=${op.value}\${${op.name}:+\${${op.name}}}`]);
  }
}

function tcpmuxStatements(t: TcpmuxSettings): StatementNode[] {
  return [
    st('tcpmux-timeout', [seconds(t.timeoutMs)]),
    st('tcpmux-line-max', [String(t.maxLineBytes)]),
    st('sniff-timeout', [seconds(t.sniffTimeoutMs)]),
    st('sniff-limit', [String(t.sniffLimit)]),
  ];
}

function matchStatement(m: MatchRule): StatementNode {
  switch (m.kind) {
    case 'prefix':
      return st('match', [m.kind, m.text]);
    case 'regex':
      return st('match', [m.kind, m.source]);
    case 'tls':
    case 'http': {
      const conditions = m.kind === 'tls' ? [['sni', m.sni], ['alpn', m.alpn]] as const : [['host', m.host]] as const;
      const body = conditions.flatMap(([name, values]) => (values ? [st(name, [list(values)])] : []));
      return body.length > 0 ? block('match', [m.kind], body) : st('match', [m.kind]);
    }
    default:
      return st('match', [m.kind]);
  }
}

function respawnStatement(r: RespawnPolicy): StatementNode {
  return block('respawn', [], [
    st('initial-delay', [seconds(r.initialDelayMs)]),
    st('factor', [String(r.factor)]),
    st('max-delay', [seconds(r.maxDelayMs)]),
    st('jitter', [String(r.jitter)]),
    st('window', [seconds(r.windowMs)]),
    st('limit', [String(r.limit)]),
    st('sleep', [seconds(r.sleepMs)]),
  ]);
}

function returnCodeStatement(r: ReturnCode): StatementNode {
  return block('return-code', [list(r.match.map(exitMatchText))], [
    ...(r.action !== undefined ? [st('action', [r.action])] : []),
    ...(r.exec !== undefined ? [st('exec', [r.exec])] : []),
    ...(r.notify !== undefined ? [st('notify', [list(r.notify)])] : []),
    ...(r.message !== undefined ? [st('message', [r.message])] : []),
  ]);
}

function exitMatchText(m: ExitMatch): string {
  return m.kind === 'code' ? (CODE_NAMES.get(m.code) ?? String(m.code)) : `SIG+${m.signal}`;
}

function redirectValues(r: Redirect): string[] {
  return r.kind === 'file' ? ['file', r.path] : ['syslog', r.facility !== undefined ? `${r.facility}.${r.priority}` : r.priority];
}

function aclRefStatements(name: string, ref: AclRef | undefined): StatementNode[] {
  if (!ref) return [];
  return [ref.kind === 'named' ? st(name, [ref.name]) : block(name, [], aclEntries(ref.acl))];
}

function aclEntries(acl: Acl): StatementNode[] {
  return acl.entries.map((e) => {
    const values: (string | ValueNode)[] = [];
    if (e.acl !== undefined) values.push('acl', e.acl);
    if (e.from !== undefined) values.push('from', list(e.from.map(aclAddressText)));
    return st(e.action, values.length > 0 ? values : ['any']);
  });
}

function aclAddressText(a: AclAddress): string {
  return a.kind === 'any' ? 'any' : a.kind === 'unix' ? a.path : a.text;
}

function seconds(ms: number): string {
  return String(ms / 1000);
}

function list(items: readonly string[]): ValueNode {
  return { type: 'List', items: items.map(word), location: NOWHERE };
}

function word(value: string): ValueNode {
  return { type: isBareWord(value) ? 'Word' : 'String', value, location: NOWHERE };
}

function st(name: string, values: readonly (string | ValueNode)[]): StatementNode {
  return { type: 'Statement', name, location: NOWHERE, values: values.map((v) => (typeof v === 'string' ? word(v) : v)) };
}

function block(name: string, values: readonly (string | ValueNode)[], body: readonly Node[]): StatementNode {
  return { ...st(name, values), block: body };
}
