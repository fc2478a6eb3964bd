// supervisor/spawn.ts with real processes: the posix_spawn path is what the daemon uses, it
// reports failures in the very words of the execa path, pipes and sockets reach the child,
// the environment and argv[0] are the same either way, and kill reaches the process group.
import assert from 'node:assert/strict';
import { chmodSync, closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { POLLIN, loadLibc } from '../../../src/native/libc.js';
import { loadPosixSpawn } from '../../../src/native/posix-spawn.js';
import { type Child, type ChildExit, type SpawnRequest, setSpawnMethod, spawnChild, spawnChildAsync, spawnMethod } from '../../../src/supervisor/spawn.js';

const TIMEOUT = { timeout: 20_000 };

function base(extra: Partial<SpawnRequest> = {}): SpawnRequest {
  return { file: '/bin/true', args: [], env: { PATH: '/usr/bin:/bin' }, stdin: 'ignore', stdout: 'ignore', stderr: 'ignore', ...extra };
}

// Kill (by pid, group first) whatever a test started and did not see exit.
function guard(t: TestContext): (child: Child) => Child {
  const children: Child[] = [];
  t.after(() => children.forEach((c) => c.kill('SIGKILL', true)));
  return (child) => (children.push(child), child);
}

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'tpies-spawn-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function text(stream: NodeJS.ReadableStream | null): Promise<string> {
  assert.ok(stream, 'a pipe');
  let out = '';
  for await (const chunk of stream) out += String(chunk);
  return out;
}

// Run the same request through both implementations.
async function both(request: SpawnRequest, read = false): Promise<{ posix: ChildExit & { out?: string }; execa: ChildExit & { out?: string } }> {
  const result: Record<string, ChildExit & { out?: string }> = {};
  for (const method of ['execa', 'auto'] as const) {
    await setSpawnMethod(method);
    try {
      const child = spawnChild(request);
      const out = read ? await text(child.stdout) : undefined;
      result[method] = { ...(await child.exited), ...(out !== undefined ? { out } : {}) };
    } finally {
      await setSpawnMethod('auto');
    }
  }
  return { posix: result.auto!, execa: result.execa! };
}

test('the daemon spawns with posix_spawn', () => {
  assert.equal(spawnMethod(), 'posix');
});

test('spawn failures read exactly as on the execa path', TIMEOUT, async (t) => {
  const dir = tempDir(t);
  const plain = join(dir, 'plain.sh');
  writeFileSync(plain, '#!/bin/sh\nexit 0\n');
  chmodSync(plain, 0o644);
  mkdirSync(join(dir, 'sub'));
  const cases: SpawnRequest[] = [
    base({ file: '/nonexistent/program' }),
    base({ file: 'no-such-command-anywhere' }),
    base({ file: plain }),
    base({ file: join(dir, 'sub') }),
    base({ file: 'plain.sh', env: { PATH: dir } }),
    base({ file: '/etc/passwd/x' }),
    base({ cwd: join(dir, 'missing') }),
    base({ cwd: plain }),
    base({ cwd: 'relative-missing-dir' }),
    base({ file: 'true', cwd: join(dir, 'missing') }),
    base({ file: '' }),
    base({ file: '/bin/tr\0ue' }),
  ];
  for (const request of cases) {
    const { posix, execa } = await both(request);
    assert.ok(execa.spawnError !== undefined, `execa fails for ${JSON.stringify(request.file)} in ${request.cwd}`);
    assert.deepEqual(posix, execa, `same failure for ${JSON.stringify(request.file)} in ${request.cwd}`);
  }
  // execa throws for a NUL byte in an argument; so does the posix path, with its words.
  const nul = base({ args: ['a\0b'] });
  await setSpawnMethod('execa');
  let execaThrew: unknown;
  try {
    spawnChild(nul);
  } catch (error) {
    execaThrew = error;
  } finally {
    await setSpawnMethod('auto');
  }
  assert.ok(execaThrew instanceof TypeError);
  assert.throws(() => spawnChild(nul), { name: 'TypeError', message: execaThrew.message });
  // The forms tests and logs rely on.
  assert.equal((await both(cases[0]!)).posix.spawnError, 'ENOENT: spawn /nonexistent/program ENOENT');
  assert.equal((await both(cases[2]!)).posix.spawnError, `EACCES: spawn ${plain} EACCES`);
});

test('a failed spawn has no pid and says why at once', TIMEOUT, async () => {
  const child = spawnChild(base({ file: '/nonexistent/program' }));
  assert.equal(child.pid, undefined);
  assert.equal(child.stdout, null);
  assert.deepEqual(await child.exited, { spawnError: 'ENOENT: spawn /nonexistent/program ENOENT' });
  child.kill('SIGTERM', true); // a no-op, not a throw
});

