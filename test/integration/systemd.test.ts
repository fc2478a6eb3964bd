// systemd integration with real sockets and real processes, no systemd needed:
// - sd_notify: a python3 receiver binds a real AF_UNIX datagram NOTIFY_SOCKET (a path, and an
//   @abstract name; Node cannot bind either) with SO_PASSCRED and prints every datagram and
//   its sender pid; we assert the exact datagrams from both transports (koffi, systemd-notify).
// - socket activation: a child gets a real listening socket as fd 3 with LISTEN_FDS=1,
//   LISTEN_FDNAMES=tcpmux and its own pid in LISTEN_PID, finds it through inheritedSockets()
//   and serves a connection on it.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { type AddressInfo, createServer } from 'node:net';

import path from 'node:path';
import { createInterface } from 'node:readline';
import { type TestContext, test } from 'node:test';
import { exchange } from '../helpers/tcp-client.js';
import { type Datagram, startReceiver, stopProcess } from '../helpers/notify-receiver.js';
import { handleFd } from '../../src/inetd/handle-fd.js';
import { type Notifier, type NotifyTransport, createNotifier, monotonicUsec } from '../../src/systemd/notify.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const ACTIVATED = path.join(ROOT, 'test/fixtures/systemd/activated-server.ts');
// ready → status → reloading → ready(status) → stopping, each awaited like the daemon will.
async function lifecycle(notifier: Notifier): Promise<{ before: bigint; after: bigint }> {
  assert.equal(await notifier.ready(), true, notifier.lastError);
  assert.equal(await notifier.status('3 components running'), true, notifier.lastError);
  const before = monotonicUsec();
  assert.equal(await notifier.reloading(), true, notifier.lastError);
  const after = monotonicUsec();
  assert.equal(await notifier.ready('reloaded: 1 started, 0 stopped'), true, notifier.lastError);
  assert.equal(await notifier.stopping('stopping 3 components'), true, notifier.lastError);
  assert.equal(notifier.lastError, undefined);
  return { before, after };
}

function checkLifecycle(messages: readonly Datagram[], window: { before: bigint; after: bigint }): void {
  assert.deepEqual(
    messages.map((m) => m.data.replace(/MONOTONIC_USEC=\d+/, 'MONOTONIC_USEC=N')),
    ['READY=1', 'STATUS=3 components running', 'RELOADING=1\nMONOTONIC_USEC=N', 'READY=1\nSTATUS=reloaded: 1 started, 0 stopped', 'STOPPING=1\nSTATUS=stopping 3 components'],
  );
  // MONOTONIC_USEC is CLOCK_MONOTONIC (python's time.monotonic) at the time of sending.
  const usec = BigInt(/MONOTONIC_USEC=(\d+)/.exec(messages[2]?.data ?? '')?.[1] ?? '0');
  assert.ok(usec >= window.before && usec <= window.after, `MONOTONIC_USEC ${usec} outside [${window.before}, ${window.after}]`);
  assert.ok(usec <= BigInt(messages[2]?.usec ?? 0), 'sent no later than received, on the receiver\'s CLOCK_MONOTONIC');
}

for (const kind of ['path', 'abstract'] as const) {
  test(`koffi: exact datagrams on a ${kind} NOTIFY_SOCKET, sent from tpies's own pid`, async (t) => {
    const receiver = await startReceiver(t, kind);
    const notifier = createNotifier({ NOTIFY_SOCKET: receiver.address });
    assert.ok(notifier);
    assert.equal(notifier.transport, 'koffi', `koffi should load (dependency): ${notifier.fallbackReason}`);
    assert.equal(notifier.fallbackReason, undefined);
    assert.equal(notifier.socket, receiver.address);
    const window = await lifecycle(notifier);
    const messages = await receiver.waitFor(5);
    checkLifecycle(messages, window);
    // Our own pid, so NotifyAccess=main accepts them; no barrier, nothing else sent.
    assert.deepEqual(messages.map((m) => [m.pid, m.fds]), messages.map(() => [process.pid, 0]));
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(receiver.received.length, 5, 'no extra datagrams');
  });

  test(`systemd-notify fallback: the same datagrams on a ${kind} NOTIFY_SOCKET, each followed by BARRIER=1`, async (t) => {
    const receiver = await startReceiver(t, kind);
    const transport: NotifyTransport = 'systemd-notify';
    const notifier = createNotifier({ NOTIFY_SOCKET: receiver.address, PATH: process.env.PATH ?? '/usr/bin:/bin' }, { transport });
    assert.ok(notifier);
    assert.equal(notifier.transport, 'systemd-notify');
    const window = await lifecycle(notifier);
    const all = await receiver.waitFor(10);
    const messages = all.filter((m) => m.data !== 'BARRIER=1');
    checkLifecycle(messages, window);
    assert.deepEqual(
      all.map((m) => (m.data === 'BARRIER=1' ? `BARRIER=1 fds=${m.fds}` : 'message')),
      Array.from({ length: 5 }, () => ['message', 'BARRIER=1 fds=1']).flat(),
    );
    // As root, systemd-notify sends with its parent's (our) credentials; as another user
    // with its own, which is why the fallback needs NotifyAccess=all.
    if (process.getuid?.() === 0) assert.deepEqual(messages.map((m) => m.pid), messages.map(() => process.pid));
    else assert.ok(messages.every((m) => m.pid !== process.pid));
  });
}

