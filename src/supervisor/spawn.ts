// Starts one child process from a fully prepared request and reports its pid and its end.
// Two ways, one behaviour: posix_spawn through koffi (native/posix-spawn.ts, reaped by
// native/reaper.ts), whose cost does not grow with the daemon's memory as Node's fork()
// does (docs/performance.md, "The spawn path"); and execa — the only importer of execa —
// when koffi cannot load or a request is one posix_spawn cannot express the same way.
// Errors read the same either way (`spawnError`), because logs and tests compare them.
import { type StdioOptions, spawn as nodeSpawn } from 'node:child_process';
import net, { type Socket } from 'node:net';
import { constants as osConstants } from 'node:os';
import path from 'node:path';
import { accessSync, constants as fsConstants, statSync } from 'node:fs';
import type { Readable } from 'node:stream';
import type { execa as Execa } from 'execa';
import { descriptorShortage } from '../inetd/descriptors.js';
import { handleFd } from '../inetd/handle-fd.js';
import { type ChildFd, type PosixSpawn, type PosixSpawnRequest, type PosixSpawnResult, loadPosixSpawn } from '../native/posix-spawn.js';
import { type Reaper, loadReaper } from '../native/reaper.js';
import { spawnerThread } from '../native/spawner-thread.js';

/** Where a child's standard stream comes from or goes to. */
export type StdioTarget = 'ignore' | 'pipe' | 'inherit' | number | Socket;

export interface SpawnRequest {
  readonly file: string;
  readonly args: readonly string[];
  /** argv[0] as the child sees it, when it differs from `file` (`program` statement). */
  readonly argv0?: string;
  /** The complete environment: nothing is inherited implicitly. */
  readonly env: Readonly<Record<string, string>>;
  readonly cwd?: string;
  readonly stdin: StdioTarget;
  readonly stdout: StdioTarget;
  readonly stderr: StdioTarget;
}

/** How a child ended, or why it never started. */
export interface ChildExit {
  readonly exitCode?: number;
  readonly signal?: NodeJS.Signals;
  /** Set when the process could not be started at all (ENOENT, EACCES, a bad cwd…). */
  readonly spawnError?: string;
}

export interface Child {
  /** Undefined when the spawn failed; `exited` then resolves at once with `spawnError`. */
  readonly pid: number | undefined;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  /** Resolves when the process is gone ('exit', not 'close': a grandchild may hold the pipes). */
  readonly exited: Promise<ChildExit>;
  /** Signal the child, or its whole process group (every child leads its own group). */
  kill(signal: NodeJS.Signals, group: boolean): void;
}

/** Which implementation starts children: `auto` is posix_spawn when koffi loads. */
export type SpawnMethod = 'auto' | 'execa';

let method: SpawnMethod = 'auto';

/** Choose the implementation (tests and benchmarks compare them; the daemon keeps `auto`). */
export async function setSpawnMethod(next: SpawnMethod): Promise<void> {
  if (next === 'execa') await loadExeca();
  method = next;
}

/** Which implementation `spawnChild` uses now. */
export function spawnMethod(): 'posix' | 'execa' {
  return method === 'auto' && native !== undefined ? 'posix' : 'execa';
}

// Start a child in its own session and process group (setsid), so stop reaches grandchildren.
export function spawnChild(request: SpawnRequest): Child {
  if (method !== 'auto' || native === undefined) return spawnExeca(request);
  const prepared = prepare(native, request, false);
  if (!('spawnRequest' in prepared)) return prepared;
  return started(native, prepared, spawnRetryingShell(native, prepared));
}

/**
 * The same, but posix_spawn runs off the event loop (with vfork semantics the calling thread
 * waits until the child has exec'd, ~0.2-1 ms): on the spawner thread, or, should that have
 * failed, as a koffi async call on the libuv threadpool. The request's fds are copied before
 * this returns: the caller may close its own at once.
 */
