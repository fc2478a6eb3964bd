// Respawn throttling math (pies.md §6.3): the backoff delay before a restart and the
// "respawning too fast" decision that puts a component to sleep. Pure; all times in ms.
import type { RespawnPolicy } from '../config/model.js';

// A crash loop with zero delay could record many starts per window; the delay saturates long
// before this many, so older entries carry no information.
export const MAX_START_HISTORY = 1024;

/** What to do after a respawn component exits. `starts` is the pruned history to keep. */
export type RespawnDecision =
  | { readonly kind: 'restart'; readonly delayMs: number; readonly count: number; readonly starts: readonly number[] }
  | { readonly kind: 'sleep'; readonly sleepMs: number; readonly count: number; readonly starts: readonly number[] };

// Starts at or before `now - windowMs` no longer count against the component.
export function pruneStarts(starts: readonly number[], now: number, windowMs: number): readonly number[] {
  const from = now - windowMs;
  return starts.every((t) => t > from) ? starts : starts.filter((t) => t > from);
}

// History after a spawn at `now`: pruned, with `now` appended, bounded in length.
export function recordStart(starts: readonly number[], now: number, windowMs: number): readonly number[] {
  const kept = [...pruneStarts(starts, now, windowMs), now];
  return kept.length > MAX_START_HISTORY ? kept.slice(kept.length - MAX_START_HISTORY) : kept;
}

// delay(n) = min(maxDelay, initialDelay·factor^(n-1)), n ≥ 1; before jitter.
export function baseDelayMs(count: number, policy: RespawnPolicy): number {
  // 0·Infinity is NaN once factor^(n-1) overflows, so a zero initial delay short-cuts.
  if (policy.initialDelayMs <= 0) return 0;
  const n = Math.max(1, count);
  return Math.min(policy.maxDelayMs, policy.initialDelayMs * policy.factor ** (n - 1));
}

// baseDelayMs spread uniformly by ±jitter (a fraction), rounded to whole ms, never negative.
export function restartDelayMs(count: number, policy: RespawnPolicy, random: () => number): number {
  const base = baseDelayMs(count, policy);
  if (base === 0 || policy.jitter <= 0) return Math.round(base);
  // A misbehaving random source must not push the delay outside the documented bounds.
  const r = Math.min(1, Math.max(0, random()));
  return Math.max(0, Math.round(base * (1 + policy.jitter * (2 * r - 1))));
}

// pies: more than `limit` starts within the window means sleep; a limit of 0 turns the guard
// off (the pies convention for rate limits, cf. max-rate 0), and precious components are exempt.
export function isThrottled(count: number, policy: RespawnPolicy, precious: boolean): boolean {
  return !precious && policy.limit > 0 && count >= policy.limit;
}

// Decide between a (delayed) restart and sleeping, from the starts recorded so far.
export function planRespawn(
  starts: readonly number[],
  now: number,
  policy: RespawnPolicy,
  precious: boolean,
  random: () => number,
): RespawnDecision {
  const kept = pruneStarts(starts, now, policy.windowMs);
  const count = kept.length;
  if (isThrottled(count, policy, precious)) return { kind: 'sleep', sleepMs: policy.sleepMs, count, starts: kept };
  return { kind: 'restart', delayMs: restartDelayMs(count, policy, random), count, starts: kept };
}
