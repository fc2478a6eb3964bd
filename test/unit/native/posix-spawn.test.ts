// native/posix-spawn.ts and native/reaper.ts with real processes: exit codes and signals
// come back exactly, exec and chdir failures come back as errno, fds land on 0/1/2, the child
// leads a new session with an empty signal mask and default dispositions, env and argv are
// exactly as given, and many concurrent children (alongside Node's own) are all reaped with
// their own status and no zombie left.
import assert from 'node:assert/strict';
import { spawn as nodeSpawn } from 'node:child_process';
import { chmodSync, closeSync, constants as fsConstants, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { type ChildFd, type PosixSpawn, type PosixSpawnRequest, loadPosixSpawn } from '../../../src/native/posix-spawn.js';
import { type Reaper, type WaitStatus, decodeWaitStatus, loadReaper } from '../../../src/native/reaper.js';

const TIMEOUT = { timeout: 15_000 };
const ENV = ['PATH=/usr/bin:/bin'];

function natives(): { spawner: PosixSpawn; reaper: Reaper } {
  const spawner = loadPosixSpawn();
  const reaper = loadReaper();
  if (spawner instanceof Error) throw spawner;
  if (reaper instanceof Error) throw reaper;
  return { spawner, reaper };
}

// Every pid a test starts is killed in t.after if still there (by pid, never by name).
function tracker(t: TestContext): (pid: number) => number {
  const pids: number[] = [];
  t.after(() => {
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  });
  return (pid) => (pids.push(pid), pid);
}

function request(argv: readonly string[], extra: Partial<PosixSpawnRequest> = {}): PosixSpawnRequest {
  return { path: argv[0]!, argv, envp: ENV, fds: ['null', 'null', 'null'], ...extra };
}

function waitFor(reaper: Reaper, pid: number): Promise<WaitStatus> {
  return new Promise((resolve) => reaper.watch(pid, resolve));
}

// Run `argv` with stdout on a pipe; resolves with what it printed and how it ended.
async function run(t: TestContext, argv: readonly string[], extra: Partial<PosixSpawnRequest> = {}): Promise<{ out: string; status: WaitStatus }> {
  const { spawner, reaper } = natives();
  const track = tracker(t);
  const ends = spawner.pipe();
  assert.ok(Array.isArray(ends));
  const [readEnd, writeEnd] = ends as readonly [number, number];
  const fds = (extra.fds ?? ['null', writeEnd, 'null']) as [ChildFd, ChildFd, ChildFd];
  const result = spawner.spawn(request(argv, { ...extra, fds }));
  spawner.close(writeEnd);
  if (result.pid === undefined) {
    spawner.close(readEnd);
    throw new Error(`spawn failed: errno ${result.errno}`);
  }
  track(result.pid);
  const status = waitFor(reaper, result.pid);
  const out = await readAll(readEnd);
  return { out, status: await status };
}

async function readAll(fd: number): Promise<string> {
  const { Socket } = await import('node:net');
  const socket = new Socket({ fd, readable: true, writable: false });
  let text = '';
  socket.setEncoding('utf8');
  for await (const chunk of socket) text += chunk as string;
  return text;
}

test('exit codes and signals come back exactly', TIMEOUT, async (t) => {
  for (const code of [0, 1, 7, 255]) {
    assert.deepEqual((await run(t, ['/bin/sh', '-c', `exit ${code}`])).status, { exitCode: code });
  }
  assert.deepEqual((await run(t, ['/bin/sh', '-c', 'kill -TERM $$'])).status, { signal: 'SIGTERM' });
  assert.deepEqual((await run(t, ['/bin/sh', '-c', 'kill -USR1 $$'])).status, { signal: 'SIGUSR1' });
  // Killed from outside, while it runs.
  const { spawner, reaper } = natives();
  const pid = tracker(t)(spawner.spawn(request(['/bin/sleep', '30'])).pid!);
  const status = waitFor(reaper, pid);
  process.kill(pid, 'SIGKILL');
  assert.deepEqual(await status, { signal: 'SIGKILL' });
});

test('decodeWaitStatus reads the wait(2) status word', () => {
  assert.deepEqual(decodeWaitStatus(0), { exitCode: 0 });
  assert.deepEqual(decodeWaitStatus(3 << 8), { exitCode: 3 });
  assert.deepEqual(decodeWaitStatus(constants.signals.SIGSEGV | 0x80), { signal: 'SIGSEGV' }, 'core dumped');
  assert.deepEqual(decodeWaitStatus(constants.signals.SIGHUP), { signal: 'SIGHUP' });
});

test('exec and chdir failures come back as errno, and nothing is started', TIMEOUT, async (t) => {
  const { spawner } = natives();
  const dir = mkdtempSync(join(tmpdir(), 'tpies-posix-spawn-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const plain = join(dir, 'not-executable');
  writeFileSync(plain, '#!/bin/sh\nexit 0\n');
  chmodSync(plain, 0o644);
  const errno = constants.errno;
  assert.deepEqual(spawner.spawn(request(['/nonexistent/program'])), { errno: errno.ENOENT });
  assert.deepEqual(spawner.spawn(request([plain])), { errno: errno.EACCES });
  assert.deepEqual(spawner.spawn(request([dir])), { errno: errno.EACCES }, 'a directory');
  assert.deepEqual(spawner.spawn(request(['/bin/true'], { cwd: join(dir, 'missing') })), { errno: errno.ENOENT });
  assert.deepEqual(spawner.spawn(request(['/bin/true'], { cwd: plain })), { errno: errno.ENOTDIR });
  assert.deepEqual(await spawner.spawnAsync(request(['/nonexistent/program'])), { errno: errno.ENOENT });
});

test('fds land on 0, 1 and 2; "null" is /dev/null', TIMEOUT, async (t) => {
  const { spawner, reaper } = natives();
  const track = tracker(t);
  const pipes = [spawner.pipe(), spawner.pipe(), spawner.pipe()].map((p) => p as readonly [number, number]);
  const [inPipe, outPipe, errPipe] = pipes as [readonly [number, number], readonly [number, number], readonly [number, number]];
  const script = 'read line; echo "out:$line"; echo "err:$line" >&2';
  const pid = track(spawner.spawn(request(['/bin/sh', '-c', script], { fds: [inPipe[0], outPipe[1], errPipe[1]] })).pid!);
  for (const fd of [inPipe[0], outPipe[1], errPipe[1]]) spawner.close(fd);
  const status = waitFor(reaper, pid);
  writeFileSync(`/proc/self/fd/${inPipe[1]}`, 'hello\n');
  spawner.close(inPipe[1]);
  const [out, err] = await Promise.all([readAll(outPipe[0]), readAll(errPipe[0])]);
  assert.equal(out, 'out:hello\n');
  assert.equal(err, 'err:hello\n');
  assert.deepEqual(await status, { exitCode: 0 });

  const links = await run(t, ['/bin/sh', '-c', 'readlink /proc/$$/fd/0 /proc/$$/fd/2'], {});
  assert.equal(links.out, '/dev/null\n/dev/null\n');
});

test('the child leads a new session, with an empty signal mask and default dispositions', TIMEOUT, async (t) => {
  // Node itself ignores SIGPIPE; the child must not inherit that.
  assert.equal(readFileSync('/proc/self/status', 'utf8').match(/^SigIgn:\s*(\w+)/m)?.[1]?.slice(-4), '1000', 'this process ignores SIGPIPE');
  // The spawned process reads its own state: a shell in between would show its own mask,
  // which dash fills for a moment around each fork (seen once in CI).
  const { out } = await run(t, ['/bin/cat', '/proc/self/stat', '/proc/self/status']);
  const stat = out.split('\n')[0]!;
  const pid = Number(stat.split(' ')[0]);
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  assert.equal(Number(fields[2]), pid, 'process group = its pid');
  assert.equal(Number(fields[3]), pid, 'session = its pid');
  assert.match(out, /^SigBlk:\s*0+$/m);
  // Not even glibc's internal signals 32 and 33.
  assert.match(out, /^SigIgn:\s*0+$/m);
  // And it does die of SIGPIPE when its reader is gone.
  const { spawner, reaper } = natives();
  const [readEnd, writeEnd] = spawner.pipe() as readonly [number, number];
  spawner.close(readEnd);
  const yes = tracker(t)(spawner.spawn(request(['/usr/bin/yes'], { fds: ['null', writeEnd, 'null'] })).pid!);
  spawner.close(writeEnd);
  assert.deepEqual(await waitFor(reaper, yes), { signal: 'SIGPIPE' });
});

test('env is exactly envp, and argv[0] may differ from the file', TIMEOUT, async (t) => {
  const env = await run(t, ['/usr/bin/env'], { envp: ['B=two words', 'A=1', 'EMPTY=', 'UTF=é'] });
  assert.equal(env.out, 'B=two words\nA=1\nEMPTY=\nUTF=é\n');
  const none = await run(t, ['/usr/bin/env'], { envp: [] });
  assert.equal(none.out, '');
  const argv0 = await run(t, ['/bin/sh', '-c', 'echo "$0"; tr "\\0" " " < /proc/$$/cmdline'], { path: '/bin/sh', argv: ['my-name', '-c', 'echo "$0"; tr "\\0" " " < /proc/$$/cmdline'] });
  assert.equal(argv0.out, 'my-name\nmy-name -c echo "$0"; tr "\\0" " " < /proc/$$/cmdline ');
});

test('spawnAsync starts the child off the event loop; the loop keeps running meanwhile', TIMEOUT, async (t) => {
  const { spawner, reaper } = natives();
  const track = tracker(t);
  let ticks = 0;
  const timer = setInterval(() => ticks++, 0);
  t.after(() => clearInterval(timer));
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) => spawner.spawnAsync(request(['/bin/sh', '-c', `exit ${i}`]))));
  const statuses = await Promise.all(results.map((r) => waitFor(reaper, track(r.pid!))));
  assert.deepEqual(statuses, Array.from({ length: 20 }, (_, i) => ({ exitCode: i })));
  assert.ok(ticks > 0, 'timers ran while the spawns were in flight');
});

