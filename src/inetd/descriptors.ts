// Says when tpies runs out of file descriptors. libuv hides it: on EMFILE it accepts the
// pending connection on a spare descriptor and closes it at once (its "EMFILE trick"), and
// neither Node nor tpies hears of it, so clients are dropped without a word in the log.
// tpies counts its own open descriptors instead, once a second, against RLIMIT_NOFILE.
import { readFileSync, readdirSync } from 'node:fs';
import type { Logger } from '../log/logger.js';

const INTERVAL_MS = 1_000;
// Close enough to the limit that accepts fail (a connection needs one, a spawn a few more).
const EXHAUSTED_MARGIN = 8;
// Well clear of the limit again before saying so, so a count hovering near it logs once.
const RECOVERED_FRACTION = 0.8;

export interface DescriptorWatch {
  stop(): void;
}

export function watchDescriptors(log: Logger): DescriptorWatch {
  const limit = openFilesLimit();
  if (limit === undefined) return { stop: () => undefined };
  let exhausted = false;
  let peak = 0;
  const timer = setInterval(() => {
    const open = countOpen(limit);
    if (open === undefined) return;
    peak = Math.max(peak, open);
    if (!exhausted && open >= limit - EXHAUSTED_MARGIN) {
      exhausted = true;
      log.error({ open, limit }, 'file descriptors exhausted: new connections are dropped until some close (raise LimitNOFILE / ulimit -n)');
    } else if (exhausted && open <= limit * RECOVERED_FRACTION) {
      exhausted = false;
      log.warn({ open, limit, peak }, 'file descriptors available again');
      peak = open;
    }
  }, INTERVAL_MS);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

// The soft limit, from /proc (Node has no getrlimit); undefined where there is no /proc.
export function openFilesLimit(): number | undefined {
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

function countOpen(limit: number): number | undefined {
  try {
    // Less the one readdir itself holds open.
    return readdirSync('/proc/self/fd').length - 1;
  } catch (error) {
    // Looking needs a descriptor too: not getting one is the answer.
    const code = (error as NodeJS.ErrnoException).code;
    return code === 'EMFILE' || code === 'ENFILE' ? limit : undefined;
  }
}
