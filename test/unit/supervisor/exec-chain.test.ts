// supervisor/exec-chain.ts (and users.ts): the argv built for each setting, errors as
// results, and real spawns through prlimit/nice/setpriv/sh that show the settings took
// effect in a process that kept the pid spawn() reported.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Flag } from '../../../src/config/model.js';
import { DEFAULT_CHAIN_TOOLS, type ExecChain, type ExecChainResult, type ExecSpec, buildExecChain, prlimitArgs } from '../../../src/supervisor/exec-chain.js';
import { accountsFromText, lookupGroup, lookupUser, parseGroup, parsePasswd } from '../../../src/supervisor/users.js';

const FIXTURE = fileURLToPath(new URL('../../fixtures/bin/print-context.js', import.meta.url));
const T = DEFAULT_CHAIN_TOOLS;

const PASSWD = ['# comment', 'root:x:0:0:root:/root:/bin/bash', 'svc:x:200:300::/srv:/bin/sh', '+nis', 'broken:x:abc:1::/:/bin/sh', 'nobody:x:65534:65534::/:/usr/sbin/nologin', ''].join('\n');
const GROUP = ['root:x:0:', 'svcgrp:x:300:', 'ssl:x:103:svc,other', 'log:x:4:svc', 'nogroup:x:65534:', ''].join('\n');
const ACCOUNTS = accountsFromText(PASSWD, GROUP);

function spec(extra: Partial<ExecSpec> = {}): ExecSpec {
  return { argv: ['/usr/bin/prog', 'a b', '-x'], flags: new Set<Flag>(), env: { K: 'v' }, ...extra };
}

function chain(s: ExecSpec): ExecChain {
  const r = buildExecChain(s, { accounts: ACCOUNTS });
  assert.ok(!('error' in r), `unexpected error: ${'error' in r ? r.error : ''}`);
  return r;
}

function cmdline(r: ExecChain): string[] {
  return [r.file, ...r.args];
}

test('users.ts parses passwd and group, ignoring comments, NIS lines and bad ids', () => {
  assert.deepEqual(parsePasswd(PASSWD).map((u) => u.name), ['root', 'svc', 'nobody']);
  assert.deepEqual(parseGroup(GROUP).find((g) => g.name === 'ssl'), { name: 'ssl', gid: 103, members: ['svc', 'other'] });
  assert.deepEqual(ACCOUNTS.lookupUser('svc'), { name: 'svc', uid: 200, gid: 300 });
  assert.deepEqual(ACCOUNTS.lookupUser('200'), { name: 'svc', uid: 200, gid: 300 }, 'a numeric id finds its entry');
  assert.deepEqual(ACCOUNTS.lookupUser('4242'), { name: '4242', uid: 4242 }, 'a numeric id without entry has no gid');
  assert.equal(ACCOUNTS.lookupUser('ghost'), undefined);
  assert.equal(ACCOUNTS.lookupUser('4294967295'), undefined, '(uid_t)-1 is not an id');
  assert.deepEqual(ACCOUNTS.lookupGroup('777'), { name: '777', gid: 777, members: [] });
  assert.equal(ACCOUNTS.lookupGroup('ghosts'), undefined);
  assert.deepEqual(ACCOUNTS.groupsOf('svc').map((g) => g.name), ['ssl', 'log']);
  // The real files on this machine.
  assert.equal(lookupUser('nobody')?.uid, 65534);
  assert.equal(lookupGroup('root')?.gid, 0);
  assert.equal(lookupUser('no-such-user-here'), undefined);
});

test('plain argv needs no wrapper and passes env through', () => {
  const r = chain(spec());
  assert.deepEqual(r, { file: '/usr/bin/prog', args: ['a b', '-x'], env: { K: 'v' }, argv: ['/usr/bin/prog', 'a b', '-x'] });
});

