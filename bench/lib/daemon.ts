// Start the built tpies daemon (dist/src/bin/tpies.js) as a separate process, so that its
// RSS and CPU are its own, and stop it again by pid: SIGTERM, then SIGKILL for it and for
// whatever it left behind.
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Cleanup } from './cleanup.js';
import { descendantsOf, markedProcesses, pollUntil, running } from './proc.js';

/** Environment variable that marks the daemons this run starts, and their children. */
export const MARKER_NAME = 'TPIES_BENCH_MARKER';

export interface TpiesProcess {
  readonly pid: number;
  readonly child: ChildProcess;
  readonly logFile: string;
  /** Resolves with the exit code/signal when the daemon process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  hasExited(): boolean;
  /** SIGTERM, wait up to `graceMs`, then SIGKILL it and its descendants. Idempotent. */
  stop(graceMs?: number): Promise<void>;
  /** The last lines of its log, for error messages. */
  logTail(lines?: number): string;
}

export interface StartTpiesOptions {
  readonly root: string;
  readonly dir: string;
  readonly name: string;
  readonly configText: string;
  readonly cleanup: Cleanup;
  readonly logLevel?: string;
  /** A command that execs the daemon (same pid), e.g. ['/usr/bin/taskset', '-c', '1']. */
  readonly wrap?: readonly string[];
}

export function builtCli(root: string): string {
  return path.join(root, 'dist/src/bin/tpies.js');
}

export function startTpies(options: StartTpiesOptions): TpiesProcess {
  const cli = builtCli(options.root);
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run "npm run build" (npm run bench does it)`);
  const configFile = path.join(options.dir, `${options.name}.conf`);
  const logFile = path.join(options.dir, `${options.name}.log`);
  writeFileSync(configFile, options.configText);
  const fd = openSync(logFile, 'a');
  const marker = `${process.pid}-${options.name}-${Date.now()}`;
  // Each daemon gets its own control socket: the default one may belong to another tpies.
  // A config that names its own control socket keeps it.
  const control = /^\s*control\s*\{/m.test(options.configText) ? [] : ['--control-socket', path.join(options.dir, `${options.name}.ctl`)];
  const argv = [...(options.wrap ?? []), process.execPath, cli, '-c', configFile, ...control, '--log-level', options.logLevel ?? 'warn', '--log-format', 'json'];
  const child = spawn(argv[0] as string, argv.slice(1), {
    cwd: options.dir,
    // A small fixed environment, like the peers' start scripts (env -i PATH=… LANG=C).
    env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C', HOME: process.env.HOME ?? '/root', [MARKER_NAME]: marker },
    stdio: ['ignore', fd, fd],
    // Its own process group: a Ctrl-C at the terminal reaches the bench, which stops it.
    detached: true,
  });
  closeSync(fd);
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not start the tpies daemon');
  let done = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      done = true;
      resolve({ code, signal });
    });
  });
  let stopping: Promise<void> | undefined;
  // Its descendants, and (after it has gone) children it left behind, found by the marker.
  const leftovers = (): number[] => [...new Set([...(done ? [] : descendantsOf(pid)), ...markedProcesses(MARKER_NAME, marker)])].filter((p) => p !== pid);
  const killLeftovers = (): void => {
    const left = leftovers();
    if (!done) safeKill(pid, 'SIGKILL');
    for (const p of left) safeKill(p, 'SIGKILL');
  };
  const stop = (graceMs = 15_000): Promise<void> => {
    stopping ??= (async () => {
      const kids = done ? [] : descendantsOf(pid);
      if (!done) {
        safeKill(pid, 'SIGTERM');
        const timer = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), graceMs).unref());
        const ok = await Promise.race([exited.then(() => true), timer]);
        if (!ok) {
          console.error(`tpies (pid ${pid}) did not stop within ${graceMs} ms; killing it`);
          killLeftovers();
          await exited;
        }
      }
      // Children it started and did not stop (it should have): by pid, only ours.
      await pollUntil(() => kids.every((k) => !running(k)), 2000);
      const left = [...new Set([...kids.filter(running), ...markedProcesses(MARKER_NAME, marker).filter(running)])];
      if (left.length) {
        console.error(`tpies (pid ${pid}) left ${left.length} process(es) running after it exited: ${left.slice(0, 10).join(' ')}${left.length > 10 ? ' …' : ''}; killing them`);
        for (const k of left) safeKill(k, 'SIGKILL');
      }
    })();
    return stopping;
  };
  const unregister = options.cleanup.add(`tpies ${options.name} (pid ${pid})`, () => stop(), killLeftovers);
  return {
    pid,
    child,
    logFile,
    exited,
    hasExited: () => done,
    stop: async (graceMs) => {
      await stop(graceMs);
      unregister();
    },
    logTail(lines = 20) {
      try {
        return readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
      } catch {
        return '';
      }
    },
  };
}

export function safeKill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}
