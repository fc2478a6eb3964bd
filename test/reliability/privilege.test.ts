// Privilege and the control plane (issue 8), on the built daemon run as root: the control
// socket is created 0600 (or as configured) and never looser, even for an instant, before any
// component listens; a non-root user cannot use it; a `user nobody` component runs without
// root's groups; commands never pass through a shell unless `flags shell`; and a child's
// environment holds only what the configuration says. (inetd and xinetd pass their own
// environment to every service, ../shared/reference/peers.md §3 `env`; supervisord's control
// server was the way in for CVE-2017-11610, ../shared/reference/anchors.md §3.)
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { type FSWatcher, chmodSync, existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, watch } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { waitFor } from '../helpers/daemon.js';
import { type DaemonProcess, freePort, startDaemonProcess } from './daemon-process.js';
import { record } from './lib.js';

const NODE = process.execPath;
const ROOT = process.getuid?.() === 0;

// A directory others may traverse, so that only the socket's own mode decides who connects.
function openDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'tpies-priv-'));
  chmodSync(dir, 0o755);
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

interface Watch {
  /** Every mode the socket file was seen with, in order of first sight. */
  readonly modes: number[];
  /** performance.now() when the file was first seen. */
  createdAt: number | undefined;
  /** performance.now() of the first TCP connection the component listener accepted. */
  acceptedAt: number | undefined;
  stop(): void;
}

// Watch `socketPath` from before the daemon starts: fs.watch reports the creation at once, and
// a 1 ms poll backs it up; meanwhile try to connect to `port` every few ms.
function watchStartup(socketPath: string, port: number): Watch {
  const w: Watch = { modes: [], createdAt: undefined, acceptedAt: undefined, stop: () => undefined };
  const look = (): void => {
    try {
      const mode = lstatSync(socketPath).mode & 0o777;
      w.createdAt ??= performance.now();
      if (w.modes.at(-1) !== mode) w.modes.push(mode);
    } catch {
      // Not there yet.
    }
  };
  const watcher: FSWatcher = watch(path.dirname(socketPath), (_event, name) => {
    if (name === path.basename(socketPath)) look();
  });
  const poll = setInterval(look, 1);
  let connecting = false;
  const probe = setInterval(() => {
    if (connecting || w.acceptedAt !== undefined) return;
    connecting = true;
    const socket = connect({ host: '127.0.0.1', port });
    socket.on('connect', () => {
      w.acceptedAt ??= performance.now();
      socket.destroy();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => (connecting = false));
  }, 3);
  w.stop = () => {
    watcher.close();
    clearInterval(poll);
    clearInterval(probe);
  };
  return w;
}

const STARTUP_CONFIG = (port: number): string => `
component prepare { mode startup; command "/bin/sleep 0.3"; }
component echo { socket inet://127.0.0.1:${port}; flags internal; service echo; }
`;

async function startWatched(t: Parameters<typeof startDaemonProcess>[0], socketUrl: string, socketPath: string): Promise<{ d: DaemonProcess; w: Watch }> {
  const port = await freePort();
  const w = watchStartup(socketPath, port);
  t.after(() => w.stop());
  const d = await startDaemonProcess(t, { config: STARTUP_CONFIG(port), args: ['--control-socket', socketUrl] });
  await d.waitLog({ msg: 'control socket listening' });
  await waitFor(() => w.acceptedAt !== undefined && w.createdAt !== undefined, 5000, 'the socket file and an accepted connection');
  w.stop();
  return { d, w };
}

test('the control socket is 0600 from its first instant, or exactly as configured', async (t) => {
  const dir = openDir(t);
  const plain = path.join(dir, 'plain.ctl');
  const { w: first } = await startWatched(t, plain, plain);
  const shared = path.join(dir, 'shared.ctl');
  const { w: second } = await startWatched(t, `unix://${shared};mode=660`, shared);
  const octal = (modes: readonly number[]): string => modes.map((m) => m.toString(8).padStart(4, '0')).join('→');
  record(t, {
    scenario: 'privilege-socket-mode',
    figures: { 'default: modes seen': octal(first.modes), 'mode=660: modes seen': octal(second.modes) },
    condition: 'never looser than the configured mode (default 0600), at any instant',
    pass: first.modes.every((m) => (m & ~0o600) === 0) && first.modes.at(-1) === 0o600 && second.modes.every((m) => (m & ~0o660) === 0) && second.modes.at(-1) === 0o660,
  });
  assert.ok(first.modes.every((m) => (m & ~0o600) === 0), octal(first.modes));
  assert.equal(first.modes.at(-1), 0o600);
  assert.ok(second.modes.every((m) => (m & ~0o660) === 0), octal(second.modes));
  assert.equal(second.modes.at(-1), 0o660);
});

test('the control socket exists before any component listener accepts a connection', async (t) => {
  const dir = openDir(t);
  const socketPath = path.join(dir, 'order.ctl');
  const { d, w } = await startWatched(t, socketPath, socketPath);
  const leadMs = w.acceptedAt! - w.createdAt!;
  const listening = d.entries({ msg: 'listening' }).at(0);
  const control = d.entries({ msg: 'control socket listening' }).at(0);
  const order = d.log.map((l) => l.msg).filter((m) => m === 'listening' || m === 'control socket listening' || m === 'component started');
  record(t, {
    scenario: 'privilege-socket-first',
    figures: { 'control socket before first accept (ms)': Math.round(leadMs), 'log order': order.join(' → ') },
    condition: 'the control socket exists before anything listens',
    pass: leadMs >= 0,
  });
  assert.ok(listening && control, 'both logged');
  assert.ok(leadMs >= 0, `a component listener accepted a connection ${Math.round(-leadMs)} ms before the control socket existed (log order: ${order.join(' → ')})`);
});

// Run a small node script as nobody:nogroup without supplementary groups.
function asNobody(script: string, ...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', NODE, '-e', script, ...args], { timeout: 10_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr });
    });
  });
}

