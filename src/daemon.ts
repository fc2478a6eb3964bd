// The composition root: startDaemon(options) loads the config, writes the pid file, starts
// the supervisor and the listeners, and returns the Daemon that signals, the control API
// and tests drive (status, reload, stop).
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { ConfigInvalidError, PiesError } from './errors.js';
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
import { watchDescriptors } from './inetd/descriptors.js';
import { isIP } from 'node:net';
import type { AclRef } from './config/model.js';
import { compileAcl, describeDecision } from './acl/acl.js';
import { peerFromAddress } from './acl/peer.js';
import { VERSION } from './version.js';
import type { Notifier } from './systemd/notify.js';
import type { ConfigWatcher } from './config/watch.js';
import { detach } from './log/detach.js';

export interface DaemonOptions extends LoadConfigOptions {
  readonly configFile: string;
  readonly log: Logger;
  /** Overrides the config's `pidfile`. */
  readonly pidfile?: string;
  /** The environment children start from; default process.env. */
  readonly env?: NodeJS.ProcessEnv;
  /** Reopen a log file (logrotate); called on every reload. */
  readonly reopenLog?: () => void;
  /** systemd readiness notifications (NOTIFY_SOCKET), when running under systemd. */
  readonly notifier?: Notifier;
  /** Listening sockets passed by systemd, by fd name (= component tag). */
  readonly inheritedSockets?: ReadonlyMap<string, readonly number[]>;
  /** First delay before retrying a socket that could not be bound (default 5 s, doubling). */
  readonly listenRetryMs?: number;
  /** Aborting it stops the daemon, also while startup components still run. */
  readonly signal?: AbortSignal;
  /** Reload when the config file or an included file changes (`--watch`). */
  readonly watchConfig?: boolean | { readonly debounceMs?: number };
  /** Runs once the config is loaded, before any component socket listens: the control
   * socket is made here, so nothing is served before it can be controlled. */
  readonly beforeListening?: (config: Config) => Promise<void>;
}

/**
 * The outcome of a reload: applied with its plan, or refused with every diagnostic. An applied
 * reload may carry warnings: sockets that could not be bound yet (they are retried).
 */
export type ReloadResult = { readonly ok: true; readonly plan: Plan; readonly warnings?: readonly string[] } | { readonly ok: false; readonly errors: string };

/** One component as `tpiesctl list` and the control API show it. */
export interface ComponentInfo {
  readonly tag: string;
  readonly mode: Component['mode'];
  /** Supervised: the state table's state; inetd: listening/stopped/…; subordinate: its master's. */
  readonly state: string;
  readonly pid?: number;
  /** When the current state began (ms since the epoch). */
  readonly since: number;
  readonly restarts: number;
  /** Live per-connection processes (inetd components and subordinates). */
  readonly instances?: number;
  readonly socket?: string;
  readonly service?: string;
  readonly master?: string;
  /** When a sleeping or waiting component starts again. */
  readonly wakeAt?: number;
  readonly lastExit?: ComponentStatus['lastExit'];
}

/** Which ACL level decided for `tpiesctl acl test`. */
export interface AclTestLevel {
  readonly acl: string;
  readonly decision: 'allow' | 'deny' | 'no-match' | 'no-acl';
  readonly rule: string;
}

export interface AclTestResult {
  readonly decision: 'allow' | 'deny';
  readonly levels: readonly AclTestLevel[];
}

export interface DaemonInfo {
  readonly pid: number;
  readonly version: string;
  readonly configFile: string;
  readonly startedAt: number;
  readonly argv: readonly string[];
}

/** A running tpies instance. */
export interface Daemon {
  readonly config: Config;
  info(): DaemonInfo;
  /** Supervised components only (the state table's view). */
  status(): readonly ComponentStatus[];
  /** Every component, supervised or listening, in configuration order. */
  components(): readonly ComponentInfo[];
  /** Administrative start/stop/restart of one component; false when the tag is unknown. */
  startComponent(tag: string): Promise<boolean>;
  stopComponent(tag: string): Promise<boolean>;
  restartComponent(tag: string): Promise<boolean>;
  /** Which ACL rules decide for a client address, optionally for a component or TCPMUX service. */
  aclTest(address: string, target?: string): AclTestResult | { readonly error: string };
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
  if (!loaded.config) throw new ConfigInvalidError(loaded.diagnostics, loaded.sources);
  let config = loaded.config;
  const startedAt = Date.now();
  const pidfile = options.pidfile ?? config.pidfile;
  if (pidfile !== undefined) claimPidfile(pidfile);

