// Which subordinate of a TCPMUX master gets a connection, from the bytes the client has sent
// so far (peeked, never consumed). Pure: the master calls decide() again whenever more bytes
// arrive, and once more with `final` when no more will be waited for (sniff-limit reached,
// end of stream, sniff-timeout).
//
// Order (docs/sniffing.md): an RFC 1078 line naming a service (or `help`) wins; then each
// subordinate's `match` rules in config order; then `match timeout` for a client that sent
// nothing before sniff-timeout; then `match default`. A rule that cannot tell yet (`more`)
// holds up the rules after it, so config order is always respected, never arrival order.
import type { Component, MatchRule } from '../config/model.js';
import { classifyServiceName, serviceKey } from '../tcpmux/protocol.js';
import { compileHostPatterns } from './hostname-pattern.js';
import { sniffHttp } from './http.js';
import { sniffSocks5 } from './socks5.js';
import { sniffSsh } from './ssh.js';
import { sniffTls } from './tls.js';
import type { Verdict } from './verdict.js';

const LF = 0x0a;
const CR = 0x0d;

type Test = (bytes: Buffer) => Verdict;

interface CompiledRule {
  readonly component: Component;
  /** For the audit event: `tls`, `http`, `prefix`… */
  readonly match: string;
  readonly test: Test;
}

export interface SniffTable {
  /** Lower-cased service names a TCPMUX line may ask for (`help` included). */
  readonly services: ReadonlySet<string>;
  readonly maxLineBytes: number;
  readonly rules: readonly CompiledRule[];
  readonly default?: Component;
  readonly timeout?: Component;
}

export type Decision =
  | { readonly kind: 'more' }
  /** An RFC 1078 request: take `lineBytes` (terminator included) and serve it as TCPMUX. */
  | { readonly kind: 'tcpmux'; readonly lineBytes: number }
  | { readonly kind: 'rule'; readonly component: Component; readonly match: string }
  /** Nothing matched; `line` when the bytes are a text line (a TCPMUX miss), see textLine. */
  | { readonly kind: 'none'; readonly line: boolean };

/** The master's subordinates (in config order) compiled once per config. */
export function compileSniffTable(subordinates: readonly Component[], maxLineBytes: number): SniffTable {
  const services = new Set<string>(['help']);
  const rules: CompiledRule[] = [];
  let fallback: Component | undefined;
  let timeout: Component | undefined;
  for (const c of subordinates) {
    if (c.flags.has('disable')) continue;
    if (c.service !== undefined) services.add(serviceKey(c.service));
    for (const rule of c.match ?? []) {
      if (rule.kind === 'default') fallback ??= c;
      else if (rule.kind === 'timeout') timeout ??= c;
      else rules.push({ component: c, match: rule.kind, test: compileRule(rule) });
    }
  }
  return { services, maxLineBytes, rules, ...(fallback ? { default: fallback } : {}), ...(timeout ? { timeout } : {}) };
}

/** True when the master has sniffing rules at all (else the plain TCPMUX reader serves). */
export function sniffs(table: SniffTable): boolean {
  return table.rules.length > 0 || table.default !== undefined || table.timeout !== undefined;
}

export function decide(table: SniffTable, bytes: Buffer, state: { readonly final: boolean; readonly timedOut: boolean }): Decision {
  const line = tcpmuxVerdict(table, bytes);
  if (typeof line === 'number') return { kind: 'tcpmux', lineBytes: line };
  if (line === 'more' && !state.final) return { kind: 'more' };
  if (bytes.length > 0) {
    for (const rule of table.rules) {
      const verdict = rule.test(bytes);
      if (verdict === 'yes') return { kind: 'rule', component: rule.component, match: rule.match };
      if (verdict === 'more' && !state.final) return { kind: 'more' };
    }
  } else if (!state.final) return { kind: 'more' };
  if (bytes.length === 0 && state.timedOut && table.timeout) return { kind: 'rule', component: table.timeout, match: 'timeout' };
  if (table.default) return { kind: 'rule', component: table.default, match: 'default' };
  const text = textLine(bytes, table.maxLineBytes);
  if (text === 'more' && !state.final) return { kind: 'more' };
  return { kind: 'none', line: text === 'yes' };
}

