// The built daemon (`node dist/src/bin/tpies.js --log-format json`) as a separate process,
// for the reliability scenarios: its memory, CPU and descriptors are its own, it can run
// under a wrapper (`prlimit --nofile=256:256 --`), and it can be signalled like in
// production. Started detached, so it leads its own session; t.after kills every process
// of that session (components and orphaned grandchildren included) even on failure.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { alive, waitFor } from '../helpers/daemon.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CLI = path.join(ROOT, 'dist/src/bin/tpies.js');
export const BIN = path.join(ROOT, 'test/fixtures/bin');

export type LogLine = { readonly level: string | number; readonly msg: string; readonly [field: string]: unknown };
export type Exit = { readonly code: number | null; readonly signal: NodeJS.Signals | null };
export type LogFilter = string | { readonly component?: string; readonly msg?: string } | ((line: LogLine) => boolean);

export interface DaemonProcessOptions {
  /** Config text; {{dir}} (the temp dir) and {{bin}} (test/fixtures/bin) expand. */
  readonly config: string;
  /** Runs before node, e.g. `['prlimit', '--nofile=256:256', '--']` (it must exec, keeping the pid). */
  readonly wrapper?: readonly string[];
  /** More tpies arguments (`-c`, `--log-format json` and `--control-socket` are given). */
  readonly args?: readonly string[];
  /** Added to this process's environment. */
  readonly env?: Readonly<Record<string, string>>;
  /** Which JSON log records to keep in memory (default all): a child writing 100 MB to stderr need not be kept. */
  readonly keep?: (line: LogLine) => boolean;
  /** Wait for `tpies started` (default 15 s); 0 returns at once. */
  readonly readyTimeoutMs?: number;
}

export interface DaemonProcess {
  readonly pid: number;
  readonly dir: string;
  readonly configFile: string;
  readonly controlSocket: string;
  /** The JSON log records kept, in order. */
  readonly log: LogLine[];
  /** stderr lines that are not JSON log records (a fatal one-line message). */
  readonly stderr: string[];
  readonly exited: Promise<Exit>;
  /** Bytes and lines read from stderr so far (all of them, kept or not). */
  stderrVolume(): { bytes: number; lines: number };
  /** Kept log records: of a component (a string), matching fields, or a predicate. */
  entries(filter?: LogFilter): LogLine[];
  /** Resolves with the first kept record matching `filter`, waiting up to `timeoutMs`. */
  waitLog(filter: LogFilter, timeoutMs?: number): Promise<LogLine>;
  /** The TCP port component `tag` listens on, from its last `listening` record. */
  port(tag: string): number;
  /** Write a new config (expanded like the first); a SIGHUP or `--watch` applies it. */
  rewrite(config: string): void;
  signal(sig: NodeJS.Signals): void;
  running(): boolean;
  /** Resident memory (VmRSS) in MB. */
  rssMb(): number;
  /** User + system CPU time consumed so far, in seconds. */
  cpuSeconds(): number;
  /** Open descriptors. */
  fds(): number;
  /** Every other process of the daemon's session: components, connection children, grandchildren. */
  descendants(): number[];
  /** A control API request over the control socket; `body` is the parsed JSON answer. */
  control(method: string, urlPath: string): Promise<{ status: number; body: unknown }>;
  /** SIGTERM, then the exit status; fails the test after `timeoutMs`. */
  stop(timeoutMs?: number): Promise<Exit>;
}