const CONNECT_SCRIPT = `
const s = require('net').connect({ path: process.argv[1] });
s.on('connect', () => { s.end('GET /instance HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n'); });
let got = '';
s.on('data', (c) => (got += c));
s.on('end', () => console.log('answered ' + got.split('\\r\\n')[0]));
s.on('error', (e) => console.log('error ' + e.code));
`;

test('a non-root user cannot use the control socket (and can when the mode lets it)', async (t) => {
  assert.ok(ROOT, 'these checks run as root (setpriv drops to nobody)');
  const dir = openDir(t);
  const privatePath = path.join(dir, 'private.ctl');
  const d = await startDaemonProcess(t, { config: 'component idle { command "/bin/sleep 100000"; }', args: ['--control-socket', privatePath] });
  await d.waitLog({ msg: 'control socket listening' });
  const refused = await asNobody(CONNECT_SCRIPT, privatePath);
  // The positive control: the same client, a socket whose mode lets everybody in.
  const openPath = path.join(dir, 'open.ctl');
  const e = await startDaemonProcess(t, { config: 'component idle { command "/bin/sleep 100000"; }', args: ['--control-socket', `unix://${openPath};mode=666`] });
  await e.waitLog({ msg: 'control socket listening' });
  const allowed = await asNobody(CONNECT_SCRIPT, openPath);
  // tpiesctl as nobody says why, with its permission-denied exit code.
  const ctl = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    execFile('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', NODE, path.resolve(import.meta.dirname, '../../dist/src/bin/tpiesctl.js'), '-s', privatePath, 'list'], { timeout: 10_000 }, (error, _out, stderr) =>
      resolve({ code: error && typeof error.code === 'number' ? error.code : 0, stderr }),
    );
  });
  record(t, {
    scenario: 'privilege-non-root',
    figures: { 'nobody on 0600': refused.stdout.trim(), 'nobody on 0666': allowed.stdout.trim(), 'tpiesctl exit': ctl.code ?? 'none' },
    condition: 'EACCES for a non-root user on the default socket',
    pass: refused.stdout.trim() === 'error EACCES' && allowed.stdout.startsWith('answered HTTP/1.1 200') && ctl.code === 77,
  });
  assert.equal(refused.stdout.trim(), 'error EACCES', refused.stderr);
  assert.match(allowed.stdout, /^answered HTTP\/1\.1 200/, allowed.stderr);
  assert.equal(ctl.code, 77, ctl.stderr);
  assert.match(ctl.stderr, /permission denied/);
});

