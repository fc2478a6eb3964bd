// Unit tests of the default control socket path (root, $XDG_RUNTIME_DIR, private /tmp
// directory), the --socket/--control-socket parser, and the checks on the default directory.
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { prepareDefaultDir } from '../../../src/control/server.js';
import { defaultControlSocket, defaultControlSocketPath, parseControlSocket } from '../../../src/control/socket-path.js';
import { PiesError } from '../../../src/errors.js';
import { createMemoryLogger } from '../../../src/log/logger.js';

const dirs = (...present: string[]) => (dir: string) => present.includes(dir);

test('root with /run: /run/tpies/tpies.ctl, whatever the environment says', () => {
  assert.deepEqual(defaultControlSocket({ uid: 0, env: { XDG_RUNTIME_DIR: '/run/user/0' }, isDirectory: dirs('/run', '/run/user/0') }), { path: '/run/tpies/tpies.ctl', dir: '/run/tpies', kind: 'system' });
});

test('a user with $XDG_RUNTIME_DIR: the socket goes there', () => {
  assert.deepEqual(defaultControlSocket({ uid: 1000, env: { XDG_RUNTIME_DIR: '/run/user/1000' }, isDirectory: dirs('/run', '/run/user/1000') }), { path: '/run/user/1000/tpies.ctl', dir: '/run/user/1000', kind: 'runtime' });
});

test('no usable runtime directory (unset, relative, missing): a private directory in /tmp', () => {
  const expected = { path: '/tmp/tpies-1000/tpies.ctl', dir: '/tmp/tpies-1000', kind: 'private' };
  assert.deepEqual(defaultControlSocket({ uid: 1000, env: {}, isDirectory: dirs('/run') }), expected);
  assert.deepEqual(defaultControlSocket({ uid: 1000, env: { XDG_RUNTIME_DIR: 'run/user' }, isDirectory: dirs('/run', 'run/user') }), expected);
  assert.deepEqual(defaultControlSocket({ uid: 1000, env: { XDG_RUNTIME_DIR: '/run/user/1000' }, isDirectory: dirs('/run') }), expected);
  assert.equal(defaultControlSocketPath({ uid: 0, env: {}, isDirectory: dirs() }), '/tmp/tpies-0/tpies.ctl');
});

test('parseControlSocket: a path or a socket URL', () => {
  assert.deepEqual(parseControlSocket('/run/x.ctl'), { address: { kind: 'unix', path: '/run/x.ctl', url: 'unix:///run/x.ctl' } });
  assert.deepEqual(parseControlSocket('relative.ctl'), { address: { kind: 'unix', path: 'relative.ctl', url: 'unix://relative.ctl' } });
  const inet = parseControlSocket('inet://127.0.0.1:8073');
  assert.ok('address' in inet && inet.address.kind === 'inet' && inet.address.port === 8073);
  const unix = parseControlSocket('unix:///run/x.ctl;mode=660');
  assert.ok('address' in unix && unix.address.kind === 'unix' && unix.address.mode === 0o660);
  assert.ok('error' in parseControlSocket(''));
  assert.ok('error' in parseControlSocket('udp://1.2.3.4:5'));
});

const TMP = mkdtempSync(join(tmpdir(), 'tpies-sockdir-'));
after(() => rmSync(TMP, { recursive: true, force: true }));
const { log } = createMemoryLogger('debug');
const uid = process.getuid?.() ?? 0;

test('the private directory is created 0700, and accepted again when it is ours and closed', () => {
  const dir = join(TMP, 'fresh');
  prepareDefaultDir({ path: join(dir, 'tpies.ctl'), dir, kind: 'private' }, log);
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  prepareDefaultDir({ path: join(dir, 'tpies.ctl'), dir, kind: 'private' }, log);
});

test('a private directory others can enter, a file, or one owned by another user is refused', (t) => {
  const open = join(TMP, 'open');
  mkdirSync(open, { mode: 0o755 });
  chmodSync(open, 0o755);
  assert.throws(() => prepareDefaultDir({ path: join(open, 'tpies.ctl'), dir: open, kind: 'private' }, log), (e: unknown) => e instanceof PiesError && e.code === 'ERR_CONTROL' && /mode 755 lets others in/.test(e.message));
  const file = join(TMP, 'file');
  writeFileSync(file, '');
  assert.throws(() => prepareDefaultDir({ path: join(file, 'tpies.ctl'), dir: file, kind: 'private' }, log), /not a directory/);
  if (uid !== 0) return t.skip('needs root to chown');
  const theirs = join(TMP, 'theirs');
  mkdirSync(theirs, { mode: 0o700 });
  chownSync(theirs, 65534, 65534);
  assert.throws(() => prepareDefaultDir({ path: join(theirs, 'tpies.ctl'), dir: theirs, kind: 'private' }, log), /owned by uid 65534, not 0/);
});

test('the system directory may be 0755 but not writable by others', () => {
  const sys = join(TMP, 'sys');
  prepareDefaultDir({ path: join(sys, 'tpies.ctl'), dir: sys, kind: 'system' }, log);
  assert.equal(statSync(sys).mode & 0o777, 0o755);
  chmodSync(sys, 0o777);
  assert.throws(() => prepareDefaultDir({ path: join(sys, 'tpies.ctl'), dir: sys, kind: 'system' }, log), /mode 777 lets others in/);
});