  const baseEnv = childBaseEnv(options.env ?? process.env);
  let launcher: Launcher = createLauncher({ config, log, baseEnv });
  const byTag = (tag: string) => config.components.find((c) => c.tag === tag);
  const network = new Network({ log, ...(options.listenRetryMs !== undefined ? { retryMs: options.listenRetryMs } : {}) });
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
  const notify = (sent: Promise<boolean> | undefined): void => {
    if (!sent) return;
    detach(sent.then((ok) => ok || log.warn({ reason: options.notifier?.lastError ?? 'unknown' }, 'sd_notify failed')), log, 'sd_notify');
  };
  const inherited = new Map<string, number>();
  for (const [name, fds] of options.inheritedSockets ?? []) {
    if (fds.length > 1) log.warn({ name, fds: fds.length }, 'several inherited sockets share a name: using the first');
    if (fds[0] !== undefined) inherited.set(name, fds[0]);
  }
  for (const name of inherited.keys()) {
    if (!config.components.some((c) => c.tag === name && c.mode === 'inetd' && c.socket)) log.warn({ name }, 'inherited socket matches no inetd component');
  }
  try {
    await options.beforeListening?.(config);
  } catch (error) {
    if (pidfile !== undefined) releasePidfile(pidfile);
    throw error;
  }
  await network.apply(config, launcher, inherited);
  const descriptors = watchDescriptors(log);
  supervisor.load(config);
  log.info({ config: options.configFile, components: config.components.length }, 'tpies started');

  let resolveStopped!: () => void;
  const stopped = new Promise<void>((resolve) => (resolveStopped = resolve));
  let stopping: Promise<void> | undefined;
  let reloading = Promise.resolve<unknown>(undefined);

  let watcher: ConfigWatcher | undefined;
  const attempt = async (): Promise<{ next: Config; plan: Plan } | { errors: string }> => {
    const next = await loadConfig(options.configFile, options);
    if (!next.config) {
      // Watch what the broken config includes too, so fixing any of it triggers a reload.
      if (watcher) detach(watcher.update([...new Set([...config.files, ...next.files])]), log, 'watch update');
      return { errors: formatDiagnostics(next.diagnostics, next.sources) };
    }
    return { next: next.config, plan: planReload(config, next.config) };
  };

  // Load and check the whole new config first; only then touch anything (atomic reload).
  const applyReload = async (): Promise<ReloadResult> => {
    const result = await attempt();
    if ('errors' in result) {
      log.error({ config: options.configFile, diagnostics: result.errors.trimEnd() }, 'config rejected');
      return { ok: false, errors: result.errors };
    }
    const { next, plan } = result;
    const tags = (action: string) => plan.entries.filter((e) => e.action === action).map((e) => e.tag);
    config = next;
    if (watcher) detach(watcher.update(next.files), log, 'watch update');
    launcher = createLauncher({ config, log, baseEnv });
    // Listeners first, so new components waiting on inetd prerequisites find them bound.
    const failures = await network.apply(config, launcher);
    for (const f of failures) log.error({ component: f.tag, socket: f.socket }, 'reload could not bind; retrying');
    await supervisor.reconfigure(config, [...tags('stop'), ...tags('restart')], [...tags('start'), ...tags('restart')]);
    log.info({ started: tags('start').length, stopped: tags('stop').length, restarted: tags('restart').length, kept: tags('keep').length }, 'config reloaded');
    const warnings = failures.map((f) => `component "${f.tag}": cannot bind ${f.socket} yet; retrying in the background`);
    return warnings.length > 0 ? { ok: true, plan, warnings } : { ok: true, plan };
  };

  const daemon: Daemon = {
    get config() {
      return config;
    },
    supervisor,
    stopped,
    info: () => ({ pid: process.pid, version: VERSION, configFile: options.configFile, startedAt, argv: process.argv }),
    status: () => supervisor.status(),
    components: () => componentInfo(config, supervisor.status(), network),
    async startComponent(tag) {
      if (supervisor.has(tag)) return supervisor.startComponent(tag);
      return network.startListener(tag);
    },
    async stopComponent(tag) {
      if (supervisor.has(tag)) return supervisor.stopComponent(tag);
      return network.stopListener(tag);
    },
    async restartComponent(tag) {
      if (supervisor.has(tag)) return supervisor.restartComponent(tag);
      return (await network.stopListener(tag)) && network.startListener(tag);
    },
    aclTest: (address, target) => aclTest(config, address, target),
    addressOf: (tag) => network.addressOf(tag),
    instances: (tag) => network.instances(tag),
    async planReload() {
      const result = await attempt();
      return 'errors' in result ? { ok: false, errors: result.errors } : { ok: true, plan: result.plan };
    },
    reload() {
      // One reload at a time, in order: a second SIGHUP waits for the first.
      const run = reloading.then(async (): Promise<ReloadResult> => {
        // Once stopping, nothing new may start or bind.
        if (stopping) return { ok: false, errors: 'tpies is stopping: reload refused\n' };
        options.reopenLog?.();
        notify(options.notifier?.reloading('reloading configuration'));
        const result = await applyReload().catch((error: unknown) => {
          notify(options.notifier?.ready('reload failed; previous config still running'));
          throw error;
        });
        notify(options.notifier?.ready(result.ok ? `config reloaded; ${summary(config, supervisor, network)}` : 'config rejected; previous config still running'));
        return result;
      });
      reloading = run.catch(() => undefined);
      return run;
    },
    stop() {
      stopping ??= (async () => {
        notify(options.notifier?.stopping('stopping'));
        log.info({}, 'tpies stopping');
        await watcher?.close();
        await reloading;
        descriptors.stop();
        await Promise.all([network.close(config.shutdownTimeoutMs), supervisor.stop()]);
        if (pidfile !== undefined) releasePidfile(pidfile);
        log.info({}, 'tpies stopped');
        resolveStopped();
      })();
      return stopping;
    },
  };
  // A stop requested while startup components still run (SIGTERM early) stops them too.
  if (options.signal?.aborted) detach(daemon.stop(), log, 'stop');
  else options.signal?.addEventListener('abort', () => detach(daemon.stop(), log, 'stop'), { once: true });
  await supervisor.start();
  if (stopping) return daemon;
  notify(options.notifier?.ready(summary(config, supervisor, network)));
  if (options.watchConfig) {
    // Loaded only for --watch: chokidar and its dependencies cost a daemon without it memory.
    const { watchConfig } = await import('./config/watch.js');
    if (stopping) return daemon;
    const tuning = typeof options.watchConfig === 'object' && options.watchConfig.debounceMs !== undefined ? { debounceMs: options.watchConfig.debounceMs } : {};
    watcher = await watchConfig(
      config.files,
      (changed) => {
        log.info({ files: changed.join(', ') }, 'config changed on disk');
        detach(daemon.reload(), log, 'reload');
      },
      { log, ...tuning },
    );
  }
  return daemon;
}