test('exit codes, signals, env, argv[0], PATH search and #!-less scripts match the execa path', TIMEOUT, async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'bare'), 'echo "bare:$0:$1"\n');
  chmodSync(join(dir, 'bare'), 0o755);
  const env = { B: 'two words', A: '1', EMPTY: '', PATH: `/usr/bin:/bin:${dir}` };
  const cases: [string, SpawnRequest][] = [
    ['exit code', base({ file: '/bin/sh', args: ['-c', 'exit 42'] })],
    ['signal', base({ file: '/bin/sh', args: ['-c', 'kill -HUP $$'] })],
    ['env', base({ file: '/usr/bin/env', env, stdout: 'pipe' })],
    ['argv0', base({ file: '/bin/sh', argv0: 'custom-0', args: ['-c', 'echo "$0"'], stdout: 'pipe' })],
    ['PATH', base({ file: 'env', env, stdout: 'pipe' })],
    ['no #!', base({ file: 'bare', args: ['x'], env, stdout: 'pipe' })],
  ];
  for (const [what, request] of cases) {
    const { posix, execa } = await both(request, request.stdout === 'pipe');
    assert.deepEqual(posix, execa, what);
  }
  assert.deepEqual((await both(cases[0]![1])).posix, { exitCode: 42 });
  assert.deepEqual((await both(cases[1]![1])).posix, { signal: 'SIGHUP' });
  assert.equal((await both(cases[2]![1], true)).posix.out, 'B=two words\nA=1\nEMPTY=\nPATH=/usr/bin:/bin:' + dir + '\n');
  assert.equal((await both(cases[3]![1], true)).posix.out, 'custom-0\n');
  assert.equal((await both(cases[5]![1], true)).posix.out, `bare:${join(dir, 'bare')}:x\n`);
});

test('stdout and stderr pipes carry the output; a file fd is the child’s own copy', TIMEOUT, async (t) => {
  const track = guard(t);
  const child = track(spawnChild(base({ file: '/bin/sh', args: ['-c', 'echo out; echo err >&2; exit 3'], stdout: 'pipe', stderr: 'pipe' })));
  const [out, err, exit] = await Promise.all([text(child.stdout), text(child.stderr), child.exited]);
  assert.deepEqual([out, err, exit], ['out\n', 'err\n', { exitCode: 3 }]);

  const file = join(tempDir(t), 'out.txt');
  const fd = openSync(file, 'a');
  const started = spawnChildAsync(base({ file: '/bin/sh', args: ['-c', 'sleep 0.05; echo later'], stdout: fd }));
  // The async spawn copied the fd before returning: closing ours now must not matter.
  closeSync(fd);
  assert.deepEqual(await track(await started).exited, { exitCode: 0 });
  assert.equal(readFileSync(file, 'utf8'), 'later\n');
});

test('a stdin pipe stays open until the child exits, as with execa', TIMEOUT, async (t) => {
  const track = guard(t);
  const child = track(spawnChild(base({ file: '/bin/sh', args: ['-c', 'read x; echo "got [$x]"'], stdin: 'pipe', stdout: 'pipe' })));
  const out = text(child.stdout);
  // It waits for a line that never comes (EOF would make read fail and print "got []").
  const early = await Promise.race([child.exited.then(() => 'exited'), new Promise((resolve) => setTimeout(resolve, 300, 'waiting'))]);
  assert.equal(early, 'waiting');
  child.kill('SIGTERM', false);
  assert.deepEqual(await child.exited, { signal: 'SIGTERM' });
  assert.equal(await out, '');
});

test('a socket handed over as stdin and stdout: the child talks to the client, blocking I/O', TIMEOUT, async (t) => {
  const track = guard(t);
  const server = net.createServer({ pauseOnConnect: true });
  t.after(() => server.close());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const client = net.connect(port, '127.0.0.1');
  t.after(() => client.destroy());
  const socket = await accepted;
  const child = track(await spawnChildAsync(base({ file: '/bin/cat', stdin: socket, stdout: socket })));
  socket.destroy();
  assert.ok(child.pid !== undefined);
  let echoed = '';
  client.setEncoding('utf8');
  client.on('data', (d: string) => (echoed += d));
  const closed = new Promise((resolve) => client.once('close', resolve));
  // cat would stop at EAGAIN if the socket were left non-blocking: write after a pause.
  await new Promise((resolve) => setTimeout(resolve, 50));
  client.end('hello through cat\n');
  await closed;
  assert.equal(echoed, 'hello through cat\n');
  assert.deepEqual(await child.exited, { exitCode: 0 });
});

test('kill reaches the whole process group; after the exit a plain kill is a no-op', TIMEOUT, async (t) => {
  const track = guard(t);
  const child = track(spawnChild(base({ file: '/bin/sh', args: ['-c', 'sleep 30 & echo $!; wait'], stdout: 'pipe' })));
  const grandchild = await new Promise<number>((resolve) => child.stdout!.once('data', (d: Buffer) => resolve(Number(String(d).trim()))));
  assert.ok(Number.isInteger(grandchild) && grandchild > 0);
  t.after(() => {
    try {
      process.kill(grandchild, 'SIGKILL');
    } catch {
      // gone, as it should be
    }
  });
  child.kill('SIGTERM', true);
  assert.deepEqual(await child.exited, { signal: 'SIGTERM' });
  // The grandchild was in the group: it is gone (or a zombie of init for a moment).
  const deadline = Date.now() + 5000;
  while (alive(grandchild) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(alive(grandchild), false);
  child.kill('SIGKILL', false);
});

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return false;
  }
}