test('command is split when there is no argv', () => {
  const r = chain({ command: 'prog "a b" c', flags: new Set(), env: {} });
  assert.deepEqual(cmdline(r), ['prog', 'a b', 'c']);
  assert.deepEqual(buildExecChain({ command: 'prog "a', flags: new Set(), env: {} }), { error: 'command: unbalanced " in command line' });
  assert.deepEqual(buildExecChain({ flags: new Set(), env: {} }), { error: 'no command to run' });
  assert.deepEqual(buildExecChain({ command: '  ', flags: new Set(), env: {} }), { error: 'no command to run' });
});

test('program replaces the file; argv[0] stays as written via argv0', () => {
  const r = chain(spec({ argv: ['httpd', '-f'], program: '/bin/busybox' }));
  assert.deepEqual(r, { file: '/bin/busybox', args: ['-f'], argv0: 'httpd', env: { K: 'v' }, argv: ['httpd', '-f'] });
  assert.equal(chain(spec({ argv: ['/bin/x'], program: '/bin/x' })).argv0, undefined);
});

test('flag shell runs program or /bin/sh with -c COMMAND', () => {
  const s = spec({ flags: new Set<Flag>(['shell']), command: 'echo $HOME | wc -c' });
  assert.deepEqual(cmdline(chain(s)), ['/bin/sh', '-c', 'echo $HOME | wc -c']);
  assert.deepEqual(cmdline(chain({ ...s, program: '/bin/bash' })), ['/bin/bash', '-c', 'echo $HOME | wc -c']);
  assert.deepEqual(cmdline(chain(spec({ flags: new Set<Flag>(['shell']), argv: ['echo', 'a b'] }))).slice(2), ["echo 'a b'"], 'argv is quoted back');
  assert.deepEqual(cmdline(chain({ ...s, flags: new Set<Flag>(['shell', 'expandenv']) })).at(-1), 'echo $HOME | wc -c', 'the shell expands, not tpies');
});

test('flag expandenv expands against the component env, then splits', () => {
  const s: ExecSpec = { command: 'prog ${DIR:-/d}/x "$ARG" $ARG ${NEW:=n}', argv: ['stale'], flags: new Set<Flag>(['expandenv']), env: { ARG: 'p q' } };
  const r = chain(s);
  assert.deepEqual(r.argv, ['prog', '/d/x', 'p q', 'p', 'q', 'n']);
  assert.deepEqual(r.env, { ARG: 'p q' }, ':= in a command does not reach the child env');
  assert.deepEqual(s.env, { ARG: 'p q' });
  assert.deepEqual(buildExecChain({ ...s, command: 'prog ${PORT:?no port}' }), { error: 'command: PORT: no port' });
  assert.deepEqual(buildExecChain({ ...s, command: 'prog $EMPTY', env: {} }, { accounts: ACCOUNTS }), { file: 'prog', args: [], env: {}, argv: ['prog'] });
  assert.deepEqual(buildExecChain({ ...s, command: '$EMPTY', env: {} }), { error: 'no command to run' });
  const plain = chain({ ...s, flags: new Set() });
  assert.deepEqual(plain.argv, ['stale'], 'without expandenv the split argv is used as is');
});

test('prlimitArgs: KiB to bytes, minutes to seconds, counts as is, nice left out', () => {
  assert.deepEqual(
    prlimitArgs({ as: 1, core: 0, data: 2, fsize: 3, memlock: 4, nofile: 64, rss: 5, stack: 6, cpu: 10, nproc: 16, nice: 5 }),
    ['--as=1024', '--core=0', '--data=2048', '--fsize=3072', '--memlock=4096', '--nofile=64', '--rss=5120', '--stack=6144', '--cpu=600', '--nproc=16'],
  );
  assert.deepEqual(prlimitArgs({}), []);
  assert.deepEqual(prlimitArgs({ as: 2 ** 53 }), [`--as=${2n ** 53n * 1024n}`], 'no precision lost on huge sizes');
});

