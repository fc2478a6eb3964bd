// posix_spawn(3) through koffi: a vfork-style start (glibc clones with CLONE_VM|CLONE_VFORK),
// so its cost does not grow with the daemon's memory the way Node's fork() does. The child
// leads a new session, has an empty signal mask and default dispositions for every signal
// (Node ignores SIGPIPE; a child must not inherit that), and gets fds 0-2 from dup2 file
// actions. Reaping is not done here: see reaper.ts.
import { loadNative } from './koffi.js';

/** What lands on one of the child's fds 0, 1, 2: a parent fd (dup2), /dev/null, or ours. */
export type ChildFd = number | 'null' | 'inherit';

export interface PosixSpawnRequest {
  /** Passed to exec as is: no PATH search (the caller resolves against the child's PATH). */
  readonly path: string;
  readonly argv: readonly string[];
  /** "NAME=value" strings: the child's whole environment. */
  readonly envp: readonly string[];
  /** Applied in the child before exec; a relative `path` is taken from it. */
  readonly cwd?: string;
  readonly fds: readonly [ChildFd, ChildFd, ChildFd];
}

/** The child's pid, or the errno posix_spawn returned (exec and chdir failures included). */
export type PosixSpawnResult = { readonly pid: number; readonly errno?: undefined } | { readonly pid?: undefined; readonly errno: number };

export interface PosixSpawn {
  /** Blocks the calling thread until the child has exec'd (or failed to). */
  spawn(request: PosixSpawnRequest): PosixSpawnResult;
  /** The same call on a libuv threadpool thread; the fds must stay open until it resolves. */
  spawnAsync(request: PosixSpawnRequest): Promise<PosixSpawnResult>;
  /** pipe2(O_CLOEXEC): [read end, write end], or the errno. */
  pipe(): readonly [number, number] | { readonly errno: number };
  /**
   * Clear O_NONBLOCK on `fd`'s open file description, as libuv does for a child's fds 0-2:
   * programs such as cat read their stdin blocking. The parent shares the description, so
   * it must not use the fd for I/O afterwards.
   */
  makeBlocking(fd: number): void;
  /** A close-on-exec copy of `fd` numbered 3 or above, or the errno. */
  dupHigh(fd: number): number | { readonly errno: number };
  close(fd: number): void;
}

// glibc <spawn.h>, <fcntl.h> (Linux, all architectures glibc supports with these values).
const POSIX_SPAWN_SETSIGDEF = 0x04;
const POSIX_SPAWN_SETSIGMASK = 0x08;
const POSIX_SPAWN_SETSID = 0x80; // glibc >= 2.26
const O_RDONLY = 0;
const O_WRONLY = 1;
const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;
const F_GETFL = 3;
const F_SETFL = 4;
const F_DUPFD_CLOEXEC = 1030;
const EINVAL = 22;
// Opaque glibc objects, sized generously: posix_spawnattr_t is 336 bytes, the file actions
// 80, sigset_t 128 on x86-64 and aarch64.
const ATTR_BYTES = 1024;
const ACTIONS_BYTES = 256;
const SIGSET_BYTES = 256;

let cached: PosixSpawn | Error | undefined;

export function loadPosixSpawn(): PosixSpawn | Error {
  if (cached !== undefined) return cached;
  try {
    cached = bind();
  } catch (error) {
    cached = error instanceof Error ? error : new Error(String(error));
  }
  return cached;
}

