// log/output.ts: routing of a component's stdout/stderr with real child processes: file
// redirects append and bypass the daemon, piped output becomes one log entry per line, and an
// endless line is cut at MAX_LINE_BYTES without the daemon's memory growing.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import { createMemoryLogger } from '../../../src/log/logger.js';
import { LineSplitter, MAX_LINE_BYTES, outputTarget, pipeToLog, syslogLevel } from '../../../src/log/output.js';

function tmpDir(t: { after(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tpies-out-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => resolve(code));
  });
}

// A node child running `code`; `stdout`/`stderr` are what spawn's stdio accepts.
function node(code: string, stdout: 'pipe' | number, stderr: 'pipe' | number): ChildProcess {
  return spawn(process.execPath, ['-e', code], { stdio: ['pipe', stdout, stderr] });
}

test('a file redirect hands the child an O_APPEND fd; two runs append to the same file', async (t) => {
  const file = path.join(tmpDir(t), 'ftp.log');
  for (const run of [1, 2]) {
    const out = outputTarget({ kind: 'file', path: file }, 'stdout', 'ftp');
    const err = outputTarget({ kind: 'file', path: file }, 'stderr', 'ftp');
    assert.equal(out.kind, 'fd');
    assert.equal(err.kind, 'fd');
    if (out.kind !== 'fd' || err.kind !== 'fd') return;
    const child = node(`process.stdout.write('out ${run}\\n'); process.stderr.write('err ${run}\\n');`, out.fd, err.fd);
    // The child holds its own copies; the daemon closes its fds right after spawning.
    out.close();
    err.close();
    out.close();
    child.stdin?.end();
    assert.equal(await exited(child), 0);
  }
  assert.equal(fs.readFileSync(file, 'utf8'), 'out 1\nerr 1\nout 2\nerr 2\n');
  const umask = process.umask();
  assert.equal(fs.statSync(file).mode & 0o777, 0o644 & ~umask);
});

test('a file redirect into a missing directory throws the open error', (t) => {
  const file = path.join(tmpDir(t), 'no', 'such', 'dir.log');
  assert.throws(() => outputTarget({ kind: 'file', path: file }, 'stdout', 'ftp'), { code: 'ENOENT' });
});

test('syslog redirects map the priority to a log level; unredirected output is logged too', () => {
  assert.deepEqual(outputTarget({ kind: 'syslog', priority: 'err' }, 'stderr', 'ftp'), {
    kind: 'pipe',
    level: 'error',
    fields: { component: 'ftp', stream: 'stderr' },
  });
  assert.deepEqual(outputTarget({ kind: 'syslog', facility: 'daemon', priority: 'notice' }, 'stdout', 'ftp'), {
    kind: 'pipe',
    level: 'info',
    fields: { component: 'ftp', stream: 'stdout', facility: 'daemon' },
  });
  assert.deepEqual(outputTarget(undefined, 'stdout', 'web'), { kind: 'pipe', level: 'info', fields: { component: 'web', stream: 'stdout' } });
  assert.deepEqual(outputTarget(undefined, 'stderr', 'web'), { kind: 'pipe', level: 'warn', fields: { component: 'web', stream: 'stderr' } });
  const expected = { emerg: 'fatal', alert: 'fatal', crit: 'fatal', err: 'error', warning: 'warn', notice: 'info', info: 'info', debug: 'debug' } as const;
  for (const [priority, level] of Object.entries(expected)) assert.equal(syslogLevel(priority as keyof typeof expected), level);
});

test('pipeToLog logs one entry per line, \\r\\n included, and the final unterminated line', async () => {
  const { log, entries } = createMemoryLogger();
  const child = node(
    `process.stdout.write('first\\nsecond\\r\\n\\nthi'); setTimeout(() => { process.stdout.write('rd\\nlast without newline'); process.stderr.write('oops\\n'); }, 50);`,
    'pipe',
    'pipe',
  );
  child.stdin?.end();
  const childPid = child.pid;
  assert.ok(childPid !== undefined && child.stdout && child.stderr);
  const out = outputTarget(undefined, 'stdout', 'ftp');
  const err = outputTarget({ kind: 'syslog', priority: 'crit' }, 'stderr', 'ftp');
  assert.ok(out.kind === 'pipe' && err.kind === 'pipe');
  const done = Promise.all([
    pipeToLog(child.stdout, log, { ...out.fields, childPid }, out.level),
    pipeToLog(child.stderr, log, { ...err.fields, childPid }, err.level),
  ]);
  assert.equal(await exited(child), 0);
  await done;
  const stdout = entries.filter((e) => e.stream === 'stdout');
  assert.deepEqual(
    stdout.map((e) => e.msg),
    ['first', 'second', '', 'third', 'last without newline'],
  );
  assert.deepEqual(stdout[0], { level: 'info', msg: 'first', component: 'ftp', stream: 'stdout', childPid });
  assert.deepEqual(
    entries.filter((e) => e.stream === 'stderr'),
    [{ level: 'fatal', msg: 'oops', component: 'ftp', stream: 'stderr', childPid }],
  );
});

