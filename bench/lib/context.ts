// What bench/run.ts hands every benchmark module.
import type { Cleanup } from './cleanup.js';
import type { Target } from './report.js';

export interface BenchContext {
  /** --quick: fewer iterations and connections; same shape of output. */
  readonly quick: boolean;
  /** The repository root (holds package.json and dist/). */
  readonly root: string;
  /** A temp dir private to this run; removed at the end. */
  readonly tmp: string;
  readonly cleanup: Cleanup;
  /** Print a line of the report. */
  out(line?: string): void;
  /** Record a target's PASS/FAIL (also printed by the benchmark itself). */
  target(t: Omit<Target, 'benchmark'>): void;
}

export interface Benchmark {
  readonly name: string;
  readonly description: string;
  run(ctx: BenchContext): Promise<void>;
}
