// The supervision state machine of one respawn-style component (modes respawn, accept,
// startup, shutdown) as an s6-supervise style state × event table. Pure: the runner feeds
// events in, carries out the returned effects, and supplies the clock and randomness.
import { constants } from 'node:os';
import type { Component, Mode, RespawnPolicy, ReturnCode } from '../config/model.js';
import { planRespawn, recordStart } from './backoff.js';

export const STATE_NAMES = ['stopped', 'starting', 'running', 'stopping', 'sleeping', 'waiting', 'finished', 'disabled'] as const;
/**
 * stopped: no process, nothing scheduled. starting: spawn issued, pid not yet reported.
 * running: process alive. stopping: SIGTERM sent, SIGKILL due at `wakeAt` (absent once sent).
 * sleeping: throttled, restart at `wakeAt`. waiting: backoff delay, restart at `wakeAt`.
 * finished: a startup/shutdown component ran once (`lastExit`). disabled: `flags disable`
 * or `return-code … { action disable; }`; only an admin start runs it again.
 */
export type StateName = (typeof STATE_NAMES)[number];

export const EVENT_TYPES = ['start', 'stop', 'timer', 'exit', 'spawned'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** Modes whose single process is supervised by this table; inetd instances are not. */
export type SupervisedMode = Exclude<Mode, 'inetd'>;

/** How a process ended: an exit code, a signal, or a failure to spawn at all (ENOENT, EACCES…). */
export interface ExitStatus {
  readonly exitCode?: number;
  readonly signal?: NodeJS.Signals;
  readonly spawnError?: string;
  /** When the exit (or spawn failure) was observed, ms. */
  readonly at: number;
}

export interface StartEvent {
  readonly type: 'start';
  /** `startup`: the supervisor's own start (skips disabled components); `admin`: a control request. */
  readonly origin: 'admin' | 'startup';
}
export interface StopEvent {
  readonly type: 'stop';
  readonly origin: 'admin' | 'shutdown';
}
/** The timer armed by the last `arm` effect fired. */
export interface TimerEvent {
  readonly type: 'timer';
}
export interface ExitEvent extends ExitStatus {
  readonly type: 'exit';
}
export interface SpawnedEvent {
  readonly type: 'spawned';
  readonly pid: number;
  readonly at: number;
}
export type Event = StartEvent | StopEvent | TimerEvent | ExitEvent | SpawnedEvent;

/** Snapshot of one component's supervision; replaced, never mutated, by `step`. */
export interface ComponentState {
  readonly name: StateName;
  /** When this state was entered, ms. */
  readonly since: number;
  /** Spawn times within the respawn window, oldest first (backoff.ts). */
  readonly starts: readonly number[];
  /** The live process, once reported (running, stopping). */
  readonly pid?: number;
  /** When the armed timer fires (waiting, sleeping, stopping before SIGKILL). */
  readonly wakeAt?: number;
  /** The most recent exit; for a finished one-shot, its result. */
  readonly lastExit?: ExitStatus;
  /** stopping: a start arrived meanwhile, so spawn again once the process is gone (restart). */
  readonly startPending?: boolean;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogEvent =
  | 'component started'
  | 'component exited'
  | 'component failed to start'
  | 'component finished'
  | 'respawn scheduled'
  | 'respawn throttled'
  | 'component woke'
  | 'component stopping'
  | 'component killed'
  | 'component stopped'
  | 'component disabled'
  | 'component enabled';
export type LogFields = Readonly<Record<string, string | number | boolean>>;

/** What the runner must do, in order. There is at most one timer per component. */
export type Effect =
  | { readonly type: 'spawn' }
  /** Signal the process (its process group when `group`); the runner holds the handle. */
  | { readonly type: 'kill'; readonly signal: 'SIGTERM' | 'SIGKILL'; readonly group: boolean }
  /** (Re)arm the component's timer; replaces any armed one. */
  | { readonly type: 'arm'; readonly ms: number }
  | { readonly type: 'disarm' }
  | { readonly type: 'log'; readonly level: LogLevel; readonly event: LogEvent; readonly fields: LogFields }
  /** return-code exec: run `command` with pies' environment plus `env` (runner adds PIES_VERSION, PIES_MASTER_PID). */
  | { readonly type: 'exec'; readonly command: string; readonly env: Readonly<Record<string, string>> }
  /** return-code notify/message: mail `recipients`; `vars` are the §5.5 message variables. */
  | { readonly type: 'notify'; readonly recipients: readonly string[]; readonly message?: string; readonly vars: Readonly<Record<string, string>> };

export interface StepResult {
  readonly state: ComponentState;
  readonly effects: readonly Effect[];
}

/** The static policy bits of one component that the table consults. */
export interface ComponentPolicy {
  readonly tag: string;
  readonly mode: SupervisedMode;
  readonly precious: boolean;
  readonly siggroup: boolean;
  /** Component return-codes followed by the global ones; the first match decides. */
  readonly returnCodes: readonly ReturnCode[];
  readonly respawn: RespawnPolicy;
  readonly shutdownTimeoutMs: number;
}

export interface StepContext extends ComponentPolicy {
  readonly now: number;
  /** Uniform in [0, 1), for backoff jitter. */
  readonly random: () => number;
}

export function isSupervisedMode(mode: Mode): mode is SupervisedMode {
  return mode !== 'inetd';
}

// The table's view of a component; undefined for inetd components, whose instances are
// per-connection and not supervised here.
export function policyOf(component: Component, globalReturnCodes: readonly ReturnCode[] = []): ComponentPolicy | undefined {
  if (!isSupervisedMode(component.mode)) return undefined;
  return {
    tag: component.tag,
    mode: component.mode,
    precious: component.flags.has('precious'),
    siggroup: component.flags.has('siggroup'),
    returnCodes: [...component.returnCodes, ...globalReturnCodes],
    respawn: component.respawn,
    shutdownTimeoutMs: component.shutdownTimeoutMs,
  };
}

// `flags disable` components begin disabled; everything else begins stopped.
export function initialState(now: number, disabled = false): ComponentState {
  return { name: disabled ? 'disabled' : 'stopped', since: now, starts: [] };
}

// True in the states where a process exists (or a spawn is in flight).
export function hasProcess(state: ComponentState): boolean {
  return state.name === 'starting' || state.name === 'running' || state.name === 'stopping';
}

// Advance one component by one event. Never throws for well-typed input: cells that cannot
// happen (see the table) return the same state object and no effects.
export function step(state: ComponentState, event: Event, ctx: StepContext): StepResult {
  const row = TABLE[state.name];
  switch (event.type) {
    case 'start':
      return row.start(state, event, ctx);
    case 'stop':
      return row.stop(state, event, ctx);
    case 'timer':
      return row.timer(state, event, ctx);
    case 'exit':
      return row.exit(state, event, ctx);
    case 'spawned':
      return row.spawned(state, event, ctx);
    default:
      return assertNever(event);
  }
}

// The first return-code whose codes contain the exit code, or the signal number for a death
// by signal (pies manual, Exit Actions). A spawn failure has no status and matches nothing.
export function matchReturnCode(returnCodes: readonly ReturnCode[], status: ExitStatus): ReturnCode | undefined {
  if (status.spawnError !== undefined) return undefined;
  const signal = status.signal === undefined ? undefined : signalNumber(status.signal);
  for (const rc of returnCodes) {
    for (const m of rc.match) {
      switch (m.kind) {
        case 'code':
          if (status.signal === undefined && status.exitCode === m.code) return rc;
          break;
        case 'signal':
          if (signal !== undefined && signal === m.signal) return rc;
          break;
        default:
          return assertNever(m);
      }
    }
  }
  return undefined;
}

// pies.md §5.4: the per-exit part of a return-code exec's environment.
export function exitActionEnv(tag: string, pid: number | undefined, status: ExitStatus): Record<string, string> {
  const env: Record<string, string> = { PIES_COMPONENT: tag };
  if (pid !== undefined) env['PIES_PID'] = String(pid);
  const signal = status.signal === undefined ? undefined : signalNumber(status.signal);
  if (signal !== undefined) env['PIES_SIGNAL'] = String(signal);
  else if (status.exitCode !== undefined) env['PIES_STATUS'] = String(status.exitCode);
  return env;
}

// The exec and notify effects of a matched return-code, in pies' order (exec first).
export function exitActionEffects(rc: ReturnCode, tag: string, pid: number | undefined, status: ExitStatus): Effect[] {
  const effects: Effect[] = [];
  if (rc.exec !== undefined) effects.push({ type: 'exec', command: rc.exec, env: exitActionEnv(tag, pid, status) });
  if (rc.notify !== undefined && rc.notify.length > 0) {
    const signal = status.signal === undefined ? undefined : signalNumber(status.signal);
    const vars: Record<string, string> = {
      component: tag,
      termination: signal === undefined ? 'exit' : 'signal',
      retcode: String(signal ?? status.exitCode ?? ''),
    };
    effects.push(
      rc.message === undefined
        ? { type: 'notify', recipients: rc.notify, vars }
        : { type: 'notify', recipients: rc.notify, message: rc.message, vars },
    );
  }
  return effects;
}

// ---- The action table -------------------------------------------------------------------

type EventOf<T extends EventType> = Extract<Event, { type: T }>;
type Handler<T extends EventType> = (state: ComponentState, event: EventOf<T>, ctx: StepContext) => StepResult;
type Row = { readonly [T in EventType]: Handler<T> };

const NO_EFFECTS: readonly Effect[] = [];

// An impossible cell: the event cannot arrive in this state (no process to exit, no timer
// armed, already started/stopped), so it is ignored rather than trusted.
function same(state: ComponentState): StepResult {
  return { state, effects: NO_EFFECTS };
}

// Rows are states, columns are events.
// prettier-ignore
const TABLE: { readonly [S in StateName]: Row } = {
  //          start              stop               timer              exit                spawned
  stopped:  { start: spawnNow,   stop: same,        timer: same,       exit: same,         spawned: same },
  starting: { start: same,       stop: terminate,   timer: same,       exit: exited,       spawned: started },
  running:  { start: same,       stop: terminate,   timer: same,       exit: exited,       spawned: same },
  stopping: { start: queueStart, stop: cancelStart, timer: forceKill,  exit: stopped,      spawned: notePid },
  sleeping: { start: wakeEarly,  stop: cancelTimer, timer: wake,       exit: same,         spawned: same },
  waiting:  { start: skipDelay,  stop: cancelTimer, timer: respawnNow, exit: same,         spawned: same },
  finished: { start: spawnNow,   stop: same,        timer: same,       exit: same,         spawned: same },
  disabled: { start: enable,     stop: same,        timer: same,       exit: same,         spawned: same },
};

// ---- Actions --------------------------------------------------------------------------

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
type Carried = Partial<Pick<ComponentState, 'starts' | 'pid' | 'wakeAt' | 'lastExit' | 'startPending'>>;

// A new state `name` entered at `since`: history and the last exit carry over; pid, wakeAt
// and startPending belong to one state and must be given again to survive.
function enter(prev: ComponentState, name: StateName, since: number, carried: Carried = {}): ComponentState {
  const next: Mutable<ComponentState> = { name, since, starts: carried.starts ?? prev.starts };
  const lastExit = carried.lastExit ?? prev.lastExit;
  if (lastExit !== undefined) next.lastExit = lastExit;
  if (carried.pid !== undefined) next.pid = carried.pid;
  if (carried.wakeAt !== undefined) next.wakeAt = carried.wakeAt;
  if (carried.startPending === true) next.startPending = true;
  return next;
}

function log(level: LogLevel, event: LogEvent, ctx: StepContext, fields: LogFields = {}): Effect {
  return { type: 'log', level, event, fields: { component: ctx.tag, ...fields } };
}

// Spawn now and count the start against the respawn window.
function spawnWith(state: ComponentState, ctx: StepContext, effects: readonly Effect[], starts = state.starts): StepResult {
  const next = enter(state, 'starting', ctx.now, { starts: recordStart(starts, ctx.now, ctx.respawn.windowMs) });
  return { state: next, effects: [...effects, { type: 'spawn' }] };
}

function spawnNow(state: ComponentState, _event: StartEvent, ctx: StepContext): StepResult {
  return spawnWith(state, ctx, NO_EFFECTS);
}

// An admin start while disabled re-enables with a clean history; the supervisor's own
// startup start leaves `flags disable` components alone.
function enable(state: ComponentState, event: StartEvent, ctx: StepContext): StepResult {
  if (event.origin !== 'admin') return same(state);
  return spawnWith(state, ctx, [log('info', 'component enabled', ctx)], []);
}

// A start while sleeping is an admin override of the throttle: forget the history.
function wakeEarly(state: ComponentState, _event: StartEvent, ctx: StepContext): StepResult {
  return spawnWith(state, ctx, [{ type: 'disarm' }, log('info', 'component woke', ctx, { early: true })], []);
}

function skipDelay(state: ComponentState, _event: StartEvent, ctx: StepContext): StepResult {
  return spawnWith(state, ctx, [{ type: 'disarm' }]);
}

function wake(state: ComponentState, _event: TimerEvent, ctx: StepContext): StepResult {
  // After a full sleep the component gets a fresh window, as pies resets its spawn counter.
  return spawnWith(state, ctx, [log('info', 'component woke', ctx)], []);
}

function respawnNow(state: ComponentState, _event: TimerEvent, ctx: StepContext): StepResult {
  return spawnWith(state, ctx, NO_EFFECTS);
}

// Restart = stop then start: remember the start and act on it once the process is gone.
function queueStart(state: ComponentState, _event: StartEvent, _ctx: StepContext): StepResult {
  if (state.startPending === true) return same(state);
  return { state: { ...state, startPending: true }, effects: NO_EFFECTS };
}

// A stop overrides a queued start (stop, start, stop means stop).
function cancelStart(state: ComponentState, _event: StopEvent, _ctx: StepContext): StepResult {
  if (state.startPending !== true) return same(state);
  const { startPending: _dropped, ...rest } = state;
  return { state: rest, effects: NO_EFFECTS };
}

function terminate(state: ComponentState, event: StopEvent, ctx: StepContext): StepResult {
  const carried: Carried = { wakeAt: ctx.now + ctx.shutdownTimeoutMs };
  const next = enter(state, 'stopping', ctx.now, state.pid === undefined ? carried : { ...carried, pid: state.pid });
  return {
    state: next,
    effects: [
      log('info', 'component stopping', ctx, { origin: event.origin, ...pidField(state) }),
      { type: 'kill', signal: 'SIGTERM', group: ctx.siggroup },
      { type: 'arm', ms: ctx.shutdownTimeoutMs },
    ],
  };
}

// shutdown-timeout expired: SIGKILL, and wait for the exit with no further timer.
function forceKill(state: ComponentState, _event: TimerEvent, ctx: StepContext): StepResult {
  if (state.wakeAt === undefined) return same(state);
  const { wakeAt: _fired, ...rest } = state;
  return {
    state: rest,
    effects: [
      log('warn', 'component killed', ctx, { signal: 'SIGKILL', timeoutMs: ctx.shutdownTimeoutMs, ...pidField(state) }),
      { type: 'kill', signal: 'SIGKILL', group: ctx.siggroup },
    ],
  };
}

// The pid can arrive after a stop issued during `starting`; keep it for status and env.
function notePid(state: ComponentState, event: SpawnedEvent, _ctx: StepContext): StepResult {
  if (state.pid !== undefined) return same(state);
  return { state: { ...state, pid: event.pid }, effects: NO_EFFECTS };
}

function started(state: ComponentState, event: SpawnedEvent, ctx: StepContext): StepResult {
  return {
    state: enter(state, 'running', event.at, { pid: event.pid }),
    effects: [log('info', 'component started', ctx, { pid: event.pid })],
  };
}

function cancelTimer(state: ComponentState, event: StopEvent, ctx: StepContext): StepResult {
  return {
    state: enter(state, 'stopped', ctx.now),
    effects: [{ type: 'disarm' }, log('info', 'component stopped', ctx, { origin: event.origin, from: state.name })],
  };
}

// The exit we asked for: no exit actions and no respawn, only a queued admin start.
function stopped(state: ComponentState, event: ExitEvent, ctx: StepContext): StepResult {
  const lastExit = exitStatusOf(event);
  const effects: Effect[] = [];
  if (state.wakeAt !== undefined) effects.push({ type: 'disarm' });
  effects.push(log('info', 'component stopped', ctx, { ...pidField(state), ...statusFields(lastExit) }));
  if (state.startPending === true) return spawnWith(enter(state, 'stopped', ctx.now, { lastExit }), ctx, effects);
  return { state: enter(state, 'stopped', ctx.now, { lastExit }), effects };
}

// An unrequested exit (or spawn failure): exit actions, then finish, disable or respawn.
function exited(state: ComponentState, event: ExitEvent, ctx: StepContext): StepResult {
  const lastExit = exitStatusOf(event);
  const effects: Effect[] = [exitLog(state, lastExit, ctx)];
  const rc = matchReturnCode(ctx.returnCodes, lastExit);
  if (rc !== undefined) effects.push(...exitActionEffects(rc, ctx.tag, state.pid, lastExit));

  switch (ctx.mode) {
    case 'startup':
    case 'shutdown':
      effects.push(log('debug', 'component finished', ctx, statusFields(lastExit)));
      return { state: enter(state, 'finished', ctx.now, { lastExit }), effects };
    case 'respawn':
    case 'accept':
      break;
    default:
      return assertNever(ctx.mode);
  }

  if (rc?.action === 'disable') {
    effects.push(log('warn', 'component disabled', ctx, { reason: 'return-code', ...statusFields(lastExit) }));
    return { state: enter(state, 'disabled', ctx.now, { lastExit, starts: [] }), effects };
  }

  const decision = planRespawn(state.starts, ctx.now, ctx.respawn, ctx.precious, ctx.random);
  switch (decision.kind) {
    case 'sleep': {
      const wakeAt = ctx.now + decision.sleepMs;
      effects.push(
        log('warn', 'respawn throttled', ctx, { starts: decision.count, windowMs: ctx.respawn.windowMs, sleepMs: decision.sleepMs }),
        { type: 'arm', ms: decision.sleepMs },
      );
      return { state: enter(state, 'sleeping', ctx.now, { lastExit, starts: decision.starts, wakeAt }), effects };
    }
    case 'restart': {
      const waiting = enter(state, 'waiting', ctx.now, { lastExit, starts: decision.starts });
      if (decision.delayMs <= 0) return spawnWith(waiting, ctx, effects);
      effects.push(log('info', 'respawn scheduled', ctx, { delayMs: decision.delayMs, starts: decision.count }), {
        type: 'arm',
        ms: decision.delayMs,
      });
      return { state: { ...waiting, wakeAt: ctx.now + decision.delayMs }, effects };
    }
    default:
      return assertNever(decision);
  }
}

// ---- Helpers --------------------------------------------------------------------------

function exitStatusOf(event: ExitEvent): ExitStatus {
  const { type: _type, ...status } = event;
  return status;
}

function exitLog(state: ComponentState, status: ExitStatus, ctx: StepContext): Effect {
  const fields = { ...pidField(state), ...statusFields(status), runMs: Math.max(0, status.at - state.since) };
  if (status.spawnError !== undefined) return log('error', 'component failed to start', ctx, fields);
  const clean = status.signal === undefined && status.exitCode === 0;
  return log(clean ? 'info' : 'warn', 'component exited', ctx, fields);
}

function statusFields(status: ExitStatus): LogFields {
  if (status.spawnError !== undefined) return { error: status.spawnError };
  if (status.signal !== undefined) return { signal: status.signal };
  if (status.exitCode !== undefined) return { exitCode: status.exitCode };
  return {};
}

function pidField(state: ComponentState): LogFields {
  return state.pid === undefined ? {} : { pid: state.pid };
}

const SIGNALS: Readonly<Record<string, number | undefined>> = constants.signals;

function signalNumber(name: NodeJS.Signals): number | undefined {
  return SIGNALS[name];
}

function assertNever(value: never): never {
  throw new Error(`supervisor/states: unexpected ${JSON.stringify(value)}`);
}
