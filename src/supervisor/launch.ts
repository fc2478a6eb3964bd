// Turns a component (plus the settings it inherits) into a running child: merges process
// settings global → master → own (pies manual, TCPMUX: "a similar procedure applies for
// other resources"), builds the environment and exec chain, opens output redirects, spawns.
import { accessSync, constants, statSync, unlinkSync } from 'node:fs';
import type { Component, Config, Limits, ProcessSettings } from '../config/model.js';
import type { Logger } from '../log/logger.js';
import { detach } from '../log/detach.js';
import { type OutputTarget, outputTarget, pipeToLog } from '../log/output.js';
import { applyEnvOps } from './environment.js';
import { type ExecChainResult, type ExecSpec, buildExecChain } from './exec-chain.js';
import { type Child, type SpawnRequest, type StdioTarget, spawnChild, spawnChildAsync } from './spawn.js';

/** What a per-connection spawn adds: the connection as stdin/stdout and sockenv variables. */
export interface LaunchExtras {
  readonly stdin?: StdioTarget;
  readonly stdout?: StdioTarget;
  readonly env?: Readonly<Record<string, string>>;
  /** For a TCPMUX subordinate: its master, whose settings sit between global and own. */
  readonly master?: Component;
}

export interface Launcher {
  /** Why `component`'s program cannot be started (not found, not executable), or undefined. */
  check(component: Component): string | undefined;
  /** Start `component`; throws an Error whose message says why it could not be prepared. */
  launch(component: Component, extras?: LaunchExtras): Child;
  /**
   * The same, with the spawn itself off the event loop (per-connection children). The
   * extras' fds may be closed as soon as this returns; rejects where `launch` throws.
   */
  launchAsync(component: Component, extras?: LaunchExtras): Promise<Child>;
  /** Run a return-code `exec` command with pies' environment plus `env`. */
  runExitAction(component: Component, command: string, env: Readonly<Record<string, string>>): void;
}

interface LaunchPlan {
  readonly settings: Omit<ProcessSettings, 'env'>;
  readonly env: Readonly<Record<string, string>>;
  readonly warnings: readonly string[];
  readonly spec: ExecSpec;
  /** Undefined when it must be built at each start (`user`: accounts are read then). */
  readonly chain: ExecChainResult | undefined;
}

export interface LauncherOptions {
  readonly config: Config;
  readonly log: Logger;
  /** The environment components start from (the daemon's, minus what must not leak). */
  readonly baseEnv: Readonly<Record<string, string>>;
}

// Variables of the daemon's own that children must not inherit.
// UV_THREADPOOL_SIZE is tpies' own tuning (the unit sets it), not its components'.
const PRIVATE_ENV = /^(LISTEN_PID|LISTEN_FDS|LISTEN_FDNAMES|NOTIFY_SOCKET|WATCHDOG_PID|WATCHDOG_USEC|UV_THREADPOOL_SIZE)$/;

// The daemon's environment as children should see it.
export function childBaseEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined && !PRIVATE_ENV.test(e[0])));
}

// How long check() trusts what it found about a program file.
const CHECK_TTL_MS = 1_000;

