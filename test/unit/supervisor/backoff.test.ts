// supervisor/backoff.ts: window pruning, the exponential delay and its cap, jitter bounds,
// and the throttle decision (pies: more than `limit` starts within the window ⇒ sleep).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { RespawnPolicy } from '../../../src/config/model.js';
import {
  MAX_START_HISTORY,
  baseDelayMs,
  isThrottled,
  planRespawn,
  pruneStarts,
  recordStart,
  restartDelayMs,
} from '../../../src/supervisor/backoff.js';

const POLICY: RespawnPolicy = { initialDelayMs: 100, factor: 2, maxDelayMs: 1_000, jitter: 0, windowMs: 60_000, limit: 3, sleepMs: 30_000 };

test('pruneStarts keeps only starts strictly inside the window', () => {
  assert.deepEqual(pruneStarts([0, 39_999, 40_000, 40_001, 99_000], 100_000, 60_000), [40_001, 99_000]);
  const all = [50_000, 60_000];
  assert.equal(pruneStarts(all, 100_000, 60_000), all, 'nothing pruned returns the same array');
  assert.deepEqual(pruneStarts([], 5, 10), []);
});

test('recordStart prunes, appends and bounds the history', () => {
  assert.deepEqual(recordStart([1_000, 50_000], 70_000, 60_000), [50_000, 70_000]);
  const long = Array.from({ length: MAX_START_HISTORY }, (_, i) => 1_000 + i);
  const next = recordStart(long, 2_000_000, 10_000_000);
  assert.equal(next.length, MAX_START_HISTORY);
  assert.equal(next[0], 1_001);
  assert.equal(next.at(-1), 2_000_000);
});

test('baseDelayMs grows by factor from the initial delay and is capped', () => {
  const table: [number, number][] = [
    [0, 100],
    [1, 100],
    [2, 200],
    [3, 400],
    [4, 800],
    [5, 1_000],
    [50, 1_000],
    [10_000, 1_000],
  ];
  for (const [n, expected] of table) assert.equal(baseDelayMs(n, POLICY), expected, `n=${n}`);
  assert.equal(baseDelayMs(10_000, { ...POLICY, initialDelayMs: 0, factor: 10 }), 0, 'a zero initial delay never becomes NaN');
  assert.equal(baseDelayMs(3, { ...POLICY, factor: 1 }), 100);
});

test('restartDelayMs without jitter ignores the random source', () => {
  assert.equal(restartDelayMs(3, POLICY, () => 0.99), 400);
  assert.equal(restartDelayMs(3, POLICY, () => 0), 400);
});

test('restartDelayMs spreads by ±jitter around the base delay', () => {
  const jittery = { ...POLICY, jitter: 0.25 };
  assert.equal(restartDelayMs(3, jittery, () => 0), 300);
  assert.equal(restartDelayMs(3, jittery, () => 0.5), 400);
  assert.equal(restartDelayMs(3, jittery, () => 0.999_999_999), 500);
  assert.equal(restartDelayMs(3, jittery, () => 7), 500, 'a broken random source is clamped');
  assert.equal(restartDelayMs(3, jittery, () => -3), 300);
  assert.equal(restartDelayMs(5, jittery, () => 0.999_999_999), 1_250, 'jitter applies after the cap');
});

test('restartDelayMs stays within [base·(1−jitter), base·(1+jitter)] (property)', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 40 }),
      fc.integer({ min: 1, max: 10_000 }),
      fc.double({ min: 1, max: 4, noNaN: true }),
      fc.integer({ min: 1, max: 600_000 }),
      fc.double({ min: 0, max: 1, noNaN: true }),
      fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
      (n, initialDelayMs, factor, maxDelayMs, jitter, r) => {
        const policy = { ...POLICY, initialDelayMs, factor, maxDelayMs, jitter };
        const base = baseDelayMs(n, policy);
        const delay = restartDelayMs(n, policy, () => r);
        assert.ok(Number.isInteger(delay));
        assert.ok(delay >= Math.floor(base * (1 - jitter)), `${delay} < ${base}·(1−${jitter})`);
        assert.ok(delay <= Math.ceil(base * (1 + jitter)), `${delay} > ${base}·(1+${jitter})`);
        assert.ok(delay >= 0);
      },
    ),
  );
});

test('isThrottled: at `limit` starts the next would be one too many', () => {
  assert.equal(isThrottled(2, POLICY, false), false);
  assert.equal(isThrottled(3, POLICY, false), true);
  assert.equal(isThrottled(30, POLICY, true), false, 'precious is exempt');
  assert.equal(isThrottled(1_000, { ...POLICY, limit: 0 }, false), false, 'limit 0 turns the guard off');
});

test('planRespawn restarts with the delay for the starts in the window', () => {
  assert.deepEqual(planRespawn([5_000, 9_000], 10_000, POLICY, false, () => 0.5), {
    kind: 'restart',
    delayMs: 200,
    count: 2,
    starts: [5_000, 9_000],
  });
  // The old start fell out of the window, so the count (and delay) went back down.
  assert.deepEqual(planRespawn([1_000, 70_000], 70_500, POLICY, false, () => 0.5), {
    kind: 'restart',
    delayMs: 100,
    count: 1,
    starts: [70_000],
  });
});

test('planRespawn sleeps when the window is full, unless precious', () => {
  assert.deepEqual(planRespawn([1_000, 2_000, 3_000], 4_000, POLICY, false, () => 0.5), {
    kind: 'sleep',
    sleepMs: 30_000,
    count: 3,
    starts: [1_000, 2_000, 3_000],
  });
  assert.deepEqual(planRespawn([1_000, 2_000, 3_000], 4_000, POLICY, true, () => 0.5), {
    kind: 'restart',
    delayMs: 400,
    count: 3,
    starts: [1_000, 2_000, 3_000],
  });
});
