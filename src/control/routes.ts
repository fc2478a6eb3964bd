// The control API (pies manual, "Control API"): HTTP method + path → JSON answer, as pure
// handlers over the part of the Daemon they drive. No sockets here: control/server.ts does
// the HTTP, the access decisions and the body limits, and tests call handleRequest directly.
import { isIP } from 'node:net';
import type { ComponentInfo, Daemon } from '../daemon.js';
import type { Plan } from '../supervisor/plan.js';

/** What the control API needs from a running tpies: a Daemon is one. */
export type ControlTarget = Pick<Daemon, 'info' | 'components' | 'reload' | 'planReload' | 'stop' | 'startComponent' | 'stopComponent' | 'restartComponent' | 'aclTest'>;

/**
 * Every error the API answers with: `{status: "ER", code, message}`. The codes are stable
 * (scripts may test them); docs/control.md lists them and a test keeps the two in step.
 */
export const CONTROL_ERRORS = {
  ERR_BAD_REQUEST: { status: 400, meaning: 'malformed request: bad path segment, query parameter, body JSON, header or value' },
  ERR_FORBIDDEN: { status: 403, meaning: 'the control ACLs (acl, user-acl, admin-acl, or a component list-acl/admin-acl) refuse this client' },
  ERR_NOT_FOUND: { status: 404, meaning: 'no such endpoint, component or TCPMUX service (or one this client may not see)' },
  ERR_METHOD: { status: 405, meaning: 'the endpoint exists but not with this method; the Allow header lists those it has' },
  ERR_TIMEOUT: { status: 408, meaning: 'the request (headers and body) did not arrive in time' },
  ERR_CONFLICT: { status: 409, meaning: 'the operation does not apply to this component (a TCPMUX subordinate has no process or socket of its own)' },
  ERR_BODY_TOO_LARGE: { status: 413, meaning: 'the request body is over the 64 KiB limit' },
  ERR_CONFIG_INVALID: { status: 422, meaning: 'the configuration file has errors; `errors` holds the diagnostics and nothing was changed' },
  ERR_INTERNAL: { status: 500, meaning: 'a bug in tpies; the daemon log has the details' },
  ERR_NOT_RUNNING: { status: 503, meaning: '/alive: the component exists but is not running (Retry-After: seconds until it wakes, when known)' },
} as const satisfies Record<string, { status: number; meaning: string }>;

export type ControlErrorCode = keyof typeof CONTROL_ERRORS;

/** Any value JSON can carry. */
export type Json = string | number | boolean | null | readonly Json[] | { readonly [key: string]: Json | undefined };

/** Who is asking, as control/server.ts decided from the ACLs and the socket kind. */
export interface ControlPeer {
  readonly kind: 'unix' | 'inet';
  /** May use the modifying methods (PUT, POST, DELETE). */
  readonly admin: boolean;
  /** May use the read-only methods (GET); default true. */
  readonly read?: boolean;
  /** A component's `list-acl`: may this peer see `tag`? Default: yes. */
  readonly canSee?: (tag: string) => boolean;
  /** A component's `admin-acl`: may this peer start, stop or restart `tag`? Default: yes. */
  readonly canAdmin?: (tag: string) => boolean;
}

export interface ControlRequest {
  readonly method: string;
  /** The path as sent, still percent-encoded, without the query. */
  readonly path: string;
  readonly query?: URLSearchParams;
  /** The parsed JSON body, undefined when there was none. No endpoint takes one yet. */
  readonly body?: unknown;
  readonly peer: ControlPeer;
}

export interface ControlResponse {
  readonly status: number;
  readonly body: Json;
  readonly headers?: Readonly<Record<string, string>>;
  /** Run once the response has been sent (DELETE /instance: stop after replying). */
  readonly after?: () => Promise<void>;
  /** An exception behind a 500, for the server to log. */
  readonly error?: unknown;
}

// A component tag or TCPMUX service name as a path segment or query value: config tags are
// any word or quoted string, so accept any printable text without a slash, within reason.
const MAX_NAME_LENGTH = 255;
export function isValidName(name: string): boolean {
  // eslint-disable-next-line no-control-regex
  return name.length > 0 && name.length <= MAX_NAME_LENGTH && !/[\u0000-\u001f\u007f/]/.test(name);
}