test('notifications are sent one at a time, in call order, even when not awaited', async (t) => {
  const receiver = await startReceiver(t, 'abstract');
  const notifier = createNotifier({ NOTIFY_SOCKET: receiver.address });
  assert.ok(notifier);
  const results = await Promise.all([notifier.reloading(), notifier.status('a'), notifier.ready(), notifier.status('b')]);
  assert.deepEqual(results, [true, true, true, true]);
  const messages = await receiver.waitFor(4);
  assert.deepEqual(
    messages.map((m) => m.data.split('\n')[0]),
    ['RELOADING=1', 'STATUS=a', 'READY=1', 'STATUS=b'],
  );
});

// Spawn the fixture with `listener` as fd 3 through `exec env LISTEN_PID=$$ …`, so that the
// pid systemd would write is the fixture's own after exec.
function spawnActivated(t: TestContext, fd: number, env: Record<string, string>, listenPid = '$$'): { proc: ChildProcess; report: Promise<Record<string, unknown>> } {
  const assignments = Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ');
  const proc = spawn('/bin/sh', ['-c', `exec env LISTEN_PID=${listenPid} ${assignments} "$@"`, 'sh', process.execPath, '--import', 'tsx', ACTIVATED], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit', fd],
  });
  t.after(() => stopProcess(proc));
  const report = new Promise<Record<string, unknown>>((resolve, reject) => {
    proc.once('error', reject);
    proc.once('exit', (code) => reject(new Error(`fixture exited with ${code} before reporting`)));
    createInterface({ input: proc.stdout as NodeJS.ReadableStream }).once('line', (line) => resolve(JSON.parse(line) as Record<string, unknown>));
  });
  return { proc, report };
}

async function listeningSocket(t: TestContext): Promise<{ fd: number; port: number; close: () => void }> {
  const server = createServer({ pauseOnConnect: true }, (socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
  t.after(() => server.close());
  const fd = handleFd(server);
  assert.ok(fd !== undefined);
  return { fd, port: (server.address() as AddressInfo).port, close: () => server.close() };
}

test('socket activation: a real inherited fd named tcpmux serves a connection', async (t) => {
  const listener = await listeningSocket(t);
  const { proc, report } = spawnActivated(t, listener.fd, { LISTEN_FDS: '1', LISTEN_FDNAMES: 'tcpmux' });
  // From now on only the child holds the listening socket.
  listener.close();
  const got = await report;
  assert.equal(got.pid, proc.pid, 'the sh wrapper exec()s, so LISTEN_PID=$$ is the fixture');
  assert.deepEqual(got.fds, { tcpmux: [3] });
  assert.deepEqual(got.unnamed, []);
  assert.deepEqual(got.warnings, []);
  assert.deepEqual(got.envLeft, [], 'clearActivationEnv removed LISTEN_*');
  assert.equal(got.listening, true);
  assert.deepEqual(got.address, { address: '127.0.0.1', family: 'IPv4', port: listener.port });
  // Node marks inherited fds close-on-exec at start-up, as sd_listen_fds() would: processes
  // spawned later (tpies's components) do not inherit the listening socket.
  assert.equal(got.cloexec, true);
  assert.equal(got.childSees, 'closed');
  const reply = await exchange({ port: listener.port });
  assert.equal(reply.data.toString(), `hello from ${proc.pid}\n`);
  assert.equal(reply.closed, 'end');
  const code = await new Promise<number | null>((resolve) => (proc.exitCode !== null ? resolve(proc.exitCode) : proc.once('exit', resolve)));
  assert.equal(code, 0);
});

test('socket activation: LISTEN_PID of another process is ignored', async (t) => {
  const listener = await listeningSocket(t);
  const { report } = spawnActivated(t, listener.fd, { LISTEN_FDS: '1', LISTEN_FDNAMES: 'tcpmux' }, '1');
  const got = await report;
  assert.deepEqual(got.fds, {});
  assert.equal(got.listening, false);
  assert.deepEqual(got.envLeft, []);
  assert.deepEqual(got.warnings, [`ignoring socket activation: LISTEN_PID=1 is not this process (${String(got.pid)})`]);
});