test('many concurrent children, beside Node’s own, are all reaped with their own status; no zombie is left', TIMEOUT, async (t) => {
  const { spawner, reaper } = natives();
  const track = tracker(t);
  const ours: Promise<[number, WaitStatus]>[] = [];
  const theirs: Promise<[number, number | null]>[] = [];
  for (let i = 0; i < 150; i++) {
    const code = (i * 37) % 256;
    // Short random-ish lifetimes so exits of both kinds interleave.
    const script = i % 10 === 0 ? `kill -KILL $$` : `sleep 0.0${i % 5}; exit ${code}`;
    const make = i % 2 === 0 ? Promise.resolve(spawner.spawn(request(['/bin/sh', '-c', script]))) : spawner.spawnAsync(request(['/bin/sh', '-c', script]));
    ours.push(make.then((r) => waitFor(reaper, track(r.pid!)).then((s) => [i, s])));
    if (i % 3 === 0) {
      const child = nodeSpawn('/bin/sh', ['-c', `sleep 0.0${i % 4}; exit ${(code + 1) % 256}`], { stdio: 'ignore' });
      theirs.push(new Promise((resolve) => child.once('exit', (c) => resolve([i, c]))));
    }
  }
  for (const [i, status] of await Promise.all(ours)) {
    assert.deepEqual(status, i % 10 === 0 ? { signal: 'SIGKILL' } : { exitCode: (i * 37) % 256 }, `child ${i}`);
  }
  for (const [i, code] of await Promise.all(theirs)) assert.equal(code, ((i * 37) % 256 + 1) % 256, `node child ${i}`);
  assert.equal(reaper.size, 0);
  assert.deepEqual(zombies(), []);
});

