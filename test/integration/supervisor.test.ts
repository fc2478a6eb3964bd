// Supervisor core through the in-process daemon with real child processes (issue "Supervisor
// core"): respawn, throttling into sleeping and back, precious, return-code actions,
// SIGTERM→SIGKILL escalation, startup/shutdown components, dependency order, what a child
// sees (user, umask, limits, chdir, env), output routing, spawn failures, `flags disable`,
// reload, and that no process (not even a grandchild) survives daemon.stop().
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { type TestContext, test } from 'node:test';
import type { LogEntry } from '../../src/log/logger.js';
import type { ComponentStatus } from '../../src/supervisor/supervisor.js';
import { type TestDaemon, alive, startTestDaemon, waitFor } from '../helpers/daemon.js';

// Every test is bounded: the slowest needs about 2 s.
const TIMEOUT = { timeout: 20_000 };
// A command that needs no PATH (for components whose env has none).
const NODE = process.execPath;


interface Harness extends TestDaemon {
  status(tag: string): ComponentStatus | undefined;
  pid(tag: string): number | undefined;
  /** Log entries of `tag`, optionally only those with message `msg`. */
  entries(tag: string, msg?: string): LogEntry[];
  /** Index of the first log entry matching, -1 if none. */
  indexOf(tag: string, msg: string): number;
  /** Another pid the test must see gone at the end (a grandchild). */
  track(pid: number): void;
  /** Every child pid seen so far: from the log, plus tracked ones. */
  pids(): number[];
  /** daemon.stop(), then assert that no process the daemon started is left. */
  stopClean(): Promise<void>;
}

// Resolves true if `promise` settles within `ms`, false otherwise; leaves no timer behind.
async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([promise.then(() => true as const), late]);
  } finally {
    clearTimeout(timer);
  }
}

// startTestDaemon plus bookkeeping, so that a failing test leaves nothing behind. Hooks run
// in registration order, so ours runs before the helper's own stop: it stops the daemon
// (bounded), and should the stop hang (a bug) or anything survive it, kills each process the
// daemon started together with its process group.
async function start(t: TestContext, config: string): Promise<Harness> {
  let td: TestDaemon | undefined;
  const extra = new Set<number>();
  const pids = (): number[] => {
    const seen = new Set(extra);
    for (const e of td?.logs ?? []) if (typeof e['childPid'] === 'number') seen.add(e['childPid']);
    return [...seen];
  };
  const killLeftovers = (): void => {
    for (const pid of pids()) {
      if (!alive(pid)) continue;
      for (const target of [-pid, pid]) {
        try {
          process.kill(target, 'SIGKILL');
        } catch {
          // Not a group leader, or gone meanwhile.
        }
      }
    }
  };
  t.after(async () => {
    if (!td) return;
    const stopped = td.daemon.stop();
    if (!(await within(stopped, 8000))) killLeftovers();
    await within(stopped, 5000);
    killLeftovers();
  });
  td = await startTestDaemon(t, config);
  const d = td;
  const entries = (tag: string, msg?: string): LogEntry[] => d.logs.filter((e) => e['component'] === tag && (msg === undefined || e.msg === msg));
  return {
    ...d,
    status: (tag) => d.daemon.status().find((s) => s.tag === tag),
    pid: (tag) => d.daemon.status().find((s) => s.tag === tag)?.pid,
    entries,
    indexOf: (tag, msg) => d.logs.findIndex((e) => e['component'] === tag && e.msg === msg),
    track: (pid) => void extra.add(pid),
    pids,
    async stopClean() {
      await d.daemon.stop();
      // A process killed by the group signal may take a moment to die.
      await waitFor(() => pids().every((pid) => !alive(pid)), 2000, 'every child gone after stop').catch(() => undefined);
      assert.deepEqual(
        pids().filter((pid) => alive(pid)),
        [],
        'processes left after stop',
      );
    },
  };
}

function waitState(h: Harness, tag: string, state: ComponentStatus['state'], timeoutMs = 5000): Promise<void> {
  return waitFor(() => h.status(tag)?.state === state, timeoutMs, `${tag} ${state} (now ${h.status(tag)?.state})`);
}

