// The real tpiesctl (`node --import tsx src/bin/tpiesctl.ts`, a separate process) against a
// real daemon started in-process with its control server on a unix socket in the temp dir:
// every command, its output and exit code, plus the failure modes an operator meets (daemon
// not running, stale socket, permission denied, unknown tag, broken config on reload).
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { accessSync, chmodSync, constants, statSync } from 'node:fs';
import { join } from 'node:path';
import { type TestContext, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { SocketAddress } from '../../src/config/model.js';
import { type ControlServer, controlAclsOf, daemonControlOptions, startControlServer } from '../../src/control/server.js';
import { type Logger, createMemoryLogger } from '../../src/log/logger.js';
import { type TestDaemon, startTestDaemon, waitFor } from '../helpers/daemon.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CTL = join(ROOT, 'src/bin/tpiesctl.ts');

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

// Run tpiesctl; `as` runs it through setpriv as another user.
function tpiesctl(args: readonly string[], options: { as?: readonly string[] } = {}): Promise<Run> {
  const node = [process.execPath, '--import', 'tsx', CTL, ...args];
  const [file, ...rest] = options.as ? [...options.as, ...node] : node;
  return new Promise((resolve, reject) => {
    execFile(file!, rest, { cwd: ROOT, timeout: 30_000, env: { ...process.env, NO_COLOR: '1' } }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') {
        reject(error);
        return;
      }
      resolve({ code: error ? Number(error.code) : 0, stdout, stderr });
    });
  });
}

// The fixture config: a respawn component, an inetd echo with an ACL, a TCPMUX master and a
// subordinate. Line numbers matter to the acl test below.
const CONFIG = `component web { command "{{bin}}/forever.js"; }
component echo {
  mode inetd;
  socket inet://127.0.0.1:0;
  flags internal;
  service echo;
  acl {
    allow from 127.0.0.1;
    deny any;
  }
}
component tcpmux { socket inet://127.0.0.1:0; service tcpmux; flags internal; }
component helper { tcpmux-master tcpmux; service helper; flags tcpmuxplus; command /bin/cat; }
`;

interface Setup extends TestDaemon {
  readonly control: ControlServer;
  readonly socket: string;
  /** tpiesctl --socket SOCKET ARGS… */
  ctl(...args: string[]): Promise<Run>;
}

async function setup(t: TestContext, config = CONFIG): Promise<Setup> {
  const td = await startTestDaemon(t, config);
  const socket = join(td.dir, 'tpies.ctl');
  const address: SocketAddress = { kind: 'unix', path: socket, url: `unix://${socket}` };
  const control = await startControlServer(td.daemon, { socket: address, acls: () => controlAclsOf(td.daemon.config), log: quiet() });
  t.after(() => control.close());
  return { ...td, control, socket, ctl: (...args) => tpiesctl(['--socket', socket, ...args]) };
}

const quiet = (): Logger => createMemoryLogger('warn').log;

const pidOf = (td: TestDaemon, tag: string): number | undefined => td.daemon.components().find((c) => c.tag === tag)?.pid;
const stateOf = (td: TestDaemon, tag: string): string | undefined => td.daemon.components().find((c) => c.tag === tag)?.state;

async function running(td: TestDaemon, tag = 'web'): Promise<number> {
  await waitFor(() => stateOf(td, tag) === 'running', 5000, `${tag} running`);
  return pidOf(td, tag)!;
}

