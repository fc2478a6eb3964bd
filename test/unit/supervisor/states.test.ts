// supervisor/states.ts: every state × event cell of the table, crash loops into sleeping and
// back, precious components, return-code actions, one-shot modes, and a property test that
// the table never yields two live processes nor a spawn while stopping or stopped.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { Location } from '../../../src/config/ast.js';
import type { Component, ExitMatch, RespawnPolicy, ReturnCode } from '../../../src/config/model.js';
import {
  EVENT_TYPES,
  STATE_NAMES,
  exitActionEnv,
  hasProcess,
  initialState,
  matchReturnCode,
  policyOf,
  step,
  type ComponentState,
  type Effect,
  type Event,
  type EventType,
  type LogEvent,
  type LogFields,
  type LogLevel,
  type StateName,
  type StepContext,
  type StepResult,
  type SupervisedMode,
} from '../../../src/supervisor/states.js';

const LOC: Location = { file: 'test.conf', line: 1, column: 1 };
const POLICY: RespawnPolicy = { initialDelayMs: 100, factor: 2, maxDelayMs: 1_000, jitter: 0, windowMs: 60_000, limit: 3, sleepMs: 30_000 };
const NOW = 10_000;

function ctx(overrides: Partial<StepContext> = {}): StepContext {
  return {
    tag: 'web',
    mode: 'respawn',
    precious: false,
    siggroup: true,
    returnCodes: [],
    respawn: POLICY,
    shutdownTimeoutMs: 5_000,
    now: NOW,
    random: () => 0.5,
    ...overrides,
  };
}

function rc(match: readonly ExitMatch[], rest: Partial<Omit<ReturnCode, 'match' | 'location'>> = {}): ReturnCode {
  return { match, location: LOC, ...rest };
}
const code = (n: number): ExitMatch => ({ kind: 'code', code: n });
const sig = (n: number): ExitMatch => ({ kind: 'signal', signal: n });

function log(level: LogLevel, event: LogEvent, fields: LogFields = {}): Effect {
  return { type: 'log', level, event, fields: { component: 'web', ...fields } };
}
const SPAWN: Effect = { type: 'spawn' };
const DISARM: Effect = { type: 'disarm' };
const arm = (ms: number): Effect => ({ type: 'arm', ms });
const kill = (signal: 'SIGTERM' | 'SIGKILL'): Effect => ({ type: 'kill', signal, group: true });

// One representative state per name: the rows of the table.
const FIXTURES: Record<StateName, ComponentState> = {
  stopped: { name: 'stopped', since: 0, starts: [] },
  starting: { name: 'starting', since: 9_000, starts: [9_000] },
  running: { name: 'running', since: 9_000, starts: [9_000], pid: 42 },
  stopping: { name: 'stopping', since: 9_500, starts: [9_000], pid: 42, wakeAt: 14_500 },
  sleeping: { name: 'sleeping', since: 9_500, starts: [1_000, 2_000, 3_000], wakeAt: 39_500, lastExit: { exitCode: 1, at: 9_500 } },
  waiting: { name: 'waiting', since: 9_500, starts: [9_000], wakeAt: 9_700, lastExit: { exitCode: 1, at: 9_500 } },
  finished: { name: 'finished', since: 9_500, starts: [9_000], lastExit: { exitCode: 0, at: 9_500 } },
  disabled: { name: 'disabled', since: 0, starts: [] },
};

// One representative event per type: the columns.
const EVENTS: { [T in EventType]: Extract<Event, { type: T }> } = {
  start: { type: 'start', origin: 'admin' },
  stop: { type: 'stop', origin: 'admin' },
  timer: { type: 'timer' },
  exit: { type: 'exit', exitCode: 1, at: NOW },
  spawned: { type: 'spawned', pid: 77, at: NOW },
};

const SAME = 'same' as const;
type Expected = typeof SAME | StepResult;

const exit1 = { exitCode: 1, at: NOW };