export function createLauncher(options: LauncherOptions): Launcher {
  const { config, log } = options;
  // What a start of `component` (under `master`) always gets, worked out once per config:
  // merged settings, the layered environment and the exec chain. Expansion is pure, so this
  // is exact; its warnings are kept and logged again at every start, as before. A chain
  // with `user` is rebuilt each time: accounts are read at every spawn (users.ts).
  const plans = new WeakMap<Component, { readonly master: Component | undefined; readonly plan: LaunchPlan }>();
  const checked = new Map<string, { readonly at: number; readonly found: boolean }>();
  function planFor(component: Component, master: Component | undefined): LaunchPlan {
    const cached = plans.get(component);
    if (cached !== undefined && cached.master === master) return cached.plan;
    const layers = [config.process, master ?? {}, component];
    const settings = mergeSettings(layers);
    const warnings: string[] = [];
    const env = applyLayers(options.baseEnv, layers, (message) => warnings.push(message));
    const spec = { ...execSpecOf(component, settings), env };
    const plan: LaunchPlan = { settings, env, warnings, spec, chain: settings.user === undefined ? buildExecChain(spec) : undefined };
    plans.set(component, { master, plan });
    return plan;
  }

  // The spawn request for one start, the redirect fds to close once the child has its own
  // copies, and the routing of its piped output into the log.
  function prepare(component: Component, extras: LaunchExtras): { request: SpawnRequest; closeRedirects(): void; route(child: Child): Child } {
    const plan = planFor(component, extras.master);
    for (const reason of plan.warnings) log.warn({ component: component.tag, reason }, 'env expansion error');
    const { settings } = plan;
    const chain = chainWith(plan, component, extras.env);
    if ('error' in chain) throw new Error(chain.error);
    if (settings.chdir !== undefined) checkDirectory(settings.chdir);
    if (component.removeFile !== undefined) removeStale(component.removeFile);
    const stdout = extras.stdout === undefined ? outputTarget(component.stdout, 'stdout', component.tag) : undefined;
    const stderr = outputTarget(component.stderr, 'stderr', component.tag);
    return {
      request: {
        file: chain.file,
        args: chain.args,
        ...(chain.argv0 !== undefined ? { argv0: chain.argv0 } : {}),
        env: chain.env,
        ...(settings.chdir !== undefined ? { cwd: settings.chdir } : {}),
        stdin: extras.stdin ?? 'ignore',
        stdout: extras.stdout ?? stdioOf(stdout!),
        stderr: stdioOf(stderr),
      },
      closeRedirects() {
        for (const t of [stdout, stderr]) if (t?.kind === 'fd') t.close();
      },
      route(child) {
        routeToLog(child.stdout, stdout, child.pid, log);
        routeToLog(child.stderr, stderr, child.pid, log);
        return child;
      },
    };
  }

  return {
    check(component) {
      const file = component.flags.has('shell') ? (component.program ?? '/bin/sh') : (component.program ?? component.argv?.[0]);
      if (file === undefined) return undefined;
      // A relative path with a slash is taken from the directory the program starts in.
      const chdir = component.chdir ?? config.process.chdir;
      const path = file.includes('/') && !file.startsWith('/') && chdir !== undefined ? `${chdir}/${file}` : file;
      // Asked for every TCPMUX connection (a missing program gets "-", not "+" and a close):
      // the answer is kept for a second instead of two syscalls per connection.
      const now = performance.now();
      const known = checked.get(path);
      if (known !== undefined && now - known.at < CHECK_TTL_MS) return known.found ? undefined : `${file}: no such executable`;
      const found = findExecutable(path, options.baseEnv.PATH) !== undefined;
      checked.set(path, { at: now, found });
      return found ? undefined : `${file}: no such executable`;
    },
    launch(component, extras = {}) {
      const prepared = prepare(component, extras);
      let child: Child;
      try {
        child = spawnChild(prepared.request);
      } finally {
        prepared.closeRedirects();
      }
      return prepared.route(child);
    },
    async launchAsync(component, extras = {}) {
      const prepared = prepare(component, extras);
      let pending: Promise<Child>;
      try {
        // Takes its own copies of the fds before it returns.
        pending = spawnChildAsync(prepared.request);
      } finally {
        prepared.closeRedirects();
      }
      return prepared.route(await pending);
    },
    runExitAction(component, command, env) {
      const actionEnv = { ...applyLayers(options.baseEnv, [config.process, component], (reason) => log.warn({ component: component.tag, reason }, 'env expansion error')), PIES_VERSION: '1.8', PIES_MASTER_PID: String(process.pid), ...env };
      const chain = buildExecChain({ command, flags: new Set(['shell']), env: actionEnv });
      if ('error' in chain) {
        log.error({ component: component.tag, command, reason: chain.error }, 'exit action failed');
        return;
      }
      const child = spawnChild({ file: chain.file, args: chain.args, env: chain.env, stdin: 'ignore', stdout: 'pipe', stderr: 'pipe' });
      const fields = { component: component.tag, exitAction: command };
      routeToLog(child.stdout, { kind: 'pipe', level: 'info', fields: { component: component.tag, stream: 'stdout' } }, child.pid, log);
      routeToLog(child.stderr, { kind: 'pipe', level: 'warn', fields: { component: component.tag, stream: 'stderr' } }, child.pid, log);
      detach(
        child.exited.then((exit) => {
          if (exit.spawnError !== undefined || exit.exitCode !== 0) log.warn({ ...fields, ...exit }, 'exit action failed');
        }),
        log,
        'exit action',
      );
    },
  };
}

