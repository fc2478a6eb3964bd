// The daemon's logger: the only importer of pino and pino-pretty (ARCHITECTURE rule 2).
// Everything else sees our small `Logger` interface, never a pino type.
import { createRequire } from 'node:module';
import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';
import type PinoPretty from 'pino-pretty';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
export type LogFormat = 'json' | 'pretty';

export const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/**
 * What every part of tpies logs through. Messages are short lower-case event phrases and the
 * data goes in `fields` (ARCHITECTURE B5). Never log a field named `pid`: the base bindings
 * already carry the daemon's own pid, so a child's pid is `childPid`. A `pid` (or another key
 * pino itself writes) that slips through is renamed rather than written twice.
 */
export interface Logger {
  fatal(fields: object, msg: string): void;
  error(fields: object, msg: string): void;
  warn(fields: object, msg: string): void;
  info(fields: object, msg: string): void;
  debug(fields: object, msg: string): void;
  trace(fields: object, msg: string): void;
  child(bindings: object): Logger;
}

export interface LoggerOptions {
  readonly level: LogLevel;
  /** Defaults to 'json'; the CLI picks with `defaultLogFormat(process.stderr.isTTY)`. */
  readonly format?: LogFormat;
  /** Log file, opened for append; `reopen()` reopens it by path (logrotate). */
  readonly file?: string;
  /** A stream or fd to write to instead of stderr; ignored when `file` is set. */
  readonly destination?: NodeJS.WritableStream | number;
}

export interface LoggerHandle {
  readonly log: Logger;
  /** Reopen the log file by path so that lines after a rename go to a new file; no-op without `file`. */
  reopen(): void;
  /** Push out anything still buffered; call before exiting. */
  flush(): void;
}

/** One record of `createMemoryLogger`: level label, message, bindings and fields (no time, no daemon pid). */
export interface LogEntry {
  readonly level: Exclude<LogLevel, 'silent'>;
  readonly msg: string;
  readonly [field: string]: unknown;
}

export interface MemoryLogger {
  readonly log: Logger;
  readonly entries: LogEntry[];
}

// Pretty is for a human at a terminal; anything else (files, journald, pipes) gets JSON lines.
export function defaultLogFormat(isTTY: boolean | undefined): LogFormat {
  return isTTY === true ? 'pretty' : 'json';
}

export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

// Keys pino writes itself: a field with one of these names would produce duplicate JSON keys,
// which most JSON parsers resolve by silently keeping the last one.
const RESERVED_RENAMES: Readonly<Record<string, string>> = {
  pid: 'childPid',
  hostname: 'fieldHostname',
  level: 'fieldLevel',
  time: 'fieldTime',
  msg: 'fieldMsg',
};

// An explicit field of the target name wins over the renamed one.
function sanitizeFields(fields: object): object {
  const source = fields as Readonly<Record<string, unknown>>;
  let out: Record<string, unknown> | undefined;
  for (const [key, renamed] of Object.entries(RESERVED_RENAMES)) {
    if (!Object.hasOwn(source, key)) continue;
    out ??= { ...source };
    const value = out[key];
    delete out[key];
    if (!Object.hasOwn(source, renamed)) out[renamed] = value;
  }
  return out ?? fields;
}

function wrap(p: PinoLogger): Logger {
  return {
    fatal: (fields, msg) => p.fatal(sanitizeFields(fields), msg),
    error: (fields, msg) => p.error(sanitizeFields(fields), msg),
    warn: (fields, msg) => p.warn(sanitizeFields(fields), msg),
    info: (fields, msg) => p.info(sanitizeFields(fields), msg),
    debug: (fields, msg) => p.debug(sanitizeFields(fields), msg),
    trace: (fields, msg) => p.trace(sanitizeFields(fields), msg),
    child: (bindings) => wrap(p.child(sanitizeFields(bindings))),
  };
}

// Shared by the real and the memory logger so both produce the same records. No `hostname`:
// the supervisor's log stays on its host. Level labels and ISO times keep the JSON readable.
function buildPino(level: LogLevel, stream: DestinationStream): PinoLogger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    stream,
  );
}

// Formats each JSON line in the calling tick. pino-pretty's stream form goes through a
// Transform chain, so lines logged right before process.exit() could be lost.
// pino-pretty (a CommonJS package) is required here, synchronously and only for the pretty
// format: a daemon logging JSON never loads it and its dependencies (idle RSS).
function prettyStream(out: DestinationStream, colorize: boolean): DestinationStream {
  const pinoPretty = createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;
  const format = pinoPretty.prettyFactory({ colorize, ignore: 'hostname', translateTime: 'SYS:standard' });
  return { write: (line: string) => out.write(format(line)) };
}

// Synchronous writes throughout: a supervisor logs little, and no line may be lost on exit or
// on a crash (pino.destination with sync:false drops everything before its async open).
export function createLogger(options: LoggerOptions): LoggerHandle {
  const format = options.format ?? 'json';
  let sonic: ReturnType<typeof pino.destination> | undefined;
  let out: DestinationStream;
  let colorize = false;
  if (options.file !== undefined) {
    sonic = pino.destination({ dest: options.file, sync: true, append: true, mkdir: true });
    out = sonic;
  } else if (typeof options.destination === 'object') {
    out = options.destination;
  } else {
    const fd = options.destination ?? 2;
    sonic = pino.destination({ dest: fd, sync: true });
    out = sonic;
    colorize = fd === 2 && process.stderr.isTTY === true;
  }
  // A log reader that went away (EPIPE on stderr, a full disk) must not take the supervisor
  // and its children down with it: those lines are lost, the daemon keeps supervising.
  sonic?.on('error', () => undefined);
  const p = buildPino(options.level, format === 'pretty' ? prettyStream(out, colorize) : out);
  const file = options.file;
  return {
    log: wrap(p),
    reopen() {
      if (file !== undefined && sonic !== undefined) sonic.reopen(file);
    },
    flush() {
      sonic?.flushSync();
    },
  };
}

// For tests: the same pino pipeline, with each line parsed back into `entries`.
export function createMemoryLogger(level: LogLevel = 'trace'): MemoryLogger {
  const entries: LogEntry[] = [];
  const stream: DestinationStream = {
    write(line: string) {
      const { time: _time, pid: _pid, ...entry } = JSON.parse(line) as LogEntry & { time?: unknown; pid?: unknown };
      entries.push(entry);
    },
  };
  return { log: wrap(buildPino(level, stream)), entries };
}