// The whole table for a respawn component, written out as expected results.
const CELLS: Record<StateName, Record<EventType, Expected>> = {
  stopped: {
    start: { state: { name: 'starting', since: NOW, starts: [NOW] }, effects: [SPAWN] },
    stop: SAME,
    timer: SAME,
    exit: SAME,
    spawned: SAME,
  },
  starting: {
    start: SAME,
    stop: {
      state: { name: 'stopping', since: NOW, starts: [9_000], wakeAt: 15_000 },
      effects: [log('info', 'component stopping', { origin: 'admin' }), kill('SIGTERM'), arm(5_000)],
    },
    timer: SAME,
    exit: {
      state: { name: 'waiting', since: NOW, starts: [9_000], lastExit: exit1, wakeAt: NOW + 100 },
      effects: [log('warn', 'component exited', { exitCode: 1, runMs: 1_000 }), log('info', 'respawn scheduled', { delayMs: 100, starts: 1 }), arm(100)],
    },
    spawned: {
      state: { name: 'running', since: NOW, starts: [9_000], pid: 77 },
      effects: [log('info', 'component started', { pid: 77 })],
    },
  },
  running: {
    start: SAME,
    stop: {
      state: { name: 'stopping', since: NOW, starts: [9_000], pid: 42, wakeAt: 15_000 },
      effects: [log('info', 'component stopping', { origin: 'admin', pid: 42 }), kill('SIGTERM'), arm(5_000)],
    },
    timer: SAME,
    exit: {
      state: { name: 'waiting', since: NOW, starts: [9_000], lastExit: exit1, wakeAt: NOW + 100 },
      effects: [
        log('warn', 'component exited', { pid: 42, exitCode: 1, runMs: 1_000 }),
        log('info', 'respawn scheduled', { delayMs: 100, starts: 1 }),
        arm(100),
      ],
    },
    spawned: SAME,
  },
  stopping: {
    start: { state: { ...FIXTURES.stopping, startPending: true }, effects: [] },
    stop: SAME,
    timer: {
      state: { name: 'stopping', since: 9_500, starts: [9_000], pid: 42 },
      effects: [log('warn', 'component killed', { signal: 'SIGKILL', timeoutMs: 5_000, pid: 42 }), kill('SIGKILL')],
    },
    exit: {
      state: { name: 'stopped', since: NOW, starts: [9_000], lastExit: exit1 },
      effects: [DISARM, log('info', 'component stopped', { pid: 42, exitCode: 1 })],
    },
    spawned: SAME,
  },
  sleeping: {
    start: {
      state: { name: 'starting', since: NOW, starts: [NOW], lastExit: { exitCode: 1, at: 9_500 } },
      effects: [DISARM, log('info', 'component woke', { early: true }), SPAWN],
    },
    stop: {
      state: { name: 'stopped', since: NOW, starts: [1_000, 2_000, 3_000], lastExit: { exitCode: 1, at: 9_500 } },
      effects: [DISARM, log('info', 'component stopped', { origin: 'admin', from: 'sleeping' })],
    },
    timer: {
      state: { name: 'starting', since: NOW, starts: [NOW], lastExit: { exitCode: 1, at: 9_500 } },
      effects: [log('info', 'component woke'), SPAWN],
    },
    exit: SAME,
    spawned: SAME,
  },
  waiting: {
    start: { state: { name: 'starting', since: NOW, starts: [9_000, NOW], lastExit: { exitCode: 1, at: 9_500 } }, effects: [DISARM, SPAWN] },
    stop: {
      state: { name: 'stopped', since: NOW, starts: [9_000], lastExit: { exitCode: 1, at: 9_500 } },
      effects: [DISARM, log('info', 'component stopped', { origin: 'admin', from: 'waiting' })],
    },
    timer: { state: { name: 'starting', since: NOW, starts: [9_000, NOW], lastExit: { exitCode: 1, at: 9_500 } }, effects: [SPAWN] },
    exit: SAME,
    spawned: SAME,
  },
  finished: {
    start: { state: { name: 'starting', since: NOW, starts: [9_000, NOW], lastExit: { exitCode: 0, at: 9_500 } }, effects: [SPAWN] },
    stop: SAME,
    timer: SAME,
    exit: SAME,
    spawned: SAME,
  },
  disabled: {
    start: { state: { name: 'starting', since: NOW, starts: [NOW] }, effects: [log('info', 'component enabled'), SPAWN] },
    stop: SAME,
    timer: SAME,
    exit: SAME,
    spawned: SAME,
  },
};

for (const name of STATE_NAMES) {
  for (const type of EVENT_TYPES) {
    const expected = CELLS[name][type];
    test(`cell ${name} × ${type} → ${expected === SAME ? 'unchanged' : expected.state.name}`, () => {
      const before = FIXTURES[name];
      const result = step(before, EVENTS[type], ctx());
      if (expected === SAME) {
        assert.equal(result.state, before, 'an impossible cell returns the very same state');
        assert.deepEqual(result.effects, []);
      } else {
        assert.deepEqual(result.state, expected.state);
        assert.deepEqual(result.effects, expected.effects);
      }
    });
  }
}