export async function spawnChildAsync(request: SpawnRequest): Promise<Child> {
  if (method !== 'auto' || native === undefined) return spawnExeca(request);
  // On the threadpool path, a stalled pool (every thread parked, e.g. by flags-wait polls)
  // would hold the spawn for as long; the event loop does it then, as spawnChild would.
  const thread = spawnerThread();
  const offLoop = thread instanceof Error ? native.spawner : thread;
  const viaPool = offLoop !== native.spawner || !threadpool.stalled();
  const prepared = prepare(native, request, viaPool);
  if (!('spawnRequest' in prepared)) return prepared;
  if (!viaPool) return started(native, prepared, spawnRetryingShell(native, prepared));
  let result: PosixSpawnResult;
  const done = threadpool.begin();
  try {
    result = await offLoop.spawnAsync(prepared.spawnRequest);
    if (result.errno === ENOEXEC) result = await offLoop.spawnAsync(shellFallback(prepared));
  } catch {
    // The spawner thread died, or koffi's async queue is full: do it here and now.
    result = spawnRetryingShell(native, prepared);
  } finally {
    done();
  }
  return started(native, prepared, result);
}

// In flight on the threadpool, and when one last finished (or the first began). A spawn
// there takes ~1 ms; none finishing for STALL_MS while some wait means no thread is free.
const STALL_MS = 20;
const threadpool = {
  inFlight: 0,
  lastProgress: 0,
  stalled(): boolean {
    return this.inFlight > 0 && performance.now() - this.lastProgress > STALL_MS;
  },
  begin(): () => void {
    if (this.inFlight++ === 0) this.lastProgress = performance.now();
    return () => {
      this.inFlight--;
      this.lastProgress = performance.now();
    };
  },
};

// ---- posix_spawn ----------------------------------------------------------------------------

interface Native {
  readonly spawner: PosixSpawn;
  readonly reaper: Reaper;
}

function loadPosix(): Native | undefined {
  const spawner = loadPosixSpawn();
  if (spawner instanceof Error) return undefined;
  const reaper = loadReaper();
  return reaper instanceof Error ? undefined : { spawner, reaper };
}

const native = loadPosix();

interface Prepared {
  readonly request: SpawnRequest;
  readonly spawnRequest: PosixSpawnRequest;
  /** Parent ends of stdout/stderr pipes. */
  readonly readEnds: readonly (number | undefined)[];
  /** Closed once posix_spawn has returned: what the child got its own copies of. */
  readonly handedOver: readonly number[];
  /** The write end of a stdin pipe, held until the child exits (nobody writes; as with execa). */
  readonly heldStdin: number | undefined;
}

