// Reads classic inetd.conf text (pies manual, "Using inetd Configuration Files") into the
// generic AST the grecs grammar produces: one `component TAG { … }` per service and listen
// address, so config/build.ts and the checks validate it like any pies config.
import { isIPv4, isIPv6 } from 'node:net';
import type { Location, ScalarNode, StatementNode } from './ast.js';
import { quoteWord } from './command-line.js';
import { Diagnostics, type Diagnostic } from './diagnostics.js';
import { isBareWord } from './print.js';

/** One blank-separated field of a line and its 1-based column. */
interface Field {
  readonly text: string;
  readonly column: number;
}

/** A listen address from a node prefix or a `HOST:` line; `host` null is the any-address. */
interface Node {
  readonly host: string | null;
  /** Where it was written: on the entry's own line (a prefix) or on a `HOST:` line. */
  readonly location: Location;
  readonly fromHostLine: boolean;
}

type Protocol = 'tcp' | 'tcp4' | 'tcp6';

/** A service line that passed every field check. */
interface Entry {
  readonly line: number;
  /** Column of the whole first field, node prefix included: where the component is defined. */
  readonly column: number;
  readonly nodes: readonly Node[];
  /** The service field without its node prefix, and where that part starts. */
  readonly service: Field;
  readonly protocol: Protocol;
  readonly wait: Field | null;
  readonly maxRate: Field | null;
  readonly user: Field;
  readonly group: Field | null;
  readonly program: Field;
  readonly args: readonly Field[];
  readonly tcpmux: { readonly name: Field; readonly plus: boolean } | null;
}

// Lines: `#` comments, blank lines, BSD `HOST:` lines (`*:` resets to any), and service
// entries with optional `NODE[,NODE…]:` prefixes. Not accepted: continuation lines, comments
// after fields, quoting in arguments (inetd splits on blanks only, so neither do we).
//
// Component tags, chosen to be grecs words and unique:
//   SERVICE            entry listening on the any-address (no node, or `*`)
//   NODE:SERVICE       entry listening on NODE (from its prefix or the last `HOST:` line)
//   …/tcp6             suffix for `tcp6` entries, so `echo … tcp` and `echo … tcp6` coexist
//   tcpmux/NAME        TCPMUX subordinate (with or without `+`); nodes do not apply to it
// The master is the `tcpmux stream tcp nowait root internal` line, tagged by the same rule
// (`tcpmux`, `NODE:tcpmux`, `tcpmux/tcp6`). Every subordinate attaches to the first master in
// the file (its first node when it has several), because pies gives a subordinate exactly
// one `tcpmux-master`. Two entries that come out with the same tag are a duplicate (error).

// service, socket type, protocol, wait/nowait, user, program; arguments are optional.
const MIN_FIELDS = 6;
// The default before any `HOST:` line; with no host, its location is never reported.
const ANY_NODE: Node = { host: null, location: { file: '', line: 0, column: 0 }, fromHostLine: true };
const HOSTNAME = /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/;
const TCPMUX_PREFIX = 'tcpmux/';

// Turn inetd.conf text into component statements; every problem is reported, none thrown.
export function parseInetdConf(text: string, file: string): { body: StatementNode[]; diagnostics: Diagnostic[] } {
  const diags = new Diagnostics();
  const entries: Entry[] = [];
  let defaultNodes: readonly Node[] = [ANY_NODE];
  text.split('\n').forEach((raw, index) => {
    const line = index + 1;
    const fields = splitFields(raw.replace(/\r$/, ''));
    const first = fields[0];
    if (!first || first.text.startsWith('#')) return;
    const at = (column: number): Location => ({ file, line, column });
    if (fields.length === 1 && first.text.endsWith(':')) {
      const nodes = readNodes({ text: first.text.slice(0, -1), column: first.column }, at, true, diags);
      if (nodes) defaultNodes = nodes;
      return;
    }
    if (first.text.endsWith(':')) {
      diags.error('inetd-syntax', `"${first.text}" sets the listen address for the lines below and must be alone on its line`, at(first.column));
      return;
    }
    const entry = readEntry(fields, defaultNodes, line, at, diags);
    if (entry) entries.push(entry);
  });
  return { body: buildComponents(entries, file, diags), diagnostics: diags.list };
}

