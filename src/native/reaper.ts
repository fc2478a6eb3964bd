// Reaps the children tpies starts with posix_spawn (posix-spawn.ts). libuv reaps only the
// pids it spawned itself, each with waitpid(pid, WNOHANG), so the two never take each
// other's status as long as we, too, wait only for our own pids — never waitpid(-1).
//
// On SIGCHLD we peek with waitid(P_ALL, WNOWAIT), which names one exited child without
// reaping it: ours is reaped by pid and the peek repeats, so each exit costs O(1) however
// many children run. A zombie that is not ours (libuv's, about to be reaped in its own
// SIGCHLD callback) hides the ones behind it; then, and only then, every pid of ours is
// polled. A ref'd interval keeps the loop alive while children run (as a ChildProcess
// handle does) and catches anything a coalesced signal left behind.
import { constants } from 'node:os';
import { loadNative } from './koffi.js';

/** How a child ended: exactly one of the two. */
export type WaitStatus = { readonly exitCode: number; readonly signal?: undefined } | { readonly exitCode?: undefined; readonly signal: NodeJS.Signals };

export interface Reaper {
  /**
   * Call `onExit` once `pid` (a child of this process that libuv does not know) has exited
   * and been reaped: synchronously from the reaping, so no one can signal a reused pid.
   */
  watch(pid: number, onExit: (status: WaitStatus) => void): void;
  /** Children being waited for. */
  readonly size: number;
}

const P_ALL = 0;
const WNOHANG = 1;
const WEXITED = 4;
const WNOWAIT = 0x01000000;
const ECHILD = 10;
// siginfo_t: si_signo, si_errno, si_code, then (8-byte aligned on 64-bit) si_pid.
const SIGINFO_BYTES = 128;
const SI_PID_OFFSET = process.arch === 'ia32' || process.arch === 'arm' ? 12 : 16;
const SAFETY_POLL_MS = 1000;

const SIGNAL_NAMES = new Map<number, NodeJS.Signals>(Object.entries(constants.signals).map(([name, n]) => [n, name as NodeJS.Signals]));

/** Decode a wait(2) status word. */
export function decodeWaitStatus(status: number): WaitStatus {
  const low = status & 0x7f;
  if (low === 0) return { exitCode: (status >> 8) & 0xff };
  return { signal: SIGNAL_NAMES.get(low) ?? (`SIG${low}` as NodeJS.Signals) };
}

let cached: Reaper | Error | undefined;

export function loadReaper(): Reaper | Error {
  if (cached !== undefined) return cached;
  try {
    cached = createReaper();
  } catch (error) {
    cached = error instanceof Error ? error : new Error(String(error));
  }
  return cached;
}

function createReaper(): Reaper {
  const native = loadNative();
  if (native instanceof Error) throw native;
  const { koffi, lib } = native;
  const waitpid = lib.func('int waitpid(int pid, void *status, int options)');
  const waitid = lib.func('int waitid(int idtype, int id, void *info, int options)');
  const status = new Int32Array(1);
  const info = Buffer.alloc(SIGINFO_BYTES);
  const live = new Map<number, (status: WaitStatus) => void>();

  // True when `pid` was reaped (and its waiter told).
  const reap = (pid: number): boolean => {
    const onExit = live.get(pid);
    if (onExit === undefined) return false;
    const r = waitpid(pid, status, WNOHANG) as number;
    if (r === 0) return false;
    live.delete(pid);
    if (r === pid) {
      onExit(decodeWaitStatus(status[0] ?? 0));
      return true;
    }
    // ECHILD: someone waited for a pid that is not theirs (waitpid(-1) elsewhere, or SIGCHLD
    // ignored). The status is gone; -1, which no program can exit with, says so.
    process.emitWarning(`waitpid(${pid}) failed (errno ${koffi.errno()}): its exit status is lost`);
    onExit({ exitCode: -1 });
    return true;
  };

  const reapAll = (): void => {
    while (live.size > 0) {
      info.writeInt32LE(0, SI_PID_OFFSET);
      const r = waitid(P_ALL, 0, info, WEXITED | WNOHANG | WNOWAIT) as number;
      if (r !== 0 && koffi.errno() === ECHILD) break; // no children at all
      const pid = r === 0 ? info.readInt32LE(SI_PID_OFFSET) : -1;
      if (pid === 0) break; // children, but none has exited
      if (pid < 0 || !reap(pid)) {
        // Not ours (or waitid failed): whatever is behind it stays hidden from the peek.
        for (const each of [...live.keys()]) reap(each);
        break;
      }
    }
    if (live.size === 0) keepAlive.unref();
  };

  // Installed once: adding and removing a signal listener per child would open and close
  // a libuv signal handle each time. Signal handles do not keep the loop alive; the
  // interval does, while a child runs.
  process.on('SIGCHLD', reapAll);
  const keepAlive = setInterval(reapAll, SAFETY_POLL_MS);
  keepAlive.unref();

  return {
    watch(pid, onExit) {
      live.set(pid, onExit);
      keepAlive.ref();
      // It may have exited before we listened (an async spawn reports its pid late).
      if (reap(pid) && live.size === 0) keepAlive.unref();
    },
    get size() {
      return live.size;
    },
  };
}