describe('tpiesctl against a running daemon', { concurrency: 4 }, () => {
  test('the control socket is a socket with mode 0600', async (t) => {
    const s = await setup(t);
    const st = statSync(s.socket);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o600);
  });

  test('list: a table of every component; --json parses', async (t) => {
    const s = await setup(t);
    const pid = await running(s);
    const r = await s.ctl('list');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    const lines = r.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^TAG +MODE +STATE +PID +UPTIME +RESTARTS +SOCKET\/SERVICE$/);
    assert.match(lines[1]!, new RegExp(`^web +respawn +running +${pid} +\\d+s +0 +-$`));
    assert.match(lines[2]!, /^echo +inetd +listening +- +\d+s +0 +\S+$/);
    assert.match(lines[4]!, /^helper +inetd +listening +- +\d+s +0 +service helper via tcpmux$/);
    assert.equal(lines.length, 5);

    const j = await s.ctl('list', '--json');
    assert.equal(j.code, 0);
    const list = JSON.parse(j.stdout) as { tag: string; state: string; pid?: number; type: string }[];
    assert.deepEqual(
      list.map((p) => p.tag),
      ['web', 'echo', 'tcpmux', 'helper'],
    );
    assert.equal(list[0]!.pid, pid);
    assert.equal(list[0]!.type, 'component');
  });

  test('status TAG: details, exit 0 when running; unknown tag: exit 1 and one line', async (t) => {
    const s = await setup(t);
    const pid = await running(s);
    const r = await s.ctl('status', 'web');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^tag: web\nmode: respawn\nstate: running\npid: ${pid}\nsince: \\S+ \\(\\d+s ago\\)\nrestarts: 0\n$`));
    const json = await s.ctl('status', 'echo', '--json');
    assert.equal(json.code, 0);
    assert.equal((JSON.parse(json.stdout) as { state: string }).state, 'listening');

    const unknown = await s.ctl('status', 'nosuch');
    assert.equal(unknown.code, 1);
    assert.equal(unknown.stdout, '');
    assert.equal(unknown.stderr, 'tpiesctl: no component "nosuch"\n');
  });

  test('stop, start and restart; status of a stopped component exits 1', async (t) => {
    const s = await setup(t);
    const pid = await running(s);
    const stop = await s.ctl('stop', 'web');
    assert.equal(stop.code, 0, stop.stderr);
    assert.equal(stop.stdout, 'stopped web (state: stopped)\n');
    assert.equal(stateOf(s, 'web'), 'stopped');
    const status = await s.ctl('status', 'web');
    assert.equal(status.code, 1);
    assert.match(status.stdout, /^state: stopped$/m);

    const start = await s.ctl('start', 'web');
    assert.equal(start.code, 0, start.stderr);
    assert.match(start.stdout, /^started web \(state: (starting|running)\)\n$/);
    const second = await running(s);
    assert.notEqual(second, pid);

    const restart = await s.ctl('restart', 'web');
    assert.equal(restart.code, 0, restart.stderr);
    assert.match(restart.stdout, /^restarted web \(state: (starting|running)\)\n$/);
    await waitFor(() => pidOf(s, 'web') !== undefined && pidOf(s, 'web') !== second, 5000, 'a new pid');
  });

  test('stop/start of an inetd listener; several tags with one unknown: the rest still run, exit 1', async (t) => {
    const s = await setup(t);
    const stop = await s.ctl('stop', 'echo');
    assert.equal(stop.code, 0, stop.stderr);
    assert.equal(stateOf(s, 'echo'), 'stopped');
    const start = await s.ctl('start', 'nosuch', 'echo');
    assert.equal(start.code, 1);
    assert.equal(start.stderr, 'tpiesctl: no component "nosuch"\n');
    assert.equal(start.stdout, 'started echo (state: listening)\n');
    assert.equal(stateOf(s, 'echo'), 'listening');
  });

  test('a TCPMUX subordinate cannot be stopped by itself: exit 1, one line', async (t) => {
    const s = await setup(t);
    const r = await s.ctl('stop', 'helper');
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'tpiesctl: cannot stop "helper": it is a TCPMUX subordinate of "tcpmux", with no process or socket of its own (stop "tcpmux" instead)\n');
  });

  test('reload --dry-run prints the plan and changes nothing; reload applies it', async (t) => {
    const s = await setup(t);
    const pid = await running(s);
    await s.writeConfig(
      CONFIG.replace('"{{bin}}/forever.js"', '"{{bin}}/forever.js {{dir}}/stamp"')
        .replace(/component echo \{[^]*?\n\}\n/, '')
        .concat('component extra { command "{{bin}}/forever.js"; }\n'),
    );
    const dry = await s.ctl('reload', '--dry-run');
    assert.equal(dry.code, 0, dry.stderr);
    assert.equal(dry.stdout, ['restart web: command', 'keep    tcpmux: unchanged', 'keep    helper: unchanged', 'start   extra: new', 'stop    echo: removed', ''].join('\n'));
    assert.equal(dry.stderr, '');
    assert.equal(pidOf(s, 'web'), pid, 'dry run leaves web alone');
    assert.ok(s.daemon.components().some((c) => c.tag === 'echo'));

    const json = await s.ctl('reload', '--dry-run', '--json');
    assert.deepEqual((JSON.parse(json.stdout) as { plan: unknown[] }).plan[0], { tag: 'web', action: 'restart', reasons: ['command'] });

    const real = await s.ctl('reload');
    assert.equal(real.code, 0, real.stderr);
    assert.equal(real.stdout, dry.stdout);
    assert.deepEqual(
      s.daemon.components().map((c) => c.tag),
      ['web', 'tcpmux', 'helper', 'extra'],
    );
    await waitFor(() => pidOf(s, 'web') !== undefined && pidOf(s, 'web') !== pid, 5000, 'web restarted');
  });

  test('reload and config check with a broken config: diagnostics, exit 78, daemon unchanged', async (t) => {
    const s = await setup(t);
    const pid = await running(s);
    const ok = await s.ctl('config', 'check');
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, `${s.configFile}: configuration is valid\n`);

    await s.writeConfig(`${CONFIG}component broken { comand "/bin/true"; }\n`);
    const check = await s.ctl('config', 'check');
    assert.equal(check.code, 78);
    assert.equal(check.stdout, '');
    assert.match(check.stderr, /unknown statement "comand"/);
    assert.match(check.stderr, new RegExp(`${s.configFile.replaceAll('.', '\\.')}:14:20: error: unknown statement "comand"`));
    assert.match(check.stderr, /\ntpiesctl: \S+: the configuration has errors\n$/);

    for (const args of [['reload'], ['reload', '--dry-run']]) {
      const r = await s.ctl(...args);
      assert.equal(r.code, 78, args.join(' '));
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /unknown statement "comand"/);
      assert.match(r.stderr, /\ntpiesctl: the configuration has errors; (nothing was changed|a reload would change nothing)\n$/);
    }
    assert.equal(pidOf(s, 'web'), pid);
    assert.deepEqual(
      s.daemon.components().map((c) => c.tag),
      ['web', 'echo', 'tcpmux', 'helper'],
    );
  });

  test('acl test: each level with the rule that decided; exit 0 allow, 1 deny', async (t) => {
    const s = await setup(t);
    const allow = await s.ctl('acl', 'test', '127.0.0.1', 'echo');
    assert.equal(allow.code, 0, allow.stderr);
    assert.equal(allow.stdout, `global: no ACL: allowed\ncomponent "echo": allow by ${s.configFile}:8:5\nallow 127.0.0.1 for echo\n`);

    const deny = await s.ctl('acl', 'test', '10.0.0.1', 'echo');
    assert.equal(deny.code, 1);
    assert.equal(deny.stdout, `global: no ACL: allowed\ncomponent "echo": deny by ${s.configFile}:9:5\ndeny 10.0.0.1 for echo\n`);

    const service = await s.ctl('acl', 'test', '::1', 'HELPER');
    assert.equal(service.code, 0);
    assert.match(service.stdout, /^global: no ACL: allowed\ncomponent "tcpmux": no ACL: allowed\ncomponent "helper": no ACL: allowed\nallow ::1 for HELPER\n$/);

    const json = await s.ctl('acl', 'test', '10.0.0.1', 'echo', '--json');
    assert.equal(json.code, 1);
    assert.equal((JSON.parse(json.stdout) as { decision: string }).decision, 'deny');

    const bad = await s.ctl('acl', 'test', 'not-an-ip');
    assert.equal(bad.code, 64);
    assert.equal(bad.stderr, 'tpiesctl: "not-an-ip" is not an IP address (see tpiesctl --help)\n');
    const unknown = await s.ctl('acl', 'test', '1.2.3.4', 'nosuch');
    assert.equal(unknown.code, 1);
    assert.equal(unknown.stderr, 'tpiesctl: no component or TCPMUX service named "nosuch"\n');
  });

  test('id and info: the daemon; id KEY: just that key', async (t) => {
    const s = await setup(t);
    const r = await s.ctl('id');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^package: tpies\nversion: \\S+\npid: ${process.pid}\nconfig: ${s.configFile.replaceAll('.', '\\.')}\nstarted: \\S+ \\(up \\d+s\\)\nargv: .+\n$`));
    const pid = await s.ctl('info', 'pid');
    assert.equal(pid.stdout, `pid: ${process.pid}\n`);
    const json = await s.ctl('id', 'version', 'pid', '--json');
    assert.deepEqual(Object.keys(JSON.parse(json.stdout) as object), ['version', 'pid']);
    const bad = await s.ctl('id', 'colour');
    assert.equal(bad.code, 64);
  });

  test('shutdown: replies, then the daemon stops', async (t) => {
    const s = await setup(t);
    await running(s);
    const r = await s.ctl('shutdown');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `tpies (pid ${process.pid}) is shutting down\n`);
    await Promise.race([s.daemon.stopped, new Promise((_, reject) => setTimeout(() => reject(new Error('daemon did not stop')), 10_000))]);
    assert.equal(stateOf(s, 'web'), 'stopped');
  });

  test('-c CONFIG finds the socket in the control statement', async (t) => {
    const td = await startTestDaemon(t, `${CONFIG}control { socket "unix://{{dir}}/from-config.ctl"; }\n`);
    const control = await startControlServer(td.daemon, daemonControlOptions(td.daemon, quiet()));
    t.after(() => control.close());
    assert.equal(control.path, join(td.dir, 'from-config.ctl'));
    const r = await tpiesctl(['-c', td.configFile, 'status', 'echo']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^state: listening$/m);
  });

  test('an inet control socket: --socket URL; admin-acl refuses stop with exit 77', async (t) => {
    const td = await startTestDaemon(t, `${CONFIG}control { socket inet://127.0.0.1:0; acl { allow from 127.0.0.1; } admin-acl { deny any; } }\n`);
    const control = await startControlServer(td.daemon, daemonControlOptions(td.daemon, quiet()));
    t.after(() => control.close());
    const url = `inet://127.0.0.1:${control.port}`;
    const list = await tpiesctl(['--socket', url, 'list']);
    assert.equal(list.code, 0, list.stderr);
    const stop = await tpiesctl(['--socket', url, 'stop', 'web']);
    assert.equal(stop.code, 77);
    assert.equal(stop.stderr, 'tpiesctl: DELETE /programs/web: this client may not change anything (control admin-acl)\n');
    assert.notEqual(stateOf(td, 'web'), 'stopped');
  });
});

