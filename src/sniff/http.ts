// HTTP/1.x requests and the HTTP/2 prior-knowledge preface, told apart by the request line;
// the Host header, when the head has it, for `host` match conditions.
import type { Verdict } from './verdict.js';

export type HttpSniff =
  | { readonly verdict: Exclude<Verdict, 'yes'> }
  | { readonly verdict: 'yes'; readonly method: string; readonly host?: string; readonly headersComplete: boolean };

/** The most of a request head looked at; a head with no end by then is taken as complete. */
export const MAX_HTTP_HEAD = 16 * 1024;

const METHODS: readonly string[] = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'];
const LONGEST_METHOD = Math.max(...METHODS.map((m) => m.length));
// RFC 9113 §3.4: the preface is `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`; its first line is exact.
const PREFACE_METHOD = 'PRI';
const PREFACE_LINE = Buffer.from('PRI * HTTP/2.0\r\n', 'latin1');
const VERSION = Buffer.from('HTTP/1.', 'latin1');
const SP = 0x20;
const CR = 0x0d;
const LF = 0x0a;

export function sniffHttp(bytes: Buffer): HttpSniff {
  const head = bytes.subarray(0, MAX_HTTP_HEAD);
  // Running out of bytes inside the cap may still end well; at the cap it cannot.
  const short: HttpSniff = { verdict: bytes.length < MAX_HTTP_HEAD ? 'more' : 'no' };
  const line = requestLine(head);
  if (line === 'no') return { verdict: 'no' };
  if (line === 'more') return short;
  const { host, complete } = scanHeaders(head, line.end);
  return {
    verdict: 'yes',
    method: line.method,
    ...(host === undefined ? {} : { host }),
    headersComplete: complete || bytes.length >= MAX_HTTP_HEAD,
  };
}

type Step = 'no' | 'more';

function requestLine(head: Buffer): Step | { method: string; end: number } {
  const space = head.subarray(0, LONGEST_METHOD + 1).indexOf(SP);
  if (space < 0) {
    const token = head.toString('latin1', 0, LONGEST_METHOD + 1);
    return [...METHODS, PREFACE_METHOD].some((m) => m.startsWith(token)) ? 'more' : 'no';
  }
  const method = head.toString('latin1', 0, space);
  if (method === PREFACE_METHOD) {
    const r = literal(head, 0, PREFACE_LINE);
    return r === 'ok' ? { method, end: PREFACE_LINE.length } : r;
  }
  if (!METHODS.includes(method)) return 'no';

  const targetStart = space + 1;
  let i = targetStart;
  while (i < head.length && isTargetByte(head[i] ?? SP)) i++;
  if (i === head.length) return 'more';
  if (i === targetStart || head[i] !== SP) return 'no';

  const version = literal(head, i + 1, VERSION);
  if (version !== 'ok') return version;
  i += 1 + VERSION.length;
  const minor = head[i];
  if (minor === undefined) return 'more';
  if (minor < 0x30 || minor > 0x39) return 'no';
  i++;
  if (head[i] === CR) i++;
  const lf = head[i];
  if (lf === undefined) return 'more';
  return lf === LF ? { method, end: i + 1 } : 'no';
}

// A request target is any run of bytes other than controls and spaces; raw UTF-8 is let
// through because real clients send it and it does not make the request anything else.
function isTargetByte(b: number): boolean {
  return b > SP && b !== 0x7f;
}

// Compare `expected` at `at`, as far as `bytes` goes.
function literal(bytes: Buffer, at: number, expected: Buffer): Step | 'ok' {
  const n = Math.min(expected.length, Math.max(0, bytes.length - at));
  if (bytes.compare(expected, 0, n, at, at + n) !== 0) return 'no';
  return n === expected.length ? 'ok' : 'more';
}

// Header lines end in LF with an optional CR before it; an empty line ends the head. Only
// complete lines count, so a Host header still arriving is not reported cut short.
function scanHeaders(head: Buffer, start: number): { host: string | undefined; complete: boolean } {
  let host: string | undefined;
  let pos = start;
  for (;;) {
    const lf = head.indexOf(LF, pos);
    if (lf < 0) return { host, complete: false };
    const end = lf > pos && head[lf - 1] === CR ? lf - 1 : lf;
    if (end === pos) return { host, complete: true };
    if (host === undefined && isHostHeader(head, pos, end)) host = hostValue(head.toString('latin1', pos + HOST.length, end));
    pos = lf + 1;
  }
}

const HOST = 'host:';

function isHostHeader(head: Buffer, start: number, end: number): boolean {
  return end - start >= HOST.length && head.toString('latin1', start, start + HOST.length).toLowerCase() === HOST;
}

// `Example.org:8080` → `example.org`; `[::1]:8080` → `[::1]` (brackets kept, so the name cannot
// be mistaken for a host name with a port).
function hostValue(raw: string): string | undefined {
  const value = trimOws(raw).toLowerCase();
  let host = value;
  if (value.startsWith('[')) {
    const close = value.indexOf(']');
    if (close < 0) return undefined;
    host = value.slice(0, close + 1);
  } else {
    const colon = value.indexOf(':');
    if (colon >= 0 && colon === value.lastIndexOf(':')) host = value.slice(0, colon);
  }
  return host.length > 0 ? host : undefined;
}

// Optional whitespace (RFC 9110 §5.6.3) by hand: a trailing-whitespace RegExp backtracks
// quadratically on long runs of inner blanks.
function trimOws(s: string): string {
  const blank = (c: string): boolean => c === ' ' || c === '\t';
  let a = 0;
  let b = s.length;
  while (a < b && blank(s.charAt(a))) a++;
  while (b > a && blank(s.charAt(b - 1))) b--;
  return s.slice(a, b);
}
