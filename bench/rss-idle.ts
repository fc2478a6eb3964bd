// rss-idle: the idle daemon's memory over time. Starts the built daemon with etc/tpies.conf
// (pid file and ports moved) several times and samples /proc/PID/status at fixed times
// after it starts listening; prints the median of each column per time, next to a bare
// `node` process sampled the same way.
//
// Why over time: loading the modules makes V8 grow its young generation (a few MB that
// stay committed while nothing allocates), and its memory reducer usually gives that back
// about 8 s after start-up. A single early sample (supervisor-scale's idle row) sees the
// start-up state; the later rows show where an idle daemon settles.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Benchmark, BenchContext } from './lib/context.js';
import { safeKill, startTpies } from './lib/daemon.js';
import { freePort, isListening, memoryOf, pollUntil, sleep } from './lib/proc.js';
import { fmt, median, table } from './lib/report.js';

const FIELDS = ['VmRSS', 'RssAnon', 'RssFile'] as const;

type Sample = Partial<Record<(typeof FIELDS)[number], number>>;

// etc/tpies.conf as shipped, with its pid file and ports moved so that it cannot collide
// with a running example or other work on this machine.
async function exampleConfig(ctx: BenchContext, name: string): Promise<string> {
  let text = readFileSync(path.join(ctx.root, 'etc/tpies.conf'), 'utf8');
  text = text.replace(/^pidfile .*;$/m, `pidfile ${path.join(ctx.tmp, `${name}.pid`)};`);
  const ports = new Map<string, number>();
  for (const m of text.matchAll(/inet:\/\/127\.0\.0\.1:(\d+)/g)) if (!ports.has(m[1] as string)) ports.set(m[1] as string, await freePort());
  return text.replace(/inet:\/\/127\.0\.0\.1:(\d+)/g, (_, port: string) => `inet://127.0.0.1:${ports.get(port)}`);
}

// Samples `pid` at each of `times` (ms after t0, ascending).
async function sampleAt(pid: number, t0: number, times: readonly number[]): Promise<Sample[]> {
  const out: Sample[] = [];
  for (const t of times) {
    await sleep(Math.max(0, t0 + t - performance.now()));
    const m = memoryOf(pid);
    out.push(Object.fromEntries(FIELDS.map((f) => [f, m?.[f]])));
  }
  return out;
}

async function daemonRun(ctx: BenchContext, i: number, times: readonly number[]): Promise<Sample[]> {
  const name = `rss-idle-${i}`;
  const text = await exampleConfig(ctx, name);
  const port = Number(/inet:\/\/127\.0\.0\.1:(\d+)/.exec(text)?.[1]);
  const daemon = startTpies({ root: ctx.root, dir: ctx.tmp, name, configText: text, cleanup: ctx.cleanup });
  try {
    const up = await pollUntil(() => daemon.hasExited() || isListening(port), 30_000);
    if (!up || daemon.hasExited()) throw new Error(`tpies with etc/tpies.conf did not start listening:\n${daemon.logTail()}`);
    return await sampleAt(daemon.pid, performance.now(), times);
  } finally {
    await daemon.stop();
  }
}

async function bareRun(ctx: BenchContext, times: readonly number[]): Promise<Sample[]> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  const pid = child.pid;
  if (pid === undefined) return times.map(() => ({}));
  const kill = (): void => safeKill(pid, 'SIGKILL');
  const unregister = ctx.cleanup.add(`bare node (pid ${pid})`, async () => kill(), kill);
  try {
    return await sampleAt(pid, performance.now(), times);
  } finally {
    kill();
    unregister();
  }
}

const mb = (kib: number): string => (Number.isFinite(kib) ? `${fmt(kib / 1024, 1)} MB` : '-');

export const rssIdle: Benchmark = {
  name: 'rss-idle',
  description: 'the idle daemon with etc/tpies.conf: VmRSS over its first seconds, median of several starts, and a bare node for reference',
  async run(ctx) {
    const runs = ctx.quick ? 3 : 5;
    const times = ctx.quick ? [1000, 2000, 5000, 10_000] : [1000, 2000, 5000, 10_000, 15_000];
    const daemon: Sample[][] = [];
    for (let i = 0; i < runs; i++) daemon.push(await daemonRun(ctx, i, times));
    const bare = await bareRun(ctx, times);
    const at = (samples: Sample[][], t: number, f: (typeof FIELDS)[number]): number => median(samples.map((s) => s[t]?.[f] ?? Number.NaN).filter(Number.isFinite));
    const rows = times.map((time, t) => [
      `${time / 1000} s`,
      ...FIELDS.map((f) => mb(at(daemon, t, f))),
      `${daemon.map((s) => fmt((s[t]?.VmRSS ?? Number.NaN) / 1024, 1)).join(' ')}`,
      mb(bare[t]?.VmRSS ?? Number.NaN),
    ]);
    ctx.out(`tpies with etc/tpies.conf (ports moved), ${runs} starts, sampled after it started listening; medians:`);
    ctx.out(table(['after', 'VmRSS', 'RssAnon', 'RssFile', 'VmRSS of each start', 'bare node VmRSS'], rows));
  },
};