describe('tpiesctl when it cannot talk to tpies', { concurrency: 4 }, () => {
  test('no socket file: exit 69, one line', async () => {
    const r = await tpiesctl(['--socket', '/nonexistent/tpies.ctl', 'list']);
    assert.equal(r.code, 69);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, 'tpiesctl: cannot connect to /nonexistent/tpies.ctl: no such file (is tpies running?)\n');
  });

  test('a stale socket nobody answers on: exit 69, one line', async (t) => {
    const s = await setup(t);
    const stale = join(s.dir, 'stale.ctl');
    spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    const r = await tpiesctl(['--socket', stale, 'status', 'web']);
    assert.equal(r.code, 69);
    assert.equal(r.stderr, `tpiesctl: cannot connect to ${stale}: connection refused (is tpies running?)\n`);
  });

  test('permission denied on the 0600 socket for another user: exit 77, one line', async (t) => {
    if (process.getuid?.() !== 0) return t.skip('needs root to run tpiesctl as nobody');
    if (spawnSync('setpriv', ['--version']).status !== 0) return t.skip('setpriv is not installed');
    try {
      accessSync(CTL, constants.R_OK);
    } catch {
      return t.skip('the checkout is not readable');
    }
    const s = await setup(t);
    // Only the socket's own mode may stop nobody, not the temp dir's.
    chmodSync(s.dir, 0o755);
    const r = await tpiesctl(['--socket', s.socket, 'list'], { as: ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups'] });
    assert.equal(r.code, 77, r.stderr);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, `tpiesctl: cannot connect to ${s.socket}: permission denied (the socket is mode 0600, owned by uid 0: run tpiesctl as that user)\n`);
  });

  test('usage errors: exit 64, one line', async () => {
    const cases: [string[], RegExp][] = [
      [[], /^tpiesctl: no command given \(see tpiesctl --help\)\n$/],
      [['frobnicate'], /^tpiesctl: unknown command "frobnicate"/],
      [['status'], /^tpiesctl: status takes one component tag/],
      [['start'], /^tpiesctl: start needs at least one component tag/],
      [['list', '--dry-run'], /^tpiesctl: list has no --dry-run option/],
      [['config'], /^tpiesctl: the config command is: tpiesctl config check/],
      [['--bogus', 'list'], /^tpiesctl: Unknown option '--bogus'/],
      [['--timeout', '0', 'list'], /^tpiesctl: --timeout 0: give a positive number of seconds/],
      [['--socket', 'udp://x', 'list'], /^tpiesctl: --socket udp:\/\/x: /],
    ];
    for (const [args, stderr] of cases) {
      const r = await tpiesctl(args);
      assert.equal(r.code, 64, args.join(' '));
      assert.match(r.stderr, stderr, args.join(' '));
      assert.equal(r.stderr.split('\n').length, 2, `one line: ${r.stderr}`);
    }
  });

  test('--help and --version', async () => {
    const help = await tpiesctl(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^usage: tpiesctl /);
    assert.match(help.stdout, /reload \[--dry-run\]/);
    const version = await tpiesctl(['--version']);
    assert.match(version.stdout, /^tpiesctl \S+\n$/);
  });
});