function splitFields(line: string): Field[] {
  const fields: Field[] = [];
  for (const m of line.matchAll(/[^ \t]+/g)) fields.push({ text: m[0], column: m.index + 1 });
  return fields;
}

// Check every field of one service line, reporting all its problems; null if any.
function readEntry(fields: readonly Field[], defaultNodes: readonly Node[], line: number, at: (column: number) => Location, diags: Diagnostics): Entry | null {
  const [serviceField, socketType, protocolField, waitField, userField, program, ...args] = fields;
  if (!serviceField || !socketType || !protocolField || !waitField || !userField || !program) {
    diags.error(
      'inetd-syntax',
      `expected at least ${MIN_FIELDS} fields (service, socket type, protocol, wait/nowait, user, program), found ${fields.length}`,
      at(fields[0]?.column ?? 1),
    );
    return null;
  }
  const before = diags.list.length;
  const failed = (): boolean => diags.list.slice(before).some((d) => d.severity === 'error');

  // The node prefix ends at the last colon, so bare IPv6 nodes (`::1:echo`) work too.
  const colon = serviceField.text.lastIndexOf(':');
  const service: Field = colon === -1 ? serviceField : { text: serviceField.text.slice(colon + 1), column: serviceField.column + colon + 1 };
  let nodes = defaultNodes;
  if (colon !== -1) {
    nodes = readNodes({ text: serviceField.text.slice(0, colon), column: serviceField.column }, at, false, diags) ?? [];
  }

  if (socketType.text !== 'stream') {
    diags.error('unsupported', `socket type "${socketType.text}" is not supported: tpies serves stream sockets only`, at(socketType.column));
  }
  const protocol = readProtocol(protocolField, at, diags);
  // Subordinates have no socket, so their (ignored) nodes need not fit the protocol.
  if (protocol && !service.text.startsWith(TCPMUX_PREFIX)) for (const node of nodes) checkFamily(protocol, node, at(serviceField.column), diags);

  const waitMatch = /^(wait|nowait)(?:\.(.*))?$/.exec(waitField.text);
  let maxRate: Field | null = null;
  if (!waitMatch) {
    diags.error('inetd-syntax', `expected "wait" or "nowait" (optionally .MAX), found "${waitField.text}"`, at(waitField.column));
  } else if (waitMatch[2] !== undefined) {
    maxRate = { text: waitMatch[2], column: waitField.column + waitMatch[1]!.length + 1 };
    if (!/^[0-9]+$/.test(maxRate.text)) diags.error('inetd-syntax', `"${maxRate.text}" in "${waitField.text}" is not a number of invocations per minute`, at(maxRate.column));
  }

  // GNU inetd takes `user:group` and the older `user.group`; a colon wins when both appear.
  const sep = userField.text.includes(':') ? userField.text.indexOf(':') : userField.text.indexOf('.');
  const user: Field = sep === -1 ? userField : { text: userField.text.slice(0, sep), column: userField.column };
  const group: Field | null = sep === -1 ? null : { text: userField.text.slice(sep + 1), column: userField.column + sep + 1 };
  if (user.text === '' || group?.text === '') diags.error('inetd-syntax', `"${userField.text}" is not USER, USER.GROUP or USER:GROUP`, at(userField.column));

  let tcpmux: Entry['tcpmux'] = null;
  if (service.text.startsWith(TCPMUX_PREFIX)) {
    const plus = service.text[TCPMUX_PREFIX.length] === '+';
    const skip = TCPMUX_PREFIX.length + (plus ? 1 : 0);
    const name: Field = { text: service.text.slice(skip), column: service.column + skip };
    if (name.text === '') diags.error('inetd-syntax', `"${service.text}" names no TCPMUX service`, at(service.column));
    if (program.text === 'internal') diags.error('inetd-syntax', `TCPMUX subordinate "${name.text}" needs a server program, not "internal"`, at(program.column));
    if (colon !== -1) {
      diags.warning('inetd-syntax', `listen address ignored: TCPMUX subordinate "${name.text}" is reached through its master, not a socket of its own`, at(serviceField.column));
    }
    tcpmux = { name, plus };
  }
  if (program.text === 'internal' && args.length > 0) {
    diags.warning('inetd-syntax', `arguments after "internal" are ignored`, at(args[0]!.column));
  }

  if (failed() || !protocol) return null;
  return {
    line,
    column: serviceField.column,
    nodes,
    service,
    protocol,
    wait: waitMatch?.[1] === 'wait' ? waitField : null,
    maxRate,
    user,
    group,
    program,
    args,
    tcpmux,
  };
}