// Later layers override earlier ones statement by statement; limits merge letter by letter.
export function mergeSettings(layers: readonly ProcessSettings[]): Omit<ProcessSettings, 'env'> {
  const merged: { -readonly [K in keyof ProcessSettings]: ProcessSettings[K] } = {};
  let limits: Limits | undefined;
  for (const l of layers) {
    if (l.user !== undefined) merged.user = l.user;
    if (l.group !== undefined) merged.group = l.group;
    if (l.allgroups !== undefined) merged.allgroups = l.allgroups;
    if (l.umask !== undefined) merged.umask = l.umask;
    if (l.chdir !== undefined) merged.chdir = l.chdir;
    if (l.limits !== undefined) limits = { ...limits, ...l.limits };
  }
  delete merged.env;
  return limits ? { ...merged, limits } : merged;
}

function applyLayers(base: Readonly<Record<string, string>>, layers: readonly ProcessSettings[], onError: (message: string) => void): Record<string, string> {
  let env: Record<string, string> = { ...base };
  for (const layer of layers) {
    if (layer.env) env = applyEnvOps(env, layer.env, { onError });
  }
  return env;
}

// The plan's chain, with a connection's variables (sockenv) added to its environment.
function chainWith(plan: LaunchPlan, component: Component, extraEnv: Readonly<Record<string, string>> | undefined): ExecChainResult {
  const chain = plan.chain;
  if (extraEnv === undefined) return chain ?? buildExecChain(plan.spec);
  const env = { ...plan.env, ...extraEnv };
  // expandenv reads the environment, and so does the chain's PWD handling.
  if (chain !== undefined && !('error' in chain) && !component.flags.has('expandenv') && !Object.hasOwn(extraEnv, 'PWD')) return { ...chain, env };
  return buildExecChain({ ...plan.spec, env });
}

// The exec chain's inputs a component fixes (everything but the environment).
function execSpecOf(component: Component, settings: Omit<ProcessSettings, 'env'>): Omit<ExecSpec, 'env'> {
  return {
    ...(component.argv ? { argv: component.argv } : {}),
    ...(component.command !== undefined ? { command: component.command } : {}),
    ...(component.program !== undefined ? { program: component.program } : {}),
    flags: component.flags,
    ...settings,
  };
}

function stdioOf(target: OutputTarget): StdioTarget {
  return target.kind === 'fd' ? target.fd : 'pipe';
}

function routeToLog(stream: NodeJS.ReadableStream | null, target: OutputTarget | undefined, pid: number | undefined, log: Logger): void {
  if (!stream || !target || target.kind !== 'pipe') return;
  detach(pipeToLog(stream, log, { ...target.fields, ...(pid !== undefined ? { childPid: pid } : {}) }, target.level), log, 'output');
}

// The path exec would run for `file` (PATH search for a bare name), if it is executable.
export function findExecutable(file: string, pathEnv = '/usr/local/bin:/usr/bin:/bin'): string | undefined {
  const candidates = file.includes('/') ? [file] : pathEnv.split(':').filter(Boolean).map((dir) => `${dir}/${file}`);
  return candidates.find((candidate) => {
    try {
      accessSync(candidate, constants.X_OK);
      return statSync(candidate).isFile();
    } catch {
      return false;
    }
  });
}

// spawn reports a missing cwd as ENOENT of the program; say what is really missing.
function checkDirectory(dir: string): void {
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch (error) {
    throw new Error(`chdir ${dir}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such directory' : (error as Error).message}`);
  }
  if (!isDir) throw new Error(`chdir ${dir}: not a directory`);
}

function removeStale(file: string): void {
  try {
    unlinkSync(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`remove-file ${file}: ${(error as Error).message}`);
  }
}