test('limits wrap with prlimit, priority with nice relative to tpies', () => {
  assert.deepEqual(cmdline(chain(spec({ limits: { nofile: 64, cpu: 1 } }))), [T.prlimit, '--nofile=64', '--cpu=60', '--', '/usr/bin/prog', 'a b', '-x']);
  assert.deepEqual(cmdline(chain(spec({ limits: { nice: 5 } }))), [T.nice, '-n', '5', '--', '/usr/bin/prog', 'a b', '-x']);
  assert.deepEqual(cmdline(chain(spec({ limits: { nice: 5 }, currentNice: 2 }))).slice(0, 3), [T.nice, '-n', '3']);
  assert.deepEqual(cmdline(chain(spec({ limits: { nice: -5 }, currentNice: 0 }))).slice(0, 3), [T.nice, '-n', '-5']);
  assert.deepEqual(cmdline(chain(spec({ limits: { nice: 2 }, currentNice: 2 }))), ['/usr/bin/prog', 'a b', '-x'], 'already there');
  assert.deepEqual(cmdline(chain(spec({ limits: {} }))), ['/usr/bin/prog', 'a b', '-x']);
});

test('umask wraps with sh; the octal text is padded', () => {
  assert.deepEqual(cmdline(chain(spec({ umask: 0o27 }))), [T.sh, '-c', 'unset PWD; umask 027 && exec "$@"', 'sh', '/usr/bin/prog', 'a b', '-x']);
  assert.equal(cmdline(chain(spec({ umask: 0 })))[2], 'unset PWD; umask 000 && exec "$@"');
  assert.deepEqual(buildExecChain(spec({ umask: 0o1000 })), { error: 'umask 512 is out of range (000..777 octal)' });
});

test('user: uid and primary gid, supplementary groups = primary + group list', () => {
  const setpriv = (s: ExecSpec): string[] => cmdline(chain(s)).slice(0, 5);
  assert.deepEqual(setpriv(spec({ user: 'svc' })), [T.setpriv, '--reuid=200', '--regid=300', '--groups=300', '--']);
  assert.deepEqual(setpriv(spec({ user: 'svc', group: ['ssl', '4', '300'] })), [T.setpriv, '--reuid=200', '--regid=300', '--groups=300,103,4', '--']);
  assert.deepEqual(setpriv(spec({ user: 'svc', allgroups: true })), [T.setpriv, '--reuid=200', '--regid=300', '--init-groups', '--']);
  assert.deepEqual(setpriv(spec({ user: 'svc', allgroups: true, group: ['nogroup'] })), [T.setpriv, '--reuid=200', '--regid=300', '--groups=300,65534,103,4', '--']);
  assert.deepEqual(setpriv(spec({ user: '4242', group: ['777'] })), [T.setpriv, '--reuid=4242', '--regid=777', '--groups=777', '--']);
  assert.deepEqual(cmdline(chain(spec({ group: ['ssl'], allgroups: true }))), ['/usr/bin/prog', 'a b', '-x'], 'as in pies, groups only apply with user');
});

test('unknown users and groups are error results, not throws', () => {
  const build = (s: ExecSpec): ExecChainResult => buildExecChain(s, { accounts: ACCOUNTS });
  assert.deepEqual(build(spec({ user: 'x' })), { error: 'unknown user "x"' });
  assert.deepEqual(build(spec({ user: 'svc', group: ['ssl', 'nope'] })), { error: 'unknown group "nope"' });
  assert.match((build(spec({ user: '4242' })) as { error: string }).error, /primary group is unknown/);
  assert.match((build(spec({ user: '4242', group: ['1'], allgroups: true })) as { error: string }).error, /"allgroups" needs a passwd entry/);
});

