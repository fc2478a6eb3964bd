// Reload under TCPMUX load (issue "Operate it as a system supervisor"): while 8 clients keep
// making TCPMUX connections to the master (connect → `echo\r\n` → `+\r\n` → payload echoed by
// /bin/cat → half-close → FIN), reloads that add, remove and change other components, change
// the subordinate's max-instances, add a second subordinate, and change the master's own
// settings must refuse, reset or break no connection, and the master keeps its socket (same
// port throughout). Pacing is by completed exchanges, not by sleeps: each reload waits until
// the load has completed a few more connections since the previous one.
import assert from 'node:assert/strict';
import { type Socket, connect } from 'node:net';
import { type TestContext, test } from 'node:test';
import type { Plan } from '../../src/supervisor/plan.js';
import { type TestDaemon, startTestDaemon, waitFor } from '../helpers/daemon.js';

const TIMEOUT = { timeout: 30_000 };
const CONCURRENCY = 8;
/** Completed exchanges between two reloads (so every reload lands in the middle of load). */
const BETWEEN = 16;
/** Bounds of the load: it stops when told, or at these, whichever comes first. */
const MAX_CONNECTIONS = 20_000;
const MAX_LOAD_MS = 20_000;
const CONNECTION_TIMEOUT_MS = 8_000;
const PAYLOAD = Buffer.from('reload-load: the quick brown fox jumps over the lazy dog 0123456789\n');

// ---- the load ------------------------------------------------------------------------------

type Outcome = { readonly ok: true } | { readonly ok: false; readonly reason: string };

// One TCPMUX exchange, step by step; any deviation is an error with its reason.
function tcpmuxEcho(port: number, service: string, live: Set<Socket>): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    live.add(socket);
    let phase: 'connect' | 'reply' | 'echo' | 'fin' = 'connect';
    let got = Buffer.alloc(0);
    let done = false;
    const finish = (outcome: Outcome): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      live.delete(socket);
      socket.destroy();
      resolve(outcome);
    };
    const fail = (reason: string): void => finish({ ok: false, reason });
    const timer = setTimeout(() => fail(`timeout-${phase}`), CONNECTION_TIMEOUT_MS);
    socket.once('connect', () => {
      phase = 'reply';
      socket.write(`${service}\r\n`);
    });
    socket.on('data', (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      if (phase === 'reply') {
        if (got.length < 3) return;
        if (!got.subarray(0, 3).equals(Buffer.from('+\r\n'))) return fail(`reply ${JSON.stringify(got.toString('latin1'))}`);
        got = got.subarray(3);
        phase = 'echo';
        socket.write(PAYLOAD);
      }
      if (phase === 'echo') {
        if (got.length < PAYLOAD.length) return;
        if (!got.equals(PAYLOAD)) return fail('echo-mismatch');
        phase = 'fin';
        socket.end();
      } else if (phase === 'fin' && got.length > PAYLOAD.length) {
        fail('data-after-echo');
      }
    });
    socket.on('end', () => (phase === 'fin' ? finish({ ok: true }) : fail(`closed-during-${phase}`)));
    socket.on('error', (e: NodeJS.ErrnoException) => fail(e.code ?? 'error'));
    socket.on('close', () => fail(`closed-during-${phase}`));
  });
}

interface Load {
  /** Completed exchanges so far. */
  ok(): number;
  /** Connections open right now. */
  inFlight(): number;
  readonly errors: Map<string, number>;
  /** Stop starting connections; resolves when the ones in flight have finished. */
  stop(): Promise<void>;
}

// CONCURRENCY workers, each making one connection after another until stopped (or bounded).
function startLoad(t: TestContext, port: () => number, service = 'echo'): Load {
  const live = new Set<Socket>();
  const errors = new Map<string, number>();
  let ok = 0;
  let started = 0;
  let stopping = false;
  const deadline = Date.now() + MAX_LOAD_MS;
  const worker = async (): Promise<void> => {
    while (!stopping && started < MAX_CONNECTIONS && Date.now() < deadline) {
      started++;
      const r = await tcpmuxEcho(port(), service, live);
      if (r.ok) ok++;
      else errors.set(r.reason, (errors.get(r.reason) ?? 0) + 1);
    }
  };
  const running = Promise.all(Array.from({ length: CONCURRENCY }, worker));
  t.after(async () => {
    stopping = true;
    for (const s of live) s.destroy();
    await running;
  });
  return {
    ok: () => ok,
    inFlight: () => live.size,
    errors,
    async stop() {
      stopping = true;
      await running;
    },
  };
}