function readProtocol(field: Field, at: (column: number) => Location, diags: Diagnostics): Protocol | undefined {
  const p = field.text;
  if (p === 'tcp' || p === 'tcp4' || p === 'tcp6') return p;
  const reason = /^udp/.test(p) ? 'tpies serves stream (TCP) sockets only' : 'expected tcp, tcp4 or tcp6';
  diags.error('unsupported', `protocol "${p}" is not supported: ${reason}`, at(field.column));
  return undefined;
}

// A `tcp4` entry cannot listen on an IPv6 address, nor `tcp6` on an IPv4 address or a name
// (inet6:// URLs take bracketed IPv6 literals only). `entryAt` is used for HOST: nodes.
function checkFamily(protocol: Protocol, node: Node, entryAt: Location, diags: Diagnostics): void {
  if (node.host === null) return;
  const location = node.fromHostLine ? entryAt : node.location;
  const notes = node.fromHostLine ? [{ message: 'listen address set here', location: node.location }] : [];
  if (protocol === 'tcp4' && isIPv6(node.host)) diags.error('inetd-address', `"${node.host}" is an IPv6 address, but the protocol is tcp4`, location, notes);
  if (protocol === 'tcp6' && !isIPv6(node.host)) diags.error('inetd-address', `"${node.host}" is not an IPv6 address, but the protocol is tcp6`, location, notes);
}

// `NODE[,NODE…]` → nodes; `*` is the any-address. null after reporting a bad node.
function readNodes(field: Field, at: (column: number) => Location, fromHostLine: boolean, diags: Diagnostics): Node[] | null {
  const nodes: Node[] = [];
  let ok = true;
  let offset = 0;
  for (const part of field.text.split(',')) {
    const column = field.column + offset;
    offset += part.length + 1;
    const host = /^\[(.*)\]$/.exec(part)?.[1] ?? part;
    if (host === '*') nodes.push({ host: null, location: at(column), fromHostLine });
    else if (isIPv4(host) || isIPv6(host) || HOSTNAME.test(host)) nodes.push({ host, location: at(column), fromHostLine });
    else {
      diags.error('inetd-address', part === '' ? `empty listen address in "${field.text}:"` : `"${part}" is neither an IP address, a host name nor "*"`, at(column));
      ok = false;
    }
  }
  return ok ? nodes : null;
}

function tagOf(entry: Entry, node: Node): string {
  if (entry.tcpmux) return `${TCPMUX_PREFIX}${entry.tcpmux.name.text}`;
  return `${node.host === null ? '' : `${node.host}:`}${entry.service.text}${entry.protocol === 'tcp6' ? '/tcp6' : ''}`;
}

function isMaster(entry: Entry): boolean {
  return !entry.tcpmux && entry.service.text === 'tcpmux' && entry.program.text === 'internal';
}

