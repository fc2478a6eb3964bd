// Where a spawned component's stdout and stderr go (pies `stdout`/`stderr` statements), and
// the bounded line reader that turns a child's output into log entries.
import fs from 'node:fs';
import type { Redirect, SyslogPriority } from '../config/model.js';
import type { LogLevel, Logger } from './logger.js';

export type OutputStream = 'stdout' | 'stderr';
export type OutputLevel = Exclude<LogLevel, 'silent'>;

/**
 * `fd`: the child gets this fd as its stdout/stderr and its output never passes through the
 * daemon; call `close()` once the child is spawned (the child keeps its own copy).
 * `pipe`: spawn with a pipe and hand it to `pipeToLog` with `level` and `fields` (plus `childPid`).
 */
export type OutputTarget =
  | { readonly kind: 'fd'; readonly fd: number; close(): void }
  | { readonly kind: 'pipe'; readonly level: OutputLevel; readonly fields: OutputFields };

export interface OutputFields {
  readonly component: string;
  readonly stream: OutputStream;
  readonly facility?: string;
}

const CR = Buffer.from('\r');

/** Lines longer than this are cut and logged with `truncated: true`. */
export const MAX_LINE_BYTES = 16 * 1024;

const SYSLOG_LEVEL: Readonly<Record<SyslogPriority, OutputLevel>> = {
  emerg: 'fatal',
  alert: 'fatal',
  crit: 'fatal',
  err: 'error',
  warning: 'warn',
  notice: 'info',
  info: 'info',
  debug: 'debug',
};

// Unredirected output: pies discards it, but output nobody can see makes a failing component
// hard to diagnose, so tpies logs it instead (stdout at info, stderr at warn). A component that
// is too chatty can say `stdout file /dev/null;`.
const DEFAULT_LEVEL: Readonly<Record<OutputStream, OutputLevel>> = { stdout: 'info', stderr: 'warn' };

export function syslogLevel(priority: SyslogPriority): OutputLevel {
  return SYSLOG_LEVEL[priority];
}

// Decide one stream's routing. A `file` target is opened here, so this throws the open error
// (ENOENT, EACCES, ...); the caller treats that like a failed spawn.
export function outputTarget(redirect: Redirect | undefined, stream: OutputStream, component: string): OutputTarget {
  if (redirect === undefined) return { kind: 'pipe', level: DEFAULT_LEVEL[stream], fields: { component, stream } };
  switch (redirect.kind) {
    case 'file':
      return openAppendTarget(redirect.path);
    case 'syslog': {
      // The facility has no meaning in our own log; it is kept as a field for whoever filters.
      const fields: OutputFields =
        redirect.facility === undefined ? { component, stream } : { component, stream, facility: redirect.facility };
      return { kind: 'pipe', level: syslogLevel(redirect.priority), fields };
    }
  }
}

// O_APPEND so a restarted child (or two children sharing a file) never overwrite each other,
// and so logrotate's copytruncate keeps working.
function openAppendTarget(path: string): OutputTarget {
  const fd = fs.openSync(path, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT, 0o644);
  let open = true;
  return {
    kind: 'fd',
    fd,
    close() {
      if (!open) return;
      open = false;
      fs.closeSync(fd);
    },
  };
}

/**
 * Splits bytes into lines (`\n`; a `\r` before it or before the end is dropped) while holding at most
 * `maxLineBytes` of the current line: the rest of an over-long line is counted and dropped.
 * node:readline would be the obvious tool, but it keeps the whole unterminated line in memory,
 * so a child writing 100 MB without a newline would cost 100 MB.
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private kept = 0;
  private dropped = 0;
  private pendingCR = false;

  constructor(
    private readonly onLine: (line: string, truncated: boolean) => void,
    private readonly maxLineBytes: number = MAX_LINE_BYTES,
  ) {}

  /** Bytes of the current, unterminated line held in memory (never above `maxLineBytes`). */
  get bufferedBytes(): number {
    return this.kept;
  }

  push(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl === -1) {
        this.keep(chunk.subarray(start));
        return;
      }
      this.keep(chunk.subarray(start, nl));
      this.emit();
      start = nl + 1;
    }
  }

  // The final line without a newline is still a line.
  end(): void {
    if (this.kept > 0 || this.dropped > 0 || this.pendingCR) this.emit();
  }

  // A `\r` at the end of a piece is held back: it is dropped if a `\n` (or the end) follows,
  // even across a chunk boundary, and never counts against the limit.
  private keep(piece: Buffer): void {
    if (piece.length === 0) return;
    if (this.pendingCR) {
      this.pendingCR = false;
      this.keepBytes(CR);
    }
    if (piece[piece.length - 1] === 0x0d) {
      this.pendingCR = true;
      piece = piece.subarray(0, piece.length - 1);
    }
    this.keepBytes(piece);
  }

  private keepBytes(piece: Buffer): void {
    if (piece.length === 0) return;
    const room = this.maxLineBytes - this.kept;
    if (piece.length <= room) {
      // Copy: the caller's chunk may be a pooled buffer that would otherwise stay alive.
      this.parts.push(Buffer.from(piece));
      this.kept += piece.length;
    } else {
      if (room > 0) {
        this.parts.push(Buffer.from(piece.subarray(0, room)));
        this.kept += room;
      }
      this.dropped += piece.length - room;
    }
  }

  private emit(): void {
    let line = Buffer.concat(this.parts, this.kept);
    const truncated = this.dropped > 0;
    if (truncated) line = line.subarray(0, utf8Boundary(line));
    this.parts = [];
    this.kept = 0;
    this.dropped = 0;
    this.pendingCR = false;
    this.onLine(line.toString('utf8'), truncated);
  }
}

// Length of the longest prefix that does not end inside a UTF-8 sequence, so a cut line does
// not end in U+FFFD.
function utf8Boundary(buf: Buffer): number {
  let i = buf.length;
  let back = 0;
  while (i > 0 && back < 4 && ((buf[i - 1] ?? 0) & 0xc0) === 0x80) {
    i--;
    back++;
  }
  if (i === 0) return buf.length;
  const lead = buf[i - 1] ?? 0;
  const need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  return back + 1 >= need ? buf.length : i - 1;
}

// Log each line of a child's stdout/stderr as one entry; resolves when the stream ends (or
// fails: a broken pipe to a child that died is not worth more than the lines already read).
export function pipeToLog(
  readable: NodeJS.ReadableStream,
  log: Logger,
  fields: object,
  level: OutputLevel,
  maxLineBytes: number = MAX_LINE_BYTES,
): Promise<void> {
  const splitter = new LineSplitter((line, truncated) => {
    log[level](truncated ? { ...fields, truncated: true } : fields, line);
  }, maxLineBytes);
  return new Promise((resolve) => {
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      readable.removeListener('data', onData);
      splitter.end();
      resolve();
    };
    const onData = (chunk: Buffer | string) => {
      splitter.push(typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk);
    };
    readable.on('data', onData);
    readable.once('end', finish);
    readable.once('close', finish);
    readable.once('error', finish);
  });
}