test('the table covers exactly the declared states and events', () => {
  assert.deepEqual(Object.keys(CELLS).sort(), [...STATE_NAMES].sort());
  assert.equal(STATE_NAMES.length * EVENT_TYPES.length, 40);
});

// ---- Cells whose outcome depends on more than the representative inputs ------------------

test('disabled × start from the supervisor itself leaves a `flags disable` component alone', () => {
  const before = initialState(0, true);
  assert.equal(before.name, 'disabled');
  const result = step(before, { type: 'start', origin: 'startup' }, ctx());
  assert.equal(result.state, before);
  assert.deepEqual(result.effects, []);
});

test('start, stop and restart of a stopped component (initialState)', () => {
  const s0 = initialState(0);
  assert.deepEqual(s0, { name: 'stopped', since: 0, starts: [] });
  const s1 = step(s0, { type: 'start', origin: 'startup' }, ctx());
  assert.equal(s1.state.name, 'starting');
  assert.deepEqual(s1.effects, [SPAWN]);
});

test('stopping × stop after a queued start cancels the start', () => {
  const queued: ComponentState = { ...FIXTURES.stopping, startPending: true };
  const result = step(queued, EVENTS.stop, ctx());
  assert.deepEqual(result.state, FIXTURES.stopping);
  assert.deepEqual(result.effects, []);
});

test('stopping × start twice queues once', () => {
  const queued: ComponentState = { ...FIXTURES.stopping, startPending: true };
  const result = step(queued, EVENTS.start, ctx());
  assert.equal(result.state, queued);
});

test('stopping × exit with a queued start spawns again (restart)', () => {
  const queued: ComponentState = { ...FIXTURES.stopping, startPending: true };
  const result = step(queued, { type: 'exit', signal: 'SIGTERM', at: NOW }, ctx());
  assert.deepEqual(result.state, { name: 'starting', since: NOW, starts: [9_000, NOW], lastExit: { signal: 'SIGTERM', at: NOW } });
  assert.deepEqual(result.effects, [DISARM, log('info', 'component stopped', { pid: 42, signal: 'SIGTERM' }), SPAWN]);
});

test('stopping × exit after SIGKILL needs no disarm', () => {
  const killed = step(FIXTURES.stopping, EVENTS.timer, ctx()).state;
  const result = step(killed, { type: 'exit', signal: 'SIGKILL', at: NOW }, ctx());
  assert.equal(result.state.name, 'stopped');
  assert.deepEqual(result.effects, [log('info', 'component stopped', { pid: 42, signal: 'SIGKILL' })]);
});

test('stopping × timer a second time (SIGKILL already sent) is ignored', () => {
  const killed = step(FIXTURES.stopping, EVENTS.timer, ctx()).state;
  const again = step(killed, EVENTS.timer, ctx());
  assert.equal(again.state, killed);
  assert.deepEqual(again.effects, []);
});

test('stopping × spawned records a pid that arrived after the stop', () => {
  const stopping = step(FIXTURES.starting, EVENTS.stop, ctx()).state;
  assert.equal(stopping.pid, undefined);
  const result = step(stopping, EVENTS.spawned, ctx());
  assert.deepEqual(result.state, { ...stopping, pid: 77 });
  assert.deepEqual(result.effects, []);
});

test('stop without siggroup signals the process only', () => {
  const result = step(FIXTURES.running, { type: 'stop', origin: 'shutdown' }, ctx({ siggroup: false }));
  assert.deepEqual(result.effects[1], { type: 'kill', signal: 'SIGTERM', group: false });
  assert.deepEqual(result.effects[0], log('info', 'component stopping', { origin: 'shutdown', pid: 42 }));
});

test('a spawn error is a failed start: logged with its cause, then backoff', () => {
  const result = step(FIXTURES.starting, { type: 'exit', spawnError: 'ENOENT: no such file', at: NOW }, ctx());
  assert.equal(result.state.name, 'waiting');
  assert.deepEqual(result.state.lastExit, { spawnError: 'ENOENT: no such file', at: NOW });
  assert.deepEqual(result.effects, [
    log('error', 'component failed to start', { error: 'ENOENT: no such file', runMs: 1_000 }),
    log('info', 'respawn scheduled', { delayMs: 100, starts: 1 }),
    arm(100),
  ]);
});

test('a clean exit is logged at info and still respawns', () => {
  const result = step(FIXTURES.running, { type: 'exit', exitCode: 0, at: NOW }, ctx());
  assert.deepEqual(result.effects[0], log('info', 'component exited', { pid: 42, exitCode: 0, runMs: 1_000 }));
  assert.equal(result.state.name, 'waiting');
});