function bind(): PosixSpawn {
  const native = loadNative();
  if (native instanceof Error) throw native;
  const { koffi, lib } = native;
  const posixSpawn = lib.func('int posix_spawn(void *pid, const char *path, void *actions, void *attr, const char **argv, const char **envp)');
  const actionsInit = lib.func('int posix_spawn_file_actions_init(void *actions)');
  const actionsDestroy = lib.func('int posix_spawn_file_actions_destroy(void *actions)');
  const addDup2 = lib.func('int posix_spawn_file_actions_adddup2(void *actions, int fd, int newfd)');
  const addOpen = lib.func('int posix_spawn_file_actions_addopen(void *actions, int fd, const char *path, int flags, uint32_t mode)');
  const addChdir = lib.func('int posix_spawn_file_actions_addchdir_np(void *actions, const char *path)');
  const attrInit = lib.func('int posix_spawnattr_init(void *attr)');
  const attrSetFlags = lib.func('int posix_spawnattr_setflags(void *attr, short flags)');
  const attrSetSigmask = lib.func('int posix_spawnattr_setsigmask(void *attr, const void *set)');
  const attrSetSigdefault = lib.func('int posix_spawnattr_setsigdefault(void *attr, const void *set)');
  const sigemptyset = lib.func('int sigemptyset(void *set)');
  const sigfillset = lib.func('int sigfillset(void *set)');
  const pipe2 = lib.func('int pipe2(void *fds, int flags)');
  const fcntl = lib.func('int fcntl(int fd, int cmd, int arg)');
  const close = lib.func('int close(int fd)');

  // One attribute object for every spawn: it never changes, and glibc only reads it.
  const attr = Buffer.alloc(ATTR_BYTES);
  const none = Buffer.alloc(SIGSET_BYTES);
  const all = Buffer.alloc(SIGSET_BYTES);
  check(attrInit(attr) as number, 'posix_spawnattr_init');
  check(sigemptyset(none) as number === 0 ? 0 : koffi.errno(), 'sigemptyset');
  check(sigfillset(all) as number === 0 ? 0 : koffi.errno(), 'sigfillset');
  // glibc's sigfillset leaves out its two internal signals (32, 33), and its posix_spawn
  // then leaves them *ignored* in the child, which exec keeps. libuv's children get SIG_DFL
  // for every signal; asking for 1-64 by hand does the same here.
  all.fill(0xff, 0, 8);
  check(attrSetSigmask(attr, none) as number, 'posix_spawnattr_setsigmask');
  check(attrSetSigdefault(attr, all) as number, 'posix_spawnattr_setsigdefault');
  check(attrSetFlags(attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF) as number, 'posix_spawnattr_setflags');

  // File actions for one spawn, released once posix_spawn has returned. Their buffers are
  // kept for the next spawns (a few: async spawns hold theirs while in flight).
  const spare: Buffer[] = [];
  const release = (actions: Buffer): void => {
    actionsDestroy(actions);
    if (spare.length < 8) spare.push(actions);
  };
  const actionsFor = (request: PosixSpawnRequest): Buffer | number => {
    const actions = spare.pop() ?? Buffer.alloc(ACTIONS_BYTES);
    let err = actionsInit(actions) as number;
    if (err !== 0) return err;
    for (let target = 0; target < 3 && err === 0; target++) {
      const source = request.fds[target as 0 | 1 | 2];
      if (source === 'inherit') continue;
      if (source === 'null') err = addOpen(actions, target, '/dev/null', target === 0 ? O_RDONLY : O_WRONLY, 0) as number;
      // The actions run in order 0, 1, 2: a source on a lower fd already replaced is gone.
      else if (source < target && request.fds[source as 0 | 1] !== source && request.fds[source as 0 | 1] !== 'inherit') err = EINVAL;
      else err = addDup2(actions, source, target) as number;
    }
    if (err === 0 && request.cwd !== undefined) err = addChdir(actions, request.cwd) as number;
    if (err !== 0) {
      release(actions);
      return err;
    }
    return actions;
  };
  const argvOf = (request: PosixSpawnRequest): (string | null)[] => [...request.argv, null];
  // The caller reuses one envp array for every start of a component: terminate it once.
  const terminated = new WeakMap<readonly string[], readonly (string | null)[]>();
  const envpOf = (request: PosixSpawnRequest): readonly (string | null)[] => {
    let envp = terminated.get(request.envp);
    if (envp === undefined) {
      envp = [...request.envp, null];
      terminated.set(request.envp, envp);
    }
    return envp;
  };

  return {
    spawn(request) {
      const actions = actionsFor(request);
      if (typeof actions === 'number') return { errno: actions };
      const pid = new Int32Array(1);
      try {
        const err = posixSpawn(pid, request.path, actions, attr, argvOf(request), envpOf(request)) as number;
        return err === 0 ? { pid: pid[0] ?? 0 } : { errno: err };
      } finally {
        release(actions);
      }
    },
    spawnAsync(request) {
      const actions = actionsFor(request);
      if (typeof actions === 'number') return Promise.resolve({ errno: actions });
      const pid = new Int32Array(1);
      return new Promise((resolve, reject) => {
        try {
          posixSpawn.async(pid, request.path, actions, attr, argvOf(request), envpOf(request), (error: unknown, err: unknown) => {
            release(actions);
            if (error) reject(error instanceof Error ? error : new Error(String(error)));
            else resolve(err === 0 ? { pid: pid[0] ?? 0 } : { errno: err as number });
          });
        } catch (error) {
          // koffi refuses at once when its async queue is full: the actions are ours to free.
          release(actions);
          reject(error instanceof Error ? error : new Error(String(error)));
        }
      });
    },
    pipe() {
      const fds = new Int32Array(2);
      if ((pipe2(fds, O_CLOEXEC) as number) !== 0) return { errno: koffi.errno() };
      return [fds[0] ?? -1, fds[1] ?? -1];
    },
    makeBlocking(fd) {
      const flags = fcntl(fd, F_GETFL, 0) as number;
      if (flags >= 0 && (flags & O_NONBLOCK) !== 0) fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    },
    dupHigh(fd) {
      const copy = fcntl(fd, F_DUPFD_CLOEXEC, 3) as number;
      return copy >= 0 ? copy : { errno: koffi.errno() };
    },
    close(fd) {
      close(fd);
    },
  };
}

function check(err: number, what: string): void {
  if (err !== 0) throw new Error(`${what} failed (errno ${err})`);
}