// Everything up to the posix_spawn call: Node's argument checks, fds 0-2 (pipes made, fds
// made blocking, and copied when `copyFds` or when dup2 order would clobber them), the PATH
// search. A Child that failed to start when something is wrong.
function prepare({ spawner }: Native, request: SpawnRequest, copyFds: boolean): Prepared | Child {
  // execa's own check, which throws rather than failing the spawn.
  const nulArgument = request.args.find((arg) => arg.includes('\0'));
  if (nulArgument !== undefined) throw new TypeError(`Arguments cannot contain null bytes ("\\0"): ${nulArgument}`);
  const invalid = suspicious(request) ? nodeRejects(request) : undefined;
  if (invalid !== undefined) return failed(invalid);
  const fds: ChildFd[] = [];
  const readEnds: (number | undefined)[] = [undefined, undefined, undefined];
  const handedOver: number[] = [];
  let heldStdin: number | undefined;
  const copies = new Map<number, number>();
  const release = (): void => {
    for (const fd of [...readEnds, ...handedOver, heldStdin]) if (fd !== undefined) spawner.close(fd);
  };
  const fail = (code: string): Child => {
    release();
    return failed(spawnErrorText(code, request));
  };
  const targets = [request.stdin, request.stdout, request.stderr] as const;
  for (let i = 0; i < 3; i++) {
    const target = targets[i]!;
    if (target === 'ignore') fds.push('null');
    else if (target === 'inherit') fds.push('inherit');
    else if (target === 'pipe') {
      const ends = spawner.pipe();
      if (!Array.isArray(ends)) return fail(errnoCode((ends as { errno: number }).errno));
      const [readEnd, writeEnd] = ends as readonly [number, number];
      if (i === 0) {
        heldStdin = writeEnd;
        handedOver.push(readEnd);
        fds.push(readEnd);
      } else {
        readEnds[i] = readEnd;
        handedOver.push(writeEnd);
        fds.push(writeEnd);
      }
    } else {
      const fd = typeof target === 'number' ? target : handleFd(target)!;
      let copy = copies.get(fd);
      if (copy === undefined) {
        // libuv makes a child's fds 0-2 blocking; the description is shared, so do it here.
        if (fd > 2) spawner.makeBlocking(fd);
        // dup2 runs in order 0, 1, 2: another low fd (say stdout onto stderr) would be
        // replaced before it is used.
        if (copyFds || (fd <= 2 && fd !== i)) {
          const dup = spawner.dupHigh(fd);
          if (typeof dup !== 'number') return fail(errnoCode(dup.errno));
          handedOver.push(dup);
          copy = dup;
        } else copy = fd;
        copies.set(fd, copy);
      }
      fds.push(copy);
    }
  }
  const program = resolveProgram(request);
  if ('code' in program) return fail(program.code);
  const spawnRequest: PosixSpawnRequest = {
    path: program.path,
    argv: [request.argv0 ?? request.file, ...request.args],
    envp: envPairs(request.env),
    ...(request.cwd !== undefined ? { cwd: request.cwd } : {}),
    fds: fds as [ChildFd, ChildFd, ChildFd],
  };
  return { request, spawnRequest, readEnds, handedOver, heldStdin };
}

// execvp(3), which libuv uses, runs a file without a #! line with /bin/sh; posix_spawn
// does not (glibc >= 2.15), so do what execvp does.
function shellFallback({ spawnRequest, request }: Prepared): PosixSpawnRequest {
  return { ...spawnRequest, path: '/bin/sh', argv: ['/bin/sh', spawnRequest.path, ...request.args] };
}

function spawnRetryingShell({ spawner }: Native, prepared: Prepared): PosixSpawnResult {
  const result = spawner.spawn(prepared.spawnRequest);
  return result.errno === ENOEXEC ? spawner.spawn(shellFallback(prepared)) : result;
}

// After posix_spawn: close what the child has its own copies of, watch for its exit.
function started({ spawner, reaper }: Native, prepared: Prepared, result: PosixSpawnResult): Child {
  const { readEnds, heldStdin } = prepared;
  for (const fd of prepared.handedOver) spawner.close(fd);
  if (result.pid === undefined) {
    for (const fd of [...readEnds, heldStdin]) if (fd !== undefined) spawner.close(fd);
    return failed(spawnErrorText(errnoCode(result.errno), prepared.request));
  }
  const pid = result.pid;
  let reaped = false;
  const exited = new Promise<ChildExit>((resolve) => {
    reaper.watch(pid, (status) => {
      reaped = true;
      if (heldStdin !== undefined) spawner.close(heldStdin);
      resolve(status.signal !== undefined ? { signal: status.signal } : { exitCode: status.exitCode });
    });
  });
  return {
    pid,
    stdout: readEnds[1] === undefined ? null : readable(readEnds[1]),
    stderr: readEnds[2] === undefined ? null : readable(readEnds[2]),
    exited,
    kill(signal, group) {
      // Once reaped, the pid may be another process's; its group lives on while members do.
      if (reaped && !group) return;
      try {
        process.kill(group ? -pid : pid, signal);
      } catch {
        // Already gone (ESRCH).
      }
    },
  };
}

// Environments already found free of NUL bytes (requests are read-only; see envPairs).
const cleanEnvs = new WeakSet<object>();

