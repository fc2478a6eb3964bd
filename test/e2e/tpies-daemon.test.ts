// The built daemon (`node dist/src/bin/tpies.js -c FILE --log-format json`, what ships) as
// an operator runs it: SIGTERM stops it with exit 0 and no child left behind, SIGHUP reloads
// an edited config, --pidfile is written, guarded and removed, and a bad config exits 78.
// Each daemon runs detached in its own process group; t.after kills that group and every
// child group the log names, so a failing test leaves nothing running.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { before, type TestContext, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type Socket, connect } from 'node:net';
import { alive, waitFor } from '../helpers/daemon.js';
import { exchange } from '../helpers/tcp-client.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = path.join(ROOT, 'dist/src/bin/tpies.js');
const BIN = path.join(ROOT, 'test/fixtures/bin');
const TIMEOUT = { timeout: 30_000 };

before(() => {
  // npm test builds first; running this file alone needs `npm run build` beforehand.
  if (!existsSync(CLI)) assert.fail(`${CLI} is missing: run \`npm run build\` before the e2e tests`);
});


function killQuietly(target: number): void {
  try {
    process.kill(target, 'SIGKILL');
  } catch {
    // Gone already.
  }
}

type LogLine = { readonly level: string; readonly msg: string; readonly [field: string]: unknown };

interface Tpies {
  readonly pid: number;
  /** stderr lines that parsed as JSON log records, in order. */
  readonly log: LogLine[];
  /** Every stderr line as written. */
  readonly stderr: string[];
  readonly stdout: string[];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Log records of `component` (with message `msg`). */
  entries(component: string, msg?: string): LogLine[];
  /** Child pids the log reported, plus tracked ones. */
  children(): number[];
  /** A pid to kill in cleanup and to check at the end (a grandchild). */
  track(pid: number): void;
}

// A temp dir with the config written in, removed after the test. {{dir}} and {{bin}} expand.
function tempConfig(t: TestContext, text: string): { dir: string; file: string; write(text: string): void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'tpies-e2e-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'tpies.conf');
  const write = (next: string): void => writeFileSync(file, next.replaceAll('{{dir}}', dir).replaceAll('{{bin}}', BIN));
  write(text);
  return { dir, file, write };
}

// Start the built CLI detached (its own process group) and follow its stderr.
let controlSockets = 0;

// Each daemon gets a control socket of its own (next to its config): the default path may
// belong to another tpies on this machine.
function startTpies(t: TestContext, args: readonly string[], wrapper: readonly string[] = []): Tpies {
  const config = args[args.indexOf('-c') + 1] ?? '';
  const control = args.includes('--control-socket') ? [] : ['--control-socket', `${config}.${controlSockets++}.ctl`];
  const argv = [...wrapper, process.execPath, CLI, ...args, ...control];
  const child: ChildProcess = spawn(argv[0]!, argv.slice(1), {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1' },
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not start tpies');
  const log: LogLine[] = [];
  const stderr: string[] = [];
  const stdout: string[] = [];
  const extra = new Set<number>();
  createInterface({ input: child.stderr! }).on('line', (line) => {
    stderr.push(line);
    try {
      const record = JSON.parse(line) as unknown;
      if (record && typeof record === 'object' && 'msg' in record) log.push(record as LogLine);
    } catch {
      // Not a log record (a fatal one-line message): kept in `stderr` only.
    }
  });
  createInterface({ input: child.stdout! }).on('line', (line) => stdout.push(line));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const children = (): number[] => [...new Set([...extra, ...log.flatMap((l) => (typeof l['childPid'] === 'number' ? [l['childPid']] : []))])];
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      killQuietly(-pid);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise((resolve) => (timer = setTimeout(resolve, 5000)))]);
      clearTimeout(timer);
    }
    // Components lead their own process groups; a grandchild shares its parent's.
    for (const c of children()) {
      if (!alive(c)) continue;
      killQuietly(-c);
      killQuietly(c);
    }
  });
  return {
    pid,
    log,
    stderr,
    stdout,
    exited,
    entries: (component, msg) => log.filter((l) => l['component'] === component && (msg === undefined || l.msg === msg)),
    children,
    track: (p) => void extra.add(p),
  };
}

