// Shared by the reliability scenarios (test/reliability/*.test.ts). Each scenario runs in a
// short form by default — `npm test` and CI — and at full size with TPIES_RELIABILITY=full
// (`npm run test:reliability`). Every scenario records its figures and verdict; with
// TPIES_RELIABILITY_REPORT=FILE they are appended to FILE as JSON lines, from which
// `test/reliability/report.ts` prints the table in docs/reliability.md.
import { appendFileSync } from 'node:fs';
import type { TestContext } from 'node:test';

export const FULL = process.env['TPIES_RELIABILITY'] === 'full';

/** `short` in the default (CI) run, `full` under TPIES_RELIABILITY=full. */
export function size<T>(short: T, full: T): T {
  return FULL ? full : short;
}

export interface Figure {
  readonly scenario: string;
  /** What was measured, e.g. `{ "handshake p99 (ms)": 3.1, "baseline p99 (ms)": 2.2 }`. */
  readonly figures: Readonly<Record<string, number | string>>;
  /** The pass condition in words, e.g. `p99 under load ≤ 2× baseline`. */
  readonly condition: string;
  readonly pass: boolean;
}

// Print the figures into the test output and, when asked, into the report file.
export function record(t: TestContext, figure: Figure): void {
  const line = { ...figure, size: FULL ? 'full' : 'short', at: new Date().toISOString() };
  t.diagnostic(`${figure.scenario}: ${JSON.stringify(figure.figures)} — ${figure.condition}: ${figure.pass ? 'PASS' : 'FAIL'}`);
  const file = process.env['TPIES_RELIABILITY_REPORT'];
  if (file) appendFileSync(file, `${JSON.stringify(line)}\n`);
}

/** The seed of this run's random cases: TPIES_SEED=N replays a failing run. */
export const SEED = Number(process.env['TPIES_SEED'] ?? Math.floor(Math.random() * 2 ** 31));

/** A seeded generator (mulberry32): numbers in [0, 1), integers below n, choices. */
export function seeded(seed: number) {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  const int = (n: number): number => Math.floor(next() * n);
  return {
    next,
    int,
    chance: (p: number): boolean => next() < p,
    pick: <T>(items: readonly T[]): T => items[int(items.length)]!,
  };
}