test('a zero backoff delay spawns at once instead of arming a timer', () => {
  const result = step(FIXTURES.running, EVENTS.exit, ctx({ respawn: { ...POLICY, initialDelayMs: 0 } }));
  assert.deepEqual(result.state, { name: 'starting', since: NOW, starts: [9_000, NOW], lastExit: exit1 });
  assert.deepEqual(result.effects, [log('warn', 'component exited', { pid: 42, exitCode: 1, runMs: 1_000 }), SPAWN]);
});

test('accept mode respawns like respawn mode', () => {
  const result = step(FIXTURES.running, EVENTS.exit, ctx({ mode: 'accept' }));
  assert.deepEqual(result, step(FIXTURES.running, EVENTS.exit, ctx()));
});

// ---- One-shot modes ---------------------------------------------------------------------

for (const mode of ['startup', 'shutdown'] as const) {
  test(`${mode} components run once and finish with their exit status`, () => {
    const c = ctx({ mode });
    const started = step(initialState(0), { type: 'start', origin: 'startup' }, c).state;
    const running = step(started, { type: 'spawned', pid: 5, at: NOW }, c).state;
    const result = step(running, { type: 'exit', exitCode: 3, at: NOW + 50 }, c);
    assert.deepEqual(result.state, { name: 'finished', since: NOW, starts: [NOW], lastExit: { exitCode: 3, at: NOW + 50 } });
    assert.deepEqual(result.effects, [
      log('warn', 'component exited', { pid: 5, exitCode: 3, runMs: 50 }),
      log('debug', 'component finished', { exitCode: 3 }),
    ]);
  });
}

test('a one-shot that cannot be spawned finishes too (no retry)', () => {
  const result = step(FIXTURES.starting, { type: 'exit', spawnError: 'EACCES', at: NOW }, ctx({ mode: 'startup' }));
  assert.equal(result.state.name, 'finished');
  assert.equal(result.state.lastExit?.spawnError, 'EACCES');
});

test('one-shots run return-code exec but ignore action restart/disable', () => {
  const c = ctx({ mode: 'startup', returnCodes: [rc([code(1)], { action: 'disable', exec: '/bin/report' })] });
  const result = step(FIXTURES.running, EVENTS.exit, c);
  assert.equal(result.state.name, 'finished');
  assert.deepEqual(result.effects[1], { type: 'exec', command: '/bin/report', env: { PIES_COMPONENT: 'web', PIES_PID: '42', PIES_STATUS: '1' } });
});

// ---- Crash loops, throttling and precious --------------------------------------------------

// Drives one component like the runner would, recording every effect with its time.
function driver(c: Partial<StepContext> = {}) {
  let state = initialState(0);
  const history: { at: number; effect: Effect }[] = [];
  return {
    get state(): ComponentState {
      return state;
    },
    feed(event: Event, now: number): readonly Effect[] {
      const result = step(state, event, ctx({ ...c, now }));
      state = result.state;
      for (const effect of result.effects) history.push({ at: now, effect });
      return result.effects;
    },
    // A process that starts at `at` and dies `lifeMs` later with status 1.
    crash(at: number, lifeMs: number, pid = 100): readonly Effect[] {
      this.feed({ type: 'spawned', pid, at }, at);
      return this.feed({ type: 'exit', exitCode: 1, at: at + lifeMs }, at + lifeMs);
    },
    history,
  };
}

function armed(effects: readonly Effect[]): number | undefined {
  for (const e of effects) if (e.type === 'arm') return e.ms;
  return undefined;
}

test('a crash loop backs off, is throttled into sleeping, and recovers after the sleep', () => {
  const d = driver();
  assert.deepEqual(d.feed({ type: 'start', origin: 'startup' }, 0), [SPAWN]);

  assert.equal(armed(d.crash(0, 10)), 100);
  assert.equal(d.state.name, 'waiting');
  assert.deepEqual(d.feed({ type: 'timer' }, 110), [SPAWN]);

  assert.equal(armed(d.crash(110, 10)), 200);
  assert.deepEqual(d.feed({ type: 'timer' }, 320), [SPAWN]);
  assert.deepEqual(d.state.starts, [0, 110, 320]);

  // The third start within the window was the limit: the next one would be too many.
  const throttled = d.crash(320, 10);
  assert.equal(d.state.name, 'sleeping');
  assert.equal(d.state.wakeAt, 330 + 30_000);
  assert.deepEqual(throttled.slice(1), [log('warn', 'respawn throttled', { starts: 3, windowMs: 60_000, sleepMs: 30_000 }), arm(30_000)]);

  // Waking gives a fresh history, so the backoff starts over from the initial delay.
  assert.deepEqual(d.feed({ type: 'timer' }, 30_330), [log('info', 'component woke'), SPAWN]);
  assert.deepEqual(d.state.starts, [30_330]);
  assert.equal(armed(d.crash(30_330, 10)), 100);
  assert.deepEqual(d.feed({ type: 'timer' }, 30_440), [SPAWN]);

  // A process that outlives the window restarts with the initial delay too.
  assert.equal(armed(d.crash(30_440, 100_000)), 100);
  assert.equal(d.state.name, 'waiting');
});

