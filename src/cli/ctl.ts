// `tpiesctl`: the control client (pies' piesctl). argv → one HTTP request (or one per tag) on
// the control socket → readable lines or JSON, and a sysexits code. Never a stack trace.
import { statSync } from 'node:fs';
import { request } from 'node:http';
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/index.js';
import { defaultControlSocketPath, parseControlSocket } from '../control/socket-path.js';
import { EXIT } from '../errors.js';
import { type Plan, type PlanAction, formatPlan } from '../supervisor/plan.js';
import { VERSION } from '../version.js';
import type { CliIo } from './io.js';

const DEFAULT_TIMEOUT_S = 60;

export const TPIESCTL_USAGE = `usage: tpiesctl [OPTIONS] COMMAND [ARGS]
Commands:
  list [--json]                 every component: tag, mode, state, pid, uptime, restarts, socket
  status TAG [--json]           one component in detail (exit 1 unless running or listening)
  start TAG...                  start components (inetd: listen again)
  stop TAG...                   stop components (inetd: stop listening)
  restart TAG...                restart components
  reload [--dry-run] [--json]   re-read the configuration and apply it; print the plan
                                (--dry-run: only print it; exit 78 if the file has errors)
  config check                  validate the configuration file without applying it
  acl test ADDRESS [TARGET] [--json]
                                which ACL rules decide for ADDRESS (for a component tag or
                                TCPMUX service); exit 0 allow, 1 deny
  id|info [KEY...] [--json]     the daemon: package, version, pid, config, started, argv
  shutdown                      stop tpies and every component
Options:
  -s, --socket PATH|URL         control socket (default: ${defaultControlSocketPath()})
  -c, --config-file FILE        use the control socket named in FILE's control statement
      --timeout SECONDS         give up waiting for an answer (default ${DEFAULT_TIMEOUT_S})
  -h, --help                    show this help
      --version                 show the version
Exit codes: 0 ok; 1 a negative answer (deny, not running, no such component); 64 usage;
69 tpies not reachable; 70 unexpected answer; 77 permission denied; 78 configuration invalid.
`;

/** A failure that ends the run: one line on stderr and an exit code. */
class CtlError extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message);
  }
}

type Endpoint = { readonly kind: 'unix'; readonly path: string } | { readonly kind: 'inet'; readonly host: string; readonly port: number; readonly url: string };

interface Options {
  readonly endpoint: Endpoint;
  readonly json: boolean;
  readonly dryRun: boolean;
  readonly timeoutMs: number;
}

interface Answer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Record<string, unknown> | unknown[];
}

// Run tpiesctl with `argv` (no node/script names); resolves to the process exit code.
export async function runTpiesctl(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    return await run(argv, io);
  } catch (error) {
    if (error instanceof CtlError) {
      io.stderr(`tpiesctl: ${error.message}${error.exitCode === EXIT.USAGE ? ' (see tpiesctl --help)' : ''}\n`);
      return error.exitCode;
    }
    io.stderr(`tpiesctl: internal error: ${error instanceof Error ? error.message : String(error)}\n`);
    return EXIT.SOFTWARE;
  }
}

const usage = (message: string): CtlError => new CtlError(EXIT.USAGE, message);

