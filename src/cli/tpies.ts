// `tpies`: argv → lint, dump or run the supervisor. Thin: the work is in config/ and daemon.ts.
import path from 'node:path';
import { ConfigInvalidError, EXIT, PiesError } from '../errors.js';
import type { SocketAddress } from '../config/model.js';
import { type ControlServer, daemonControlOptions, startControlServer } from '../control/server.js';
import { parseControlSocket } from '../control/socket-path.js';
import type { ControlTarget } from '../control/routes.js';
import { detach } from '../log/detach.js';
import { clearActivationEnv, inheritedSockets } from '../systemd/activation.js';
import { createNotifier } from '../systemd/notify.js';
import { VERSION } from '../version.js';
import { formatDiagnostics, loadConfig, type LoadConfigResult } from '../config/index.js';
import type { Diagnostic, Sources } from '../config/diagnostics.js';
import { type TpiesOptions, TPIES_USAGE, parseTpiesArgs } from './args.js';
import type { CliIo } from './io.js';
import { type Daemon, startDaemon } from '../daemon.js';
import { createLogger, defaultLogFormat } from '../log/logger.js';
import { handleSignals } from '../signals.js';
import { spawnChild } from '../supervisor/spawn.js';

// Run tpies with `argv` (no node/script names); resolves to the process exit code.
export async function runTpies(argv: readonly string[], io: CliIo): Promise<number> {
  let options: TpiesOptions;
  try {
    options = parseTpiesArgs(argv);
  } catch (error) {
    if (!(error instanceof PiesError)) throw error;
    io.stderr(`tpies: ${error.message}\n${TPIES_USAGE}`);
    return EXIT.USAGE;
  }
  switch (options.action) {
    case 'help':
      io.stdout(TPIES_USAGE);
      return EXIT.OK;
    case 'version':
      io.stdout(`tpies ${VERSION}\n`);
      return EXIT.OK;
    case 'lint':
    case 'dump-config': {
      const loaded = await load(options, io);
      if (!loaded.config) return EXIT.CONFIG;
      // dump.js and ctl.js are loaded only here, not by a running daemon (idle RSS).
      if (options.action === 'dump-config') io.stdout((await import('../config/dump.js')).dumpConfig(loaded.config));
      // --lint --diff: the running daemon tells what a reload would change (its dry run).
      if (options.diff) {
        const socket = options.controlSocket !== undefined ? ['--socket', options.controlSocket] : ['--config-file', configPath(options, io)];
        const { runTpiesctl } = await import('./ctl.js');
        return runTpiesctl([...socket, 'reload', '--dry-run'], io);
      }
      return EXIT.OK;
    }
    case 'run':
      return options.daemon ? detachDaemon(argv, io) : runDaemon(options, io);
  }
}

// Run the supervisor in the foreground until it is stopped.
async function runDaemon(options: TpiesOptions, io: CliIo): Promise<number> {
  const logger = createLogger({
    level: options.logLevel,
    format: options.logFormat ?? defaultLogFormat(process.stderr.isTTY),
    ...(options.logFile !== undefined ? { file: options.logFile } : {}),
  });
  const log = logger.log;
  let controlOverride: SocketAddress | undefined;
  if (options.controlSocket !== undefined) {
    const parsed = parseControlSocket(options.controlSocket);
    if ('error' in parsed) {
      io.stderr(`tpies: --control-socket: ${parsed.error}\n`);
      return EXIT.USAGE;
    }
    controlOverride = parsed.address;
  }
  const inherited = inheritedSockets();
  clearActivationEnv();
  for (const reason of inherited.warnings) log.warn({ reason }, 'socket activation ignored');
  const notifier = createNotifier();
  if (notifier?.fallbackReason !== undefined) log.warn({ reason: notifier.fallbackReason }, 'sd_notify through systemd-notify');

  // Until the daemon exists, a stop request aborts the start (and stops what already runs);
  // SIGHUP must not kill us with its default action.
  const abort = new AbortController();
  const earlyStop = (signal: NodeJS.Signals): void => {
    log.info({ signal }, 'stop requested');
    abort.abort();
  };
  const earlyHup = (): void => log.warn({ signal: 'SIGHUP' }, 'reload ignored: still starting');
  process.on('SIGTERM', earlyStop);
  process.on('SIGINT', earlyStop);
  process.on('SIGHUP', earlyHup);
  const removeEarly = (): void => {
    process.off('SIGTERM', earlyStop);
    process.off('SIGINT', earlyStop);
    process.off('SIGHUP', earlyHup);
  };

  // The control socket is bound before any component listens (beforeListening); requests
  // wait until the daemon is up, and reach it through `started`.
  let control: ControlServer | undefined;
  let started: Daemon | undefined;
  let markStarted!: () => void;
  const targetReady = new Promise<void>((resolve) => (markStarted = resolve));
  const target = lateTarget(() => started);
  let daemon: Daemon;
  try {
    daemon = await startDaemon({
      beforeListening: async (config) => {
        const configNow = { get config() { return started?.config ?? config; } };
        control = await startControlServer(target, { ...daemonControlOptions(configNow, log, controlOverride), targetReady });
      },
      configFile: configPath(options, io),
      syntax: options.syntax,
      includeDirs: options.includeDirs,
      log,
      reopenLog: () => logger.reopen(),
      signal: abort.signal,
      inheritedSockets: inherited.fds,
      watchConfig: options.watch,
      ...(notifier ? { notifier } : {}),
      ...(options.pidfile !== undefined ? { pidfile: options.pidfile } : {}),
    });
  } catch (error) {
    removeEarly();
    await control?.close();
    if (!(error instanceof PiesError)) throw error;
    io.stderr(error instanceof ConfigInvalidError ? diagnosticsText(error.diagnostics, error.sources) : `tpies: ${error.message}\n`);
    return error.exitCode;
  }
  started = daemon;
  markStarted();
  const unhandle = handleSignals(daemon, log);
  removeEarly();
  if (abort.signal.aborted) detach(daemon.stop(), log, 'stop');
  // A bug must not leave children behind: stop them, then exit 70 (crash-only).
  const onCrash = (error: unknown): void => {
    log.fatal({ err: error instanceof Error ? (error.stack ?? error.message) : String(error) }, 'internal error');
    logger.flush();
    daemon.stop().finally(() => process.exit(EXIT.SOFTWARE));
  };
  process.on('uncaughtException', onCrash);
  process.on('unhandledRejection', onCrash);
  await daemon.stopped;
  await control?.close();
  unhandle();
  process.off('uncaughtException', onCrash);
  process.off('unhandledRejection', onCrash);
  logger.flush();
  return EXIT.OK;
}