// Cheap checks for what Node's spawn rejects before starting anything: NUL bytes, an empty
// file, a socket without a descriptor, a bad fd number.
function suspicious(request: SpawnRequest): boolean {
  if (request.file === '' || request.file.includes('\0') || request.argv0?.includes('\0') || request.cwd?.includes('\0')) return true;
  for (const arg of request.args) if (arg.includes('\0')) return true;
  if (!cleanEnvs.has(request.env)) {
    for (const key in request.env) if (key.includes('\0') || request.env[key]?.includes('\0')) return true;
    cleanEnvs.add(request.env);
  }
  for (const t of [request.stdin, request.stdout, request.stderr]) {
    if (typeof t === 'number' ? !Number.isInteger(t) || t < 0 : typeof t === 'object' && handleFd(t) === undefined) return true;
  }
  return false;
}

// Node's own argument error for a suspicious request, worded as the execa path words it.
// A fourth stdio entry Node always rejects comes after everything else it checks, so
// nothing is ever started here.
function nodeRejects(request: SpawnRequest): string | undefined {
  const stdio = [request.stdin, request.stdout, request.stderr].map((t) => (t === 'pipe' ? 'ignore' : t));
  try {
    nodeSpawn(request.file, [...request.args], {
      ...(request.argv0 !== undefined ? { argv0: request.argv0 } : {}),
      ...(request.cwd !== undefined ? { cwd: request.cwd } : {}),
      env: { ...request.env },
      detached: true,
      stdio: [...stdio, 'not-a-stdio-value'] as unknown as StdioOptions,
    });
  } catch (error) {
    const { code, message } = error as NodeJS.ErrnoException;
    if (message.includes('not-a-stdio-value')) return undefined;
    return `${code ?? 'error'}: ${message.split('\n').join('; ').trim()}`;
  }
  return undefined;
}

function readable(fd: number): Readable {
  return new net.Socket({ fd, readable: true, writable: false });
}

function failed(spawnError: string): Child {
  return { pid: undefined, stdout: null, stderr: null, exited: Promise.resolve({ spawnError }), kill() {} };
}

// Requests are read-only, and a launcher hands the same environment object to every start
// of a component, so its "NAME=value" list is built once per object.
const pairsByEnv = new WeakMap<object, readonly string[]>();

function envPairs(env: Readonly<Record<string, string>>): readonly string[] {
  let pairs = pairsByEnv.get(env);
  if (pairs === undefined) {
    const list: string[] = [];
    // for…in, like Node's spawn: the same variables in the same order.
    for (const key in env) {
      const value = env[key];
      if (value !== undefined) list.push(`${key}=${value}`);
    }
    pairs = list;
    pairsByEnv.set(env, pairs);
  }
  return pairs;
}

// glibc's default when the environment has no PATH (what libuv's execvp falls back to).
const DEFAULT_PATH = '/usr/bin:/bin';

// The file exec would run: a name without a slash is looked up in the child's PATH, as
// execvp does it — the first executable regular file; EACCES if only unusable ones exist.
function resolveProgram(request: SpawnRequest): { path: string } | { code: string } {
  if (request.file.includes('/')) return { path: request.file };
  const cwd = request.cwd ?? process.cwd();
  let denied = false;
  for (const dir of (request.env.PATH ?? DEFAULT_PATH).split(':')) {
    const candidate = path.resolve(cwd, dir === '' ? request.file : `${dir}/${request.file}`);
    let isFile: boolean;
    try {
      const stat = statSync(candidate, { throwIfNoEntry: false });
      if (stat === undefined) continue;
      isFile = stat.isFile();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EACCES') denied = true;
      continue;
    }
    try {
      if (!isFile) throw new Error('not a file');
      accessSync(candidate, fsConstants.X_OK);
      return { path: candidate };
    } catch {
      denied = true;
    }
  }
  // libuv changes directory before it searches: a bad cwd is what the error names.
  if (request.cwd !== undefined) {
    try {
      if (!statSync(request.cwd).isDirectory()) return { code: 'ENOTDIR' };
    } catch (error) {
      return { code: (error as NodeJS.ErrnoException).code ?? 'ENOENT' };
    }
  }
  return { code: denied ? 'EACCES' : 'ENOENT' };
}

const ENOEXEC = osConstants.errno.ENOEXEC;
const ERRNO_NAMES = new Map<number, string>(Object.entries(osConstants.errno).map(([name, n]) => [n, name]));