/** A TCP port free on 127.0.0.1 right now (bound to 0, then closed): for configs that need a fixed one. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

// dist/ is built by `npx tsc -p .` (npm test builds first); a stale one tests old code.
export function ensureBuilt(): void {
  if (!existsSync(CLI)) assert.fail(`${CLI} is missing: run \`npx tsc -p .\` first`);
}

let clockTicks: number | undefined;
function ticksPerSecond(): number {
  clockTicks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  return clockTicks;
}

// Fields of /proc/PID/stat after the command name (which may hold spaces and parentheses):
// [0] is the state, field N of proc(5) is at N - 3.
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

function sessionMembers(sid: number): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid !== sid && statFields(pid)?.[3] === String(sid)) pids.push(pid);
  }
  return pids;
}

function killQuietly(target: number): void {
  try {
    process.kill(target, 'SIGKILL');
  } catch {
    // Gone already.
  }
}

function matches(filter: LogFilter | undefined, line: LogLine): boolean {
  if (filter === undefined) return true;
  if (typeof filter === 'string') return line['component'] === filter;
  if (typeof filter === 'function') return filter(line);
  return (filter.component === undefined || line['component'] === filter.component) && (filter.msg === undefined || line.msg === filter.msg);
}

export async function startDaemonProcess(t: TestContext, options: DaemonProcessOptions): Promise<DaemonProcess> {
  ensureBuilt();
  const dir = mkdtempSync(path.join(tmpdir(), 'tpies-rel-'));
  const configFile = path.join(dir, 'tpies.conf');
  const controlSocket = path.join(dir, 'tpies.ctl');
  const rewrite = (text: string): void => writeFileSync(configFile, text.replaceAll('{{dir}}', dir).replaceAll('{{bin}}', BIN));
  rewrite(options.config);

  const argv = [...(options.wrapper ?? []), process.execPath, CLI, '-c', configFile, '--log-format', 'json', '--control-socket', controlSocket, ...(options.args ?? [])];
  const child = spawn(argv[0]!, argv.slice(1), {
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, NO_COLOR: '1', ...options.env },
  });
  const pid = child.pid;
  if (pid === undefined) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`could not start ${argv.join(' ')}`);
  }
  const exited = new Promise<Exit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  let gone = false;
  void exited.then(() => (gone = true));

  // Noted while running: once the daemon is killed its children are reparented and only the
  // session id (or the log) still finds them.
  const seen = new Set<number>();
  t.after(async () => {
    for (const p of sessionMembers(pid)) seen.add(p);
    if (!gone) {
      killQuietly(-pid);
      killQuietly(pid);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise((resolve) => (timer = setTimeout(resolve, 5000)))]);
      clearTimeout(timer);
    }
    // Components lead process groups of their own; kill each group, then every straggler.
    for (const line of log) if (typeof line['childPid'] === 'number') seen.add(line['childPid']);
    for (const p of sessionMembers(pid)) seen.add(p);
    for (const p of seen) {
      if (!alive(p)) continue;
      killQuietly(-p);
      killQuietly(p);
    }
    rmSync(dir, { recursive: true, force: true });
  });

  const log: LogLine[] = [];
  const stderr: string[] = [];
  let bytes = 0;
  let lines = 0;
  const keep = options.keep ?? (() => true);
  createInterface({ input: child.stderr! }).on('line', (text) => {
    bytes += text.length + 1;
    lines++;
    let record: unknown;
    try {
      record = JSON.parse(text);
    } catch {
      stderr.push(text);
      return;
    }
    if (record && typeof record === 'object' && 'msg' in record) {
      const line = record as LogLine;
      if (keep(line)) log.push(line);
    } else stderr.push(text);
  });

  const entries = (filter?: LogFilter): LogLine[] => log.filter((line) => matches(filter, line));
  const describe = (): string => `stderr:\n${[...stderr, ...log.slice(-30).map((l) => JSON.stringify(l))].join('\n')}`;
  const daemon: DaemonProcess = {
    pid,
    dir,
    configFile,
    controlSocket,
    log,
    stderr,
    exited,
    stderrVolume: () => ({ bytes, lines }),
    entries,
    async waitLog(filter, timeoutMs = 10_000) {
      let found: LogLine | undefined;
      await waitFor(() => (found = log.find((line) => matches(filter, line))) !== undefined || gone, timeoutMs, `a log record matching ${String(typeof filter === 'function' ? 'the predicate' : JSON.stringify(filter))}; ${describe()}`);
      if (!found) throw new Error(`tpies exited before logging it; ${describe()}`);
      return found;
    },
    port(tag) {
      const listening = log.filter((l) => l['component'] === tag && l.msg === 'listening').at(-1);
      const port = Number(String(listening?.['bound'] ?? '').split(':').pop());
      if (!(port > 0)) throw new Error(`${tag} is not listening on TCP; ${describe()}`);
      return port;
    },
    rewrite,
    signal: (sig) => void process.kill(pid, sig),
    running: () => !gone && alive(pid),
    rssMb() {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const kb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]);
      return kb / 1024;
    },
    cpuSeconds() {
      const f = statFields(pid);
      if (!f) throw new Error(`tpies (pid ${pid}) is gone`);
      return (Number(f[11]) + Number(f[12])) / ticksPerSecond();
    },
    fds: () => readdirSync(`/proc/${pid}/fd`).length,
    descendants() {
      const members = sessionMembers(pid);
      for (const p of members) seen.add(p);
      return members;
    },
    control: (method, urlPath) =>
      new Promise((resolve, reject) => {
        const req = request({ socketPath: controlSocket, method, path: urlPath, timeout: 10_000 }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            try {
              resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown });
            } catch {
              resolve({ status: res.statusCode ?? 0, body: text });
            }
          });
          res.on('error', reject);
        });
        req.on('timeout', () => req.destroy(new Error(`control ${method} ${urlPath} timed out`)));
        req.on('error', reject);
        req.end();
      }),
    async stop(timeoutMs = 15_000) {
      if (!gone) process.kill(pid, 'SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`tpies did not exit within ${timeoutMs} ms; ${describe()}`)), timeoutMs);
      });
      try {
        return await Promise.race([exited, late]);
      } finally {
        clearTimeout(timer);
      }
    },
  };

  const readyMs = options.readyTimeoutMs ?? 15_000;
  if (readyMs > 0) await daemon.waitLog({ msg: 'tpies started' }, readyMs);
  return daemon;
}
