// log/logger.ts: JSON lines to a file, no duplicate keys for reserved field names, reopen after
// a logrotate-style rename, child bindings, levels, the memory logger, and no lines lost on exit.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createLogger, createMemoryLogger, defaultLogFormat, isLogLevel } from '../../../src/log/logger.js';

const LOGGER_MODULE = fileURLToPath(new URL('../../../src/log/logger.ts', import.meta.url));

function tmpDir(t: { after(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tpies-log-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function readLines(file: string): string[] {
  return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');
}

// JSON.parse keeps the last of duplicate keys, so count keys in the raw text instead.
function keyCount(line: string, key: string): number {
  return line.split(`"${key}":`).length - 1;
}

test('json lines to a file carry level, msg, time, the daemon pid and the fields; no hostname', (t) => {
  const file = path.join(tmpDir(t), 'tpies.log');
  const { log, flush } = createLogger({ level: 'info', file });
  log.info({ component: 'ftp', childPid: 1234 }, 'component started');
  log.debug({ component: 'ftp' }, 'below the level');
  log.error({ component: 'ftp', code: 3 }, 'component exited');
  flush();
  const lines = readLines(file);
  assert.equal(lines.length, 2);
  const first = JSON.parse(lines[0] ?? '') as Record<string, unknown>;
  assert.equal(first.level, 'info');
  assert.equal(first.msg, 'component started');
  assert.equal(first.component, 'ftp');
  assert.equal(first.childPid, 1234);
  assert.equal(first.pid, process.pid);
  assert.equal(typeof first.time, 'string');
  assert.ok(!('hostname' in first));
  const second = JSON.parse(lines[1] ?? '') as Record<string, unknown>;
  assert.equal(second.level, 'error');
  assert.equal(second.code, 3);
});

test('the file is opened for append, not truncated', (t) => {
  const file = path.join(tmpDir(t), 'tpies.log');
  fs.writeFileSync(file, 'old line\n');
  createLogger({ level: 'info', file }).log.info({}, 'config reloaded');
  const lines = readLines(file);
  assert.equal(lines[0], 'old line');
  assert.equal(lines.length, 2);
});

test('a pid field becomes childPid, so the JSON never has duplicate keys', (t) => {
  const file = path.join(tmpDir(t), 'tpies.log');
  const { log } = createLogger({ level: 'info', file });
  log.info({ component: 'ftp', pid: 4242 }, 'component started');
  log.child({ pid: 77 }).warn({}, 'component exited');
  log.info({ msg: 'inner', level: 'x', time: 1, hostname: 'h' }, 'outer');
  const [a, b, c] = readLines(file);
  for (const line of [a, b, c]) {
    for (const key of ['pid', 'msg', 'level', 'time', 'hostname']) {
      assert.ok(keyCount(line ?? '', key) <= 1, `duplicate "${key}" in ${line}`);
    }
  }
  const ea = JSON.parse(a ?? '') as Record<string, unknown>;
  assert.equal(ea.pid, process.pid);
  assert.equal(ea.childPid, 4242);
  assert.equal((JSON.parse(b ?? '') as Record<string, unknown>).childPid, 77);
  const ec = JSON.parse(c ?? '') as Record<string, unknown>;
  assert.equal(ec.msg, 'outer');
  assert.equal(ec.level, 'info');
  assert.equal(ec.fieldMsg, 'inner');
});

test('an explicit childPid wins over a stray pid', () => {
  const { log, entries } = createMemoryLogger();
  log.info({ pid: 1, childPid: 2 }, 'component started');
  assert.deepEqual(entries, [{ level: 'info', msg: 'component started', childPid: 2 }]);
});

test('reopen after a logrotate-style rename writes to a new file', (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, 'tpies.log');
  const handle = createLogger({ level: 'info', file });
  handle.log.info({ n: 1 }, 'before rename');
  fs.renameSync(file, `${file}.1`);
  handle.log.info({ n: 2 }, 'after rename');
  handle.reopen();
  handle.log.info({ n: 3 }, 'after reopen');
  handle.flush();
  const rotated = readLines(`${file}.1`).map((l) => (JSON.parse(l) as { n: number }).n);
  const fresh = readLines(file).map((l) => (JSON.parse(l) as { n: number }).n);
  assert.deepEqual(rotated, [1, 2]);
  assert.deepEqual(fresh, [3]);
});

test('reopen without a file is a no-op', () => {
  const chunks: string[] = [];
  const destination = { write: (s: string) => (chunks.push(s), true) } as unknown as NodeJS.WritableStream;
  const { log, reopen, flush } = createLogger({ level: 'info', destination });
  reopen();
  flush();
  log.info({}, 'still here');
  assert.equal(chunks.length, 1);
});

test('child bindings nest and appear on every line', () => {
  const { log, entries } = createMemoryLogger();
  const tcpmux = log.child({ component: 'tcpmux' });
  tcpmux.child({ service: 'echo' }).info({ peer: '127.0.0.1' }, 'connection accepted');
  tcpmux.warn({}, 'connection denied');
  assert.deepEqual(entries, [
    { level: 'info', msg: 'connection accepted', component: 'tcpmux', service: 'echo', peer: '127.0.0.1' },
    { level: 'warn', msg: 'connection denied', component: 'tcpmux' },
  ]);
});

test('the memory logger honours the level, including silent', () => {
  const warn = createMemoryLogger('warn');
  warn.log.info({}, 'dropped');
  warn.log.trace({}, 'dropped');
  warn.log.fatal({}, 'kept');
  assert.deepEqual(warn.entries.map((e) => e.msg), ['kept']);
  const silent = createMemoryLogger('silent');
  silent.log.fatal({}, 'dropped');
  assert.equal(silent.entries.length, 0);
  const all = createMemoryLogger();
  for (const level of ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const) all.log[level]({}, level);
  assert.deepEqual(all.entries.map((e) => e.level), ['fatal', 'error', 'warn', 'info', 'debug', 'trace']);
});

test('errors in fields are serialized with message and stack', () => {
  const { log, entries } = createMemoryLogger();
  log.error({ err: new Error('boom') }, 'spawn failed');
  const err = entries[0]?.err as { message?: string; stack?: string } | undefined;
  assert.equal(err?.message, 'boom');
  assert.match(err?.stack ?? '', /boom/);
});

test('pretty format writes human lines, not JSON', (t) => {
  const file = path.join(tmpDir(t), 'tpies.log');
  createLogger({ level: 'info', format: 'pretty', file }).log.info({ component: 'ftp', childPid: 9 }, 'component started');
  const text = fs.readFileSync(file, 'utf8');
  assert.match(text, /INFO/);
  assert.match(text, /component started/);
  assert.match(text, /childPid: 9/);
  assert.doesNotMatch(text, /\u001b\[/, 'no colours in a file');
  assert.throws(() => JSON.parse(text.split('\n')[0] ?? ''));
});

test('a numeric destination fd is written synchronously', (t) => {
  const file = path.join(tmpDir(t), 'fd.log');
  const fd = fs.openSync(file, 'a');
  t.after(() => fs.closeSync(fd));
  createLogger({ level: 'info', destination: fd }).log.warn({ x: 1 }, 'respawn throttled');
  assert.equal((JSON.parse(readLines(file)[0] ?? '') as { msg: string }).msg, 'respawn throttled');
});

for (const format of ['json', 'pretty'] as const) {
  test(`${format}: stderr by default, and no line is lost on process.exit()`, () => {
    const script = [
      `import { createLogger } from ${JSON.stringify(LOGGER_MODULE)};`,
      `const { log } = createLogger({ level: 'info', format: ${JSON.stringify(format)} });`,
      `for (let i = 0; i < 2000; i++) log.info({ i }, 'line');`,
      `log.fatal({}, 'last line');`,
      `process.exit(3);`,
    ].join('\n');
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.equal(r.status, 3, r.stderr);
    assert.equal(r.stdout, '');
    // Pretty puts each field on its own line, so count the header lines only.
    const records = r.stderr.split('\n').filter((l) => (format === 'json' ? l !== '' : /\] (INFO|FATAL) /.test(l)));
    assert.equal(records.length, 2001, records.slice(-3).join('\n'));
    assert.match(records.at(-1) ?? '', format === 'json' ? /"msg":"last line"/ : /FATAL .*last line/);
  });
}

test('defaultLogFormat picks pretty only for a TTY; isLogLevel knows the levels', () => {
  assert.equal(defaultLogFormat(true), 'pretty');
  assert.equal(defaultLogFormat(false), 'json');
  assert.equal(defaultLogFormat(undefined), 'json');
  assert.ok(isLogLevel('silent'));
  assert.ok(isLogLevel('trace'));
  assert.ok(!isLogLevel('verbose'));
});