// The `{status: "ER", code, message}` answer for `code`.
export function errorResponse(code: ControlErrorCode, message: string, extra: { readonly [key: string]: Json } = {}, headers?: Record<string, string>): ControlResponse {
  return { status: CONTROL_ERRORS[code].status, body: { status: 'ER', code, message, ...extra }, ...(headers ? { headers } : {}) };
}

const ok = (body: { readonly [key: string]: Json | undefined }, status = 200): ControlResponse => ({ status, body: { status: 'OK', ...body } });

type Method = 'GET' | 'PUT' | 'POST' | 'DELETE';
const MODIFYING: ReadonlySet<string> = new Set<Method>(['PUT', 'POST', 'DELETE']);

interface Context {
  readonly target: ControlTarget;
  readonly peer: ControlPeer;
  readonly query: URLSearchParams;
  /** The decoded path segments after the route's fixed ones (a tag, a key). */
  readonly args: readonly string[];
  readonly now: number;
}

interface Endpoint {
  /** Query parameters this method accepts; anything else is a 400. */
  readonly query?: readonly string[];
  readonly handle: (c: Context) => Promise<ControlResponse> | ControlResponse;
}

interface Route {
  /** Fixed leading segments. */
  readonly prefix: readonly string[];
  /** How many segments follow (a tag, a key). */
  readonly args: number;
  readonly methods: Partial<Record<Method, Endpoint>>;
}

// Answer one request. Never throws: a failure inside the daemon becomes a 500 ERR_INTERNAL.
export async function handleRequest(target: ControlTarget, request: ControlRequest, now: number = Date.now()): Promise<ControlResponse> {
  const segments = splitPath(request.path);
  if (segments === undefined) return errorResponse('ERR_BAD_REQUEST', `bad path "${request.path}": it must start with / and be valid percent-encoded UTF-8`);
  const route = ROUTES.find((r) => r.prefix.length + r.args === segments.length && r.prefix.every((p, i) => segments[i] === p));
  if (!route) return errorResponse('ERR_NOT_FOUND', `no endpoint ${request.path}`);
  const args = segments.slice(route.prefix.length);
  const method = request.method.toUpperCase();
  const endpoint = route.methods[method as Method];
  if (!endpoint) {
    const allow = Object.keys(route.methods).join(', ');
    return errorResponse('ERR_METHOD', `${method} is not allowed on ${request.path} (allowed: ${allow})`, {}, { Allow: allow });
  }
  const { peer } = request;
  if (MODIFYING.has(method) ? !peer.admin : peer.read === false) {
    return errorResponse('ERR_FORBIDDEN', MODIFYING.has(method) ? `${method} ${request.path}: this client may not change anything (control admin-acl)` : `${method} ${request.path}: this client may not read (control user-acl)`);
  }
  const query = request.query ?? new URLSearchParams();
  for (const key of new Set(query.keys())) {
    if (!(endpoint.query ?? []).includes(key)) return errorResponse('ERR_BAD_REQUEST', `unknown query parameter "${key}" for ${method} ${request.path}`);
  }
  try {
    return await endpoint.handle({ target, peer, query, args, now });
  } catch (error) {
    return { ...errorResponse('ERR_INTERNAL', `internal error: ${error instanceof Error ? error.message : String(error)}`), error };
  }
}

// "/programs/a%20b/" → ["programs", "a b"]; undefined when it cannot be decoded.
function splitPath(path: string): string[] | undefined {
  if (!path.startsWith('/')) return undefined;
  const trimmed = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
  try {
    return trimmed === '/' ? [] : trimmed.slice(1).split('/').map((s) => decodeURIComponent(s));
  } catch {
    return undefined;
  }
}

// ---- the endpoints ----------------------------------------------------------------------