// This process's children that are zombies (/proc/self/task/*/children, then their state).
function zombies(): number[] {
  const out: number[] = [];
  for (const task of readdirSync('/proc/self/task')) {
    let list = '';
    try {
      list = readFileSync(`/proc/self/task/${task}/children`, 'utf8').trim();
    } catch {
      continue;
    }
    for (const pid of list ? list.split(' ') : []) {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) out.push(Number(pid));
      } catch {
        // reaped meanwhile
      }
    }
  }
  return out;
}

test('dupHigh copies to fd 3 or above, close-on-exec; makeBlocking clears O_NONBLOCK', TIMEOUT, (t) => {
  const { spawner } = natives();
  const flags = (fd: number): number => parseInt(/^flags:\s*([0-7]+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1] ?? 'x', 8);
  const fd = openSync('/dev/null', fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  const copy = spawner.dupHigh(fd);
  t.after(() => [fd, copy].forEach((f) => typeof f === 'number' && closeSync(f)));
  assert.equal(typeof copy, 'number');
  assert.ok((copy as number) >= 3 && copy !== fd);
  assert.notEqual(flags(copy as number) & 0o2000000, 0, 'O_CLOEXEC');
  assert.notEqual(flags(fd) & fsConstants.O_NONBLOCK, 0);
  spawner.makeBlocking(fd);
  assert.equal(flags(fd) & fsConstants.O_NONBLOCK, 0);
  // One open file description behind both numbers.
  assert.equal(flags(copy as number) & fsConstants.O_NONBLOCK, 0);
});