test('starts that age out of the window stop counting towards the throttle', () => {
  const d = driver();
  d.feed({ type: 'start', origin: 'startup' }, 0);
  d.crash(0, 10);
  d.feed({ type: 'timer' }, 110);
  d.crash(110, 10);
  d.feed({ type: 'timer' }, 320);
  // Runs past the first start's window: only two starts (110, 320) remain, so no sleep.
  const effects = d.crash(320, 59_750);
  assert.equal(d.state.name, 'waiting');
  assert.equal(armed(effects), 200);
});

test('a precious component never sleeps; its delay saturates at maxDelayMs', () => {
  const d = driver({ precious: true });
  d.feed({ type: 'start', origin: 'startup' }, 0);
  const delays: number[] = [];
  let now = 0;
  for (let i = 0; i < 12; i++) {
    const effects = d.crash(now, 1);
    assert.notEqual(d.state.name, 'sleeping');
    const ms = armed(effects);
    assert.ok(ms !== undefined);
    delays.push(ms);
    now += 1 + ms;
    assert.deepEqual(d.feed({ type: 'timer' }, now), [SPAWN]);
  }
  assert.deepEqual(delays, [100, 200, 400, 800, 1_000, 1_000, 1_000, 1_000, 1_000, 1_000, 1_000, 1_000]);
  assert.ok(!d.history.some(({ effect }) => effect.type === 'log' && effect.event === 'respawn throttled'));
});

test('jitter from the injected random source reaches the armed delay', () => {
  const jittery = { ...POLICY, jitter: 0.5 };
  const low = step(FIXTURES.running, EVENTS.exit, ctx({ respawn: jittery, random: () => 0 }));
  const high = step(FIXTURES.running, EVENTS.exit, ctx({ respawn: jittery, random: () => 0.999_999 }));
  assert.equal(armed(low.effects), 50);
  assert.equal(low.state.wakeAt, NOW + 50);
  assert.equal(armed(high.effects), 150);
});

test('sleeping × stop, then an admin start, gives a clean history', () => {
  const stopped = step(FIXTURES.sleeping, EVENTS.stop, ctx()).state;
  assert.equal(stopped.name, 'stopped');
  const restarted = step(stopped, EVENTS.start, ctx()).state;
  // Stopping does not forget the window; the crash history still counts after a plain start.
  assert.deepEqual(restarted.starts, [1_000, 2_000, 3_000, NOW]);
});

// ---- return-code ------------------------------------------------------------------------

test('return-code action disable stops respawning', () => {
  const c = ctx({ returnCodes: [rc([code(78)], { action: 'disable' })] });
  const result = step(FIXTURES.running, { type: 'exit', exitCode: 78, at: NOW }, c);
  assert.deepEqual(result.state, { name: 'disabled', since: NOW, starts: [], lastExit: { exitCode: 78, at: NOW } });
  assert.deepEqual(result.effects, [
    log('warn', 'component exited', { pid: 42, exitCode: 78, runMs: 1_000 }),
    log('warn', 'component disabled', { reason: 'return-code', exitCode: 78 }),
  ]);
  // An admin start re-enables it.
  const again = step(result.state, EVENTS.start, c);
  assert.equal(again.state.name, 'starting');
  assert.deepEqual(again.effects, [log('info', 'component enabled'), SPAWN]);
});

test('return-code action disable applies even to precious components', () => {
  const c = ctx({ precious: true, returnCodes: [rc([code(78)], { action: 'disable' })] });
  assert.equal(step(FIXTURES.running, { type: 'exit', exitCode: 78, at: NOW }, c).state.name, 'disabled');
});