async function run(argv: readonly string[], io: CliIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: true,
      options: {
        socket: { type: 'string', short: 's' },
        'config-file': { type: 'string', short: 'c' },
        timeout: { type: 'string' },
        json: { type: 'boolean' },
        'dry-run': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean' },
      },
    });
  } catch (error) {
    throw usage((error as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.stdout(TPIESCTL_USAGE);
    return EXIT.OK;
  }
  if (values.version) {
    io.stdout(`tpiesctl ${VERSION}\n`);
    return EXIT.OK;
  }
  const [command, ...args] = positionals;
  if (command === undefined) throw usage('no command given');
  const json = values.json === true;
  const dryRun = values['dry-run'] === true;
  const allowed = FLAGS[command];
  if (allowed === undefined) throw usage(`unknown command "${command}"`);
  if (json && !allowed.includes('json')) throw usage(`${command} has no --json option`);
  if (dryRun && !allowed.includes('dry-run')) throw usage(`${command} has no --dry-run option`);
  const timeoutMs = parseTimeout(values.timeout);
  // Check the arguments before looking for the daemon: a usage error is a usage error.
  const plan = planCommand(command, args);
  const endpoint = await resolveEndpoint(values.socket, values['config-file'], io);
  return plan({ endpoint, json, dryRun, timeoutMs }, io);
}

const FLAGS: Readonly<Record<string, readonly string[]>> = {
  list: ['json'],
  status: ['json'],
  start: [],
  stop: [],
  restart: [],
  reload: ['dry-run', 'json'],
  config: [],
  acl: ['json'],
  id: ['json'],
  info: ['json'],
  shutdown: [],
};

type Action = (options: Options, io: CliIo) => Promise<number>;

// Validate a command's arguments and return what runs it.
function planCommand(command: string, args: readonly string[]): Action {
  const none = (): void => {
    if (args.length > 0) throw usage(`${command} takes no arguments (got "${args[0]}")`);
  };
  switch (command) {
    case 'list':
      none();
      return list;
    case 'status':
      if (args.length !== 1) throw usage('status takes one component tag: tpiesctl status TAG');
      return (o, io) => status(o, io, args[0]!);
    case 'start':
    case 'stop':
    case 'restart':
      if (args.length === 0) throw usage(`${command} needs at least one component tag: tpiesctl ${command} TAG...`);
      return (o, io) => administer(o, io, command, args);
    case 'reload':
      none();
      return reload;
    case 'config':
      if (args.length !== 1 || args[0] !== 'check') throw usage('the config command is: tpiesctl config check');
      return configCheck;
    case 'acl': {
      if (args[0] !== 'test' || args.length < 2 || args.length > 3) throw usage('the acl command is: tpiesctl acl test ADDRESS [TAG|SERVICE]');
      const address = args[1]!;
      if (isIP(address) === 0) throw usage(`"${address}" is not an IP address`);
      return (o, io) => aclTest(o, io, address, args[2]);
    }
    case 'id':
    case 'info':
      for (const key of args) if (!Object.hasOwn(ID_KEYS, key)) throw usage(`unknown key "${key}" (known: ${Object.keys(ID_KEYS).join(', ')})`);
      return (o, io) => id(o, io, args);
    case 'shutdown':
      none();
      return shutdown;
    default:
      throw usage(`unknown command "${command}"`);
  }
}

function parseTimeout(text: string | undefined): number {
  if (text === undefined) return DEFAULT_TIMEOUT_S * 1000;
  if (!/^[0-9]+(\.[0-9]+)?$/.test(text) || Number(text) <= 0) throw usage(`--timeout ${text}: give a positive number of seconds`);
  return Math.round(Number(text) * 1000);
}

// --socket wins; else the config file's `control { socket … }`; else the default path.
async function resolveEndpoint(socket: string | undefined, configFile: string | undefined, io: CliIo): Promise<Endpoint> {
  if (socket !== undefined && configFile !== undefined) throw usage('give --socket or --config-file, not both');
  if (socket !== undefined) return endpointOf(socket);
  if (configFile === undefined) return { kind: 'unix', path: defaultControlSocketPath({ uid: process.getuid?.() ?? 0, env: io.env, isDirectory }) };
  const loaded = await loadConfig(configFile);
  if (!loaded.config) {
    throw new CtlError(EXIT.CONFIG, `cannot find the control socket in ${configFile}: the file has errors (tpies --lint -c ${configFile} lists them)`);
  }
  const address = loaded.config.control?.socket;
  if (address === undefined) return { kind: 'unix', path: defaultControlSocketPath({ uid: process.getuid?.() ?? 0, env: io.env, isDirectory }) };
  return address.kind === 'unix' ? { kind: 'unix', path: address.path } : { kind: 'inet', host: connectHost(address.host), port: address.port, url: address.url };
}

function endpointOf(text: string): Endpoint {
  const parsed = parseControlSocket(text);
  if ('error' in parsed) throw usage(`--socket ${text}: ${parsed.error}`);
  const a = parsed.address;
  return a.kind === 'unix' ? { kind: 'unix', path: a.path } : { kind: 'inet', host: connectHost(a.host), port: a.port, url: a.url };
}

// A daemon listening on every address is reached on loopback.
const connectHost = (host: string): string => (host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host);

function isDirectory(dir: string): boolean {
  try {
    return statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

const where = (e: Endpoint): string => (e.kind === 'unix' ? e.path : e.url);

// ---- HTTP ----------------------------------------------------------------------------------

// One request; connection problems become CtlErrors with their exit code (69, 77).
function call(options: Options, method: string, path: string): Promise<Answer> {
  const { endpoint, timeoutMs } = options;
  return new Promise((resolve, reject) => {
    const req = request(
      {
        ...(endpoint.kind === 'unix' ? { socketPath: endpoint.path } : { host: endpoint.host, port: endpoint.port }),
        method,
        path,
        agent: false,
        headers: { Accept: 'application/json', Host: 'tpies' },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', (error) => reject(connectError(endpoint, error as NodeJS.ErrnoException)));
        res.on('end', () => {
          let body: unknown;
          try {
            body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            body = undefined;
          }
          if (body === null || typeof body !== 'object') {
            reject(new CtlError(EXIT.SOFTWARE, `unexpected answer from ${where(endpoint)} (HTTP ${res.statusCode}, not JSON): is that the tpies control socket?`));
            return;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: body as Answer['body'] });
        });
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(Object.assign(new Error('timed out'), { code: 'TIMEOUT' })));
    req.on('error', (error: NodeJS.ErrnoException) => reject(connectError(endpoint, error, timeoutMs)));
    req.end();
  });
}

function connectError(endpoint: Endpoint, error: NodeJS.ErrnoException, timeoutMs = 0): CtlError {
  const target = where(endpoint);
  switch (error.code) {
    case 'ENOENT':
      return new CtlError(EXIT.UNAVAILABLE, `cannot connect to ${target}: no such file (is tpies running?)`);
    case 'ECONNREFUSED':
      return new CtlError(EXIT.UNAVAILABLE, `cannot connect to ${target}: connection refused (is tpies running?)`);
    case 'EACCES':
    case 'EPERM':
      return new CtlError(EXIT.NOPERM, `cannot connect to ${target}: permission denied${ownerHint(endpoint)}`);
    case 'ENOTSOCK':
      return new CtlError(EXIT.UNAVAILABLE, `cannot connect to ${target}: not a socket`);
    case 'TIMEOUT':
      return new CtlError(EXIT.UNAVAILABLE, `no answer from ${target} within ${timeoutMs / 1000} s (see --timeout)`);
    case 'ECONNRESET':
      return new CtlError(EXIT.UNAVAILABLE, `${target} closed the connection without an answer`);
    default:
      return new CtlError(EXIT.UNAVAILABLE, `cannot connect to ${target}: ${error.code === undefined ? error.message : `${error.message}`}`);
  }
}

// "(the socket is mode 0600, owned by uid 0: run tpiesctl as that user)", when we can see it.
function ownerHint(endpoint: Endpoint): string {
  if (endpoint.kind !== 'unix') return '';
  try {
    const st = statSync(endpoint.path);
    return ` (the socket is mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}, owned by uid ${st.uid}: run tpiesctl as that user)`;
  } catch {
    return ' (a directory on the way is not searchable for this user)';
  }
}

const EXIT_FOR_STATUS: Readonly<Record<number, number>> = {
  400: EXIT.USAGE,
  403: EXIT.NOPERM,
  404: EXIT.FAILURE,
  409: EXIT.FAILURE,
  422: EXIT.CONFIG,
  503: EXIT.FAILURE,
};

// A non-2xx answer as a CtlError carrying the daemon's message.
function refusal(answer: Answer): CtlError {
  const body = answer.body as { message?: unknown; code?: unknown };
  const message = typeof body.message === 'string' ? body.message : `HTTP ${answer.status}`;
  return new CtlError(EXIT_FOR_STATUS[answer.status] ?? EXIT.SOFTWARE, message);
}

async function get(options: Options, path: string): Promise<Answer> {
  const answer = await call(options, 'GET', path);
  if (answer.status !== 200) throw refusal(answer);
  return answer;
}

const enc = encodeURIComponent;

// ---- commands ------------------------------------------------------------------------------

interface Program {
  readonly tag: string;
  readonly mode: string;
  readonly state: string;
  readonly pid?: number;
  readonly since?: number;
  readonly restarts?: number;
  readonly instances?: number;
  readonly socket?: string;
  readonly service?: string;
  readonly master?: string;
  readonly wakeAt?: number;
  readonly lastExit?: { readonly exitCode?: number; readonly signal?: string; readonly spawnError?: string; readonly at?: number };
}

const RUNNING: ReadonlySet<string> = new Set(['running', 'listening']);

async function list(options: Options, io: CliIo): Promise<number> {
  const { body } = await get(options, '/programs');
  if (!Array.isArray(body)) throw new CtlError(EXIT.SOFTWARE, 'unexpected answer to GET /programs (not a list)');
  if (options.json) {
    io.stdout(`${JSON.stringify(body, null, 2)}\n`);
    return EXIT.OK;
  }
  const now = Date.now();
  const rows = (body as Program[]).map((p) => [
    p.tag,
    p.mode,
    p.state,
    p.pid === undefined ? '-' : String(p.pid),
    RUNNING.has(p.state) && p.since !== undefined && p.since > 0 ? formatDuration(now - p.since) : '-',
    String(p.restarts ?? 0),
    endpointText(p),
  ]);
  io.stdout(table(['TAG', 'MODE', 'STATE', 'PID', 'UPTIME', 'RESTARTS', 'SOCKET/SERVICE'], rows));
  return EXIT.OK;
}

function endpointText(p: Program): string {
  if (p.socket !== undefined) return p.socket;
  if (p.service !== undefined && p.master !== undefined) return `service ${p.service} via ${p.master}`;
  return '-';
}

// Columns separated by two spaces; the last one is not padded.
function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}

// 42s, 5m07s, 3h04m, 2d05h.
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const two = (n: number): string => String(n).padStart(2, '0');
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${two(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${two(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86400)}d${two(Math.floor(s / 3600) % 24)}h`;
}

const iso = (ms: number): string => new Date(ms).toISOString();

async function status(options: Options, io: CliIo, tag: string): Promise<number> {
  const { body } = await get(options, `/programs/${enc(tag)}`);
  const p = body as unknown as Program;
  if (options.json) {
    io.stdout(`${JSON.stringify(p, null, 2)}\n`);
    return RUNNING.has(p.state) ? EXIT.OK : EXIT.FAILURE;
  }
  const now = Date.now();
  const lines: [string, string | undefined][] = [
    ['tag', p.tag],
    ['mode', p.mode],
    ['state', p.state],
    ['pid', p.pid?.toString()],
    ['since', p.since !== undefined && p.since > 0 ? `${iso(p.since)} (${formatDuration(now - p.since)} ago)` : undefined],
    ['restarts', p.restarts?.toString()],
    ['instances', p.instances?.toString()],
    ['socket', p.socket],
    ['service', p.service],
    ['master', p.master],
    ['wakes', p.wakeAt !== undefined ? `${iso(p.wakeAt)} (in ${formatDuration(p.wakeAt - now)})` : undefined],
    ['last exit', p.lastExit !== undefined ? describeExit(p.lastExit) : undefined],
  ];
  io.stdout(lines.filter(([, v]) => v !== undefined).map(([k, v]) => `${k}: ${v}\n`).join(''));
  return RUNNING.has(p.state) ? EXIT.OK : EXIT.FAILURE;
}

function describeExit(e: NonNullable<Program['lastExit']>): string {
  const what = e.spawnError !== undefined ? `could not start: ${e.spawnError}` : e.signal !== undefined ? `killed by ${e.signal}` : `exit code ${e.exitCode ?? '?'}`;
  return e.at !== undefined ? `${what} at ${iso(e.at)}` : what;
}

async function administer(options: Options, io: CliIo, action: 'start' | 'stop' | 'restart', tags: readonly string[]): Promise<number> {
  const method = action === 'start' ? 'PUT' : action === 'stop' ? 'DELETE' : 'POST';
  let code: number = EXIT.OK;
  for (const tag of tags) {
    const answer = await call(options, method, `/programs/${enc(tag)}`);
    if (answer.status === 200) {
      const message = (answer.body as { message?: unknown }).message;
      io.stdout(`${typeof message === 'string' ? message : `${action} ${tag}: done`}\n`);
      continue;
    }
    const error = refusal(answer);
    // Keep going with the other tags, but not past a refusal that applies to them all.
    if (error.exitCode === EXIT.NOPERM && answer.body && !('tag' in answer.body)) throw error;
    io.stderr(`tpiesctl: ${error.message}\n`);
    if (code === EXIT.OK) code = error.exitCode;
  }
  return code;
}

async function reload(options: Options, io: CliIo): Promise<number> {
  const answer = options.dryRun ? await call(options, 'GET', '/conf/runtime?dry-run') : await call(options, 'PUT', '/conf/runtime');
  if (answer.status === 422) return configRejected(answer, io);
  if (answer.status !== 200) throw refusal(answer);
  const plan = planOf(answer.body);
  io.stdout(options.json ? `${JSON.stringify(answer.body, null, 2)}\n` : formatPlan(plan));
  // Applied, but a socket could not be bound yet: say so (it is retried in the background).
  const warnings = (answer.body as { warnings?: unknown }).warnings;
  if (!options.json && Array.isArray(warnings)) for (const w of warnings) io.stderr(`tpiesctl: warning: ${String(w)}\n`);
  return EXIT.OK;
}

async function configCheck(options: Options, io: CliIo): Promise<number> {
  const answer = await call(options, 'GET', '/conf/check');
  if (answer.status === 422) return configRejected(answer, io);
  if (answer.status !== 200) throw refusal(answer);
  io.stdout(`${String((answer.body as { message?: unknown }).message ?? 'configuration is valid')}\n`);
  return EXIT.OK;
}

// The diagnostics as the daemon formatted them, then one summary line.
function configRejected(answer: Answer, io: CliIo): number {
  const { errors, message } = answer.body as { errors?: unknown; message?: unknown };
  if (typeof errors === 'string' && errors !== '') io.stderr(errors.endsWith('\n') ? errors : `${errors}\n`);
  io.stderr(`tpiesctl: ${typeof message === 'string' ? message : 'the configuration has errors'}\n`);
  return EXIT.CONFIG;
}

const ACTIONS: ReadonlySet<string> = new Set<PlanAction>(['start', 'stop', 'restart', 'keep']);

function planOf(body: Answer['body']): Plan {
  const entries = (body as { plan?: unknown }).plan;
  if (!Array.isArray(entries)) throw new CtlError(EXIT.SOFTWARE, 'unexpected answer: no plan');
  return {
    entries: entries.map((e: unknown) => {
      const { tag, action, reasons } = (e ?? {}) as { tag?: unknown; action?: unknown; reasons?: unknown };
      if (typeof tag !== 'string' || typeof action !== 'string' || !ACTIONS.has(action) || !Array.isArray(reasons)) throw new CtlError(EXIT.SOFTWARE, 'unexpected answer: malformed plan entry');
      return { tag, action: action as PlanAction, reasons: reasons.map(String) };
    }),
  };
}

interface AclLevel {
  readonly acl: string;
  readonly decision: string;
  readonly rule: string;
}

async function aclTest(options: Options, io: CliIo, address: string, target: string | undefined): Promise<number> {
  const query = `address=${enc(address)}${target === undefined ? '' : `&target=${enc(target)}`}`;
  const { body } = await get(options, `/acl/test?${query}`);
  const { decision, levels } = body as { decision?: unknown; levels?: unknown };
  if ((decision !== 'allow' && decision !== 'deny') || !Array.isArray(levels)) throw new CtlError(EXIT.SOFTWARE, 'unexpected answer to GET /acl/test');
  if (options.json) io.stdout(`${JSON.stringify(body, null, 2)}\n`);
  else {
    const lines = (levels as AclLevel[]).map((l) => `${l.acl}: ${l.rule}${l.decision === 'no-match' ? ' (so allowed)' : ''}\n`);
    io.stdout(`${lines.join('')}${decision} ${address}${target === undefined ? '' : ` for ${target}`}\n`);
  }
  return decision === 'allow' ? EXIT.OK : EXIT.FAILURE;
}

// tpiesctl id keys → the GET /instance fields.
const ID_KEYS: Readonly<Record<string, string>> = { package: 'package', version: 'version', pid: 'pid', config: 'configFile', started: 'startedAt', argv: 'argv' };

async function id(options: Options, io: CliIo, keys: readonly string[]): Promise<number> {
  const { body } = await get(options, '/instance');
  const info = body as Record<string, unknown>;
  const wanted = keys.length > 0 ? keys : Object.keys(ID_KEYS);
  if (options.json) {
    io.stdout(`${JSON.stringify(Object.fromEntries(wanted.map((k) => [k, info[ID_KEYS[k]!] ?? null])), null, 2)}\n`);
    return EXIT.OK;
  }
  const show = (key: string): string => {
    const value = info[ID_KEYS[key]!];
    if (key === 'started' && typeof value === 'number') return `${iso(value)} (up ${formatDuration(Date.now() - value)})`;
    if (Array.isArray(value)) return value.map((a) => (/^[\w@%+=:,./-]+$/.test(String(a)) ? String(a) : `'${String(a).replaceAll("'", `'\\''`)}'`)).join(' ');
    return String(value ?? '');
  };
  io.stdout(wanted.map((k) => `${k}: ${show(k)}\n`).join(''));
  return EXIT.OK;
}

async function shutdown(options: Options, io: CliIo): Promise<number> {
  const answer = await call(options, 'DELETE', '/instance');
  if (answer.status !== 200) throw refusal(answer);
  io.stdout(`${String((answer.body as { message?: unknown }).message ?? 'tpies is shutting down')}\n`);
  return EXIT.OK;
}