function lines(file: string): string[] {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
}

// "label ms pid" lines written by forever.js and stamp.js.
function stamps(file: string): { label: string; ms: number; pid: number }[] {
  return lines(file).map((l) => {
    const [label = '', ms = '', pid = ''] = l.split(' ');
    return { label, ms: Number(ms), pid: Number(pid) };
  });
}

// A negative claim ("it did not restart") needs some time to pass; this is the only fixed
// wait, kept short.
const settle = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

test('a respawn component that crashes is started again with a new pid', TIMEOUT, async (t) => {
  const h = await start(
    t,
    `component worker { command "{{bin}}/forever.js"; }
     component crasher { command "{{bin}}/crash-after.js 100 3"; respawn { initial-delay 0.05; factor 1; } }`,
  );
  await waitState(h, 'worker', 'running');
  const first = h.pid('worker')!;
  assert.ok(alive(first));

  process.kill(first, 'SIGKILL');
  await waitFor(() => h.status('worker')?.state === 'running' && h.pid('worker') !== first, 5000, 'worker respawned');
  const second = h.pid('worker')!;
  assert.notEqual(second, first);
  assert.ok(alive(second));
  assert.ok(!alive(first), 'the crashed process is reaped');
  assert.equal(h.status('worker')?.restarts, 1);
  const exited = h.entries('worker', 'component exited');
  assert.equal(exited.length, 1);
  assert.equal(exited[0]?.['signal'], 'SIGKILL');
  assert.equal(exited[0]?.['childPid'], first);
  assert.deepEqual(
    h.entries('worker', 'component started').map((e) => e['childPid']),
    [first, second],
  );

  // One that exits by itself is restarted too, each time as a new process.
  await waitFor(() => h.entries('crasher', 'component exited').length >= 2, 5000, 'crasher exited twice');
  const crashes = h.entries('crasher', 'component exited').slice(0, 2);
  assert.deepEqual(
    crashes.map((e) => [e.level, e['exitCode']]),
    [
      ['warn', 3],
      ['warn', 3],
    ],
  );
  assert.notEqual(crashes[0]?.['childPid'], crashes[1]?.['childPid']);
  await h.stopClean();
});

test('a crash loop is throttled into sleeping and recovers by itself after the sleep', TIMEOUT, async (t) => {
  // Fails its first 3 starts, then runs: limit 3 within the window puts it to sleep for 1 s.
  const h = await start(
    t,
    `component flaky {
      command "{{bin}}/crash-until.js {{dir}}/starts 3";
      respawn { initial-delay 0; window 10; limit 3; sleep 1; }
    }`,
  );
  const starts = path.join(h.dir, 'starts');
  await waitState(h, 'flaky', 'sleeping');
  const asleep = h.status('flaky')!;
  assert.equal(asleep.pid, undefined, 'no process while sleeping');
  assert.equal(asleep.wakeAt! - asleep.since, 1000);
  assert.equal(lines(starts).length, 3);
  assert.equal(asleep.lastExit?.exitCode, 1);
  const throttled = h.entries('flaky', 'respawn throttled');
  assert.equal(throttled.length, 1);
  assert.equal(throttled[0]?.['sleepMs'], 1000);
  assert.equal(throttled[0]?.['starts'], 3);

  // Nothing starts during the sleep, and after it the component comes back on its own.
  await waitFor(
    () => {
      const state = h.status('flaky')?.state;
      if (state === 'sleeping') assert.equal(lines(starts).length, 3, 'no start while sleeping');
      return state === 'running';
    },
    5000,
    'flaky running again',
  );
  const back = h.status('flaky')!;
  assert.ok(back.since >= asleep.wakeAt! - 5, `started ${asleep.wakeAt! - back.since} ms before the sleep ended`);
  assert.equal(h.entries('flaky', 'component woke').length, 1);
  await waitFor(() => lines(starts).length === 4, 5000, 'fourth start recorded');
  const pid = h.pid('flaky')!;
  assert.equal(Number(lines(starts)[3]), pid);
  assert.ok(alive(pid));
  await h.stopClean();
});