// Whether a miss is a TCPMUX request line, which the master refuses with a `-` reply: text up
// to an LF, or text reaching tcpmux-line-max (the plain reader refuses that too). Binary bytes
// (a TLS hello, a SOCKS greeting) are no line even when an LF happens to be among them. Text
// still short of both keeps the answer open, so the reply does not depend on how the client's
// line was split into segments.
function textLine(bytes: Buffer, maxLineBytes: number): 'yes' | 'no' | 'more' {
  const end = Math.min(bytes.length, maxLineBytes);
  for (let i = 0; i < end; i++) {
    const byte = bytes[i] ?? 0;
    if (byte === LF) return 'yes';
    // A CR belongs to a line only as the CRLF terminator.
    if (byte === CR && (i + 1 === end || bytes[i + 1] === LF)) continue;
    if (byte < 0x20 || byte === 0x7f) return 'no';
  }
  return end === maxLineBytes ? 'yes' : 'more';
}

// The line's length when it names a service, 'more' while it still could, else 'no'.
function tcpmuxVerdict(table: SniffTable, bytes: Buffer): number | 'more' | 'no' {
  const lf = bytes.indexOf(LF);
  if (lf === -1) {
    if (bytes.length === 0) return 'more';
    if (bytes.length >= table.maxLineBytes) return 'no';
    const text = bytes.toString('latin1').toLowerCase();
    for (const name of table.services) if (`${name}\r`.startsWith(text)) return 'more';
    return 'no';
  }
  if (lf + 1 > table.maxLineBytes) return 'no';
  const end = lf > 0 && bytes[lf - 1] === CR ? lf - 1 : lf;
  const request = classifyServiceName(bytes.subarray(0, end));
  if (request.kind === 'help' || (request.kind === 'service' && table.services.has(request.key))) return lf + 1;
  return 'no';
}

function compileRule(rule: Exclude<MatchRule, { kind: 'default' | 'timeout' }>): Test {
  switch (rule.kind) {
    case 'prefix': {
      const prefix = Buffer.from(rule.text, 'latin1');
      return (bytes) => {
        const n = Math.min(bytes.length, prefix.length);
        if (bytes.compare(prefix, 0, n, 0, n) !== 0) return 'no';
        return n === prefix.length ? 'yes' : 'more';
      };
    }
    case 'regex': {
      // One character per byte, so `\x16` in the pattern is the byte 0x16. A regex cannot
      // say whether more bytes would match, so it judges what has arrived.
      const regex = new RegExp(rule.source);
      return (bytes) => (regex.test(bytes.toString('latin1')) ? 'yes' : 'no');
    }
    case 'tls': {
      const sni = rule.sni ? compileHostPatterns(rule.sni) : undefined;
      const alpn = rule.alpn;
      return (bytes) => {
        const hello = sniffTls(bytes);
        if (hello.verdict !== 'yes') return hello.verdict;
        if (sni && !sni(hello.sni)) return 'no';
        if (alpn && !hello.alpn.some((p) => alpn.includes(p))) return 'no';
        return 'yes';
      };
    }
    case 'http': {
      const host = rule.host ? compileHostPatterns(rule.host) : undefined;
      return (bytes) => {
        const head = sniffHttp(bytes);
        if (head.verdict !== 'yes' || !host) return head.verdict;
        if (host(head.host)) return 'yes';
        return head.headersComplete ? 'no' : 'more';
      };
    }
    case 'ssh':
      return sniffSsh;
    case 'socks5':
      return sniffSocks5;
  }
}