// --daemon: start a detached foreground copy of ourselves and return at once.
function detachDaemon(argv: readonly string[], io: CliIo): number {
  const script = process.argv[1] ?? '';
  const child = spawnChild({
    file: process.execPath,
    args: [...process.execArgv, script, ...argv.filter((a) => a !== '--daemon'), '--foreground'],
    env: Object.fromEntries(Object.entries(io.env).filter((e): e is [string, string] => e[1] !== undefined)),
    cwd: io.cwd,
    stdin: 'ignore',
    stdout: 'ignore',
    stderr: 'ignore',
  });
  if (child.pid === undefined) {
    io.stderr('tpies: cannot start the daemon process\n');
    return EXIT.OSERR;
  }
  io.stdout(`${child.pid}\n`);
  return EXIT.OK;
}

function configPath(options: TpiesOptions, io: CliIo): string {
  return path.isAbsolute(options.configFile) ? options.configFile : path.relative(io.cwd, path.resolve(io.cwd, options.configFile)) || options.configFile;
}

// Load the config and print every diagnostic (warnings too) to stderr.
async function load(options: TpiesOptions, io: CliIo): Promise<LoadConfigResult> {
  const loaded = await loadConfig(configPath(options, io), { syntax: options.syntax, includeDirs: options.includeDirs });
  const text = diagnosticsText(loaded.diagnostics, loaded.sources);
  if (text) io.stderr(text);
  return loaded;
}

// A config that could not be read at all (the only diagnostics are location-less `read`
// errors, i.e. the main file) is one plain line per error, like any other fatal CLI
// error: `tpies: cannot read config FILE: reason`, without excerpt, rule or summary.
function diagnosticsText(diagnostics: readonly Diagnostic[], sources: Sources): string {
  const unreadable = diagnostics.length > 0 && diagnostics.every((d) => d.rule === 'read' && d.severity === 'error' && d.location === undefined);
  return unreadable ? diagnostics.map((d) => `tpies: ${d.message}\n`).join('') : formatDiagnostics(diagnostics, sources);
}

// The daemon as the control server sees it before startDaemon has returned: the server holds
// every request until the daemon is up (targetReady), so `get()` is set by then.
function lateTarget(get: () => Daemon | undefined): ControlTarget {
  const daemon = (): Daemon => {
    const d = get();
    if (!d) throw new Error('tpies is still starting');
    return d;
  };
  return {
    info: () => daemon().info(),
    components: () => daemon().components(),
    reload: () => daemon().reload(),
    planReload: () => daemon().planReload(),
    stop: () => daemon().stop(),
    startComponent: (tag) => daemon().startComponent(tag),
    stopComponent: (tag) => daemon().stopComponent(tag),
    restartComponent: (tag) => daemon().restartComponent(tag),
    aclTest: (address, targetTag) => daemon().aclTest(address, targetTag),
  };
}
