// Linux /proc readers and loopback port helpers used by the benchmarks.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import net from 'node:net';

/** Fields of /proc/PID/stat that the benchmarks need. */
export interface ProcStat {
  readonly pid: number;
  readonly comm: string;
  readonly state: string;
  readonly ppid: number;
  /** utime + stime + cutime + cstime (itself and the children it reaped), in clock ticks. */
  readonly cpuTicks: number;
  /** utime + stime: the process alone, in clock ticks. */
  readonly selfTicks: number;
}

export function readStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // comm is in parentheses and may itself contain spaces or ')'.
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  const rest = text.slice(close + 2).split(' ');
  const num = (i: number): number => Number(rest[i] ?? 0);
  return {
    pid,
    comm: text.slice(open + 1, close),
    state: rest[0] ?? '?',
    ppid: num(1),
    // After the state: ppid(1) … utime(11) stime(12) cutime(13) cstime(14).
    cpuTicks: num(11) + num(12) + num(13) + num(14),
    selfTicks: num(11) + num(12),
  };
}

/** True while `pid` exists and is not a zombie. */
export function running(pid: number): boolean {
  const s = readStat(pid);
  return s !== undefined && s.state !== 'Z' && s.state !== 'X';
}

/** Direct children of `pid` (all its threads), from /proc/PID/task/TID/children. */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tasks) {
    try {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      if (text) for (const c of text.split(' ')) out.push(Number(c));
    } catch {
      // the thread went away
    }
  }
  return out;
}

/** Every descendant of `pid` (for cleanup), found by one scan of /proc. */
export function descendantsOf(pid: number): number[] {
  const byParent = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = readStat(Number(name));
    if (!s) continue;
    const list = byParent.get(s.ppid) ?? [];
    list.push(s.pid);
    byParent.set(s.ppid, list);
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const p = queue.shift() as number;
    for (const c of byParent.get(p) ?? []) {
      out.push(c);
      queue.push(c);
    }
  }
  return out;
}

/**
 * Processes whose environment holds `NAME=value` (the benchmarks give every daemon they start
 * a unique marker, which its children inherit), so that children orphaned by a daemon that
 * exited are still found — and stopped by pid.
 */
export function markedProcesses(name: string, value: string): number[] {
  const needle = Buffer.from(`\0${name}=${value}\0`);
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const env = Buffer.concat([Buffer.from([0]), readFileSync(`/proc/${entry}/environ`)]);
      if (env.includes(needle)) out.push(Number(entry));
    } catch {
      // gone, or not ours to read
    }
  }
  return out;
}

/** VmRSS, VmHWM, RssAnon … from /proc/PID/status, in KiB. */
export function memoryOf(pid: number): Record<string, number> | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^(Vm\w+|Rss\w+):\s+(\d+) kB$/gm)) out[m[1] as string] = Number(m[2]);
  return out;
}

/** Proportional set size (shared pages split among the processes mapping them), in KiB. */
export function pssOf(pid: number): number | undefined {
  try {
    const m = /^Pss:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

let clockTicks: number | undefined;
/** Clock ticks per second (getconf CLK_TCK; 100 on Linux). */
export function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** TcpExt ListenOverflows (system-wide counter) from /proc/net/netstat. */
export function listenOverflows(): number {
  try {
    const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n');
    for (let i = 0; i + 1 < lines.length; i++) {
      const head = lines[i] ?? '';
      if (!head.startsWith('TcpExt:')) continue;
      const names = head.split(/\s+/);
      const values = (lines[i + 1] ?? '').split(/\s+/);
      const at = names.indexOf('ListenOverflows');
      return at < 0 ? 0 : Number(values[at] ?? 0);
    }
  } catch {
    // not available
  }
  return 0;
}

/** True when something listens on 127.0.0.1:port (or the IPv4/IPv6 wildcard). */
export function isListening(port: number): boolean {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      const f = line.trim().split(/\s+/);
      const local = f[1] ?? '';
      if (f[3] !== '0A' || !local.endsWith(`:${hex}`)) continue;
      const addr = local.slice(0, local.indexOf(':'));
      if (addr === '0100007F' || /^0+$/.test(addr)) return true;
    }
  }
  return false;
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

const handedOut = new Set<number>();

/**
 * A free TCP port on 127.0.0.1, below the ephemeral range (32768+) so that the load
 * clients' own source ports never collide with it.
 */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = 21000 + Math.floor(Math.random() * 10000);
    if (handedOut.has(port) || isListening(port)) continue;
    if (await canBind(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('no free port found in 21000-30999');
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Poll `predicate` every `everyMs` until it holds; false when `timeoutMs` passes first. */
export async function pollUntil(predicate: () => boolean, timeoutMs: number, everyMs = 20): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (predicate()) return true;
    if (performance.now() > deadline) return false;
    await sleep(everyMs);
  }
}