test('many concurrent async spawns on sockets-as-files all end with their own status', TIMEOUT, async (t) => {
  const track = guard(t);
  const children = await Promise.all(Array.from({ length: 64 }, (_, i) => spawnChildAsync(base({ file: '/bin/sh', args: ['-c', `exit ${i}`], stderr: 'pipe' }))));
  children.forEach(track);
  const exits = await Promise.all(children.map((c) => c.exited));
  assert.deepEqual(exits, Array.from({ length: 64 }, (_, i) => ({ exitCode: i })));
  // Every stderr pipe ends (the parent kept no write end).
  await Promise.all(children.map((c) => text(c.stderr)));
});

test('with every threadpool thread parked (flags-wait polls), async spawns still start at once', TIMEOUT, async (t) => {
  const libc = loadLibc();
  const spawner = loadPosixSpawn();
  if (libc instanceof Error) throw libc;
  if (spawner instanceof Error) throw spawner;
  const track = guard(t);
  // The first spawn settles whether the spawner thread is there (under tsx it cannot load:
  // src/native/spawner-thread.ts), so the spawns below take one path throughout.
  assert.deepEqual(await track(await spawnChildAsync(base({ file: '/bin/true', args: [] }))).exited, { exitCode: 0 });
  // Park every thread (as flags-wait polls can) on a pipe that never gets data.
  const [readEnd, writeEnd] = spawner.pipe() as readonly [number, number];
  t.after(() => [readEnd, writeEnd].forEach((fd) => spawner.close(fd)));
  const threads = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
  const pollfd = Buffer.alloc(8);
  pollfd.writeInt32LE(readEnd, 0);
  pollfd.writeInt16LE(POLLIN, 4);
  const parked = Array.from({ length: threads }, () => libc.pollAsync(Buffer.from(pollfd), 1, 4000));
  await new Promise((resolve) => setTimeout(resolve, 50));
  const t0 = performance.now();
  // On the spawner thread spawns never touch the pool. Without it (as here, under tsx) the
  // first waits in the pool and, once nothing has finished for a while, the next ones start
  // on the loop: either way they are done long before the polls let go of the pool.
  const stuck = spawnChildAsync(base({ file: '/bin/sh', args: ['-c', 'exit 5'] }));
  await new Promise((resolve) => setTimeout(resolve, 60));
  const quick = await Promise.all(Array.from({ length: 5 }, (_, i) => spawnChildAsync(base({ file: '/bin/sh', args: ['-c', `exit ${i}`] }))));
  quick.forEach(track);
  assert.deepEqual(await Promise.all(quick.map((c) => c.exited)), [0, 1, 2, 3, 4].map((exitCode) => ({ exitCode })));
  assert.ok(performance.now() - t0 < 3000, `done well before the polls time out (4 s) (${Math.round(performance.now() - t0)} ms)`);
  assert.deepEqual(await track(await stuck).exited, { exitCode: 5 });
  // Each poll ends at its timeout (0), or early with EINTR (-1) when a SIGCHLD lands on its
  // thread; none saw the pipe readable.
  for (const r of await Promise.all(parked)) assert.ok(r === 0 || r === -1, `poll returned ${r}`);
});

test('the execa path out of descriptors: the spawn fails with EMFILE, the process lives on', TIMEOUT, async (t) => {
  // In a process of its own with RLIMIT_NOFILE 64: it takes every descriptor, then spawns.
  const dir = mkdtempSync(join(tmpdir(), 'tpies-emfile-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const script = join(dir, 'emfile.mts');
  const spawnModule = new URL('../../../src/supervisor/spawn.ts', import.meta.url).href;
  writeFileSync(
    script,
    `import { openSync } from 'node:fs';
import { setSpawnMethod, spawnChild } from ${JSON.stringify(spawnModule)};
await setSpawnMethod('execa');
const held: number[] = [];
try { for (;;) held.push(openSync('/dev/null', 'r')); } catch {}
const child = spawnChild({ file: '/bin/cat', args: [], env: {}, stdin: 'pipe', stdout: 'pipe', stderr: 'pipe' });
const exit = await child.exited;
await new Promise((resolve) => setTimeout(resolve, 200));
process.stdout.write(JSON.stringify({ held: held.length, exit }));
`,
  );
  const { execFile } = await import('node:child_process');
  const result = await new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
    const child = execFile('prlimit', ['--nofile=64:64', '--', process.execPath, '--import', 'tsx', script], { cwd: process.cwd(), timeout: 15_000 }, (error, out, err) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, out, err }),
    );
    t.after(() => child.kill('SIGKILL'));
  });
  assert.equal(result.code, 0, result.err);
  const report = JSON.parse(result.out) as { held: number; exit: ChildExit };
  assert.ok(report.held > 0);
  assert.match(String(report.exit.spawnError), /EMFILE/);
});