test('a precious component is never put to sleep; the same crash loop without it is', TIMEOUT, async (t) => {
  // The twin sleeps long enough not to wake while the precious one loops.
  const h = await start(
    t,
    `component precious { command "{{bin}}/exit-with.js 1"; flags precious; respawn { initial-delay 0; window 10; limit 3; sleep 1; } }
     component ordinary { command "{{bin}}/exit-with.js 1"; respawn { initial-delay 0; window 10; limit 3; sleep 60; } }`,
  );
  const seen = new Set<string>();
  await waitFor(
    () => {
      seen.add(h.status('precious')?.state ?? 'none');
      return (h.status('precious')?.restarts ?? 0) >= 7;
    },
    10_000,
    'precious restarted 7 times (more than twice the limit)',
  );
  assert.ok(!seen.has('sleeping'), `states seen: ${[...seen].join(', ')}`);
  assert.deepEqual(h.entries('precious', 'respawn throttled'), []);
  await waitState(h, 'ordinary', 'sleeping');
  assert.equal(h.entries('ordinary', 'respawn throttled').length, 1);
  assert.equal(h.entries('ordinary', 'component started').length, 3);
  await h.stopClean();
});

test('return-code EX_USAGE { action disable; exec … }: disabled, not restarted, exec sees PIES_*', TIMEOUT, async (t) => {
  const h = await start(
    t,
    `component broken {
      command "{{bin}}/exit-with.js 64 100";
      respawn { initial-delay 0; }
      return-code EX_USAGE {
        action disable;
        exec "env > {{dir}}/exec.tmp && mv {{dir}}/exec.tmp {{dir}}/exec.env";
      }
    }`,
  );
  await waitState(h, 'broken', 'disabled');
  const [started] = h.entries('broken', 'component started');
  const pid = started?.['childPid'];
  assert.equal(typeof pid, 'number');
  assert.equal(h.status('broken')?.lastExit?.exitCode, 64);
  assert.equal(h.status('broken')?.pid, undefined);
  const disabled = h.entries('broken', 'component disabled');
  assert.equal(disabled.length, 1);
  assert.equal(disabled[0]?.['exitCode'], 64);

  const execEnv = path.join(h.dir, 'exec.env');
  await waitFor(() => existsSync(execEnv), 5000, 'exit action wrote its env');
  const env = Object.fromEntries(lines(execEnv).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  assert.equal(env['PIES_COMPONENT'], 'broken');
  assert.equal(env['PIES_STATUS'], '64');
  assert.equal(env['PIES_PID'], String(pid));
  assert.equal(env['PIES_SIGNAL'], undefined);
  assert.equal(env['PIES_MASTER_PID'], String(process.pid));

  // With initial-delay 0 a restart would have happened at once.
  await settle(300);
  assert.equal(h.status('broken')?.state, 'disabled');
  assert.equal(h.entries('broken', 'component started').length, 1);
  await h.stopClean();
});

test('return-code SIGTERM { action disable; }: a child killed by SIGTERM is not restarted', TIMEOUT, async (t) => {
  const h = await start(
    t,
    `component victim {
      command "{{bin}}/forever.js";
      respawn { initial-delay 0; }
      return-code SIGTERM { action disable; }
    }
    component bystander { command "{{bin}}/forever.js"; respawn { initial-delay 0; } return-code SIGTERM { action disable; } }`,
  );
  await waitState(h, 'victim', 'running');
  await waitState(h, 'bystander', 'running');
  const victim = h.pid('victim')!;
  const bystander = h.pid('bystander')!;
  process.kill(victim, 'SIGTERM');
  await waitState(h, 'victim', 'disabled');
  assert.equal(h.status('victim')?.lastExit?.signal, 'SIGTERM');
  // A different signal does not match: restarted as usual.
  process.kill(bystander, 'SIGKILL');
  await waitFor(() => h.status('bystander')?.state === 'running' && h.pid('bystander') !== bystander, 5000, 'bystander respawned');

  await settle(300);
  assert.equal(h.status('victim')?.state, 'disabled');
  assert.equal(h.entries('victim', 'component started').length, 1);
  assert.ok(!alive(victim));
  await h.stopClean();
});

test('stop escalates SIGTERM to SIGKILL after shutdown-timeout', TIMEOUT, async (t) => {
  const h = await start(t, `component stubborn { command "{{bin}}/ignore-term.js"; shutdown-timeout 1; }`);
  await waitFor(() => h.entries('stubborn').some((e) => e.msg === 'ready' && e['stream'] === 'stdout'), 5000, 'SIGTERM handler installed');
  const pid = h.pid('stubborn')!;

  const t0 = Date.now();
  await h.daemon.stop();
  const took = Date.now() - t0;
  assert.ok(took >= 950 && took < 3000, `stop took ${took} ms`);
  assert.ok(!alive(pid), 'the process is gone');
  const killed = h.entries('stubborn', 'component killed');
  assert.equal(killed.length, 1);
  assert.equal(killed[0]?.['signal'], 'SIGKILL');
  assert.equal(killed[0]?.['childPid'], pid);
  assert.equal(h.status('stubborn')?.lastExit?.signal, 'SIGKILL');
  await h.stopClean();
});

test('startup components finish before any other component starts', TIMEOUT, async (t) => {
  const h = await start(
    t,
    `component app { command "{{bin}}/forever.js {{dir}}/app"; }
     component prepare { mode startup; command "{{bin}}/stamp.js {{dir}}/prepare 300 prepared"; }`,
  );
  await waitFor(() => lines(path.join(h.dir, 'app')).length === 1, 5000, 'app started');
  const [prepared] = stamps(path.join(h.dir, 'prepare'));
  const [app] = stamps(path.join(h.dir, 'app'));
  assert.equal(prepared?.label, 'prepared');
  assert.equal(app?.label, 'start');
  assert.ok(app!.ms >= prepared!.ms, `app started ${prepared!.ms - app!.ms} ms before prepare finished`);
  // The log tells the same story: prepare exits before app is spawned.
  const exitedAt = h.indexOf('prepare', 'component exited');
  assert.ok(exitedAt >= 0 && exitedAt < h.indexOf('app', 'component started'));
  assert.equal(h.status('prepare')?.state, 'finished');
  assert.equal(h.status('prepare')?.lastExit?.exitCode, 0);
  await h.stopClean();
});

test('shutdown components run at stop, after the other components have stopped', TIMEOUT, async (t) => {
  const h = await start(
    t,
    `component worker { command "{{bin}}/forever.js {{dir}}/stamps"; }
     component cleanup { mode shutdown; command "{{bin}}/stamp.js {{dir}}/stamps 0 shutdown"; }`,
  );
  const file = path.join(h.dir, 'stamps');
  await waitFor(() => lines(file).length === 1, 5000, 'worker started');
  assert.notEqual(h.status('cleanup')?.state, 'running');
  assert.equal(h.entries('cleanup', 'component started').length, 0, 'not run at startup');

  await h.daemon.stop();
  // stop() resolved only after the shutdown component finished.
  assert.deepEqual(
    stamps(file).map((s) => s.label),
    ['start', 'stop', 'shutdown'],
  );
  assert.equal(h.status('cleanup')?.state, 'finished');
  assert.ok(h.indexOf('worker', 'component stopped') < h.indexOf('cleanup', 'component started'));
  await h.stopClean();
});

test('prerequisites and dependents: start in dependency order, stop in reverse', TIMEOUT, async (t) => {
  // Config order is deliberately the wrong way round.
  const h = await start(
    t,
    `component web { command "{{bin}}/forever.js"; prerequisites cache; }
     component cache { command "{{bin}}/forever.js"; }
     component db { command "{{bin}}/forever.js"; dependents web; }
     component solo { command "{{bin}}/forever.js"; }`,
  );
  for (const tag of ['web', 'cache', 'db', 'solo']) await waitState(h, tag, 'running');
  const web = h.indexOf('web', 'component started');
  assert.ok(h.indexOf('cache', 'component started') < web, 'cache (prerequisites) before web');
  assert.ok(h.indexOf('db', 'component started') < web, 'db (dependents web) before web');

  await h.daemon.stop();
  const webStopped = h.indexOf('web', 'component stopped');
  assert.ok(webStopped >= 0);
  for (const prerequisite of ['cache', 'db']) {
    const stopping = h.indexOf(prerequisite, 'component stopping');
    assert.ok(stopping > webStopped, `${prerequisite} told to stop only after web had stopped`);
  }
  await h.stopClean();
});

test('user, umask, limits and chdir are what the child sees', TIMEOUT, async (t) => {
  const h = await start(
    t,
    `component ctx {
      mode startup;
      command "{{bin}}/print-context.js";
      user nobody;
      umask 027;
      limits N64;
      chdir {{dir}};
      stdout file {{dir}}/ctx.json;
    }`,
  );
  // startup components have finished when startDaemon returns.
  const ctx = JSON.parse(readFileSync(path.join(h.dir, 'ctx.json'), 'utf8')) as {
    pid: number;
    uid: number;
    gid: number;
    groups: number[];
    umask: string;
    cwd: string;
    limits: Record<string, { soft: string; hard: string }>;
  };
  assert.equal(ctx.uid, 65534);
  assert.equal(ctx.gid, 65534);
  assert.deepEqual(ctx.groups, [65534]);
  assert.equal(ctx.umask, '0027');
  assert.equal(ctx.cwd, h.dir);
  assert.deepEqual(ctx.limits['Max open files'], { soft: '64', hard: '64', units: 'files' });
  // The exec chain (prlimit, setpriv, sh) execs in place: the pid tpies reports is the program's.
  assert.equal(ctx.pid, h.entries('ctx', 'component started')[0]?.['childPid']);
  assert.equal(h.status('ctx')?.lastExit?.exitCode, 0);
  await h.stopClean();
});

test('env set/unset/clear/keep, layered over the top-level env', TIMEOUT, async (t) => {
  const print = (tag: string, env: string): string =>
    `component ${tag} { mode startup; command "${NODE} {{bin}}/print-context.js"; stdout file {{dir}}/${tag}.json; env { ${env} } }`;
  const h = await start(
    t,
    `env { set "GLOBAL=g"; set "DROP_ME=x"; set "DROP_TOO=y"; }
     ${print('ops', 'set "A=1"; set "B=${A}2"; unset "DROP_*";')}
     ${print('cleared', 'clear; set "ONLY=1";')}
     ${print('kept', 'keep PATH; keep "GLOBAL=g"; keep "DROP_ME=nope"; set "K=v";')}`,
  );
  const envOf = (tag: string): Record<string, string> =>
    (JSON.parse(readFileSync(path.join(h.dir, `${tag}.json`), 'utf8')) as { env: Record<string, string> }).env;

  assert.deepEqual(envOf('ops'), { PATH: process.env.PATH ?? '/usr/bin:/bin', GLOBAL: 'g', A: '1', B: '12' });
  assert.deepEqual(envOf('cleared'), { ONLY: '1' });
  assert.deepEqual(envOf('kept'), { PATH: process.env.PATH ?? '/usr/bin:/bin', GLOBAL: 'g', K: 'v' });
  await h.stopClean();
});

test('stdout file appends, across restarts too', TIMEOUT, async (t) => {
  const out = 'out.log';
  const h = await start(
    t,
    `component chatty {
      command "{{bin}}/write-lines.js out:line-%p";
      stdout file {{dir}}/${out};
      respawn { initial-delay 0.05; factor 1; }
    }`,
  );
  const file = path.join(h.dir, out);
  await waitFor(() => lines(file).length >= 3, 5000, 'three runs wrote their line');
  const pids = h.entries('chatty', 'component started').map((e) => e['childPid']);
  const written = lines(file);
  assert.deepEqual(
    written.slice(0, 3),
    pids.slice(0, 3).map((p) => `line-${String(p)}`),
  );
  assert.equal(new Set(written).size, written.length, 'one line per process, none overwritten');
  // Redirected output does not pass through the log.
  assert.equal(
    h.logs.some((e) => e.msg.startsWith('line-')),
    false,
  );
  await h.stopClean();
});

test('stdout file appends to what is already there', TIMEOUT, async (t) => {
  const h = await start(t, `component once { mode startup; command "{{bin}}/write-lines.js out:second"; stdout file {{dir}}/kept.log; }`);
  // The startup component ran once; put a line before its output and run it again.
  assert.deepEqual(lines(path.join(h.dir, 'kept.log')), ['second']);
  writeFileSync(path.join(h.dir, 'kept.log'), 'first\nsecond\n');
  assert.ok(h.daemon.supervisor.startComponent('once'));
  await waitFor(() => lines(path.join(h.dir, 'kept.log')).length === 3, 5000, 'second run appended');
  assert.deepEqual(lines(path.join(h.dir, 'kept.log')), ['first', 'second', 'second']);
  await h.stopClean();
});

test('output not redirected to a file is logged with component, stream and childPid', TIMEOUT, async (t) => {
  const h = await start(
    t,
    `component plain { command "{{bin}}/write-lines.js --stay out:hello-%p err:oops-%p"; }
     component syslogged { command "{{bin}}/write-lines.js --stay err:alarm"; stderr syslog daemon.err; }`,
  );
  await waitFor(() => h.entries('plain').filter((e) => e['stream'] !== undefined).length === 2, 5000, 'two output lines logged');
  await waitFor(() => h.entries('syslogged').some((e) => e.msg === 'alarm'), 5000, 'syslog line logged');
  const pid = h.pid('plain')!;
  const out = h.entries('plain', `hello-${pid}`);
  const err = h.entries('plain', `oops-${pid}`);
  assert.deepEqual(out, [{ level: 'info', msg: `hello-${pid}`, component: 'plain', stream: 'stdout', childPid: pid }]);
  assert.deepEqual(err, [{ level: 'warn', msg: `oops-${pid}`, component: 'plain', stream: 'stderr', childPid: pid }]);
  const [alarm] = h.entries('syslogged', 'alarm');
  assert.equal(alarm?.level, 'error');
  assert.equal(alarm?.['stream'], 'stderr');
  assert.equal(alarm?.['facility'], 'daemon');
  assert.equal(alarm?.['childPid'], h.pid('syslogged'));
  await h.stopClean();
});

test('a missing program is logged with its cause and retried; the daemon carries on', TIMEOUT, async (t) => {
  const h = await start(
    t,
    `component ghost { command "/nonexistent/x --flag"; respawn { initial-delay 0.05; factor 1; } }
     component lost { command "{{bin}}/forever.js"; chdir {{dir}}/nope; respawn { initial-delay 0.05; factor 1; } }
     component fine { command "{{bin}}/forever.js"; }`,
  );
  await waitFor(() => h.entries('ghost', 'component failed to start').length >= 3, 5000, 'three failed attempts');
  await waitFor(() => h.entries('lost', 'component failed to start').length >= 2, 5000, 'two failed attempts');
  const [failure] = h.entries('ghost', 'component failed to start');
  assert.equal(failure?.level, 'error');
  assert.match(String(failure?.['error']), /ENOENT/);
  assert.match(String(failure?.['error']), /\/nonexistent\/x/);
  assert.deepEqual(h.entries('ghost', 'component started'), []);
  assert.equal(h.status('ghost')?.lastExit?.spawnError, failure?.['error']);
  // A missing working directory is named as such, not as a missing program.
  assert.equal(h.entries('lost', 'component failed to start')[0]?.['error'], `chdir ${h.dir}/nope: no such directory`);
  assert.equal(h.status('fine')?.state, 'running');
  assert.ok(alive(h.pid('fine')!));
  await h.stopClean();
});

test('flags disable: not started, its dependents wait, an admin start runs both', TIMEOUT, async (t) => {
  const h = await start(
    t,
    `component off { command "{{bin}}/forever.js"; flags disable; }
     component needy { command "{{bin}}/forever.js"; prerequisites off; }
     component other { command "{{bin}}/forever.js"; }`,
  );
  await waitState(h, 'other', 'running');
  assert.equal(h.status('off')?.state, 'disabled');
  assert.equal(h.status('off')?.pid, undefined);
  assert.equal(h.status('needy')?.state, 'waiting-prerequisites');
  assert.deepEqual(h.entries('off', 'component started'), []);

  assert.ok(h.daemon.supervisor.startComponent('off'));
  await waitState(h, 'off', 'running');
  await waitState(h, 'needy', 'running');
  assert.ok(h.indexOf('off', 'component started') < h.indexOf('needy', 'component started'));
  await h.stopClean();
});

test('reload keeps unchanged components, restarts changed ones, stops removed ones, starts new ones', TIMEOUT, async (t) => {
  const h = await start(
    t,
    `component keep { command "{{bin}}/forever.js"; }
     component change { command "{{bin}}/forever.js"; env { set "V=1"; } }
     component gone { command "{{bin}}/forever.js"; }`,
  );
  for (const tag of ['keep', 'change', 'gone']) await waitState(h, tag, 'running');
  const before = { keep: h.pid('keep')!, change: h.pid('change')!, gone: h.pid('gone')! };

  await h.writeConfig(
    `component keep { command "{{bin}}/forever.js"; }
     component change { command "{{bin}}/forever.js"; env { set "V=2"; } }
     component fresh { command "{{bin}}/forever.js"; }`,
  );
  const result = await h.daemon.reload();
  assert.ok(result.ok, result.ok ? '' : result.errors);
  assert.deepEqual(
    Object.fromEntries(result.plan.entries.map((e) => [e.tag, e.action])),
    { keep: 'keep', change: 'restart', gone: 'stop', fresh: 'start' },
  );
  await waitState(h, 'change', 'running');
  await waitState(h, 'fresh', 'running');

  assert.equal(h.pid('keep'), before.keep, 'unchanged component keeps its pid');
  assert.ok(alive(before.keep));
  assert.notEqual(h.pid('change'), before.change);
  assert.ok(!alive(before.change), 'the old process of a changed component is gone');
  assert.equal(h.status('gone'), undefined);
  assert.ok(!alive(before.gone), 'a removed component is stopped');
  assert.deepEqual(
    h.daemon.status().map((s) => s.tag).sort(),
    ['change', 'fresh', 'keep'],
  );
  assert.equal(h.logs.filter((e) => e.msg === 'config reloaded').length, 1);
  await h.stopClean();
});

test('an invalid reload changes nothing and reports the errors', TIMEOUT, async (t) => {
  const config = `component a { command "{{bin}}/forever.js"; }\ncomponent b { command "{{bin}}/forever.js"; }\n`;
  const h = await start(t, config);
  await waitState(h, 'a', 'running');
  await waitState(h, 'b', 'running');
  const before = h.daemon.status().map((s) => [s.tag, s.pid, s.state]);
  const configBefore = h.daemon.config;

  // A removed component, a new one and an error: none of it may take effect.
  await h.writeConfig(`component a { command "{{bin}}/forever.js"; }\ncomponent c {\n    comand "{{bin}}/forever.js";\n}\n`);
  const result = await h.daemon.reload();
  assert.equal(result.ok, false);
  assert.ok(!result.ok);
  assert.match(result.errors, new RegExp(`${h.configFile.replaceAll('.', '\\.')}:3:5: error: unknown statement "comand"`));
  assert.equal(h.daemon.config, configBefore);
  assert.deepEqual(
    h.daemon.status().map((s) => [s.tag, s.pid, s.state]),
    before,
  );
  assert.equal(h.logs.filter((e) => e.msg === 'config rejected').length, 1);
  assert.equal(h.logs.filter((e) => e.msg === 'config reloaded').length, 0);
  assert.equal(h.logs.filter((e) => e.msg === 'component stopping').length, 0);
  await h.stopClean();
});

test('no process survives daemon.stop(): grandchildren, SIGTERM-ignoring children, siggroup', TIMEOUT, async (t) => {
  const h = await start(
    t,
    `shutdown-timeout 1;
     component plain { command "{{bin}}/forever.js"; }
     component forker { command "{{bin}}/fork-grandchild.sh {{dir}}/grandchild"; }
     component grouped { command "{{bin}}/fork-grandchild.sh {{dir}}/grandchild-grouped"; flags siggroup; }
     component stubborn { command "{{bin}}/ignore-term.js"; }`,
  );
  const grandchild = path.join(h.dir, 'grandchild');
  const grouped = path.join(h.dir, 'grandchild-grouped');
  await waitFor(() => existsSync(grandchild) && existsSync(grouped), 5000, 'grandchildren started');
  await waitFor(() => h.entries('stubborn').some((e) => e.msg === 'ready'), 5000, 'stubborn ready');
  for (const file of [grandchild, grouped]) {
    const pid = Number(readFileSync(file, 'utf8'));
    assert.ok(alive(pid), `grandchild ${pid} running`);
    h.track(pid);
  }
  const tracked = h.pids();
  assert.equal(tracked.length, 6, `4 children and 2 grandchildren: ${tracked.join(', ')}`);

  await h.stopClean();
  for (const tag of ['plain', 'forker', 'grouped', 'stubborn']) assert.equal(h.status(tag)?.state, 'stopped');
});

// Regression: a reload stopped removed components all at once, prerequisites with their dependents.
test('a reload stops removed components dependents first', TIMEOUT, async (t) => {
  const h = await start(
    t,
    `component db { command "{{bin}}/forever.js"; }
     component web { command "{{bin}}/forever.js"; prerequisites db; }
     component other { command "{{bin}}/forever.js"; }`,
  );
  for (const tag of ['db', 'web']) await waitState(h, tag, 'running');
  await h.writeConfig(`component other { command "{{bin}}/forever.js"; }`);
  const result = await h.daemon.reload();
  assert.ok(result.ok, result.ok ? '' : result.errors);
  const webStopped = h.indexOf('web', 'component stopped');
  const dbStopping = h.indexOf('db', 'component stopping');
  assert.ok(webStopped >= 0 && dbStopping > webStopped, `web stopped (${webStopped}) before db was told to stop (${dbStopping})`);
  await h.stopClean();
});

// Regression: a reload restarting a prerequisite left its dependents running on the old one.
test('a reload that restarts a prerequisite restarts its running dependents too', TIMEOUT, async (t) => {
  const h = await start(
    t,
    `component db { command "{{bin}}/forever.js"; env { set "V=1"; } }
     component web { command "{{bin}}/forever.js"; prerequisites db; }`,
  );
  for (const tag of ['db', 'web']) await waitState(h, tag, 'running');
  const before = { db: h.pid('db')!, web: h.pid('web')! };
  await h.writeConfig(
    `component db { command "{{bin}}/forever.js"; env { set "V=2"; } }
     component web { command "{{bin}}/forever.js"; prerequisites db; }`,
  );
  const result = await h.daemon.reload();
  assert.ok(result.ok, result.ok ? '' : result.errors);
  await waitFor(() => h.pid('db') !== undefined && h.pid('db') !== before.db && h.pid('web') !== undefined && h.pid('web') !== before.web, 5000, 'db and web restarted');
  await waitState(h, 'web', 'running');
  assert.ok(!alive(before.web), 'the old web is gone');
  assert.ok(h.indexOf('web', 'component stopped') < h.indexOf('db', 'component stopping'), 'web stops before db');
  await h.stopClean();
});

// Regression: a reload arriving during stop was applied and bound new listeners afterwards.
test('a reload during stop is refused', TIMEOUT, async (t) => {
  const h = await start(t, `component slow { command "{{bin}}/ignore-term.js"; } shutdown-timeout 1;`);
  await waitState(h, 'slow', 'running');
  const stopping = h.daemon.stop();
  await h.writeConfig(`component slow { command "{{bin}}/ignore-term.js"; } component late { mode inetd; socket inet://127.0.0.1:0; command /bin/cat; } shutdown-timeout 1;`);
  const result = await h.daemon.reload();
  assert.equal(result.ok, false);
  await stopping;
  assert.equal(h.daemon.addressOf('late'), undefined);
  assert.equal(h.logs.filter((e) => e.msg === 'config reloaded').length, 0);
});
