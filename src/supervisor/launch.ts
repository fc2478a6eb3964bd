// Turns a component (plus the settings it inherits) into a running child: merges process
// settings global → master → own (pies manual, TCPMUX: "a similar procedure applies for
// other resources"), builds the environment and exec chain, opens output redirects, spawns.
import { accessSync, constants, statSync, unlinkSync } from 'node:fs';
import type { Component, Config, Limits, ProcessSettings } from '../config/model.js';
import type { Logger } from '../log/logger.js';
import { detach } from '../log/detach.js';
import { type OutputTarget, outputTarget, pipeToLog } from '../log/output.js';
import { applyEnvOps } from './environment.js';
import { buildExecChain } from './exec-chain.js';
import { type Child, type StdioTarget, spawnChild } from './spawn.js';

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
  /** Run a return-code `exec` command with pies' environment plus `env`. */
  runExitAction(component: Component, command: string, env: Readonly<Record<string, string>>): void;
}

export interface LauncherOptions {
  readonly config: Config;
  readonly log: Logger;
  /** The environment components start from (the daemon's, minus what must not leak). */
  readonly baseEnv: Readonly<Record<string, string>>;
}

// Variables of the daemon's own that children must not inherit.
const PRIVATE_ENV = /^(LISTEN_PID|LISTEN_FDS|LISTEN_FDNAMES|NOTIFY_SOCKET|WATCHDOG_PID|WATCHDOG_USEC)$/;

// The daemon's environment as children should see it.
export function childBaseEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined && !PRIVATE_ENV.test(e[0])));
}

export function createLauncher(options: LauncherOptions): Launcher {
  const { config, log } = options;
  return {
    check(component) {
      const file = component.flags.has('shell') ? (component.program ?? '/bin/sh') : (component.program ?? component.argv?.[0]);
      if (file === undefined) return undefined;
      // A relative path with a slash is taken from the directory the program starts in.
      const chdir = component.chdir ?? config.process.chdir;
      const path = file.includes('/') && !file.startsWith('/') && chdir !== undefined ? `${chdir}/${file}` : file;
      return findExecutable(path, options.baseEnv.PATH) === undefined ? `${file}: no such executable` : undefined;
    },
    launch(component, extras = {}) {
      const settings = mergeSettings([config.process, extras.master ?? {}, component]);
      const env = { ...applyLayers(options.baseEnv, [config.process, extras.master ?? {}, component], log, component.tag), ...(extras.env ?? {}) };
      const chain = buildExecChain({
        ...(component.argv ? { argv: component.argv } : {}),
        ...(component.command !== undefined ? { command: component.command } : {}),
        ...(component.program !== undefined ? { program: component.program } : {}),
        flags: component.flags,
        ...settings,
        env,
      });
      if ('error' in chain) throw new Error(chain.error);
      if (settings.chdir !== undefined) checkDirectory(settings.chdir);
      if (component.removeFile !== undefined) removeStale(component.removeFile);
      const stdout = extras.stdout === undefined ? outputTarget(component.stdout, 'stdout', component.tag) : undefined;
      const stderr = outputTarget(component.stderr, 'stderr', component.tag);
      let child: Child;
      try {
        child = spawnChild({
          file: chain.file,
          args: chain.args,
          ...(chain.argv0 !== undefined ? { argv0: chain.argv0 } : {}),
          env: chain.env,
          ...(settings.chdir !== undefined ? { cwd: settings.chdir } : {}),
          stdin: extras.stdin ?? 'ignore',
          stdout: extras.stdout ?? stdioOf(stdout!),
          stderr: stdioOf(stderr),
        });
      } finally {
        // The child holds its own copies of redirect fds now.
        for (const t of [stdout, stderr]) if (t?.kind === 'fd') t.close();
      }
      routeToLog(child.stdout, stdout, child.pid, log);
      routeToLog(child.stderr, stderr, child.pid, log);
      return child;
    },
    runExitAction(component, command, env) {
      const actionEnv = { ...applyLayers(options.baseEnv, [config.process, component], log, component.tag), PIES_VERSION: '1.8', PIES_MASTER_PID: String(process.pid), ...env };
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

function applyLayers(base: Readonly<Record<string, string>>, layers: readonly ProcessSettings[], log: Logger, tag: string): Record<string, string> {
  let env: Record<string, string> = { ...base };
  for (const layer of layers) {
    if (layer.env) env = applyEnvOps(env, layer.env, { onError: (message) => log.warn({ component: tag, reason: message }, 'env expansion error') });
  }
  return env;
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
