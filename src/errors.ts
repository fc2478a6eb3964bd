// Stable error codes and the sysexits exit codes tpies uses (as GNU pies does).
import { type Diagnostic, type Sources, formatDiagnostics } from './config/diagnostics.js';
export const EXIT = {
  OK: 0,
  /** Reserved for "not running" style answers of tpiesctl. */
  FAILURE: 1,
  USAGE: 64,
  DATAERR: 65,
  UNAVAILABLE: 69,
  SOFTWARE: 70,
  OSERR: 71,
  NOPERM: 77,
  CONFIG: 78,
} as const;

export type ErrorCode = 'ERR_USAGE' | 'ERR_CONFIG_INVALID' | 'ERR_CONFIG_READ' | 'ERR_LISTEN' | 'ERR_CONTROL' | 'ERR_PIDFILE' | 'ERR_INTERNAL';

const EXIT_FOR: Readonly<Record<ErrorCode, number>> = {
  ERR_USAGE: EXIT.USAGE,
  ERR_CONFIG_INVALID: EXIT.CONFIG,
  ERR_CONFIG_READ: EXIT.CONFIG,
  ERR_LISTEN: EXIT.OSERR,
  ERR_CONTROL: EXIT.OSERR,
  ERR_PIDFILE: EXIT.OSERR,
  ERR_INTERNAL: EXIT.SOFTWARE,
};

/** The one error class tpies throws for failures a user must act on. */
export class PiesError extends Error {
  override readonly name: string = 'PiesError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  get exitCode(): number {
    return EXIT_FOR[this.code];
  }
}

/** A configuration that did not load: carries every diagnostic, for the caller to format. */
export class ConfigInvalidError extends PiesError {
  constructor(
    readonly diagnostics: readonly Diagnostic[],
    readonly sources: Sources,
  ) {
    super('ERR_CONFIG_INVALID', formatDiagnostics(diagnostics, sources).trimEnd());
  }
}