test('return-code action restart (and no match) respawn', () => {
  const c = ctx({ returnCodes: [rc([code(2)], { action: 'restart' }), rc([code(3)], { action: 'disable' })] });
  assert.equal(step(FIXTURES.running, { type: 'exit', exitCode: 2, at: NOW }, c).state.name, 'waiting');
  assert.equal(step(FIXTURES.running, { type: 'exit', exitCode: 4, at: NOW }, c).state.name, 'waiting');
  assert.equal(step(FIXTURES.running, { type: 'exit', exitCode: 3, at: NOW }, c).state.name, 'disabled');
});

test('return-code matches signal deaths by signal number, not by exit code', () => {
  const c = ctx({ returnCodes: [rc([code(15)], { action: 'restart' }), rc([sig(15)], { action: 'disable' })] });
  assert.equal(step(FIXTURES.running, { type: 'exit', signal: 'SIGTERM', at: NOW }, c).state.name, 'disabled');
  assert.equal(step(FIXTURES.running, { type: 'exit', signal: 'SIGKILL', at: NOW }, c).state.name, 'waiting');
});

test('the first matching return-code decides (component ones before global ones)', () => {
  const first = rc([code(1), code(2)], { action: 'restart' });
  const second = rc([code(2)], { action: 'disable' });
  assert.equal(matchReturnCode([first, second], { exitCode: 2, at: 0 }), first);
  assert.equal(matchReturnCode([second, first], { exitCode: 2, at: 0 }), second);
  assert.equal(matchReturnCode([first, second], { spawnError: 'ENOENT', at: 0 }), undefined, 'a spawn failure has no status');
  const killed = rc([sig(9)]);
  assert.equal(matchReturnCode([killed], { signal: 'SIGKILL', at: 0 }), killed);
  assert.equal(matchReturnCode([killed], { exitCode: 9, at: 0 }), undefined, 'exit code 9 is not signal 9');
});

test('return-code exec and notify become effects with the PIES_* environment', () => {
  const c = ctx({ returnCodes: [rc([sig(9), code(1)], { exec: '/usr/bin/cleanup --all', notify: ['root@localhost'], message: 'Subject: ${component} died' })] });
  const bySignal = step(FIXTURES.running, { type: 'exit', signal: 'SIGKILL', at: NOW }, c);
  assert.deepEqual(bySignal.effects.slice(1, 3), [
    { type: 'exec', command: '/usr/bin/cleanup --all', env: { PIES_COMPONENT: 'web', PIES_PID: '42', PIES_SIGNAL: '9' } },
    { type: 'notify', recipients: ['root@localhost'], message: 'Subject: ${component} died', vars: { component: 'web', termination: 'signal', retcode: '9' } },
  ]);
  assert.equal(bySignal.state.name, 'waiting', 'exec alone does not change the default restart');
  const byCode = step(FIXTURES.running, EVENTS.exit, c);
  assert.deepEqual(byCode.effects[1], { type: 'exec', command: '/usr/bin/cleanup --all', env: { PIES_COMPONENT: 'web', PIES_PID: '42', PIES_STATUS: '1' } });
  assert.deepEqual(byCode.effects[2], { type: 'notify', recipients: ['root@localhost'], message: 'Subject: ${component} died', vars: { component: 'web', termination: 'exit', retcode: '1' } });
});

test('a stop-induced exit runs no exit actions', () => {
  const c = ctx({ returnCodes: [rc([sig(15)], { exec: '/bin/true', action: 'disable' })] });
  const result = step(FIXTURES.stopping, { type: 'exit', signal: 'SIGTERM', at: NOW }, c);
  assert.equal(result.state.name, 'stopped');
  assert.ok(!result.effects.some((e) => e.type === 'exec'));
});

test('exitActionEnv omits what is unknown', () => {
  assert.deepEqual(exitActionEnv('db', undefined, { exitCode: 0, at: 0 }), { PIES_COMPONENT: 'db', PIES_STATUS: '0' });
  assert.deepEqual(exitActionEnv('db', 7, { signal: 'SIGHUP', at: 0 }), { PIES_COMPONENT: 'db', PIES_PID: '7', PIES_SIGNAL: '1' });
});

// ---- policyOf -----------------------------------------------------------------------------

test('policyOf reads flags and appends the global return-codes; inetd is not supervised here', () => {
  const own = rc([code(1)]);
  const global = rc([code(2)]);
  const component = {
    tag: 'db',
    mode: 'respawn',
    flags: new Set(['precious', 'siggroup']),
    returnCodes: [own],
    respawn: POLICY,
    shutdownTimeoutMs: 7_000,
  } as unknown as Component;
  assert.deepEqual(policyOf(component, [global]), {
    tag: 'db',
    mode: 'respawn',
    precious: true,
    siggroup: true,
    returnCodes: [own, global],
    respawn: POLICY,
    shutdownTimeoutMs: 7_000,
  });
  assert.equal(policyOf({ ...component, mode: 'inetd' } as Component), undefined);
});