test('the full chain: prlimit, nice, setpriv, then sh, then the program', () => {
  const r = chain(spec({ limits: { nofile: 64, nice: 3 }, user: 'svc', umask: 0o27 }));
  assert.deepEqual(cmdline(r), [
    T.prlimit, '--nofile=64', '--',
    T.nice, '-n', '3', '--',
    T.setpriv, '--reuid=200', '--regid=300', '--groups=300', '--',
    T.sh, '-c', 'unset PWD; umask 027 && exec "$@"', 'sh',
    '/usr/bin/prog', 'a b', '-x',
  ]);
  assert.equal(r.argv0, undefined);
});

test('with a wrapper, a differing argv[0] is set by bash exec -a', () => {
  const r = chain(spec({ argv: ['httpd', '-f'], program: '/bin/busybox', umask: 0o22, limits: { core: 0 } }));
  assert.deepEqual(cmdline(r), [T.prlimit, '--core=0', '--', T.bash, '--norc', '--posix', '-c', 'unset PWD; umask 022 && exec -a "$0" "$@"', 'httpd', '/bin/busybox', '-f']);
  assert.equal(r.argv0, undefined);
  const noUmask = chain(spec({ argv: ['httpd'], program: '/bin/busybox', user: 'svc' }));
  assert.deepEqual(cmdline(noUmask).slice(5), [T.bash, '--norc', '--posix', '-c', 'unset PWD; exec -a "$0" "$@"', 'httpd', '/bin/busybox']);
  const withPwd = chain(spec({ umask: 0o22, env: { PWD: '/srv' } }));
  assert.equal(cmdline(withPwd)[2], 'umask 022 && exec "$@"', 'a PWD the env has is left to the shell');
});

// ---- real processes ----

interface Context {
  pid: number;
  argv0: string;
  uid: number;
  gid: number;
  groups: number[];
  umask: string;
  nice: number;
  env: Record<string, string>;
  limits: Record<string, { soft: string; hard: string }>;
}

const NODE_SPEC = { program: process.execPath, flags: new Set<Flag>() };

function runSync(s: ExecSpec): Context {
  const r = buildExecChain(s);
  assert.ok(!('error' in r), JSON.stringify(r));
  const out = spawnSync(r.file, r.args, { env: r.env, encoding: 'utf8', cwd: '/', ...(r.argv0 === undefined ? {} : { argv0: r.argv0 }) });
  assert.equal(out.status, 0, out.stderr);
  assert.equal(out.stderr, '', 'no wrapper says anything (bash reading ~/.bashrc would)');
  return JSON.parse(out.stdout) as Context;
}

test('tools exist where the chain expects them', () => {
  for (const tool of Object.values(DEFAULT_CHAIN_TOOLS)) assert.ok(existsSync(tool), tool);
  assert.ok((statSync(FIXTURE).mode & 0o111) !== 0, 'the fixture is executable');
});

test('real: umask 027, nofile 64, cpu minutes, nice and env ops are visible in the child', () => {
  const ctx = runSync({ ...NODE_SPEC, argv: ['node', FIXTURE], umask: 0o27, limits: { nofile: 64, cpu: 2, core: 0, nice: 4 }, currentNice: 0, env: { KEPT: 'yes', PATH: process.env.PATH ?? '' } });
  assert.equal(ctx.umask, '0027');
  assert.deepEqual(ctx.limits['Max open files'], { soft: '64', hard: '64', units: 'files' });
  assert.deepEqual(ctx.limits['Max cpu time'], { soft: '120', hard: '120', units: 'seconds' });
  assert.equal(ctx.limits['Max core file size']?.soft, '0');
  assert.equal(ctx.nice, 4);
  assert.equal(ctx.env.KEPT, 'yes');
  assert.equal(ctx.uid, process.getuid!());
});

