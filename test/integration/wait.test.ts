// flags wait: the program gets the listening socket (tpies never accepts), is started only
// when a connection is pending, serves clients itself, and is started again after it exits.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { exchange } from '../helpers/tcp-client.js';
import { startTestDaemon } from '../helpers/daemon.js';

test('flags wait hands the listening socket to one program at a time', { timeout: 20_000 }, async (t) => {
  const { daemon, port, logs } = await startTestDaemon(t, `
component w { mode inetd; flags wait; socket inet://127.0.0.1:0; command "${process.execPath} {{bin}}/wait-server.js 2"; }
`);
  assert.equal(daemon.instances('w'), 0, 'nothing runs before a client comes');
  const replies: string[] = [];
  for (let i = 0; i < 4; i++) {
    const r = await exchange({ port: port('w'), timeoutMs: 5000 });
    assert.equal(r.closed, 'end');
    replies.push(r.data.toString());
  }
  const parsed = replies.map((line) => /^pid (\d+) n (\d+)\n$/.exec(line));
  assert.ok(parsed.every(Boolean), replies.join('|'));
  // Two clients per program, then a new program for the next two.
  assert.deepEqual(parsed.map((m) => m![2]), ['1', '2', '1', '2']);
  assert.equal(parsed[0]![1], parsed[1]![1]);
  assert.notEqual(parsed[1]![1], parsed[2]![1]);
  assert.ok(!logs.some((e) => e.msg === 'connection'), 'tpies itself accepted nothing');
});

test('stopping the daemon stops a wait-mode program that is still serving', { timeout: 20_000 }, async (t) => {
  const { daemon, port } = await startTestDaemon(t, `
component w { mode inetd; flags wait; socket inet://127.0.0.1:0; command "${process.execPath} {{bin}}/wait-server.js 100"; }
`);
  const r = await exchange({ port: port('w'), timeoutMs: 5000 });
  const pid = Number(/^pid (\d+)/.exec(r.data.toString())?.[1]);
  assert.ok(pid > 0);
  assert.equal(daemon.instances('w'), 1);
  const started = Date.now();
  await daemon.stop();
  assert.ok(Date.now() - started < 4000, 'stop is bounded');
  assert.throws(() => process.kill(pid, 0), 'the program is gone');
});

test('a wait-mode socket keeps listening while children exit around it (SIGCHLD interrupts its poll)', { timeout: 20_000 }, async (t) => {
  // Short-lived children, each exit a SIGCHLD that may land on the thread polling the socket.
  const { port, logs } = await startTestDaemon(t, `
component w { mode inetd; flags wait; socket inet://127.0.0.1:0; command "${process.execPath} {{bin}}/wait-server.js 1"; }
component churn { mode inetd; socket inet://127.0.0.1:0; command /bin/true; }
`);
  const deadline = Date.now() + 2500;
  while (Date.now() < deadline) await Promise.all(Array.from({ length: 8 }, () => exchange({ port: port('churn'), timeoutMs: 2000 })));
  const r = await exchange({ port: port('w'), timeoutMs: 5000 });
  assert.match(r.data.toString(), /^pid \d+ n 1\n$/);
  assert.ok(!logs.some((e) => /poll failed/.test(String(e['reason'] ?? e['err'] ?? e.msg))), 'the wait listener never gave up');
});
