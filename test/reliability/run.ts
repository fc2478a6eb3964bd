// `npm run test:reliability`: every reliability scenario (test/reliability/*.test.ts, sorted)
// at full size, one file after another (--test-concurrency=1: the scenarios measure the
// machine and must not share it), the test output passed through, then the table of figures
// and verdicts that docs/reliability.md shows. Exits non-zero when any test failed.
//
//   node --import tsx test/reliability/run.ts [--short] [--only NAME]…
//
// --short runs the CI sizes (what `npm test` runs); --only NAME runs test/reliability/NAME.test.ts.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { Figure } from './lib.js';

const DIR = import.meta.dirname;
// A stuck test fails (and its t.after cleanup runs) instead of hanging the run.
const TEST_TIMEOUT_MS = 10 * 60 * 1000;

interface Row extends Figure {
  readonly size: string;
}

interface FileResult {
  readonly file: string;
  readonly code: number | null;
  readonly rows: readonly Row[];
  readonly seconds: number;
}

function usage(message: string): never {
  process.stderr.write(`run.ts: ${message}\nusage: node --import tsx test/reliability/run.ts [--short] [--only NAME]...\n`);
  process.exit(64);
}

function readRows(file: string): Row[] {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Row);
}

function runFile(file: string, env: NodeJS.ProcessEnv): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', `--test-timeout=${TEST_TIMEOUT_MS}`, file], { stdio: 'inherit', env });
    child.on('exit', (code, signal) => resolve(signal ? null : code));
    child.on('error', () => resolve(null));
  });
}

// A cell of a markdown table: no pipes or newlines inside.
const cell = (text: string): string => text.replaceAll('|', '\\|').replaceAll('\n', ' ');

function figuresText(figures: Figure['figures']): string {
  return Object.entries(figures)
    .map(([name, value]) => `${name}: ${typeof value === 'number' && !Number.isInteger(value) ? Number(value.toFixed(2)) : value}`)
    .join('; ');
}

export function markdownTable(results: readonly FileResult[]): string {
  const lines = ['| scenario | figures | condition | verdict |', '| --- | --- | --- | --- |'];
  for (const r of results) {
    for (const row of r.rows) lines.push(`| ${cell(row.scenario)} | ${cell(figuresText(row.figures))} | ${cell(row.condition)} | ${row.pass ? 'PASS' : '**FAIL**'} |`);
    // A file that failed without a failing figure (a crash, an assertion beyond the figures).
    if (r.code !== 0 && r.rows.every((row) => row.pass)) {
      lines.push(`| ${cell(path.basename(r.file, '.test.ts'))} | ${r.rows.length === 0 ? 'no figures recorded' : 'see above'} | the test file passes | **FAIL** (exit ${r.code ?? 'signal'}) |`);
    }
  }
  return `${lines.join('\n')}\n`;
}

async function main(): Promise<number> {
  let values: { short?: boolean; only?: string[] };
  try {
    ({ values } = parseArgs({ options: { short: { type: 'boolean' }, only: { type: 'string', multiple: true } }, allowPositionals: false }));
  } catch (error) {
    usage((error as Error).message);
  }
  const all = readdirSync(DIR).filter((f) => f.endsWith('.test.ts')).sort();
  const names = all.map((f) => f.slice(0, -'.test.ts'.length));
  for (const name of values.only ?? []) if (!names.includes(name)) usage(`no scenario "${name}" (have: ${names.join(', ')})`);
  const chosen = values.only === undefined ? all : all.filter((f) => values.only!.includes(f.slice(0, -'.test.ts'.length)));

  const tmp = mkdtempSync(path.join(tmpdir(), 'tpies-reliability-'));
  const report = path.join(tmp, 'report.jsonl');
  const env: NodeJS.ProcessEnv = { ...process.env, TPIES_RELIABILITY_REPORT: report };
  if (values.short) delete env['TPIES_RELIABILITY'];
  else env['TPIES_RELIABILITY'] = 'full';

  const results: FileResult[] = [];
  try {
    for (const name of chosen) {
      const file = path.join(DIR, name);
      const before = readRows(report).length;
      const started = performance.now();
      const code = await runFile(file, env);
      results.push({ file, code, rows: readRows(report).slice(before), seconds: (performance.now() - started) / 1000 });
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }

  const failed = results.filter((r) => r.code !== 0 || r.rows.some((row) => !row.pass));
  const when = new Date().toISOString().slice(0, 10);
  const cpu = cpus();
  process.stdout.write(
    `\n## Reliability figures (${values.short ? 'short' : 'full'} size, ${when}, ${cpu.length} cores${cpu[0] ? ` ${cpu[0].model.trim()}` : ''}, Node ${process.version})\n\n` +
      markdownTable(results) +
      `\n${results.map((r) => `${path.basename(r.file)}: ${r.code === 0 ? 'ok' : `FAILED (exit ${r.code ?? 'signal'})`} in ${r.seconds.toFixed(1)} s`).join('\n')}\n` +
      `${failed.length === 0 ? 'all scenarios passed' : `${failed.length} of ${results.length} files failed`}\n`,
  );
  return failed.length === 0 ? 0 : 1;
}

process.exitCode = await main();