// One line for systemd's STATUS=: how many components run and listen.
function summary(config: Config, supervisor: Supervisor, network: Network): string {
  const running = supervisor.status().filter((s) => s.state === 'running').length;
  const listening = network.status().filter((s) => s.state === 'listening').length;
  return `${running} running, ${listening} listening, ${config.components.length} components`;
}

function componentInfo(config: Config, supervised: readonly ComponentStatus[], network: Network): ComponentInfo[] {
  const bySupervisor = new Map(supervised.map((s) => [s.tag, s]));
  const byListener = new Map(network.status().map((s) => [s.tag, s]));
  return config.components.map((c): ComponentInfo => {
    const s = bySupervisor.get(c.tag);
    if (s) {
      return {
        tag: c.tag,
        mode: c.mode,
        state: s.state,
        ...(s.pid !== undefined ? { pid: s.pid } : {}),
        since: s.since,
        restarts: s.restarts,
        ...(c.socket ? { socket: c.socket.url } : {}),
        ...(s.wakeAt !== undefined ? { wakeAt: s.wakeAt } : {}),
        ...(s.lastExit ? { lastExit: s.lastExit } : {}),
      };
    }
    const l = byListener.get(c.tag);
    if (l) return { tag: c.tag, mode: c.mode, state: l.state, since: l.since, restarts: 0, instances: l.instances, socket: l.socket, ...(c.service !== undefined ? { service: c.service } : {}) };
    const master = c.tcpmuxMaster !== undefined ? byListener.get(c.tcpmuxMaster) : undefined;
    return {
      tag: c.tag,
      mode: c.mode,
      state: c.flags.has('disable') ? 'disabled' : (master?.state ?? 'stopped'),
      since: master?.since ?? 0,
      restarts: 0,
      instances: network.instances(c.tag),
      ...(c.service !== undefined ? { service: c.service } : {}),
      ...(c.tcpmuxMaster !== undefined ? { master: c.tcpmuxMaster } : {}),
    };
  });
}

// Explain the ACL decision for `address`: global, then (for a TCPMUX service) the master's
// and the subordinate's, or the named component's own.
function aclTest(config: Config, address: string, target?: string): AclTestResult | { error: string } {
  const family = isIP(address);
  if (family === 0) return { error: `"${address}" is not an IP address` };
  const peer = peerFromAddress(address, family, 0);
  const component = target === undefined ? undefined : (config.components.find((c) => c.tag === target) ?? config.components.find((c) => c.service !== undefined && c.tcpmuxMaster !== undefined && c.service.toLowerCase() === target.toLowerCase()));
  if (target !== undefined && !component) return { error: `no component or TCPMUX service named "${target}"` };
  const master = component?.tcpmuxMaster !== undefined ? config.components.find((c) => c.tag === component.tcpmuxMaster) : undefined;
  const chain: Array<[string, AclRef | undefined]> = [['global', config.acl]];
  if (master) chain.push([`component "${master.tag}"`, master.acl]);
  if (component) chain.push([`component "${component.tag}"`, component.acl]);
  const levels: AclTestLevel[] = [];
  for (const [name, ref] of chain) {
    if (!ref) {
      levels.push({ acl: name, decision: 'no-acl', rule: 'no ACL: allowed' });
      continue;
    }
    const acl = ref.kind === 'inline' ? ref.acl : config.defacls.get(ref.name);
    const d = acl ? compileAcl(acl, config.defacls).decide(peer) : undefined;
    const decision = d?.decision ?? 'deny';
    levels.push({ acl: ref.kind === 'named' ? `${name} (defacl ${ref.name})` : name, decision, rule: d ? describeDecision(d) : 'undefined ACL: denied' });
    if (decision === 'deny') return { decision: 'deny', levels };
  }
  return { decision: 'allow', levels };
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