const ROUTES: readonly Route[] = [
  {
    prefix: ['instance'],
    args: 0,
    methods: {
      GET: { handle: ({ target }) => ({ status: 200, body: instanceJson(target) }) },
      DELETE: { handle: ({ target }) => shutdown(target) },
    },
  },
  {
    prefix: ['instance'],
    args: 1,
    methods: {
      // pies: any attribute as a sub-path (GET /instance/version → {"version": …}).
      GET: {
        handle: ({ target, args }) => {
          const info = instanceJson(target);
          const key = args[0]!;
          return Object.hasOwn(info, key) ? { status: 200, body: { [key]: info[key] ?? null } } : errorResponse('ERR_NOT_FOUND', `no instance attribute "${key}" (have: ${Object.keys(info).join(', ')})`);
        },
      },
      // pies: DELETE /instance/PID. The pid guards against stopping the wrong instance.
      DELETE: {
        handle: ({ target, args }) => {
          const pid = args[0]!;
          if (!/^[1-9][0-9]{0,9}$/.test(pid)) return errorResponse('ERR_BAD_REQUEST', `"${pid}" is not a pid`);
          const own = target.info().pid;
          return Number(pid) === own ? shutdown(target) : errorResponse('ERR_NOT_FOUND', `this tpies is pid ${own}, not ${pid}`);
        },
      },
    },
  },
  {
    prefix: ['conf', 'runtime'],
    args: 0,
    methods: {
      PUT: {
        handle: async ({ target }) => {
          const result = await target.reload();
          return result.ok
            ? ok({ message: 'configuration reloaded', plan: planJson(result.plan), ...(result.warnings ? { warnings: [...result.warnings] } : {}) })
            : configInvalid(result.errors, 'the configuration has errors; nothing was changed');
        },
      },
      // The dry run is a GET: it changes nothing, so clients allowed to read may ask.
      GET: {
        query: ['dry-run'],
        handle: async ({ target, query }) => {
          const flag = query.get('dry-run');
          if (flag === null) return errorResponse('ERR_BAD_REQUEST', 'GET /conf/runtime needs ?dry-run (PUT /conf/runtime reloads)');
          if (!['', 'true', '1'].includes(flag)) return errorResponse('ERR_BAD_REQUEST', `dry-run=${flag}: leave the value out, or use true or 1`);
          const result = await target.planReload();
          return result.ok ? ok({ message: 'dry run: nothing was changed', plan: planJson(result.plan) }) : configInvalid(result.errors, 'the configuration has errors; a reload would change nothing');
        },
      },
    },
  },
  {
    prefix: ['conf', 'check'],
    args: 0,
    methods: {
      GET: {
        handle: async ({ target }) => {
          const file = target.info().configFile;
          const result = await target.planReload();
          return result.ok ? ok({ message: `${file}: configuration is valid`, file }) : configInvalid(result.errors, `${file}: the configuration has errors`);
        },
      },
    },
  },
  {
    prefix: ['programs'],
    args: 0,
    methods: {
      GET: { handle: ({ target, peer }) => ({ status: 200, body: target.components().filter((c) => visible(peer, c.tag)).map(programJson) }) },
    },
  },
  {
    prefix: ['programs'],
    args: 1,
    methods: {
      GET: {
        handle: ({ target, peer, args }) => {
          const found = lookup(target, peer, args[0]!);
          return 'tag' in found ? { status: 200, body: programJson(found) } : found;
        },
      },
      // pies: PUT = start, DELETE = stop, POST = restart.
      PUT: { handle: (c) => administer(c, 'start') },
      DELETE: { handle: (c) => administer(c, 'stop') },
      POST: { handle: (c) => administer(c, 'restart') },
    },
  },
  {
    prefix: ['alive'],
    args: 1,
    methods: { GET: { handle: alive } },
  },
  {
    prefix: ['acl', 'test'],
    args: 0,
    methods: { GET: { query: ['address', 'target'], handle: aclTest } },
  },
];

function instanceJson(target: ControlTarget): { readonly [key: string]: Json } {
  const i = target.info();
  return { package: 'tpies', version: i.version, pid: i.pid, argv: [...i.argv], configFile: i.configFile, startedAt: i.startedAt };
}

function shutdown(target: ControlTarget): ControlResponse {
  const { pid } = target.info();
  return { ...ok({ message: `tpies (pid ${pid}) is shutting down` }), after: () => target.stop() };
}

function configInvalid(errors: string, message: string): ControlResponse {
  return errorResponse('ERR_CONFIG_INVALID', message, { errors });
}

// The plan as JSON; `formatPlan` prints the same entries as `restart web: command`.
export function planJson(plan: Plan): Json {
  return plan.entries.map((e) => ({ tag: e.tag, action: e.action, reasons: [...e.reasons] }));
}

function programJson(c: ComponentInfo): Json {
  return {
    tag: c.tag,
    type: 'component',
    mode: c.mode,
    state: c.state,
    pid: c.pid,
    since: c.since,
    restarts: c.restarts,
    instances: c.instances,
    socket: c.socket,
    service: c.service,
    master: c.master,
    wakeAt: c.wakeAt,
    lastExit: c.lastExit === undefined ? undefined : { ...c.lastExit },
  };
}