// ---- Properties -------------------------------------------------------------------------

// What the outside world can do next; the harness only delivers what reality allows.
type Action =
  | { readonly kind: 'start'; readonly origin: 'admin' | 'startup' }
  | { readonly kind: 'stop'; readonly origin: 'admin' | 'shutdown' }
  | { readonly kind: 'fire' }
  | { readonly kind: 'die'; readonly how: 'code' | 'signal' | 'spawnError'; readonly code: number }
  | { readonly kind: 'report-pid' }
  | { readonly kind: 'advance'; readonly ms: number };

const actionArb: fc.Arbitrary<Action> = fc.oneof(
  fc.record({ kind: fc.constant('start' as const), origin: fc.constantFrom('admin' as const, 'startup' as const) }),
  fc.record({ kind: fc.constant('stop' as const), origin: fc.constantFrom('admin' as const, 'shutdown' as const) }),
  fc.constant({ kind: 'fire' as const }),
  fc.record({ kind: fc.constant('die' as const), how: fc.constantFrom('code' as const, 'signal' as const, 'spawnError' as const), code: fc.integer({ min: 0, max: 3 }) }),
  fc.constant({ kind: 'report-pid' as const }),
  fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 100_000 }) }),
);

const policyArb: fc.Arbitrary<RespawnPolicy> = fc.record({
  initialDelayMs: fc.integer({ min: 0, max: 2_000 }),
  factor: fc.constantFrom(1, 1.5, 2),
  maxDelayMs: fc.integer({ min: 0, max: 60_000 }),
  jitter: fc.constantFrom(0, 0.1, 0.5),
  windowMs: fc.integer({ min: 1, max: 200_000 }),
  limit: fc.integer({ min: 0, max: 5 }),
  sleepMs: fc.integer({ min: 0, max: 300_000 }),
});

const contextArb = fc.record({
  mode: fc.constantFrom<SupervisedMode>('respawn', 'accept', 'startup', 'shutdown'),
  precious: fc.boolean(),
  siggroup: fc.boolean(),
  respawn: policyArb,
  shutdownTimeoutMs: fc.integer({ min: 0, max: 10_000 }),
  disableOn: fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }),
  disabled: fc.boolean(),
  random: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
});

test('property: never two live processes, never a spawn while stopping or stopped, timers consistent', () => {
  fc.assert(
    fc.property(contextArb, fc.array(actionArb, { maxLength: 80 }), (c, actions) => {
      const base = ctx({
        mode: c.mode,
        precious: c.precious,
        siggroup: c.siggroup,
        respawn: c.respawn,
        shutdownTimeoutMs: c.shutdownTimeoutMs,
        returnCodes: c.disableOn === undefined ? [] : [rc([code(c.disableOn)], { action: 'disable' })],
        random: () => c.random,
      });
      let now = 0;
      let state = initialState(now, c.disabled);
      let child: 'none' | 'spawning' | 'alive' = 'none';
      let timer = false;
      let nextPid = 1;

      for (const action of actions) {
        let event: Event;
        switch (action.kind) {
          case 'start':
            event = { type: 'start', origin: action.origin };
            break;
          case 'stop':
            event = { type: 'stop', origin: action.origin };
            break;
          case 'fire':
            if (!timer) continue;
            timer = false;
            event = { type: 'timer' };
            break;
          case 'die':
            if (child === 'none') continue;
            if (action.how === 'spawnError' && child !== 'spawning') continue;
            child = 'none';
            event =
              action.how === 'code'
                ? { type: 'exit', exitCode: action.code, at: now }
                : action.how === 'signal'
                  ? { type: 'exit', signal: 'SIGTERM', at: now }
                  : { type: 'exit', spawnError: 'ENOENT', at: now };
            break;
          case 'report-pid':
            if (child !== 'spawning') continue;
            child = 'alive';
            event = { type: 'spawned', pid: nextPid++, at: now };
            break;
          case 'advance':
            now += action.ms;
            continue;
          default:
            throw new Error('unreachable');
        }
        const before = state;
        const result = step(before, event, { ...base, now });
        state = result.state;
        for (const effect of result.effects) {
          switch (effect.type) {
            case 'spawn':
              assert.equal(child, 'none', 'a spawn while a process is live');
              if (before.name === 'stopped') assert.equal(event.type, 'start');
              if (before.name === 'stopping') assert.equal(event.type, 'exit', 'a spawn while stopping');
              child = 'spawning';
              break;
            case 'kill':
              assert.notEqual(child, 'none', 'a kill with no process');
              break;
            case 'arm':
              assert.ok(effect.ms >= 0);
              timer = true;
              break;
            case 'disarm':
              timer = false;
              break;
            default:
              break;
          }
        }
        const spawned = result.effects.some((e) => e.type === 'spawn');
        if (spawned) assert.equal(state.name, 'starting');
        assert.ok(!(spawned && (state.name === 'stopping' || state.name === 'stopped')));
        assert.equal(hasProcess(state), child !== 'none', `state ${state.name} vs process ${child}`);
        if (state.name === 'waiting' || state.name === 'sleeping') assert.ok(timer, `${state.name} without a timer`);
        if (timer) assert.ok(['waiting', 'sleeping', 'stopping'].includes(state.name), `timer armed in ${state.name}`);
        if (state.name === 'sleeping') assert.ok(!c.precious, 'precious components never sleep');
        if (state.name === 'finished') assert.ok(c.mode === 'startup' || c.mode === 'shutdown');
      }
    }),
    { numRuns: 500 },
  );
});