// ---- what children get -----------------------------------------------------------------------

const CHILD_CONFIG = `
component asnobody { command "/bin/sleep 100000"; user nobody; }
component nobody-inetd { socket inet://127.0.0.1:0; command "${NODE} {{bin}}/print-context.js"; user nobody; }
component noshell { mode startup; command "/bin/echo $HOME; touch {{dir}}/X1 $(touch {{dir}}/X2) \`touch {{dir}}/X3\` | touch {{dir}}/X4 && touch {{dir}}/X5"; }
component expand { mode startup; flags expandenv; command "/bin/echo $HOME; touch {{dir}}/X6"; }
component withshell { mode startup; flags shell; command "/bin/echo $HOME; touch {{dir}}/S1"; }
component clean { mode startup; command "${NODE} {{bin}}/print-context.js"; env { clear; set "A=1"; set "B=two words"; } }
component clean-chain { mode startup; command "${NODE} {{bin}}/print-context.js"; umask 027; user nobody; env { clear; set "A=1"; } }
component inherited { mode startup; command "${NODE} {{bin}}/print-context.js"; env { set "ADDED=yes"; unset "HOME"; } }
component sock { socket inet://127.0.0.1:0; flags sockenv; command "${NODE} {{bin}}/print-context.js"; env { clear; set "A=1"; } }
`;

interface Context {
  readonly uid: number;
  readonly gid: number;
  readonly groups: readonly number[];
  readonly env: Readonly<Record<string, string>>;
}

function statusField(pid: number, field: string): string {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith(`${field}:`));
  return (line ?? '').slice(field.length + 1).trim();
}

