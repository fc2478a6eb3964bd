// A listener whose address is taken when the daemon starts: the daemon starts anyway, says
// why, runs everything else, and binds by itself once the address is free. And an inetd
// component given a host name (localhost) instead of an address.
import assert from 'node:assert/strict';
import { type AddressInfo, type Server, createServer } from 'node:net';
import { test } from 'node:test';
import { startTestDaemon, waitFor } from '../helpers/daemon.js';
import { exchange } from '../helpers/tcp-client.js';

async function blockPort(t: { after(fn: () => Promise<void> | void): void }): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const server = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => resolve());
  });
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  t.after(close);
  return { server, port: (server.address() as AddressInfo).port, close };
}

test('a port taken at start: the daemon starts, logs EADDRINUSE, and binds once the port is free', async (t) => {
  const blocker = await blockPort(t);
  const config = `
component blocked { socket inet://127.0.0.1:${blocker.port}; flags internal; service echo; }
component free { socket inet://127.0.0.1:0; flags internal; service echo; }
component forever { command "/bin/sleep 60"; }
`;
  const d = await startTestDaemon(t, config, { listenRetryMs: 100 });
  let stopped = false;
  void d.daemon.stopped.then(() => (stopped = true));

  const failures = () => d.logs.filter((e) => e.msg === 'listen failed' && e.component === 'blocked');

  // The failure is logged with its reason, before startDaemon resolved.
  const first = failures()[0];
  assert.ok(first, 'a "listen failed" entry for the blocked component');
  assert.equal(first.level, 'error');
  assert.equal(first.code, 'EADDRINUSE');
  assert.equal(first.socket, `inet://127.0.0.1:${blocker.port}`);
  assert.equal(first.retryMs, 100);
  assert.ok(d.logs.some((e) => e.msg === 'tpies started'), 'the daemon started anyway');

  // Not bound, and reported so.
  assert.equal(d.daemon.addressOf('blocked'), undefined);
  assert.equal(d.daemon.components().find((c) => c.tag === 'blocked')?.state, 'bind-failed');

  // Everything else runs.
  const r = await exchange({ port: d.port('free'), send: ['still here\r\n'], halfClose: true });
  assert.equal(r.data.toString('latin1'), 'still here\r\n');
  assert.equal(r.closed, 'end');
  assert.equal(d.daemon.components().find((c) => c.tag === 'free')?.state, 'listening');
  await waitFor(() => d.daemon.status().some((s) => s.tag === 'forever' && s.state === 'running'), 5000, 'forever running');

  // It keeps trying while the port is taken, backing off (100 ms, 200 ms, …).
  await waitFor(() => failures().length >= 3, 5000, 'three failed binds');
  const delays = failures().map((e) => e.retryMs as number);
  assert.deepEqual(delays.slice(0, 3), [100, 200, 400]);
  for (const e of failures()) assert.equal(e.code, 'EADDRINUSE');

  // Free the port: the listener binds by itself, with no reload or command.
  await blocker.close();
  await waitFor(() => d.daemon.addressOf('blocked') !== undefined, 10_000, 'blocked to bind');
  const bound = d.daemon.addressOf('blocked') as AddressInfo;
  assert.equal(bound.port, blocker.port);
  assert.equal(bound.address, '127.0.0.1');
  assert.equal(d.daemon.components().find((c) => c.tag === 'blocked')?.state, 'listening');
  assert.ok(d.logs.some((e) => e.msg === 'listening' && e.component === 'blocked'));

  // And it serves.
  const echoed = await exchange({ port: blocker.port, send: ['hello after retry\r\n'], halfClose: true });
  assert.equal(echoed.data.toString('latin1'), 'hello after retry\r\n');
  assert.equal(echoed.closed, 'end');
  assert.ok(d.logs.some((e) => e.msg === 'connection' && e.component === 'blocked'), 'an audit event for the connection');

  // No more retries once bound.
  const afterBind = failures().length;
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(failures().length, afterBind);

  // The daemon never stopped, and the other components are untouched.
  assert.equal(stopped, false);
  const again = await exchange({ port: d.port('free'), send: ['x'], halfClose: true });
  assert.equal(again.data.toString('latin1'), 'x');
  assert.ok(d.daemon.status().some((s) => s.tag === 'forever' && s.state === 'running'));
  assert.equal(
    d.logs.filter((e) => e.level === 'fatal').length,
    0,
    'no fatal log entries',
  );
});

test('stopping the daemon while a bind is still being retried is clean', async (t) => {
  const blocker = await blockPort(t);
  const d = await startTestDaemon(t, `component blocked { socket inet://127.0.0.1:${blocker.port}; flags internal; service echo; }\n`, { listenRetryMs: 50 });
  await waitFor(() => d.logs.filter((e) => e.msg === 'listen failed').length >= 2, 5000, 'two failed binds');
  await d.daemon.stop();
  await d.daemon.stopped;
  const failed = d.logs.filter((e) => e.msg === 'listen failed').length;
  // Once stopped, the port is freed and no retry ever binds it.
  await blocker.close();
  await new Promise((resolve) => setTimeout(resolve, 400));
  assert.equal(d.logs.filter((e) => e.msg === 'listen failed').length, failed, 'no retries after stop');
  assert.equal(d.daemon.addressOf('blocked'), undefined);
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject);
    probe.listen({ host: '127.0.0.1', port: blocker.port, exclusive: true }, () => resolve());
  });
  await new Promise<void>((resolve) => probe.close(() => resolve()));
});

test('an inetd component on a host name (inet://localhost:0) binds and serves', async (t) => {
  const d = await startTestDaemon(t, 'component named { socket inet://localhost:0; flags internal; service echo; }\n');
  const bound = d.daemon.addressOf('named') as AddressInfo | undefined;
  assert.ok(bound && typeof bound === 'object', 'bound to a TCP address');
  assert.ok(['127.0.0.1', '::1'].includes(bound.address), `a loopback address, got ${bound.address}`);
  assert.ok(bound.port > 0);
  assert.equal(d.daemon.components().find((c) => c.tag === 'named')?.state, 'listening');
  assert.equal(d.logs.filter((e) => e.msg === 'listen failed').length, 0);

  const r = await exchange({ host: bound.address, port: bound.port, send: ['by name\r\n'], halfClose: true });
  assert.equal(r.data.toString('latin1'), 'by name\r\n');
  assert.equal(r.closed, 'end');
});

// The reload rule: a socket that cannot be bound does not hold the rest of the reload back;
// the reload is applied, reports the socket, and the listener keeps retrying.
test('a reload that cannot bind a new socket applies the rest and reports it', { timeout: 20_000 }, async (t) => {
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen({ host: '127.0.0.1', port: 0 }, resolve));
  t.after(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
  const busy = (blocker.address() as AddressInfo).port;
  const d = await startTestDaemon(t, 'component a { command "/bin/sleep 60"; }', { listenRetryMs: 100 });
  await d.writeConfig(`component a { command "/bin/sleep 60"; }
component b { command "/bin/sleep 60"; }
component late { mode inetd; socket inet://127.0.0.1:${busy}; command /bin/cat; }`);
  const result = await d.daemon.reload();
  assert.ok(result.ok);
  assert.deepEqual(result.warnings, [`component "late": cannot bind inet://127.0.0.1:${busy} yet; retrying in the background`]);
  await waitFor(() => d.daemon.status().some((s) => s.tag === 'b' && s.state === 'running'), 5000, 'b running');
  assert.equal(d.daemon.components().find((c) => c.tag === 'late')?.state, 'bind-failed');
});