// ---- configs -------------------------------------------------------------------------------

interface Shape {
  readonly tcpmuxTimeout?: number;
  readonly masterMaxInstances?: number;
  readonly echoMaxInstances: number;
  readonly echo2?: boolean;
  /** Respawn components: tag → sleep seconds (a changed number changes its command). */
  readonly respawn: Readonly<Record<string, number>>;
}

function config(s: Shape): string {
  const lines = [
    'component tcpmux {',
    '  socket inet://127.0.0.1:0;',
    '  service tcpmux;',
    '  flags internal;',
    `  tcpmux-timeout ${s.tcpmuxTimeout ?? 30};`,
    ...(s.masterMaxInstances !== undefined ? [`  max-instances ${s.masterMaxInstances};`] : []),
    '}',
    `component echo { tcpmux-master tcpmux; service echo; flags tcpmuxplus; command /bin/cat; max-instances ${s.echoMaxInstances}; }`,
    ...(s.echo2 ? ['component echo2 { tcpmux-master tcpmux; service echo2; flags tcpmuxplus; command /bin/cat; }'] : []),
    ...Object.entries(s.respawn).map(([tag, seconds]) => `component ${tag} { mode respawn; command "/bin/sleep ${seconds}"; }`),
  ];
  return `${lines.join('\n')}\n`;
}

function actions(plan: Plan): Record<string, string> {
  return Object.fromEntries(plan.entries.filter((e) => e.action !== 'keep').map((e) => [e.tag, e.action]));
}

const running = (d: TestDaemon, tag: string): boolean => d.daemon.status().some((s) => s.tag === tag && s.state === 'running');

// Wait for BETWEEN more completed exchanges, then reload `next` and check the plan and port.
async function reloadUnderLoad(d: TestDaemon, load: Load, port: number, next: Shape, expected: Record<string, string>): Promise<void> {
  const before = load.ok();
  await waitFor(() => load.ok() >= before + BETWEEN || load.errors.size > 0, 10_000, `${BETWEEN} more exchanges`);
  assert.deepEqual(Object.fromEntries(load.errors), {}, 'connection errors before the reload');
  await d.writeConfig(config(next));
  assert.ok(load.inFlight() > 0, 'connections in flight when the reload starts');
  const result = await d.daemon.reload();
  assert.ok(result.ok, result.ok ? '' : result.errors);
  assert.deepEqual(actions(result.plan), expected);
  assert.equal(d.port('tcpmux'), port, 'the master kept its port');
}

// ---- tests ---------------------------------------------------------------------------------