// One connection to an inetd component running print-context.js: its JSON line, and our port.
async function contextOver(port: number): Promise<{ context: Context; localPort: number }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no context within 5 s: ${text}`));
    }, 5000);
    socket.on('data', (c: Buffer) => (text += c.toString('utf8')));
    socket.on('end', () => {
      clearTimeout(timer);
      resolve({ context: JSON.parse(text) as Context, localPort: (socket as { localPort?: number }).localPort ?? 0 });
    });
    socket.on('error', reject);
  });
}

test('children: user nobody without root groups, no shell unless asked, only the configured environment', async (t) => {
  const daemonEnv = { TPIES_TEST_MARK: 'inherited from tpies' };
  const d = await startDaemonProcess(t, { config: CHILD_CONFIG, env: daemonEnv });
  const stdoutOf = (tag: string): string[] => d.entries((l) => l['component'] === tag && l['stream'] === 'stdout').map((l) => String(l.msg));
  await waitFor(() => d.entries({ component: 'asnobody', msg: 'component started' }).length > 0, 10_000, 'asnobody to start');
  const problems: string[] = [];

  // user nobody: every uid and gid is nobody's, and root's group (0) is nowhere.
  const pid = Number(d.entries({ component: 'asnobody', msg: 'component started' })[0]!['childPid']);
  // The pid is setpriv's until it has dropped root and exec'd the program (same pid).
  const commOf = (): string => readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  await waitFor(() => commOf() === 'sleep', 5_000, 'setpriv to exec the program').catch(() => undefined);
  const comm = commOf();
  const uid = statusField(pid, 'Uid');
  const gid = statusField(pid, 'Gid');
  const groups = statusField(pid, 'Groups');
  if (comm !== 'sleep') problems.push(`pid ${pid} is ${comm}, not the program itself`);
  if (uid.split(/\s+/).some((u) => u !== '65534')) problems.push(`Uid: ${uid}`);
  if (gid.split(/\s+/).some((g) => g !== '65534')) problems.push(`Gid: ${gid}`);
  if (groups.split(/\s+/).filter(Boolean).some((g) => g !== '65534')) problems.push(`Groups: ${groups}`);
  const perConnection = await contextOver(d.port('nobody-inetd'));
  if (perConnection.context.uid !== 65534 || perConnection.context.gid !== 65534 || perConnection.context.groups.some((g) => g !== 65534)) problems.push(`inetd child as nobody: ${JSON.stringify(perConnection.context)}`);

  // No shell: the metacharacters reach /bin/echo as words, and nothing is touched.
  await waitFor(() => stdoutOf('noshell').length > 0 && stdoutOf('withshell').length > 0 && stdoutOf('expand').length > 0, 10_000, 'the startup components');
  const touched = ['X1', 'X2', 'X3', 'X4', 'X5', 'X6'].filter((f) => existsSync(path.join(d.dir, f)));
  if (touched.length > 0) problems.push(`created without a shell: ${touched.join(' ')}`);
  const literal = `$HOME; touch ${d.dir}/X1 $(touch ${d.dir}/X2) \`touch ${d.dir}/X3\` | touch ${d.dir}/X4 && touch ${d.dir}/X5`;
  if (stdoutOf('noshell')[0] !== literal) problems.push(`echo printed ${JSON.stringify(stdoutOf('noshell')[0])}`);
  // The positive control: with flags shell the same kind of command does run through sh.
  if (!existsSync(path.join(d.dir, 'S1'))) problems.push('flags shell did not run the shell');

  // The environment: exactly the configured variables after `clear`, also through the exec
  // chain (umask, user); the inherited one is tpies' own with the edits; sockenv adds its set.
  const contextOf = (tag: string): Context => JSON.parse(stdoutOf(tag)[0] ?? '{}') as Context;
  await waitFor(() => ['clean', 'clean-chain', 'inherited'].every((tag) => stdoutOf(tag).length > 0), 10_000, 'the environment reports');
  const clean = contextOf('clean').env;
  if (JSON.stringify(clean) !== JSON.stringify({ A: '1', B: 'two words' })) problems.push(`clean env: ${JSON.stringify(clean)}`);
  const chain = contextOf('clean-chain').env;
  if (JSON.stringify(chain) !== JSON.stringify({ A: '1' })) problems.push(`env through the exec chain: ${JSON.stringify(chain)}`);
  const expectedInherited: Record<string, string | undefined> = { ...process.env, NO_COLOR: '1', ...daemonEnv, ADDED: 'yes' };
  delete expectedInherited['HOME'];
  const inherited: Readonly<Record<string, string | undefined>> = contextOf('inherited').env;
  const diff = [...new Set([...Object.keys(expectedInherited), ...Object.keys(inherited)])].filter((k) => expectedInherited[k] !== inherited[k]);
  if (diff.length > 0) problems.push(`inherited env differs in ${diff.map((k) => `${k}=${JSON.stringify(inherited[k])} (want ${JSON.stringify(expectedInherited[k])})`).join(', ')}`);
  const sock = await contextOver(d.port('sock'));
  const port = String(d.port('sock'));
  const client = String(sock.localPort);
  const expectedSock = {
    A: '1',
    PROTO: 'tcp',
    SOCKTYPE: 'stream',
    LOCALIP: '127.0.0.1',
    LOCALPORT: port,
    REMOTEIP: '127.0.0.1',
    REMOTEPORT: client,
    TCPLOCALIP: '127.0.0.1',
    TCPLOCALPORT: port,
    TCPREMOTEIP: '127.0.0.1',
    TCPREMOTEPORT: client,
  };
  const sorted = (o: Readonly<Record<string, string>>): string => JSON.stringify(Object.fromEntries(Object.entries(o).sort()));
  if (sorted(sock.context.env) !== sorted(expectedSock)) problems.push(`sockenv: ${sorted(sock.context.env)}, want ${sorted(expectedSock)}`);

  record(t, {
    scenario: 'privilege-children',
    figures: { 'nobody Uid/Gid/Groups': `${uid.split(/\s+/)[0]}/${gid.split(/\s+/)[0]}/${groups || '(none)'}`, 'files a shell would have made': touched.length, 'clean env vars': Object.keys(clean).length, 'sockenv vars': Object.keys(sock.context.env).length, problems: problems.length },
    condition: 'no root uid/gid/group, no shell without flags shell, env exactly as configured',
    pass: problems.length === 0,
  });
  assert.deepEqual(problems, []);
});
