// What children inherit of the daemon's environment (supervisor/launch.ts childBaseEnv):
// everything but the variables that belong to tpies itself.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { childBaseEnv } from '../../../src/supervisor/launch.js';

test('children never see systemd handover variables or tpies own threadpool size', () => {
  const env = childBaseEnv({
    PATH: '/usr/bin:/bin',
    LANG: 'C',
    LISTEN_PID: '1',
    LISTEN_FDS: '2',
    LISTEN_FDNAMES: 'a:b',
    NOTIFY_SOCKET: '/run/systemd/notify',
    WATCHDOG_PID: '1',
    WATCHDOG_USEC: '1000',
    UV_THREADPOOL_SIZE: '8',
    UNSET: undefined,
  });
  assert.deepEqual(env, { PATH: '/usr/bin:/bin', LANG: 'C' });
});
