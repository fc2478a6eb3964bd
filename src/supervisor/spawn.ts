// The only importer of execa: starts one child process from a fully prepared request and
// reports its pid and its end. Kept small on purpose: it is the one module a faster spawn
// path (issue "Faster than the C super-servers") would replace.
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { execa } from 'execa';

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

// Start a child in its own process group (setsid), so stop can reach grandchildren.
export function spawnChild(request: SpawnRequest): Child {
  const subprocess = execa(request.file, [...request.args], {
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