// Resolves with the exit status, or fails the test if it takes longer than `ms`.
async function exitWithin(tpies: Tpies, ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`tpies did not exit within ${ms} ms; stderr:\n${tpies.stderr.join('\n')}`)), ms);
  });
  try {
    return await Promise.race([tpies.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// A line on a component's stdout reaches the log only once the daemon's event loop runs,
// so by then its signal handlers are installed (they are set up in the same tick as the
// first spawns) and SIGTERM/SIGHUP will not kill it by default action.
function waitReady(tpies: Tpies, component: string, line = 'ready'): Promise<void> {
  return waitFor(() => tpies.entries(component, line).length > 0, 10_000, `${component} printed "${line}"; stderr:\n${tpies.stderr.join('\n')}`);
}

test('SIGTERM: graceful stop, exit 0, no child or grandchild left', TIMEOUT, async (t) => {
  const conf = tempConfig(
    t,
    `shutdown-timeout 2;
     component hello { command "{{bin}}/write-lines.js --stay out:ready"; }
     component worker { command "{{bin}}/forever.js"; }
     component stubborn { command "{{bin}}/ignore-term.js"; shutdown-timeout 1; }
     component forker { command "{{bin}}/fork-grandchild.sh {{dir}}/grandchild"; }`,
  );
  const tpies = startTpies(t, ['-c', conf.file, '--log-format', 'json']);
  await waitReady(tpies, 'hello');
  await waitReady(tpies, 'stubborn');
  const grandchildFile = path.join(conf.dir, 'grandchild');
  await waitFor(() => existsSync(grandchildFile), 10_000, 'grandchild started');
  const grandchild = Number(readFileSync(grandchildFile, 'utf8'));
  tpies.track(grandchild);
  const started = tpies.log.filter((l) => l.msg === 'component started').map((l) => l['childPid']);
  assert.equal(started.length, 4, tpies.stderr.join('\n'));
  for (const pid of tpies.children()) assert.ok(alive(pid), `child ${pid} running before the stop`);

  process.kill(tpies.pid, 'SIGTERM');
  const { code, signal } = await exitWithin(tpies, 10_000);
  assert.equal(signal, null);
  assert.equal(code, 0, tpies.stderr.join('\n'));
  const messages = tpies.log.map((l) => l.msg);
  assert.ok(messages.includes('stop requested'));
  assert.equal(messages.at(-1), 'tpies stopped');
  assert.equal(tpies.entries('stubborn', 'component killed').length, 1);
  await waitFor(() => tpies.children().every((pid) => !alive(pid)), 2000, 'children gone').catch(() => undefined);
  assert.deepEqual(
    tpies.children().filter((pid) => alive(pid)),
    [],
    'processes left after SIGTERM',
  );
});

test('SIGHUP after editing the config: "config reloaded" and the new component runs', TIMEOUT, async (t) => {
  const conf = tempConfig(t, `component hello { command "{{bin}}/write-lines.js --stay out:ready"; }`);
  const tpies = startTpies(t, ['-c', conf.file, '--log-format', 'json']);
  await waitReady(tpies, 'hello');
  const [hello] = tpies.entries('hello', 'component started');

  conf.write(
    `component hello { command "{{bin}}/write-lines.js --stay out:ready"; }
     component fresh { command "{{bin}}/write-lines.js --stay out:fresh-%p"; }`,
  );
  process.kill(tpies.pid, 'SIGHUP');
  await waitFor(() => tpies.log.some((l) => l.msg === 'config reloaded'), 10_000, `config reloaded; stderr:\n${tpies.stderr.join('\n')}`);
  const reloaded = tpies.log.find((l) => l.msg === 'config reloaded')!;
  assert.equal(reloaded['started'], 1);
  assert.equal(reloaded['kept'], 1);
  const [fresh] = tpies.entries('fresh', 'component started');
  assert.equal(typeof fresh?.['childPid'], 'number');
  await waitReady(tpies, 'fresh', `fresh-${String(fresh?.['childPid'])}`);
  assert.ok(alive(fresh?.['childPid'] as number));
  // The unchanged component kept its process.
  assert.equal(tpies.entries('hello', 'component started').length, 1);
  assert.ok(alive(hello?.['childPid'] as number));

  process.kill(tpies.pid, 'SIGTERM');
  assert.equal((await exitWithin(tpies, 10_000)).code, 0);
  assert.deepEqual(
    tpies.children().filter((pid) => alive(pid)),
    [],
  );
});

test('--pidfile: written, refused to a second instance (exit 71, one line), removed at exit', TIMEOUT, async (t) => {
  const conf = tempConfig(t, `component hello { command "{{bin}}/write-lines.js --stay out:ready"; }`);
  const pidfile = path.join(conf.dir, 'tpies.pid');
  const first = startTpies(t, ['-c', conf.file, '--log-format', 'json', '--pidfile', pidfile]);
  await waitReady(first, 'hello');
  assert.equal(readFileSync(pidfile, 'utf8'), `${first.pid}\n`);

  const second = startTpies(t, ['-c', conf.file, '--log-format', 'json', '--pidfile', pidfile]);
  const refused = await exitWithin(second, 10_000);
  assert.equal(refused.code, 71);
  assert.deepEqual(second.stderr, [`tpies: another instance is running (pid ${first.pid}, from ${pidfile})`]);
  assert.deepEqual(second.stdout, []);
  // The refusal touched nothing of the first instance.
  assert.equal(readFileSync(pidfile, 'utf8'), `${first.pid}\n`);
  assert.equal(first.entries('hello', 'component started').length, 1);
  assert.ok(alive(first.pid));

  process.kill(first.pid, 'SIGTERM');
  assert.equal((await exitWithin(first, 10_000)).code, 0);
  assert.equal(existsSync(pidfile), false, 'pid file removed at exit');
  assert.deepEqual(
    first.children().filter((pid) => alive(pid)),
    [],
  );
});

test('a bad config: exit 78 with file:line:col on stderr, nothing started', TIMEOUT, async (t) => {
  const conf = tempConfig(t, `component ok { command "{{bin}}/forever.js"; }\ncomponent bad {\n    comand "{{bin}}/forever.js";\n}\n`);
  const tpies = startTpies(t, ['-c', conf.file, '--log-format', 'json']);
  const { code } = await exitWithin(tpies, 10_000);
  assert.equal(code, 78);
  const text = tpies.stderr.join('\n');
  assert.ok(tpies.stderr.some((l) => l.startsWith(`${conf.file}:3:5: error: unknown statement "comand"`)), text);
  assert.deepEqual(tpies.log, [], 'no log records: the daemon never started');
  assert.deepEqual(tpies.stdout, []);
});

// Descriptor exhaustion: idle TCPMUX clients (held by tpies until they send a line) use up a
// small RLIMIT_NOFILE. libuv then accepts and drops further connections itself (its EMFILE
// trick, invisible to Node); tpies must keep running and serve again once descriptors free up.
test('EMFILE on accept never stops the daemon; service resumes when descriptors free up', TIMEOUT, async (t) => {
  const conf = tempConfig(t, `
component tcpmux { socket inet://127.0.0.1:0; service tcpmux; flags internal; tcpmux-timeout 60; }
component echo { tcpmux-master tcpmux; service echo; flags tcpmuxplus; command /bin/cat; }
`);
  const tpies = startTpies(t, ['-c', conf.file, '--log-format', 'json'], ['/usr/bin/prlimit', '--nofile=256', '--']);
  await waitFor(() => tpies.log.some((l) => l.msg === 'tpies started'), 10_000, 'tpies started');
  const bound = tpies.log.find((l) => l.msg === 'listening')?.bound;
  const port = Number(String(bound).split(':').pop());
  assert.ok(port > 0, `bound ${String(bound)}`);
  const idle: Socket[] = [];
  t.after(() => idle.forEach((s) => s.destroy()));
  for (let i = 0; i < 300; i++) {
    const s = connect({ host: '127.0.0.1', port });
    s.on('error', () => undefined);
    idle.push(s);
  }
  const openFds = (): number => readdirSync(`/proc/${tpies.pid}/fd`).length;
  await waitFor(() => openFds() >= 250, 10_000, 'descriptors used up');
  const probe = await exchange({ port, send: ['echo\r\nhi'], halfClose: true, timeoutMs: 2000 });
  assert.notEqual(probe.data.toString('latin1'), '+\r\nhi', 'no descriptor left for a new client');
  idle.forEach((s) => s.destroy());
  // Still alive, and serving again once descriptors are free.
  await waitFor(async () => {
    const r = await exchange({ port, send: ['echo\r\nhi'], halfClose: true, timeoutMs: 2000 });
    return r.data.toString('latin1') === '+\r\nhi';
  }, 15_000, 'service after the clients left');
  process.kill(tpies.pid, 'SIGTERM');
  assert.deepEqual(await tpies.exited, { code: 0, signal: null });
});
