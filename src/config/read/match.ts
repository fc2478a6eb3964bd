// `match` statements of TCPMUX subordinates (docs/sniffing.md):
//   match prefix "GET ";          match regex "^\x16\x03[\x00-\x03]";
//   match tls;  match tls { sni "example.org" "*.example.org"; alpn h2 "http/1.1"; }
//   match http; match http { host "www.example.org"; }
//   match ssh;  match socks5;     match default;  match timeout;
// Anything not understood is an error: a rule read wrongly would send connections astray.
import type { ScalarNode, StatementNode } from '../ast.js';
import type { MatchRule } from '../model.js';
import { type BuildContext, badValue, enumValue, flatten, isScalar } from '../values.js';
import { isHostPattern } from '../../sniff/hostname-pattern.js';

export const MATCH_KINDS = ['prefix', 'regex', 'tls', 'http', 'ssh', 'socks5', 'default', 'timeout'] as const;
type MatchKind = (typeof MATCH_KINDS)[number];

// The conditions each kind's block may hold.
const CONDITIONS: Partial<Record<MatchKind, readonly string[]>> = { tls: ['sni', 'alpn'], http: ['host'] };

export function readMatch(s: StatementNode, ctx: BuildContext): MatchRule | undefined {
  const [first, ...rest] = s.values;
  if (!first || !isScalar(first)) return badValue(ctx, first ?? s, `"match" needs a kind: ${MATCH_KINDS.join(', ')}`);
  const kind = enumValue(first, ctx, 'match kind', MATCH_KINDS);
  if (!kind) return undefined;
  if (kind === 'prefix' || kind === 'regex') {
    if (s.block) return badValue(ctx, s, `"match ${kind}" takes no block`);
    const arg = rest[0];
    if (rest.length !== 1 || !arg || !isScalar(arg)) return badValue(ctx, rest[1] ?? s, `"match ${kind}" takes one string: match ${kind} "…";`);
    if (arg.value === '') return badValue(ctx, arg, `an empty ${kind} would match every connection (use "match default;")`);
    // Both compare bytes, one character per byte: a character past U+00FF has no byte.
    if (/[^\x00-\xff]/.test(arg.value)) return badValue(ctx, arg, `match ${kind} compares bytes: write characters beyond U+00FF as their UTF-8 bytes (\\xHH)`);
    if (kind === 'prefix') return { kind, text: arg.value };
    return compiles(arg, ctx) ? { kind, source: arg.value } : undefined;
  }
  if (rest.length > 0) return badValue(ctx, rest[0]!, `"match ${kind}" takes no more values${CONDITIONS[kind] ? ` (conditions go in a block: match ${kind} { ${CONDITIONS[kind]!.map((c) => `${c} …`).join('; ')}; })` : ''}`);
  if (!s.block) return { kind } as MatchRule;
  const allowed = CONDITIONS[kind];
  if (!allowed) return badValue(ctx, s, `"match ${kind}" takes no block`);
  const conditions: Record<string, string[]> = {};
  let ok = true;
  for (const node of s.block) {
    if (node.type !== 'Statement') continue;
    if (!allowed.includes(node.name)) {
      ctx.diags.error('unknown-statement', `unknown condition "${node.name}" in match ${kind} (expected ${allowed.join(' or ')})`, node.location);
      ok = false;
    } else if (conditions[node.name]) {
      ctx.diags.error('repeated', `"${node.name}" is given twice in match ${kind}: list every value in one statement`, node.location);
      ok = false;
    } else if (node.block || node.values.length === 0) {
      ctx.diags.error('bad-value', `"${node.name}" takes one or more values: ${node.name} VALUE…;`, node.location);
      ok = false;
    } else {
      const values = flatten(node.values);
      const bad = node.name === 'alpn' ? undefined : values.find((v) => !isHostPattern(v.value));
      if (bad) {
        badValue(ctx, bad, `"${bad.value}" is not a host name or *.domain pattern`);
        ok = false;
      } else conditions[node.name] = values.map((v) => v.value);
    }
  }
  return ok ? ({ kind, ...conditions } as MatchRule) : undefined;
}

// Regexes run on the bytes as latin1 text (one character per byte; \xHH in the string).
function compiles(v: ScalarNode, ctx: BuildContext): boolean {
  try {
    new RegExp(v.value);
    return true;
  } catch (error) {
    badValue(ctx, v, `bad regex: ${(error as Error).message}`);
    return false;
  }
}
