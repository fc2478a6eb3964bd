// systemd/activation.ts: sd_listen_fds(3) rules: only our own LISTEN_PID counts, fds start
// at 3, names come from LISTEN_FDNAMES, and clearActivationEnv leaves nothing for children.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ACTIVATION_ENV, SD_LISTEN_FDS_START, clearActivationEnv, inheritedSockets } from '../../../src/systemd/activation.js';

const plain = (env: NodeJS.ProcessEnv, pid = 4242) => {
  const s = inheritedSockets(env, pid);
  return { fds: Object.fromEntries(s.fds), unnamed: s.unnamed, warnings: s.warnings };
};

test('no activation variables: no sockets and no warnings', () => {
  assert.deepEqual(plain({ PATH: '/bin' }), { fds: {}, unnamed: [], warnings: [] });
});

test('one named fd starts at 3', () => {
  assert.equal(SD_LISTEN_FDS_START, 3);
  assert.deepEqual(plain({ LISTEN_PID: '4242', LISTEN_FDS: '1', LISTEN_FDNAMES: 'tcpmux' }), { fds: { tcpmux: [3] }, unnamed: [], warnings: [] });
});

test('several names, a name shared by two fds, and unnamed entries', () => {
  const got = plain({ LISTEN_PID: '4242', LISTEN_FDS: '5', LISTEN_FDNAMES: 'web:tcpmux:web::unknown' });
  assert.deepEqual(got, { fds: { web: [3, 5], tcpmux: [4] }, unnamed: [6, 7], warnings: [] });
  assert.deepEqual([...inheritedSockets({ LISTEN_PID: '1', LISTEN_FDS: '3', LISTEN_FDNAMES: 'c:a:b' }, 1).fds.keys()], ['c', 'a', 'b'], 'names keep fd order');
});

test('without LISTEN_FDNAMES every fd is unnamed', () => {
  assert.deepEqual(plain({ LISTEN_PID: '4242', LISTEN_FDS: '2' }), { fds: {}, unnamed: [3, 4], warnings: [] });
});

test('LISTEN_FDS=0 is activation with no sockets', () => {
  assert.deepEqual(plain({ LISTEN_PID: '4242', LISTEN_FDS: '0', LISTEN_FDNAMES: '' }), { fds: {}, unnamed: [], warnings: [] });
});

test('another process\'s LISTEN_PID is ignored, with a warning', () => {
  const got = plain({ LISTEN_PID: '4241', LISTEN_FDS: '1', LISTEN_FDNAMES: 'tcpmux' });
  assert.deepEqual(got.fds, {});
  assert.deepEqual(got.unnamed, []);
  assert.deepEqual(got.warnings, ['ignoring socket activation: LISTEN_PID=4241 is not this process (4242)']);
});

test('the default pid is process.pid', () => {
  assert.deepEqual(Object.fromEntries(inheritedSockets({ LISTEN_PID: String(process.pid), LISTEN_FDS: '1', LISTEN_FDNAMES: 'x' }).fds), { x: [3] });
  assert.equal(inheritedSockets({ LISTEN_PID: String(process.pid + 1), LISTEN_FDS: '1' }).fds.size, 0);
});

test('malformed variables are ignored, with a warning each', () => {
  const cases: Array<[NodeJS.ProcessEnv, string]> = [
    [{ LISTEN_FDS: '1' }, 'ignoring socket activation: LISTEN_PID="" is not a pid'],
    [{ LISTEN_PID: '0', LISTEN_FDS: '1' }, 'ignoring socket activation: LISTEN_PID="0" is not a pid'],
    [{ LISTEN_PID: '42x', LISTEN_FDS: '1' }, 'ignoring socket activation: LISTEN_PID="42x" is not a pid'],
    [{ LISTEN_PID: '-4242', LISTEN_FDS: '1' }, 'ignoring socket activation: LISTEN_PID="-4242" is not a pid'],
    [{ LISTEN_PID: '4242' }, 'ignoring socket activation: LISTEN_FDS="" is not a count'],
    [{ LISTEN_PID: '4242', LISTEN_FDS: ' 1' }, 'ignoring socket activation: LISTEN_FDS=" 1" is not a count'],
    [{ LISTEN_PID: '4242', LISTEN_FDS: '-1' }, 'ignoring socket activation: LISTEN_FDS="-1" is not a count'],
  ];
  for (const [env, warning] of cases) assert.deepEqual(plain(env), { fds: {}, unnamed: [], warnings: [warning] }, JSON.stringify(env));
});

test('a name count that does not match LISTEN_FDS names nothing (sd_listen_fds_with_names: EINVAL)', () => {
  assert.deepEqual(plain({ LISTEN_PID: '4242', LISTEN_FDS: '2', LISTEN_FDNAMES: 'tcpmux' }), {
    fds: {},
    unnamed: [3, 4],
    warnings: ['LISTEN_FDNAMES has 1 names for 2 fds; treating every fd as unnamed'],
  });
});

test('clearActivationEnv deletes exactly the LISTEN_* variables', () => {
  const env: NodeJS.ProcessEnv = { LISTEN_PID: '1', LISTEN_FDS: '1', LISTEN_FDNAMES: 'a', LISTEN_OTHER: 'kept', PATH: '/bin', NOTIFY_SOCKET: '/run/n' };
  clearActivationEnv(env);
  assert.deepEqual(env, { LISTEN_OTHER: 'kept', PATH: '/bin', NOTIFY_SOCKET: '/run/n' });
  assert.deepEqual([...ACTIVATION_ENV], ['LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES']);
  clearActivationEnv(env);
  assert.equal(inheritedSockets(env, 1).fds.size, 0);
});