function errnoCode(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `E${errno}`;
}

// Node reports these spawn errors with the file ("spawn FILE ENOENT"), others without it
// ("spawn ENOTDIR"); execa adds what is wrong with cwd. Same text as the execa path gives.
const NODE_ERRORS_WITH_FILE = new Set(['EACCES', 'EAGAIN', 'EMFILE', 'ENFILE', 'ENOENT']);

function spawnErrorText(code: string, request: Pick<SpawnRequest, 'file' | 'cwd'>): string {
  const spawnMessage = NODE_ERRORS_WITH_FILE.has(code) ? `spawn ${request.file} ${code}` : `spawn ${code}`;
  const lines = [spawnMessage];
  if (request.cwd !== undefined) {
    const cwd = path.resolve(request.cwd);
    if (cwd !== process.cwd()) {
      try {
        if (!statSync(cwd).isDirectory()) lines.unshift(`The "cwd" option is not a directory: ${cwd}.`);
      } catch (error) {
        lines.unshift(`The "cwd" option is invalid: ${cwd}.`, (error as Error).message);
      }
    }
  }
  return `${code}: ${lines.join('; ')}`;
}

// ---- execa ----------------------------------------------------------------------------------

// Loaded only when needed (koffi missing, or a test asks): the posix_spawn path never uses
// it, and it costs the idle daemon ~6 MB.
let execaFn: typeof Execa | undefined;

async function loadExeca(): Promise<void> {
  execaFn ??= (await import('execa')).execa;
}

if (native === undefined) await loadExeca();

function spawnExeca(request: SpawnRequest): Child {
  if (execaFn === undefined) throw new Error('execa is not loaded');
  // Out of descriptors, execa throws before it listens to its child process, whose spawn
  // 'error' then has no listener and takes the daemon down: ask for descriptors first.
  // A spawn with pipes takes up to six descriptors in this process for a moment.
  const short = descriptorShortage(6);
  if (short !== undefined) return failed(`${short}: spawn ${request.file} ${short}`);
  const subprocess = execaFn(request.file, [...request.args], {
    ...(request.argv0 !== undefined ? { argv0: request.argv0 } : {}),
    ...(request.cwd !== undefined ? { cwd: request.cwd } : {}),
    env: { ...request.env },
    extendEnv: false,
    stdin: stdio(request.stdin),
    stdout: stdio(request.stdout),
    stderr: stdio(request.stderr),
    detached: true,
    reject: false,
    buffer: false,
    cleanup: false,
    forceKillAfterDelay: false,
    stripFinalNewline: false,
  });
  const pid = subprocess.pid;
  const exited = new Promise<ChildExit>((resolve) => {
    subprocess.once('exit', (code, signal) => resolve(signal ? { signal } : { exitCode: code ?? 0 }));
    // execa resolves (never rejects, reject: false) once the process and its streams are
    // done; for a failed spawn that is the only news we get.
    subprocess.then(
      (result) => {
        if (result.failed && pid === undefined) resolve({ spawnError: describeSpawnError(result.shortMessage ?? 'spawn failed', result.code) });
      },
      (error: unknown) => resolve({ spawnError: String(error) }),
    );
  });
  return {
    pid,
    stdout: subprocess.stdout,
    stderr: subprocess.stderr,
    exited,
    kill(signal, group) {
      if (pid === undefined) return;
      try {
        process.kill(group ? -pid : pid, signal);
      } catch {
        // Already gone (ESRCH): its exit event is on its way.
      }
    },
  };
}

// execa hands a number or a socket to the child as the real descriptor at runtime, but its
// types only admit the literal fds 0-9; the cast tells the compiler what execa does.
function stdio(target: StdioTarget): 'pipe' {
  return target as 'pipe';
}

function describeSpawnError(message: string, code: string | undefined): string {
  // execa prefixes "Command failed with ENOENT: …"; keep the system's own words first.
  const detail = message.split('\n').slice(1).join('; ').trim();
  return detail ? `${code ?? 'error'}: ${detail}` : message;
}
