// Says when tpies runs out of file descriptors. libuv hides it: on EMFILE it accepts the
// pending connection on a spare descriptor and closes it at once (its "EMFILE trick"), and
// neither Node nor tpies hears of it, so clients are dropped without a word in the log.
// tpies asks for a descriptor itself once a second (open /dev/null, close it): a refusal
// means the limit is reached. Listing /proc/self/fd would say more but costs ~40 ms with
// 10,000 connections open — a stall every second; it runs only once, to report a recovery.
import { closeSync, openSync, readFileSync, readdirSync } from 'node:fs';
import type { Logger } from '../log/logger.js';

const INTERVAL_MS = 1_000;
// Successful probes in a row before calling it a recovery, so a count hovering at the limit
// does not log on every change.
const RECOVERED_AFTER = 3;

export interface DescriptorWatch {
  stop(): void;
}

export function watchDescriptors(log: Logger): DescriptorWatch {
  // Read now: reading it takes a descriptor, which is what there is none of when it matters.
  const limit = openFilesLimit();
  let exhausted = false;
  let fine = 0;
  const timer = setInterval(() => {
    const code = descriptorShortage();
    if (code === 'EMFILE' || code === 'ENFILE') {
      fine = 0;
      if (!exhausted) log.error({ code, limit }, 'file descriptors exhausted: new connections are dropped until some close (raise LimitNOFILE / ulimit -n)');
      exhausted = true;
    } else if (exhausted && ++fine >= RECOVERED_AFTER) {
      exhausted = false;
      log.warn({ open: countOpen(), limit }, 'file descriptors available again');
    }
  }, INTERVAL_MS);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

/** Undefined when `count` descriptors can be had at once (they are closed again), else the
 * error code (EMFILE, ENFILE). */
export function descriptorShortage(count = 1): string | undefined {
  const fds: number[] = [];
  try {
    for (let i = 0; i < count; i++) fds.push(openSync('/dev/null', 'r'));
    return undefined;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? 'EIO';
  } finally {
    for (const fd of fds) closeSync(fd);
  }
}

// The soft limit, from /proc (Node has no getrlimit); undefined where there is no /proc.
function openFilesLimit(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line?.split(/\s+/)[3];
    return soft === undefined || soft === 'unlimited' ? undefined : Number(soft);
  } catch {
    return undefined;
  }
}

function countOpen(): number | undefined {
  try {
    // Less the one readdir itself holds open.
    return readdirSync('/proc/self/fd').length - 1;
  } catch {
    return undefined;
  }
}
