// systemd/notify.ts without a receiver: message formatting, MONOTONIC_USEC, no notifier
// without NOTIFY_SOCKET, and failures that resolve false with a reason instead of throwing.
// Real datagrams on a real NOTIFY_SOCKET: test/integration/systemd.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createNotifier, formatNotifyMessage, monotonicUsec } from '../../../src/systemd/notify.js';

test('formatNotifyMessage: assignments in order, newlines in values flattened, bad names refused', () => {
  assert.equal(formatNotifyMessage({ READY: '1', STATUS: 'serving 3 components' }), 'READY=1\nSTATUS=serving 3 components');
  assert.equal(formatNotifyMessage({ STATUS: 'two\nlines\r\nhere' }), 'STATUS=two lines here');
  assert.equal(formatNotifyMessage({ STATUS: '' }), 'STATUS=');
  for (const bad of [{ 'READY=1\nX': '1' }, { ready: '1' }, { '': '1' }, { '1X': '1' }]) assert.ok(formatNotifyMessage(bad) instanceof Error, JSON.stringify(bad));
  assert.ok(formatNotifyMessage({}) instanceof Error);
});

test('createNotifier: undefined without NOTIFY_SOCKET', () => {
  assert.equal(createNotifier({}), undefined);
  assert.equal(createNotifier({ NOTIFY_SOCKET: '' }), undefined);
});

test('a failed notification resolves false with a reason, never throws', async () => {
  const notifier = createNotifier({ NOTIFY_SOCKET: 'vsock:2:1234' }, { transport: 'koffi' });
  assert.ok(notifier);
  assert.equal(await notifier.ready(), false);
  assert.equal(notifier.lastError, 'unsupported NOTIFY_SOCKET "vsock:2:1234" (expected a path or @name)');
  assert.equal(await notifier.send({ 'bad name': '1' }), false);
  assert.equal(notifier.lastError, 'invalid sd_notify variable name "bad name"');
  const nobody = createNotifier({ NOTIFY_SOCKET: '/nonexistent/tpies-notify.sock' }, { transport: 'koffi' });
  assert.equal(await nobody?.status('x'), false);
  assert.equal(nobody?.lastError, 'sendto /nonexistent/tpies-notify.sock failed: ENOENT');
  const missing = createNotifier({ NOTIFY_SOCKET: '@x', PATH: '/bin' }, { transport: 'systemd-notify', systemdNotify: '/nonexistent/systemd-notify' });
  assert.equal(await missing?.stopping(), false);
  assert.match(missing?.lastError ?? '', /cannot run \/nonexistent\/systemd-notify/);
});

test('monotonicUsec grows and is in microseconds', async () => {
  const a = monotonicUsec();
  await new Promise((resolve) => setTimeout(resolve, 20));
  const b = monotonicUsec();
  assert.ok(b - a >= 15_000n && b - a < 2_000_000n, `${a} → ${b}`);
});
