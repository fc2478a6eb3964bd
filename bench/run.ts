// tpies benchmarks: `npm run bench -- [--quick] [--only NAME[,NAME]]`.
// npm run bench builds first (the daemon benchmarks start dist/src/bin/tpies.js) and then
// runs this file with tsx. See docs/performance.md for what each benchmark measures.
//
// Rules (DEVELOPERS): loopback traffic only; every load loop is bounded in count and time;
// ratios against peers measured in the same run; only processes this run started are
// stopped, by pid — at the end, on errors and on Ctrl-C.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { configParse } from './config-parse.js';
import { Cleanup, removeDirLater } from './lib/cleanup.js';
import type { Benchmark, BenchContext } from './lib/context.js';
import { type Target, targetLine } from './lib/report.js';
import { reload } from './reload.js';
import { rssIdle } from './rss-idle.js';
import { spawnRate } from './spawn-rate.js';
import { supervisorScale } from './supervisor-scale.js';
import { tcpmuxBulk } from './tcpmux-bulk.js';
import { tcpmuxMatrix } from './tcpmux-matrix.js';
import { sniffForward } from './sniff-forward.js';
import { sniffHttp } from './sniff-http.js';

const BENCHMARKS: readonly Benchmark[] = [configParse, supervisorScale, rssIdle, reload, spawnRate, tcpmuxMatrix, tcpmuxBulk, sniffForward, sniffHttp];

const USAGE = `usage: npm run bench -- [--quick] [--only NAME[,NAME]]
  --quick          shorter runs (fewer iterations and connections)
  --only NAMES     run only these benchmarks: ${BENCHMARKS.map((b) => b.name).join(', ')}
  --help           this text
`;

function parseOptions(): { quick: boolean; only: readonly Benchmark[] } {
  let values;
  try {
    ({ values } = parseArgs({
      args: process.argv.slice(2),
      strict: true,
      allowPositionals: false,
      options: { quick: { type: 'boolean' }, only: { type: 'string', multiple: true }, help: { type: 'boolean', short: 'h' } },
    }));
  } catch (error) {
    process.stderr.write(`bench: ${(error as Error).message}\n${USAGE}`);
    process.exit(64);
  }
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const names = (values.only ?? []).flatMap((v) => v.split(',')).map((n) => n.trim()).filter(Boolean);
  const unknown = names.filter((n) => !BENCHMARKS.some((b) => b.name === n));
  if (unknown.length) {
    process.stderr.write(`bench: unknown benchmark ${unknown.join(', ')}\n${USAGE}`);
    process.exit(64);
  }
  return { quick: values.quick === true, only: names.length ? BENCHMARKS.filter((b) => names.includes(b.name)) : BENCHMARKS };
}

async function main(): Promise<number> {
  const { quick, only } = parseOptions();
  const root = path.resolve(import.meta.dirname, '..');
  const cleanup = new Cleanup();
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write(`\nbench: ${signal}: stopping everything this run started…\n`);
    void cleanup.runAll().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', () => cleanup.runSync());

  const tmp = mkdtempSync(path.join(os.tmpdir(), 'tpies-bench-'));
  removeDirLater(cleanup, tmp);
  const targets: Target[] = [];
  const failed: string[] = [];
  const cpus = os.cpus();
  process.stdout.write(
    `tpies benchmarks${quick ? ' (--quick)' : ''}: ${new Date().toISOString()}, node ${process.version}, ` +
      `${cpus.length} × ${cpus[0]?.model.trim() ?? 'cpu'}, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}\n`,
  );
  for (const bench of only) {
    if (interrupted) break;
    process.stdout.write(`\n== ${bench.name}: ${bench.description}\n`);
    const t0 = performance.now();
    const ctx: BenchContext = {
      quick,
      root,
      tmp,
      cleanup,
      out: (line = '') => process.stdout.write(`${line}\n`),
      target: (t) => targets.push({ ...t, benchmark: bench.name }),
    };
    try {
      await bench.run(ctx);
    } catch (error) {
      if (interrupted) break;
      failed.push(bench.name);
      process.stdout.write(`ERROR in ${bench.name}: ${(error as Error).stack ?? String(error)}\n`);
    }
    process.stdout.write(`(${bench.name}: ${((performance.now() - t0) / 1000).toFixed(1)} s)\n`);
  }
  await cleanup.runAll();
  if (interrupted) return 130;
  process.stdout.write('\n== summary\n');
  for (const t of targets) process.stdout.write(`${t.benchmark}: ${targetLine(t)}\n`);
  if (failed.length) process.stdout.write(`benchmarks that failed to run: ${failed.join(', ')}\n`);
  return failed.length ? 1 : 0;
}

process.exitCode = await main();