const stateArb: fc.Arbitrary<ComponentState> = fc
  .record({
    name: fc.constantFrom(...STATE_NAMES),
    since: fc.integer({ min: 0, max: 1_000_000 }),
    starts: fc.array(fc.integer({ min: 0, max: 1_000_000 }), { maxLength: 8 }),
    pid: fc.option(fc.integer({ min: 1, max: 99_999 }), { nil: undefined }),
    wakeAt: fc.option(fc.integer({ min: 0, max: 2_000_000 }), { nil: undefined }),
    startPending: fc.boolean(),
  })
  .map(({ pid, wakeAt, startPending, ...rest }) => {
    const s: { -readonly [K in keyof ComponentState]: ComponentState[K] } = { ...rest };
    if (pid !== undefined) s.pid = pid;
    if (wakeAt !== undefined) s.wakeAt = wakeAt;
    if (startPending) s.startPending = true;
    return s;
  });

const eventArb: fc.Arbitrary<Event> = fc.oneof(
  fc.record({ type: fc.constant('start' as const), origin: fc.constantFrom('admin' as const, 'startup' as const) }),
  fc.record({ type: fc.constant('stop' as const), origin: fc.constantFrom('admin' as const, 'shutdown' as const) }),
  fc.constant({ type: 'timer' as const }),
  fc.record({ type: fc.constant('exit' as const), exitCode: fc.integer({ min: 0, max: 255 }), at: fc.integer({ min: 0, max: 2_000_000 }) }),
  fc.record({ type: fc.constant('exit' as const), signal: fc.constantFrom<NodeJS.Signals>('SIGTERM', 'SIGKILL', 'SIGSEGV'), at: fc.integer({ min: 0, max: 2_000_000 }) }),
  fc.record({ type: fc.constant('exit' as const), spawnError: fc.string(), at: fc.integer({ min: 0, max: 2_000_000 }) }),
  fc.record({ type: fc.constant('spawned' as const), pid: fc.integer({ min: 1, max: 99_999 }), at: fc.integer({ min: 0, max: 2_000_000 }) }),
);

test('property: any event sequence from any state never throws, and spawns only between exits', () => {
  fc.assert(
    fc.property(stateArb, fc.array(eventArb, { maxLength: 60 }), contextArb, (start, events, c) => {
      const base = ctx({ mode: c.mode, precious: c.precious, respawn: c.respawn, random: () => c.random });
      let state = start;
      let now = 0;
      // A spawn from a state with a process would mean two; after a spawn only an exit frees the slot.
      let live = hasProcess(start);
      for (const event of events) {
        now += 1_000;
        const result = step(state, event, { ...base, now });
        const spawns = result.effects.filter((e) => e.type === 'spawn').length;
        if (event.type === 'exit' && hasProcess(state)) live = false;
        if (spawns > 0) {
          assert.equal(spawns, 1);
          assert.equal(live, false, `spawn from ${state.name} on ${event.type} while a process is live`);
          assert.equal(result.state.name, 'starting');
          assert.ok(state.name !== 'stopping' || event.type === 'exit', 'spawn while stopping');
          assert.ok(state.name !== 'stopped' || event.type === 'start', 'spawn while stopped');
          live = true;
        }
        state = result.state;
      }
    }),
    { numRuns: 500 },
  );
});
