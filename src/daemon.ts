// The composition root: startDaemon(options) loads the config, writes the pid file, starts
// the supervisor and the listeners, and returns the Daemon that signals, the control API
// and tests drive (status, reload, stop).
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { PiesError } from './errors.js';
import { type LoadConfigOptions, loadConfig } from './config/index.js';
import type { Config } from './config/model.js';
import { formatDiagnostics } from './config/diagnostics.js';
import type { Logger } from './log/logger.js';
import { type Launcher, childBaseEnv, createLauncher } from './supervisor/launch.js';
import { type Plan, planReload } from './supervisor/plan.js';
import { type ComponentStatus, Supervisor } from './supervisor/supervisor.js';
import type { Component } from './config/model.js';
import { launchWithListeningSocket } from './inetd/accept-mode.js';
import { Network } from './inetd/network.js';

export interface DaemonOptions extends LoadConfigOptions {
  readonly configFile: string;
  readonly log: Logger;
  /** Overrides the config's `pidfile`. */
  readonly pidfile?: string;
  /** The environment children start from; default process.env. */
  readonly env?: NodeJS.ProcessEnv;
  /** Reopen a log file (logrotate); called on every reload. */
  readonly reopenLog?: () => void;
}

/** The outcome of a reload: applied with its plan, or refused with every diagnostic. */
export type ReloadResult = { readonly ok: true; readonly plan: Plan } | { readonly ok: false; readonly errors: string };

/** A running tpies instance. */
export interface Daemon {
  readonly config: Config;
  status(): readonly ComponentStatus[];
  /** Re-read the config; nothing changes unless it loads without errors. */
  reload(): Promise<ReloadResult>;
  /** What a reload would do now, without doing it. */
  planReload(): Promise<ReloadResult>;
  /** Graceful stop: components in reverse dependency order, then shutdown components. */
  stop(): Promise<void>;
  /** Resolves once the daemon has stopped. */
  readonly stopped: Promise<void>;
  readonly supervisor: Supervisor;
  /** Where an inetd component listens (the real port when configured as port 0). */
  addressOf(tag: string): ReturnType<Network['addressOf']>;
  /** Live per-connection processes of an inetd component. */
  instances(tag: string): number;
}

// Start tpies in-process; throws PiesError (ERR_CONFIG_INVALID, ERR_PIDFILE) when it cannot.
export async function startDaemon(options: DaemonOptions): Promise<Daemon> {
  const { log } = options;
  const loaded = await loadConfig(options.configFile, options);
  if (!loaded.config) throw new PiesError('ERR_CONFIG_INVALID', formatDiagnostics(loaded.diagnostics, loaded.sources).trimEnd());
  let config = loaded.config;
  const pidfile = options.pidfile ?? config.pidfile;
  if (pidfile !== undefined) claimPidfile(pidfile);

  const baseEnv = childBaseEnv(options.env ?? process.env);
  let launcher: Launcher = createLauncher({ config, log, baseEnv });
  const byTag = (tag: string) => config.components.find((c) => c.tag === tag);
  const network = new Network({ log });
  const launch = (component: Component) => () =>
    component.mode === 'accept' && component.socket
      ? launchWithListeningSocket(component.socket, (fd) => launcher.launch(component, { stdin: fd, stdout: fd }))
      : launcher.launch(component);
  const supervisor = new Supervisor({
    log,
    launcher: launch,
    externalReady: (tag) => network.listening(tag),
    runExitAction: (command, env) => {
      const component = byTag(env.PIES_COMPONENT ?? '');
      if (component) launcher.runExitAction(component, command, env);
    },
  });
  await network.apply(config, launcher);
  supervisor.load(config);
  log.info({ config: options.configFile, components: config.components.length }, 'tpies started');
  await supervisor.start();

  let resolveStopped!: () => void;
  const stopped = new Promise<void>((resolve) => (resolveStopped = resolve));
  let stopping: Promise<void> | undefined;
  let reloading = Promise.resolve<unknown>(undefined);

  const attempt = async (): Promise<{ next: Config; plan: Plan } | { errors: string }> => {
    const next = await loadConfig(options.configFile, options);
    if (!next.config) return { errors: formatDiagnostics(next.diagnostics, next.sources) };
    return { next: next.config, plan: planReload(config, next.config) };
  };

  const daemon: Daemon = {
    get config() {
      return config;
    },
    supervisor,
    stopped,
    status: () => supervisor.status(),
    addressOf: (tag) => network.addressOf(tag),
    instances: (tag) => network.instances(tag),
    async planReload() {
      const result = await attempt();
      return 'errors' in result ? { ok: false, errors: result.errors } : { ok: true, plan: result.plan };
    },
    reload() {
      // One reload at a time, in order: a second SIGHUP waits for the first.
      const run = reloading.then(async (): Promise<ReloadResult> => {
        options.reopenLog?.();
        const result = await attempt();
        if ('errors' in result) {
          log.error({ config: options.configFile, diagnostics: result.errors.trimEnd() }, 'config rejected');
          return { ok: false, errors: result.errors };
        }
        const { next, plan } = result;
        const tags = (action: string) => plan.entries.filter((e) => e.action === action).map((e) => e.tag);
        config = next;
        launcher = createLauncher({ config, log, baseEnv });
        // Listeners first, so new components waiting on inetd prerequisites find them bound.
        const failures = await network.apply(config, launcher);
        for (const f of failures) log.error({ component: f.tag, socket: f.socket }, 'reload could not bind; retrying');
        await supervisor.reconfigure(config, [...tags('stop'), ...tags('restart')], [...tags('start'), ...tags('restart')]);
        log.info({ started: tags('start').length, stopped: tags('stop').length, restarted: tags('restart').length, kept: tags('keep').length }, 'config reloaded');
        return { ok: true, plan };
      });
      reloading = run.catch(() => undefined);
      return run;
    },
    stop() {
      stopping ??= (async () => {
        log.info({}, 'tpies stopping');
        await reloading;
        await Promise.all([network.close(config.shutdownTimeoutMs), supervisor.stop()]);
        if (pidfile !== undefined) releasePidfile(pidfile);
        log.info({}, 'tpies stopped');
        resolveStopped();
      })();
      return stopping;
    },
  };
  return daemon;
}

// Refuse to run twice: a pid file naming a live process is an error (pies does the same).
function claimPidfile(file: string): void {
  let existing: number | undefined;
  try {
    existing = Number.parseInt(readFileSync(file, 'utf8'), 10);
  } catch {
    existing = undefined;
  }
  if (existing !== undefined && Number.isInteger(existing) && existing > 0 && existing !== process.pid && isAlive(existing)) {
    throw new PiesError('ERR_PIDFILE', `another instance is running (pid ${existing}, from ${file})`);
  }
  try {
    writeFileSync(file, `${process.pid}\n`);
  } catch (error) {
    throw new PiesError('ERR_PIDFILE', `cannot write pid file ${file}: ${(error as Error).message}`, { cause: error });
  }
}

function releasePidfile(file: string): void {
  try {
    if (Number.parseInt(readFileSync(file, 'utf8'), 10) === process.pid) unlinkSync(file);
  } catch {
    // Gone already: nothing to release.
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