test('five reloads of other components under TCPMUX load: no refused, reset or broken connection', TIMEOUT, async (t) => {
  const shapes: Shape[] = [
    { echoMaxInstances: 50, respawn: { r1: 3600, r2: 3600, r3: 3600 } },
    // 1: add r4, change r1's command, lower echo's max-instances.
    { echoMaxInstances: 40, respawn: { r1: 3601, r2: 3600, r3: 3600, r4: 3600 } },
    // 2: remove r2, add a second subordinate.
    { echoMaxInstances: 40, echo2: true, respawn: { r1: 3601, r3: 3600, r4: 3600 } },
    // 3: change r3, change echo's max-instances again.
    { echoMaxInstances: 30, echo2: true, respawn: { r1: 3601, r3: 3602, r4: 3600 } },
    // 4: remove r4, add r5 and r6.
    { echoMaxInstances: 30, echo2: true, respawn: { r1: 3601, r3: 3602, r5: 3600, r6: 3600 } },
    // 5: remove echo2, change r1 back, raise echo's max-instances.
    { echoMaxInstances: 60, respawn: { r1: 3600, r3: 3602, r5: 3600, r6: 3600 } },
  ];
  const expected: Record<string, string>[] = [
    { echo: 'restart', r1: 'restart', r4: 'start' },
    { echo2: 'start', r2: 'stop' },
    { echo: 'restart', r3: 'restart' },
    { r5: 'start', r6: 'start', r4: 'stop' },
    { echo: 'restart', r1: 'restart', echo2: 'stop' },
  ];
  const d = await startTestDaemon(t, config(shapes[0]!));
  const port = d.port('tcpmux');
  await waitFor(() => ['r1', 'r2', 'r3'].every((tag) => running(d, tag)), 5000, 'r1-r3 running');
  const load = startLoad(t, () => port);
  for (let i = 1; i < shapes.length; i++) {
    await reloadUnderLoad(d, load, port, shapes[i]!, expected[i - 1]!);
    if (i === 2) {
      // The added subordinate answers at once, on the same socket.
      const second = await tcpmuxEcho(port, 'echo2', new Set());
      assert.deepEqual(second, { ok: true }, 'echo2 after it was added');
    }
  }
  // Some more load after the last reload, then stop it and count.
  const last = load.ok();
  await waitFor(() => load.ok() >= last + BETWEEN || load.errors.size > 0, 10_000, 'exchanges after the last reload');
  await load.stop();
  assert.deepEqual(Object.fromEntries(load.errors), {}, 'connection errors');
  assert.ok(load.ok() >= BETWEEN * shapes.length, `only ${load.ok()} exchanges completed`);
  assert.equal(d.port('tcpmux'), port);
  // The reloads were applied: the last config's respawn components run, the removed ones do not.
  await waitFor(() => ['r1', 'r3', 'r5', 'r6'].every((tag) => running(d, tag)), 5000, 'r1, r3, r5, r6 running');
  assert.deepEqual(d.daemon.status().map((s) => s.tag).sort(), ['r1', 'r3', 'r5', 'r6']);
  assert.equal(d.logs.filter((e) => e.msg === 'config reloaded').length, 5);
  assert.equal(d.logs.filter((e) => e.msg === 'listener closed' || e.msg === 'listen failed').length, 0, 'the master was never closed or rebound');
  t.diagnostic(`${load.ok()} exchanges, 0 errors, 5 reloads, port ${port} throughout`);
});

test('reloads that change the master itself keep its socket bound and apply the new settings', TIMEOUT, async (t) => {
  const base: Shape = { tcpmuxTimeout: 30, echoMaxInstances: 50, respawn: { r1: 3600 } };
  const d = await startTestDaemon(t, config(base));
  const port = d.port('tcpmux');
  const load = startLoad(t, () => port);
  await reloadUnderLoad(d, load, port, { ...base, tcpmuxTimeout: 20 }, { tcpmux: 'restart' });
  await reloadUnderLoad(d, load, port, { ...base, tcpmuxTimeout: 20, masterMaxInstances: 100 }, { tcpmux: 'restart' });
  await reloadUnderLoad(d, load, port, { ...base, tcpmuxTimeout: 1, masterMaxInstances: 100 }, { tcpmux: 'restart' });
  const last = load.ok();
  await waitFor(() => load.ok() >= last + BETWEEN || load.errors.size > 0, 10_000, 'exchanges after the last reload');
  await load.stop();
  assert.deepEqual(Object.fromEntries(load.errors), {}, 'connection errors');
  assert.equal(d.port('tcpmux'), port);
  assert.equal(d.logs.filter((e) => e.msg === 'listener closed' || e.msg === 'listen failed').length, 0, 'the master was never closed or rebound');

  // The kept socket serves with the new settings: a client that sends nothing is dropped
  // after the new 1 s tcpmux-timeout (it was 30 s when the socket was bound).
  const idle = connect({ host: '127.0.0.1', port });
  t.after(() => idle.destroy());
  const t0 = Date.now();
  const closed = await new Promise<string>((resolve) => {
    const timer = setTimeout(() => resolve('still open'), 10_000);
    const done = (how: string): void => {
      clearTimeout(timer);
      resolve(how);
    };
    idle.on('error', (e: NodeJS.ErrnoException) => done(e.code ?? 'error'));
    idle.on('close', () => done('closed'));
    idle.resume();
  });
  assert.equal(closed, 'closed');
  const waited = Date.now() - t0;
  assert.ok(waited >= 900 && waited < 10_000, `dropped after ${waited} ms`);
  await waitFor(() => d.logs.some((e) => e.msg === 'connection' && e.component === 'tcpmux' && e.outcome === 'timeout'), 5000, 'the timeout audit event');
  t.diagnostic(`${load.ok()} exchanges, 0 errors, 3 reloads of the master, port ${port} throughout; idle client dropped after ${waited} ms`);
});