// Switching user needs root; without it the same chain must fail (setpriv refuses), never
// run the program as the caller instead.
test('real: user nobody gets uid 65534, its primary gid and only the listed groups (as root; refused otherwise)', () => {
  if (process.getuid?.() !== 0) {
    const r = buildExecChain({ ...NODE_SPEC, argv: ['node', FIXTURE], user: 'nobody', env: {} });
    assert.ok(!('error' in r), JSON.stringify(r));
    const out = spawnSync(r.file, r.args, { env: r.env, encoding: 'utf8', cwd: '/' });
    assert.notEqual(out.status, 0, 'a non-root caller cannot become nobody');
    assert.equal(out.stdout, '', 'the program did not run');
    return;
  }
  const nobody = lookupUser('nobody')!;
  const ctx = runSync({ ...NODE_SPEC, argv: ['node', FIXTURE], user: 'nobody', group: ['root'], env: {} });
  assert.equal(ctx.uid, 65534);
  assert.equal(ctx.gid, nobody.gid);
  assert.deepEqual([...ctx.groups].sort((a, b) => a - b), [0, nobody.gid!].sort((a, b) => a - b));
  const plain = runSync({ ...NODE_SPEC, argv: ['node', FIXTURE], user: 'nobody', env: {} });
  assert.deepEqual(plain.groups, [nobody.gid]);
  const all = runSync({ ...NODE_SPEC, argv: ['node', FIXTURE], user: 'nobody', allgroups: true, env: {} });
  assert.deepEqual(all.groups, [nobody.gid]);
});

test('real: argv[0] as written reaches the program, with and without a wrapper', () => {
  assert.equal(runSync({ ...NODE_SPEC, argv: ['my-name', FIXTURE], env: {} }).argv0, 'my-name');
  assert.equal(runSync({ ...NODE_SPEC, argv: ['my-name', FIXTURE], umask: 0o77, env: {} }).argv0, 'my-name');
});

test('real: expandenv and env ops reach the child; the shebang fixture runs by name', () => {
  const r = buildExecChain({ command: `${FIXTURE} $KEYS`, flags: new Set<Flag>(['expandenv']), env: { KEYS: 'A B', A: 'a', B: 'b', C: 'c', PATH: process.env.PATH ?? '' }, umask: 0o22 });
  assert.ok(!('error' in r));
  const out = spawnSync(r.file, r.args, { env: r.env, encoding: 'utf8' });
  assert.equal(out.status, 0, out.stderr);
  assert.deepEqual((JSON.parse(out.stdout) as Context).env, { A: 'a', B: 'b' });
  const all = runSync({ ...NODE_SPEC, argv: [process.execPath, FIXTURE], umask: 0o22, env: { ONLY: '1' } });
  assert.deepEqual(all.env, { ONLY: '1' }, 'the sh wrapper adds nothing to the env');
});

test('real: flag shell runs through /bin/sh -c with the component env', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tpies-chain-'));
  try {
    const r = buildExecChain({ command: 'echo "$GREETING" > out; umask', flags: new Set<Flag>(['shell']), env: { GREETING: 'hi there' }, umask: 0o27 });
    assert.ok(!('error' in r));
    const out = spawnSync(r.file, r.args, { env: r.env, encoding: 'utf8', cwd: dir });
    assert.equal(out.stdout.trim(), '0027');
    assert.equal(statSync(join(dir, 'out')).mode & 0o777, 0o640);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('real: the whole chain keeps the pid spawn() reports', async () => {
  const r = buildExecChain({
    ...NODE_SPEC,
    argv: ['node', FIXTURE],
    umask: 0o27,
    limits: { nofile: 64, nice: 1 },
    ...(process.getuid?.() === 0 ? { user: 'nobody' } : {}),
    env: {},
  });
  assert.ok(!('error' in r), JSON.stringify(r));
  assert.ok(r.file === T.prlimit, 'the chain really is wrapped');
  const child = spawn(r.file, r.args, { env: r.env, stdio: ['ignore', 'pipe', 'inherit'], cwd: '/' });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(code, 0);
  const ctx = JSON.parse(stdout) as Context;
  assert.equal(ctx.pid, child.pid);
  assert.equal(ctx.umask, '0027');
  assert.equal(ctx.limits['Max open files']?.soft, '64');
  if (process.getuid?.() === 0) assert.equal(ctx.uid, 65534);
});
