// Unit tests of tpiesctl's pieces that need no daemon: durations in `list`, and usage errors
// and help run in-process (exit codes, one line on stderr).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatDuration, runTpiesctl } from '../../../src/cli/ctl.js';
import type { CliIo } from '../../../src/cli/io.js';

test('formatDuration: seconds, then minutes, hours, days with two-digit remainders', () => {
  assert.equal(formatDuration(0), '0s');
  assert.equal(formatDuration(-5), '0s');
  assert.equal(formatDuration(59_999), '59s');
  assert.equal(formatDuration(60_000), '1m00s');
  assert.equal(formatDuration(307_000), '5m07s');
  assert.equal(formatDuration(3_600_000), '1h00m');
  assert.equal(formatDuration(11_040_000), '3h04m');
  assert.equal(formatDuration(86_400_000 * 2 + 3_600_000 * 5), '2d05h');
});

function io(): CliIo & { out: string; err: string } {
  const state = { out: '', err: '' };
  return Object.assign(state, {
    stdout: (text: string) => void (state.out += text),
    stderr: (text: string) => void (state.err += text),
    env: {},
    cwd: '/',
  });
}

test('usage errors exit 64 with one line, before any connection is tried', async () => {
  for (const argv of [[], ['nope'], ['status', 'a', 'b'], ['stop'], ['reload', 'now'], ['acl', 'test'], ['acl', 'test', '300.1.1.1'], ['id', 'colour'], ['shutdown', '--json'], ['--socket', 'x', '-c', 'y', 'list']]) {
    const i = io();
    const code = await runTpiesctl(argv, i);
    assert.equal(code, 64, argv.join(' '));
    assert.equal(i.out, '');
    assert.match(i.err, /^tpiesctl: [^\n]+ \(see tpiesctl --help\)\n$/, argv.join(' '));
  }
});

test('--help lists every command and the exit codes', async () => {
  const i = io();
  assert.equal(await runTpiesctl(['--help'], i), 0);
  for (const word of ['list', 'status', 'start', 'stop', 'restart', 'reload', 'config check', 'acl test', 'id', 'shutdown', '--socket', '78']) assert.ok(i.out.includes(word), word);
});
