// The one way to start a promise nobody awaits: its rejection is logged, never unhandled.
import type { Logger } from './logger.js';

export function detach(promise: Promise<unknown>, log: Logger, what: string): void {
  promise.catch((error: unknown) => log.error({ err: error instanceof Error ? error.message : String(error), what }, 'internal task failed'));
}