// Entries → component statements in file order, with an implicit master when needed.
function buildComponents(entries: readonly Entry[], file: string, diags: Diagnostics): StatementNode[] {
  const master = entries.find(isMaster);
  const firstSubordinate = entries.find((e) => e.tcpmux);
  const masterTag = master ? tagOf(master, master.nodes[0] ?? ANY_NODE) : 'tcpmux';
  const body: StatementNode[] = [];
  const seen = new Map<string, Location>();
  const add = (tag: string, location: Location, block: StatementNode[]): void => {
    const first = seen.get(tag);
    if (first) {
      diags.error('inetd-duplicate', `service "${tag}" is defined twice`, location, [{ message: 'first defined here', location: first }]);
      return;
    }
    seen.set(tag, location);
    body.push({ type: 'Statement', name: 'component', location, values: [value(tag, location)], block });
  };

  for (const entry of entries) {
    const at = (column: number): Location => ({ file, line: entry.line, column });
    if (entry === firstSubordinate && !master) {
      // As GNU inetd, serve tcpmux/ entries even without a tcpmux line; warn, since it opens a port.
      const location = at(entry.column);
      diags.warning('inetd-implicit-master', `TCPMUX subordinates but no "tcpmux stream tcp nowait root internal" line: listening on 0.0.0.0:tcpmux`, location);
      add(masterTag, location, [
        statement('mode', [value('inetd', location)]),
        statement('socket', [quoted('inet://0.0.0.0:tcpmux', location)]),
        statement('flags', [value('internal', location)]),
        statement('service', [value('tcpmux', location)]),
      ]);
    }
    const nodes = entry.tcpmux ? [ANY_NODE] : entry.nodes;
    for (const node of nodes) add(tagOf(entry, node), at(entry.column), componentBlock(entry, node, masterTag, at));
  }
  return body;
}

// The statements of one component, each located at the field it came from.
function componentBlock(entry: Entry, node: Node, masterTag: string, at: (column: number) => Location): StatementNode[] {
  const serviceAt = at(entry.service.column);
  const block: StatementNode[] = [statement('mode', [value('inetd', serviceAt)])];
  const flags: ScalarNode[] = [];
  if (entry.tcpmux) {
    flags.push(value(entry.tcpmux.plus ? 'tcpmuxplus' : 'tcpmux', serviceAt));
    block.push(statement('service', [value(entry.tcpmux.name.text, at(entry.tcpmux.name.column))]));
    block.push(statement('tcpmux-master', [value(masterTag, serviceAt)]));
  } else {
    const nodeAt = node.fromHostLine ? serviceAt : node.location;
    block.push(statement('socket', [quoted(socketUrl(entry, node), nodeAt)]));
  }
  if (entry.wait) flags.push(value('wait', at(entry.wait.column)));
  if (entry.maxRate) block.push(statement('max-rate', [value(entry.maxRate.text, at(entry.maxRate.column))]));
  block.push(statement('user', [value(entry.user.text, at(entry.user.column))]));
  if (entry.group) block.push(statement('group', [value(entry.group.text, at(entry.group.column))]));
  if (entry.program.text === 'internal') {
    flags.push(value('internal', at(entry.program.column)));
    block.push(statement('service', [value(entry.service.text, serviceAt)]));
  } else {
    block.push(statement('program', [value(entry.program.text, at(entry.program.column))]));
    // inetd takes argv literally; quoting each word makes our shell-style split give it back.
    const argv = entry.args.length > 0 ? entry.args : [entry.program];
    block.push(statement('command', [quoted(argv.map((a) => quoteWord(a.text)).join(' '), at(argv[0]!.column))]));
  }
  if (flags.length > 0) block.splice(1, 0, statement('flags', flags));
  return block;
}

function socketUrl(entry: Entry, node: Node): string {
  const v6 = entry.protocol === 'tcp6' || (entry.protocol === 'tcp' && node.host !== null && isIPv6(node.host));
  return v6 ? `inet6://[${node.host ?? '::'}]:${entry.service.text}` : `inet://${node.host ?? '0.0.0.0'}:${entry.service.text}`;
}

// A word where the grammar would read one unquoted, else a string, as a pies config spells it.
function value(text: string, location: Location): ScalarNode {
  return { type: isBareWord(text) ? 'Word' : 'String', value: text, location };
}

// URLs and command lines are quoted in pies configs whatever their characters.
function quoted(text: string, location: Location): ScalarNode {
  return { type: 'String', value: text, location };
}

function statement(name: string, values: readonly ScalarNode[]): StatementNode {
  return { type: 'Statement', name, location: values[0]!.location, values };
}