test('a child that writes nothing produces no entries', async () => {
  const { log, entries } = createMemoryLogger();
  const child = node('', 'pipe', 'ignore' as unknown as number);
  child.stdin?.end();
  assert.ok(child.stdout);
  const done = pipeToLog(child.stdout, log, { component: 'quiet' }, 'info');
  await exited(child);
  await done;
  assert.deepEqual(entries, []);
});

test('a 1 MB line without newline is cut at MAX_LINE_BYTES and marked truncated', async () => {
  const { log, entries } = createMemoryLogger();
  const child = node(`process.stdout.write('x'.repeat(1024 * 1024)); process.stdout.write('\\nafter\\n');`, 'pipe', 'pipe');
  child.stdin?.end();
  assert.ok(child.stdout);
  const done = pipeToLog(child.stdout, log, { component: 'big' }, 'info');
  await exited(child);
  await done;
  assert.equal(entries.length, 2);
  assert.equal(entries[0]?.msg, 'x'.repeat(MAX_LINE_BYTES));
  assert.equal(entries[0]?.truncated, true);
  assert.deepEqual(entries[1], { level: 'info', msg: 'after', component: 'big' });
});

test('memory stays bounded while a child streams 64 MB without a newline', async () => {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  const { log, entries } = createMemoryLogger();
  // The child writes, reports on stderr, then keeps stdout open until its stdin closes, so the
  // line is still unterminated while we measure.
  const child = node(
    `const b = Buffer.alloc(1024 * 1024, 0x79); for (let i = 0; i < 64; i++) process.stdout.write(b);` +
      `process.stderr.write('written\\n'); process.stdin.resume(); process.stdin.on('end', () => process.exit(0));`,
    'pipe',
    'pipe',
  );
  assert.ok(child.stdout && child.stderr && child.stdin);
  gc();
  const before = process.memoryUsage().arrayBuffers;
  const done = pipeToLog(child.stdout, log, { component: 'flood' }, 'info');
  await new Promise<void>((resolve) => child.stderr?.once('data', () => resolve()));
  // V8 frees array buffers concurrently after a gc, so give it a few rounds; memory that is
  // really retained (64 MB if the line were buffered) never goes away.
  let grown = Infinity;
  for (let round = 0; round < 20 && grown >= 8 * 1024 * 1024; round++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    gc();
    grown = process.memoryUsage().arrayBuffers - before;
  }
  assert.equal(entries.length, 0, 'no newline yet, so nothing logged');
  child.stdin.end();
  await exited(child);
  await done;
  assert.ok(grown < 8 * 1024 * 1024, `external memory grew by ${grown} bytes`);
  assert.equal(entries.length, 1);
  assert.equal(entries[0]?.truncated, true);
  assert.equal(entries[0]?.msg.length, MAX_LINE_BYTES);
});

test('LineSplitter never holds more than its limit and cuts on a UTF-8 boundary', () => {
  const lines: Array<[string, boolean]> = [];
  const s = new LineSplitter((line, truncated) => lines.push([line, truncated]), 10);
  for (let i = 0; i < 100; i++) {
    s.push(Buffer.from('abcdefgh'));
    assert.ok(s.bufferedBytes <= 10);
  }
  s.push(Buffer.from('\n'));
  assert.equal(s.bufferedBytes, 0);
  s.push(Buffer.from('123456789é\n')); // é is 2 bytes: byte 10 is its first half
  s.push(Buffer.from('exactly10!\r\n'));
  s.push(Buffer.from('split\r'));
  s.push(Buffer.from('\nmid\r'));
  s.push(Buffer.from('dle\n'));
  s.push(Buffer.from('tail\r'));
  s.end();
  s.end();
  assert.deepEqual(lines, [
    ['abcdefghab', true],
    ['123456789', true],
    ['exactly10!', false],
    ['split', false],
    ['mid\rdle', false],
    ['tail', false],
  ]);
});
