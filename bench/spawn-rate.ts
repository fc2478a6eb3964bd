// spawn-rate: how fast one Node process starts /bin/true, and what each start costs it, for
// each way tpies can spawn — Node's child_process.spawn, execa, posix_spawn on the event
// loop (spawnChild) and on the threadpool (spawnChildAsync) — with 50 MB and 500 MB of
// touched memory in the spawning process. fork() copies the page tables of all of it;
// posix_spawn (CLONE_VFORK) copies nothing, so its rate should not move.
//
// Each cell runs in its own worker process (`--worker METHOD MB TOTAL CONCURRENCY`), so the
// ballast and the children belong to it alone. Bounded by a count and a time limit.
import { spawn as nodeSpawn } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Benchmark, BenchContext } from './lib/context.js';
import { safeKill } from './lib/daemon.js';
import { fmt, percentiles, table } from './lib/report.js';

const METHODS = ['child_process', 'execa', 'posix-sync', 'posix-async'] as const;
type Method = (typeof METHODS)[number];
const CONCURRENCY = 8;
const TIME_LIMIT_MS = 20_000;

export interface SpawnRateResult {
  readonly method: Method;
  readonly ballastMb: number;
  readonly spawns: number;
  readonly perSecond: number;
  /** The worker's own CPU (user+sys, without its children) per spawn. */
  readonly cpuMsPerSpawn: number;
  /** Time inside the spawn call, i.e. the event loop held, per spawn. */
  readonly callMs: { readonly p50: number; readonly p99: number };
  readonly rssMb: number;
  readonly failures: number;
}

// ---- worker -------------------------------------------------------------------------------

async function worker(method: Method, ballastMb: number, total: number, concurrency: number): Promise<SpawnRateResult> {
  const ballast: Buffer[] = [];
  // Touched, not just reserved: fork copies page tables only for mapped pages.
  for (let i = 0; i < ballastMb; i++) ballast.push(Buffer.alloc(1 << 20, i & 0xff));
  const spawn = await import('../src/supervisor/spawn.js');
  if (method === 'execa') await spawn.setSpawnMethod('execa');
  const request = { file: '/bin/true', args: [], env: { PATH: '/usr/bin:/bin' }, stdin: 'ignore', stdout: 'ignore', stderr: 'ignore' } as const;
  const one = async (): Promise<{ callMs: number; ok: boolean }> => {
    const t0 = performance.now();
    if (method === 'child_process') {
      const child = nodeSpawn(request.file, [], { env: request.env, stdio: 'ignore', detached: true });
      const callMs = performance.now() - t0;
      const ok = await new Promise<boolean>((resolve) => {
        child.once('error', () => resolve(false));
        child.once('exit', (code) => resolve(code === 0));
      });
      return { callMs, ok };
    }
    const pending = method === 'posix-async' ? spawn.spawnChildAsync(request) : spawn.spawnChild(request);
    const callMs = performance.now() - t0;
    const child = await pending;
    const exit = await child.exited;
    return { callMs, ok: exit.exitCode === 0 };
  };
  const calls: number[] = [];
  let failures = 0;
  let started = 0;
  const deadline = performance.now() + TIME_LIMIT_MS;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (started < total && performance.now() < deadline) {
        started++;
        const r = await one();
        calls.push(r.callMs);
        if (!r.ok) failures++;
      }
    }),
  );
  const elapsed = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const p = percentiles(calls);
  const result: SpawnRateResult = {
    method,
    ballastMb,
    spawns: calls.length,
    perSecond: (calls.length * 1000) / elapsed,
    cpuMsPerSpawn: (cpu.user + cpu.system) / 1000 / Math.max(1, calls.length),
    callMs: { p50: p.p50, p99: p.p99 },
    rssMb: process.memoryUsage().rss / 1e6,
    failures,
  };
  ballast.length = 0;
  return result;
}

// ---- benchmark ----------------------------------------------------------------------------

function runWorker(ctx: BenchContext, method: Method, ballastMb: number, total: number): Promise<SpawnRateResult> {
  const script = path.join(ctx.root, 'bench/spawn-rate.ts');
  return new Promise((resolve, reject) => {
    const child = nodeSpawn(process.execPath, ['--import', 'tsx', script, '--worker', method, String(ballastMb), String(total), String(CONCURRENCY)], {
      cwd: ctx.root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const pid = child.pid;
    const kill = (): void => {
      if (pid !== undefined && child.exitCode === null) safeKill(pid, 'SIGKILL');
    };
    const unregister = ctx.cleanup.add(`spawn-rate worker (pid ${pid})`, async () => kill(), kill);
    const timer = setTimeout(kill, TIME_LIMIT_MS + 30_000);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('close', (code) => {
      clearTimeout(timer);
      unregister();
      try {
        if (code !== 0) throw new Error(`exit ${code}`);
        resolve(JSON.parse(stdout) as SpawnRateResult);
      } catch (e) {
        reject(new Error(`spawn-rate worker ${method} ${ballastMb} MB failed (${(e as Error).message}): ${stderr.trim()}`));
      }
    });
  });
}

export const spawnRate: Benchmark = {
  name: 'spawn-rate',
  description: 'spawns of /bin/true per second from one Node process: child_process, execa, posix_spawn sync/async; 50 and 500 MB touched',
  async run(ctx) {
    const total = ctx.quick ? 600 : 2000;
    const rows: SpawnRateResult[] = [];
    ctx.out(`${total} spawns per cell (time limit ${TIME_LIMIT_MS / 1000} s), ${CONCURRENCY} in flight, each cell in its own process`);
    for (const ballastMb of [50, 500]) {
      for (const method of METHODS) rows.push(await runWorker(ctx, method, ballastMb, total));
    }
    ctx.out('');
    ctx.out(
      table(
        ['method', 'touched MB', 'RSS MB', 'spawns', 'spawns/s', 'own CPU ms/spawn', 'call p50 ms', 'call p99 ms', 'failed'],
        rows.map((r) => [r.method, String(r.ballastMb), fmt(r.rssMb, 0), String(r.spawns), fmt(r.perSecond, 0), fmt(r.cpuMsPerSpawn), fmt(r.callMs.p50), fmt(r.callMs.p99), String(r.failures)]),
      ),
    );
    ctx.out('  call = time inside the spawn call (the event loop is held that long); own CPU excludes the children');
    const rate = (method: Method, mb: number): number | undefined => rows.find((r) => r.method === method && r.ballastMb === mb)?.perSecond;
    const small = rate('posix-async', 50);
    const large = rate('posix-async', 500);
    const held = small !== undefined && large !== undefined ? large / small : undefined;
    ctx.out(`posix-async at 500 MB / at 50 MB: ${fmt(held)}× (child_process: ${fmt((rate('child_process', 500) ?? NaN) / (rate('child_process', 50) ?? NaN))}×)`);
    ctx.target({ text: 'posix_spawn rate at 500 MB ≥ 0.8× its rate at 50 MB', pass: held === undefined ? undefined : held >= 0.8, measured: `${fmt(held)}×` });
  },
};

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href && process.argv[2] === '--worker') {
  const [method, mb, total, concurrency] = process.argv.slice(3);
  if (!METHODS.includes(method as Method)) throw new Error(`unknown method ${method}`);
  const result = await worker(method as Method, Number(mb), Number(total), Number(concurrency));
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}