const visible = (peer: ControlPeer, tag: string): boolean => peer.canSee?.(tag) ?? true;

// A component by tag; one the peer may not see is reported exactly like one that does not exist.
function lookup(target: ControlTarget, peer: ControlPeer, tag: string): ComponentInfo | ControlResponse {
  if (!isValidName(tag)) return errorResponse('ERR_BAD_REQUEST', `"${printable(tag)}" is not a component tag`);
  const found = target.components().find((c) => c.tag === tag);
  return found && visible(peer, tag) ? found : errorResponse('ERR_NOT_FOUND', `no component "${tag}"`, { tag });
}

const DONE = { start: 'started', stop: 'stopped', restart: 'restarted' } as const;

async function administer({ target, peer, args }: Context, action: 'start' | 'stop' | 'restart'): Promise<ControlResponse> {
  const found = lookup(target, peer, args[0]!);
  if (!('tag' in found)) return found;
  const { tag } = found;
  if (!(peer.canAdmin?.(tag) ?? true)) return errorResponse('ERR_FORBIDDEN', `this client may not ${action} "${tag}" (its admin-acl)`, { tag });
  const run = action === 'start' ? target.startComponent : action === 'stop' ? target.stopComponent : target.restartComponent;
  if (!(await run.call(target, tag))) {
    const why = found.master !== undefined ? `it is a TCPMUX subordinate of "${found.master}", with no process or socket of its own (${action} "${found.master}" instead)` : 'it has no process or socket to act on';
    return errorResponse('ERR_CONFLICT', `cannot ${action} "${tag}": ${why}`, { tag });
  }
  const state = target.components().find((c) => c.tag === tag)?.state ?? 'unknown';
  return ok({ tag, action, state, message: `${DONE[action]} ${tag} (state: ${state})` });
}

const ALIVE_STATES: ReadonlySet<string> = new Set(['running', 'listening']);

// pies /alive/TAG: 200 running (inetd: listening), 404 no such component, 503 otherwise,
// with Retry-After while it sleeps or waits out a backoff (pies: "when failed").
function alive({ target, peer, args, now }: Context): ControlResponse {
  const found = lookup(target, peer, args[0]!);
  if (!('tag' in found)) return found;
  const { tag, state } = found;
  if (ALIVE_STATES.has(state)) return ok({ tag, state });
  const headers = found.wakeAt !== undefined && found.wakeAt > now ? { 'Retry-After': String(Math.max(1, Math.ceil((found.wakeAt - now) / 1000))) } : undefined;
  return errorResponse('ERR_NOT_RUNNING', `"${tag}" is ${state}`, { tag, state }, headers);
}

function aclTest({ target, peer, query }: Context): ControlResponse {
  const address = query.get('address');
  const name = query.get('target') ?? undefined;
  if (address === null || address === '') return errorResponse('ERR_BAD_REQUEST', 'GET /acl/test needs ?address=IP');
  if (isIP(address) === 0) return errorResponse('ERR_BAD_REQUEST', `"${printable(address)}" is not an IP address`);
  if (name !== undefined) {
    if (!isValidName(name)) return errorResponse('ERR_BAD_REQUEST', `"${printable(name)}" is not a component tag or TCPMUX service name`);
    // The same lookup as the daemon's: a tag, else a subordinate's service name (case-insensitive).
    const components = target.components();
    const component = components.find((c) => c.tag === name) ?? components.find((c) => c.master !== undefined && c.service?.toLowerCase() === name.toLowerCase());
    if (component && !visible(peer, component.tag)) return errorResponse('ERR_NOT_FOUND', `no component or TCPMUX service named "${name}"`);
  }
  const result = target.aclTest(address, name);
  if ('error' in result) return errorResponse('ERR_NOT_FOUND', result.error);
  return ok({ address, target: name, decision: result.decision, levels: result.levels.map((l) => ({ acl: l.acl, decision: l.decision, rule: l.rule })) });
}

// Echo user input in messages without its control characters.
function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  const clean = text.replace(/[\u0000-\u001f\u007f]/g, '?');
  return clean.length > 80 ? `${clean.slice(0, 77)}...` : clean;
}
